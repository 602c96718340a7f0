//! wshub mounted under a prefix in a host actix-web application.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::helpers::{mint, next_json, SECRET};

#[actix_web::test]
async fn mounts_under_a_prefix_next_to_the_host_routes() {
    let hub = wshub::Hub::start(&wshub::Config {
        jwt_secret: Some(SECRET.into()),
        ..wshub::Config::default()
    })
    .expect("an ephemeral hub starts");
    let server_hub = hub.clone();
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/hello",
                web::get().to(|| async { HttpResponse::Ok().body("host") }),
            )
            .service(web::scope("/push").configure(wshub::http::configure(server_hub.clone())))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());

    let http = awc::Client::default();
    let mut hello = http
        .get(format!("http://127.0.0.1:{port}/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(hello.body().await.unwrap(), "host");

    let token = mint(None, 60);
    let api = |method: &str| {
        http.post(format!("http://127.0.0.1:{port}/push/api/{method}"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("SystemId", "host"))
    };
    let reply = api("register")
        .send_json(&json!({"systemId": "host"}))
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);

    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://127.0.0.1:{port}/push/ws?systemId=host"))
        .connect()
        .await
        .unwrap();
    let welcome = next_json(&mut conn).await;
    let client_id = welcome["data"]["clientId"].as_str().unwrap().to_owned();

    let mut reply = api("send_to_client")
        .send_json(&json!({"clientId": client_id, "data": {"from": "host app"}}))
        .await
        .unwrap();
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["code"], 0);
    let frame = next_json(&mut conn).await;
    assert_eq!(frame["data"], json!({"from": "host app"}));
    assert_eq!(frame["messageId"], body["data"]["messageId"]);
    drop(hub);
}
