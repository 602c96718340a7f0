//! `send_to_client`: pushes a message to one client.

use serde::Serialize;

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
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
    type Caller = SystemCaller;
    type Reply = MessageIdReply;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<MessageIdReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(hub, &message_id, self.message())?;
        hub.backplane
            .send_to_client(m::SendToClient {
                system_id: caller.system_id,
                client_id: self.client_id.into_inner(),
                frame,
            })
            .await?;
        Ok(MessageIdReply { message_id })
    }
}
