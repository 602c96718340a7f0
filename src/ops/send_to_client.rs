//! `send_to_client`: pushes a message to one client.

use actix::{Context, Handler};
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::outbox::Pushed;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{self as p, check_message, send_request, CheckLimits, Name, OverLimit};

pub type Request = SendToClientRequest;

send_request!(
    /// `send_to_client`.
    SendToClientRequest { client_id: Name }
);

/// `data` of `send_to_client`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIdReply {
    pub message_id: String,
}

impl CheckLimits for SendToClientRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_message(self.message(), limits)
    }
}

impl Operation for SendToClientRequest {
    const NAME: &'static str = "send_to_client";
    const SUMMARY: &'static str = "Pushes a message to one client";
    const TAG: &'static str = "messages";
    const ERRORS: &'static [u16] = &[400, 401, 403, 404, 405, 413, 503];
    type Caller = SystemCaller;
    type Reply = MessageIdReply;
    type Command = SendToClient;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<MessageIdReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(node, &message_id, self.message())?;
        let client_id = self.client_id.into_inner();
        let command = SendToClient {
            system_id: caller.system_id,
            client_id: client_id.clone(),
            frame,
        };
        super::on_owner(node, &client_id, command).await?;
        Ok(MessageIdReply { message_id })
    }
}

/// Pushes a frame to one client, on the node that owns it.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<()>")]
pub struct SendToClient {
    pub system_id: String,
    pub client_id: String,
    pub frame: ByteString,
}

impl ClientCommand for SendToClient {
    const METHOD: &'static str = SendToClientRequest::NAME;
    type Reply = ();
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<SendToClient> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, cmd: SendToClient, _: &mut Context<Self>) -> Self::Result {
        let client = self.tenant(&cmd.system_id)?.client(&cmd.client_id)?;
        if client.session.push(&cmd.frame) == Pushed::Overflowed {
            self.evict_slow(&cmd.system_id, &cmd.client_id);
        }
        Ok(())
    }
}
