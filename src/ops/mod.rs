//! The REST operations, `POST /api/<method>`: one file per method, and one list of them (at the
//! end of this file) from which the method table ([`METHODS`]), each method's token scope
//! ([`SCOPES`]), the HTTP routes ([`routes`]) and the OpenAPI paths ([`describe`]) all come.
//!
//! A method's file holds its request (parsed once, at the edge, and checked against the limits),
//! its reply, and what it does: [`Operation::call`] builds the command and sends it where it
//! must run through the [`Backplane`](crate::backplane::Backplane): on this node, on the node
//! that owns a client, or to the nodes with members of a group or system.
//!
//! ## Adding a method
//! 1. A file here, say `send_to_user.rs`, with the request (`#[derive(Deserialize, ToSchema)]`
//!    and [`CheckLimits`]: each limit names its field), the reply
//!    (`#[derive(Serialize, ToSchema)]`), `pub type Request = SendToUserRequest;`, and
//!    `impl Operation for SendToUserRequest` with its name, summary, caller (which sets its
//!    token scope) and `call`.
//! 2. One line, `send_to_user,`, in the list at the end of this file.
//! 3. Its tests under `tests/api/`, and its section in `socket.md`.
//!
//! The route, the metrics label, the scope check, the body's parsing and limits, the envelope
//! and the OpenAPI path follow from the list.

use std::future::Future;

use actix_web::{web, FromRequest, HttpResponse, Resource, Responder};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder, Schema};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::extract::{Body, Caller, SystemCaller};
use crate::hub::Hub;
use crate::protocol::{CheckLimits, EmptyList, Envelope};

/// Whom a method's token must be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any valid token: the method checks a system it names itself (`register`'s body).
    AnyToken,
    /// A token for the system named in the `SystemId` header (an admin token, or one scoped to
    /// that system).
    System,
}

/// A caller as a method's scope has it checked, before the method runs.
pub trait Authorized: FromRequest<Error = ApiError> + 'static {
    const SCOPE: Scope;
}

impl Authorized for Caller {
    const SCOPE: Scope = Scope::AnyToken;
}

impl Authorized for SystemCaller {
    const SCOPE: Scope = Scope::System;
}

/// One REST method, implemented by its request type: it parses (serde), checks itself
/// ([`CheckLimits`]) and runs ([`Operation::call`]).
pub trait Operation: DeserializeOwned + CheckLimits + ToSchema + 'static {
    /// The method's name: its path, `/api/<NAME>`, and its metrics label.
    const NAME: &'static str;
    /// One line for the OpenAPI description.
    const SUMMARY: &'static str;
    /// Who may call it: [`Caller`] (any valid token) or [`SystemCaller`] (a token for the
    /// `SystemId` header's system).
    type Caller: Authorized;
    /// The envelope's `data` on success.
    type Reply: Serialize + ToSchema + 'static;
    /// Runs the method for a caller whose token and body have passed every check.
    fn call(
        self,
        hub: &Hub,
        caller: Self::Caller,
    ) -> impl Future<Output = Result<Self::Reply, ApiError>>;
}

/// A successful reply: HTTP 200 with `{"code":0,"msg":"success","data":..}`.
pub struct Success<T>(pub T);

impl<T: Serialize> Responder for Success<T> {
    type Body = actix_web::body::BoxBody;
    fn respond_to(self, _: &actix_web::HttpRequest) -> HttpResponse {
        HttpResponse::Ok().json(Envelope::success(self.0))
    }
}

/// The handler every method shares: the extractors checked the token, the scope and the body.
async fn serve<O: Operation>(
    hub: web::Data<Hub>,
    caller: O::Caller,
    Body(request): Body<O>,
) -> Result<Success<O::Reply>, ApiError> {
    request.call(&hub, caller).await.map(Success)
}

/// `POST /<name>`; any other HTTP method gets 405.
fn route<O: Operation>() -> Resource {
    web::resource(format!("/{}", O::NAME))
        .route(web::post().to(serve::<O>))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
        }))
}

/// Adds `POST /api/<NAME>` to the OpenAPI document: its body, its envelope and every error, and
/// the `SystemId` header for methods that act on one system.
fn describe_one<O: Operation>(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let mut schemas = vec![
        (
            O::name().into_owned(),
            <O as utoipa::PartialSchema>::schema(),
        ),
        (
            <O::Reply as ToSchema>::name().into_owned(),
            <O::Reply as utoipa::PartialSchema>::schema(),
        ),
        (
            EmptyList::name().into_owned(),
            <EmptyList as utoipa::PartialSchema>::schema(),
        ),
    ];
    O::schemas(&mut schemas);
    <O::Reply as ToSchema>::schemas(&mut schemas);
    let envelope = format!("{}Envelope", camel_case(O::NAME));
    schemas.push((envelope.clone(), envelope_schema(&O::Reply::name())));
    schemas.push(("Failure".into(), envelope_schema(&EmptyList::name())));
    components.schemas.extend(schemas);

    let json = |name: &str| {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(name)))
            .build()
    };
    let mut operation = OperationBuilder::new()
        .summary(Some(O::SUMMARY))
        .operation_id(Some(O::NAME))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json(&O::name()))
                // An empty body counts as `{}`: a method with no required field needs none.
                .required(Some(if serde_json::from_str::<O>("{}").is_ok() {
                    Required::False
                } else {
                    Required::True
                }))
                .build(),
        ))
        .response(
            "200",
            ResponseBuilder::new()
                .description("success")
                .content("application/json", json(&envelope)),
        )
        .security(utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        ));
    for (status, description) in ERRORS {
        operation = operation.response(
            status,
            ResponseBuilder::new()
                .description(description)
                .content("application/json", json("Failure")),
        );
    }
    if <O::Caller as Authorized>::SCOPE == Scope::System {
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(crate::http::extract::SYSTEM_ID_HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(
                    "the system the call acts on: printable ASCII, no space at either end, at \
                     most --max-system-id-len (128) bytes",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(128))
                        .pattern(Some(r"^[!-~]([ -~]*[!-~])?$")),
                )),
        );
    }
    doc.paths.add_path_operation(
        format!("/api/{}", O::NAME),
        vec![HttpMethod::Post],
        operation.build(),
    );
}

/// Every error a method may answer with: the envelope with `data: []`.
const ERRORS: [(&str, &str); 8] = [
    (
        "400",
        "malformed body, or a field missing, mistyped or out of its limits",
    ),
    ("401", "missing, malformed, expired or wrongly signed token"),
    (
        "403",
        "token scoped to another system, or the system is not registered",
    ),
    ("404", "the clientId is not connected in this system"),
    ("405", "not a POST"),
    ("409", "the system is already registered"),
    ("413", "body, data or the encoded frame over its limit"),
    (
        "503",
        "shutting down, overloaded, or the backplane between nodes is unavailable",
    ),
];

/// `{code, msg, data}` with `data` of the named schema.
fn envelope_schema(data: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property(
            "code",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Int64,
                )))
                .description(Some("0 on success.")),
        )
        .required("code")
        .property(
            "msg",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("\"success\", or what went wrong, naming the field.")),
        )
        .required("msg")
        .property("data", Ref::from_schema_name(data))
        .required("data")
        .into()
}

/// `send_to_group` → `SendToGroup`.
fn camel_case(method: &str) -> String {
    method
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Serializes a push once; a frame over `--max-push-size` is a 413.
fn encode(
    hub: &Hub,
    message_id: &str,
    message: crate::protocol::MessageRef<'_>,
) -> Result<bytestring::ByteString, ApiError> {
    crate::protocol::encode_push(message_id, message, hub.settings.limits.max_push_size)
        .map_err(|over| ApiError::PayloadTooLarge(over.to_string()))
}

/// With `--webhook-deny-private`, a webhook URL that leads inside the network is a 400.
async fn check_webhook_address(
    hub: &Hub,
    webhook: Option<&crate::protocol::WebhookRequest>,
) -> Result<(), ApiError> {
    let Some((host, port)) = webhook
        .filter(|_| hub.settings.webhook_deny_private)
        .and_then(crate::protocol::WebhookRequest::host_and_port)
    else {
        return Ok(());
    };
    crate::webhooks::guard::check_host(&host, port)
        .await
        .map_err(|reason| ApiError::BadRequest(format!("webhook.url: {reason}")))
}

/// Declares the methods: each a module of this directory whose `Request` implements
/// [`Operation`].
macro_rules! operations {
    ($($method:ident),* $(,)?) => {
        $(pub mod $method;)*

        /// Every method, as it appears in the path and in metric labels.
        pub const METHODS: &[&str] = &[$(<$method::Request as Operation>::NAME),*];

        /// Each method's token scope.
        pub const SCOPES: &[(&str, Scope)] = &[$((
            <$method::Request as Operation>::NAME,
            <<$method::Request as Operation>::Caller as Authorized>::SCOPE,
        )),*];

        /// `POST /<method>` for every method, to mount under `/api`.
        pub fn routes() -> Vec<Resource> {
            vec![$(route::<$method::Request>()),*]
        }

        /// Adds every method's path to an OpenAPI document.
        pub fn describe(doc: &mut utoipa::openapi::OpenApi) {
            $(describe_one::<$method::Request>(doc);)*
        }
    };
}

operations! {
    check_token,
    register,
    update_system,
    get_system,
    unregister,
    send_to_client,
    send_to_clients,
    send_to_group,
    send_to_system,
    bind_to_group,
    unbind_from_group,
    get_online_list,
    get_all_groups,
    close_client,
    get_client_info,
}
