//! `send_to_group`: pushes a message to every member of a group, on every node.

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::backplane::Audience;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{
    self as p, check_group, check_message, send_request, CheckLimits, Name, OverLimit,
};

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
    const TAG: &'static str = "messages";
    type Caller = SystemCaller;
    type Reply = p::CountReply;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<p::CountReply, ApiError> {
        let message = p::MessageRef {
            send_user_id: &self.send_user_id,
            code: self.code,
            msg: &self.msg,
            data: &self.data,
        };
        let audience = Audience::Group(self.group_name.into_inner());
        super::broadcast(node, &caller.system_id, audience, message).await
    }
}
