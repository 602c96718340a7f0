//! `send_to_system`: pushes a message to every client of the system, on every node.

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::backplane::Audience;
use crate::config::Limits;
use crate::error::ApiError;
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
    const TAG: &'static str = "messages";
    type Caller = SystemCaller;
    type Reply = p::CountReply;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<p::CountReply, ApiError> {
        super::broadcast(node, &caller.system_id, Audience::System, self.message()).await
    }
}
