//! `get_client_info`: one client's state (online, userId, extend, groups), wherever it is
//! connected.

use super::Operation;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::ClientInfo;

pub type Request = GetClientInfoRequest;

crate::protocol::client_request!(
    /// `get_client_info`.
    GetClientInfoRequest
);

impl Operation for GetClientInfoRequest {
    const NAME: &'static str = "get_client_info";
    const SUMMARY: &'static str = "One client's state";
    type Caller = SystemCaller;
    type Reply = ClientInfo;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<ClientInfo, ApiError> {
        hub.backplane
            .get_client_info(m::GetClientInfo {
                system_id: caller.system_id,
                client_id: self.client_id.into_inner(),
            })
            .await
    }
}
