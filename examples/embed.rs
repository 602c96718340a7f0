//! Mounting wshub inside an existing actix-web application.
//!
//! ```sh
//! WSHUB_JWT_SECRET=dev-secret cargo run --example embed
//! # the host's own route
//! curl http://127.0.0.1:8080/
//! # wshub under /push: /push/ws and /push/api/<method>
//! TOKEN=$(WSHUB_JWT_SECRET=dev-secret cargo run -q -- token)
//! curl -H "Authorization: Bearer $TOKEN" -d '{"systemId":"app"}' http://127.0.0.1:8080/push/api/register
//! ```

use actix_web::{web, App, HttpResponse, HttpServer};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = wshub::Config {
        jwt_secret: std::env::var("WSHUB_JWT_SECRET").ok(),
        ..wshub::Config::default()
    };
    // Start the core once; every worker's App shares it through clones of the handle.
    let hub = wshub::Hub::start(&config)?;
    if let Some(token) = hub.generated_admin_token() {
        log::warn!("no WSHUB_JWT_SECRET: admin token for this run: {token}");
    }
    log::info!("host app on http://127.0.0.1:8080, wshub mounted under /push");
    HttpServer::new(move || {
        App::new()
            .route(
                "/",
                web::get().to(|| async { HttpResponse::Ok().body("the host application\n") }),
            )
            .service(web::scope("/push").configure(wshub::http::configure(hub.clone())))
    })
    .bind(("127.0.0.1", 8080))?
    .run()
    .await
}
