//! QoS 1 into wshub is at least once across a crash: the bridge acknowledges a publish only
//! once its push was accepted, and a node with a stable `--mqtt-client-id` finds its session
//! (and what it had not acknowledged) at the broker when it comes back.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{broker_url, Device};
use crate::cluster::{fresh_prefix, node, redis_url};
use crate::helpers::{next_json_within, ServerProcess};

/// Waits until the node process at `address` says its bridge is connected.
async fn bridge_connected(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = awc::Client::new()
            .get(format!("http://{address}/healthz"))
            .send()
            .await;
        if let Ok(mut reply) = reply {
            let body: Value = reply.json().await.unwrap_or_default();
            if body["data"]["mqtt"] == "connected" {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the bridge never connected");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn qos1_publishes_a_crashed_bridge_had_not_pushed_reach_the_group_after_its_restart() {
    let Some(broker) = broker_url() else { return };
    let Some(redis) = redis_url() else { return };
    // Under the broker's queue per session (Mosquitto: 1000), which would drop the rest.
    const N: usize = 600;
    let prefix = fresh_prefix();
    let topics = format!("wshub-test/{}/", &wshub::protocol::new_id()[..12]);
    let client_id = format!("wshub-test-{}", &wshub::protocol::new_id()[..12]);
    // The member lives on a node without a bridge, which stays up.
    let b = node(&redis, &prefix).await;
    b.register("s").await;
    let mut member = b.connect("s").await;
    b.bind("s", &member, "g", "m").await;
    member.next_json().await;
    let args = [
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--mqtt-url",
        &broker,
        "--mqtt-prefix",
        &topics,
        "--mqtt-client-id",
        &client_id,
    ];
    let a = ServerProcess::start(&args, &[]);
    bridge_connected(&a.address).await;

    let device = Device::connect(&broker);
    for n in 0..N {
        device
            .publish(&format!("{topics}s/group/g"), format!(r#"{{"data":{n}}}"#))
            .await;
    }
    let mut seen = BTreeSet::new();
    // Killed in the middle of the stream: what it had received and not pushed is not lost.
    while seen.len() < N / 3 {
        seen.insert(member.next_json().await["data"].as_u64().unwrap());
    }
    crate::cluster::kill_9(&a);
    let a = ServerProcess::start(&args, &[]);
    bridge_connected(&a.address).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < N {
        assert!(
            Instant::now() < deadline,
            "{} of {N} publishes reached the group",
            seen.len()
        );
        let frame = next_json_within(&mut member.conn, Duration::from_secs(30)).await;
        if let Some(n) = frame["data"].as_u64() {
            seen.insert(n);
        }
    }
    drop(a);
}
