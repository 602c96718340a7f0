//! `unregister`: removes a system; its clients are closed with 4001.

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::error::ApiError;
use crate::protocol::EmptyList;

pub type Request = UnregisterRequest;

crate::protocol::empty_request!(
    /// `unregister` takes an empty object (or no body).
    UnregisterRequest
);

impl Operation for UnregisterRequest {
    const NAME: &'static str = "unregister";
    const SUMMARY: &'static str = "Removes a system and closes its clients (4001)";
    const TAG: &'static str = "systems";
    type Caller = SystemCaller;
    type Reply = EmptyList;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        node.directory.unregister(caller.system_id).await?;
        Ok(EmptyList)
    }
}
