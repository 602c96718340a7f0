//! What a device (or a system's name) could do to the bridge: publish more than its old 10 KiB
//! packet limit, which dropped the broker connection, or read another system's events.

use std::time::Duration;

use serde_json::json;

use super::{bridged, broker_url, fresh_prefix, mqtt_in_dropped, until_subscribed, Device};

#[actix_web::test]
async fn large_publishes_are_pushed_or_refused_and_counted_without_losing_the_broker() {
    let Some(url) = broker_url() else { return };
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    app.register("s").await;
    let mut client = app.connect("s").await;
    app.bind("s", &client, "g", "").await;
    client.next_json().await;
    let device = Device::connect(&url);
    until_subscribed(&device, &prefix, "s", &mut client).await;
    let topic = format!("{prefix}s/group/g");

    // 40 KiB of data: within --max-data-size, four times the client's old packet limit.
    let big = "x".repeat(40 * 1024);
    device
        .publish(&topic, json!({ "data": big }).to_string())
        .await;
    let frame = client.next_json().await;
    assert_eq!(frame["data"].as_str().map(str::len), Some(big.len()));

    // Over --max-data-size (64 KiB), under the packet limit: refused and counted.
    let before = mqtt_in_dropped(&app);
    device
        .publish(
            &topic,
            json!({ "data": "y".repeat(100 * 1024) }).to_string(),
        )
        .await;
    // Far over the packet limit: the broker does not send it to the bridge at all.
    device.publish(&topic, vec![b'z'; 2 * 1024 * 1024]).await;
    device.publish(&topic, r#"{"msg":"after"}"#).await;
    let frame = client.next_json().await;
    assert_eq!(frame["msg"], "after", "{frame}");
    assert_eq!(mqtt_in_dropped(&app), before + 1.0);
    assert!(app.hub.mqtt().unwrap().is_connected());
    assert_eq!(app.metric("wshub_mqtt_connected").await, 1.0);
}

#[actix_web::test]
async fn a_system_whose_id_is_not_one_topic_level_cannot_publish_events() {
    let Some(url) = broker_url() else { return };
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    for system_id in ["victim/events/x", "a+b", "a#", "$SYS"] {
        app.api(
            "register",
            "",
            json!({"systemId": system_id, "mqtt": {"events": ["client_online"]}}),
        )
        .await
        .err(400, "mqtt.events");
    }
    // Registered without events, it cannot be given them later either.
    app.api("register", "", json!({"systemId": "victim/x"}))
        .await
        .ok();
    app.api(
        "update_system",
        "victim/x",
        json!({"mqtt": {"events": ["client_online"]}}),
    )
    .await
    .err(400, "mqtt.events");
}

#[actix_web::test]
async fn the_bridge_does_not_consume_its_own_events() {
    let Some(url) = broker_url() else { return };
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    app.api(
        "register",
        "",
        json!({"systemId": "s", "mqtt": {"events": ["client_online", "client_offline"]}}),
    )
    .await
    .ok();
    let mut listener = Device::connect(&url);
    listener
        .client
        .subscribe(
            format!("{prefix}s/events/#"),
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        )
        .await
        .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        drop(app.connect("s").await);
    }
    for _ in 0..10 {
        listener.next().await;
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mqtt_in_dropped(&app), 0.0, "its own events came back in");
}
