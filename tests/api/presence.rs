//! 1001 / 1002 notices for bind, rebind, unbind, close_client, close frame, dropped TCP and a
//! silent client found by the heartbeat.

use std::time::{Duration, Instant};

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::json;

use crate::helpers::{assert_next_is_marker, spawn_app, spawn_app_with, TestApp, WsClient};

const ONLINE: i64 = 1001;
const OFFLINE: i64 = 1002;

/// Three clients of system "s": `a` and `b` bound to "room" (notices consumed), `c` outside.
async fn room(app: &TestApp) -> (WsClient, WsClient, WsClient) {
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    let c = app.connect("s").await;
    app.bind("s", &a, "room", "alice").await;
    a.expect_notice(ONLINE, &a.id.clone(), "alice").await;
    app.bind("s", &b, "room", "bob").await;
    a.expect_notice(ONLINE, &b.id, "bob").await;
    b.expect_notice(ONLINE, &b.id.clone(), "bob").await;
    (a, b, c)
}

#[actix_web::test]
async fn bind_notifies_every_member_including_the_new_one_and_rebind_is_silent() {
    let app = spawn_app().await;
    let (mut a, mut b, mut c) = room(&app).await;
    // Re-binding to the same group: no notice, no change of membership.
    app.bind("s", &b, "room", "bob").await;
    let list = app
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["count"], 2);
    // The outsider heard nothing of the room.
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut b, &mut c]).await;
}

#[actix_web::test]
async fn unbind_notifies_the_remaining_members_only() {
    let app = spawn_app().await;
    let (mut a, mut b, mut c) = room(&app).await;
    app.api(
        "unbind_from_group",
        "s",
        json!({"clientId": b.id, "groupName": "room"}),
    )
    .await
    .ok();
    a.expect_notice(OFFLINE, &b.id, "bob").await;
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut b, &mut c]).await;
}

#[actix_web::test]
async fn close_client_notifies_the_remaining_members() {
    let app = spawn_app().await;
    let (mut a, mut b, mut c) = room(&app).await;
    app.api("close_client", "s", json!({"clientId": b.id}))
        .await
        .ok();
    a.expect_notice(OFFLINE, &b.id, "bob").await;
    assert_eq!(u16::from(b.expect_close().await.unwrap().code), 1000);
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut c]).await;
}

#[actix_web::test]
async fn a_client_that_closes_its_socket_goes_offline() {
    let app = spawn_app().await;
    let (mut a, mut b, _c) = room(&app).await;
    b.conn.send(Message::Close(None)).await.unwrap();
    a.expect_notice(OFFLINE, &b.id, "bob").await;
}

#[actix_web::test]
async fn a_dropped_tcp_connection_goes_offline() {
    let app = spawn_app().await;
    let (mut a, b, _c) = room(&app).await;
    let gone = b.id.clone();
    drop(b); // no close frame: the socket just goes away
    a.expect_notice(OFFLINE, &gone, "bob").await;
    app.wait_for_stats(|s| s.clients == 2).await;
}

#[actix_web::test]
async fn a_silent_client_is_dropped_by_the_heartbeat() {
    let app = spawn_app_with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.client_timeout = Duration::from_millis(600);
    })
    .await;
    let (mut a, b, _c) = room(&app).await;
    // b stays connected but answers nothing from now on, like a peer that vanished without FIN.
    let started = Instant::now();
    a.expect_notice(OFFLINE, &b.id, "bob").await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let info = app
        .api("get_client_info", "s", json!({"clientId": b.id}))
        .await
        .ok();
    assert_eq!(info["online"], false);
    drop(b);
}
