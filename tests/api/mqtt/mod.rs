//! The MQTT bridge against a real broker (Mosquitto): devices publish and clients get it, clients
//! act and devices hear it, two nodes share one subscription, and a broker that dies and comes
//! back is reconnected by itself. Broker: `WSHUB_TEST_MQTT_URL` (default mqtt://127.0.0.1:1883);
//! without one the tests skip with a printed reason; under `CI=true` a missing broker fails.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use awc::ws::Message;
use futures_util::SinkExt;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::helpers::{spawn_app_with, TestApp, WsClient};

mod bounds;
mod outage;
mod restart;

pub fn broker_url() -> Option<String> {
    let url =
        std::env::var("WSHUB_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_owned());
    let address = url.trim_start_matches("mqtt://").to_owned();
    if TcpStream::connect(&address).is_ok() {
        return Some(url);
    }
    let reason = format!("no MQTT broker at {url} (set WSHUB_TEST_MQTT_URL or start mosquitto)");
    crate::helpers::skip_unless_ci("MQTT test", &reason);
    None
}

fn fresh_prefix() -> String {
    format!("wshub-test/{}/", &wshub::protocol::new_id()[..12])
}

async fn bridged(url: &str, prefix: &str, redis: Option<(String, String)>) -> TestApp {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    let app = spawn_app_with(move |c| {
        c.mqtt_url = Some(url);
        c.mqtt_prefix = prefix;
        if let Some((redis_url, redis_prefix)) = redis {
            c.redis_url = Some(redis_url);
            c.redis_prefix = redis_prefix;
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app.hub.mqtt().unwrap().is_connected() {
        assert!(Instant::now() < deadline, "the bridge never connected");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    app
}

/// A device on the broker: publishes, and hands on what it receives.
struct Device {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
}

impl Device {
    fn connect(url: &str) -> Device {
        let address = url.trim_start_matches("mqtt://");
        let (host, port) = address.rsplit_once(':').unwrap();
        let options = MqttOptions::new(
            format!("device-{}", &wshub::protocol::new_id()[..8]),
            host,
            port.parse().unwrap(),
        );
        let (client, mut event_loop) = AsyncClient::new(options, 100);
        let (tx, received) = mpsc::unbounded_channel();
        actix_web::rt::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        if tx.send((topic, p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => actix_web::rt::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Device { client, received }
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await
            .unwrap();
    }

    /// Subscribes to every event of `system` (QoS 1), and gives the broker a moment to take it.
    async fn subscribe_to_events(&self, prefix: &str, system: &str) {
        let filter = format!("{prefix}{system}/events/#");
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }

    async fn next(&mut self) -> (String, Value) {
        let (topic, payload) = tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("a message in time")
            .expect("the device is connected");
        (
            topic,
            serde_json::from_slice(&payload).unwrap_or(Value::Null),
        )
    }
}

/// Publishes `marker` to the system topic until `client` gets it: the bridge's subscription is
/// in place once it does.
async fn until_subscribed(device: &Device, prefix: &str, system: &str, client: &mut WsClient) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        device
            .publish(&format!("{prefix}{system}/system"), "\"ready?\"")
            .await;
        if let Ok(frame) =
            tokio::time::timeout(Duration::from_millis(300), client.next_json()).await
        {
            if frame["data"] == "ready?" {
                // Drain the markers still on their way.
                while let Ok(frame) =
                    tokio::time::timeout(Duration::from_millis(300), client.next_json()).await
                {
                    assert_eq!(frame["data"], "ready?");
                }
                return;
            }
        }
        assert!(Instant::now() < deadline, "the bridge never subscribed");
    }
}

fn mqtt_in_dropped(app: &TestApp) -> f64 {
    let text = String::from_utf8(app.hub.metrics.render()).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("wshub_mqtt_dropped_total{direction=\"in\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn every_down_topic_and_payload_form_reaches_clients() {
    let Some(url) = broker_url() else { return };
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.bind("s", &a, "g", "ann").await;
    a.next_json().await;
    let device = Device::connect(&url);
    until_subscribed(&device, &prefix, "s", &mut a).await;
    b.next_json().await; // b got at least one marker
    while tokio::time::timeout(Duration::from_millis(200), b.next_json())
        .await
        .is_ok()
    {}

    // A JSON object with message fields supplies them.
    device
        .publish(
            &format!("{prefix}s/group/g"),
            r#"{"code":7,"msg":"reading","data":{"temp":21.5},"sendUserId":"sensor-1"}"#,
        )
        .await;
    let frame = a.next_json().await;
    assert_eq!(
        (
            &frame["code"],
            &frame["msg"],
            &frame["data"],
            &frame["sendUserId"]
        ),
        (
            &json!(7),
            &json!("reading"),
            &json!({"temp": 21.5}),
            &json!("sensor-1")
        )
    );
    assert_eq!(frame["messageId"].as_str().unwrap().len(), 32);
    // Any other payload is data: a JSON value as itself, text as a string.
    device
        .publish(&format!("{prefix}s/client/{}", b.id), "door open")
        .await;
    assert_eq!(b.next_json().await["data"], "door open");
    // A user topic reaches the user's connections: a is ann's.
    device
        .publish(&format!("{prefix}s/user/ann"), r#"{"msg":"for ann"}"#)
        .await;
    assert_eq!(a.next_json().await["msg"], "for ann");
    device
        .publish(&format!("{prefix}s/system"), r#"{"temp":3}"#)
        .await;
    for client in [&mut a, &mut b] {
        let frame = client.next_json().await;
        assert_eq!(
            (&frame["data"], &frame["code"]),
            (&json!({"temp": 3}), &json!(0))
        );
    }

    // Refused, counted, and nothing reaches anyone.
    let dropped_before = mqtt_in_dropped(&app);
    device
        .publish(&format!("{prefix}s/group/g"), vec![0xff, 0xfe, 0x00])
        .await;
    device
        .publish(&format!("{prefix}nobody/system"), "\"x\"")
        .await;
    device
        .publish(&format!("{prefix}s/client/not-a-client"), "\"x\"")
        .await;
    device
        .publish(&format!("{prefix}s/sideways"), "\"x\"")
        .await;
    device
        .publish(&format!("{prefix}s/system"), "\"after\"")
        .await;
    assert_eq!(a.next_json().await["data"], "after");
    assert_eq!(b.next_json().await["data"], "after");
    // The sideways topic is not one the bridge subscribes to (only group, client, user and
    // system topics are): it never arrives, so it is not counted.
    assert!(mqtt_in_dropped(&app) >= dropped_before + 3.0);
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await;
    assert_eq!(health.unwrap()["data"]["mqtt"], "connected");
}

#[actix_web::test]
async fn a_clients_life_is_published_as_events_for_systems_that_ask() {
    let Some(url) = broker_url() else { return };
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    app.api(
        "register",
        "",
        json!({"systemId": "s", "mqtt": {"events": ["client_online", "group_joined", "client_message", "client_offline", "user_online", "user_offline"]}}),
    )
    .await
    .ok();
    let mut device = Device::connect(&url);
    device.subscribe_to_events(&prefix, "s").await;
    let mut client = app.connect("s").await;
    app.bind("s", &client, "g", "ann").await;
    client.next_json().await;
    client
        .conn
        .send(Message::Text(r#"{"button":"on"}"#.into()))
        .await
        .unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    client
        .conn
        .send(Message::Close(Some(awc::ws::CloseCode::Normal.into())))
        .await
        .unwrap();
    let mut names = Vec::new();
    // user_offline comes after the grace (5 s).
    for _ in 0..6 {
        let (topic, event) = device.next().await;
        let name = event["name"].as_str().unwrap().to_owned();
        assert_eq!(topic, format!("{prefix}s/events/{name}"));
        if name == "user_offline" {
            assert_eq!(
                (&event["userId"], &event["reason"]),
                (&json!("ann"), &json!("closed"))
            );
        } else {
            assert_eq!(event["clientId"], client.id.as_str());
        }
        if name == "client_message" {
            assert_eq!(event["data"], json!({"button": "on"}));
        }
        names.push(name);
    }
    assert_eq!(
        names,
        [
            "client_online",
            "group_joined",
            "user_online",
            "client_message",
            "client_offline",
            "user_offline"
        ]
    );
    // Not asked for: never published.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), device.next())
            .await
            .is_err(),
        "group_occupied and the rest were not asked for"
    );
}

#[actix_web::test]
async fn in_a_cluster_one_publish_reaches_each_member_once() {
    let Some(url) = broker_url() else { return };
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let prefix = fresh_prefix();
    let redis_prefix = crate::cluster::fresh_prefix();
    let a = bridged(&url, &prefix, Some((redis.clone(), redis_prefix.clone()))).await;
    let b = bridged(&url, &prefix, Some((redis, redis_prefix))).await;
    a.register("s").await;
    let mut on_a = a.connect("s").await;
    let mut on_b = b.connect("s").await;
    a.bind("s", &on_a, "g", "ann").await;
    b.bind("s", &on_b, "g", "bob").await;
    let device = Device::connect(&url);
    until_subscribed(&device, &prefix, "s", &mut on_a).await;
    // on_b got the markers (and the 1001s) too.
    while tokio::time::timeout(Duration::from_millis(300), on_b.next_json())
        .await
        .is_ok()
    {}
    for i in 0..20 {
        device
            .publish(&format!("{prefix}s/group/g"), format!("{i}"))
            .await;
    }
    // Publishes that land on different nodes may overtake each other on their way to a member,
    // as two REST calls to two nodes may: each arrives, once.
    for client in [&mut on_a, &mut on_b] {
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(client.next_json().await["data"].as_i64().unwrap());
        }
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<i64>>(), "each once");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), client.next_json())
                .await
                .is_err(),
            "no duplicates"
        );
    }
}
