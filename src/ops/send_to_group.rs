//! `send_to_group`: pushes a message to every member of a group, on every node.

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::{self as p, check_group, check_message, send_request, CheckLimits, Name, OverLimit};

pub type Request = SendToGroupRequest;

send_request!(
    /// `send_to_group`.
    SendToGroupRequest { group_name: Name }
);

impl CheckLimits for SendToGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)?;
        check_message(self.message(), limits)
    }
}

impl Operation for SendToGroupRequest {
    const NAME: &'static str = "send_to_group";
    const SUMMARY: &'static str = "Pushes a message to a group";
    type Caller = SystemCaller;
    type Reply = p::CountReply;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<p::CountReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(hub, &message_id, self.message())?;
        let count = hub
            .backplane
            .send_to_group(m::SendToGroup {
                system_id: caller.system_id,
                group_name: self.group_name.into_inner(),
                frame,
            })
            .await?;
        Ok(p::CountReply { message_id, count })
    }
}
