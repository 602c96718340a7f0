//! `close_user`: closes every connection of a user (1000), on every node.

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;

pub type Request = CloseUserRequest;

/// `data` of `close_user`: how many connections were closed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClosedCount {
    pub count: usize,
}

super::user_request!(
    /// `close_user`.
    CloseUserRequest
);

impl Operation for CloseUserRequest {
    const NAME: &'static str = "close_user";
    const SUMMARY: &'static str = "Closes every connection of a user (1000)";
    const TAG: &'static str = "users";
    type Caller = SystemCaller;
    type Reply = ClosedCount;
    type Command = CloseUser;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<ClosedCount, ApiError> {
        let command = CloseUser {
            system_id: caller.system_id,
            user_id: self.user_id.into_inner(),
        };
        let counts = super::on_every_node(node, command).await?;
        Ok(ClosedCount {
            count: counts.into_iter().sum(),
        })
    }
}

/// Closes this node's connections of a user, away ones included, as `close_client` does: each
/// is removed at once, so the reply reflects it. Result: how many.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<usize>")]
pub struct CloseUser {
    pub system_id: String,
    pub user_id: String,
}

impl ClientCommand for CloseUser {
    const METHOD: &'static str = CloseUserRequest::NAME;
    const CHANGES_MEMBERSHIP: bool = true;
    type Reply = usize;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<CloseUser> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, cmd: CloseUser, _: &mut Context<Self>) -> Self::Result {
        let clients: Vec<String> = self
            .tenant(&cmd.system_id)?
            .user_clients(&cmd.user_id)
            .map(|(client_id, _)| client_id.clone())
            .collect();
        Ok(clients
            .iter()
            .filter(|client_id| self.close_by_rest(&cmd.system_id, client_id))
            .count())
    }
}
