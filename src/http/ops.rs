//! What operators and orchestrators read: `/healthz` and `/metrics`.

use actix_web::{web, HttpResponse};

use super::Hub;
use crate::actors::messages::{GetStats, GetSystemClients};
use crate::error::ApiError;
use crate::protocol::Envelope;

/// 200 with the registry's counts while serving; 503 once shutdown has begun.
pub async fn healthz(hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    if hub.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    let stats = hub.registry.send(GetStats).await?;
    Ok(HttpResponse::Ok().json(Envelope::success(stats)))
}

/// The Prometheus text exposition; the per-system gauges are read from the registry now.
pub async fn metrics(hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    let per_system = hub.registry.send(GetSystemClients).await?;
    let stats = hub.registry.send(GetStats).await?;
    hub.metrics.set_system_clients(per_system);
    hub.metrics.groups.set(stats.groups as i64);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(hub.metrics.render()))
}
