//! Why this file is long: every cluster behaviour needs the same two or three real nodes on one
//! Redis (and a private Redis for the outage tests); keeping them together keeps those helpers next
//! to the scenarios that share them.
//!
//! Cluster mode against a real Redis: several nodes behave as one server.
//! Redis: `WSHUB_TEST_REDIS_URL` (default redis://127.0.0.1:6379). Without one the tests skip
//! with a printed reason; under `CI=true` a missing Redis is a failure.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{expect_close, spawn_app_with, OwnServer, ServerProcess, TestApp, WsClient};

pub fn redis_url() -> Option<String> {
    let url = std::env::var("WSHUB_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // The first host of a plain or a `redis+cluster://` address.
    let address = url
        .trim_start_matches("redis://")
        .trim_start_matches("redis+cluster://")
        .split(['/', ','])
        .next()
        .unwrap_or_default()
        .to_owned();
    if TcpStream::connect(&address).is_ok() {
        return Some(url);
    }
    let reason = format!("no Redis at {url} (set WSHUB_TEST_REDIS_URL or start redis-server)");
    crate::helpers::skip_unless_ci("cluster test", &reason);
    None
}

/// A key prefix no other test uses. Every prefix of this run starts with the run's own
/// [`run_prefix`], and the run deletes its keys when it exits, so `cargo test` leaves nothing
/// behind in the developer's Redis (the keys wshub writes have no TTL: systems are meant to last).
pub fn fresh_prefix() -> String {
    format!("{}{}:", run_prefix(), wshub::protocol::new_id())
}

/// `wshub-test-<id>-`, the same for every prefix of this test process.
fn run_prefix() -> &'static str {
    RUN_PREFIX.get_or_init(|| {
        // SAFETY: registers a plain `extern "C" fn` that reads only a static.
        unsafe { libc::atexit(delete_this_runs_keys_at_exit) };
        format!("wshub-test-{}-", wshub::protocol::new_id())
    })
}

static RUN_PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Deletes every key under [`run_prefix`] in the test Redis, after the last test (the nodes
/// that wrote them are gone by then). A Redis that went away meanwhile is left alone, and one
/// that does not answer is given up on after 2 s a step, so the run still ends.
extern "C" fn delete_this_runs_keys_at_exit() {
    let Some(run) = RUN_PREFIX.get() else { return };
    let url = std::env::var("WSHUB_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    // A Redis Cluster for the tests is a private one, stopped with everything in it.
    if url.starts_with("redis+cluster://") {
        return;
    }
    let Ok(mut redis) = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(std::time::Duration::from_secs(2)))
    else {
        return;
    };
    let _ = redis.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    use redis::Commands;
    let keys: Vec<String> = match redis.scan_match(format!("{run}*")) {
        Ok(keys) => keys.collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query(&mut redis);
    }
}

pub async fn node(redis: &str, prefix: &str) -> TestApp {
    let (redis, prefix) = (redis.to_owned(), prefix.to_owned());
    spawn_app_with(move |c| {
        c.redis_url = Some(redis);
        c.redis_prefix = prefix;
    })
    .await
}

/// Reads frames until one with `code`, skipping others.
async fn until_code(client: &mut WsClient, code: i64) -> serde_json::Value {
    loop {
        let frame = client.next_json().await;
        if frame["code"] == code {
            return frame;
        }
    }
}

#[actix_web::test]
async fn register_is_cluster_wide_and_atomic() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    for i in 0..20 {
        let system = format!("race-{i}");
        let body = json!({ "systemId": system });
        let (ra, rb) = futures_util::future::join(
            a.api("register", "", body.clone()),
            b.api("register", "", body),
        )
        .await;
        let mut statuses = [ra.status, rb.status];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "exactly one node wins {system}");
    }
    // A node started later knows them: they live in Redis.
    let c = node(&redis, &prefix).await;
    c.api("get_all_groups", "race-3", json!({})).await.ok();
    c.api("get_all_groups", "never-registered", json!({}))
        .await
        .err(403, "not registered");
}

#[actix_web::test]
async fn every_call_works_for_clients_on_any_node() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    a.register("s").await;
    // x lives on b, y on a; every call below goes to the other node.
    let mut x = b.connect("s").await;
    let mut y = a.connect("s").await;
    assert_ne!(&x.id[..12], &y.id[..12], "the clientId names its node");

    let reply = a
        .api(
            "send_to_client",
            "s",
            json!({"clientId": x.id, "data": "to x"}),
        )
        .await
        .ok();
    let frame = x.next_json().await;
    assert_eq!(
        (frame["messageId"].clone(), frame["data"].clone()),
        (reply["messageId"].clone(), json!("to x"))
    );

    a.api(
        "bind_to_group",
        "s",
        json!({"clientId": x.id, "groupName": "g", "userId": "xu", "extend": "xe"}),
    )
    .await
    .ok();
    assert_eq!(until_code(&mut x, 1001).await["sendUserId"], "xu");
    b.api(
        "bind_to_group",
        "s",
        json!({"clientId": y.id, "groupName": "g", "userId": "yu"}),
    )
    .await
    .ok();
    // Both hear y come online, x through the other node.
    assert_eq!(until_code(&mut y, 1001).await["sendUserId"], "yu");
    assert_eq!(until_code(&mut x, 1001).await["sendUserId"], "yu");

    for n in [&a, &b] {
        let list = n
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await
            .ok();
        assert_eq!(list["count"], 2);
        let clients = list["clients"].as_array().unwrap();
        assert!(clients.contains(&json!({"clientId": x.id, "userId": "xu", "extend": "xe"})));
        assert!(clients.contains(&json!({"clientId": y.id, "userId": "yu", "extend": ""})));
        let mut ids = vec![x.id.clone(), y.id.clone()];
        ids.sort();
        assert_eq!(
            n.api("get_all_groups", "s", json!({})).await.ok(),
            json!({"g": ids})
        );
    }

    // A group message reaches each member exactly once, wherever it is sent from.
    let sent = b
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "g", "data": "hello g"}),
        )
        .await
        .ok();
    assert_eq!(sent["count"], 2);
    let marker = a
        .api("send_to_system", "s", json!({"msg": "marker"}))
        .await
        .ok();
    assert_eq!(marker["count"], 2);
    for client in [&mut x, &mut y] {
        assert_eq!(client.next_json().await["messageId"], sent["messageId"]);
        assert_eq!(client.next_json().await["messageId"], marker["messageId"]);
    }

    let reply = b
        .api(
            "send_to_clients",
            "s",
            json!({"clientIds": [x.id, y.id, "gone"], "data": 1}),
        )
        .await
        .ok();
    assert_eq!(reply["missing"], json!(["gone"]));
    assert_eq!(x.next_json().await["messageId"], reply["messageId"]);
    assert_eq!(y.next_json().await["messageId"], reply["messageId"]);

    let info = a
        .api("get_client_info", "s", json!({"clientId": x.id}))
        .await
        .ok();
    assert_eq!(
        (
            info["online"].clone(),
            info["userId"].clone(),
            info["groups"].clone()
        ),
        (json!(true), json!("xu"), json!(["g"]))
    );

    a.api(
        "unbind_from_group",
        "s",
        json!({"clientId": x.id, "groupName": "g"}),
    )
    .await
    .ok();
    assert_eq!(until_code(&mut y, 1002).await["sendUserId"], "xu");

    // close_client through the other node: y is closed with 1000 and leaves the group.
    a.api(
        "bind_to_group",
        "s",
        json!({"clientId": x.id, "groupName": "g", "userId": "xu"}),
    )
    .await
    .ok();
    until_code(&mut y, 1001).await;
    b.api("close_client", "s", json!({"clientId": y.id}))
        .await
        .ok();
    assert_eq!(
        u16::from(expect_close(&mut y.conn).await.unwrap().code),
        1000
    );
    assert_eq!(until_code(&mut x, 1002).await["sendUserId"], "yu");
    let info = b
        .api("get_client_info", "s", json!({"clientId": y.id}))
        .await
        .ok();
    assert_eq!(info["online"], false);

    // A client of another system is not reachable through this one, on any node.
    a.register("other").await;
    let stranger = b.connect("other").await;
    for (method, body) in [
        ("send_to_client", json!({"clientId": stranger.id})),
        (
            "bind_to_group",
            json!({"clientId": stranger.id, "groupName": "g"}),
        ),
        ("close_client", json!({"clientId": stranger.id})),
    ] {
        a.api(method, "s", body).await.err(404, "not connected");
    }
    let info = a
        .api("get_client_info", "s", json!({"clientId": stranger.id}))
        .await
        .ok();
    assert_eq!(info["online"], false);

    // Unknown clients are 404 everywhere, whether the id is malformed or names no live node.
    let dead_node_id = format!("{}{}", "0".repeat(12), wshub::protocol::new_id());
    for n in [&a, &b] {
        for id in ["ghost", dead_node_id.as_str()] {
            n.api("send_to_client", "s", json!({"clientId": id}))
                .await
                .err(404, "not connected");
        }
    }
}

/// A client of the node process `b` in system "s", bound to "room" as "doomed" through `a`:
/// its connection (keep it open) and its clientId.
pub async fn doomed_client(a: &TestApp, b: &ServerProcess) -> (crate::helpers::WsConn, String) {
    let (conn, doomed) = crate::helpers::connect_at(&b.address, "s").await;
    a.api(
        "bind_to_group",
        "s",
        json!({"clientId": doomed, "groupName": "room", "userId": "doomed"}),
    )
    .await
    .ok();
    (conn, doomed)
}

/// Kills a node process without letting it say goodbye.
pub fn kill_9(node: &ServerProcess) {
    let status = std::process::Command::new("kill")
        .args(["-9", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[actix_web::test]
async fn a_killed_node_leaves_no_ghosts() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    a.register("s").await;
    let b = ServerProcess::start(&["--redis-url", &redis, "--redis-prefix", &prefix], &[]);
    let mut watcher = a.connect("s").await;
    a.bind("s", &watcher, "room", "watcher").await;
    until_code(&mut watcher, 1001).await;
    let (conn, doomed) = doomed_client(&a, &b).await;
    assert_eq!(until_code(&mut watcher, 1001).await["sendUserId"], "doomed");

    let killed = Instant::now();
    kill_9(&b);
    // The purge comes after the node's liveness key expires: wait up to the stated 15 s.
    let notice = loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), watcher.conn.next())
            .await
            .expect("1002 for the dead node's client within 15 s")
            .expect("open")
            .expect("valid");
        if let awc::ws::Frame::Text(bytes) = frame {
            let frame: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if frame["code"] == 1002 {
                break frame;
            }
        }
    };
    assert_eq!(notice["sendUserId"], "doomed");
    eprintln!("dead node purged after {:?}", killed.elapsed());
    let list = a
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["list"], json!([watcher.id]));
    let info = a
        .api("get_client_info", "s", json!({"clientId": doomed}))
        .await
        .ok();
    assert_eq!(info["online"], false);
    drop(conn);
    drop(b);
}

#[actix_web::test]
async fn a_redis_outage_gives_503_keeps_clients_and_recovers() {
    let Some(mut redis) = own_redis_or_skip() else {
        return;
    };
    let port = redis.port;
    let url = format!("redis://127.0.0.1:{port}");
    let a = node(&url, "outage:").await;
    a.register("s").await;
    // A system with settings and no client: Redis loses it too, and the node writes it back.
    a.api(
        "register",
        "",
        json!({"systemId": "quiet", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "0123456789abcdef"}}),
    )
    .await
    .ok();
    let mut client = a.connect("s").await;
    a.bind("s", &client, "g", "u").await;
    until_code(&mut client, 1001).await;

    redis.kill();
    let reply = a
        .api("get_online_list", "s", json!({"groupName": "g"}))
        .await;
    reply.err(503, "Redis");
    let message = reply.body["msg"].as_str().unwrap_or_default();
    assert!(
        message.contains("unreachable") || message.contains("unavailable"),
        "says Redis is down: {message}"
    );
    // The local client stays connected and still gets direct messages.
    let direct = a
        .api(
            "send_to_client",
            "s",
            json!({"clientId": client.id, "data": "still here"}),
        )
        .await
        .ok();
    assert_eq!(client.next_json().await["messageId"], direct["messageId"]);

    // Redis comes back empty; the node reconnects, resubscribes and writes its state again.
    redis.restart().expect("redis-server restarts");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = a
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await;
        if reply.status == 200 && reply.body["data"]["count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: {reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Group traffic flows through the backplane again.
    let b = node(&url, "outage:").await;
    let sent = b
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "g", "data": "after"}),
        )
        .await
        .ok();
    assert_eq!(sent["count"], 1);
    assert_eq!(
        until_code(&mut client, 0).await["messageId"],
        sent["messageId"]
    );
    let quiet = b.api("get_system", "quiet", json!({})).await.ok();
    assert_eq!(
        quiet["webhook"]["url"], "http://127.0.0.1:9/h",
        "settings written back"
    );
}

/// A client is addressable from every node as soon as it has its welcome frame, and a change
/// answered by one node is seen by the next call on another.
#[actix_web::test]
async fn every_node_sees_a_client_and_its_groups_as_soon_as_the_reply_is_given() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    a.register("s").await;
    for attempt in 0..40 {
        let mut client = b.connect("s").await;
        let sent = a
            .api("send_to_system", "s", json!({"data": attempt}))
            .await
            .ok();
        assert_eq!(sent["count"], 1, "attempt {attempt}");
        assert_eq!(
            until_code(&mut client, 0).await["messageId"],
            sent["messageId"]
        );
        b.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": "g"}),
        )
        .await
        .ok();
        let list = a
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await
            .ok();
        assert_eq!(list["list"], json!([client.id]), "attempt {attempt}");
        a.api("close_client", "s", json!({"clientId": client.id}))
            .await
            .ok();
        let list = b
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await
            .ok();
        assert_eq!(list["count"], 0, "attempt {attempt}");
    }
}

/// The answers to calls made through an outage: each must be right or 503, never wrong.
#[derive(Default)]
pub struct OutageAnswers {
    /// Answers by status.
    pub statuses: std::collections::BTreeMap<u16, usize>,
    healthy_since: Option<Instant>,
}

impl OutageAnswers {
    /// Checks one round of replies (200 or 503, nothing else) and tallies them; true once every
    /// round has been all 200 for half a second since `recovering` (the outage is over).
    pub fn note(&mut self, replies: &[&crate::helpers::Reply], recovering: bool) -> bool {
        let mut healthy = true;
        for reply in replies {
            assert!(
                reply.status == 200 || reply.status == 503,
                "a wrong answer instead of 503: {reply:?}"
            );
            *self.statuses.entry(reply.status).or_default() += 1;
            healthy &= reply.status == 200;
        }
        match (recovering && healthy, self.healthy_since) {
            (true, None) => self.healthy_since = Some(Instant::now()),
            (false, _) => self.healthy_since = None,
            _ => {}
        }
        self.healthy_since
            .is_some_and(|t| t.elapsed() > Duration::from_millis(500))
    }

    /// When the calls were first all answered again (for good).
    pub fn healthy_since(&self) -> Option<Instant> {
        self.healthy_since
    }
}

/// A private Redis that `SAVE`s to `dir` and starts again from what it saved there (a copy that
/// lacks what came after); `None` (the test skips) where none can be started, outside CI.
pub fn own_redis_saving_to(dir: &std::path::Path, test: &str) -> Option<OwnServer> {
    let dir = dir.to_str().expect("a UTF-8 path");
    let args = [
        "--port",
        "{port}",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
    ];
    let redis = OwnServer::start("redis-server", &args);
    if redis.is_none() {
        crate::helpers::skip_unless_ci(test, "redis-server did not start");
    }
    redis
}

/// A private Redis on a free port (for tests that stop it, or want it to themselves); `None`
/// (the test skips) where none can be started, outside CI.
pub fn own_redis_or_skip() -> Option<OwnServer> {
    redis_url()?;
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        let reason = "the redis-server binary is not installed (apt-get install redis-server)";
        crate::helpers::skip_unless_ci("Redis outage test", reason);
        return None;
    }
    let redis = OwnServer::start(
        "redis-server",
        &["--port", "{port}", "--save", "", "--appendonly", "no"],
    )
    .expect("redis-server starts");
    Some(redis)
}

/// Redis restarted empty under traffic: until every node has written its state back, calls
/// answer 503; never a false 404, a short online list, or a count that differs from what was
/// delivered. While Redis is down, handshakes are refused with 503 before the upgrade.
#[actix_web::test]
async fn after_redis_restarts_empty_no_node_answers_wrongly() {
    let Some(mut redis) = own_redis_or_skip() else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let a = node(&url, "restart:").await;
    let b = node(&url, "restart:").await;
    a.register("s").await;
    let mut clients = Vec::new();
    for i in 0..10 {
        let on = if i % 2 == 0 { &a } else { &b };
        let client = on.connect("s").await;
        on.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": "g", "userId": format!("u{i}")}),
        )
        .await
        .ok();
        clients.push(client);
    }
    let on_b = clients[1].id.clone();
    let mut delivered_ids = Vec::new();
    let mut answers = OutageAnswers::default();
    let started = Instant::now();
    let mut restarted = false;
    let mut refused_handshake = false;
    loop {
        let elapsed = started.elapsed();
        if !restarted && elapsed > Duration::from_millis(300) {
            redis.kill();
            // While Redis is down, a new client is refused before the upgrade.
            let refused = awc::Client::new()
                .ws(a.ws_url("?systemId=s"))
                .connect()
                .await;
            match refused {
                Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
                    assert_eq!(status.as_u16(), 503);
                    refused_handshake = true;
                }
                other => panic!("handshake during the outage: {:?}", other.map(|_| ())),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            redis.restart().expect("redis-server restarts");
            restarted = true;
        }
        let sent = a
            .api("send_to_group", "s", json!({"groupName": "g", "data": "x"}))
            .await;
        let list = b
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await;
        let direct = a
            .api(
                "send_to_client",
                "s",
                json!({"clientId": on_b, "data": "d"}),
            )
            .await;
        if sent.status == 200 {
            assert_eq!(sent.body["data"]["count"], 10, "{sent:?}");
            delivered_ids.push(sent.body["data"]["messageId"].clone());
        }
        if list.status == 200 {
            assert_eq!(list.body["data"]["count"], 10, "{list:?}");
        }
        if answers.note(&[&sent, &list, &direct], restarted) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never recovered: {:?}",
            answers.statuses
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused_handshake);
    eprintln!("restart under traffic: {:?}", answers.statuses);
    // Every send answered 200 with count 10 reached all 10 clients.
    every_client_got((&a, "s"), &mut clients, &delivered_ids).await;
}

/// Sends a marker to group "g" of `system` through `via`, and checks that each client got
/// every message of `delivered` (the ids of sends answered 200) before it: none was lost.
pub async fn every_client_got(
    (via, system): (&TestApp, &str),
    clients: &mut [WsClient],
    delivered: &[serde_json::Value],
) {
    let marker = via
        .api(
            "send_to_group",
            system,
            json!({"groupName": "g", "msg": "marker"}),
        )
        .await
        .ok();
    for client in clients {
        let mut received = Vec::new();
        loop {
            let frame = client.next_json().await;
            if frame["messageId"] == marker["messageId"] {
                break;
            }
            received.push(frame["messageId"].clone());
        }
        for id in delivered {
            assert!(received.contains(id), "{} missed {id}", client.id);
        }
    }
}

#[actix_web::test]
async fn system_settings_and_unregister_reach_every_node() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let b = node(&redis, &prefix).await;
    let hook = json!({"url": "http://127.0.0.1:9/h", "secret": "0123456789abcdef"});
    a.api("register", "", json!({"systemId": "s", "webhook": hook}))
        .await
        .ok();
    let mut on_a = a.connect("s").await;
    let mut on_b = b.connect("s").await;
    let info = b.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"]["url"], "http://127.0.0.1:9/h");
    assert_eq!(info["clients"], 2, "counted on every node");

    b.api(
        "update_system",
        "s",
        json!({"webhook": null, "mqtt": {"events": ["client_online"]}}),
    )
    .await
    .ok();
    let info = a.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"], serde_json::Value::Null);
    assert_eq!(info["mqtt"], json!({"events": ["client_online"]}));
    a.api("register", "", json!({"systemId": "s"}))
        .await
        .err(409, "already registered");

    // Answered once every node has closed its clients.
    b.api("unregister", "s", json!({})).await.ok();
    for client in [&mut on_a, &mut on_b] {
        let reason = client.expect_close().await.expect("a close reason");
        assert_eq!(u16::from(reason.code), 4001);
    }
    a.api("get_system", "s", json!({}))
        .await
        .err(403, "not registered");
    a.api("register", "", json!({"systemId": "s"})).await.ok();
    let info = b.api("get_system", "s", json!({})).await.ok();
    assert_eq!(
        (&info["clients"], &info["webhook"]),
        (&json!(0), &serde_json::Value::Null)
    );
    b.connect("s").await;
}
