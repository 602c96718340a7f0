//! The `/api` scope: every method of [`crate::ops`] (one file each), behind one middleware that
//! refuses calls during shutdown, holds sends back while delivery is behind, and counts and logs
//! every call by method and status (the access log, target [`logging::ACCESS`]); an unknown
//! method is a 404 in the envelope.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse, Resource, Responder, ResponseError, Scope};
use serde::Serialize;

use super::extract::{Authorized, Body};
use super::Hub;
use crate::actors::wakeups;
use crate::error::ApiError;
use crate::logging;
use crate::ops::{self, Operation};
use crate::protocol::Envelope;

pub use crate::ops::METHODS;

/// The `/api` scope with every method.
pub fn scope() -> Scope<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let mut routes = Routes(Vec::new());
    ops::each_method(&mut routes);
    routes
        .0
        .into_iter()
        .fold(web::scope("/api"), |scope, route| scope.service(route))
        .wrap(from_fn(observe))
        .default_service(web::to(unknown_method))
}

/// A successful reply: HTTP 200 with `{"code":0,"msg":"success","data":..}`.
pub struct Success<T>(pub T);

impl<T: Serialize> Responder for Success<T> {
    type Body = BoxBody;
    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::Ok().json(Envelope::success(self.0))
    }
}

/// Every method's route, `POST /<name>`; any other HTTP method gets 405.
struct Routes(Vec<Resource>);

impl ops::VisitMethod for Routes {
    fn visit<O: Operation>(&mut self) {
        self.0.push(
            web::resource(format!("/{}", O::NAME))
                .route(web::post().to(serve::<O>))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
                })),
        );
    }
}

/// The handler every method shares: the extractors checked the token, the scope and the body.
async fn serve<O: Operation>(
    hub: web::Data<Hub>,
    Authorized(caller): Authorized<O::Caller>,
    Body(request): Body<O>,
) -> Result<Success<O::Reply>, ApiError> {
    request.call(&hub.node, caller).await.map(Success)
}

/// Refuses calls once shutdown has begun, and counts every call by method and status.
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(hub) = req.app_data::<web::Data<Hub>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let last_segment = req.path().rsplit('/').next().unwrap_or_default();
    let method = ops::METHODS
        .iter()
        .find(|m| **m == last_segment)
        .copied()
        .unwrap_or("unknown");
    let started = Instant::now();
    // Read only when the access log is on: it must cost nothing when silenced.
    let logged_system =
        log::log_enabled!(target: logging::ACCESS, log::Level::Info).then(|| system_for_log(&req));
    let response = if hub.is_shutting_down() {
        let error = ApiError::Unavailable("the server is shutting down".into());
        req.into_response(error.error_response())
    } else if let Err(error) = wait_for_delivery(&hub, method).await {
        req.into_response(error.error_response())
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    let mut response = response;
    if hub.is_shutting_down() {
        // The connection is not kept for another call the server would have to refuse or
        // cut off when its workers stop: each call that arrives still gets its answer.
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let status = response.status();
    let elapsed = started.elapsed();
    if let Some(system_id) = logged_system {
        log::info!(
            target: logging::ACCESS,
            method,
            systemId = system_id,
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0;
            "api call"
        );
    }
    let metrics = &hub.metrics;
    metrics
        .rest_requests
        .with_label_values(&[method, status.as_str()])
        .inc();
    metrics
        .rest_latency
        .with_label_values(&[method])
        .observe(elapsed.as_secs_f64());
    if status.is_success() && method.starts_with("send_") {
        metrics.messages_pushed.with_label_values(&[method]).inc();
    }
    Ok(response)
}

/// The `SystemId` header as the access log shows it: at most 64 characters, "-" without one.
/// The token is never logged.
fn system_for_log(req: &ServiceRequest) -> String {
    match req.headers().get(ops::SYSTEM_ID_HEADER) {
        None => "-".to_owned(),
        Some(value) => String::from_utf8_lossy(value.as_bytes())
            .chars()
            .take(64)
            .collect(),
    }
}

/// A send waits while the server is behind with delivery (see [`wakeups`]), and is refused
/// with 503 if it stays behind: an overloaded server slows its senders down instead of filling
/// its clients' queues.
async fn wait_for_delivery(hub: &Hub, method: &str) -> Result<(), ApiError> {
    if !method.starts_with("send_") {
        return Ok(());
    }
    let gate = hub.config.overload;
    wakeups::wait_for_delivery(gate, &hub.metrics)
        .await
        .map_err(|wakeups::Overloaded| overloaded(gate))
}

/// The 503 of a send the server is too far behind to take.
fn overloaded(gate: wakeups::OverloadGate) -> ApiError {
    ApiError::Unavailable(format!(
        "the server is overloaded: delivery has been more than {} ms behind for {} s; retry later",
        gate.lag.as_millis(),
        gate.wait.as_secs_f64()
    ))
}

async fn unknown_method(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no API method at '{}'",
        req.path()
    )))
}
