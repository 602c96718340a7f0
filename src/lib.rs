//! # wshub
//!
//! A WebSocket push server. Backends register *systems* (tenants); browsers and apps connect to
//! `/ws?systemId=…` and get a `clientId`; backends bind clients to *groups* and push messages to
//! a client, a list of clients, a group or a whole system over `POST /api/<method>`. The wire
//! protocol is that of goravel-socket / go-websocket, so their clients keep working; `socket.md`
//! is the manual.
//!
//! ## Map of the crate
//! - [`config`]: every setting, from flags and environment ([`config::Cli`] → [`Config`]).
//! - [`protocol`]: the wire types — request bodies, pushed frames, reply envelopes.
//! - [`auth`]: HS256 API tokens, optionally scoped to one system.
//! - [`actors`]: the actor core. [`actors::session::WsSession`] per connection,
//!   [`actors::registry::SystemRegistry`] owning systems, clients and groups, and a supervised
//!   [`actors::group::Group`] per group doing the fan-out; all messages in [`actors::messages`].
//! - [`hub`]: [`Hub`], the handle the HTTP layer holds (registry address, settings, auth).
//! - [`gate`]: the connection gate, which counts WebSocket connections and refuses those over
//!   the limits before the upgrade.
//! - [`http`]: the endpoints — `/ws`, `/api/*` ([`http::configure`] mounts them in any actix-web
//!   app), the console and `/healthz`. [`error`] turns failures into the JSON envelope.
//! - [`cluster`]: cluster mode over Redis (`--redis-url`).
//! - [`metrics`]: the Prometheus metrics served at `/metrics`.
//! - [`server`]: [`Application`], the standalone server.
//!
//! ## Embedding
//! ```no_run
//! use actix_web::{web, App, HttpServer};
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = wshub::Hub::start(&wshub::Config::default());
//!     HttpServer::new(move || {
//!         App::new().service(web::scope("/push").configure(wshub::http::configure(hub.clone())))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```

pub mod actors;
pub mod auth;
pub mod backplane;
pub mod cluster;
pub mod config;
pub mod error;
pub mod gate;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod protocol;
pub mod server;

pub use config::Config;
pub use hub::Hub;
pub use server::Application;
