//! `/metrics` in the Prometheus text format, with counters that follow the traffic.

use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

async fn scrape(app: &TestApp) -> String {
    let mut response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels), or 0.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn counters_move_with_the_traffic() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "wshub_connections"), 0.0);

    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.bind("s", &a, "g", "ann").await;
    app.bind("s", &b, "g", "bob").await;
    app.api("send_to_group", "s", json!({"groupName": "g", "data": 1}))
        .await
        .ok();
    app.api("send_to_client", "s", json!({"clientId": "nobody"}))
        .await
        .err(404, "not connected");
    // a: welcome, 1001 ×2, push; b: welcome, 1001, push.
    for _ in 0..3 {
        a.next_json().await;
    }
    for _ in 0..2 {
        b.next_json().await;
    }
    app.api("close_client", "s", json!({"clientId": b.id}))
        .await
        .ok();
    a.next_json().await; // b's 1002

    let after = scrape(&app).await;
    assert!(after.contains("# TYPE wshub_rest_request_duration_seconds histogram"));
    assert_eq!(value(&after, "wshub_connections"), 1.0, "{after}");
    assert_eq!(value(&after, r#"wshub_system_clients{system="s"}"#), 1.0);
    assert_eq!(value(&after, "wshub_groups"), 1.0);
    assert_eq!(
        value(
            &after,
            r#"wshub_messages_pushed_total{method="send_to_group"}"#
        ),
        1.0
    );
    // Welcome frames, notices and the push: 3 + 2 + 2 for a and b, and a's 1002.
    assert!(
        value(&after, "wshub_frames_delivered_total") >= 8.0,
        "{after}"
    );
    assert_eq!(
        value(&after, r#"wshub_clients_closed_total{reason="rest"}"#),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"wshub_rest_requests_total{method="register",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            r#"wshub_rest_requests_total{method="send_to_client",status="404"}"#
        ),
        1.0
    );
    assert!(
        value(
            &after,
            r#"wshub_rest_request_duration_seconds_count{method="bind_to_group"}"#
        ) >= 2.0
    );
}
