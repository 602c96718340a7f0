//! `close_client`: closes a client's connection (1000), wherever it is connected.

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::{RegistryError, RegistryResult};
use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;
use crate::protocol::EmptyList;

pub type Request = CloseClientRequest;

crate::protocol::client_request!(
    /// `close_client`.
    CloseClientRequest
);

impl Operation for CloseClientRequest {
    const NAME: &'static str = "close_client";
    const SUMMARY: &'static str = "Closes a client's connection (1000)";
    const TAG: &'static str = "clients";
    const ERRORS: &'static [u16] = &[400, 401, 403, 404, 405, 413, 503];
    type Caller = SystemCaller;
    type Reply = EmptyList;
    type Command = CloseClient;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        let client_id = self.client_id.into_inner();
        let command = CloseClient {
            system_id: caller.system_id,
            client_id: client_id.clone(),
        };
        super::on_owner(node, &client_id, command).await?;
        Ok(EmptyList)
    }
}

/// Closes a client (1000) on the node that owns it; removed at once, so the reply reflects it.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<()>")]
pub struct CloseClient {
    pub system_id: String,
    pub client_id: String,
}

impl ClientCommand for CloseClient {
    const METHOD: &'static str = CloseClientRequest::NAME;
    const CHANGES_MEMBERSHIP: bool = true;
    type Reply = ();
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<CloseClient> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, cmd: CloseClient, _: &mut Context<Self>) -> Self::Result {
        self.tenant(&cmd.system_id)?;
        if !self.close_by_rest(&cmd.system_id, &cmd.client_id) {
            return Err(RegistryError::UnknownClient(cmd.client_id.clone()));
        }
        Ok(())
    }
}
