//! Soak: 500 clients churn (connect, bind, receive, disconnect) against the built binary for a
//! bounded time while stable clients receive a steady stream. The server's RSS at the end must be
//! within 10% of its RSS after warm-up, and the stable clients must lose nothing.
//! Ignored by default; `.ci/run` runs it for 60 s:
//! `WSHUB_SOAK_SECS=60 cargo test --release --test api -- --ignored soak`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::ws::Frame;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{mint, next_json, ServerProcess};

const CHURNERS: usize = 500;
const STABLE: usize = 20;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn api(http: &awc::Client, address: &str, method: &str, body: Value) -> Value {
    let mut reply = http
        .post(format!("http://{address}/api/{method}"))
        .insert_header(("Authorization", format!("Bearer {}", mint(None, 3600))))
        .insert_header(("SystemId", "soak"))
        .send_json(&body)
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200, "{method} {body}");
    reply.json().await.unwrap()
}

/// One churning client: connect, bind, see its own 1001, read until a group push, leave.
async fn churn_once(address: Rc<String>, http: awc::Client, n: usize) {
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://{address}/ws?systemId=soak"))
        .connect()
        .await
        .unwrap();
    let welcome = next_json(&mut conn).await;
    let id = welcome["data"]["clientId"].as_str().unwrap().to_owned();
    let group = format!("churn-{}", n % 10);
    api(
        &http,
        &address,
        "bind_to_group",
        json!({"clientId": id, "groupName": group}),
    )
    .await;
    api(
        &http,
        &address,
        "send_to_group",
        json!({"groupName": group, "code": 9}),
    )
    .await;
    loop {
        let frame = next_json(&mut conn).await;
        if frame["code"] == 9 {
            break;
        }
    }
}

#[test]
#[ignore]
fn soak() {
    let secs: u64 = std::env::var("WSHUB_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let server = ServerProcess::start(&[], &[]);
    let pid = server.child.id();
    let address = Rc::new(server.address.clone());
    actix_web::rt::System::new().block_on(async move {
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        api(&http, &address, "register", json!({"systemId": "soak"})).await;

        // Stable clients in one group, each counting the sequence it receives.
        let mut stable = Vec::new();
        for _ in 0..STABLE {
            let (conn, id) = crate::helpers::connect_at(&address, "soak").await;
            api(&http, &address, "bind_to_group", json!({"clientId": id, "groupName": "stable"})).await;
            stable.push(conn);
        }
        let stop = Rc::new(Cell::new(false));
        let readers: Vec<_> = stable
            .into_iter()
            .map(|mut conn| {
                actix_web::rt::spawn(async move {
                    let mut next = 0u64;
                    while let Some(Ok(frame)) = conn.next().await {
                        match frame {
                            Frame::Text(bytes) => {
                                let v: Value = serde_json::from_slice(&bytes).unwrap();
                                if v["code"] == 5 {
                                    let seq = v["data"].as_u64().unwrap();
                                    assert_eq!(seq, next, "stable client lost a message");
                                    next += 1;
                                    if v["msg"] == "last" {
                                        return next;
                                    }
                                }
                            }
                            Frame::Ping(p) => {
                                futures_util::SinkExt::send(&mut conn, awc::ws::Message::Pong(p))
                                    .await
                                    .unwrap();
                            }
                            _ => {}
                        }
                    }
                    panic!("stable client disconnected after {next} messages");
                })
            })
            .collect();

        // The steady stream to the stable group.
        let sender = {
            let (http, address, stop) = (http.clone(), address.clone(), stop.clone());
            actix_web::rt::spawn(async move {
                let mut seq = 0u64;
                while !stop.get() {
                    api(&http, &address, "send_to_group", json!({"groupName": "stable", "code": 5, "data": seq})).await;
                    seq += 1;
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
                api(&http, &address, "send_to_group", json!({"groupName": "stable", "code": 5, "msg": "last", "data": seq})).await;
                seq + 1
            })
        };

        // 500 concurrent churners, each looping until the time is up.
        let started = Instant::now();
        let cycles = Rc::new(Cell::new(0u64));
        let churners: Vec<_> = (0..CHURNERS)
            .map(|n| {
                let (http, address, stop, cycles) =
                    (http.clone(), address.clone(), stop.clone(), cycles.clone());
                actix_web::rt::spawn(async move {
                    while !stop.get() {
                        churn_once(address.clone(), http.clone(), n).await;
                        cycles.set(cycles.get() + 1);
                    }
                })
            })
            .collect();

        let warm_up = Duration::from_secs(secs / 6).max(Duration::from_secs(2));
        actix_web::rt::time::sleep(warm_up).await;
        let rss_warm = rss_kib(pid);
        let mut rss_peak = rss_warm;
        let mut samples = Vec::new();
        while started.elapsed() < Duration::from_secs(secs) {
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
            let rss = rss_kib(pid);
            rss_peak = rss_peak.max(rss);
            samples.push(rss / 1024);
        }
        eprintln!("server RSS samples (MiB, every 0.5 s): {samples:?}");
        stop.set(true);
        for churner in churners {
            churner.await.unwrap();
        }
        let sent = sender.await.unwrap();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), sent, "a stable client missed messages");
        }
        // Let the last disconnects settle before the final reading.
        actix_web::rt::time::sleep(Duration::from_secs(1)).await;
        let rss_end = rss_kib(pid);
        eprintln!(
            "soak {secs}s: {} churn cycles, {sent} stable messages; server RSS warm {rss_warm} KiB, peak {rss_peak} KiB, end {rss_end} KiB",
            cycles.get()
        );
        assert!(
            rss_end * 10 <= rss_warm * 11,
            "RSS grew from {rss_warm} KiB after warm-up to {rss_end} KiB"
        );
    });
    drop(server);
}
