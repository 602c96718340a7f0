//! `get_online_users`: the users online in a group or a system, with their connection counts,
//! paginated, on every node.

use std::collections::BTreeMap;

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::cursor::{check_page, page, page_size};
use crate::protocol::{check_group, CheckLimits, Name, OverLimit};

pub type Request = GetOnlineUsersRequest;

/// `get_online_users`: without `groupName`, the whole system.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetOnlineUsersRequest {
    #[serde(default)]
    pub group_name: Option<Name>,
    /// The previous page's `cursor`, unchanged; absent or null for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Users per page, 1 to 10,000 (default 1,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000)]
    pub limit: Option<i64>,
}

impl CheckLimits for GetOnlineUsersRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        if let Some(group) = &self.group_name {
            check_group(group, limits)?;
        }
        check_page(self.cursor.as_deref(), self.limit)
    }
}

/// One user in `get_online_users`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineUser {
    pub user_id: String,
    /// Its connections in the group (or system).
    pub clients: usize,
}

/// `data` of `get_online_users`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineUsers {
    /// In userId order.
    pub users: Vec<OnlineUser>,
    /// Users in the whole query, every page.
    pub user_count: usize,
    /// Their connections in the whole query (connections without a user not counted).
    pub client_count: usize,
    /// For the next page; null on the last.
    pub cursor: Option<String>,
}

impl Operation for GetOnlineUsersRequest {
    const NAME: &'static str = "get_online_users";
    const SUMMARY: &'static str = "The users online in a group or the system, paginated";
    const TAG: &'static str = "users";
    type Caller = SystemCaller;
    type Reply = OnlineUsers;
    type Command = UserCounts;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<OnlineUsers, ApiError> {
        let size = page_size(self.limit)?;
        let group_name = self.group_name.map(Name::into_inner);
        let query = format!(
            "{}\n{}\n{}",
            Self::NAME,
            caller.system_id,
            group_name.as_deref().unwrap_or_default()
        );
        let after = self
            .cursor
            .as_deref()
            .map(|cursor| node.cursors.open(&query, cursor))
            .transpose()?;
        let command = UserCounts {
            system_id: caller.system_id,
            group_name,
        };
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        for counts in super::on_every_node(node, command).await? {
            for (user_id, n) in counts {
                *users.entry(user_id).or_default() += n;
            }
        }
        let user_count = users.len();
        let client_count = users.values().sum();
        let sorted: Vec<OnlineUser> = users
            .into_iter()
            .map(|(user_id, clients)| OnlineUser { user_id, clients })
            .collect();
        let (users, cursor) = page(
            sorted,
            |user| &user.user_id,
            after.as_deref(),
            size,
            |last| node.cursors.sign(&query, last),
        );
        Ok(OnlineUsers {
            users,
            user_count,
            client_count,
            cursor,
        })
    }
}

/// This node's users in a group (or the system) with their connection counts here.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<Vec<(String, usize)>>")]
pub struct UserCounts {
    pub system_id: String,
    pub group_name: Option<String>,
}

impl ClientCommand for UserCounts {
    const METHOD: &'static str = GetOnlineUsersRequest::NAME;
    type Reply = Vec<(String, usize)>;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<UserCounts> for SystemRegistry {
    type Result = RegistryResult<Vec<(String, usize)>>;
    fn handle(&mut self, cmd: UserCounts, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .tenant(&cmd.system_id)?
            .user_counts(cmd.group_name.as_deref()))
    }
}
