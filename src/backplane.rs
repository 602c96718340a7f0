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
}
