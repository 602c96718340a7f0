//! `GET /ws`: upgrades to a WebSocket and starts a [`WsSession`] for it.

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;

use super::extract::SYSTEM_ID_HEADER;
use super::Hub;
use crate::actors::session::WsSession;
use crate::protocol::new_id;

#[derive(Deserialize)]
struct WsQuery {
    #[serde(rename = "systemId")]
    system_id: Option<String>,
}

/// The system a connecting client names: `?systemId=` first, then the `SystemId` header.
/// An unreadable query or header counts as missing; the session then refuses with −1001/1008.
fn requested_system(req: &HttpRequest) -> Option<String> {
    web::Query::<WsQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().system_id)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            req.headers()
                .get(SYSTEM_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
}

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<Hub>,
) -> actix_web::Result<HttpResponse> {
    let session = WsSession::new(
        new_id(),
        requested_system(&req),
        hub.registry.clone(),
        hub.settings.heartbeat,
    );
    ws::WsResponseBuilder::new(session, &req, stream)
        .frame_size(hub.settings.max_frame_size)
        .start()
}
