//! Webhooks in a cluster: each event once, occupancy decided once, a dead node's clients.

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::{json, Value};

use super::{names, register_with_hook, Receiver};
use crate::cluster::{fresh_prefix, node};

#[actix_web::test]
async fn in_a_cluster_each_event_comes_once_and_occupancy_is_decided_once() {
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (node(&redis, &prefix).await, node(&redis, &prefix).await);
    let receiver = Receiver::default();
    let url = receiver.start();
    register_with_hook(&a, "s", &url).await;
    let on_a = a.connect("s").await;
    let mut on_b = b.connect("s").await;
    a.bind("s", &on_a, "room", "ann").await;
    b.bind("s", &on_b, "room", "bob").await;
    b.api(
        "unbind_from_group",
        "s",
        json!({"clientId": on_a.id, "groupName": "room"}),
    )
    .await
    .ok();
    on_b.conn
        .send(Message::Close(Some(awc::ws::CloseCode::Normal.into())))
        .await
        .unwrap();
    // Each node posts its own events: wait for every one (not just the last one emitted, whose
    // node may post before the other's batch arrives), then check none came twice.
    let expected = [
        ("client_online", 2),
        ("group_joined", 2),
        ("group_occupied", 1),
        ("group_left", 2),
        ("group_vacated", 1),
        ("client_offline", 1),
    ];
    let count = |events: &[Value], name: &str| names(events).iter().filter(|n| **n == name).count();
    let events = receiver
        .wait_for("every event", |e| {
            expected.iter().all(|(name, n)| count(e, name) >= *n)
        })
        .await;
    for (name, n) in expected {
        assert_eq!(count(&events, name), n, "{name}: {events:#?}");
    }
    // Nothing arrives twice (at least once allows it, but not when the receiver answers).
    let ids: usize = receiver
        .received()
        .iter()
        .map(|r| r.body["events"].as_array().unwrap().len())
        .sum();
    assert_eq!(ids, events.len());
}

#[actix_web::test]
async fn the_clients_of_a_dead_node_go_offline_with_node_lost() {
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let receiver = Receiver::default();
    let url = receiver.start();
    register_with_hook(&a, "s", &url).await;
    let b = crate::helpers::ServerProcess::start(
        &["--redis-url", &redis, "--redis-prefix", &prefix],
        &[],
    );
    let (_conn, doomed) = crate::cluster::doomed_client(&a, &b).await;
    receiver
        .wait_for("the doomed client joined", |e| {
            names(e).contains(&"group_joined")
        })
        .await;
    crate::cluster::kill_9(&b);
    let events = receiver
        .wait_for("offline", |e| names(e).contains(&"client_offline"))
        .await;
    let offline = events
        .iter()
        .find(|e| e["name"] == "client_offline")
        .unwrap();
    assert_eq!(offline["clientId"], doomed);
    assert_eq!(offline["reason"], "node_lost");
    assert_eq!(offline["code"], Value::Null);
    assert_eq!(offline["userId"], "doomed");
    assert_eq!(offline["groups"], json!(["room"]));
    assert!(names(&events).contains(&"group_vacated"));
    drop(b);
}

#[actix_web::test]
async fn a_webhook_set_on_one_node_is_used_at_once_by_the_other() {
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let prefix = fresh_prefix();
    let (a, b) = (node(&redis, &prefix).await, node(&redis, &prefix).await);
    a.register("s").await;
    // b knows the system, without a webhook, before the change.
    let mut on_b = b.connect("s").await;
    let receiver = Receiver::default();
    let url = receiver.start();
    a.api(
        "update_system",
        "s",
        json!({"webhook": {"url": url, "secret": super::SECRET, "events": ["client_message"]}}),
    )
    .await
    .ok();
    // Answered once every node has taken it: b's client's next message is reported.
    on_b.conn
        .send(Message::Text(r#"{"after":"update"}"#.into()))
        .await
        .unwrap();
    let events = receiver
        .wait_for("the message from b", |e| !e.is_empty())
        .await;
    assert_eq!(names(&events), ["client_message"]);
    assert_eq!(events[0]["data"], json!({"after": "update"}));
}

#[actix_web::test]
async fn the_pending_events_of_a_killed_node_are_delivered_by_another_within_15_s() {
    // A Redis of the test's own: what is left in it is the dead node's stream, and nothing else.
    let Some(own) = crate::cluster::own_redis_or_skip() else {
        return;
    };
    let redis = format!("redis://127.0.0.1:{}", own.port);
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let receiver = Receiver::default();
    receiver.refuse(true);
    let url = receiver.start();
    register_with_hook(&a, "s", &url).await;
    let b = crate::helpers::ServerProcess::start(
        &["--redis-url", &redis, "--redis-prefix", &prefix],
        &[],
    );
    // b decides these clients' events, keeps them in Redis, and cannot deliver them while the
    // backend is down.
    let _conns = super::outbox::clients(&b, 50).await;
    let (http, base) = (awc::Client::new(), format!("http://{}", b.address));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored =
            crate::helpers::scraped_metric(&http, &base, "wshub_webhook_events_stored ").await;
        if stored >= 50.0 && !receiver.received().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b stored {stored} of 50 events"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    crate::cluster::kill_9(&b);
    let killed = std::time::Instant::now();
    receiver.refuse(false);
    // a delivers b's 50 client_online, then the purge's 50 client_offline (node_lost).
    let events = super::outbox::acknowledged(&receiver, 100).await;
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(15),
        "taken over in {:?}",
        killed.elapsed()
    );
    super::outbox::once_each_as_first_sent(&receiver, &events);
    let online = super::outbox::online_then_offline(&events, "node_lost");
    assert_eq!(online.len(), 50);
    // The dead node's stream is gone once taken over.
    let mut conn = redis::Client::open(redis.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let streams: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}outbox:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(streams.len(), 1, "only the survivor's own: {streams:?}");
    drop(b);
}
