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

/// Events for a broker that is down wait in a bounded queue (10,000), then are dropped and
/// counted; the outage is logged once however many reconnects fail, and the return once.
#[actix_web::test]
async fn with_the_broker_down_events_queue_up_to_a_bound_then_are_dropped_and_counted() {
    const QUEUE: usize = 10_000;
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
    let deadline = Instant::now() + Duration::from_secs(30);
    let (queued, refused) = loop {
        let (queued, refused) = (
            scraped_metric(&http, &format!("http://{address}"), out).await,
            scraped_metric(&http, &format!("http://{address}"), dropped).await,
        );
        if queued + refused >= SENT as f64 {
            break (queued, refused);
        }
        assert!(
            Instant::now() < deadline,
            "{queued} queued and {refused} dropped of {SENT} events"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(queued + refused, SENT as f64);
    assert!(
        queued <= QUEUE as f64 + 10.0 && refused >= (SENT - QUEUE - 10) as f64,
        "the queue is bounded: {queued} queued, {refused} dropped"
    );

    // Several reconnects fail meanwhile (backoff from 100 ms); the log says it once.
    let down_for = Duration::from_secs(4);
    if let Some(rest) = down_for.checked_sub(outage.elapsed()) {
        actix_web::rt::time::sleep(rest).await;
    }
    broker.restart().expect("mosquitto restarts");
    until_bridge_is(&http, &address, "connected").await;
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
