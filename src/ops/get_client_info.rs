//! `get_client_info`: one client's state (online, userId, extend, groups), wherever it is
//! connected.

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;
use crate::protocol::ClientInfo;

pub type Request = GetClientInfoRequest;

crate::protocol::client_request!(
    /// `get_client_info`.
    GetClientInfoRequest
);

impl Operation for GetClientInfoRequest {
    const NAME: &'static str = "get_client_info";
    const SUMMARY: &'static str = "One client's state";
    const TAG: &'static str = "clients";
    type Caller = SystemCaller;
    type Reply = ClientInfo;
    type Command = GetClientInfo;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<ClientInfo, ApiError> {
        let client_id = self.client_id.into_inner();
        let command = GetClientInfo {
            system_id: caller.system_id,
            client_id: client_id.clone(),
        };
        match super::on_owner(node, &client_id, command).await {
            // No node owns it (or its node is gone): it is not connected.
            Err(ApiError::NotFound(_)) => Ok(ClientInfo::Offline {
                online: false,
                client_id,
            }),
            info => info,
        }
    }
}

/// One client's state, read on the node that owns it.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<ClientInfo>")]
pub struct GetClientInfo {
    pub system_id: String,
    pub client_id: String,
}

impl ClientCommand for GetClientInfo {
    const METHOD: &'static str = GetClientInfoRequest::NAME;
    type Reply = ClientInfo;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<GetClientInfo> for SystemRegistry {
    type Result = RegistryResult<ClientInfo>;
    fn handle(&mut self, cmd: GetClientInfo, _: &mut Context<Self>) -> Self::Result {
        Ok(self.tenant(&cmd.system_id)?.client_info(cmd.client_id))
    }
}
