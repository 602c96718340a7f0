//! Presence by user: under `presence: "user"` a group hears a user's first connection (1001)
//! and, after `--presence-grace`, its last one leaving (1002), however many tabs it has; every
//! system's webhook hears `user_online` / `user_offline` the same way; a reload or a resume
//! within the grace is not seen; a cut recovery connection shows its user offline after the
//! grace, not at the end of the recovery window. On one node and across two, one killed -9.

use std::time::{Duration, Instant};

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::{json, Value};

use crate::client_auth::{client_token, exp};
use crate::cluster::{fresh_prefix, kill_9, redis_url};
use crate::helpers::{
    assert_next_is_marker, connect_at, next_json, next_json_within, spawn_app_with, ServerProcess,
    TestApp, WsClient, WsConn,
};
use crate::webhooks::{names, Receiver, SECRET};

const GRACE: Duration = Duration::from_millis(1000);

async fn app_with_grace() -> TestApp {
    spawn_app_with(|c| c.presence_grace = GRACE).await
}

/// Registers `system` with presence `presence` and, if given, a webhook to `hook`.
async fn register(app: &TestApp, system: &str, presence: &str, hook: Option<&str>) {
    let mut body = json!({"systemId": system, "presence": presence});
    if let Some(url) = hook {
        body["webhook"] = json!({"url": url, "secret": SECRET});
    }
    app.api("register", "", body).await.ok();
}

/// System "s" under presence "user" with a webhook to a receiver, and "watcher" in "room"
/// (its own 1001 read).
async fn watched_system() -> (TestApp, Receiver, WsClient) {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = app_with_grace().await;
    register(&app, "s", "user", Some(&url)).await;
    let mut watcher = tab(&app, "watcher").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "watcher".into())
    );
    (app, receiver, watcher)
}

/// A client bound to "room" as `user`.
async fn tab(app: &TestApp, user: &str) -> WsClient {
    let client = app.connect("s").await;
    app.bind("s", &client, "room", user).await;
    client
}

/// Closes as a browser tab does: a close frame, then the server's answer (so the server reads
/// a close, not a lost connection).
async fn close(mut client: WsClient) {
    client
        .conn
        .send(Message::Close(Some(awc::ws::CloseCode::Normal.into())))
        .await
        .unwrap();
    client.expect_close().await;
}

/// Reads `conn` until a 1001/1002 notice; returns it with the time it took.
async fn next_notice(conn: &mut WsConn) -> (Value, Duration) {
    let started = Instant::now();
    loop {
        let frame = next_json_within(conn, Duration::from_secs(20)).await;
        if frame["code"] == 1001 || frame["code"] == 1002 {
            return (frame, started.elapsed());
        }
    }
}

/// The user events received, as (name, userId, reason), in order.
fn user_events(events: &[Value]) -> Vec<(&Value, &Value, &Value)> {
    events
        .iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("user_"))
        .map(|e| (&e["name"], &e["userId"], &e["reason"]))
        .collect()
}

fn about(notice: &Value) -> (i64, String) {
    (
        notice["code"].as_i64().unwrap(),
        notice["sendUserId"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn under_presence_user_a_group_hears_a_user_once_however_many_tabs() {
    let app = app_with_grace().await;
    register(&app, "s", "user", None).await;
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["presence"], "user");

    let mut watcher = tab(&app, "watcher").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "watcher".into())
    );
    let mut first = tab(&app, "ann").await;
    let (notice, _) = next_notice(&mut watcher.conn).await;
    assert_eq!(about(&notice), (1001, "ann".into()));
    let data: Value = serde_json::from_str(notice["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"clientId": first.id, "userId": "ann", "extend": "ext-ann"})
    );
    // The new member hears its own user arrive, as a joining connection does under "client".
    assert_eq!(
        about(&next_notice(&mut first.conn).await.0),
        (1001, "ann".into())
    );
    let mut second = tab(&app, "ann").await;
    // A later tab of a user already there is not news; the legacy list still shows tabs.
    assert_next_is_marker(&app, "s", &mut [&mut watcher, &mut first, &mut second]).await;
    let list = app
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["count"], 3);

    close(first).await;
    assert_next_is_marker(&app, "s", &mut [&mut watcher]).await;
    close(second).await;
    let (notice, waited) = next_notice(&mut watcher.conn).await;
    assert_eq!(about(&notice), (1002, "ann".into()));
    assert!(
        waited >= GRACE - Duration::from_millis(300),
        "the 1002 waits out the grace: {waited:?}"
    );
    assert_next_is_marker(&app, "s", &mut [&mut watcher]).await;
}

#[actix_web::test]
async fn a_reload_within_the_grace_fires_neither_a_1002_nor_user_offline() {
    let (app, receiver, mut watcher) = watched_system().await;
    let page = tab(&app, "ann").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "ann".into())
    );

    close(page).await;
    let mut reloaded = tab(&app, "ann").await;
    actix_web::rt::time::sleep(GRACE * 2).await;
    assert_next_is_marker(&app, "s", &mut [&mut watcher, &mut reloaded]).await;
    let events = receiver.events();
    let user_events: Vec<(&str, &Value)> = events
        .iter()
        .filter(|e| e["name"].as_str().unwrap().starts_with("user_"))
        .map(|e| (e["name"].as_str().unwrap(), &e["userId"]))
        .collect();
    assert_eq!(
        user_events,
        [
            ("user_online", &json!("watcher")),
            ("user_online", &json!("ann"))
        ],
        "{events:#?}"
    );
}

#[actix_web::test]
async fn webhooks_hear_a_users_first_connection_and_its_last_after_the_grace() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = app_with_grace().await;
    // The legacy presence: notices per connection, user events all the same.
    register(&app, "s", "client", Some(&url)).await;
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["presence"], "client");
    let first = tab(&app, "ann").await;
    let second = tab(&app, "ann").await;
    let events = receiver
        .wait_for("user_online", |e| names(e).contains(&"user_online"))
        .await;
    let online: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "user_online")
        .collect();
    assert_eq!(online.len(), 1, "{events:#?}");
    assert_eq!(online[0]["userId"], "ann");
    assert_eq!(online[0]["clientId"], first.id.as_str());

    close(first).await;
    close(second).await;
    let closed = Instant::now();
    let events = receiver
        .wait_for("user_offline", |e| names(e).contains(&"user_offline"))
        .await;
    assert!(closed.elapsed() >= GRACE - Duration::from_millis(300));
    let offline: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "user_offline")
        .collect();
    assert_eq!(offline.len(), 1, "{events:#?}");
    assert_eq!(
        (&offline[0]["userId"], &offline[0]["reason"]),
        (&json!("ann"), &json!("closed"))
    );
    // Both client_offline came first: the user left with its last connection.
    let position = |name: &str| names(&events).iter().rposition(|n| *n == name).unwrap();
    assert!(position("client_offline") < position("user_offline"));
}

#[actix_web::test]
async fn a_cut_recovery_connection_counts_only_for_the_grace_and_a_resume_brings_its_user_back() {
    let (app, receiver, mut watcher) = watched_system().await;
    let mut conn = app.ws_raw("?systemId=s&recovery=1").await;
    let welcome = next_json(&mut conn).await;
    let (id, token) = (
        welcome["data"]["clientId"].as_str().unwrap().to_owned(),
        welcome["data"]["resumeToken"].as_str().unwrap().to_owned(),
    );
    let rita = WsClient { id, conn };
    app.bind("s", &rita, "room", "rita").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "rita".into())
    );

    drop(rita.conn); // cut: no close frame; the recovery window (120 s) stays open
    let (notice, _) = next_notice(&mut watcher.conn).await;
    assert_eq!(about(&notice), (1002, "rita".into()));
    let events = receiver
        .wait_for("user_offline", |e| names(e).contains(&"user_offline"))
        .await;
    let offline = events.iter().find(|e| e["name"] == "user_offline").unwrap();
    assert_eq!(offline["reason"], "connection_lost");
    // Still a client (away), shown as not connected; its user is offline.
    let info = app
        .api("get_user_info", "s", json!({"userId": "rita"}))
        .await
        .ok();
    assert_eq!(info["clients"][0]["connected"], false, "{info}");

    let mut resumed = app.ws_raw(&format!("?systemId=s&resume={token}")).await;
    assert_eq!(next_json(&mut resumed).await["data"]["recovered"], true);
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "rita".into())
    );
    receiver
        .wait_for("user_online again", |e| {
            e.iter()
                .filter(|e| e["name"] == "user_online" && e["userId"] == "rita")
                .count()
                == 2
        })
        .await;
}

#[actix_web::test]
async fn presence_is_set_by_register_and_update_system_and_checked() {
    let app = app_with_grace().await;
    app.api(
        "register",
        "",
        json!({"systemId": "s", "presence": "users"}),
    )
    .await
    .err(400, "presence");
    app.register("s").await;
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["presence"], "client");
    app.api("update_system", "s", json!({"presence": "user"}))
        .await
        .ok();
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["presence"], "user");
    app.api("update_system", "s", json!({"presence": 1}))
        .await
        .err(400, "presence");
}

/// Two nodes on one Redis: a user's tabs on both are one user to a group and to the webhook;
/// the node holding its last tab is killed -9, and after the dead-node bound and the grace the
/// group hears the 1002 and the webhook `user_offline` `node_lost`, once.
#[actix_web::test]
async fn across_nodes_a_user_is_one_and_a_dead_nodes_tabs_leave_it_with_node_lost() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let receiver = Receiver::default();
    let url = receiver.start();
    let (a_redis, a_prefix) = (redis.clone(), prefix.clone());
    let a = spawn_app_with(move |c| {
        c.redis_url = Some(a_redis);
        c.redis_prefix = a_prefix;
        c.presence_grace = GRACE;
    })
    .await;
    register(&a, "s", "user", Some(&url)).await;
    let b = ServerProcess::start(
        &[
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
            "--presence-grace",
            "1",
        ],
        &[],
    );
    let mut watcher = tab(&a, "watcher").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "watcher".into())
    );
    let here = tab(&a, "ann").await;
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "ann".into())
    );
    let (_there, there_id) = connect_at(&b.address, "s").await;
    a.api(
        "bind_to_group",
        "s",
        json!({"clientId": there_id, "groupName": "room", "userId": "ann", "extend": "ext-ann"}),
    )
    .await
    .ok();
    close(here).await;
    actix_web::rt::time::sleep(GRACE * 2).await;
    assert_next_is_marker(&a, "s", &mut [&mut watcher]).await;

    let killed = Instant::now();
    kill_9(&b);
    let (notice, _) = next_notice(&mut watcher.conn).await;
    assert_eq!(about(&notice), (1002, "ann".into()));
    let data: Value = serde_json::from_str(notice["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["clientId"], there_id.as_str(), "the last tab's");
    assert!(
        killed.elapsed() < Duration::from_secs(15),
        "{:?}",
        killed.elapsed()
    );
    let events = receiver
        .wait_for("user_offline", |e| names(e).contains(&"user_offline"))
        .await;
    assert_eq!(
        user_events(&events),
        [
            (&json!("user_online"), &json!("watcher"), &Value::Null),
            (&json!("user_online"), &json!("ann"), &Value::Null),
            (&json!("user_offline"), &json!("ann"), &json!("node_lost")),
        ],
        "{events:#?}"
    );
    assert_next_is_marker(&a, "s", &mut [&mut watcher]).await;
}

/// Redis is cut off while a tab closes (that write is lost) and comes back with the data it had
/// saved: the node's resync must not leave the closed tab counted, so the user's last tab
/// closing still makes it leave.
#[actix_web::test]
async fn a_close_lost_while_redis_was_down_does_not_keep_its_user_online() {
    if redis_url().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "wshub-presence-redis-{}",
        wshub::protocol::new_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let test = "presence across a Redis outage";
    let Some(mut redis) = crate::cluster::own_redis_saving_to(&dir, test) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let node_url = url.clone();
    let a = spawn_app_with(move |c| {
        c.redis_url = Some(node_url);
        c.redis_prefix = "presence-outage:".into();
        c.presence_grace = GRACE;
    })
    .await;
    register(&a, "s", "user", None).await;
    let mut watcher = tab(&a, "watcher").await;
    next_notice(&mut watcher.conn).await;
    let (first, second) = (tab(&a, "ann").await, tab(&a, "ann").await);
    assert_eq!(
        about(&next_notice(&mut watcher.conn).await.0),
        (1001, "ann".into())
    );

    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SAVE").query(&mut admin).unwrap();
    redis.kill();
    close(first).await;
    // Long enough for the write to fail, not merely wait for Redis.
    actix_web::rt::time::sleep(Duration::from_secs(4)).await;
    redis
        .restart()
        .expect("redis-server restarts with its saved data");
    let deadline = Instant::now() + Duration::from_secs(20);
    while a
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "the node never served again");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    close(second).await;
    let (notice, _) = next_notice(&mut watcher.conn).await;
    assert_eq!(about(&notice), (1002, "ann".into()));
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client token's userId makes its user online when it connects, before any bind; a client
/// re-bound as another user takes its old user offline (`rebound`) and the new one online.
#[actix_web::test]
async fn a_token_user_is_online_at_connect_and_a_rebind_moves_the_connection() {
    let receiver = Receiver::default();
    let url = receiver.start();
    let app = spawn_app_with(|c| {
        c.client_auth = wshub::config::ClientAuth::Jwt;
        c.presence_grace = GRACE;
    })
    .await;
    register(&app, "s", "client", Some(&url)).await;
    let token = client_token(json!({"systemId": "s", "userId": "ann", "exp": exp(600)}));
    let mut conn = app.ws_raw(&format!("?systemId=s&token={token}")).await;
    let ann_id = next_json(&mut conn).await["data"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = receiver
        .wait_for("user_online", |e| names(e).contains(&"user_online"))
        .await;
    let online = events.iter().find(|e| e["name"] == "user_online").unwrap();
    assert_eq!(
        (&online["userId"], &online["clientId"]),
        (&json!("ann"), &json!(ann_id))
    );

    let plain_token = client_token(json!({"systemId": "s", "exp": exp(600)}));
    let mut conn = app
        .ws_raw(&format!("?systemId=s&token={plain_token}"))
        .await;
    let id = next_json(&mut conn).await["data"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let rebind = |user: &str| {
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": id, "groupName": "room", "userId": user}),
        )
    };
    rebind("bob").await.ok();
    rebind("carl").await.ok();
    let events = receiver
        .wait_for("bob offline", |e| names(e).contains(&"user_offline"))
        .await;
    assert_eq!(
        user_events(&events),
        [
            (&json!("user_online"), &json!("ann"), &Value::Null),
            (&json!("user_online"), &json!("bob"), &Value::Null),
            (&json!("user_online"), &json!("carl"), &Value::Null),
            (&json!("user_offline"), &json!("bob"), &json!("rebound")),
        ],
        "{events:#?}"
    );
}
