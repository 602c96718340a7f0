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

/// promtool's `check metrics` rules that a server can break: every family has help text, a
/// counter's name ends in `_total` and nothing else's does, names are snake_case without `:`,
/// and units are base units (seconds, bytes), never abbreviated. `promtool check metrics` runs
/// too when it is installed.
fn promtool_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let helped: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# HELP ")?.split(' ').next())
        .collect();
    const NOT_BASE_UNITS: [&str; 16] = [
        "milliseconds",
        "microseconds",
        "nanoseconds",
        "minutes",
        "hours",
        "days",
        "ms",
        "us",
        "ns",
        "sec",
        "secs",
        "kilobytes",
        "megabytes",
        "gigabytes",
        "kib",
        "mib",
    ];
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        if !helped.contains(name) {
            problems.push(format!("{name}: no help text"));
        }
        if (kind == "counter") != name.ends_with("_total") {
            problems.push(format!(
                "{name}: a {kind} whose name does not suit it (_total)"
            ));
        }
        if name.contains(':') || name.chars().any(|c| c.is_ascii_uppercase()) {
            problems.push(format!("{name}: not snake_case"));
        }
        if let Some(unit) = name.split('_').find(|part| NOT_BASE_UNITS.contains(part)) {
            problems.push(format!("{name}: '{unit}' is not a base unit"));
        }
    }
    problems
}

#[actix_web::test]
async fn the_metrics_pass_promtool() {
    let app = spawn_app().await;
    app.register("s").await;
    let _client = app.connect("s").await;
    let text = scrape(&app).await;
    let problems = promtool_problems(&text);
    assert!(problems.is_empty(), "{problems:#?}");
    for series in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "wshub_delivery_lag_seconds",
    ] {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("{series} "))),
            "no {series}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&text, &format!("wshub_build_info{{version=\"{version}\"}}")),
        1.0
    );
    let Ok(mut promtool) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        println!("promtool is not installed: its rules were checked by the test itself");
        return;
    };
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
