//! Every REST method's success shape and every error status protocol.md lists.

use actix_web::web::Bytes;
use serde_json::json;

use crate::helpers::{spawn_app, Call, Reply, TestApp};

async fn raw(app: &TestApp, method: &str, system: Option<&str>, body: &str) -> Reply {
    app.call(Call {
        method,
        http_method: awc::http::Method::POST,
        token: Some(&app.token),
        system,
        body: Bytes::from(body.to_owned()),
    })
    .await
}

#[actix_web::test]
async fn register_then_duplicate_is_409() {
    let app = spawn_app().await;
    let data = app
        .api("register", "", json!({"systemId": "shop"}))
        .await
        .ok();
    assert_eq!(data, json!([]));
    app.api("register", "", json!({"systemId": "shop"}))
        .await
        .err(409, "already registered");
}

#[actix_web::test]
async fn malformed_missing_mistyped_and_empty_fields_are_400_naming_the_field() {
    let app = spawn_app().await;
    app.register("s").await;

    raw(&app, "register", None, "{not json")
        .await
        .err(400, "malformed JSON");
    raw(
        &app,
        "send_to_client",
        Some("s"),
        r#"{"clientId": "a"} trailing"#,
    )
    .await
    .err(400, "malformed JSON");
    raw(&app, "register", None, "{}").await.err(400, "systemId");
    // A person reads the field's name, not the parser's position.
    let missing = raw(&app, "bind_to_group", Some("s"), r#"{"clientId": "x"}"#).await;
    assert_eq!(missing.body["msg"], "missing field `groupName`");
    let mistyped = raw(&app, "register", None, r#"{"systemId": 5}"#).await;
    assert_eq!(
        mistyped.body["msg"],
        "systemId: invalid type: integer `5`, expected a string"
    );
    raw(&app, "register", None, r#"{"systemId": 5}"#)
        .await
        .err(400, "systemId: invalid type");
    raw(&app, "register", None, r#"{"systemId": ""}"#)
        .await
        .err(400, "systemId: must not be an empty string");
    raw(&app, "send_to_client", Some("s"), r#"{"clientId": ""}"#)
        .await
        .err(400, "clientId: must not be an empty string");
    raw(
        &app,
        "send_to_client",
        Some("s"),
        r#"{"clientId": "x", "code": "7"}"#,
    )
    .await
    .err(400, "code: invalid type");
    raw(&app, "send_to_group", Some("s"), r#"{"groupName": ""}"#)
        .await
        .err(400, "groupName: must not be an empty string");
    raw(&app, "send_to_clients", Some("s"), r#"{"clientIds": "a"}"#)
        .await
        .err(400, "clientIds: invalid type");
    raw(
        &app,
        "send_to_clients",
        Some("s"),
        r#"{"clientIds": ["a", ""]}"#,
    )
    .await
    .err(400, "clientIds[1]: must not be an empty string");
    raw(&app, "send_to_clients", Some("s"), r#"{"clientIds": []}"#)
        .await
        .err(400, "clientIds: must not be empty");
    raw(&app, "bind_to_group", Some("s"), r#"{"clientId": "a"}"#)
        .await
        .err(400, "groupName");
    raw(
        &app,
        "bind_to_group",
        Some("s"),
        r#"{"clientId": "a", "groupName": "g", "userId": 1}"#,
    )
    .await
    .err(400, "userId: invalid type");
    raw(&app, "get_online_list", Some("s"), r#"["g"]"#)
        .await
        .err(400, "expected a JSON object");
    raw(&app, "close_client", Some("s"), "")
        .await
        .err(400, "clientId");
}

#[actix_web::test]
async fn system_header_missing_empty_or_unregistered() {
    let app = spawn_app().await;
    app.register("s").await;
    raw(&app, "get_all_groups", None, "{}")
        .await
        .err(400, "SystemId");
    raw(&app, "get_all_groups", Some(""), "{}")
        .await
        .err(400, "SystemId");
    app.api("get_all_groups", "nope", json!({}))
        .await
        .err(403, "system 'nope' is not registered");
    app.api("send_to_client", "nope", json!({"clientId": "x"}))
        .await
        .err(403, "not registered");
}

#[actix_web::test]
async fn unknown_client_is_404_for_every_client_method() {
    let app = spawn_app().await;
    app.register("s").await;
    for (method, body) in [
        ("send_to_client", json!({"clientId": "ghost"})),
        (
            "bind_to_group",
            json!({"clientId": "ghost", "groupName": "g"}),
        ),
        (
            "unbind_from_group",
            json!({"clientId": "ghost", "groupName": "g"}),
        ),
        ("close_client", json!({"clientId": "ghost"})),
    ] {
        app.api(method, "s", body)
            .await
            .err(404, "clientId 'ghost' is not connected");
    }
    // get_client_info answers offline rather than 404.
    let info = app
        .api("get_client_info", "s", json!({"clientId": "ghost"}))
        .await
        .ok();
    assert_eq!(info, json!({"online": false, "clientId": "ghost"}));
}

#[actix_web::test]
async fn wrong_http_method_is_405_and_unknown_method_404() {
    let app = spawn_app().await;
    let reply = app
        .call(Call {
            method: "register",
            http_method: awc::http::Method::GET,
            token: Some(&app.token),
            system: None,
            body: Bytes::new(),
        })
        .await;
    reply.err(405, "POST");
    assert_eq!(reply.headers.get("allow").unwrap(), "POST");
    raw(&app, "no_such_method", Some("s"), "{}")
        .await
        .err(404, "no API method");
}

#[actix_web::test]
async fn body_over_the_limit_is_413() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.limits.max_data_size = 2 << 20;
        c.limits.max_push_size = c.limits.max_outbound_queue;
    })
    .await;
    app.register("s").await;
    let data = "x".repeat(1024 * 1024 + 1);
    app.api("send_to_system", "s", json!({ "data": data }))
        .await
        .err(413, "larger than the limit");
    // Just under the limit is fine.
    let data = "x".repeat(1024 * 1024 - 100);
    app.api("send_to_system", "s", json!({ "data": data }))
        .await
        .ok();
}

#[actix_web::test]
async fn every_method_success_shape() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let b = app.connect("s").await;

    let data = app
        .api("send_to_client", "s", json!({"clientId": a.id}))
        .await
        .ok();
    assert_eq!(data["messageId"].as_str().unwrap().len(), 32);

    let data = app
        .api("send_to_clients", "s", json!({"clientIds": [a.id, "gone"]}))
        .await
        .ok();
    assert!(data["messageId"].is_string());
    assert_eq!(data["missing"], json!(["gone"]));

    app.bind("s", &a, "room", "alice").await;
    app.bind("s", &b, "room", "bob").await;
    app.bind("s", &b, "other", "bob").await;

    let data = app
        .api("send_to_group", "s", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(data["count"], 2);
    assert!(data["messageId"].is_string());
    let data = app
        .api("send_to_group", "s", json!({"groupName": "empty"}))
        .await
        .ok();
    assert_eq!(data["count"], 0);

    let data = app.api("send_to_system", "s", json!({})).await.ok();
    assert_eq!(data["count"], 2);

    let list = app
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["count"], 2);
    let mut ids = vec![a.id.clone(), b.id.clone()];
    ids.sort();
    assert_eq!(list["list"], json!(ids));
    let clients = list["clients"].as_array().unwrap();
    assert!(clients.contains(&json!({"clientId": a.id, "userId": "alice", "extend": "ext-alice"})));
    assert!(clients.contains(&json!({"clientId": b.id, "userId": "bob", "extend": "ext-bob"})));
    let list = app
        .api("get_online_list", "s", json!({"groupName": "nobody"}))
        .await
        .ok();
    assert_eq!(list, json!({"count": 0, "list": [], "clients": []}));

    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({"room": ids, "other": [b.id]}));

    let info = app
        .api("get_client_info", "s", json!({"clientId": b.id}))
        .await
        .ok();
    assert_eq!(info["online"], true);
    assert_eq!(info["clientId"], b.id.as_str());
    assert_eq!(info["userId"], "bob");
    assert_eq!(info["extend"], "ext-bob");
    assert_eq!(info["groups"], json!(["other", "room"]));
    assert!(info["connectedAt"].as_u64().unwrap() > 1_700_000_000_000);

    let data = app
        .api(
            "unbind_from_group",
            "s",
            json!({"clientId": b.id, "groupName": "other"}),
        )
        .await
        .ok();
    assert_eq!(data, json!([]));
    // Unbinding again is a no-op success.
    app.api(
        "unbind_from_group",
        "s",
        json!({"clientId": b.id, "groupName": "other"}),
    )
    .await
    .ok();
    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({"room": ids}));

    let data = app
        .api("close_client", "s", json!({"clientId": a.id}))
        .await
        .ok();
    assert_eq!(data, json!([]));
    let info = app
        .api("get_client_info", "s", json!({"clientId": a.id}))
        .await
        .ok();
    assert_eq!(info["online"], false);
    // The closed client saw its close frame with 1000.
    let reason = a.expect_close().await.expect("close reason");
    assert_eq!(u16::from(reason.code), 1000);
}

#[actix_web::test]
async fn missing_content_type_and_empty_body_are_accepted() {
    let app = spawn_app().await;
    app.register("s").await;
    // awc sends no Content-Type for a raw body.
    let groups = raw(&app, "get_all_groups", Some("s"), "").await.ok();
    assert_eq!(groups, json!({}));
}
