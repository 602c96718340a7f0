//! What the registry reports about this node's clients, in the order it happened, for whoever
//! must mirror them elsewhere (in cluster mode, the writer that keeps Redis up to date).
//!
//! Owned by the registry: it is the only sender. The receiving end belongs to the cluster's
//! writer task and closes when the registry stops.

use bytestring::ByteString;
use tokio::sync::{mpsc, oneshot};

use super::presence::Change;

/// A change to local clients that the cluster must learn, in order.
#[derive(Debug)]
pub enum Event {
    Connected {
        system_id: String,
        client_id: String,
    },
    /// A client left (any reason). `notice` (1002) goes to each of its groups.
    Gone {
        system_id: String,
        client_id: String,
        groups: Vec<String>,
        notice: Option<ByteString>,
    },
    /// A client was bound (or re-bound), or is being written again by a resync: carries its
    /// whole membership, written as a whole, so one event restores one client. `joined`: it is
    /// a new member of `group_name`, whose members get `notice` (1001), if per connection.
    Bound {
        system_id: String,
        client_id: String,
        group_name: String,
        all_groups: Vec<String>,
        user_id: String,
        extend: String,
        joined: bool,
        notice: Option<ByteString>,
    },
    Unbound {
        system_id: String,
        client_id: String,
        group_name: String,
        notice: Option<ByteString>,
    },
    /// Connections began or stopped counting for their users (see
    /// [`super::presence`]); the mirror decides who arrived and who left. `rewrite`: a
    /// resync writing what this node holds again, which announces nothing.
    Presence {
        system_id: String,
        changes: Vec<Change>,
        rewrite: bool,
    },
    /// Answered once every event before it has been written: true if none of those writes
    /// was lost (Redis down), in which case the node will write everything again.
    Barrier(oneshot::Sender<bool>),
}

/// Where the registry sends [`Event`]s.
pub type EventSink = mpsc::UnboundedSender<Event>;
