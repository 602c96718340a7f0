//! The standalone server's WebSocket transport: an upgrade takes its socket from actix-http
//! (`ws::upgrade`) and is served by wshub itself. What a client could tell apart from the route
//! an embedding application serves is checked here against the bytes.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, WAIT};
use crate::raw_ws::{client_frame, read_frame, read_head};

const UPGRADE_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Sends `request` and reads the whole answer, which the server ends by closing the connection:
/// its text, and its body as JSON.
async fn refused(address: &str, request: &str) -> (String, Value) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (_, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let envelope = serde_json::from_str(body).expect("a JSON body");
    (response, envelope)
}

#[actix_web::test]
async fn frames_sent_right_behind_the_upgrade_request_are_read() {
    let app = spawn_app().await;
    app.register("s").await;
    let address = format!("127.0.0.1:{}", app.port);
    let mut stream = TcpStream::connect(&address).await.unwrap();
    // The request and a ping in one write: the ping arrives in the same read as the request.
    let mut bytes =
        format!("GET /ws?systemId=s HTTP/1.1\r\nHost: {address}\r\n{UPGRADE_HEADERS}\r\n")
            .into_bytes();
    bytes.extend(client_frame(true, 9, b"early"));
    stream.write_all(&bytes).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut pong = None;
    for _ in 0..2 {
        let frame = tokio::time::timeout(WAIT, read_frame(&mut stream))
            .await
            .expect("a frame in time")
            .expect("a frame");
        if frame.opcode == 10 {
            pong = Some(frame.payload);
        }
    }
    assert_eq!(
        pong.as_deref(),
        Some(&b"early"[..]),
        "the ping was answered"
    );
}

#[actix_web::test]
async fn an_upgrade_anywhere_but_ws_is_refused_in_the_envelope_and_closed() {
    let app = spawn_app().await;
    let address = format!("127.0.0.1:{}", app.port);
    let request = format!("GET /api/ws HTTP/1.1\r\nHost: {address}\r\n{UPGRADE_HEADERS}\r\n");
    let (response, envelope) = refused(&address, &request).await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert_ne!(envelope["code"], 0, "{envelope}");
    let message = envelope["msg"].as_str().unwrap_or_default();
    assert!(message.contains("/ws"), "{message}");
}

#[actix_web::test]
async fn a_request_that_is_not_a_handshake_gets_its_status_and_the_envelope() {
    let app = spawn_app().await;
    let address = format!("127.0.0.1:{}", app.port);
    // Over the upgrade path: only a GET is upgraded.
    let request =
        format!("POST /ws?systemId=s HTTP/1.1\r\nHost: {address}\r\n{UPGRADE_HEADERS}\r\n");
    let (response, envelope) = refused(&address, &request).await;
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("allow: get"),
        "{response}"
    );
    let message = envelope["msg"].as_str().unwrap_or_default();
    assert!(message.contains("GET"), "{message}");
    // No upgrade asked: actix-web's route answers, naming the header that is missing.
    let mut reply = app
        .http
        .get(app.url("/ws?systemId=s"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let envelope: Value = reply.json().await.expect("a JSON body");
    let message = envelope["msg"].as_str().unwrap_or_default();
    assert!(message.contains("Upgrade: websocket"), "{message}");
}

#[actix_web::test]
async fn a_handshake_http_would_read_differently_is_refused_not_upgraded() {
    let app = spawn_app().await;
    app.register("s").await;
    let address = format!("127.0.0.1:{}", app.port);
    let handshake = "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n";
    let smuggled = format!(
        "POST /api/send_to_system HTTP/1.1\r\nHost: {address}\r\nSystemId: s\r\n\
         Content-Length: 13\r\n\r\n{{\"msg\":\"in\"}}"
    );
    for extra in [
        "Upgrade: websocket, h2c\r\n".to_owned(),
        "Upgrade: x-websocket\r\n".to_owned(),
        "Upgrade: websocket\r\nTransfer-Encoding: chunked\r\n".to_owned(),
    ] {
        let body = if extra.contains("chunked") {
            "0\r\n\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET /ws?systemId=s HTTP/1.1\r\nHost: {address}\r\n{handshake}{extra}\r\n{body}{smuggled}"
        );
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        // The server answers; whatever follows, it never upgrades.
        let _ =
            tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await;
        let response = String::from_utf8_lossy(&response).into_owned();
        assert!(response.starts_with("HTTP/1.1 400"), "{extra}: {response}");
        assert!(!response.contains(" 101 "), "{extra}: {response}");
        assert!(
            response.contains("Upgrade") || response.contains("body"),
            "{response}"
        );
    }
}
