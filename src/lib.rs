//! # wshub
//!
//! A WebSocket push server. Backends register *systems* (tenants); browsers and apps connect to
//! `/ws?systemId=…` and get a `clientId`; backends bind clients to *groups* and push messages to
//! a client, a list of clients, a group or a whole system over `POST /api/<method>`. The wire
//! protocol is that of goravel-socket / go-websocket, so their clients keep working; `socket.md`
//! is the manual.
//!
//! ## Map of the crate, and who owns what
//! - [`config`]: every setting; each default is written once, on its flag ([`config::Cli`] →
//!   [`Config`]).
//! - [`ops`]: the REST methods, one file each (its request and the limits checked on it, its
//!   reply, where it runs), and the one list that makes the method table, the token scopes, the
//!   routes and the OpenAPI paths. Its docs say how to add a method.
//! - [`protocol`]: the wire types more than one part shares: [`protocol::frames`] (pushed
//!   frames, serialized once and shared by every recipient; close codes; the envelope) and
//!   [`protocol::rest`] (names and their limits, the replies the registry and backplane make).
//! - [`auth`]: HS256 API and client tokens, optionally scoped to one system.
//! - [`http`]: the endpoints. [`http::api`] (the `/api` scope: [`ops`]' routes behind one
//!   middleware for shutdown, overload and metrics), [`http::ws`] (admission and the handshake;
//!   the standalone server's upgrades leave actix-http there), [`http::console`],
//!   [`http::docs`], [`http::operator`] (`/healthz`, `/metrics`); [`http::configure`] mounts
//!   `/ws` and `/api/*` in any actix-web app. [`error`] turns failures into the JSON envelope.
//! - [`hub`]: [`Hub`], the handle the HTTP layer holds: the registry's address, the
//!   [`ops::Node`] operations run with, settings, auth, metrics, the connection [`gate`].
//! - [`backplane`]: the one seam between what an operation does and where it runs: the
//!   [`backplane::Backplane`] routes (a command to the node that owns a client, a frame to the
//!   nodes with members) and the [`backplane::Directory`] holds what every node agrees on
//!   (systems, membership); [`backplane::memory`] for one node, [`cluster`] for many. Nothing
//!   above it asks whether the server is clustered.
//! - [`actors`]: the actor core. The [`actors::registry::SystemRegistry`] actor owns all state,
//!   as plain data ([`actors::tenant`], one `Tenant` per system, the one owner of membership);
//!   a supervised [`actors::group::Group`] per group does the fan-out; one
//!   [`actors::session::WsSession`] per connection reads its client and obeys commands.
//!   Commands are in [`actors::messages`]; frames reach a connection through its session's
//!   [`actors::outbox`], bounded in bytes, which the connection's body
//!   ([`actors::connection`]) writes to the socket; [`actors::wakeups`] decides when a
//!   connection is woken to write them; the registry reports changes to its clients as
//!   [`actors::events`].
//! - [`cluster`]: several nodes on one Redis, split by concern (keys, scripts, node calls,
//!   pub/sub, the membership writer, liveness).
//! - [`metrics`]: the Prometheus metrics served at `/metrics`; [`logging`]: text or JSON log
//!   lines, and the access log's target.
//! - [`server`]: [`Application`], the standalone server: binds first, then serves; built from
//!   actix-web's parts so that WebSocket upgrades can take their socket ([`http::ws::upgrade`]).
//!
//! ## The path of a group send
//! Each method says where it runs through the backplane's few primitives: a broadcast is
//! [`backplane::Backplane::to_members`], delivered by the registry's one
//! [`actors::messages::Deliver`] on whichever node has members; a call on one client is its
//! command (e.g. [`ops::bind_to_group::BindToGroup`]) run by
//! [`backplane::Backplane::on_owner`] on the node that owns it.
//!
//! ```text
//! One node (MemoryBackplane):
//!
//!   POST /api/send_to_group ─► ops::send_to_group            parse, check scope, encode the
//!        │                                                   frame once (ByteString)
//!        ▼
//!   backplane.to_members(Group(g), frame) ─► registry actor (Deliver): Tenant → members
//!        │                                          │  count, do_send(Broadcast)
//!        ▼                                          ▼
//!   200 {count}                                 Group actor ─► each member's Outbox
//!                                                 (push = one lock + one append; puts the
//!                                                  session on its thread's due list only if
//!                                                  its queue was empty)
//!                                                   │
//!                                                   ▼
//!                                               flusher (one per thread, actors::wakeups)
//!                                                 wakes due connections 64 at a time,
//!                                                 letting the next call in between rounds
//!                                                   │
//!                                                   ▼
//!                                               ConnectionBody takes the queue, encodes
//!                                                 it into one chunk ─► socket
//!
//! Several nodes (Cluster, Redis):
//!
//!   node A: ops::send_to_group ─► Cluster::to_members
//!              ├─► Redis: COUNT_AND_PUBLISH (one round trip: epoch check, member count
//!              │          across nodes, PUBLISH on sys:{system})
//!              └─► A's registry: Deliver ─► Group ─► Outbox ─► socket
//!   node B: subscribed to sys:{system} while it has clients of the system
//!              └─► pubsub::on_message ─► B's registry: the same Deliver ─► Group ─► …
//!
//!   A call on one client (send_to_client, bind, close, info) goes to the node named in its
//!   clientId: run there through its registry, or carried over Redis to node:{owner} as the
//!   same command (serde, read back by `ops::decode_command`) and answered on the caller's
//!   channel with its typed reply (serde) or the error itself.
//! ```
//!
//! ## Embedding
//! [`http::configure`] mounts `/ws` and `/api/*` in any actix-web app, served by a [`Hub`]
//! started once; `examples/embed.rs` is a whole host application (built by `cargo test`, run
//! with `cargo run --example embed`).

pub mod actors;
pub mod auth;
pub mod backplane;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gate;
pub mod http;
pub mod hub;
pub mod logging;
pub mod metrics;
pub mod mqtt;
pub mod ops;
pub mod protocol;
pub mod redis_endpoint;
pub mod server;
pub mod settings;
pub mod store;
pub mod webhooks;

pub use config::Config;
pub use hub::Hub;
pub use server::Application;
