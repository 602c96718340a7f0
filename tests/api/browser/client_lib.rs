//! `/wshub.js` in a real Chromium: a page that uses it loses its connection (a TCP proxy between
//! the browser and wshub cuts it, no close frame) while messages are sent, reconnects by itself
//! and receives every missed frame once, in order; with recovery impossible it says
//! `recovered: false`; after 1008 it stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{browser, js, wait_until};
use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Pipes connections to wshub; can cut them all at once (as a network would) and refuse new
/// ones for a while.
struct Proxy {
    port: u16,
    cuts: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cuts, _) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let (cut_signal, refuse) = (cuts.clone(), refusing.clone());
        actix_web::rt::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refuse.load(Ordering::Relaxed) {
                    continue; // dropped: the browser sees the connection fail
                }
                let mut cut = cut_signal.subscribe();
                actix_web::rt::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target_port)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                    // Both sockets close here: no close frame either way.
                });
            }
        });
        Proxy {
            port,
            cuts,
            refusing,
        }
    }

    fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

/// Opens a page of `app`'s, imports `/wshub.js` and connects through `proxy_port` to
/// `system`; everything the connection reports goes to `window.log`.
async fn connect_page(c: &fantoccini::Client, app: &TestApp, proxy_port: u16, system: &str) {
    c.goto(&app.url("/docs")).await.unwrap();
    js(
        c,
        &format!(
            "(window.log = {{messages: [], welcomes: [], notices: [], states: []}},
              import('/wshub.js').then(m => {{
                window.conn = m.connect({{url: 'ws://127.0.0.1:{proxy_port}/ws', systemId: '{system}', maxDelayMs: 400}});
                conn.on('message', f => log.messages.push(f.messageId));
                conn.on('welcome', w => log.welcomes.push(w));
                conn.on('notice', n => log.notices.push(n));
                conn.on('state', s => log.states.push(s));
              }}), true)"
        ),
    )
    .await;
}

async fn send(app: &TestApp, method: &str, body: Value) -> String {
    let reply = app.api(method, "s", body).await.ok();
    reply["messageId"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_page_using_wshub_js_reconnects_and_receives_every_missed_frame_once_in_order() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let c = &browser.client;
    let app = spawn_app().await;
    app.register("s").await;
    let proxy = Proxy::start(app.port).await;
    connect_page(c, &app, proxy.port, "s").await;
    wait_until(c, "window.log.welcomes.length === 1").await;
    let id = js(c, "log.welcomes[0].clientId").await;
    let id = id.as_str().unwrap().to_owned();
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": id, "groupName": "g", "userId": "ann"}),
    )
    .await
    .ok();
    wait_until(c, "log.notices.length === 1 && log.notices[0].online").await;
    let notice = js(c, "log.notices[0].userId").await;
    assert_eq!(notice, "ann", "notices come with their data parsed");
    let mut sent = Vec::new();
    for n in 0..3 {
        sent.push(send(&app, "send_to_group", json!({"groupName": "g", "data": n})).await);
    }
    wait_until(c, "log.messages.length === 3").await;

    proxy.cut_all();
    for (method, body) in [
        ("send_to_group", json!({"groupName": "g", "data": "a"})),
        ("send_to_client", json!({"clientId": id, "data": "b"})),
        ("send_to_system", json!({"data": "c"})),
        ("send_to_group", json!({"groupName": "g", "data": "d"})),
        ("send_to_client", json!({"clientId": id, "data": "e"})),
    ] {
        sent.push(send(&app, method, body).await);
    }
    wait_until(c, "log.welcomes.length === 2 && log.messages.length >= 8").await;
    let welcome = js(c, "log.welcomes[1]").await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["clientId"], id.as_str());
    let live = send(
        &app,
        "send_to_group",
        json!({"groupName": "g", "data": "live"}),
    )
    .await;
    sent.push(live);
    wait_until(c, "log.messages.length === 9").await;
    let received = js(c, "log.messages").await;
    assert_eq!(received, json!(sent), "every frame once, in order");
    let states = js(c, "log.states.map(s => s.state)").await;
    assert!(
        states.as_array().unwrap().contains(&json!("reconnecting")),
        "{states}"
    );
}

#[actix_web::test]
async fn when_recovery_is_impossible_wshub_js_says_recovered_false() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let c = &browser.client;
    let app = spawn_app_with(|c| c.recovery.window = Duration::from_millis(500)).await;
    app.register("s").await;
    let proxy = Proxy::start(app.port).await;
    connect_page(c, &app, proxy.port, "s").await;
    wait_until(c, "window.log.welcomes.length === 1").await;
    proxy.refusing.store(true, Ordering::Relaxed);
    proxy.cut_all();
    // Past the window before the page gets through again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.refusing.store(false, Ordering::Relaxed);
    wait_until(c, "window.log.welcomes.length === 2").await;
    let welcomes = js(c, "log.welcomes").await;
    assert_eq!(welcomes[1]["recovered"], false, "{welcomes}");
    assert_eq!(welcomes[1]["reason"], "expired", "{welcomes}");
    assert_ne!(welcomes[1]["clientId"], welcomes[0]["clientId"]);
}

#[actix_web::test]
async fn after_1008_wshub_js_stops() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let c = &browser.client;
    let app = spawn_app().await;
    connect_page(c, &app, app.port, "not-registered").await;
    wait_until(
        c,
        "window.log.states.some(s => s.state === 'closed' && s.code === 1008)",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let states = js(c, "log.states").await;
    let connecting = states
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "connecting")
        .count();
    assert_eq!(connecting, 1, "no retry after 1008: {states}");
    let reason = js(c, "log.states.find(s => s.state === 'closed').reason").await;
    assert!(
        reason.as_str().unwrap().contains("not registered"),
        "{reason}"
    );
}
