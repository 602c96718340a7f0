//! `get_all_groups`: every group of the system and its members, on every node.

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::error::ApiError;
use crate::protocol::AllGroups;

pub type Request = GetAllGroupsRequest;

crate::protocol::empty_request!(
    /// `get_all_groups` takes an empty object (or no body).
    GetAllGroupsRequest
);

impl Operation for GetAllGroupsRequest {
    const NAME: &'static str = "get_all_groups";
    const SUMMARY: &'static str = "Every group of the system and its members";
    const TAG: &'static str = "groups";
    type Caller = SystemCaller;
    type Reply = AllGroups;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<AllGroups, ApiError> {
        node.directory.groups(caller.system_id).await
    }
}
