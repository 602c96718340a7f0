//! The HTTP surface: `/ws`, `/api/*`, and the pages around them.
//!
//! [`configure`] mounts the push endpoints (`/ws`, `/api/*`) on any actix-web `App` or `Scope`,
//! which is how a host application embeds wshub; [`crate::server::Application`] adds the
//! console ([`console`]), the browser client library ([`client_lib`]), the manual ([`docs`]) and
//! `/healthz` and `/metrics` ([`operator`]) for the standalone server.

pub mod api;
pub mod client_lib;
pub mod console;
pub mod docs;
pub mod extract;
pub mod openapi;
pub mod operator;
pub mod ws;

use actix_web::web;

pub use crate::hub::Hub;

/// Adds `/ws` and `/api/*`, served by `hub`, to an `App` or a `Scope`:
///
/// ```text
/// App::new().service(web::scope("/push").configure(wshub::http::configure(hub)));
/// ```
///
/// (`examples/embed.rs` is the whole program.)
pub fn configure(hub: Hub) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let max_body_size = hub.config.max_body_size;
        cfg.app_data(web::Data::new(hub))
            .app_data(web::PayloadConfig::new(max_body_size))
            .route("/ws", web::get().to(ws::connect))
            .service(api::scope());
    }
}
