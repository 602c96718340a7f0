//! A WebSocket client written against the bytes, for tests that must send what no well-behaved
//! library would: frame headers that lie about their length, endless fragments, garbage.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::WAIT;

/// A frame the server sent: opcode and payload.
#[derive(Debug)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Opens `/ws?<query>` on `address` (host:port) and reads the 101 response.
pub async fn handshake(address: &str, query: &str, headers: &[(&str, &str)]) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("tcp connect");
    let mut request = format!(
        "GET /ws?{query} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Reads a response head, byte by byte, so nothing behind it is consumed.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("a response in time")
            .unwrap();
        assert_eq!(n, 1, "connection closed during the response head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A client frame (masked) with any header values, even false ones.
pub fn frame_header(fin: bool, opcode: u8, declared_len: u64) -> Vec<u8> {
    let mut bytes = vec![(u8::from(fin) << 7) | opcode];
    match declared_len {
        0..=125 => bytes.push(0x80 | declared_len as u8),
        126..=0xffff => {
            bytes.push(0x80 | 126);
            bytes.extend_from_slice(&(declared_len as u16).to_be_bytes());
        }
        _ => {
            bytes.push(0x80 | 127);
            bytes.extend_from_slice(&declared_len.to_be_bytes());
        }
    }
    bytes.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    bytes
}

/// A whole masked client frame carrying `payload`.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame_header(fin, opcode, payload.len() as u64);
    let mask = [0x11, 0x22, 0x33, 0x44];
    bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    bytes
}

/// Reads one server frame; `None` when the connection ends (or is reset) first.
pub async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<ServerFrame> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await.ok()?;
    let len = match head[1] & 0x7f {
        126 => {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).await.ok()?;
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).await.ok()?;
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload).await.ok()?;
    Some(ServerFrame {
        opcode: head[0] & 0x0f,
        payload,
    })
}

/// Resident memory of a process, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Writes `chunk` over and over, up to `total` bytes, while reading frames on the other half;
/// stops when a write fails (the server closed). Returns the bytes written and the close code
/// the server sent, if any.
pub async fn flood(
    stream: TcpStream,
    prefix: &[u8],
    chunk: &[u8],
    total: usize,
) -> (usize, Option<u16>) {
    let (mut reader, mut writer) = stream.into_split();
    let reading = tokio::spawn(async move {
        // Skip the welcome (or refusal) and anything else until the close.
        let read = async {
            while let Some(frame) = read_frame(&mut reader).await {
                if frame.opcode == 8 {
                    return frame.close_code();
                }
            }
            None
        };
        tokio::time::timeout(WAIT * 2, read).await.ok().flatten()
    });
    let mut written = 0;
    if writer.write_all(prefix).await.is_ok() {
        written += prefix.len();
        while written < total {
            let write = tokio::time::timeout(Duration::from_secs(2), writer.write_all(chunk));
            match write.await {
                Ok(Ok(())) => written += chunk.len(),
                _ => break,
            }
        }
    }
    drop(writer);
    (written, reading.await.unwrap_or(None))
}
