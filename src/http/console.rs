//! The pages of the standalone server: the console at `/` and `/healthz`.

use actix_web::{web, HttpResponse};

use super::Hub;
use crate::actors::messages::GetStats;
use crate::error::ApiError;
use crate::protocol::Envelope;

/// Placeholder until the bundled console lands.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("../../static/index.html"))
}

/// 200 with the registry's counts while serving.
pub async fn healthz(hub: web::Data<Hub>) -> Result<HttpResponse, ApiError> {
    let stats = hub.registry.send(GetStats).await?;
    Ok(HttpResponse::Ok().json(Envelope::success(stats)))
}
