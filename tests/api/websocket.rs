//! The `/ws` endpoint: welcome frame, system by query or header, refusals, limits, ping/pong.

use awc::ws::{Frame, Message};
use futures_util::SinkExt;

use crate::helpers::{expect_close, next_frame, next_json, spawn_app};

#[actix_web::test]
async fn first_frame_carries_a_fresh_client_id() {
    let app = spawn_app().await;
    app.register("s").await;
    let a = app.connect("s").await;
    let b = app.connect("s").await;
    assert_ne!(a.id, b.id);
    for id in [&a.id, &b.id] {
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }
    // Addressable as soon as the welcome frame arrived.
    let info = app
        .api(
            "get_client_info",
            "s",
            serde_json::json!({"clientId": a.id}),
        )
        .await
        .ok();
    assert_eq!(info["online"], true);
}

#[actix_web::test]
async fn system_id_by_header() {
    let app = spawn_app().await;
    app.register("hdr").await;
    let (_, mut conn) = awc::Client::new()
        .ws(app.ws_url(""))
        .set_header("SystemId", "hdr")
        .connect()
        .await
        .unwrap();
    let welcome = next_json(&mut conn).await;
    assert_eq!(welcome["code"], 0);
    let id = welcome["data"]["clientId"].as_str().unwrap();
    let info = app
        .api(
            "get_client_info",
            "hdr",
            serde_json::json!({"clientId": id}),
        )
        .await
        .ok();
    assert_eq!(info["online"], true);
}

#[actix_web::test]
async fn missing_or_unregistered_system_gets_minus_1001_then_1008() {
    let app = spawn_app().await;
    for (query, needle) in [
        ("", "systemId is required"),
        ("?systemId=", "systemId is required"),
        ("?systemId=%zz", "'%zz' is not registered"),
        ("?systemId=unknown", "'unknown' is not registered"),
    ] {
        let mut conn = app.ws_raw(query).await;
        let frame = next_json(&mut conn).await;
        assert_eq!(frame["code"], -1001, "{query}: {frame}");
        assert!(frame["msg"].as_str().unwrap().contains(needle), "{frame}");
        assert_eq!(frame["data"], serde_json::json!([]));
        let reason = expect_close(&mut conn).await.expect("close reason");
        assert_eq!(u16::from(reason.code), 1008, "{query}");
    }
    assert_eq!(app.stats().await.clients, 0);
}

#[actix_web::test]
async fn frame_over_the_limit_closes_with_1009() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut client = app.connect("s").await;
    // At the limit is accepted (and ignored) ...
    client
        .conn
        .send(Message::Text("x".repeat(8 * 1024).into()))
        .await
        .unwrap();
    client
        .conn
        .send(Message::Ping("alive".into()))
        .await
        .unwrap();
    assert_eq!(client.next_frame().await, Frame::Pong("alive".into()));
    // ... one byte more is not.
    client
        .conn
        .send(Message::Text("x".repeat(8 * 1024 + 1).into()))
        .await
        .unwrap();
    let reason = client.expect_close().await.expect("close reason");
    assert_eq!(u16::from(reason.code), 1009);
    app.wait_for_stats(|s| s.clients == 0).await;
}

#[actix_web::test]
async fn frame_limit_is_configurable() {
    let app = crate::helpers::spawn_app_with(|c| c.max_frame_size = 100).await;
    app.register("s").await;
    let mut client = app.connect("s").await;
    client
        .conn
        .send(Message::Binary(vec![0u8; 101].into()))
        .await
        .unwrap();
    let reason = client.expect_close().await.expect("close reason");
    assert_eq!(u16::from(reason.code), 1009);
}

#[actix_web::test]
async fn client_ping_gets_pong_and_client_frames_are_ignored() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut client = app.connect("s").await;
    client
        .conn
        .send(Message::Text("{\"hello\":1}".into()))
        .await
        .unwrap();
    client.conn.send(Message::Ping("p1".into())).await.unwrap();
    assert_eq!(next_frame(&mut client.conn).await, Frame::Pong("p1".into()));
}
