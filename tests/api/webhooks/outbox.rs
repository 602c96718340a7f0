//! The webhook outbox of a single node (`--data-dir`): events a backend has not acknowledged
//! survive a SIGTERM and a `kill -9`, and arrive after the next start with the same ids and
//! fields, in order.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};

use super::{Receiver, SECRET};
use crate::helpers::ServerProcess;
use crate::systems::{call, scratch_dir};

/// A server process keeping its state in `dir`, with system "s" posting to `url` (registered
/// by the first one only).
async fn server_in(dir: &str, url: Option<&str>) -> ServerProcess {
    let server = ServerProcess::start(&["--data-dir", dir, "--shutdown-grace", "1"], &[]);
    if let Some(url) = url {
        let hook = json!({"systemId": "s", "webhook": {"url": url, "secret": SECRET}});
        call(&server.address, "register", "", hook).await.ok();
    }
    server
}

/// Opens `n` clients of "s" and reads their welcomes (their `client_online` is queued then).
pub(super) async fn clients(server: &ServerProcess, n: usize) -> Vec<crate::helpers::WsConn> {
    let mut conns = Vec::new();
    for _ in 0..n {
        let (conn, _) = crate::helpers::connect_at(&server.address, "s").await;
        conns.push(conn);
    }
    conns
}

/// Waits until the receiver has acknowledged `n` distinct events; returns them in order.
pub(super) async fn acknowledged(receiver: &Receiver, n: usize) -> Vec<Value> {
    acknowledged_within(receiver, n, Duration::from_secs(30)).await
}

async fn acknowledged_within(receiver: &Receiver, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let events = receiver.acknowledged();
        let distinct: HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
        if distinct.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} events acknowledged",
            distinct.len()
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each id once, and each event as it was first sent (the same fields).
pub(super) fn once_each_as_first_sent(receiver: &Receiver, events: &[Value]) {
    let mut first_sent: HashMap<String, Value> = HashMap::new();
    for received in receiver.received() {
        for event in received.body["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let id = event["id"].as_str().unwrap().to_owned();
            first_sent.entry(id).or_insert(event);
        }
    }
    let mut seen = HashSet::new();
    for event in events {
        let id = event["id"].as_str().unwrap();
        assert!(seen.insert(id), "{id} acknowledged twice");
        assert_eq!(&first_sent[id], event, "the same event every time");
    }
}

/// Checks that `events` are `client_online` and `client_offline` (with `reason`), each client
/// online before it is offline; returns the clients that came online.
pub(super) fn online_then_offline<'a>(events: &'a [Value], reason: &str) -> HashSet<&'a str> {
    let mut online = HashSet::new();
    for event in events {
        let client = event["clientId"].as_str().unwrap();
        match event["name"].as_str().unwrap() {
            "client_online" => assert!(online.insert(client)),
            "client_offline" => {
                assert!(online.contains(client), "online before offline: {client}");
                assert_eq!(event["reason"], reason);
            }
            other => panic!("unexpected {other}"),
        }
    }
    online
}

#[actix_web::test]
async fn events_pending_at_sigterm_arrive_after_the_restart_once_each_in_order() {
    let receiver = Receiver::default();
    receiver.refuse(true);
    let url = receiver.start();
    let dir = scratch_dir("outbox-term");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let mut first = server_in(&dir_arg, Some(&url)).await;
    let conns = clients(&first, 40).await;
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(first.child.id() as libc::pid_t, libc::SIGTERM) };
    let status = first.child.wait().unwrap();
    assert!(status.success());
    drop(conns);
    assert!(receiver.acknowledged().is_empty());

    receiver.refuse(false);
    let second = server_in(&dir_arg, None).await;
    // 40 client_online, then the shutdown's 40 client_offline.
    let events = acknowledged(&receiver, 80).await;
    once_each_as_first_sent(&receiver, &events);
    online_then_offline(&events, "shutdown");
    let health = call(&second.address, "get_system", "s", json!({}))
        .await
        .ok();
    assert_eq!(health["systemId"], "s");
    let http = awc::Client::new();
    let mut reply = http
        .get(format!("http://{}/healthz", second.address))
        .send()
        .await
        .unwrap();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["data"]["outbox"], "ok", "{body}");
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn after_a_kill_9_nothing_older_than_the_write_window_is_missing() {
    let receiver = Receiver::default();
    receiver.refuse(true);
    let url = receiver.start();
    let dir = scratch_dir("outbox-kill");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let mut first = server_in(&dir_arg, Some(&url)).await;
    let conns = clients(&first, 30).await;
    // Longer than the documented window (100 ms): every one of them is on disk.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    first.child.kill().unwrap();
    let _ = first.child.wait();
    drop(conns);

    receiver.refuse(false);
    let second = server_in(&dir_arg, None).await;
    let events = acknowledged(&receiver, 30).await;
    once_each_as_first_sent(&receiver, &events);
    assert!(events.iter().all(|e| e["name"] == "client_online"));
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A full disk: the outbox says so in `/healthz`, pushes are served as usual, the events that
/// could not be written are reported as `dropped`, and once there is room again the outbox is
/// written to again without a restart.
#[actix_web::test]
async fn a_full_disk_drops_events_counted_and_the_outbox_recovers() {
    let Some(disk) = crate::systems::SmallDisk::mount("4m") else {
        return;
    };
    let receiver = Receiver::default();
    receiver.refuse(true);
    let url = receiver.start();
    let data = disk.0.join("data");
    let app = crate::helpers::spawn_app_with(|c| {
        c.data_dir = data.clone();
        c.ephemeral = false;
    })
    .await;
    super::register_with_hook(&app, "s", &url).await;
    let outbox = |app: &crate::helpers::TestApp| {
        let (url, http) = (app.url("/healthz"), app.http.clone());
        async move {
            let mut reply = http.get(url).send().await.unwrap();
            reply.json::<Value>().await.unwrap()["data"]["outbox"].clone()
        }
    };
    let mut kept = vec![app.connect("s").await];
    assert_eq!(outbox(&app).await, "ok");
    let filler = disk.fill();
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox(&app).await != "failing" {
        assert!(Instant::now() < deadline, "the outbox never failed");
        kept.push(app.connect("s").await);
    }
    // Pushes do not depend on it.
    let sent = app
        .api(
            "send_to_client",
            "s",
            json!({"clientId": kept[0].id, "msg": "still served"}),
        )
        .await
        .ok();
    assert_eq!(kept[0].next_json().await["messageId"], sent["messageId"]);

    std::fs::remove_file(&filler).unwrap();
    receiver.refuse(false);
    let last = app.connect("s").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox(&app).await != "ok" {
        assert!(Instant::now() < deadline, "the outbox never recovered");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let events = receiver
        .wait_for("the last client's event", |events| {
            events.iter().any(|e| e["clientId"] == last.id.as_str())
        })
        .await;
    assert!(receiver.dropped() > 0, "the lost events are reported");
    assert!(events.iter().any(|e| e["clientId"] == kept[0].id.as_str()));
}

/// The backend is down for a whole minute while clients come and go: once it is up, the next
/// retry (the backoff is at most 60 s) brings it every event, once each, in order.
#[actix_web::test]
async fn a_receiver_down_for_a_minute_then_up_gets_everything_in_order() {
    let receiver = Receiver::default();
    receiver.refuse(true);
    let url = receiver.start();
    let dir = scratch_dir("outbox-minute");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let server = server_in(&dir_arg, Some(&url)).await;
    let down = Instant::now();
    let mut connected = Vec::new();
    let mut previous: Option<crate::helpers::WsConn> = None;
    while down.elapsed() < Duration::from_secs(60) {
        let (conn, id) = crate::helpers::connect_at(&server.address, "s").await;
        connected.push(id);
        if let Some(mut old) = previous.replace(conn) {
            old.send(awc::ws::Message::Close(None)).await.unwrap();
        }
        actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(receiver.acknowledged().is_empty());
    assert!(receiver.received().len() > 3, "retried meanwhile");
    receiver.refuse(false);
    // Every client's client_online, and each but the last one's client_offline.
    let expected = 2 * connected.len() - 1;
    let events = acknowledged_within(&receiver, expected, Duration::from_secs(90)).await;
    once_each_as_first_sent(&receiver, &events);
    let online: Vec<&str> = events
        .iter()
        .filter(|e| e["name"] == "client_online")
        .map(|e| e["clientId"].as_str().unwrap())
        .collect();
    assert_eq!(online, connected, "in the order they connected");
    for (at, event) in events.iter().enumerate() {
        if event["name"] == "client_offline" {
            let client = &event["clientId"];
            assert!(
                events[..at]
                    .iter()
                    .any(|e| e["name"] == "client_online" && &e["clientId"] == client),
                "online before offline: {client}"
            );
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
