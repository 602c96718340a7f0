//! The actors: one [`session::WsSession`] per WebSocket, one [`registry::SystemRegistry`] that
//! owns all state, and one supervised [`group::Group`] per group that fans frames out. This layer
//! imports nothing above it (the architecture test checks): the commands on one client are
//! defined, with their registry handlers, in their methods' files under `crate::ops`.
//!
//! [`messages`] holds the other messages (sessions, groups, and the backplane's and directory's
//! own: systems, membership reads, `Deliver`); [`outbox`] bounds what may wait for one session;
//! [`history`] is what a recovery client's outbox keeps for a resume; [`connection`] is a
//! session's connection as actix-http sees it (the body that writes the outbox, the stream of
//! client frames, which [`frame_guard`] keeps bounded); [`wakeups`] decides when a session with
//! frames waiting is woken; [`events`] is what the registry reports about its clients, in order,
//! for a mirror (the cluster); [`outward`] is where events for backends leave (webhooks, MQTT);
//! [`reach`] is what keeps a session's client reachable (its lease, or its relay);
//! [`tenant`] and [`resume`] are the registry's state as plain data (a system's members, the
//! resume tokens); [`presence`] is what counts for a user, and one node's keeper of who is online; [`away`] bounds what every away recovery client holds together; [`bucket`] is
//! how fast a client may send.

pub mod away;
pub mod bucket;
pub mod connection;
pub mod events;
pub mod frame_guard;
pub mod group;
pub mod history;
pub mod messages;
pub mod outbox;
pub mod outward;
pub mod presence;
pub mod reach;
pub mod registry;
pub mod resume;
pub mod session;
pub mod tenant;
#[doc(hidden)]
pub mod testing;
pub mod wakeups;
