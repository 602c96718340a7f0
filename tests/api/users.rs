//! Users: `send_to_user`, `get_user_info` and `close_user` reach, list and close every
//! connection of a userId (tabs, devices), on one node and across nodes sharing a Redis.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{fresh_prefix, kill_9, node, redis_url};
use crate::helpers::{
    assert_next_is_marker, connect_at, expect_close, next_json, spawn_app, ServerProcess, TestApp,
    WsConn,
};

/// Reads `client`'s frames up to the 1001/1002 notices its binds caused, `n` of them.
async fn skip_notices(conn: &mut WsConn, n: usize) {
    for _ in 0..n {
        let frame = next_json(conn).await;
        assert!(
            frame["code"] == 1001 || frame["code"] == 1002,
            "a notice: {frame}"
        );
    }
}

fn client_ids(info: &Value) -> Vec<String> {
    let mut ids: Vec<String> = info["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[actix_web::test]
async fn a_users_connections_are_reached_listed_and_closed_together() {
    let app = spawn_app().await;
    app.register("s").await;
    let (mut tab1, mut tab2, mut bob) = (
        app.connect("s").await,
        app.connect("s").await,
        app.connect("s").await,
    );
    app.bind("s", &tab1, "room", "ann").await;
    app.bind("s", &tab2, "lobby", "ann").await;
    app.bind("s", &bob, "room", "bob").await;
    skip_notices(&mut tab1.conn, 2).await;
    skip_notices(&mut tab2.conn, 1).await;
    skip_notices(&mut bob.conn, 1).await;

    let sent = app
        .api(
            "send_to_user",
            "s",
            json!({"userId": "ann", "msg": "hi", "data": {"n": 1}}),
        )
        .await
        .ok();
    assert_eq!(sent["count"], 2, "{sent}");
    for tab in [&mut tab1, &mut tab2] {
        let frame = tab.next_json().await;
        assert_eq!(frame["messageId"], sent["messageId"]);
        assert_eq!(frame["data"], json!({"n": 1}));
    }
    // Once each, and nobody else.
    assert_next_is_marker(&app, "s", &mut [&mut tab1, &mut tab2, &mut bob]).await;
    let nobody = app
        .api(
            "send_to_user",
            "s",
            json!({"userId": "nobody", "msg": "hi"}),
        )
        .await
        .ok();
    assert_eq!(nobody["count"], 0, "an offline user is not an error");

    let info = app
        .api("get_user_info", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(info["online"], true);
    assert_eq!(info["userId"], "ann");
    assert_eq!(
        client_ids(&info),
        sorted(vec![tab1.id.clone(), tab2.id.clone()])
    );
    assert_eq!(info["groups"], json!(["lobby", "room"]));
    let first = &info["clients"][0];
    assert_eq!(first["connected"], true);
    assert_eq!(first["extend"], "ext-ann");
    assert!(first["connectedAt"].as_u64().unwrap() > 0);
    assert_eq!(
        app.api("get_user_info", "s", json!({"userId": "nobody"}))
            .await
            .ok(),
        json!({"online": false, "userId": "nobody", "clients": [], "groups": []})
    );

    // The last bind's userId wins: a tab bound as someone else leaves ann.
    app.bind("s", &tab2, "lobby", "carol").await;
    let info = app
        .api("get_user_info", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(client_ids(&info), [tab1.id.clone()]);
    app.bind("s", &tab2, "lobby", "ann").await;

    let closed = app
        .api("close_user", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(closed, json!({"count": 2}));
    for tab in [&mut tab1, &mut tab2] {
        let reason = tab.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(reason.code), 1000);
    }
    bob.expect_notice(1002, &tab1.id, "ann").await;
    let info = app
        .api("get_user_info", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(info["online"], false);
    let again = app
        .api("close_user", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(again, json!({"count": 0}));
}

#[actix_web::test]
async fn user_methods_refuse_bad_input_and_unknown_systems() {
    let app = spawn_app().await;
    app.register("s").await;
    for method in ["send_to_user", "get_user_info", "close_user"] {
        app.api(method, "s", json!({"msg": "hi"}))
            .await
            .err(400, "userId");
        app.api(method, "s", json!({"userId": "", "msg": "hi"}))
            .await
            .err(400, "userId");
        app.api(method, "s", json!({"userId": 7, "msg": "hi"}))
            .await
            .err(400, "userId");
        let long = "u".repeat(10_000);
        app.api(method, "s", json!({"userId": long, "msg": "hi"}))
            .await
            .err(400, "userId");
        app.api(method, "nope", json!({"userId": "ann", "msg": "hi"}))
            .await
            .err(403, "nope");
    }
}

async fn bind(app: &TestApp, client_id: &str, group: &str, user: &str) {
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": client_id, "groupName": group, "userId": user}),
    )
    .await
    .ok();
}

#[actix_web::test]
async fn a_user_with_tabs_on_two_nodes_is_one_user() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    a.register("s").await;
    let b = ServerProcess::start(&["--redis-url", &redis, "--redis-prefix", &prefix], &[]);

    let mut here = a.connect("s").await;
    let (mut there, there_id) = connect_at(&b.address, "s").await;
    bind(&a, &here.id, "room", "ann").await;
    bind(&a, &there_id, "lobby", "ann").await;
    skip_notices(&mut here.conn, 1).await;
    skip_notices(&mut there, 1).await;

    // Asked of either node, the user is both tabs.
    let sent = a
        .api("send_to_user", "s", json!({"userId": "ann", "msg": "both"}))
        .await
        .ok();
    assert_eq!(sent["count"], 2, "{sent}");
    assert_eq!(here.next_json().await["messageId"], sent["messageId"]);
    assert_eq!(next_json(&mut there).await["messageId"], sent["messageId"]);
    let info = a
        .api("get_user_info", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(
        client_ids(&info),
        sorted(vec![here.id.clone(), there_id.clone()])
    );
    assert_eq!(info["groups"], json!(["lobby", "room"]));

    // close_user closes the tab on the other node too.
    let closed = a
        .api("close_user", "s", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(closed, json!({"count": 2}));
    assert_eq!(u16::from(here.expect_close().await.unwrap().code), 1000);
    assert_eq!(
        u16::from(expect_close(&mut there).await.unwrap().code),
        1000
    );

    // A node killed -9 takes its tabs with it: the user is what the live nodes hold.
    let mut kept = a.connect("s").await;
    let (_doomed, doomed_id) = connect_at(&b.address, "s").await;
    bind(&a, &kept.id, "room", "bob").await;
    bind(&a, &doomed_id, "room", "bob").await;
    skip_notices(&mut kept.conn, 2).await;
    let count = |reply: Value| reply["count"].as_u64().unwrap();
    let sent = a
        .api("send_to_user", "s", json!({"userId": "bob", "msg": "x"}))
        .await
        .ok();
    assert_eq!(count(sent), 2);
    kept.next_json().await;
    kill_9(&b);
    let killed = Instant::now();
    loop {
        let reply = a
            .api("send_to_user", "s", json!({"userId": "bob", "msg": "x"}))
            .await;
        // Until the dead node's subscription is gone, asking it may time out: a 503, never a
        // count that includes the dead tab as reached.
        if reply.status == 503 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let sent = reply.ok();
        kept.next_json().await;
        if count(sent) == 1 {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "the dead node's tab still counts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let info = a
        .api("get_user_info", "s", json!({"userId": "bob"}))
        .await
        .ok();
    assert_eq!(client_ids(&info), [kept.id.clone()]);
}

/// Every page of `method` with `body` (plus `limit` and each `cursor`), in order.
async fn all_pages(app: &TestApp, method: &str, body: Value, limit: usize) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut request = body.clone();
        request["limit"] = json!(limit);
        request["cursor"] = cursor;
        let page = app.api(method, "s", request).await.ok();
        cursor = page["cursor"].clone();
        pages.push(page);
        if cursor.is_null() {
            return pages;
        }
    }
}

fn user_ids(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn online_users_and_clients_come_in_pages_that_miss_no_one() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut clients = Vec::new();
    for (group, user) in [
        ("room", "u1"),
        ("room", "u1"),
        ("room", "u2"),
        ("room", "u3"),
        ("room", "u4"),
        ("room", "u5"),
        ("room", ""),
        ("other", "u6"),
    ] {
        let client = app.connect("s").await;
        if user.is_empty() {
            bind(&app, &client.id, group, "").await;
        } else {
            bind(&app, &client.id, group, user).await;
        }
        clients.push(client);
    }

    let pages = all_pages(&app, "get_online_users", json!({"groupName": "room"}), 2).await;
    let seen: Vec<String> = pages.iter().flat_map(user_ids).collect();
    assert_eq!(seen, ["u1", "u2", "u3", "u4", "u5"]);
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0]["users"][0], json!({"userId": "u1", "clients": 2}));
    for page in &pages {
        // Totals of the whole query, on every page; the userless connection is not counted.
        assert_eq!(
            (&page["userCount"], &page["clientCount"]),
            (&json!(5), &json!(6))
        );
    }
    let system = app.api("get_online_users", "s", json!({})).await.ok();
    assert_eq!(user_ids(&system), ["u1", "u2", "u3", "u4", "u5", "u6"]);
    assert_eq!(
        (&system["clientCount"], &system["cursor"]),
        (&json!(7), &Value::Null)
    );
    let empty = app
        .api("get_online_users", "s", json!({"groupName": "nobody"}))
        .await
        .ok();
    assert_eq!(
        empty,
        json!({"users": [], "userCount": 0, "clientCount": 0, "cursor": null})
    );

    // Members come and go between pages: those there throughout are listed exactly once.
    let first = app
        .api(
            "get_online_users",
            "s",
            json!({"groupName": "room", "limit": 2}),
        )
        .await
        .ok();
    app.api("close_user", "s", json!({"userId": "u1"}))
        .await
        .ok();
    let newcomer = app.connect("s").await;
    bind(&app, &newcomer.id, "room", "u0").await;
    let late = app.connect("s").await;
    bind(&app, &late.id, "room", "u9").await;
    let mut seen = user_ids(&first);
    let mut cursor = first["cursor"].clone();
    while !cursor.is_null() {
        let page = app
            .api(
                "get_online_users",
                "s",
                json!({"groupName": "room", "limit": 2, "cursor": cursor}),
            )
            .await
            .ok();
        seen.extend(user_ids(&page));
        cursor = page["cursor"].clone();
    }
    for stable in ["u2", "u3", "u4", "u5"] {
        assert_eq!(
            seen.iter().filter(|u| *u == stable).count(),
            1,
            "{stable} in {seen:?}"
        );
    }

    // list_clients: everyone, userless ones too, once each.
    let pages = all_pages(&app, "list_clients", json!({}), 3).await;
    let listed: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["clients"].as_array().unwrap())
        .collect();
    let ids: Vec<String> = listed
        .iter()
        .map(|c| c["clientId"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = clients.iter().skip(2).map(|c| c.id.clone()).collect();
    expected.extend([newcomer.id.clone(), late.id.clone()]);
    assert_eq!(
        ids,
        sorted(expected),
        "in clientId order, u1's closed tabs gone"
    );
    let userless = listed
        .iter()
        .find(|c| c["userId"] == "")
        .expect("the userless client");
    assert_eq!(userless["groups"], json!(["room"]));
    assert_eq!(userless["connected"], true);

    // Cursors only work for the query that issued them; limits are bounded.
    let room_cursor = app
        .api(
            "get_online_users",
            "s",
            json!({"groupName": "room", "limit": 1}),
        )
        .await
        .ok()["cursor"]
        .clone();
    let list_cursor =
        app.api("list_clients", "s", json!({"limit": 1})).await.ok()["cursor"].clone();
    for (method, body) in [
        ("get_online_users", json!({"cursor": room_cursor})),
        (
            "get_online_users",
            json!({"groupName": "other", "cursor": room_cursor}),
        ),
        (
            "get_online_users",
            json!({"groupName": "room", "cursor": list_cursor}),
        ),
        ("list_clients", json!({"cursor": room_cursor})),
        ("list_clients", json!({"cursor": "7531.00ff"})),
        ("list_clients", json!({"cursor": 7})),
    ] {
        app.api(method, "s", body).await.err(400, "cursor");
    }
    app.register("t").await;
    app.api("list_clients", "t", json!({"cursor": list_cursor}))
        .await
        .err(400, "cursor");
    for limit in [json!(0), json!(10_001), json!("ten"), json!(-1)] {
        for method in ["get_online_users", "list_clients"] {
            app.api(method, "s", json!({"limit": limit}))
                .await
                .err(400, "limit");
        }
    }
}

#[actix_web::test]
async fn online_users_count_a_user_once_across_nodes_and_cursors_work_on_any_node() {
    let Some(redis) = redis_url() else { return };
    let prefix = fresh_prefix();
    let a = node(&redis, &prefix).await;
    a.register("s").await;
    let b = node(&redis, &prefix).await;
    let (here, there, bob) = (
        a.connect("s").await,
        b.connect("s").await,
        a.connect("s").await,
    );
    bind(&a, &here.id, "room", "ann").await;
    bind(&b, &there.id, "room", "ann").await;
    bind(&a, &bob.id, "room", "bob").await;

    let first = b
        .api(
            "get_online_users",
            "s",
            json!({"groupName": "room", "limit": 1}),
        )
        .await
        .ok();
    assert_eq!(first["users"], json!([{"userId": "ann", "clients": 2}]));
    assert_eq!(
        (&first["userCount"], &first["clientCount"]),
        (&json!(2), &json!(3))
    );
    let second = a
        .api(
            "get_online_users",
            "s",
            json!({"groupName": "room", "limit": 1, "cursor": first["cursor"]}),
        )
        .await
        .ok();
    assert_eq!(second["users"], json!([{"userId": "bob", "clients": 1}]));
    assert_eq!(second["cursor"], Value::Null);

    let page = a.api("list_clients", "s", json!({"limit": 2})).await.ok();
    let rest = b
        .api(
            "list_clients",
            "s",
            json!({"limit": 2, "cursor": page["cursor"]}),
        )
        .await
        .ok();
    let ids: Vec<String> = [&page, &rest]
        .iter()
        .flat_map(|p| p["clients"].as_array().unwrap().clone())
        .map(|c| c["clientId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        sorted(vec![here.id.clone(), there.id.clone(), bob.id.clone()])
    );
}
