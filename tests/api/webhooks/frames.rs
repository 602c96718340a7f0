//! Frames from clients: binary closes with 1003, a flood with 4029, text becomes client_message.

use awc::ws::{Frame, Message};
use futures_util::SinkExt;
use serde_json::{json, Value};

use super::{names, register_with_hook, Receiver};
use crate::helpers::{spawn_app_with, WsClient};

async fn close_code(client: &mut WsClient) -> (u16, String) {
    loop {
        match client.next_frame().await {
            Frame::Close(Some(reason)) => {
                return (
                    u16::from(reason.code),
                    reason.description.unwrap_or_default(),
                )
            }
            Frame::Close(None) => return (0, String::new()),
            _ => {}
        }
    }
}

#[actix_web::test]
async fn a_binary_frame_closes_with_1003_and_a_flood_with_4029() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app_with(|c| {
        c.client_message_rate = 10.0;
        c.client_message_burst = 20;
    })
    .await;
    register_with_hook(&app, "s", &url).await;
    let mut bystander = app.connect("s").await;
    app.bind("s", &bystander, "g", "b").await;
    bystander.next_json().await;

    let mut binary = app.connect("s").await;
    binary
        .conn
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut binary).await.0, 1003);

    let mut flood = app.connect("s").await;
    for i in 0..1000 {
        if flood
            .conn
            .send(Message::Text(format!("{i}").into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(
        close_code(&mut flood).await,
        (4029, "too many messages".to_owned())
    );
    let events = receiver
        .wait_for("both offline", |e| {
            names(e).iter().filter(|n| **n == "client_offline").count() == 2
        })
        .await;
    let offline: Vec<(&Value, &Value)> = events
        .iter()
        .filter(|e| e["name"] == "client_offline")
        .map(|e| (&e["reason"], &e["code"]))
        .collect();
    assert_eq!(
        offline,
        [
            (&json!("protocol"), &json!(1003)),
            (&json!("protocol"), &json!(4029))
        ]
    );
    // The burst passed before the close, plus what the rate refilled meanwhile (10/s).
    let messages = names(&events)
        .iter()
        .filter(|n| **n == "client_message")
        .count();
    assert!((20..=40).contains(&messages), "{messages} messages");
    let metrics = String::from_utf8(app.hub.metrics.render()).unwrap();
    for reason in ["binary", "too_many_messages"] {
        let line = format!("wshub_clients_closed_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    // Nobody else noticed.
    let reply = app
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "g", "data": "still here"}),
        )
        .await
        .ok();
    assert_eq!(bystander.next_json().await["messageId"], reply["messageId"]);
}

/// Reads frames from a raw connection until its close frame; its code.
async fn raw_close_code(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    loop {
        let frame = tokio::time::timeout(crate::helpers::WAIT, crate::raw_ws::read_frame(stream))
            .await
            .expect("a frame in time")?;
        if frame.opcode == 8 {
            return frame.close_code();
        }
    }
}

#[actix_web::test]
async fn fragments_are_assembled_reserved_bits_are_a_protocol_error_and_pings_count() {
    use crate::raw_ws::{client_frame, handshake};
    use tokio::io::AsyncWriteExt;

    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app_with(|c| {
        c.client_message_rate = 10.0;
        c.client_message_burst = 20;
    })
    .await;
    register_with_hook(&app, "s", &url).await;
    let address = format!("127.0.0.1:{}", app.port);

    // A text message in three fragments arrives as one client_message.
    let mut stream = handshake(&address, "systemId=s", &[]).await;
    let mut bytes = client_frame(false, 1, br#"{"part":"#);
    bytes.extend(client_frame(false, 0, br#""one-"#));
    bytes.extend(client_frame(true, 0, br#"two"}"#));
    stream.write_all(&bytes).await.unwrap();
    let events = receiver
        .wait_for("the assembled message", |e| {
            names(e).contains(&"client_message")
        })
        .await;
    let message = events
        .iter()
        .find(|e| e["name"] == "client_message")
        .unwrap();
    assert_eq!(message["data"], json!({"part": "one-two"}));

    // Invalid UTF-8 split across fragments: 1007.
    let mut bytes = client_frame(false, 1, b"ok \xe2\x82");
    bytes.extend(client_frame(true, 0, b"\x28"));
    stream.write_all(&bytes).await.unwrap();
    assert_eq!(raw_close_code(&mut stream).await, Some(1007));

    // A frame with a reserved bit set: the client broke the protocol (1002), it is not a
    // lost connection.
    let mut stream = handshake(&address, "systemId=s", &[]).await;
    let mut frame = client_frame(true, 1, b"\"x\"");
    frame[0] |= 0x40;
    stream.write_all(&frame).await.unwrap();
    assert_eq!(raw_close_code(&mut stream).await, Some(1002));
    let offline = receiver
        .wait_for("its offline", |e| {
            e.iter()
                .filter(|e| e["name"] == "client_offline")
                .any(|e| e["code"] == 1002)
        })
        .await;
    assert!(offline
        .iter()
        .filter(|e| e["name"] == "client_offline")
        .all(|e| e["reason"] != "connection_lost"));

    // Pings count too: a flood of them is closed with 4029.
    let mut stream = handshake(&address, "systemId=s", &[]).await;
    let ping = client_frame(true, 9, b"");
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 2000)
        .collect();
    let _ = stream.write_all(&flood).await;
    assert_eq!(raw_close_code(&mut stream).await, Some(4029));
}
