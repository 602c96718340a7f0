//! `unbind_from_group`: removes a client from a group (1002 to the members left).

use serde::Deserialize;

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::{check_group, CheckLimits, EmptyList, Name, OverLimit};

pub type Request = UnbindFromGroupRequest;

/// `unbind_from_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnbindFromGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
}

impl CheckLimits for UnbindFromGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)
    }
}

impl Operation for UnbindFromGroupRequest {
    const NAME: &'static str = "unbind_from_group";
    const SUMMARY: &'static str = "Unbinds a client from a group (1002 to those left)";
    type Caller = SystemCaller;
    type Reply = EmptyList;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        hub.backplane
            .unbind_from_group(m::UnbindFromGroup {
                system_id: caller.system_id,
                client_id: self.client_id.into_inner(),
                group_name: self.group_name.into_inner(),
            })
            .await?;
        Ok(EmptyList)
    }
}
