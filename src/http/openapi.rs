//! `GET /openapi.json`: the REST API as OpenAPI 3.1, generated from the list of methods in
//! [`crate::ops`] and the very types each method parses its body into and serializes its reply
//! from, so it cannot drift from them. Every reply is the `{code, msg, data}` envelope; each
//! method's `data` is its reply type, and every error is the envelope with `data: []`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApiBuilder};

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
        crate::ops::describe(&mut doc);
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
