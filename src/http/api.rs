//! The REST API, `POST /api/<method>`: one thin handler per method. Each takes checked input from
//! the extractors, serializes any frame once, hands one typed operation to the [`Hub`] (the
//! registry's typed message, or in cluster mode the cluster's equivalent) and wraps
//! the answer in the envelope.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, Handler, HttpResponse, Resource, Responder, ResponseError, Scope};
use bytestring::ByteString;
use serde::Serialize;

use super::extract::{Body, Caller, SystemCaller};
use super::Hub;
use crate::actors::messages as m;
use crate::actors::wakeups;
use crate::auth::Scope as TokenScope;
use crate::error::ApiError;
use crate::protocol::{self as p, EmptyList, Envelope};

/// A successful reply: HTTP 200 with `{"code":0,"msg":"success","data":..}`.
pub struct Success<T>(pub T);

impl<T: Serialize> Responder for Success<T> {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::Ok().json(Envelope::success(self.0))
    }
}

type ApiResult<T> = Result<Success<T>, ApiError>;

/// Every API method, as it appears in the path and in metric labels.
pub const METHODS: [&str; 15] = [
    "check_token",
    "register",
    "update_system",
    "get_system",
    "unregister",
    "send_to_client",
    "send_to_clients",
    "send_to_group",
    "send_to_system",
    "bind_to_group",
    "unbind_from_group",
    "get_online_list",
    "get_all_groups",
    "close_client",
    "get_client_info",
];

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
    web::scope("/api")
        .wrap(from_fn(observe))
        .service(method("check_token", check_token))
        .service(method("register", register))
        .service(method("update_system", update_system))
        .service(method("get_system", get_system))
        .service(method("unregister", unregister))
        .service(method("send_to_client", send_to_client))
        .service(method("send_to_clients", send_to_clients))
        .service(method("send_to_group", send_to_group))
        .service(method("send_to_system", send_to_system))
        .service(method("bind_to_group", bind_to_group))
        .service(method("unbind_from_group", unbind_from_group))
        .service(method("get_online_list", get_online_list))
        .service(method("get_all_groups", get_all_groups))
        .service(method("close_client", close_client))
        .service(method("get_client_info", get_client_info))
        .default_service(web::to(unknown_method))
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
    let method = METHODS
        .iter()
        .find(|m| **m == last_segment)
        .copied()
        .unwrap_or("unknown");
    let started = Instant::now();
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
    let metrics = &hub.metrics;
    metrics
        .rest_requests
        .with_label_values(&[method, status.as_str()])
        .inc();
    metrics
        .rest_latency
        .with_label_values(&[method])
        .observe(started.elapsed().as_secs_f64());
    if status.is_success() && method.starts_with("send_") {
        metrics.messages_pushed.with_label_values(&[method]).inc();
    }
    Ok(response)
}

/// A send waits while the server is behind with delivery (see [`wakeups`]), and is refused
/// with 503 if it stays behind: an overloaded server slows its senders down instead of filling
/// its clients' queues.
async fn wait_for_delivery(hub: &Hub, method: &str) -> Result<(), ApiError> {
    if !method.starts_with("send_") {
        return Ok(());
    }
    let gate = hub.settings.overload;
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

/// `POST /<name>`; any other HTTP method gets 405.
fn method<F, Args>(name: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(format!("/{name}"))
        .route(web::post().to(handler))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
        }))
}

async fn unknown_method(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no API method at '{}'",
        req.path()
    )))
}

/// Serializes a push once; a frame over `--max-push-size` is a 413.
fn encode(hub: &Hub, message_id: &str, message: p::MessageRef<'_>) -> Result<ByteString, ApiError> {
    p::encode_push(message_id, message, hub.settings.limits.max_push_size)
        .map_err(|over| ApiError::PayloadTooLarge(over.to_string()))
}

/// Which systems the caller's token acts for: a call that succeeds for any valid token, so a
/// token can be checked without touching a system.
async fn check_token(caller: Caller, Body(_): Body<p::EmptyRequest>) -> ApiResult<p::TokenInfo> {
    let system_id = match caller.scope {
        TokenScope::Admin => None,
        TokenScope::System(system_id) => Some(system_id),
    };
    Ok(Success(p::TokenInfo { system_id }))
}

async fn register(
    hub: web::Data<Hub>,
    caller: Caller,
    Body(body): Body<p::RegisterRequest>,
) -> ApiResult<EmptyList> {
    let settings = body.settings();
    let system_id = body.system_id.into_inner();
    caller.require(&system_id)?;
    check_webhook_address(&hub, body.webhook.as_ref()).await?;
    hub.backplane
        .register(m::Register {
            system_id,
            settings,
        })
        .await?;
    Ok(Success(EmptyList))
}

/// With `--webhook-deny-private`, a webhook URL that leads inside the network is a 400.
async fn check_webhook_address(
    hub: &Hub,
    webhook: Option<&p::WebhookRequest>,
) -> Result<(), ApiError> {
    let Some((host, port)) = webhook
        .filter(|_| hub.settings.webhook_deny_private)
        .and_then(p::WebhookRequest::host_and_port)
    else {
        return Ok(());
    };
    crate::webhooks::guard::check_host(&host, port)
        .await
        .map_err(|reason| ApiError::BadRequest(format!("webhook.url: {reason}")))
}

async fn update_system(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::UpdateSystemRequest>,
) -> ApiResult<EmptyList> {
    check_webhook_address(&hub, body.webhook.as_ref().and_then(Option::as_ref)).await?;
    if let Some(Some(mqtt)) = &body.mqtt {
        mqtt.check_system_id(&caller.system_id)
            .map_err(|refused| ApiError::BadRequest(refused.to_string()))?;
    }
    hub.backplane
        .update_system(m::UpdateSystem {
            system_id: caller.system_id,
            update: body.update(),
        })
        .await?;
    Ok(Success(EmptyList))
}

async fn get_system(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(_): Body<p::EmptyRequest>,
) -> ApiResult<p::SystemInfo> {
    let info = hub
        .backplane
        .get_system(m::GetSystem {
            system_id: caller.system_id,
        })
        .await?;
    Ok(Success(info))
}

async fn unregister(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(_): Body<p::EmptyRequest>,
) -> ApiResult<EmptyList> {
    hub.backplane
        .unregister(m::Unregister {
            system_id: caller.system_id,
        })
        .await?;
    Ok(Success(EmptyList))
}

async fn send_to_client(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::SendToClientRequest>,
) -> ApiResult<p::MessageIdReply> {
    let message_id = p::new_id();
    let frame = encode(&hub, &message_id, body.message())?;
    hub.backplane
        .send_to_client(m::SendToClient {
            system_id: caller.system_id,
            client_id: body.client_id.into_inner(),
            frame,
        })
        .await?;
    Ok(Success(p::MessageIdReply { message_id }))
}

async fn send_to_clients(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::SendToClientsRequest>,
) -> ApiResult<p::SendToClientsReply> {
    let message_id = p::new_id();
    let frame = encode(&hub, &message_id, body.message())?;
    let client_ids = body
        .client_ids
        .into_iter()
        .map(p::Name::into_inner)
        .collect();
    let missing = hub
        .backplane
        .send_to_clients(m::SendToClients {
            system_id: caller.system_id,
            client_ids,
            frame,
        })
        .await?;
    Ok(Success(p::SendToClientsReply {
        message_id,
        missing,
    }))
}

async fn send_to_group(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::SendToGroupRequest>,
) -> ApiResult<p::CountReply> {
    let message_id = p::new_id();
    let frame = encode(&hub, &message_id, body.message())?;
    let count = hub
        .backplane
        .send_to_group(m::SendToGroup {
            system_id: caller.system_id,
            group_name: body.group_name.into_inner(),
            frame,
        })
        .await?;
    Ok(Success(p::CountReply { message_id, count }))
}

async fn send_to_system(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::SendToSystemRequest>,
) -> ApiResult<p::CountReply> {
    let message_id = p::new_id();
    let frame = encode(&hub, &message_id, body.message())?;
    let count = hub
        .backplane
        .send_to_system(m::SendToSystem {
            system_id: caller.system_id,
            frame,
        })
        .await?;
    Ok(Success(p::CountReply { message_id, count }))
}

async fn bind_to_group(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::BindToGroupRequest>,
) -> ApiResult<EmptyList> {
    hub.backplane
        .bind_to_group(m::BindToGroup {
            system_id: caller.system_id,
            client_id: body.client_id.into_inner(),
            group_name: body.group_name.into_inner(),
            user_id: body.user_id,
            extend: body.extend,
        })
        .await?;
    Ok(Success(EmptyList))
}

async fn unbind_from_group(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::UnbindFromGroupRequest>,
) -> ApiResult<EmptyList> {
    hub.backplane
        .unbind_from_group(m::UnbindFromGroup {
            system_id: caller.system_id,
            client_id: body.client_id.into_inner(),
            group_name: body.group_name.into_inner(),
        })
        .await?;
    Ok(Success(EmptyList))
}

async fn get_online_list(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::GroupRequest>,
) -> ApiResult<p::OnlineList> {
    let list = hub
        .backplane
        .get_online_list(m::GetOnlineList {
            system_id: caller.system_id,
            group_name: body.group_name.into_inner(),
        })
        .await?;
    Ok(Success(list))
}

async fn get_all_groups(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(_): Body<p::EmptyRequest>,
) -> ApiResult<std::collections::BTreeMap<String, Vec<String>>> {
    let groups = hub
        .backplane
        .get_all_groups(m::GetAllGroups {
            system_id: caller.system_id,
        })
        .await?;
    Ok(Success(groups))
}

async fn close_client(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::ClientRequest>,
) -> ApiResult<EmptyList> {
    hub.backplane
        .close_client(m::CloseClient {
            system_id: caller.system_id,
            client_id: body.client_id.into_inner(),
        })
        .await?;
    Ok(Success(EmptyList))
}

async fn get_client_info(
    hub: web::Data<Hub>,
    caller: SystemCaller,
    Body(body): Body<p::ClientRequest>,
) -> ApiResult<p::ClientInfo> {
    let info = hub
        .backplane
        .get_client_info(m::GetClientInfo {
            system_id: caller.system_id,
            client_id: body.client_id.into_inner(),
        })
        .await?;
    Ok(Success(info))
}
