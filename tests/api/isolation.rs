//! Tenant isolation: nothing done through system B touches a client or group of system A.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_client_of_one_system_is_invisible_to_another() {
    let app = spawn_app().await;
    app.register("a").await;
    app.register("b").await;
    let mut alice = app.connect("a").await;
    app.bind("a", &alice, "room", "alice").await;
    alice.next_json().await; // own 1001
    let bob = app.connect("b").await;
    app.bind("b", &bob, "room", "bob").await;

    for (method, body) in [
        ("send_to_client", json!({"clientId": alice.id})),
        (
            "bind_to_group",
            json!({"clientId": alice.id, "groupName": "room"}),
        ),
        (
            "unbind_from_group",
            json!({"clientId": alice.id, "groupName": "room"}),
        ),
        ("close_client", json!({"clientId": alice.id})),
    ] {
        app.api(method, "b", body).await.err(404, "not connected");
    }
    let reply = app
        .api("send_to_clients", "b", json!({"clientIds": [alice.id]}))
        .await
        .ok();
    assert_eq!(reply["missing"], json!([alice.id]));
    let info = app
        .api("get_client_info", "b", json!({"clientId": alice.id}))
        .await
        .ok();
    assert_eq!(info, json!({"online": false, "clientId": alice.id}));

    // Same group name in both systems: separate groups.
    let reply = app
        .api("send_to_group", "b", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(reply["count"], 1);
    let groups = app.api("get_all_groups", "b", json!({})).await.ok();
    assert_eq!(groups, json!({"room": [bob.id]}));
    let list = app
        .api("get_online_list", "b", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["list"], json!([bob.id]));
    let reply = app.api("send_to_system", "b", json!({})).await.ok();
    assert_eq!(reply["count"], 1);

    // alice is untouched: still in her group, and the next thing she gets is a's own marker.
    let groups = app.api("get_all_groups", "a", json!({})).await.ok();
    assert_eq!(groups, json!({"room": [alice.id]}));
    let marker = app
        .api("send_to_system", "a", json!({"msg": "marker"}))
        .await
        .ok();
    assert_eq!(alice.next_json().await["messageId"], marker["messageId"]);
}
