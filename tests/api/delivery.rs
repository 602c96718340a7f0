//! Pushes reach exactly the clients they address, with `data` as the very JSON value posted.

use serde_json::{json, Value};

use crate::helpers::{assert_next_is_marker, spawn_app};

#[actix_web::test]
async fn send_to_client_reaches_only_that_client_with_every_field() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    let reply = app
        .api(
            "send_to_client",
            "s",
            json!({"clientId": a.id, "sendUserId": "u1", "code": 7, "msg": "hi", "data": "payload"}),
        )
        .await
        .ok();
    let frame = a.next_json().await;
    assert_eq!(
        frame,
        json!({"messageId": reply["messageId"], "sendUserId": "u1", "code": 7, "msg": "hi", "data": "payload"})
    );
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut b]).await;
}

#[actix_web::test]
async fn absent_fields_default_to_empty_values() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let reply = app
        .api("send_to_client", "s", json!({"clientId": a.id}))
        .await
        .ok();
    assert_eq!(
        a.next_json().await,
        json!({"messageId": reply["messageId"], "sendUserId": "", "code": 0, "msg": "", "data": ""})
    );
}

#[actix_web::test]
async fn data_arrives_as_the_same_json_value() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let values = [
        json!("a string"),
        json!(42),
        json!(-1.5),
        json!({"nested": {"list": [1, "two", null], "ok": true}}),
        json!([1, 2, 3]),
        Value::Null,
        json!("héllo wörld — 你好 🚀"),
        json!(""),
    ];
    for value in values {
        app.api(
            "send_to_client",
            "s",
            json!({"clientId": a.id, "data": value}),
        )
        .await
        .ok();
        let frame = a.next_json().await;
        assert_eq!(frame["data"], value);
    }
}

#[actix_web::test]
async fn send_to_clients_one_message_id_and_missing_listed() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    let mut c = app.connect("s").await;
    let reply = app
        .api(
            "send_to_clients",
            "s",
            json!({"clientIds": [a.id, "gone-1", b.id, a.id, "gone-2"], "data": {"n": 1}}),
        )
        .await
        .ok();
    assert_eq!(reply["missing"], json!(["gone-1", "gone-2"]));
    for client in [&mut a, &mut b] {
        let frame = client.next_json().await;
        assert_eq!(frame["messageId"], reply["messageId"]);
        assert_eq!(frame["data"], json!({"n": 1}));
    }
    // a was listed twice but gets it once; c was not listed.
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut b, &mut c]).await;
}

#[actix_web::test]
async fn send_to_group_reaches_members_only() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    let mut outsider = app.connect("s").await;
    app.bind("s", &a, "room", "alice").await;
    a.next_json().await; // a's own 1001
    app.bind("s", &b, "room", "bob").await;
    a.next_json().await; // b's 1001
    b.next_json().await;

    let reply = app
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "room", "code": 5, "data": [true]}),
        )
        .await
        .ok();
    assert_eq!(reply["count"], 2);
    for client in [&mut a, &mut b] {
        let frame = client.next_json().await;
        assert_eq!(frame["messageId"], reply["messageId"]);
        assert_eq!(frame["code"], 5);
        assert_eq!(frame["data"], json!([true]));
    }
    assert_next_is_marker(&app, "s", &mut [&mut a, &mut b, &mut outsider]).await;
}

#[actix_web::test]
async fn send_to_system_reaches_every_client_of_that_system_only() {
    let app = spawn_app().await;
    app.register("s").await;
    app.register("other").await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(app.connect("s").await);
    }
    let mut stranger = app.connect("other").await;
    let reply = app
        .api("send_to_system", "s", json!({"data": "all"}))
        .await
        .ok();
    assert_eq!(reply["count"], 5);
    for client in &mut clients {
        assert_eq!(client.next_json().await["messageId"], reply["messageId"]);
    }
    assert_next_is_marker(&app, "other", &mut [&mut stranger]).await;
}
