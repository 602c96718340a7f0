//! What an outsider (or an earlier tenant) could do to a system's webhook queue: fill it with
//! client frames, reach an address the operator refused, read another registration's events,
//! or have them thrown away by a restart.

use std::time::{Duration, Instant};

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::{json, Value};

use super::{names, register_with_hook, Answer, Receiver, SECRET};
use crate::helpers::{spawn_app, spawn_app_with, unique};
use crate::processes::ServerProcess;

#[actix_web::test]
async fn a_queue_is_bounded_in_bytes_and_client_data_arrives_as_sent() {
    let receiver = Receiver::default();
    // The first batch hangs past the timeout while the client's frames pile up.
    receiver.script(&[Answer::Hang(Duration::from_secs(2))]);
    let url = receiver.start();
    let app = spawn_app_with(|c| {
        c.webhooks.queue_bytes = 8 * 1024;
        c.webhooks.timeout = Duration::from_millis(500);
    })
    .await;
    register_with_hook(&app, "s", &url).await;
    let mut client = app.connect("s").await;
    receiver
        .wait_for("a first request", |_| !receiver.received().is_empty())
        .await;
    // 20 frames of about 1 KB: far under the queue's 10,000 events, over its 8 KiB.
    let frame = format!("[{}0]", "0,".repeat(500));
    for _ in 0..20 {
        client
            .conn
            .send(Message::Text(frame.clone().into()))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let messages: Vec<Value> = receiver
            .events()
            .into_iter()
            .filter(|e| e["name"] == "client_message")
            .collect();
        let lost = receiver.dropped();
        if messages.len() as u64 + lost == 20 {
            assert!(lost >= 10, "8 KiB holds at most 8 of them: {lost} dropped");
            // Kept as the bytes the client sent, delivered as the same JSON value.
            let sent: Value = serde_json::from_str(&frame).unwrap();
            assert!(messages.iter().all(|m| m["data"] == sent));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} received + {lost} dropped of 20",
            messages.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_private_ip_url_stored_before_the_flag_gets_no_delivery() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let dir = std::env::temp_dir().join(unique("wshub-deny-private"));
    {
        // Stored while private addresses were allowed.
        let store = wshub::store::SystemStore::open(&dir).unwrap();
        let mut settings = wshub::settings::SystemSettings::new(1);
        settings.webhook = Some(wshub::settings::WebhookSettings {
            url: url.replace("127.0.0.1", "[::ffff:127.0.0.1]"),
            secret: SECRET.into(),
            events: wshub::settings::EventName::ALL.to_vec(),
        });
        store.put("s", &settings).unwrap();
    }
    let app = spawn_app_with(|c| {
        c.data_dir = dir.clone();
        c.ephemeral = false;
        c.webhooks.deny_private = true;
    })
    .await;
    let _client = app.connect("s").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while app
        .metric("wshub_webhook_requests_total{result=\"unreachable\"}")
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "no delivery was refused");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn queued_events_of_a_removed_system_never_reach_the_next_owner_of_its_id() {
    let (old, new) = (Receiver::default(), Receiver::default());
    // The old endpoint refuses at first: its events are still queued when the id changes hands.
    old.script(&[Answer::Status(500)]);
    let (old_url, new_url) = (old.start(), new.start());
    let app = spawn_app().await;
    register_with_hook(&app, "s", &old_url).await;
    let first = app.connect("s").await;
    app.bind("s", &first, "g", "ann").await;
    old.wait_for("a first request", |_| !old.received().is_empty())
        .await;
    app.api("unregister", "s", json!({})).await.ok();
    register_with_hook(&app, "s", &new_url).await;
    let second = app.connect("s").await;

    let theirs = old
        .wait_for("the old tenant's offline", |e| {
            names(e).contains(&"client_offline")
        })
        .await;
    assert!(theirs.iter().all(|e| e["clientId"] != second.id.as_str()));
    let ours = new
        .wait_for("the new tenant's online", |e| {
            names(e).contains(&"client_online")
        })
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let ours: Vec<Value> = new.events().into_iter().chain(ours).collect();
    assert!(
        ours.iter().all(|e| e["clientId"] != first.id.as_str()),
        "the new owner got the old tenant's events: {ours:#?}"
    );
}

#[actix_web::test]
async fn sigterm_delivers_queued_events_within_the_grace() {
    let receiver = Receiver::default();
    // Every batch takes a second to be acknowledged.
    receiver.script(&[Answer::Hang(Duration::from_secs(1)); 20]);
    let url = receiver.start();
    let server = ServerProcess::start(&["--shutdown-grace", "10"], &[]);
    let base = format!("http://{}", server.address);
    let token = crate::helpers::mint(None, 600);
    let http = awc::Client::new();
    let reply = http
        .post(format!("{base}/api/register"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_body(json!({"systemId": "s", "webhook": {"url": url, "secret": SECRET}}).to_string())
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let mut clients = Vec::new();
    for _ in 0..150 {
        let (_, mut conn) = awc::Client::new()
            .ws(format!("ws://{}/ws?systemId=s", server.address))
            .connect()
            .await
            .unwrap();
        // Its welcome: the client is registered (and its client_online queued) before SIGTERM.
        let welcome = futures_util::StreamExt::next(&mut conn).await;
        assert!(matches!(welcome, Some(Ok(_))), "no welcome: {welcome:?}");
        clients.push(conn);
    }
    let pid = server.child.id() as libc::pid_t;
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let events = receiver
        .wait_for("every client's shutdown offline", |e| {
            e.iter()
                .filter(|e| e["name"] == "client_offline" && e["reason"] == "shutdown")
                .count()
                == 150
        })
        .await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["name"] == "client_online")
            .count(),
        150
    );
    drop(clients);
}
