//! `get_system`: a system's settings (less the webhook's secret) and its client count.

use super::Operation;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::SystemInfo;

pub type Request = GetSystemRequest;

crate::protocol::empty_request!(
    /// `get_system` takes an empty object (or no body).
    GetSystemRequest
);

impl Operation for GetSystemRequest {
    const NAME: &'static str = "get_system";
    const SUMMARY: &'static str = "A system's settings and client count";
    type Caller = SystemCaller;
    type Reply = SystemInfo;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<SystemInfo, ApiError> {
        hub.backplane
            .get_system(m::GetSystem {
                system_id: caller.system_id,
            })
            .await
    }
}
