//! The console at `/`, with its script and stylesheet.

use actix_web::HttpResponse;

/// The console's files, compiled into the binary so it is served from any working directory.
const INDEX_HTML: &str = include_str!("../../static/index.html");
const CONSOLE_JS: &str = include_str!("../../static/console.js");
const CONSOLE_CSS: &str = include_str!("../../static/console.css");

pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX_HTML)
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(CONSOLE_JS)
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CONSOLE_CSS)
}
