//! `list_clients`: every client of the system, userless ones included, paginated, on every
//! node: what a backend that missed events re-reads.

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::cursor::{check_page, page, page_size};
use crate::protocol::{CheckLimits, OverLimit};

pub type Request = ListClientsRequest;

/// `list_clients`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListClientsRequest {
    /// The previous page's `cursor`, unchanged; absent or null for the first page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Clients per page, 1 to 10,000 (default 1,000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10_000)]
    pub limit: Option<i64>,
}

impl CheckLimits for ListClientsRequest {
    fn check_limits(&self, _: &Limits) -> Result<(), OverLimit> {
        check_page(self.cursor.as_deref(), self.limit)
    }
}

/// One client in `list_clients`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedClient {
    pub client_id: String,
    pub user_id: String,
    pub groups: Vec<String>,
    /// Unix time in milliseconds.
    pub connected_at: u64,
    /// False while a recovery client is away.
    pub connected: bool,
}

/// `data` of `list_clients`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListedClients {
    /// In clientId order.
    pub clients: Vec<ListedClient>,
    /// For the next page; null on the last.
    pub cursor: Option<String>,
}

impl Operation for ListClientsRequest {
    const NAME: &'static str = "list_clients";
    const SUMMARY: &'static str = "Every client of the system, paginated";
    const TAG: &'static str = "clients";
    type Caller = SystemCaller;
    type Reply = ListedClients;
    type Command = ClientsAfter;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<ListedClients, ApiError> {
        let size = page_size(self.limit)?;
        let query = format!("{}\n{}", Self::NAME, caller.system_id);
        let after = self
            .cursor
            .as_deref()
            .map(|cursor| node.cursors.open(&query, cursor))
            .transpose()?;
        // One more than a page from each node: the page's clients are among them, and whether
        // more remain shows.
        let command = ClientsAfter {
            system_id: caller.system_id,
            after,
            limit: size + 1,
        };
        let mut clients: Vec<ListedClient> = super::on_every_node(node, command)
            .await?
            .into_iter()
            .flatten()
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        let (clients, cursor) = page(
            clients,
            |client| &client.client_id,
            None,
            size,
            |last| node.cursors.sign(&query, last),
        );
        Ok(ListedClients { clients, cursor })
    }
}

/// This node's first `limit` clients of a system in clientId order after `after`.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<Vec<ListedClient>>")]
pub struct ClientsAfter {
    pub system_id: String,
    pub after: Option<String>,
    pub limit: usize,
}

impl ClientCommand for ClientsAfter {
    const METHOD: &'static str = ListClientsRequest::NAME;
    type Reply = Vec<ListedClient>;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<ClientsAfter> for SystemRegistry {
    type Result = RegistryResult<Vec<ListedClient>>;
    fn handle(&mut self, cmd: ClientsAfter, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .tenant(&cmd.system_id)?
            .clients_after(cmd.after.as_deref(), cmd.limit)
            .into_iter()
            .map(|(client_id, client)| ListedClient {
                client_id: client_id.clone(),
                user_id: client.user_id.clone(),
                groups: client.groups.iter().cloned().collect(),
                connected_at: client.connected_at,
                connected: client.away.is_none(),
            })
            .collect())
    }
}
