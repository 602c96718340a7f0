//! Every configurable limit, with the error a caller sees and proof that nothing changed.

use serde_json::json;

use crate::helpers::{expect_close, next_json, spawn_app, spawn_app_with};

#[actix_web::test]
async fn data_over_the_limit_is_413() {
    let app = spawn_app_with(|c| c.limits.max_data_size = 1000).await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    // The JSON text of data counts: a 998-character string is 1000 bytes with its quotes.
    app.api(
        "send_to_client",
        "s",
        json!({"clientId": a.id, "data": "x".repeat(998)}),
    )
    .await
    .ok();
    assert_eq!(a.next_json().await["data"].as_str().unwrap().len(), 998);
    for method in [
        "send_to_client",
        "send_to_clients",
        "send_to_group",
        "send_to_system",
    ] {
        let body = json!({"clientId": a.id, "clientIds": [a.id], "groupName": "g", "data": "x".repeat(999)});
        app.api(method, "s", body)
            .await
            .err(413, "data: larger than the limit of 1000 bytes");
    }
}

#[actix_web::test]
async fn default_data_limit_is_64_kib() {
    let app = spawn_app().await;
    app.register("s").await;
    app.api(
        "send_to_system",
        "s",
        json!({"data": "x".repeat(64 * 1024)}),
    )
    .await
    .err(413, "data: larger than the limit of 65536 bytes");
}

#[actix_web::test]
async fn too_many_client_ids_is_400() {
    let app = spawn_app_with(|c| c.limits.max_client_ids = 3).await;
    app.register("s").await;
    app.api(
        "send_to_clients",
        "s",
        json!({"clientIds": ["a", "b", "c"]}),
    )
    .await
    .ok();
    app.api(
        "send_to_clients",
        "s",
        json!({"clientIds": ["a", "b", "c", "d"]}),
    )
    .await
    .err(400, "clientIds: more than the limit of 3 ids");
}

#[actix_web::test]
async fn a_client_id_no_server_could_make_is_400_among_several() {
    let app = spawn_app().await;
    app.register("s").await;
    // Not connected (but well formed): listed as missing.
    let sent = app
        .api("send_to_clients", "s", json!({"clientIds": ["gone"]}))
        .await
        .ok();
    assert_eq!(sent["missing"], json!(["gone"]));
    // A control character (as the OpenAPI schema's pattern says): refused, naming the item.
    app.api(
        "send_to_clients",
        "s",
        json!({"clientIds": ["ok", "\u{d7}\u{f8}\u{9b}"]}),
    )
    .await
    .err(400, "clientIds[1]: must be free of control characters");
}

#[actix_web::test]
async fn field_lengths_are_limited() {
    let app = spawn_app().await;
    app.register("s").await;
    let client = app.connect("s").await;
    let long = |n: usize| "x".repeat(n);
    app.api("register", "", json!({"systemId": long(128)}))
        .await
        .ok();
    app.api("register", "", json!({"systemId": long(129)}))
        .await
        .err(400, "systemId: longer than the limit of 128 bytes");
    let bind = |group: String, user: String, extend: String| json!({"clientId": client.id, "groupName": group, "userId": user, "extend": extend});
    app.api("bind_to_group", "s", bind(long(128), long(128), long(4096)))
        .await
        .ok();
    app.api("bind_to_group", "s", bind(long(129), "u".into(), "".into()))
        .await
        .err(400, "groupName: longer than the limit of 128 bytes");
    app.api("bind_to_group", "s", bind("g".into(), long(129), "".into()))
        .await
        .err(400, "userId: longer than the limit of 128 bytes");
    app.api(
        "bind_to_group",
        "s",
        bind("g".into(), "u".into(), long(4097)),
    )
    .await
    .err(400, "extend: longer than the limit of 4096 bytes");
    app.api("send_to_group", "s", json!({"groupName": long(129)}))
        .await
        .err(400, "groupName: longer than the limit");
    app.api("send_to_system", "s", json!({"sendUserId": long(129)}))
        .await
        .err(400, "sendUserId: longer than the limit");
    app.api("get_online_list", "s", json!({"groupName": long(129)}))
        .await
        .err(400, "groupName: longer than the limit");
    // None of the refused binds changed anything.
    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({ long(128): [client.id] }));
}

#[actix_web::test]
async fn long_system_id_on_ws_is_refused() {
    let app = spawn_app().await;
    let mut conn = app.ws_raw(&format!("?systemId={}", "x".repeat(129))).await;
    let frame = next_json(&mut conn).await;
    assert_eq!(frame["code"], -1001);
    assert!(frame["msg"]
        .as_str()
        .unwrap()
        .contains("longer than 128 bytes"));
    assert_eq!(u16::from(expect_close(&mut conn).await.unwrap().code), 1008);
}

#[actix_web::test]
async fn groups_per_client_and_clients_per_group_are_limited() {
    let app = spawn_app_with(|c| {
        c.limits.max_groups_per_client = 2;
        c.limits.max_clients_per_group = Some(2);
    })
    .await;
    app.register("s").await;
    let a = app.connect("s").await;
    let b = app.connect("s").await;
    let c = app.connect("s").await;
    let bind = |client: &str, group: &str| json!({"clientId": client, "groupName": group, "userId": "new"});
    app.api("bind_to_group", "s", bind(&a.id, "g1")).await.ok();
    app.api("bind_to_group", "s", bind(&a.id, "g2")).await.ok();
    app.api("bind_to_group", "s", bind(&a.id, "g3"))
        .await
        .err(400, "already in 2 groups");
    // Re-binding to a group it is in is not a new group.
    app.api("bind_to_group", "s", bind(&a.id, "g2")).await.ok();
    app.api("bind_to_group", "s", bind(&b.id, "g1")).await.ok();
    app.api("bind_to_group", "s", bind(&c.id, "g1"))
        .await
        .err(400, "group 'g1' already has 2 clients");
    // The refused client kept its old state: not in g1, userId unchanged.
    let info = app
        .api("get_client_info", "s", json!({"clientId": c.id}))
        .await
        .ok();
    assert_eq!(info["groups"], json!([]));
    assert_eq!(info["userId"], "");
}

#[actix_web::test]
async fn connections_over_the_total_limit_are_refused_with_503_before_upgrading() {
    let app = spawn_app_with(|c| c.limits.max_connections = 2).await;
    app.register("s").await;
    let _a = app.connect("s").await;
    let b = app.connect("s").await;
    let refused = awc::Client::new()
        .ws(app.ws_url("?systemId=s"))
        .connect()
        .await
        .err()
        .expect("third connection refused");
    let awc::error::WsClientError::InvalidResponseStatus(status) = refused else {
        panic!("expected an HTTP status, got {refused:?}");
    };
    assert_eq!(status.as_u16(), 503);
    // A place frees up when a client leaves.
    drop(b);
    app.wait_for_stats(|s| s.clients == 1).await;
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    while app.hub.gate.open() > 1 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    app.connect("s").await;
}

#[actix_web::test]
async fn connections_per_system_are_limited() {
    let app = spawn_app_with(|c| c.limits.max_connections_per_system = Some(1)).await;
    app.register("a").await;
    app.register("b").await;
    let _a = app.connect("a").await;
    let refused = awc::Client::new()
        .ws(app.ws_url("?systemId=a"))
        .connect()
        .await
        .err()
        .expect("second connection to a refused");
    assert!(
        matches!(refused, awc::error::WsClientError::InvalidResponseStatus(s) if s.as_u16() == 503)
    );
    // Another system is not affected.
    app.connect("b").await;
    // The refusal is a JSON envelope.
    let mut response = app
        .http
        .get(app.ws_url("?systemId=a").replace("ws://", "http://"))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["msg"].as_str().unwrap().contains("for system 'a'"),
        "{body}"
    );
}

#[actix_web::test]
async fn a_push_whose_whole_frame_is_over_max_push_size_is_413_and_reaches_no_one() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": a.id, "groupName": "g"}),
    )
    .await
    .ok();
    a.next_json().await;
    // msg has no limit of its own: the encoded frame (all fields) is what is limited.
    let huge_msg = "m".repeat(1_048_000);
    for method in [
        "send_to_client",
        "send_to_clients",
        "send_to_group",
        "send_to_system",
    ] {
        let body =
            json!({"clientId": a.id, "clientIds": [a.id], "groupName": "g", "msg": huge_msg});
        app.api(method, "s", body)
            .await
            .err(413, "over the limit of 262144 bytes (--max-push-size)");
    }
    // Just under the limit goes through to both clients, who stay connected.
    let fits = "m".repeat(262_144 - 200);
    let reply = app
        .api("send_to_system", "s", json!({"msg": fits}))
        .await
        .ok();
    assert_eq!(reply["count"], 2);
    for client in [&mut a, &mut b] {
        assert_eq!(
            client.next_json().await["msg"].as_str().unwrap().len(),
            fits.len()
        );
    }
    crate::helpers::assert_next_is_marker(&app, "s", &mut [&mut a, &mut b]).await;
}

#[test]
fn a_push_limit_larger_than_the_outbound_queue_refuses_to_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wshub"))
        .args([
            "--port",
            "0",
            "--max-push-size",
            "2000000",
            "--max-outbound-queue",
            "1000000",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--max-push-size (2000000) is larger than --max-outbound-queue (1000000)"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn max_connections_above_the_open_file_limit_is_clamped_with_a_warning() {
    let server =
        crate::helpers::ServerProcess::start_logging(&["--max-connections", "100000000"], &[]);
    assert!(
        server
            .log
            .iter()
            .any(|line| line.contains("more than the open-file limit allows")),
        "{:?}",
        server.log
    );
}
