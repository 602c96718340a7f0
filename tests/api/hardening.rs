//! What an attacker with nothing but network access to `/ws` tries: frames whose headers lie
//! about their size, endless fragments, floods, reasons too long for a close frame. Each runs
//! against the real binary so its memory can be read from outside.

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::helpers::{ServerProcess, SECRET};
use crate::raw_ws::{client_frame, flood, frame_header, handshake, read_frame, rss_bytes};

const MIB: usize = 1 << 20;

/// A release-like server process with one registered system, "h".
async fn server_with_system() -> ServerProcess {
    server_with_system_and(&[]).await
}

async fn server_with_system_and(args: &[&str]) -> ServerProcess {
    let server = ServerProcess::start(args, &[]);
    let token = crate::helpers::mint(None, 600);
    let reply = awc::Client::new()
        .post(format!("http://{}/api/register", server.address))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_body(json!({"systemId": "h"}).to_string())
        .await
        .expect("register sent");
    assert_eq!(reply.status(), 200);
    let _ = SECRET;
    server
}

/// RSS growth allowed while a connection is attacked: far below what the attack sends.
const RSS_SLACK: u64 = 48 * MIB as u64;

#[actix_web::test]
async fn a_frame_header_announcing_a_terabyte_is_closed_with_1009_before_its_payload() {
    let server = server_with_system().await;
    let pid = server.child.id();
    let before = rss_bytes(pid);
    let stream = handshake(&server.address, "systemId=h", &[]).await;
    let (written, code) = flood(
        stream,
        &frame_header(true, 2, 1 << 40),
        &vec![0u8; 64 * 1024],
        300 * MIB,
    )
    .await;
    assert_eq!(code, Some(1009), "after {written} bytes");
    let after = rss_bytes(pid);
    assert!(
        after < before + RSS_SLACK,
        "RSS grew from {before} to {after} bytes"
    );
    assert!(
        written < 100 * MIB,
        "the server kept reading: {written} bytes"
    );
}

#[actix_web::test]
async fn endless_fragments_are_closed_with_1009_once_the_message_passes_the_limit() {
    let server = server_with_system().await;
    let pid = server.child.id();
    let before = rss_bytes(pid);
    let stream = handshake(&server.address, "systemId=h", &[]).await;
    let fragment = vec![b'x'; 8000];
    let (written, code) = flood(
        stream,
        &client_frame(false, 1, &fragment),
        &client_frame(false, 0, &fragment),
        300 * MIB,
    )
    .await;
    assert_eq!(code, Some(1009), "after {written} bytes");
    assert!(rss_bytes(pid) < before + RSS_SLACK);
    assert!(
        written < 100 * MIB,
        "the server kept reading: {written} bytes"
    );
}

#[actix_web::test]
async fn a_flood_of_small_frames_is_read_at_the_servers_pace_with_bounded_memory() {
    let server = server_with_system_and(&[
        // The per-client message rate (4029) is not what this test is about.
        "--client-message-rate",
        "1e12",
        "--client-message-burst",
        "4000000000",
    ])
    .await;
    let pid = server.child.id();
    let mut stream = handshake(&server.address, "systemId=h", &[]).await;
    let welcome = read_frame(&mut stream).await.expect("welcome");
    assert_eq!(welcome.opcode, 1);
    let before = rss_bytes(pid);
    let batch = client_frame(true, 1, &[b'{'; 100]).repeat(2000);
    let mut written = 0;
    while written < 64 * MIB {
        stream
            .write_all(&batch)
            .await
            .expect("the server keeps reading");
        written += batch.len();
    }
    assert!(rss_bytes(pid) < before + RSS_SLACK);
    // Still connected and answering: a ping gets its pong.
    stream
        .write_all(&client_frame(true, 9, b"still-there"))
        .await
        .unwrap();
    loop {
        let frame = tokio::time::timeout(crate::helpers::WAIT, read_frame(&mut stream))
            .await
            .expect("pong in time")
            .expect("connection open");
        if frame.opcode == 10 {
            assert_eq!(frame.payload, b"still-there");
            break;
        }
    }
}

#[actix_web::test]
async fn a_refusal_reason_longer_than_a_close_frame_holds_is_cut_and_sent_whole_as_text() {
    let server = ServerProcess::start(&[], &[]);
    let system = "s".repeat(120);
    let mut stream = handshake(&server.address, &format!("systemId={system}"), &[]).await;
    let refusal = read_frame(&mut stream).await.expect("refusal frame");
    assert_eq!(refusal.opcode, 1);
    let text: serde_json::Value = serde_json::from_slice(&refusal.payload).unwrap();
    assert_eq!(text["code"], -1001);
    assert!(text["msg"].as_str().unwrap().contains(&system), "{text}");
    let close = read_frame(&mut stream).await.expect("close frame");
    assert_eq!(close.close_code(), Some(1008));
    assert!(close.payload.len() <= 125, "{} bytes", close.payload.len());
    assert!(std::str::from_utf8(&close.payload[2..]).is_ok());
}

#[actix_web::test]
async fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    let server = server_with_system().await;
    let mut stream = handshake(&server.address, "systemId=h", &[]).await;
    let welcome = read_frame(&mut stream).await.expect("welcome frame");
    assert_eq!(welcome.opcode, 1);
    stream
        .write_all(&client_frame(true, 1, &[b'{', 0xff, 0xfe, b'}']))
        .await
        .unwrap();
    let close = read_frame(&mut stream).await.expect("close frame");
    assert_eq!(close.close_code(), Some(1007), "{close:?}");
}

#[actix_web::test]
async fn a_client_that_pings_without_reading_gets_its_pongs_coalesced_with_bounded_memory() {
    let server = server_with_system().await;
    let pid = server.child.id();
    let mut stream = handshake(&server.address, "systemId=h", &[]).await;
    read_frame(&mut stream).await.expect("welcome");
    let before = rss_bytes(pid);
    // Pings with the largest payload a control frame holds; this client never reads its pongs.
    let batch = client_frame(true, 9, &[b'p'; 125]).repeat(2000);
    let mut written = 0;
    while written < 64 * MIB {
        let write =
            tokio::time::timeout(std::time::Duration::from_secs(2), stream.write_all(&batch));
        match write.await {
            Ok(Ok(())) => written += batch.len(),
            // The server stopped reading (its writes are stuck): bounded as well.
            _ => break,
        }
    }
    let grown = rss_bytes(pid).saturating_sub(before);
    assert!(
        grown < RSS_SLACK,
        "RSS grew by {} MiB after {} MiB of pings",
        grown / MIB as u64,
        written / MIB
    );
}

#[actix_web::test]
async fn an_idle_connection_holds_a_few_kib_of_server_memory() {
    const CONNECTIONS: usize = 2000;
    let server = server_with_system().await;
    let pid = server.child.id();
    let mut open = Vec::with_capacity(CONNECTIONS + 100);
    // The first connections also grow the server's pools and tables once.
    for _ in 0..100 {
        let mut stream = handshake(&server.address, "systemId=h", &[]).await;
        read_frame(&mut stream).await.expect("welcome");
        open.push(stream);
    }
    let before = rss_bytes(pid);
    for _ in 0..CONNECTIONS {
        let mut stream = handshake(&server.address, "systemId=h", &[]).await;
        read_frame(&mut stream).await.expect("welcome");
        open.push(stream);
    }
    let per_connection = rss_bytes(pid).saturating_sub(before) / CONNECTIONS as u64;
    // About 4.2 KiB in a release build; 13 KiB while actix-http's two 8 KiB connection buffers
    // stayed with every connection.
    println!("{per_connection} bytes of RSS per idle connection");
    assert!(
        per_connection < 8 * 1024,
        "{per_connection} bytes of RSS per idle connection"
    );
}
