//! A group actor that stops is restarted by its supervisor with its members intact.

use serde_json::json;
use wshub::actors::testing::{InspectGroup, StopGroupActor};

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_restarted_group_keeps_members_user_ids_and_extends() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.bind("s", &a, "room", "alice").await;
    app.bind("s", &b, "room", "bob").await;
    for _ in 0..2 {
        a.next_json().await;
    }
    b.next_json().await;

    let inspect = || InspectGroup {
        system_id: "s".into(),
        group_name: "room".into(),
    };
    let before = app.hub.registry.send(inspect()).await.unwrap().unwrap();
    assert_eq!((before.members, before.restarts), (2, 0));

    let existed = app
        .hub
        .registry
        .send(StopGroupActor {
            system_id: "s".into(),
            group_name: "room".into(),
        })
        .await
        .unwrap();
    assert!(existed);

    // Messages are handled in order, so this answer comes from the restarted actor.
    let after = app.hub.registry.send(inspect()).await.unwrap().unwrap();
    assert_eq!((after.members, after.restarts), (2, 1));

    let list = app
        .api("get_online_list", "s", json!({"groupName": "room"}))
        .await
        .ok();
    let clients = list["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 2);
    assert!(clients.contains(&json!({"clientId": a.id, "userId": "alice", "extend": "ext-alice"})));
    assert!(clients.contains(&json!({"clientId": b.id, "userId": "bob", "extend": "ext-bob"})));

    let reply = app
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "room", "data": "after restart"}),
        )
        .await
        .ok();
    assert_eq!(reply["count"], 2);
    for client in [&mut a, &mut b] {
        let frame = client.next_json().await;
        assert_eq!(frame["messageId"], reply["messageId"]);
        assert_eq!(frame["data"], "after restart");
    }
}
