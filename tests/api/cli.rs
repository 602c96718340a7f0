//! The `wshub` binary: `wshub token`, and the admin token logged when no secret is configured.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::helpers::{spawn_app, Call, SECRET};

const BIN: &str = env!("CARGO_BIN_EXE_wshub");

#[actix_web::test]
async fn token_subcommand_prints_a_token_the_server_accepts() {
    let output = Command::new(BIN)
        .args(["token", "--system", "S", "--ttl", "60"])
        .env("WSHUB_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{token}");

    let app = spawn_app().await;
    let call = |method, system, body: serde_json::Value| Call {
        method,
        http_method: awc::http::Method::POST,
        token: Some(&token),
        system,
        body: body.to_string().into(),
    };
    app.call(call("register", None, json!({"systemId": "S"})))
        .await
        .ok();
    app.call(call("get_all_groups", Some("S"), json!({})))
        .await
        .ok();
    app.call(call("register", None, json!({"systemId": "T"})))
        .await
        .err(403, "scoped to system 'S'");
}

#[test]
fn token_subcommand_without_a_secret_fails_clearly() {
    let output = Command::new(BIN)
        .args(["token"])
        .env_remove("WSHUB_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no secret configured"));
}

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_web::test]
async fn server_without_secret_logs_a_working_admin_token() {
    let mut child = Child(
        Command::new(BIN)
            .args(["--port", "0", "--workers", "1", "--ephemeral"])
            .env_remove("WSHUB_JWT_SECRET")
            .env_remove("WSHUB_API_AUTH")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    // Read the log on a thread: the address line and the token line, in either order.
    let (address, token) = std::thread::spawn(move || {
        let (mut address, mut token) = (None, None);
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                address = rest.split_whitespace().next().map(str::to_owned);
            }
            let trimmed = line.trim();
            if trimmed.starts_with("eyJ") && trimmed.split('.').count() == 3 {
                token = Some(trimmed.to_owned());
            }
            if address.is_some() && token.is_some() {
                break;
            }
        }
        (
            address.expect("address logged"),
            token.expect("token logged"),
        )
    })
    .join()
    .unwrap();

    let client = awc::Client::default();
    let mut reply = client
        .post(format!("http://{address}/api/register"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_body(r#"{"systemId":"first"}"#)
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["code"], 0);
    drop(child);
}

#[test]
fn a_sentinel_or_cluster_address_that_cannot_work_is_refused_at_start_and_says_why() {
    for (url, why) in [
        ("redis+sentinel://127.0.0.1:26379", "no master name"),
        ("redis+cluster://127.0.0.1:7000/0", "no database number"),
    ] {
        let output = Command::new(BIN)
            .args(["--port", "0", "--ephemeral"])
            .args(["--redis-url", url])
            .env("WSHUB_JWT_SECRET", crate::helpers::SECRET)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--redis-url") && stderr.contains(why),
            "{stderr}"
        );
    }
}
