//! `send_to_system`: pushes a message to every client of the system, on every node.

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::{self as p, check_message, send_request, CheckLimits, OverLimit};

pub type Request = SendToSystemRequest;

send_request!(
    /// `send_to_system`.
    SendToSystemRequest {}
);

impl CheckLimits for SendToSystemRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_message(self.message(), limits)
    }
}

impl Operation for SendToSystemRequest {
    const NAME: &'static str = "send_to_system";
    const SUMMARY: &'static str = "Pushes a message to every client of the system";
    type Caller = SystemCaller;
    type Reply = p::CountReply;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<p::CountReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(hub, &message_id, self.message())?;
        let count = hub
            .backplane
            .send_to_system(m::SendToSystem {
                system_id: caller.system_id,
                frame,
            })
            .await?;
        Ok(p::CountReply { message_id, count })
    }
}
