//! Connection state recovery on one node: a client whose connection is cut comes back with its
//! clientId, its groups and every frame it missed, in order, once; nobody else notices. Cuts are
//! real: the test drops its TCP connection without a close frame.

use std::time::Duration;

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::{json, Value};

use crate::helpers::{next_json, spawn_app, spawn_app_with, TestApp, WsClient, WsConn};
use crate::webhooks::{names, register_with_hook, Receiver};

mod bounds;
mod cluster;
mod property;

/// A client that asked for recovery, with what it needs to resume.
struct Recoverable {
    client: WsClient,
    token: String,
    /// messageId of the last push it read.
    last: Option<String>,
}

impl Recoverable {
    async fn next_push(&mut self) -> Value {
        let frame = self.client.next_json().await;
        self.last = frame["messageId"].as_str().map(str::to_owned);
        frame
    }

    /// Cuts the connection as a network would: no close frame.
    fn cut(self) -> (String, String, Option<String>) {
        drop(self.client.conn);
        (self.client.id, self.token, self.last)
    }
}

async fn connect_recoverable(app: &TestApp, system: &str) -> Recoverable {
    let mut conn = app.ws_raw(&format!("?systemId={system}&recovery=1")).await;
    let welcome = next_json(&mut conn).await;
    let data = &welcome["data"];
    assert_eq!(data["recovered"], false, "{welcome}");
    assert!(data.get("reason").is_none(), "{welcome}");
    Recoverable {
        client: WsClient {
            id: data["clientId"].as_str().unwrap().to_owned(),
            conn,
        },
        token: data["resumeToken"].as_str().unwrap().to_owned(),
        last: None,
    }
}

/// Opens `/ws?systemId=..&resume=..&last=..`; returns the connection and its welcome's data.
async fn resume(app: &TestApp, system: &str, token: &str, last: Option<&str>) -> (WsConn, Value) {
    let mut conn = app
        .ws_raw(&format!(
            "?systemId={system}&resume={token}&last={}",
            last.unwrap_or("")
        ))
        .await;
    let welcome = next_json(&mut conn).await;
    assert_eq!(welcome["code"], 0, "{welcome}");
    (conn, welcome["data"].clone())
}

/// Registers "s" and connects a plain peer and a recovery client ("rita"), both in group "g".
async fn peer_and_recoverable(app: &TestApp) -> (WsClient, Recoverable) {
    app.register("s").await;
    peer_and_bound_recoverable(app).await
}

/// A plain peer and a recovery client ("rita") of the registered system "s", both in "g".
async fn peer_and_bound_recoverable(app: &TestApp) -> (WsClient, Recoverable) {
    let mut peer = app.connect("s").await;
    app.bind("s", &peer, "g", "peer").await;
    peer.next_json().await;
    let r = connect_recoverable(app, "s").await;
    app.bind("s", &r.client, "g", "rita").await;
    peer.expect_notice(1001, &r.client.id, "rita").await;
    (peer, r)
}

/// Resumes `id` and checks that it is recovered with exactly the frames `missed`, in order;
/// returns the connection and the welcome's data.
async fn resume_recovered(
    app: &TestApp,
    (token, last): (&str, Option<&str>),
    id: &str,
    missed: &[String],
) -> (WsConn, Value) {
    let (mut conn, welcome) = resume(app, "s", token, last).await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["clientId"], id);
    assert_eq!(welcome["missed"], missed.len());
    for message_id in missed {
        assert_eq!(next_json(&mut conn).await["messageId"], message_id.as_str());
    }
    (conn, welcome)
}

/// `get_client_info`'s data.
async fn info(app: &TestApp, system: &str, client_id: &str) -> Value {
    app.api("get_client_info", system, json!({ "clientId": client_id }))
        .await
        .ok()
}

/// Waits until the server has noticed the cut: the client is online but not connected.
async fn until_away(app: &TestApp, system: &str, client_id: &str) {
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let info = info(app, system, client_id).await;
        assert_eq!(info["online"], true, "an away client stays online: {info}");
        if info["connected"] == false {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never away: {info}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends a push with `method` through `app` to system "s" and checks that `conn` reads it next.
/// Returns the reply.
async fn send_and_expect(app: &TestApp, conn: &mut WsConn, method: &str, body: Value) -> Value {
    let reply = app.api(method, "s", body).await.ok();
    assert_eq!(next_json(conn).await["messageId"], reply["messageId"]);
    reply
}

/// Asserts nothing arrives on `conn` for a moment.
async fn assert_quiet(conn: &mut WsConn, what: &str) {
    let got = tokio::time::timeout(Duration::from_millis(300), next_json(conn)).await;
    assert!(got.is_err(), "{what}: got {:?}", got.ok());
}

#[actix_web::test]
async fn a_cut_client_resumes_with_its_id_its_groups_and_every_missed_frame_in_order() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut peer = app.connect("s").await;
    app.bind("s", &peer, "g1", "peer").await;
    peer.next_json().await;
    let mut r = connect_recoverable(&app, "s").await;
    for group in ["g1", "g2"] {
        app.bind("s", &r.client, group, "rita").await;
        r.next_push().await;
    }
    peer.expect_notice(1001, &r.client.id, "rita").await;
    let first = app
        .api(
            "send_to_client",
            "s",
            json!({"clientId": r.client.id, "msg": "before"}),
        )
        .await
        .ok();
    assert_eq!(r.next_push().await["messageId"], first["messageId"]);

    let (id, token, last) = r.cut();
    until_away(&app, "s", &id).await;
    assert_eq!(app.metric("wshub_clients_away").await, 1.0);
    let mut sent = Vec::new();
    for (method, body) in [
        ("send_to_group", json!({"groupName": "g1", "msg": "to g1"})),
        ("send_to_group", json!({"groupName": "g2", "msg": "to g2"})),
        ("send_to_client", json!({"clientId": id, "msg": "to it"})),
        (
            "send_to_clients",
            json!({"clientIds": [id], "msg": "to a list"}),
        ),
        ("send_to_system", json!({"msg": "to all"})),
    ] {
        let reply = app.api(method, "s", body).await.ok();
        if let Some(count) = reply.get("count") {
            assert!(count.as_u64() >= Some(1), "the away client counts: {reply}");
        }
        sent.push(reply["messageId"].as_str().unwrap().to_owned());
    }
    let online = app
        .api("get_online_list", "s", json!({"groupName": "g1"}))
        .await
        .ok();
    assert_eq!(online["count"], 2, "{online}");

    let (mut conn, welcome) = resume(&app, "s", &token, last.as_deref()).await;
    assert_eq!(welcome["clientId"], id.as_str());
    assert_eq!(welcome["recovered"], true);
    assert_eq!(welcome["missed"], 5);
    assert_ne!(
        welcome["resumeToken"],
        token.as_str(),
        "tokens are single use"
    );
    for message_id in &sent {
        assert_eq!(next_json(&mut conn).await["messageId"], message_id.as_str());
    }
    // Live frames follow with no gap, through its groups too.
    send_and_expect(
        &app,
        &mut conn,
        "send_to_group",
        json!({"groupName": "g2", "msg": "live"}),
    )
    .await;
    assert_eq!(info(&app, "s", &id).await["connected"], true);
    assert_eq!(app.metric("wshub_clients_away").await, 0.0);
    assert_eq!(
        app.metric("wshub_resumes_total{result=\"recovered\"}")
            .await,
        1.0
    );
    // The peer saw the group and system frames, and no 1002 at any point.
    for _ in 0..2 {
        assert_ne!(peer.next_json().await["code"], 1002);
    }
    crate::helpers::assert_next_is_marker(&app, "s", &mut [&mut peer]).await;
}

#[actix_web::test]
async fn a_resume_over_a_half_open_connection_closes_the_old_one_with_4009() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut r = connect_recoverable(&app, "s").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let reply = app
            .api(
                "send_to_client",
                "s",
                json!({"clientId": r.client.id, "data": n}),
            )
            .await
            .ok();
        ids.push(reply["messageId"].as_str().unwrap().to_owned());
    }
    // It read only the first before its network went quiet; the server still thinks it is there.
    assert_eq!(r.next_push().await["messageId"], ids[0].as_str());
    let (mut conn, welcome) = resume(&app, "s", &r.token, r.last.as_deref()).await;
    assert_eq!(welcome["recovered"], true);
    assert_eq!(welcome["clientId"], r.client.id.as_str());
    assert_eq!(welcome["missed"], 2);
    for id in &ids[1..] {
        assert_eq!(next_json(&mut conn).await["messageId"], id.as_str());
    }
    let close = r.client.expect_close().await.expect("a close reason");
    assert_eq!(u16::from(close.code), 4009);
    send_and_expect(
        &app,
        &mut conn,
        "send_to_client",
        json!({"clientId": r.client.id, "msg": "live"}),
    )
    .await;
    assert_quiet(&mut conn, "nothing twice").await;
}

/// A resume that cannot be honoured gets a fresh recoverable session saying why.
fn assert_fresh(welcome: &Value, old_id: &str, reason: &str) {
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], reason, "{welcome}");
    assert_ne!(welcome["clientId"], old_id, "{welcome}");
    assert!(welcome["resumeToken"]
        .as_str()
        .is_some_and(|t| t.len() >= 32));
}

#[actix_web::test]
async fn unknown_reused_and_foreign_tokens_get_a_fresh_session_and_disturb_no_one() {
    let app = spawn_app().await;
    app.register("s").await;
    app.register("other").await;
    let (_, made_up) = resume(&app, "s", &"0".repeat(64), None).await;
    assert_fresh(&made_up, "", "invalid_token");

    let r = connect_recoverable(&app, "s").await;
    let (id, token, last) = r.cut();
    until_away(&app, "s", &id).await;
    // Another system's resume cannot take the client, and leaves it resumable.
    let (_, foreign) = resume(&app, "other", &token, None).await;
    assert_fresh(&foreign, &id, "invalid_token");
    let (mut resumed, welcome) = resume(&app, "s", &token, last.as_deref()).await;
    assert_eq!(welcome["recovered"], true);
    // The used token again: a fresh session; the one that used it goes on undisturbed.
    let (_, again) = resume(&app, "s", &token, None).await;
    assert_fresh(&again, &id, "invalid_token");
    send_and_expect(
        &app,
        &mut resumed,
        "send_to_client",
        json!({"clientId": id, "msg": "still here"}),
    )
    .await;
    assert_eq!(
        app.metric("wshub_resumes_total{result=\"invalid_token\"}")
            .await,
        3.0
    );
}

#[actix_web::test]
async fn a_last_the_server_does_not_hold_fails_and_the_client_goes_offline() {
    let app = spawn_app().await;
    let (mut peer, r) = peer_and_recoverable(&app).await;
    let (id, token, _) = r.cut();
    until_away(&app, "s", &id).await;
    let (_, welcome) = resume(&app, "s", &token, Some("no-such-message")).await;
    assert_fresh(&welcome, &id, "last_not_held");
    peer.expect_notice(1002, &id, "rita").await;
    assert_eq!(info(&app, "s", &id).await["online"], false);
}

#[actix_web::test]
async fn when_the_window_ends_the_client_goes_offline_then_and_a_late_resume_hears_expired() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app_with(|c| c.recovery.window = Duration::from_millis(1500)).await;
    register_with_hook(&app, "s", &url).await;
    let (mut peer, r) = peer_and_bound_recoverable(&app).await;
    let (id, token, last) = r.cut();
    until_away(&app, "s", &id).await;
    let cut_at = tokio::time::Instant::now();
    // Within the window: no 1002, no client_offline.
    assert_quiet(&mut peer.conn, "no 1002 during the window").await;
    assert!(!names(&receiver.events()).contains(&"client_offline"));
    peer.expect_notice(1002, &id, "rita").await;
    assert!(
        cut_at.elapsed() >= Duration::from_millis(1000),
        "the 1002 came before the window ended"
    );
    let events = receiver
        .wait_for("client_offline", |e| names(e).contains(&"client_offline"))
        .await;
    let offline = events
        .iter()
        .find(|e| e["name"] == "client_offline" && e["clientId"] == id.as_str())
        .expect("its client_offline");
    assert_eq!(offline["reason"], "recovery_expired");
    assert_eq!(offline["groups"], json!(["g"]));
    let (_, welcome) = resume(&app, "s", &token, last.as_deref()).await;
    assert_fresh(&welcome, &id, "expired");
}

#[actix_web::test]
async fn an_away_client_past_its_buffer_goes_offline_at_once_and_its_resume_hears_why() {
    let app = spawn_app_with(|c| c.recovery.buffer = 4096).await;
    let (mut peer, r) = peer_and_recoverable(&app).await;
    let (id, token, last) = r.cut();
    until_away(&app, "s", &id).await;
    let big = "x".repeat(1500);
    for _ in 0..3 {
        app.api("send_to_client", "s", json!({"clientId": id, "msg": big}))
            .await
            .ok();
    }
    peer.expect_notice(1002, &id, "rita").await;
    let (_, welcome) = resume(&app, "s", &token, last.as_deref()).await;
    assert_fresh(&welcome, &id, "bound_passed");
}

#[actix_web::test]
async fn a_client_that_closes_with_a_close_frame_is_gone_at_once() {
    let app = spawn_app().await;
    let (mut peer, mut r) = peer_and_recoverable(&app).await;
    r.client
        .conn
        .send(Message::Close(Some(awc::ws::CloseCode::Normal.into())))
        .await
        .unwrap();
    peer.expect_notice(1002, &r.client.id, "rita").await;
    let (_, welcome) = resume(&app, "s", &r.token, None).await;
    assert_fresh(&welcome, &r.client.id, "invalid_token");
}

#[actix_web::test]
async fn legacy_clients_and_a_server_without_recovery_see_the_plain_welcome() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut conn = app.ws_raw("?systemId=s").await;
    let welcome = next_json(&mut conn).await;
    assert_eq!(welcome["data"].as_object().unwrap().len(), 1, "{welcome}");

    let off = spawn_app_with(|c| c.recovery.window = Duration::ZERO).await;
    off.register("s").await;
    let mut conn = off.ws_raw("?systemId=s&recovery=1").await;
    let welcome = next_json(&mut conn).await;
    assert_eq!(welcome["data"].as_object().unwrap().len(), 1, "{welcome}");
    assert!(welcome["data"]["clientId"].is_string());
}
