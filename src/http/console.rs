//! The console at `/`, with its script and stylesheet (404 with `--console off`), and the
//! favicon.

use actix_web::{web, HttpRequest, HttpResponse};

use super::operator::{not_found, Exposure};
use crate::error::ApiError;

/// The favicon, an SVG (browsers take one at `/favicon.ico` when it says so).
const FAVICON_SVG: &str = include_str!("../../static/favicon.svg");

/// The console's files, compiled into the binary so it is served from any working directory.
const INDEX_HTML: &str = include_str!("../../static/index.html");
const CONSOLE_JS: &str = include_str!("../../static/console.js");
const CONSOLE_CSS: &str = include_str!("../../static/console.css");

/// One of the console's files, unless the console is off (`--console off`: 404).
fn console_file(
    req: &HttpRequest,
    exposure: &Exposure,
    content_type: &'static str,
    body: &'static str,
) -> Result<HttpResponse, ApiError> {
    if !exposure.console {
        return Err(not_found(req));
    }
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}

pub async fn index(
    req: HttpRequest,
    exposure: web::Data<Exposure>,
) -> Result<HttpResponse, ApiError> {
    console_file(&req, &exposure, "text/html; charset=utf-8", INDEX_HTML)
}

pub async fn script(
    req: HttpRequest,
    exposure: web::Data<Exposure>,
) -> Result<HttpResponse, ApiError> {
    console_file(
        &req,
        &exposure,
        "text/javascript; charset=utf-8",
        CONSOLE_JS,
    )
}

pub async fn stylesheet(
    req: HttpRequest,
    exposure: web::Data<Exposure>,
) -> Result<HttpResponse, ApiError> {
    console_file(&req, &exposure, "text/css; charset=utf-8", CONSOLE_CSS)
}

pub async fn favicon() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(FAVICON_SVG)
}
