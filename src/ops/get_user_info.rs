//! `get_user_info`: every connection of a user, on every node.

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;

pub type Request = GetUserInfoRequest;

/// One connection of a user, in `get_user_info`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserConnection {
    pub client_id: String,
    pub groups: Vec<String>,
    /// Unix time in milliseconds.
    pub connected_at: u64,
    /// False while a recovery connection is away (lost, its window open).
    pub connected: bool,
    pub extend: String,
}

/// `data` of `get_user_info`: every connection of the user, on every node.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// True while any of its connections is connected.
    pub online: bool,
    pub user_id: String,
    /// Oldest first.
    pub clients: Vec<UserConnection>,
    /// Every group any of them is in, sorted.
    pub groups: Vec<String>,
}

super::user_request!(
    /// `get_user_info`.
    GetUserInfoRequest
);

impl Operation for GetUserInfoRequest {
    const NAME: &'static str = "get_user_info";
    const SUMMARY: &'static str = "A user's connections and groups";
    const TAG: &'static str = "users";
    type Caller = SystemCaller;
    type Reply = UserInfo;
    type Command = GetUserInfo;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<UserInfo, ApiError> {
        let user_id = self.user_id.into_inner();
        let command = GetUserInfo {
            system_id: caller.system_id,
            user_id: user_id.clone(),
        };
        let mut clients: Vec<UserConnection> = super::on_every_node(node, command)
            .await?
            .into_iter()
            .flatten()
            .collect();
        clients.sort_by(|a, b| (a.connected_at, &a.client_id).cmp(&(b.connected_at, &b.client_id)));
        let mut groups: Vec<String> = clients.iter().flat_map(|c| c.groups.clone()).collect();
        groups.sort();
        groups.dedup();
        Ok(UserInfo {
            online: clients.iter().any(|c| c.connected),
            user_id,
            clients,
            groups,
        })
    }
}

/// This node's connections of a user.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<Vec<UserConnection>>")]
pub struct GetUserInfo {
    pub system_id: String,
    pub user_id: String,
}

impl ClientCommand for GetUserInfo {
    const METHOD: &'static str = GetUserInfoRequest::NAME;
    type Reply = Vec<UserConnection>;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<GetUserInfo> for SystemRegistry {
    type Result = RegistryResult<Vec<UserConnection>>;
    fn handle(&mut self, cmd: GetUserInfo, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .tenant(&cmd.system_id)?
            .user_clients(&cmd.user_id)
            .map(|(client_id, client)| UserConnection {
                client_id: client_id.clone(),
                groups: client.groups.iter().cloned().collect(),
                connected_at: client.connected_at,
                connected: client.away.is_none(),
                extend: client.extend.clone(),
            })
            .collect())
    }
}
