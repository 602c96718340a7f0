//! After clients disconnect, nothing of them is left in the registry.

use awc::ws::Message;
use futures_util::SinkExt;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn two_hundred_clients_in_twenty_groups_leave_nothing_behind() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut clients = Vec::new();
    for i in 0..200 {
        let client = app.connect("s").await;
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": client.id, "groupName": format!("g{}", i % 20)}),
        )
        .await
        .ok();
        clients.push(client);
    }
    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups.as_object().unwrap().len(), 20);
    let stats = app.stats().await;
    assert_eq!((stats.clients, stats.groups), (200, 20));

    // Half leave with a close frame, half just drop the connection.
    for (i, mut client) in clients.into_iter().enumerate() {
        if i % 2 == 0 {
            client.conn.send(Message::Close(None)).await.unwrap();
        }
        drop(client);
    }
    let stats = app
        .wait_for_stats(|s| s.clients == 0 && s.groups == 0)
        .await;
    assert_eq!(stats.systems, 1);
    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({}));
}
