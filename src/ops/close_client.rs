//! `close_client`: closes a client's connection (1000), wherever it is connected.

use super::Operation;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::http::extract::SystemCaller;
use crate::hub::Hub;
use crate::protocol::EmptyList;

pub type Request = CloseClientRequest;

crate::protocol::client_request!(
    /// `close_client`.
    CloseClientRequest
);

impl Operation for CloseClientRequest {
    const NAME: &'static str = "close_client";
    const SUMMARY: &'static str = "Closes a client's connection (1000)";
    type Caller = SystemCaller;
    type Reply = EmptyList;

    async fn call(self, hub: &Hub, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        hub.backplane
            .close_client(m::CloseClient {
                system_id: caller.system_id,
                client_id: self.client_id.into_inner(),
            })
            .await?;
        Ok(EmptyList)
    }
}
