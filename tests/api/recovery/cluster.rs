//! Recovery in a cluster: a client parked on its node keeps receiving what any node sends to
//! it, its group or its system, and resumes with all of it.

use serde_json::json;

use super::{connect_recoverable, resume, until_away};
use crate::cluster::{fresh_prefix, node, redis_url};
use crate::helpers::next_json;

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
    let (mut conn, welcome) = resume(&a, "s", &token, last.as_deref()).await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["clientId"], id.as_str());
    assert_eq!(welcome["missed"], 3);
    for message_id in &sent {
        assert_eq!(next_json(&mut conn).await["messageId"], message_id.as_str());
    }
    let live = b
        .api(
            "send_to_group",
            "s",
            json!({"groupName": "g", "msg": "live"}),
        )
        .await
        .ok();
    assert_eq!(next_json(&mut conn).await["messageId"], live["messageId"]);
    let online = b
        .api("get_online_list", "s", json!({"groupName": "g"}))
        .await
        .ok();
    assert_eq!(online["list"], json!([id]));
}
