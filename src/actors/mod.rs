//! The actors: one [`session::WsSession`] per WebSocket, one [`registry::SystemRegistry`] that
//! owns all state, and one supervised [`group::Group`] per group that fans frames out.
//! Their messages are all in [`messages`].

pub mod group;
pub mod messages;
pub mod registry;
pub mod session;
