//! The seam between *where clients live* (this node's [`SystemRegistry`]) and *how far an
//! operation travels* (this node only, or every node of a cluster).
//!
//! [`Hub`](crate::Hub) holds one `Arc<dyn Backplane>` and every REST operation goes through it,
//! as the typed command the registry itself handles (`actors::messages`). Two implementations:
//!
//! - [`memory::MemoryBackplane`]: a single node. Each call is the command sent to the registry.
//! - [`crate::cluster::Cluster`]: several nodes sharing Redis. A call on a client runs on the node
//!   that owns it (here, through the registry; elsewhere, the same command carried over Redis);
//!   a broadcast is delivered here through the registry and published once for the other nodes;
//!   membership reads come from Redis.
//!
//! So nothing above this trait asks whether the server is clustered, and local delivery always
//! ends in the registry's own handler for the command.
//!
//! [`SystemRegistry`]: crate::actors::registry::SystemRegistry

pub mod memory;

use std::any::Any;
use std::collections::BTreeMap;

use futures_util::future::LocalBoxFuture;

use crate::actors::messages as m;
use crate::error::ApiError;
use crate::protocol::{ClientInfo, OnlineList, SystemInfo};
use crate::settings::SystemSettings;

/// What a backplane call resolves to. Not `Send`: calls run on the HTTP worker that made them.
pub type Reply<'a, T> = LocalBoxFuture<'a, Result<T, ApiError>>;

/// Held by a session for its whole life: whatever the backplane needs to keep the client
/// reachable (in a cluster, this node's subscription to the system's channel).
pub struct Lease {
    _held: Option<Box<dyn Any + Send>>,
}

impl Lease {
    /// Nothing to hold.
    pub fn none() -> Lease {
        Lease { _held: None }
    }

    /// Holds `guard` until the lease is dropped.
    pub fn holding(guard: impl Any + Send) -> Lease {
        Lease {
            _held: Some(Box::new(guard)),
        }
    }
}

/// Where the client a resume token names lives.
pub enum TokenHome {
    /// Here (or nowhere): this node's registry resumes it, or says why not.
    Here,
    /// On a node that is gone: the resume fails with `node_lost`.
    Lost,
    /// On another live node: the connection is relayed there.
    Elsewhere(Box<dyn Relay>),
}

/// A connection relayed to the node that holds its client (a resume that reached another node).
/// The client stays where it was, so every call and broadcast reaches it as before; that node
/// sends this one the frames to write, and this one sends it what the connection does.
pub trait Relay: Send + std::fmt::Debug {
    /// Asks the client's node to resume it on `session`: it then pushes the welcome and every
    /// frame to `session`. Fails (`Err`) when that node does not answer: the connection should
    /// then be dropped, so the client tries again and learns the node is gone.
    fn open(
        &self,
        session: crate::actors::outbox::SessionHandle,
        resume: RelayedResume,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), ()>>;
    /// A text frame from the client (already within its rate).
    fn client_message(&self, text: bytestring::ByteString);
    /// The connection ended (how: `offline`).
    fn gone(&self, offline: crate::webhooks::Offline);
}

/// What a relayed resume asks of the client's node.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RelayedResume {
    pub system_id: String,
    pub token: String,
    pub last: Option<String>,
    /// From a client token, as in a local connect.
    pub user_id: Option<String>,
}

/// Every operation that may reach beyond this node's registry. See the module docs.
pub trait Backplane: Send + Sync {
    /// A fresh clientId for a client connecting to this node (in a cluster, it names the node).
    fn new_client_id(&self) -> String;

    /// Called during the handshake, before the upgrade, for a client that asks for
    /// `system_id`: once it resolves, a client of this system is reachable as soon as the
    /// registry admits it. An unknown system is not an error here (the registry refuses the
    /// client as usual); being unable to make the client reachable is (503).
    fn admit<'a>(&'a self, system_id: &'a str, client_id: &'a str) -> Reply<'a, Lease>;

    fn register(&self, cmd: m::Register) -> Reply<'_, ()>;
    /// Resolves to the settings now.
    fn update_system(&self, cmd: m::UpdateSystem) -> Reply<'_, SystemSettings>;
    fn get_system(&self, cmd: m::GetSystem) -> Reply<'_, SystemInfo>;
    /// Resolves once the system is gone from every node.
    fn unregister(&self, cmd: m::Unregister) -> Reply<'_, ()>;
    fn send_to_client(&self, cmd: m::SendToClient) -> Reply<'_, ()>;
    /// Resolves to the clientIds that are not connected.
    fn send_to_clients(&self, cmd: m::SendToClients) -> Reply<'_, Vec<String>>;
    /// Resolves to the number of members the frame went to.
    fn send_to_group(&self, cmd: m::SendToGroup) -> Reply<'_, usize>;
    /// Resolves to the number of clients the frame went to.
    fn send_to_system(&self, cmd: m::SendToSystem) -> Reply<'_, usize>;
    fn bind_to_group(&self, cmd: m::BindToGroup) -> Reply<'_, ()>;
    fn unbind_from_group(&self, cmd: m::UnbindFromGroup) -> Reply<'_, ()>;
    fn get_online_list(&self, cmd: m::GetOnlineList) -> Reply<'_, OnlineList>;
    fn get_all_groups(&self, cmd: m::GetAllGroups) -> Reply<'_, BTreeMap<String, Vec<String>>>;
    fn close_client(&self, cmd: m::CloseClient) -> Reply<'_, ()>;
    fn get_client_info(&self, cmd: m::GetClientInfo) -> Reply<'_, ClientInfo>;

    /// Where the client a resume token names lives (a token starts with its node's id).
    fn token_home(self: std::sync::Arc<Self>, _token: String) -> Reply<'static, TokenHome> {
        Box::pin(async { Ok(TokenHome::Here) })
    }
}
