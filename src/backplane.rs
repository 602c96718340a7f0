//! The seam between *what an operation does* (its file in [`crate::ops`]) and *where it runs*:
//! on this node, on the node that owns a client, or on every node with members of a group or
//! system. Two traits, each implemented for one node ([`memory`]) and for several nodes sharing
//! Redis ([`crate::cluster::Cluster`]):
//!
//! - [`Backplane`] only routes: a fresh clientId, making a connecting client reachable, where a
//!   resume token's client lives, a [`Command`] run on the node that owns a client, and a frame
//!   delivered to the members of a group or system wherever they are.
//! - [`Directory`] holds what every node must agree on: the registered systems with their
//!   settings, and who is in which group.
//!
//! So no operation asks whether the server is clustered, and local delivery always ends in this
//! node's registry. A command carried to another node travels in its wire form (serde) and its
//! reply comes back the same way, read as the command's own reply type by [`crate::ops`]: no
//! untyped value crosses between nodes.
//!
//! [`SystemRegistry`]: crate::actors::registry::SystemRegistry

pub mod memory;

use std::any::Any;

use actix::Addr;
use bytestring::ByteString;
use futures_util::future::LocalBoxFuture;

use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;
use crate::protocol::{AllGroups, OnlineList, SystemInfo};
use crate::settings::{SettingsUpdate, SystemSettings};

/// What a backplane call resolves to. Not `Send`: calls run on the HTTP worker that made them.
pub type Reply<'a, T> = LocalBoxFuture<'a, Result<T, ApiError>>;

pub use crate::actors::reach::{Lease, Relay, RelayedResume};

/// Where the client a resume token names lives.
pub enum TokenHome {
    /// Here (or nowhere): this node's registry resumes it, or says why not.
    Here,
    /// On a node that is gone: the resume fails with `node_lost`.
    Lost,
    /// On another live node: the connection is relayed there.
    Elsewhere(Box<dyn Relay>),
}

/// A command for the registry of the node that owns a client (`send_to_client`, `bind_to_group`,
/// ...). Each is a type of [`crate::ops`]; the backplane runs it here, or carries it to the
/// owner in its wire form (which that node reads back with the [`Decoder`] it was given).
pub trait Command: Send + 'static {
    /// Its method's name, which tags its wire form.
    fn method(&self) -> &'static str;
    /// The system it acts on: the node that runs it must know that system.
    fn system_id(&self) -> &str;
    /// Whether it changes group membership (a cluster refuses such a command while it cannot
    /// write what changed, and answers once it has).
    fn changes_membership(&self) -> bool;
    /// Its wire form, for another node.
    fn encode(&self) -> String;
    /// Runs it in this node's registry.
    fn apply(
        self: Box<Self>,
        registry: &Addr<SystemRegistry>,
    ) -> LocalBoxFuture<'static, Result<Box<dyn ReplyValue>, ApiError>>;
}

/// Reads a command another node sent: its method's name and its [`Command::encode`] form.
pub type Decoder = fn(&str, &str) -> Result<Box<dyn Command>, String>;

/// A command's reply: kept as the value it is, or written out for the node that asked.
pub trait ReplyValue: Send {
    fn encode(&self) -> String;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: serde::Serialize + Send + 'static> ReplyValue for T {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// What a [`Command`] resolved to: its reply, as the value (it ran here) or as its wire form (it
/// ran on another node). [`crate::ops`] reads either back as the command's reply type.
pub enum Answer {
    Here(Box<dyn ReplyValue>),
    Remote(String),
}

pub use crate::actors::messages::Audience;

/// clientIds split by the node that owns them.
#[derive(Debug, Default)]
pub struct ByOwner {
    /// One list per node, each non-empty.
    pub owned: Vec<Vec<String>>,
    /// Ids no node could own (not connected anywhere).
    pub unowned: Vec<String>,
}

/// Where an operation runs. See the module docs.
pub trait Backplane: Send + Sync {
    /// A fresh clientId for a client connecting to this node (in a cluster, it names the node).
    fn new_client_id(&self) -> String;

    /// Called during the handshake, before the upgrade, for a client that asks for
    /// `system_id`: once it resolves, a client of this system is reachable as soon as the
    /// registry admits it. An unknown system is not an error here (the registry refuses the
    /// client as usual); being unable to make the client reachable is (503).
    fn make_reachable<'a>(&'a self, system_id: &'a str, client_id: &'a str) -> Reply<'a, Lease>;

    /// Where the client a resume token names lives (a token starts with its node's id).
    fn token_home(self: std::sync::Arc<Self>, _token: String) -> Reply<'static, TokenHome> {
        Box::pin(async { Ok(TokenHome::Here) })
    }

    /// Runs `command` on the node that owns `client_id`. A clientId no node owns, or whose node
    /// is gone, is not connected (404).
    fn on_owner<'a>(&'a self, client_id: &'a str, command: Box<dyn Command>) -> Reply<'a, Answer>;

    /// Runs `command` on every live node, this one included, and resolves to their answers:
    /// for what is spread over nodes by user rather than by clientId (a user's connections,
    /// which may be on any node). A node that is gone holds nothing and is left out; one that
    /// does not answer fails the call (503) rather than make a partial answer look whole.
    fn on_every_node(&self, command: Box<dyn Command>) -> Reply<'_, Vec<Answer>>;

    /// Splits clientIds by the node that owns them, to run one command per node.
    fn by_owner(&self, client_ids: Vec<String>) -> ByOwner;

    /// Delivers `frame` to `audience` on every node that has some of it; resolves to how many
    /// clients that is in all.
    fn to_members<'a>(
        &'a self,
        system_id: &'a str,
        audience: Audience,
        frame: ByteString,
    ) -> Reply<'a, usize>;
}

/// What every node must agree on: registered systems and their settings, and group membership.
/// One node keeps it in its registry (and the store); a cluster keeps it in Redis.
pub trait Directory: Send + Sync {
    /// Fails with 409 when the system exists.
    fn register(&self, system_id: String, settings: SystemSettings) -> Reply<'_, ()>;
    /// Resolves to the settings now, taken by every node.
    fn update(&self, system_id: String, update: SettingsUpdate) -> Reply<'_, SystemSettings>;
    /// Resolves once the system is gone from every node, its clients closed (4001).
    fn unregister(&self, system_id: String) -> Reply<'_, ()>;
    /// Its settings and its clients, on every node.
    fn system(&self, system_id: String) -> Reply<'_, SystemInfo>;
    /// A group's members, on every node.
    fn members(&self, system_id: String, group_name: String) -> Reply<'_, OnlineList>;
    /// Every group with members, and the members.
    fn groups(&self, system_id: String) -> Reply<'_, AllGroups>;
}
