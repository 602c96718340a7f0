//! `get_online_list`: the members of a group, on every node.

use serde::Deserialize;

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{check_group, CheckLimits, Name, OnlineList, OverLimit};

pub type Request = GetOnlineListRequest;

/// `get_online_list`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetOnlineListRequest {
    pub group_name: Name,
}

impl CheckLimits for GetOnlineListRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)
    }
}

impl Operation for GetOnlineListRequest {
    const NAME: &'static str = "get_online_list";
    const SUMMARY: &'static str = "The members of a group";
    const TAG: &'static str = "groups";
    type Caller = SystemCaller;
    type Reply = OnlineList;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<OnlineList, ApiError> {
        node.directory
            .members(caller.system_id, self.group_name.into_inner())
            .await
    }
}
