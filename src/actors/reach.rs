//! What keeps a session's client reachable, as the session holds it: its [`Lease`] (in a
//! cluster, this node's subscription to the system's channel) or, for a connection relayed to
//! the node that holds its client, its [`Relay`]. The backplane makes them; the session only
//! holds and uses them.

use std::any::Any;

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

/// A connection relayed to the node that holds its client (a resume that reached another node).
/// The client stays where it was, so every call and broadcast reaches it as before; that node
/// sends this one the frames to write, and this one sends it what the connection does.
pub trait Relay: Send + std::fmt::Debug {
    /// Asks the client's node to resume it on `session`: it then pushes the welcome and every
    /// frame to `session`. Fails (`Err`) when that node does not answer: the connection should
    /// then be dropped, so the client tries again and learns the node is gone.
    fn open(
        &self,
        session: super::outbox::SessionHandle,
        resume: RelayedResume,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), ()>>;
    /// A text frame from the client (already within its rate).
    fn client_message(&self, text: bytestring::ByteString);
    /// The connection ended (how: `offline`).
    fn gone(&self, offline: crate::actors::outward::Offline);
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
