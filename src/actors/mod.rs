//! The actors: one [`session::WsSession`] per WebSocket, one [`registry::SystemRegistry`] that
//! owns all state, and one supervised [`group::Group`] per group that fans frames out.
//! Their messages are all in [`messages`]; [`outbox`] bounds what may wait for one session;
//! [`wakeups`] decides when a session with frames waiting is woken; [`events`] is what the registry reports about its clients, in order; [`tenant`] and
//! [`resume`] are the registry's state as plain data (a system's members, the resume tokens).

pub mod events;
pub mod group;
pub mod messages;
pub mod outbox;
pub mod registry;
pub mod resume;
pub mod session;
pub mod tenant;
#[doc(hidden)]
pub mod testing;
pub mod wakeups;
