//! What operators and orchestrators read: `/healthz` and `/metrics`.

use actix_web::{web, HttpRequest, HttpResponse};

use super::Hub;
use crate::actors::messages::{GetStats, GetSystemClients};
use crate::error::ApiError;
use crate::protocol::Envelope;

/// Which pages the standalone server shows, and where.
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    /// `--internal-port`, as bound: `/healthz` and `/metrics` answer there only (404 elsewhere).
    pub internal_port: Option<u16>,
    /// `--console on`: the console at `/`.
    pub console: bool,
}

/// Which listener a request came in on: set by the server on each listener's app, so that no
/// page depends on the address actix-web reports for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Public,
    /// `--internal-port`.
    Internal,
}

impl Exposure {
    /// 404 for an operator page asked on the public port when an internal one is set.
    pub fn internal_only(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let listener = req.app_data::<web::Data<Listener>>().map(|l| *l.get_ref());
        match (self.internal_port, listener) {
            (Some(_), Some(Listener::Internal)) | (None, _) => Ok(()),
            (Some(_), _) => Err(not_found(req)),
        }
    }
}

/// The JSON envelope's 404 for a route that does not exist (here).
pub fn not_found(req: &HttpRequest) -> ApiError {
    ApiError::NotFound(format!("no page at '{}'", req.path()))
}

/// Every route the server does not know: a 404 in the JSON envelope.
pub async fn unknown_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(not_found(&req))
}

/// 200 with the registry's counts (and, with a bridge, `mqtt`: `connected` or `disconnected`)
/// while serving; 503 once shutdown has begun.
pub async fn healthz(
    req: HttpRequest,
    hub: web::Data<Hub>,
    exposure: web::Data<Exposure>,
) -> Result<HttpResponse, ApiError> {
    exposure.internal_only(&req)?;
    if hub.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let stats = hub.registry.send(GetStats).await?;
    let mut data = serde_json::to_value(stats).unwrap_or_default();
    if hub.webhooks.is_durable() {
        let outbox = match hub.webhooks.outbox_failing() {
            None => "ok",
            Some(_) => "failing",
        };
        data["outbox"] = serde_json::Value::from(outbox);
    }
    // The bridge's state is reported, never a reason to fail the node.
    if let Some(bridge) = hub.mqtt() {
        let state = if bridge.is_connected() {
            "connected"
        } else {
            "disconnected"
        };
        data["mqtt"] = serde_json::Value::from(state);
    }
    Ok(HttpResponse::Ok().json(Envelope::success(data)))
}

/// The Prometheus text exposition; the per-system gauges are read from the registry now.
pub async fn metrics(
    req: HttpRequest,
    hub: web::Data<Hub>,
    exposure: web::Data<Exposure>,
) -> Result<HttpResponse, ApiError> {
    exposure.internal_only(&req)?;
    let per_system = hub.registry.send(GetSystemClients).await?;
    let stats = hub.registry.send(GetStats).await?;
    hub.metrics.set_system_clients(per_system);
    hub.metrics.groups.set(stats.groups as i64);
    hub.metrics.clients_away.set(stats.away as i64);
    hub.metrics
        .recovery_away_bytes
        .set(i64::try_from(stats.away_bytes).unwrap_or(i64::MAX));
    let lag = crate::actors::wakeups::delivery_lag();
    hub.metrics.delivery_lag.set(lag.as_secs_f64());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(hub.metrics.render()))
}
