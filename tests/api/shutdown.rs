//! Graceful shutdown: on SIGTERM every client gets close 1001 and the process exits 0 in time;
//! while shutting down, REST and /healthz answer 503.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{expect_close, mint, next_json, spawn_app, ServerProcess, WAIT};

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

/// How one call on a raw HTTP/1.1 connection ended.
enum CallEnd {
    /// A whole response: its status, and whether the server asked to close the connection.
    Answered { status: u16, close: bool },
    /// The connection failed before a single byte of a response came back.
    NoReply(String),
    /// The connection failed partway through a response.
    Partial(String),
}

/// One `POST /api/register` on `stream`, read to the end of its body.
async fn register_call(stream: &mut TcpStream, address: &str, token: &str) -> CallEnd {
    let body = json!({"systemId": crate::helpers::unique("s")}).to_string();
    let request = format!(
        "POST /api/register HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if let Err(err) = stream.write_all(request.as_bytes()).await {
        return CallEnd::NoReply(err.to_string());
    }
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = response.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) if response.is_empty() => return CallEnd::NoReply("closed".into()),
            Err(err) if response.is_empty() => return CallEnd::NoReply(err.to_string()),
            Ok(0) => return CallEnd::Partial("closed inside the head".into()),
            Err(err) => return CallEnd::Partial(err.to_string()),
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&response[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    while response.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) => return CallEnd::Partial("closed inside the body".into()),
            Err(err) => return CallEnd::Partial(err.to_string()),
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    let close = head.contains("\r\nconnection: close");
    CallEnd::Answered { status, close }
}

/// Callers loop on keep-alive connections while the server gets SIGTERM. Every call the server
/// took in is answered (200 before, 503 with `Connection: close` after), none is cut off.
///
/// One thing no server can answer: a connection the kernel completed into the listener's backlog
/// just before the listener closed. Its request was never handed to wshub, and the kernel resets
/// it. The test tells those apart from a cut-off call by where they happen: only on a fresh
/// connection that never got a reply, never on one the server had already answered on.
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
                    let (mut answered, mut refused) = (0, 0);
                    let mut unreceived = Vec::new();
                    let mut broken = Vec::new();
                    // The open connection, and whether it has carried an answer already.
                    let mut connection: Option<(TcpStream, bool)> = None;
                    while refused <= 3 {
                        let (mut stream, reused) = match connection.take() {
                            Some(open) => open,
                            None => match TcpStream::connect(&address).await {
                                Ok(stream) => (stream, false),
                                // The listener is closed: nothing was received.
                                Err(_) => {
                                    refused += 1;
                                    continue;
                                }
                            },
                        };
                        let ended = tokio::time::timeout(
                            WAIT,
                            register_call(&mut stream, &address, &token),
                        )
                        .await
                        .unwrap_or_else(|_| CallEnd::Partial("no answer in time".into()));
                        match ended {
                            CallEnd::Answered { status, close } => {
                                assert!(status == 200 || status == 503, "{status}");
                                answered += 1;
                                if !close {
                                    connection = Some((stream, true));
                                }
                            }
                            CallEnd::NoReply(_) if !reused => unreceived.push(Instant::now()),
                            CallEnd::NoReply(err) => broken.push(format!("kept-alive: {err}")),
                            CallEnd::Partial(err) => broken.push(format!("partial: {err}")),
                        }
                    }
                    (answered, unreceived, broken)
                })
            })
            .collect();
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let signalled = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut answered = 0;
        for caller in callers {
            let (n, unreceived, broken) = caller.await.unwrap();
            answered += n;
            assert!(
                broken.is_empty(),
                "calls cut off instead of answered: {broken:?}"
            );
            // Only as the listener closed, never while the server was serving.
            assert!(
                unreceived.iter().all(|at| *at > signalled),
                "a fresh connection was reset before SIGTERM"
            );
        }
        assert!(answered > 8, "the callers did get answers: {answered}");
    });
    drop(server);
}
