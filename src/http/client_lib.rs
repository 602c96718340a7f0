//! `GET /wshub.js` and `/wshub.d.ts`: the browser client library and its types, compiled into
//! the binary. Served whatever `--console` says (frontends import it), to any origin.

use actix_web::HttpResponse;

const WSHUB_JS: &str = include_str!("../../static/wshub.js");
const WSHUB_D_TS: &str = include_str!("../../static/wshub.d.ts");

fn library_file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // An ES module imported from another origin needs CORS; the file holds no secret.
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

pub async fn script() -> HttpResponse {
    library_file("text/javascript; charset=utf-8", WSHUB_JS)
}

pub async fn types() -> HttpResponse {
    library_file("application/typescript; charset=utf-8", WSHUB_D_TS)
}
