//! Recovery in a cluster: a client parked on its node keeps receiving what any node sends to
//! it, its group or its system, and resumes with all of it, through its own node or another;
//! a resume whose node died fails cleanly.

use std::time::Duration;

use awc::ws::Frame;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{connect_recoverable, info, resume, resume_recovered, send_and_expect, until_away};
use crate::cluster::{fresh_prefix, kill_9, node, redis_url};
use crate::helpers::{next_json, ServerProcess, WsConn};

#[actix_web::test]
async fn a_parked_client_gets_what_other_nodes_sent_while_it_was_away() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let (a, b) = (node(&redis, &prefix).await, node(&redis, &prefix).await);
    a.register("s").await;
    // Its node's only client of the system: the node must stay subscribed while it is away.
    let mut r = connect_recoverable(&a, "s").await;
    b.bind("s", &r.client, "g", "rita").await;
    r.next_push().await;
    let (id, token, last) = r.cut();
    until_away(&b, "s", &id).await;
    let mut sent = Vec::new();
    for (method, body) in [
        ("send_to_group", json!({"groupName": "g", "msg": "group"})),
        ("send_to_system", json!({"msg": "system"})),
        ("send_to_client", json!({"clientId": id, "msg": "direct"})),
    ] {
        let reply = b.api(method, "s", body).await.ok();
        if let Some(count) = reply.get("count") {
            assert_eq!(count, 1, "the away client counts on every node: {reply}");
        }
        sent.push(reply["messageId"].as_str().unwrap().to_owned());
    }
    let (mut conn, _) = resume_recovered(&a, (&token, last.as_deref()), &id, &sent).await;
    send_and_expect(
        &b,
        &mut conn,
        "send_to_group",
        json!({"groupName": "g", "msg": "live"}),
    )
    .await;
    let online = b
        .api("get_online_list", "s", json!({"groupName": "g"}))
        .await
        .ok();
    assert_eq!(online["list"], json!([id]));
}

#[actix_web::test]
async fn a_client_cut_on_one_node_resumes_through_another_and_every_node_reaches_it() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let (a, b) = (node(&redis, &prefix).await, node(&redis, &prefix).await);
    a.register("s").await;
    let mut peer = b.connect("s").await;
    b.bind("s", &peer, "g", "peer").await;
    peer.next_json().await;
    let mut r = connect_recoverable(&a, "s").await;
    a.bind("s", &r.client, "g", "rita").await;
    r.next_push().await;
    peer.expect_notice(1001, &r.client.id, "rita").await;
    let (id, token, last) = r.cut();
    until_away(&b, "s", &id).await;
    let mut sent = Vec::new();
    for (node, method, body) in [
        (
            &a,
            "send_to_group",
            json!({"groupName": "g", "msg": "from a"}),
        ),
        (
            &b,
            "send_to_client",
            json!({"clientId": id, "msg": "direct from b"}),
        ),
        (&b, "send_to_system", json!({"msg": "system from b"})),
    ] {
        let reply = node.api(method, "s", body).await.ok();
        sent.push(reply["messageId"].as_str().unwrap().to_owned());
    }
    // Through node b, which did not hold it.
    let (mut conn, welcome) = resume_recovered(&b, (&token, last.as_deref()), &id, &sent).await;
    // Every node still reaches it, by its id and through its group.
    let mut last_seen = Value::Null;
    for node in [&a, &b] {
        let direct = json!({"clientId": id, "msg": "live"});
        send_and_expect(node, &mut conn, "send_to_client", direct).await;
        let to_group = json!({"groupName": "g", "msg": "live"});
        let group = send_and_expect(node, &mut conn, "send_to_group", to_group).await;
        assert_eq!(group["count"], 2);
        last_seen = group["messageId"].clone();
    }
    assert_eq!(info(&b, "s", &id).await["connected"], true);
    // Nobody saw it leave.
    for _ in 0..4 {
        assert_ne!(peer.next_json().await["code"], 1002);
    }
    // Its new token resumes it again, wherever the next connection lands.
    let token = welcome["resumeToken"].as_str().unwrap().to_owned();
    drop(conn);
    until_away(&a, "s", &id).await;
    assert_eq!(a.gate_open(), 1, "away on its own node, it counts there");
    let (_, again) = resume(&a, "s", &token, last_seen.as_str()).await;
    assert_eq!(again["clientId"], id.as_str(), "{again}");
    assert_eq!(again["recovered"], true, "{again}");
}

/// Resumes through `address` as a client would: after a connection dropped without a welcome,
/// it tries again (the relay drops it while the dead node still looks alive).
async fn resume_until_welcomed(address: &str, token: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, mut conn): (_, WsConn) = awc::Client::new()
            .ws(format!("ws://{address}/ws?systemId=s&resume={token}&last="))
            .connect()
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), conn.next()).await {
                Ok(Some(Ok(Frame::Text(bytes)))) => {
                    let welcome: Value = serde_json::from_slice(&bytes).unwrap();
                    return welcome["data"].clone();
                }
                Ok(Some(Ok(_))) => continue,
                _ => break,
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never welcomed");
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Registers "s" through `node`, starts another node as a child process (so that it can be
/// killed), connects a recovery client to it and cuts it. Returns that node, the client's id
/// and its resume token, once `node` sees the client away.
async fn away_on_a_process(
    node: &crate::helpers::TestApp,
    redis: &str,
    prefix: &str,
) -> (ServerProcess, String, String) {
    let process = ServerProcess::start(&["--redis-url", redis, "--redis-prefix", prefix], &[]);
    node.register("s").await;
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://{}/ws?systemId=s&recovery=1", process.address))
        .connect()
        .await
        .unwrap();
    let welcome = next_json(&mut conn).await;
    let (id, token) = (
        welcome["data"]["clientId"].as_str().unwrap().to_owned(),
        welcome["data"]["resumeToken"].as_str().unwrap().to_owned(),
    );
    drop(conn);
    until_away(node, "s", &id).await;
    (process, id, token)
}

#[actix_web::test]
async fn a_resume_whose_node_died_fails_cleanly_with_node_lost() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    let (b, id, token) = away_on_a_process(&a, &redis, &prefix).await;
    kill_9(&b);
    let welcome = resume_until_welcomed(&format!("127.0.0.1:{}", a.port), &token).await;
    assert_eq!(welcome["recovered"], false, "{welcome}");
    assert_eq!(welcome["reason"], "node_lost", "{welcome}");
    assert_ne!(welcome["clientId"], id.as_str());
}

#[actix_web::test]
async fn a_relayed_connection_is_dropped_when_its_clients_node_dies() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let b = node(&redis, &prefix).await;
    let (a, _, token) = away_on_a_process(&b, &redis, &prefix).await;
    let (mut relayed, welcome) = resume(&b, "s", &token, None).await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    let token = welcome["resumeToken"].as_str().unwrap().to_owned();
    kill_9(&a);
    // Dropped without a close frame once b sees a's liveness expire.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match relayed.next().await {
                Some(Ok(Frame::Ping(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the relayed connection ends");
    assert!(
        !matches!(ended, Some(Ok(Frame::Close(_)))),
        "dropped, not closed: {ended:?}"
    );
    let welcome = resume_until_welcomed(&format!("127.0.0.1:{}", b.port), &token).await;
    assert_eq!(welcome["reason"], "node_lost", "{welcome}");
}

/// A recovery client cut off while its Redis fails over (Sentinel): what its home node accepted
/// for it meanwhile, and what is sent once the cluster serves again, is all there when it
/// resumes, in order.
#[actix_web::test]
async fn a_client_cut_during_a_sentinel_failover_resumes_with_every_frame_accepted_for_it() {
    if let Some(group) = crate::failover::SentinelGroup::start(None).await {
        cut_during_a_failover(group).await;
    }
}

/// The same while the Redis Cluster shard that holds the nodes' keys fails over.
#[actix_web::test]
async fn a_client_cut_during_a_redis_cluster_shard_failover_resumes_with_every_frame_accepted() {
    if let Some(group) = crate::redis_cluster::RedisClusterGroup::start().await {
        cut_during_a_failover(group).await;
    }
}

/// Kills `group`'s master with a recovery client cut meanwhile, then resumes it.
async fn cut_during_a_failover(mut group: impl crate::failover::FailingRedis) {
    let url = group.url();
    let (a, b) = (node(&url, "failover:").await, node(&url, "failover:").await);
    a.register("s").await;
    let mut r = connect_recoverable(&a, "s").await;
    a.bind("s", &r.client, "g", "rita").await;
    r.next_push().await;
    group.kill_master("{failover:}epoch").await;
    let (id, token, last) = r.cut();
    let mut accepted = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (mut served, mut kept_while_down) = (false, 0);
    while !served {
        assert!(std::time::Instant::now() < deadline, "never served again");
        // Through its home (no Redis needed) and, once the cluster serves, through the other.
        let direct = a
            .api(
                "send_to_client",
                "s",
                json!({"clientId": id, "msg": "direct"}),
            )
            .await;
        let to_group = b
            .api(
                "send_to_group",
                "s",
                json!({"groupName": "g", "msg": "group"}),
            )
            .await;
        for reply in [&direct, &to_group] {
            assert!(
                reply.status == 200 || reply.status == 503,
                "a wrong answer: {reply:?}"
            );
            if reply.status == 200 {
                accepted.push(reply.body["data"]["messageId"].as_str().unwrap().to_owned());
            }
        }
        if direct.status == 200 && to_group.status == 503 {
            kept_while_down += 1;
        }
        served = to_group.status == 200 && group.promoted().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its home took frames for it while no master answered.
    assert!(kept_while_down > 0, "{accepted:?}");
    eprintln!(
        "cut during a failover: {} frames accepted for it ({kept_while_down} while no master \
         answered), all resumed",
        accepted.len()
    );
    let (mut conn, _) = resume_recovered(&a, (&token, last.as_deref()), &id, &accepted).await;
    send_and_expect(
        &b,
        &mut conn,
        "send_to_group",
        json!({"groupName": "g", "msg": "live"}),
    )
    .await;
}
