//! A mass disconnect of a large group: REST keeps answering meanwhile, and afterwards nothing of
//! the group or its clients is left, no actor or connection stuck.

use std::time::{Duration, Instant};

use serde_json::json;
use wshub::actors::testing::InspectGroup;

use crate::helpers::{spawn_app_with, WAIT};

#[actix_web::test]
async fn a_thousand_clients_leaving_at_once_do_not_stall_the_server() {
    const CLIENTS: usize = 1000;
    let app = spawn_app_with(|c| c.workers = 2).await;
    app.register("s").await;
    app.register("other").await;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let client = app.connect("s").await;
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": "big"}),
        )
        .await
        .ok();
        clients.push(client);
    }
    let list = app
        .api("get_online_list", "s", json!({"groupName": "big"}))
        .await
        .ok();
    assert_eq!(list["count"], CLIENTS);

    // REST latency when idle.
    let mut idle = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        app.api("get_all_groups", "other", json!({})).await.ok();
        idle = idle.max(started.elapsed());
    }

    // Everyone goes at once: the sockets close in one sweep.
    drop(clients);
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut calls = 0;
    loop {
        let call = Instant::now();
        app.api("get_all_groups", "other", json!({})).await.ok();
        worst = worst.max(call.elapsed());
        calls += 1;
        if app.stats().await.clients == 0 {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "clients still registered after {WAIT:?}"
        );
    }
    eprintln!(
        "mass disconnect of {CLIENTS}: cleared in {:?}; REST worst {worst:?} over {calls} calls (idle worst {idle:?})",
        started.elapsed()
    );
    // REST stays responsive: no call waits behind the whole disconnect wave.
    assert!(
        worst < Duration::from_millis(500),
        "a REST call took {worst:?} during the disconnect"
    );

    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({}));
    let group_actor = app
        .hub
        .registry
        .send(InspectGroup {
            system_id: "s".into(),
            group_name: "big".into(),
        })
        .await
        .unwrap();
    assert!(group_actor.is_none());
    let deadline = Instant::now() + WAIT;
    while app.hub.gate.open() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections stuck",
            app.hub.gate.open()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // And the server still works normally.
    let mut fresh = app.connect("s").await;
    app.bind("s", &fresh, "big", "new").await;
    assert_eq!(fresh.next_json().await["code"], 1001);
}
