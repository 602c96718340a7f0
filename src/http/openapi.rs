//! `GET /openapi.json`: the REST API as OpenAPI 3.1, generated from the list of methods in
//! [`crate::ops`] and the very types each method parses its body into and serializes its reply
//! from, so it cannot drift from them. Every reply is the `{code, msg, data}` envelope; each
//! method's `data` is its reply type, and every error is the envelope with `data: []`.

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApiBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::ToSchema;

use crate::ops::{self, Authorized, Operation, Scope, SYSTEM_ID_HEADER};
use crate::protocol::EmptyList;

/// Adds each method's path to the document.
struct Describe<'a>(&'a mut utoipa::openapi::OpenApi);

impl ops::VisitMethod for Describe<'_> {
    fn visit<O: Operation>(&mut self) {
        describe::<O>(self.0);
    }
}

/// The description, as JSON: built on first use, then served as is.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("wshub REST API")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some(
                        "Backends register systems, bind clients to groups and push messages. \
                         The manual is served at /docs.",
                    )),
            )
            .build();
        ops::each_method(&mut Describe(&mut doc));
        doc.tags = Some(
            ops::TAGS
                .iter()
                .map(|(name, description)| {
                    TagBuilder::new()
                        .name(*name)
                        .description(Some(*description))
                        .build()
                })
                .collect(),
        );
        // Relative: the server that serves the document is the one it describes.
        doc.servers = Some(vec![ServerBuilder::new()
            .url("/")
            .description(Some("this server"))
            .build()]);
        // Bearer JWTs (HS256) on every method (none with `--api-auth none`).
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        doc.to_json().unwrap_or_default()
    })
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(document())
}

/// Adds `POST /api/<NAME>` to the OpenAPI document: its body, its envelope and every error, and
/// the `SystemId` header for methods that act on one system.
fn describe<O: Operation>(doc: &mut utoipa::openapi::OpenApi) {
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
        .tag(O::TAG)
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
    for status in O::ERRORS {
        operation = operation.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(error_description(*status))
                .content("application/json", json("Failure")),
        );
    }
    if <O::Caller as Authorized>::SCOPE == Scope::System {
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(SYSTEM_ID_HEADER)
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

/// What an error status means, for every method that may answer it (with the envelope and
/// `data: []`).
fn error_description(status: u16) -> &'static str {
    match status {
        400 => "malformed body, or a field missing, mistyped or out of its limits",
        401 => "missing, malformed, expired or wrongly signed token",
        403 => "token scoped to another system, the system is not registered, or (without tokens) a refused origin or host",
        404 => "the clientId is not connected in this system",
        405 => "not a POST",
        409 => "the system is already registered",
        413 => "body, data or the encoded frame over its limit",
        _ => "shutting down, overloaded, or the backplane between nodes is unavailable",
    }
}

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
