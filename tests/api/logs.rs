//! What the binary logs: the start-up lines, `--log-format json`, and the access log of REST
//! calls under its own target.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{mint, ServerProcess};

/// Registers `system` on the process, with the header a system call carries, and answers
/// the reply's status.
async fn register(server: &ServerProcess, token: &str, system: &str) -> u16 {
    awc::Client::default()
        .post(format!("http://{}/api/register", server.address))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("SystemId", system))
        .send_json(&json!({ "systemId": system }))
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

/// The lines logged after start-up that contain `needle`, once at least one has come.
/// Waits until at least `count` lines hold `needle`: a call's access line is written after its
/// reply, so it can arrive after the caller has moved on.
fn wait_for_lines(server: &ServerProcess, needle: &str, count: usize) -> Vec<String> {
    let deadline = Instant::now() + crate::helpers::WAIT;
    loop {
        let lines = server.later_lines_with(needle);
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn start_up_names_every_place_to_go_and_nothing_else() {
    // RUST_LOG unset: what a user who just runs the binary sees.
    let server = ServerProcess::start_logging(&[], &[("RUST_LOG", None)]);
    let address = &server.address;
    for needle in [
        format!("console: http://{address}/"),
        format!("manual: http://{address}/docs"),
        format!("OpenAPI: http://{address}/openapi.json"),
        format!("WebSocket: ws://{address}/ws"),
        format!("/healthz and /metrics on http://{address}"),
    ] {
        assert!(
            !wait_for_lines(&server, &needle, 1).is_empty(),
            "no start-up line names {needle}: {:?}",
            server.all_lines()
        );
    }
    let everything = server.all_lines();
    assert!(
        !everything
            .iter()
            .any(|line| line.contains("Actix runtime found")),
        "{everything:?}"
    );

    let internal = ServerProcess::start_logging(&["--internal-port", "0"], &[]);
    let named = |line: &String| line.contains("/healthz and /metrics on http://");
    assert!(
        internal.log.iter().any(named)
            || !wait_for_lines(&internal, "/healthz and /metrics", 1).is_empty(),
        "the internal port is named: {:?}",
        internal.all_lines()
    );
}

#[actix_web::test]
async fn json_log_lines_carry_the_fields_and_never_the_token() {
    let server = ServerProcess::start_logging(&[], &[("WSHUB_LOG_FORMAT", Some("json"))]);
    let token = mint(None, 600);
    assert_eq!(register(&server, &token, "logged").await, 200);
    assert_eq!(register(&server, &token, "logged").await, 409);

    let access = wait_for_lines(&server, "wshub::access", 2);
    let everything = server.all_lines();
    for line in &everything {
        let object: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("not one JSON object ({err}): {line}"));
        for field in ["time", "level", "target", "message"] {
            assert!(object[field].is_string(), "{field} missing: {line}");
        }
        assert!(!line.contains(&token), "the token is logged: {line}");
    }
    let statuses: Vec<(Value, Value, Value)> = access
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .map(|o| {
            (
                o["method"].clone(),
                o["systemId"].clone(),
                o["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (json!("register"), json!("logged"), json!(200)),
            (json!("register"), json!("logged"), json!(409)),
        ]
    );
    let first: Value = serde_json::from_str(&access[0]).unwrap();
    assert_eq!(first["level"], "INFO");
    assert!(
        first["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{first}"
    );

    let registered = wait_for_lines(&server, "registered", 1);
    let registered: Value = serde_json::from_str(&registered[0]).unwrap();
    assert_eq!(registered["systemId"], "logged", "{registered}");
}

#[actix_web::test]
async fn the_access_log_is_one_text_line_per_call_and_can_be_silenced_alone() {
    let token = mint(None, 600);
    let server = ServerProcess::start_logging(&[], &[]);
    assert_eq!(register(&server, &token, "plain").await, 200);
    let access = wait_for_lines(&server, "wshub::access", 1);
    assert_eq!(access.len(), 1, "{access:?}");
    for field in [
        "method=register",
        "systemId=plain",
        "status=200",
        "duration_ms=",
    ] {
        assert!(access[0].contains(field), "{field} missing: {}", access[0]);
    }

    let quiet = ServerProcess::start_logging(&[], &[("RUST_LOG", Some("info,wshub::access=off"))]);
    assert_eq!(register(&quiet, &token, "quiet").await, 200);
    // The registration's own line shows the log is flowing; the call's line never comes.
    assert!(!wait_for_lines(&quiet, "registered", 1).is_empty());
    assert!(quiet.later_lines_with("wshub::access").is_empty());
}
