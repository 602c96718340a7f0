//! `bind_to_group`: adds a client to a group, with the userId and extend its members see (1001
//! to every member, the new one included).

use serde::Deserialize;

use super::Operation;
use crate::actors::messages as m;
use crate::config::Limits;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::{check_group, check_len, check_user_id, CheckLimits, EmptyList, Name, OverLimit};

pub type Request = BindToGroupRequest;

/// `bind_to_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindToGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub extend: String,
}


impl CheckLimits for BindToGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)?;
        check_user_id("userId", &self.user_id, limits)?;
        check_len("extend", &self.extend, limits.max_extend_len)
    }
}

impl Operation for BindToGroupRequest {
    const NAME: &'static str = "bind_to_group";
    const SUMMARY: &'static str = "Binds a client to a group (1001 to its members)";
    type Caller = SystemCaller;
    type Reply = EmptyList;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        hub.backplane
            .bind_to_group(m::BindToGroup {
                system_id: caller.system_id,
                client_id: self.client_id.into_inner(),
                group_name: self.group_name.into_inner(),
                user_id: self.user_id,
                extend: self.extend,
            })
            .await?;
        Ok(EmptyList)
    }
}
