//! The bridge when its broker goes away: it reconnects by itself, and events for the broker
//! wait in a bounded queue, then are dropped and counted. Each test runs its own Mosquitto.

use std::time::{Duration, Instant};

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::{json, Value};

use super::{bridged, broker_url, fresh_prefix, until_subscribed, Device};
use crate::helpers::{scraped_metric, OwnServer};

/// A private Mosquitto on a free port for a test that stops it; `None` (the test skips) where
/// none can be started, outside CI.
fn own_broker() -> Option<OwnServer> {
    broker_url()?;
    // Debian puts it in /usr/sbin, which a user's PATH may lack.
    let program = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("mosquitto");
    let broker = OwnServer::start(program, &["-p", "{port}"]);
    if broker.is_none() {
        let reason = "mosquitto cannot be started here (apt-get install mosquitto)";
        crate::helpers::skip_unless_ci("MQTT outage test", reason);
    }
    broker
}

#[actix_web::test]
async fn a_broker_that_dies_and_returns_is_reconnected_by_itself() {
    let Some(mut broker) = own_broker() else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = fresh_prefix();
    let app = bridged(&url, &prefix, None).await;
    app.register("s").await;
    let mut client = app.connect("s").await;
    let device = Device::connect(&url);
    until_subscribed(&device, &prefix, "s", &mut client).await;

    broker.kill();
    let bridge = app.hub.mqtt().cloned().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while bridge.is_connected() {
        assert!(Instant::now() < deadline, "the loss was never noticed");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing else waits for the broker.
    let sent = app
        .api("send_to_system", "s", json!({"data": "via REST"}))
        .await
        .ok();
    assert_eq!(client.next_json().await["messageId"], sent["messageId"]);
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        health.status().as_u16(),
        200,
        "a broker outage does not fail the node"
    );

    broker.restart().expect("mosquitto restarts");
    let device = Device::connect(&url);
    until_subscribed(&device, &prefix, "s", &mut client).await;
    device
        .publish(&format!("{prefix}s/system"), "\"back\"")
        .await;
    assert_eq!(client.next_json().await["data"], "back");
}

/// Waits until `/healthz` reports the bridge as `state`.
async fn until_bridge_is(http: &awc::Client, address: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health: Value = http
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["data"]["mqtt"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "the bridge never became {state}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Events for a broker that is down wait in the outbox's bounded queue (10,000), the oldest
/// beyond it are dropped and counted, and every one kept is published and acknowledged once the
/// broker is back; the outage is logged once however many reconnects fail, and the return once.
#[actix_web::test]
async fn with_the_broker_down_events_queue_up_to_a_bound_then_are_dropped_and_counted() {
    const QUEUE: usize = 10_000;
    const BATCH: usize = 100;
    const SENT: usize = QUEUE + 500;
    let Some(mut broker) = own_broker() else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = fresh_prefix();
    let server = crate::helpers::ServerProcess::start_logging(
        &[
            "--mqtt-url",
            &url,
            "--mqtt-prefix",
            &prefix,
            "--client-message-rate",
            "1000000",
            "--client-message-burst",
            "1000000",
        ],
        &[],
    );
    let address = server.address.clone();
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let reply = http
        .post(format!("http://{address}/api/register"))
        .insert_header((
            "Authorization",
            format!("Bearer {}", crate::helpers::mint(None, 600)),
        ))
        .send_body(json!({"systemId": "s", "mqtt": {"events": ["client_message"]}}).to_string())
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    until_bridge_is(&http, &address, "connected").await;
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://{address}/ws?systemId=s"))
        .connect()
        .await
        .unwrap();
    crate::helpers::next_json(&mut conn).await;

    broker.kill();
    until_bridge_is(&http, &address, "disconnected").await;
    let outage = Instant::now();
    for i in 0..SENT {
        conn.send(Message::Text(i.to_string().into()))
            .await
            .unwrap();
    }
    let out = "wshub_mqtt_messages_total{direction=\"out\"}";
    let dropped = "wshub_mqtt_dropped_total{direction=\"out\"}";
    let base = format!("http://{address}");
    // The outbox keeps the newest QUEUE (and the batch already handed to the client); the
    // oldest beyond that are dropped and counted.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let refused = scraped_metric(&http, &base, dropped).await;
        if refused >= (SENT - QUEUE - BATCH) as f64 {
            break refused;
        }
        assert!(
            Instant::now() < deadline,
            "{refused} of {SENT} events dropped"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        refused <= (SENT - QUEUE) as f64,
        "the queue is bounded: {refused} dropped"
    );
    assert_eq!(
        scraped_metric(&http, &base, out).await,
        0.0,
        "none acknowledged"
    );

    // Several reconnects fail meanwhile (backoff from 100 ms); the log says it once.
    let down_for = Duration::from_secs(4);
    if let Some(rest) = down_for.checked_sub(outage.elapsed()) {
        actix_web::rt::time::sleep(rest).await;
    }
    broker.restart().expect("mosquitto restarts");
    until_bridge_is(&http, &address, "connected").await;
    // Every event kept is published once the broker is back, and acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while scraped_metric(&http, &base, out).await + refused < SENT as f64 {
        assert!(
            Instant::now() < deadline,
            "{} of the {} kept events acknowledged",
            scraped_metric(&http, &base, out).await,
            SENT as f64 - refused
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        scraped_metric(&http, &base, out).await + refused,
        SENT as f64
    );
    assert_eq!(
        server.later_lines_with("lost the broker").len(),
        1,
        "{:?}",
        server.later_lines_with("MQTT")
    );
    let connected = server
        .log
        .iter()
        .filter(|l| l.contains("MQTT bridge connected"))
        .count()
        + server.later_lines_with("MQTT bridge connected").len();
    assert_eq!(connected, 2, "{:?}", server.later_lines_with("MQTT"));
    // With the queue still draining, the bridge subscribes again: devices reach clients.
    let device = Device::connect(&url);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        device
            .publish(&format!("{prefix}s/system"), "\"back\"")
            .await;
        let frame = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let awc::ws::Frame::Text(text) = crate::helpers::next_frame(&mut conn).await {
                    return serde_json::from_slice::<Value>(&text).unwrap();
                }
            }
        })
        .await;
        if frame.is_ok_and(|f| f["data"] == "back") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge never subscribed again"
        );
    }
    assert!(
        server.later_lines_with("mqtt").len() <= 3,
        "the outage floods the log: {:?}",
        server.later_lines_with("MQTT")
    );
}

/// Events for the broker are kept in the outbox until it acknowledges them: with the broker
/// down, a SIGTERM keeps them (the shutdown's own `client_offline` included), and the next start
/// publishes them once the broker is back, once each, in order, with the same ids.
#[actix_web::test]
async fn events_the_broker_never_acknowledged_are_published_after_a_restart() {
    let Some(mut broker) = own_broker() else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let prefix = fresh_prefix();
    let dir = crate::systems::scratch_dir("mqtt-outbox");
    let args = [
        "--mqtt-url",
        &url,
        "--mqtt-prefix",
        &prefix,
        "--data-dir",
        dir.to_str().unwrap(),
        "--shutdown-grace",
        "1",
    ];
    let mut first = crate::helpers::ServerProcess::start(&args, &[]);
    let http = awc::Client::new();
    let events = json!({"events": ["client_online", "client_offline"]});
    let register = json!({"systemId": "s", "mqtt": events});
    crate::systems::call(&first.address, "register", "", register)
        .await
        .ok();
    until_bridge_is(&http, &first.address, "connected").await;
    broker.kill();
    until_bridge_is(&http, &first.address, "disconnected").await;
    let (mut clients, mut conns) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let (conn, id) = crate::helpers::connect_at(&first.address, "s").await;
        clients.push(id);
        conns.push(conn);
    }
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(first.child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(first.child.wait().unwrap().success());
    drop(conns);

    broker.restart().expect("mosquitto restarts");
    let mut device = Device::connect(&url);
    device.subscribe_to_events(&prefix, "s").await;
    let second = crate::helpers::ServerProcess::start(&args, &[]);
    let mut received = Vec::new();
    for _ in 0..40 {
        received.push(device.next().await.1);
    }
    let ids: std::collections::HashSet<&str> =
        received.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), 40, "once each");
    let online: Vec<&str> = received
        .iter()
        .filter(|e| e["name"] == "client_online")
        .filter_map(|e| e["clientId"].as_str())
        .collect();
    assert_eq!(online, clients, "in the order they connected");
    for (at, event) in received.iter().enumerate() {
        if event["name"] == "client_offline" {
            assert_eq!(event["reason"], "shutdown");
            let online_at = received
                .iter()
                .position(|e| e["name"] == "client_online" && e["clientId"] == event["clientId"]);
            assert!(online_at.is_some_and(|o| o < at), "online before offline");
        }
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}
