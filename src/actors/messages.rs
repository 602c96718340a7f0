//! Every message the actors exchange, with its result type, in one place.
//!
//! Direction: the backplane and the directory → [`SystemRegistry`](super::registry::SystemRegistry)
//! (systems, membership reads, `Deliver`; the commands on one client are in their methods' files
//! under `crate::ops`), sessions → registry (`Connect`, `Disconnect`), registry →
//! [`Group`](super::group::Group) (`Join`, `Leave`, `Broadcast`), and registry or group →
//! session ([`SessionCommand`](super::outbox::SessionCommand), next to the handle that carries it). Frames travel as pre-serialized [`ByteString`]s shared by all
//! recipients, through each session's outbox rather than its mailbox.

use actix::Message;
use bytestring::ByteString;

use super::outbox::SessionHandle;
use crate::actors::outward::Offline;
use crate::protocol::{AllGroups, OnlineList, SystemInfo};
use crate::settings::{SettingsUpdate, SystemSettings};

/// Why the registry refused an operation; mapped to 403 / 409 / 404 at the REST edge.
#[derive(Debug, Clone, PartialEq, Eq, derive_more::Display)]
pub enum RegistryError {
    #[display("system '{_0}' is not registered")]
    UnknownSystem(String),
    #[display("system '{_0}' is already registered")]
    SystemExists(String),
    #[display("clientId '{_0}' is not connected in this system")]
    UnknownClient(String),
    #[display("clientId '{client_id}' is already in {limit} groups, the most allowed (--max-groups-per-client)")]
    TooManyGroups { client_id: String, limit: usize },
    #[display("group '{group_name}' already has {limit} clients, the most allowed (--max-clients-per-group)")]
    GroupFull { group_name: String, limit: usize },
    #[display("userId: clientId '{client_id}' has userId '{user_id}' from its client token, which no bind may change")]
    UserFixed { client_id: String, user_id: String },
    /// The system store could not be written: nothing was changed.
    #[display("{_0}")]
    Storage(String),
}

pub type RegistryResult<T> = Result<T, RegistryError>;

// ---------------------------------------------------------------------------------------------
// Connection → session

/// actix-http dropped the connection's body: the connection is gone (sent by
/// [`ConnectionBody`](super::connection::ConnectionBody) to its session).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectionGone;

// ---------------------------------------------------------------------------------------------
// Session → registry

/// A session has started and asks to be registered. The registry answers by pushing the welcome
/// frame (success) or a refusal close to the session, so the welcome is always the first frame
/// and the client is addressable from the moment it is written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub system_id: Option<String>,
    pub client_id: String,
    /// Preset by a client token's `userId` claim.
    pub user_id: Option<String>,
    pub session: SessionHandle,
    pub recovery: RecoveryRequest,
}

/// What a connecting client asked of connection state recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryRequest {
    /// Nothing (or recovery is off): a plain session.
    None,
    /// `recovery=1`: a new session that may be resumed.
    Fresh,
    /// `resume=<token>&last=<messageId>`: come back as the client the token names.
    /// `past_limits`: let past a full connection gate because the client is away (counted
    /// already); if the resume then fails, the connection is closed with 1013 rather than
    /// becoming a new client over the limits.
    Resume {
        token: String,
        last: Option<String>,
        past_limits: bool,
    },
    /// A resume already known to fail (its node is gone): a fresh session saying why.
    Failed(crate::protocol::ResumeRefusal),
}

impl RecoveryRequest {
    pub fn wanted(&self) -> bool {
        *self != RecoveryRequest::None
    }
}

/// Whether `token` resumes a client of `system_id` that this node holds (away, or connected
/// on a half-open socket): such a resume may pass a full connection gate.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct HoldsResumable {
    pub system_id: String,
    pub token: String,
}

/// A group could not queue a frame for this client: its outbound queue is full. Idempotent.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientOverflowed {
    pub system_id: String,
    pub client_id: String,
}

/// The server is shutting down: close every client with 1001. Result: how many were closed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown;

/// A session has stopped (closed, dropped, timed out). Idempotent; ignored when the client has
/// moved on to another session (a resume).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub system_id: String,
    pub client_id: String,
    /// How it went: `client_offline`'s reason and code.
    pub offline: Offline,
    /// The session's outbox: which session of the client this was.
    pub outbox: std::sync::Arc<super::outbox::Outbox>,
}

/// A text frame from a client: a `client_message` event if its system's webhook asks for it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ClientMessage {
    pub system_id: String,
    pub client_id: String,
    pub text: ByteString,
}

// ---------------------------------------------------------------------------------------------
// Directory → registry: systems and membership on one node (the commands on one client are in
// their methods' files, `crate::ops`)

/// Registers a system with its settings (on one node, written to the store before the reply).
#[derive(Debug, Message)]
#[rtype(result = "RegistryResult<()>")]
pub struct Register {
    pub system_id: String,
    pub settings: SystemSettings,
}

/// Changes a system's settings. Result: the settings now.
#[derive(Debug, Message)]
#[rtype(result = "RegistryResult<SystemSettings>")]
pub struct UpdateSystem {
    pub system_id: String,
    pub update: SettingsUpdate,
}

/// A system's settings and how many clients it has here.
#[derive(Debug, Message)]
#[rtype(result = "RegistryResult<SystemInfo>")]
pub struct GetSystem {
    pub system_id: String,
}

/// Removes a system: its clients are closed with 4001, its groups and settings are gone.
#[derive(Debug, Message)]
#[rtype(result = "RegistryResult<()>")]
pub struct Unregister {
    pub system_id: String,
}

#[derive(Message)]
#[rtype(result = "RegistryResult<OnlineList>")]
pub struct GetOnlineList {
    pub system_id: String,
    pub group_name: String,
}

/// Result: groupName → member clientIds, for this system only.
#[derive(Message)]
#[rtype(result = "RegistryResult<AllGroups>")]
pub struct GetAllGroups {
    pub system_id: String,
}

/// Whom a broadcast reaches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Audience {
    /// The members of one group.
    Group(String),
    /// Every client of the system.
    System,
}

/// Delivers a frame to this node's clients in `audience`. Result: how many there are here.
#[derive(Message)]
#[rtype(result = "RegistryResult<usize>")]
pub struct Deliver {
    pub system_id: String,
    pub audience: Audience,
    pub frame: ByteString,
}

// ---------------------------------------------------------------------------------------------
// Operations

/// Reports every client and its groups to the mirror again, as [`Event`](super::events::Event)s
/// (the mirror lost them: in a cluster, Redis came back empty or from an older copy).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReportAll;

/// Counts of what the registry holds, for `/healthz`, operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RegistryStats {
    pub systems: usize,
    pub clients: usize,
    pub groups: usize,
    /// Recovery clients whose connection is lost and whose window is open (counted among
    /// `clients`; for the metrics, not `/healthz`).
    #[serde(skip)]
    pub away: usize,
    /// What away clients hold together (for the metrics).
    #[serde(skip)]
    pub away_bytes: usize,
    /// Whether the system store takes writes (`None`: systems are kept in memory only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreHealth>,
}

/// `/healthz`'s `store`: whether its last write succeeded (the log says why one failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreHealth {
    Ok,
    Failing,
}

#[derive(Message)]
#[rtype(result = "RegistryStats")]
pub struct GetStats;

/// Connected clients per system, for the metrics.
#[derive(Message)]
#[rtype(result = "Vec<(String, usize)>")]
pub struct GetSystemClients;

// ---------------------------------------------------------------------------------------------
// Registry → group

/// Adds a member, then sends `notice` (1001), if any, to every member, the new one included.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub client_id: String,
    pub session: SessionHandle,
    pub notice: Option<ByteString>,
}

/// Removes a member, then sends `notice` (1002), if any, to the members that remain.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub client_id: String,
    pub notice: Option<ByteString>,
}

/// A member resumed on a new session: deliver to `session` from now on. Nobody is told.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rejoin {
    pub client_id: String,
    pub session: SessionHandle,
}

/// Sends a frame to every member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Broadcast {
    pub frame: ByteString,
}
