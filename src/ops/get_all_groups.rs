//! `get_all_groups`: every group of the system and its members, on every node.

use super::Operation;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::AllGroups;

pub type Request = GetAllGroupsRequest;

crate::protocol::empty_request!(
    /// `get_all_groups` takes an empty object (or no body).
    GetAllGroupsRequest
);

impl Operation for GetAllGroupsRequest {
    const NAME: &'static str = "get_all_groups";
    const SUMMARY: &'static str = "Every group of the system and its members";
    type Caller = SystemCaller;
    type Reply = AllGroups;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<AllGroups, ApiError> {
        hub.backplane
            .get_all_groups(m::GetAllGroups {
                system_id: caller.system_id,
            })
            .await
            .map(AllGroups)
    }
}
