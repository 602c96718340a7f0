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
