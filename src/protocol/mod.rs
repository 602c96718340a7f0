//! Wire types shared by more than one part of the server: [`frames`] (what is pushed to
//! clients), [`rest`] (what REST bodies and replies share) and [`cursor`] (pagination). Each REST method's own request and
//! reply live in its file under [`crate::ops`]. See `socket.md` for the contract.
//!
//! Bodies are parsed once, at the edge, into typed requests; frames are serialized once, into
//! [`bytestring::ByteString`]s that every recipient shares.

pub mod cursor;
pub mod frames;
pub mod rest;

pub use frames::*;
pub use rest::*;
