//! Webhooks against a real HTTP receiver started by the test: every signature is checked as a
//! backend would check it, events arrive in order, failures are retried, a hanging endpoint
//! slows nothing, an overflowing queue says what it dropped. `cluster` and `frames` use the same
//! receiver.

mod bounds;
mod cluster;
mod frames;
mod outbox;

use std::collections::{HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use awc::ws::Message;
use futures_util::SinkExt;
use hmac::{KeyInit, Mac};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

pub(super) const SECRET: &str = "a-webhook-secret-of-some-length";

/// What the receiver does with the next request; then 200 for every one after the script.
#[derive(Clone, Copy)]
pub(super) enum Answer {
    Status(u16),
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(super) struct Received {
    timestamp: String,
    signature: String,
    body: Value,
    /// Answered 2xx.
    acknowledged: bool,
}

#[derive(Clone, Default)]
pub(super) struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// While set, every request is answered 503 (a backend that is down).
    refusing: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    /// Starts an HTTP server on a free port; returns its URL.
    pub(super) fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = self.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        url
    }

    pub(super) fn script(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    /// Answers 503 to everything from now on (`false`: as scripted, then 200).
    pub(super) fn refuse(&self, refusing: bool) {
        self.refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every event of the batches answered 2xx, in the order they came (a batch sent again
    /// after a late answer shows its events again).
    pub(super) fn acknowledged(&self) -> Vec<Value> {
        self.received()
            .iter()
            .filter(|r| r.acknowledged)
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    pub(super) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Every event received, first delivery of each, in order.
    pub(super) fn events(&self) -> Vec<Value> {
        let mut seen = HashSet::new();
        self.received()
            .iter()
            .flat_map(|r| r.body["events"].as_array().cloned().unwrap_or_default())
            .filter(|event| seen.insert(event["id"].as_str().unwrap_or_default().to_owned()))
            .collect()
    }

    /// The `dropped` counts of the batches received so far, summed; a batch sent again (after
    /// a timeout) counts once.
    pub(super) fn dropped(&self) -> u64 {
        let mut batches = HashSet::new();
        self.received()
            .iter()
            .filter(|r| batches.insert(r.body["events"][0]["id"].to_string()))
            .filter_map(|r| r.body["dropped"].as_u64())
            .sum()
    }

    /// Waits until `done` holds for the events received.
    pub(super) async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let events = self.events();
            if done(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; received {:#?}",
                self.received()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<Receiver>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let refusing = state.refusing.load(std::sync::atomic::Ordering::SeqCst);
    let answer = match refusing {
        true => Some(Answer::Status(503)),
        false => state.script.lock().unwrap().pop_front(),
    };
    let received = Received {
        timestamp: header("X-Wshub-Timestamp"),
        signature: header("X-Wshub-Signature"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        acknowledged: !matches!(answer, Some(Answer::Status(code)) if !(200..300).contains(&code)),
    };
    // Verified as a backend would: HMAC-SHA256 over "<timestamp>.<body>", fresh timestamp.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.", received.timestamp).as_bytes());
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(received.signature, expected, "signature of {body:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stamped: u64 = received.timestamp.parse().expect("a Unix timestamp");
    assert!(now.abs_diff(stamped) < 60, "fresh timestamp");
    assert_eq!(header("Content-Type"), "application/json");
    state.got.lock().unwrap().push(received);
    match answer {
        Some(Answer::Status(code)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish()
        }
        Some(Answer::Hang(time)) => {
            actix_web::rt::time::sleep(time).await;
            HttpResponse::Ok().finish()
        }
        None => HttpResponse::Ok().finish(),
    }
}

pub(super) async fn register_with_hook(app: &TestApp, system: &str, url: &str) {
    app.api(
        "register",
        "",
        json!({"systemId": system, "webhook": {"url": url, "secret": SECRET}}),
    )
    .await
    .ok();
}

pub(super) fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["name"].as_str().unwrap()).collect()
}

#[actix_web::test]
async fn one_clients_life_arrives_in_order_and_signed() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app().await;
    register_with_hook(&app, "s", &url).await;
    let mut client = app.connect("s").await;
    app.bind("s", &client, "room", "ann").await;
    client.next_json().await; // its own 1001
    client
        .conn
        .send(Message::Text(r#"{"say":"hi"}"#.into()))
        .await
        .unwrap();
    client
        .conn
        .send(Message::Text("plain words".into()))
        .await
        .unwrap();
    // Let the messages reach the registry before the unbind, so the order is fixed.
    receiver
        .wait_for("two client messages", |e| {
            names(e).iter().filter(|n| **n == "client_message").count() == 2
        })
        .await;
    app.api(
        "unbind_from_group",
        "s",
        json!({"clientId": client.id, "groupName": "room"}),
    )
    .await
    .ok();
    client
        .conn
        .send(Message::Close(Some(awc::ws::CloseCode::Normal.into())))
        .await
        .unwrap();
    let events = receiver
        .wait_for("client_offline", |e| names(e).contains(&"client_offline"))
        .await;
    assert_eq!(
        names(&events),
        [
            "client_online",
            "group_occupied",
            "group_joined",
            "user_online",
            "client_message",
            "client_message",
            "group_left",
            "group_vacated",
            "client_offline"
        ]
    );
    let id = client.id.as_str();
    assert_eq!(events[0]["clientId"], id);
    assert_eq!(events[1]["groupName"], "room");
    assert_eq!(
        (&events[2]["userId"], &events[2]["extend"]),
        (&json!("ann"), &json!("ext-ann"))
    );
    assert_eq!(
        (&events[3]["userId"], &events[3]["clientId"]),
        (&json!("ann"), &json!(id))
    );
    assert_eq!(events[4]["data"], json!({"say": "hi"}), "JSON is parsed");
    assert_eq!(
        events[5]["data"], "plain words",
        "anything else is the string"
    );
    assert_eq!(events[4]["groups"], json!(["room"]));
    assert_eq!(events[6]["reason"], "unbind");
    assert_eq!(
        (&events[8]["reason"], &events[8]["code"]),
        (&json!("closed"), &json!(1000))
    );
    for event in &events {
        assert!(event["id"].as_str().unwrap().len() >= 16);
        assert!(event["timeMs"].as_u64().unwrap() > 1_700_000_000_000);
    }
    for batch in receiver.received() {
        assert_eq!(batch.body["systemId"], "s");
        assert!(batch.body.get("dropped").is_none());
    }
}

#[actix_web::test]
async fn a_batch_refused_twice_arrives_on_the_third_try_once() {
    let receiver = Receiver::default();
    receiver.script(&[Answer::Status(500), Answer::Status(503)]);
    let url = receiver.start();
    let app = spawn_app().await;
    register_with_hook(&app, "s", &url).await;
    let client = app.connect("s").await;
    receiver
        .wait_for("the online event, acknowledged", |_| {
            receiver.received().len() >= 3
        })
        .await;
    let tries = receiver.received();
    assert_eq!(tries[0].body, tries[2].body, "the same batch, again");
    let (first, third): (u64, u64) = (
        tries[0].timestamp.parse().unwrap(),
        tries[2].timestamp.parse().unwrap(),
    );
    assert!(
        third >= first + 2,
        "signed afresh after the 1 s and 2 s backoffs"
    );
    assert_ne!(tries[0].signature, "", "each signed");
    // Later events come in later batches; the first is not sent a fourth time.
    drop(client);
    let events = receiver
        .wait_for("offline", |e| names(e).contains(&"client_offline"))
        .await;
    assert_eq!(names(&events), ["client_online", "client_offline"]);
    let first_id = &tries[0].body["events"][0]["id"];
    let deliveries = receiver
        .received()
        .iter()
        .filter(|r| {
            r.body["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| &e["id"] == first_id)
        })
        .count();
    assert_eq!(deliveries, 3);
}

/// Connects, binds, sends to the group and disconnects `rounds` times; how long it took.
async fn busy(app: &TestApp, system: &str, rounds: usize) -> Duration {
    let started = Instant::now();
    let mut listener = app.connect(system).await;
    app.bind(system, &listener, "g", "listener").await;
    listener.next_json().await;
    for i in 0..rounds {
        let client = app.connect(system).await;
        app.bind(system, &client, "g", "u").await;
        let reply = app
            .api(
                "send_to_group",
                system,
                json!({"groupName": "g", "data": i}),
            )
            .await
            .ok();
        // The listener gets the 1001, then the message.
        listener.next_json().await;
        let frame = listener.next_json().await;
        assert_eq!(frame["messageId"], reply["messageId"]);
        drop(client);
        listener.next_json().await; // 1002
    }
    started.elapsed()
}

#[actix_web::test]
async fn a_hanging_endpoint_slows_nothing_else() {
    let receiver = Receiver::default();
    receiver.script(&[Answer::Hang(Duration::from_secs(30)); 4]);
    let url = receiver.start();
    let app = spawn_app().await;
    app.register("plain").await;
    register_with_hook(&app, "hooked", &url).await;
    busy(&app, "plain", 5).await; // warm up
    let without = busy(&app, "plain", 40).await;
    let with = busy(&app, "hooked", 40).await;
    assert!(
        with < without * 3 + Duration::from_millis(200),
        "with a hanging webhook {with:?}, without {without:?}"
    );
    assert!(
        !receiver.received().is_empty(),
        "the webhook was being called"
    );
}

#[actix_web::test]
async fn an_overflowing_queue_says_how_many_it_dropped() {
    let receiver = Receiver::default();
    // The first batch times out (and is retried after 1 s) while events pile up.
    receiver.script(&[Answer::Hang(Duration::from_secs(2))]);
    let url = receiver.start();
    let app = spawn_app_with(|c| {
        c.webhooks.queue = 5;
        c.webhooks.timeout = Duration::from_millis(500);
    })
    .await;
    register_with_hook(&app, "s", &url).await;
    let first = app.connect("s").await;
    receiver
        .wait_for("a first request", |_| !receiver.received().is_empty())
        .await;
    let mut emitted = 1;
    for _ in 0..15 {
        drop(app.connect("s").await);
        emitted += 2;
    }
    drop(first);
    emitted += 1;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let received = receiver.events().len() as u64;
        let dropped = receiver.dropped();
        if received + dropped == emitted {
            assert!(dropped > 0, "the queue of 5 overflowed");
            let metrics = String::from_utf8(app.hub.metrics.render()).unwrap();
            let value = |name: &str| -> f64 {
                metrics
                    .lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0)
            };
            assert_eq!(value("wshub_webhook_events_dropped_total "), dropped as f64);
            assert!(value("wshub_webhook_requests_total{result=\"timeout\"}") >= 1.0);
            assert!(value("wshub_webhook_retries_total ") >= 1.0);
            assert!(value("wshub_webhook_requests_total{result=\"ok\"}") >= 1.0);
            assert!(metrics.contains("wshub_webhook_queue_depth "));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "received {received} + dropped {dropped} of {emitted}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn settings_that_refuse_private_addresses() {
    let app = spawn_app_with(|c| c.webhooks.deny_private = true).await;
    for url in [
        "http://127.0.0.1:9/h",
        "http://10.0.0.1/h",
        "http://[::1]:9/h",
        "http://localhost/h",
    ] {
        app.api(
            "register",
            "",
            json!({"systemId": "s", "webhook": {"url": url, "secret": SECRET}}),
        )
        .await
        .err(400, "webhook.url");
    }
}

#[actix_web::test]
async fn unregister_still_tells_the_backend_its_clients_left() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app().await;
    register_with_hook(&app, "s", &url).await;
    let client = app.connect("s").await;
    app.bind("s", &client, "g", "ann").await;
    app.api("unregister", "s", json!({})).await.ok();
    let events = receiver
        .wait_for("offline", |e| names(e).contains(&"user_offline"))
        .await;
    assert_eq!(
        names(&events),
        [
            "client_online",
            "group_occupied",
            "group_joined",
            "user_online",
            "group_left",
            "client_offline",
            "group_vacated",
            "user_offline"
        ]
    );
    assert_eq!(
        (&events[5]["reason"], &events[5]["code"]),
        (&json!("system_removed"), &json!(4001))
    );
    assert_eq!(events[4]["reason"], "offline");
    // Nothing comes back to a removed system: its users go offline at once, no grace.
    assert_eq!(events[7]["reason"], "system_removed");
}
