//! Graceful shutdown: on SIGTERM every client gets close 1001 and the process exits 0 in time;
//! while shutting down, REST and /healthz answer 503.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{expect_close, mint, next_json, spawn_app, ServerProcess};

#[actix_web::test]
async fn shutting_down_refuses_new_work_and_closes_clients_with_1001() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.bind("s", &a, "g", "ann").await;
    app.bind("s", &b, "g", "bob").await;
    assert_eq!(app.hub.shut_down_clients().await, 2);
    for client in [&mut a, &mut b] {
        assert_eq!(u16::from(client.expect_close().await.unwrap().code), 1001);
    }
    app.api("get_all_groups", "s", json!({}))
        .await
        .err(503, "shutting down");
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 503);
}

#[test]
fn sigterm_closes_clients_with_1001_and_exits_0() {
    let mut server = ServerProcess::start(&["--shutdown-grace", "5"], &[]);
    let address = server.address.clone();
    actix_web::rt::System::new().block_on(async move {
        let http = awc::Client::default();
        let token = mint(None, 600);
        let reply = http
            .post(format!("http://{address}/api/register"))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .send_json(&json!({"systemId": "s"}))
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200);
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (_, mut conn) = awc::Client::new()
                .ws(format!("ws://{address}/ws?systemId=s"))
                .connect()
                .await
                .unwrap();
            assert_eq!(next_json(&mut conn).await["code"], 0);
            clients.push(conn);
        }

        let signalled = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for conn in &mut clients {
            let reason = expect_close(conn).await.expect("close reason");
            assert_eq!(u16::from(reason.code), 1001);
        }
        drop(clients);
        let exit = loop {
            if let Some(exit) = server.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(5),
                "did not exit within the grace period"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(exit.success(), "exit status {exit:?}");
    });
}

#[test]
fn sigterm_with_calls_in_flight_answers_every_call_it_received() {
    let server = ServerProcess::start(&["--shutdown-grace", "5"], &[]);
    let address = server.address.clone();
    let pid = server.child.id();
    actix_web::rt::System::new().block_on(async move {
        let token = mint(None, 600);
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let address = address.clone();
                let token = token.clone();
                actix_web::rt::spawn(async move {
                    let http = awc::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .finish();
                    let (mut answered, mut refused, mut broken) = (0, 0, Vec::new());
                    loop {
                        let reply = http
                            .post(format!("http://{address}/api/register"))
                            .insert_header(("Authorization", format!("Bearer {token}")))
                            .send_json(&json!({"systemId": crate::helpers::unique("s")}))
                            .await;
                        match reply {
                            Ok(reply) => {
                                let status = reply.status().as_u16();
                                assert!(status == 200 || status == 503, "{status}");
                                answered += 1;
                            }
                            // The listener is closed: nothing was received.
                            Err(awc::error::SendRequestError::Connect(_)) => {
                                refused += 1;
                                if refused > 3 {
                                    break;
                                }
                            }
                            Err(err) => broken.push(err.to_string()),
                        }
                    }
                    (answered, broken)
                })
            })
            .collect();
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut answered = 0;
        for caller in callers {
            let (n, broken) = caller.await.unwrap();
            answered += n;
            assert!(
                broken.is_empty(),
                "calls cut off instead of answered: {broken:?}"
            );
        }
        assert!(answered > 8, "the callers did get answers: {answered}");
    });
    drop(server);
}
