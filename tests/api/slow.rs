//! Slow consumers: a client that stops reading is closed with 4008 and freed, while the other
//! members of its group get every message.

use std::time::Duration;

use awc::ws::Frame;
use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp, WsClient, WAIT};

/// Resident memory of this process (server and test clients), in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The next text frame, as JSON (other frames are skipped); the connection must stay open.
async fn next_text(client: &mut WsClient) -> serde_json::Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), client.conn.next())
            .await
            .expect("frames keep coming")
            .expect("open: the reader was not closed")
            .expect("valid");
        if let Frame::Text(bytes) = frame {
            return serde_json::from_slice(&bytes).unwrap();
        }
    }
}

/// Reads frames until `expected` pushes with code 7 arrived; checks they came in order.
/// Gives the client back so it stays connected.
async fn read_all(mut client: WsClient, expected: usize) -> (WsClient, usize) {
    let mut next = 0;
    while next < expected {
        let value = next_text(&mut client).await;
        if value["code"] == 7 {
            assert_eq!(value["data"]["seq"], next, "in order, none lost");
            next += 1;
        }
    }
    (client, next)
}

/// Waits until the gate counts `open` connections (a connection counts until actix-http lets go
/// of it, not just until its session stopped).
async fn until_open_connections(app: &TestApp, open: usize, never: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while app.hub.gate.open() > open {
        assert!(std::time::Instant::now() < deadline, "{never}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn one_client_that_stops_reading_does_not_hold_up_its_group() {
    const MEMBERS: usize = 100;
    const MESSAGES: usize = 5000;
    let app = spawn_app_with(|c| {
        c.workers = 2;
        c.limits.max_outbound_queue = 256 * 1024;
        // Long enough that the slow client can still take its close frame when it reads again.
        c.slow_close_grace = Duration::from_secs(60);
    })
    .await;
    app.register("s").await;
    let mut clients = Vec::new();
    for _ in 0..MEMBERS {
        let client = app.connect("s").await;
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": "g"}),
        )
        .await
        .ok();
        clients.push(client);
    }
    // The last one stops reading from now on: nothing polls its socket.
    let mut slow = clients.pop().unwrap();
    let slow_id = slow.id.clone();
    let readers: Vec<_> = clients
        .into_iter()
        .map(|client| actix_web::rt::spawn(read_all(client, MESSAGES)))
        .collect();

    let rss_before = rss_kib();
    let payload = "p".repeat(1000);
    for seq in 0..MESSAGES {
        let reply = app
            .api(
                "send_to_group",
                "s",
                json!({"groupName": "g", "code": 7, "data": {"seq": seq, "pad": payload}}),
            )
            .await
            .ok();
        // The group send never waits for the slow member.
        assert!(reply["count"].as_u64().unwrap() >= (MEMBERS - 1) as u64);
    }
    let mut kept = Vec::new();
    for reader in readers {
        let (client, received) = reader.await.unwrap();
        assert_eq!(received, MESSAGES);
        kept.push(client);
    }
    let grown_mib = rss_kib().saturating_sub(rss_before) / 1024;
    // Server and 100 clients in one process: the slow client's backlog is bounded at 256 KiB.
    assert!(grown_mib < 64, "RSS grew by {grown_mib} MiB");

    // It was evicted: offline, gone from the group, counted as slow.
    let info = app
        .api("get_client_info", "s", json!({"clientId": slow_id}))
        .await
        .ok();
    assert_eq!(info["online"], false);
    let list = app
        .api("get_online_list", "s", json!({"groupName": "g"}))
        .await
        .ok();
    assert_eq!(list["count"], MEMBERS - 1);
    let metrics = String::from_utf8(
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .body()
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(metrics.contains(r#"wshub_clients_closed_total{reason="slow"} 1"#));

    // When it reads again it finds part of the stream, then the 4008 close.
    let reason = loop {
        let frame = tokio::time::timeout(WAIT, slow.conn.next())
            .await
            .expect("frames")
            .expect("open")
            .expect("valid");
        if let Frame::Close(reason) = frame {
            break reason.expect("close reason");
        }
    };
    assert_eq!(u16::from(reason.code), 4008);
    assert_eq!(reason.description.as_deref(), Some("slow consumer"));
}

#[actix_web::test]
async fn a_client_that_never_reads_again_is_cut_off_and_freed() {
    let app = spawn_app_with(|c| {
        c.limits.max_outbound_queue = 64 * 1024;
        // A push may not be larger than the queue it must fit in.
        c.limits.max_push_size = 16 * 1024;
        c.slow_close_grace = Duration::from_millis(200);
    })
    .await;
    app.register("s").await;
    let frozen = app.connect("s").await;
    let mut watcher = app.connect("s").await;
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": frozen.id, "groupName": "g", "userId": "frozen"}),
    )
    .await
    .ok();
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": watcher.id, "groupName": "g"}),
    )
    .await
    .ok();
    assert_eq!(app.hub.gate.open(), 2);
    let payload = "p".repeat(1000);
    let mut sent = 0;
    // Push to the frozen client alone until it is evicted.
    loop {
        let reply = app
            .api(
                "send_to_client",
                "s",
                json!({"clientId": frozen.id, "data": payload}),
            )
            .await;
        if reply.status == 404 {
            break;
        }
        reply.ok();
        sent += 1;
        assert!(sent < 10_000, "never evicted");
    }
    // The group heard it go offline.
    loop {
        let frame = watcher.next_json().await;
        if frame["code"] == 1002 {
            assert_eq!(frame["sendUserId"], "frozen");
            break;
        }
    }
    // Its connection never wrote again, yet it was freed (and stopped counting at the gate): the
    // socket was shut down from outside after the grace period.
    until_open_connections(&app, 1, "the frozen connection was never freed").await;
    drop(frozen);
}

#[actix_web::test]
async fn a_closed_client_that_does_not_read_its_last_frames_is_cut_off_after_the_grace() {
    let app = spawn_app_with(|c| {
        // Room for everything below: this client is not a slow consumer, only closed.
        c.limits.max_outbound_queue = 32 * 1024 * 1024;
        c.slow_close_grace = Duration::from_millis(200);
    })
    .await;
    app.register("s").await;
    // It has read its welcome (to learn its id), and reads nothing from now on.
    let mut stuck = app.connect("s").await;
    // More than the kernel's buffers hold, so the connection cannot write it all.
    let payload = "p".repeat(60 * 1024);
    for _ in 0..300 {
        app.api(
            "send_to_client",
            "s",
            json!({"clientId": stuck.id, "data": payload}),
        )
        .await
        .ok();
    }
    assert_eq!(app.hub.gate.open(), 1);
    app.api("close_client", "s", json!({"clientId": stuck.id}))
        .await
        .ok();
    // Its session stopped at once; its connection, stuck on the frames before the close, is
    // counted until the grace is over and its socket is shut down.
    until_open_connections(&app, 0, "the connection was never cut").await;
    // Reading now: what the kernel held, then the end, without the close frame it never took.
    loop {
        match tokio::time::timeout(WAIT, stuck.conn.next())
            .await
            .expect("ends")
        {
            Some(Ok(Frame::Close(_))) => panic!("the close frame went out: nothing was stuck"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
}

/// Clients that read on a thread of their own (as real clients read on their own machines, not
/// on the server's thread), each until `expected` pushes (code 7) arrived or the server closed
/// it. Sends the clients' ids on `ids` once connected; returns, per client, the pushes it got
/// and the close it got, if any.
fn readers_on_their_own_thread(
    ws_url: String,
    clients: usize,
    expected: usize,
    ids: std::sync::mpsc::Sender<String>,
) -> std::thread::JoinHandle<Vec<(usize, Option<String>)>> {
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (_, mut conn) = awc::Client::new()
                    .ws(ws_url.as_str())
                    .max_frame_size(1 << 20)
                    .connect()
                    .await
                    .expect("websocket handshake");
                let welcome = crate::helpers::next_json(&mut conn).await;
                let id = welcome["data"]["clientId"].as_str().unwrap().to_owned();
                ids.send(id).unwrap();
                tasks.push(actix_web::rt::spawn(async move {
                    let mut received = 0;
                    while received < expected {
                        let frame = tokio::time::timeout(Duration::from_secs(60), conn.next())
                            .await
                            .expect("frames keep coming");
                        match frame {
                            // Kept cheap, so that the readers keep up: the code comes early.
                            Some(Ok(Frame::Text(bytes))) => {
                                let head = &bytes[..bytes.len().min(120)];
                                if head.windows(9).any(|w| w == b"\"code\":7,") {
                                    received += 1;
                                }
                            }
                            Some(Ok(Frame::Close(reason))) => {
                                return (received, Some(format!("{reason:?}")))
                            }
                            Some(Ok(_)) => {}
                            other => return (received, Some(format!("{other:?}"))),
                        }
                    }
                    (received, None)
                }));
            }
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
    })
}

#[actix_web::test]
async fn a_server_behind_with_delivery_closes_no_reader() {
    const MEMBERS: usize = 100;
    const SENDERS: usize = 32;
    const PER_SENDER: usize = 2;
    // Room for sixteen frames per client: a reader the busy test machine stalls for a moment
    // fits (with four, one did, 1 run in 6); every client that is merely waiting for its turn
    // to write would still pass it several times over (64 frames of 3.5 KB) if that counted
    // against it.
    let app = spawn_app_with(|c| {
        c.limits.max_outbound_queue = 64 * 1024;
        c.limits.max_push_size = 4 * 1024;
    })
    .await;
    app.register("s").await;
    let total = SENDERS * PER_SENDER;
    let (ids_tx, ids) = std::sync::mpsc::channel();
    let readers = readers_on_their_own_thread(app.ws_url("?systemId=s"), MEMBERS, total, ids_tx);
    for _ in 0..MEMBERS {
        let id = loop {
            match ids.try_recv() {
                Ok(id) => break id,
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                Err(err) => panic!("the readers' thread ended: {err}"),
            }
        };
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": id, "groupName": "g"}),
        )
        .await
        .ok();
    }
    // Far more than the server delivers: many sends in flight at once, each near the push size.
    let payload = "p".repeat(3500);
    let senders = (0..SENDERS).map(|_| async {
        for _ in 0..PER_SENDER {
            let body = json!({"groupName": "g", "code": 7, "data": payload});
            app.api("send_to_group", "s", body).await.ok();
        }
    });
    futures_util::future::join_all(senders).await;
    let results = actix_web::rt::task::spawn_blocking(move || readers.join().unwrap())
        .await
        .unwrap();
    for (received, closed) in results {
        assert_eq!(closed, None, "a reading client was closed");
        assert_eq!(received, total, "every accepted send reached every reader");
    }
    assert_eq!(
        app.metric(r#"wshub_clients_closed_total{reason="slow"}"#)
            .await,
        0.0
    );
}

/// Reads pushes until one with code 9; returns the `seq` of every code-7 push, in arrival order.
async fn read_until_marker(mut client: WsClient) -> Vec<i64> {
    let mut seqs = Vec::new();
    loop {
        let value = next_text(&mut client).await;
        match value["code"].as_i64() {
            Some(7) => seqs.push(value["data"]["seq"].as_i64().unwrap()),
            Some(9) => return seqs,
            _ => {}
        }
    }
}

#[actix_web::test]
async fn an_overloaded_server_refuses_sends_with_503_and_delivers_every_send_it_took() {
    const READERS: usize = 400;
    const IN_FLIGHT: i64 = 48;
    // A gate this tight (a 1 ms lag, 1 ms of waiting) makes any burst an overload.
    let app = spawn_app_with(|c| {
        c.overload = wshub::config::OverloadGate {
            lag: Duration::from_millis(1),
            wait: Duration::from_millis(1),
        };
    })
    .await;
    app.register("s").await;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let client = app.connect("s").await;
        readers.push(actix_web::rt::spawn(read_until_marker(client)));
    }

    let send = |seq: i64, code: i64| {
        app.api(
            "send_to_system",
            "s",
            json!({"code": code, "data": {"seq": seq}}),
        )
    };
    // Bursts until one is refused (the first almost always is).
    let mut taken = Vec::new();
    let mut refused = 0;
    for burst in 0..5 {
        let calls = (0..IN_FLIGHT).map(|i| send(burst * IN_FLIGHT + i, 7));
        let replies = futures_util::future::join_all(calls).await;
        for (i, reply) in replies.into_iter().enumerate() {
            match reply.status {
                200 => taken.push(burst * IN_FLIGHT + i as i64),
                503 => {
                    reply.err(503, "overloaded");
                    refused += 1;
                }
                other => panic!("status {other}: {reply:?}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "no send was refused");
    // Once delivery has caught up, sends are taken again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if send(-1, 9).await.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never taken again");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Every reader got every send that was taken and none that was refused; none was closed.
    taken.sort_unstable();
    for reader in readers {
        let mut seqs = reader.await.unwrap();
        seqs.sort_unstable();
        assert_eq!(seqs, taken);
    }
    assert_eq!(
        app.metric("wshub_clients_closed_total{reason=\"slow\"}")
            .await,
        0.0
    );
}
