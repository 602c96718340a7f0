//! `send_to_clients`: pushes a message to a list of clients, once each.

use serde::Serialize;

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::{self as p, check_message, send_request, CheckLimits, Name, OverLimit};

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
        check_message(self.message(), limits)
    }
}

impl Operation for SendToClientsRequest {
    const NAME: &'static str = "send_to_clients";
    const SUMMARY: &'static str = "Pushes a message to a list of clients";
    type Caller = SystemCaller;
    type Reply = SendToClientsReply;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<SendToClientsReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(hub, &message_id, self.message())?;
        let client_ids = self.client_ids.into_iter().map(Name::into_inner).collect();
        let missing = hub
            .backplane
            .send_to_clients(m::SendToClients {
                system_id: caller.system_id,
                client_ids,
                frame,
            })
            .await?;
        Ok(SendToClientsReply {
            message_id,
            missing,
        })
    }
}
