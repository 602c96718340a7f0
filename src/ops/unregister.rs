//! `unregister`: removes a system; its clients are closed with 4001.

use super::Operation;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::EmptyList;

pub type Request = UnregisterRequest;

crate::protocol::empty_request!(
    /// `unregister` takes an empty object (or no body).
    UnregisterRequest
);

impl Operation for UnregisterRequest {
    const NAME: &'static str = "unregister";
    const SUMMARY: &'static str = "Removes a system and closes its clients (4001)";
    type Caller = SystemCaller;
    type Reply = EmptyList;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        hub.backplane
            .unregister(m::Unregister {
                system_id: caller.system_id,
            })
            .await?;
        Ok(EmptyList)
    }
}
