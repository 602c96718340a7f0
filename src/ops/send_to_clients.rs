//! `send_to_clients`: pushes a message to a list of clients, once each.

use actix::{Context, Handler};
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::backplane::ByOwner;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{
    self as p, check_client_id, check_message, send_request, CheckLimits, Name, OverLimit,
};

pub type Request = SendToClientsRequest;

send_request!(
    /// `send_to_clients`.
    SendToClientsRequest {
        /// At most --max-client-ids (1000).
        #[schema(min_items = 1, max_items = 1000)]
        client_ids: Vec<Name>
    }
);

/// `data` of `send_to_clients`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendToClientsReply {
    pub message_id: String,
    pub missing: Vec<String>,
}

impl CheckLimits for SendToClientsRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        if self.client_ids.is_empty() {
            return Err(OverLimit::Field("clientIds: must not be empty".into()));
        }
        let max = limits.max_client_ids;
        if self.client_ids.len() > max {
            return Err(OverLimit::Field(format!(
                "clientIds: more than the limit of {max} ids"
            )));
        }
        for (i, client_id) in self.client_ids.iter().enumerate() {
            check_client_id(&format!("clientIds[{i}]"), client_id.as_str())?;
        }
        check_message(self.message(), limits)
    }
}

impl Operation for SendToClientsRequest {
    const NAME: &'static str = "send_to_clients";
    const SUMMARY: &'static str = "Pushes a message to a list of clients";
    const TAG: &'static str = "messages";
    type Caller = SystemCaller;
    type Reply = SendToClientsReply;
    type Command = SendToClients;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<SendToClientsReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(node, &message_id, self.message())?;
        let client_ids = self.client_ids.into_iter().map(Name::into_inner).collect();
        let ByOwner { mut owned, unowned } = node.backplane.by_owner(client_ids);
        let mut missing = Vec::new();
        if owned.is_empty() {
            // Still asked of the system, so that an unknown one is refused as usual.
            owned.push(unowned);
        } else {
            missing = unowned;
        }
        // One command per node that owns some of them.
        for client_ids in owned {
            let Some(first) = client_ids.first().cloned() else {
                continue;
            };
            let command = SendToClients {
                system_id: caller.system_id.clone(),
                client_ids: client_ids.clone(),
                frame: frame.clone(),
            };
            match super::on_owner(node, &first, command).await {
                Ok(not_here) => missing.extend(not_here),
                // A node that is gone has none of them.
                Err(ApiError::NotFound(_)) => missing.extend(client_ids),
                Err(err) => return Err(err),
            }
        }
        Ok(SendToClientsReply {
            message_id,
            missing,
        })
    }
}

/// Pushes a frame to those of `client_ids` that a node owns, once each. Result: the ids that are
/// not connected there.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<Vec<String>>")]
pub struct SendToClients {
    pub system_id: String,
    pub client_ids: Vec<String>,
    pub frame: ByteString,
}

impl ClientCommand for SendToClients {
    const METHOD: &'static str = SendToClientsRequest::NAME;
    type Reply = Vec<String>;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<SendToClients> for SystemRegistry {
    type Result = RegistryResult<Vec<String>>;
    fn handle(&mut self, cmd: SendToClients, _: &mut Context<Self>) -> Self::Result {
        self.push_to_clients(&cmd.system_id, &cmd.client_ids, &cmd.frame)
    }
}
