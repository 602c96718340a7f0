//! `get_system`: a system's settings (less the webhook's secret) and its client count.

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::error::ApiError;
use crate::protocol::SystemInfo;

pub type Request = GetSystemRequest;

crate::protocol::empty_request!(
    /// `get_system` takes an empty object (or no body).
    GetSystemRequest
);

impl Operation for GetSystemRequest {
    const NAME: &'static str = "get_system";
    const SUMMARY: &'static str = "A system's settings and client count";
    const TAG: &'static str = "systems";
    type Caller = SystemCaller;
    type Reply = SystemInfo;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<SystemInfo, ApiError> {
        node.directory.system(caller.system_id).await
    }
}
