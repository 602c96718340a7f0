//! `spawn_app()` starts a real wshub on a free port and returns request helpers around it.

use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws::{CloseReason, Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use wshub::{Application, Config, Hub};

pub use crate::processes::{OwnServer, ServerProcess};

pub type WsConn = actix_codec::Framed<BoxedSocket, Codec>;

/// The secret every test server signs its tokens with.
pub const SECRET: &str = "integration-test-secret";

/// How long a test waits for a frame or a condition before failing.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestApp {
    pub port: u16,
    /// `--internal-port`, as bound, when the test asked for one.
    pub internal_port: Option<u16>,
    pub hub: Hub,
    /// An admin token minted by the test (not by the server).
    pub token: String,
    pub http: awc::Client,
}

/// A server with default settings and [`SECRET`].
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server with settings adjusted by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        port: 0,
        workers: 1,
        jwt_secret: Some(SECRET.into()),
        ..Config::default()
    };
    tweak(&mut config);
    let app = Application::build(config).await.expect("server builds");
    let port = app.port();
    let internal_port = app.internal_port();
    let hub = app.hub().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        port,
        internal_port,
        hub,
        token: mint(None, 3600),
        http: awc::Client::builder().timeout(WAIT).finish(),
    }
}

/// An HS256 token made with the `jsonwebtoken` crate, as a backend would make it.
pub fn mint(system: Option<&str>, ttl_secs: i64) -> String {
    mint_with(jsonwebtoken::Algorithm::HS256, SECRET, system, ttl_secs)
}

pub fn mint_with(
    alg: jsonwebtoken::Algorithm,
    secret: &str,
    system: Option<&str>,
    ttl_secs: i64,
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({ "exp": now + ttl_secs });
    if let Some(system) = system {
        claims["systemId"] = json!(system);
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A REST reply: status, the `Allow`/`WWW-Authenticate` headers and the JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts a success envelope and returns its `data`.
    #[track_caller]
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {self:?}");
        assert_eq!(self.body["code"], 0, "{self:?}");
        assert_eq!(self.body["msg"], "success", "{self:?}");
        self.body["data"].clone()
    }

    /// Asserts an error envelope with `status` whose msg contains `needle`.
    #[track_caller]
    pub fn err(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_ne!(self.body["code"], 0, "{self:?}");
        let msg = self.body["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(needle),
            "msg {msg:?} should contain {needle:?}"
        );
    }
}

/// What a REST call sends besides its body.
pub struct Call<'a> {
    pub method: &'a str,
    pub http_method: awc::http::Method,
    pub token: Option<&'a str>,
    pub system: Option<&'a str>,
    pub body: Bytes,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/ws{query}", self.port)
    }

    /// `POST /api/<method>` with the admin token, `SystemId: system` and a JSON body.
    pub async fn api(&self, method: &str, system: &str, body: Value) -> Reply {
        self.call(Call {
            method,
            http_method: awc::http::Method::POST,
            token: Some(&self.token),
            system: Some(system),
            body: Bytes::from(body.to_string()),
        })
        .await
    }

    pub async fn call(&self, call: Call<'_>) -> Reply {
        let mut request = self
            .http
            .request(call.http_method, self.url(&format!("/api/{}", call.method)));
        if let Some(token) = call.token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(system) = call.system {
            request = request.insert_header(("SystemId", system));
        }
        let mut response = request.send_body(call.body).await.expect("request sent");
        let bytes = response.body().limit(16 << 20).await.expect("body read");
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "every API reply is JSON: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: serde_json::from_slice(&bytes).expect("reply is JSON"),
        }
    }

    pub async fn register(&self, system: &str) {
        self.api("register", "", json!({ "systemId": system }))
            .await
            .ok();
    }

    pub async fn bind(&self, system: &str, client: &WsClient, group: &str, user_id: &str) {
        self.api(
            "bind_to_group",
            system,
            json!({"clientId": client.id, "groupName": group, "userId": user_id, "extend": format!("ext-{user_id}")}),
        )
        .await
        .ok();
    }

    /// Opens a WebSocket to `/ws<query>` without reading anything.
    pub async fn ws_raw(&self, query: &str) -> WsConn {
        let (_, conn) = awc::Client::new()
            .ws(self.ws_url(query))
            .max_frame_size(1 << 20)
            .connect()
            .await
            .expect("websocket handshake");
        conn
    }

    /// Connects a client to `system` and reads its welcome frame.
    pub async fn connect(&self, system: &str) -> WsClient {
        let mut conn = self.ws_raw(&format!("?systemId={system}")).await;
        let welcome = next_json(&mut conn).await;
        assert_eq!(welcome["code"], 0, "{welcome}");
        assert_eq!(welcome["msg"], "success", "{welcome}");
        let id = welcome["data"]["clientId"]
            .as_str()
            .expect("welcome carries clientId")
            .to_owned();
        WsClient { id, conn }
    }

    /// The value of one line of this server's `GET /metrics` (0 when absent).
    pub async fn metric(&self, line_start: &str) -> f64 {
        scraped_metric(&self.http, &self.url(""), line_start).await
    }

    /// Connections the gate counts now (away recovery clients included).
    pub fn gate_open(&self) -> usize {
        self.hub.gate.open()
    }

    pub async fn stats(&self) -> wshub::actors::messages::RegistryStats {
        self.hub
            .registry
            .send(wshub::actors::messages::GetStats)
            .await
            .unwrap()
    }

    /// Waits until the registry's counts satisfy `done`.
    pub async fn wait_for_stats(
        &self,
        done: impl Fn(&wshub::actors::messages::RegistryStats) -> bool,
    ) -> wshub::actors::messages::RegistryStats {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let stats = self.stats().await;
            if done(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "registry never reached the expected state: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub struct WsClient {
    pub id: String,
    pub conn: WsConn,
}

impl WsClient {
    pub async fn next_json(&mut self) -> Value {
        next_json(&mut self.conn).await
    }

    pub async fn next_frame(&mut self) -> Frame {
        next_frame(&mut self.conn).await
    }

    /// Reads frames (skipping any pushes) until the close frame; returns its reason.
    pub async fn expect_close(&mut self) -> Option<CloseReason> {
        expect_close(&mut self.conn).await
    }

    /// Reads the next push and asserts it is a 1001/1002 notice about `about`.
    pub async fn expect_notice(&mut self, code: i64, about: &str, user_id: &str) {
        let frame = self.next_json().await;
        assert_eq!(frame["code"], code, "{frame}");
        assert_eq!(frame["sendUserId"], user_id, "{frame}");
        let data: Value = serde_json::from_str(frame["data"].as_str().expect("data is a string"))
            .expect("data holds JSON");
        assert_eq!(
            data,
            json!({"clientId": about, "userId": user_id, "extend": format!("ext-{user_id}")})
        );
    }
}

/// Connects a client of `system` to the server at `address` (`host:port`, e.g. a node process)
/// and reads its welcome: the connection and its clientId.
pub async fn connect_at(address: &str, system: &str) -> (WsConn, String) {
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://{address}/ws?systemId={system}"))
        .connect()
        .await
        .expect("websocket handshake");
    let id = next_json(&mut conn).await["data"]["clientId"]
        .as_str()
        .expect("welcome carries clientId")
        .to_owned();
    (conn, id)
}

/// The next frame, answering pings on the way (a real client library does the same).
pub async fn next_frame(conn: &mut WsConn) -> Frame {
    next_frame_within(conn, WAIT).await
}

/// [`next_frame`], waiting up to `wait` for each frame.
pub async fn next_frame_within(conn: &mut WsConn, wait: Duration) -> Frame {
    loop {
        let frame = tokio::time::timeout(wait, conn.next())
            .await
            .expect("a frame within the wait")
            .expect("stream open")
            .expect("valid frame");
        match frame {
            Frame::Ping(payload) => conn.send(Message::Pong(payload)).await.unwrap(),
            other => return other,
        }
    }
}

pub async fn next_json(conn: &mut WsConn) -> Value {
    next_json_within(conn, WAIT).await
}

/// [`next_json`], waiting up to `wait` for each frame.
pub async fn next_json_within(conn: &mut WsConn, wait: Duration) -> Value {
    match next_frame_within(conn, wait).await {
        Frame::Text(bytes) => serde_json::from_slice(&bytes).expect("text frames are JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub async fn expect_close(conn: &mut WsConn) -> Option<CloseReason> {
    loop {
        if let Frame::Close(reason) = next_frame(conn).await {
            return reason;
        }
    }
}

/// Sends a marker to the whole `system` and asserts it is the next frame of every client given:
/// proof that nothing else was queued for them before it.
pub async fn assert_next_is_marker(app: &TestApp, system: &str, clients: &mut [&mut WsClient]) {
    let marker = app
        .api("send_to_system", system, json!({"msg": "marker"}))
        .await
        .ok();
    for client in clients.iter_mut() {
        let frame = client.next_json().await;
        assert_eq!(
            frame["messageId"], marker["messageId"],
            "unexpected {frame}"
        );
    }
}

/// The value of the line of `GET <base>/metrics` that starts with `line_start`, as a scraper
/// reads it (0 when absent).
pub async fn scraped_metric(http: &awc::Client, base: &str, line_start: &str) -> f64 {
    let body = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics answered")
        .body()
        .await
        .expect("metrics read");
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The fenced blocks (language, body) of the README's section that starts with `heading`, in
/// order: the tests run what the README tells a user to run.
pub fn readme_blocks(heading: &str) -> Vec<(String, String)> {
    blocks_of(include_str!("../../README.md"), heading)
}

/// `markdown` from `heading` to the next `## ` heading.
pub fn section_of<'a>(markdown: &'a str, heading: &str) -> &'a str {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading} in the README"));
    let section = &markdown[start..];
    &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)]
}

/// The fenced blocks of `markdown`'s section that starts with `heading`.
pub fn blocks_of(markdown: &str, heading: &str) -> Vec<(String, String)> {
    let section = section_of(markdown, heading);
    let mut blocks = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(language) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((language.to_owned(), body.join("\n")));
        }
    }
    blocks
}

/// `prefix` followed by a number no other call in this process returned.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A service or tool a test needs is missing: under `CI=true` the test fails, elsewhere it is
/// skipped with the reason printed ([`say_skipped`]).
pub fn skip_unless_ci(what: &str, reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {reason}"
    );
    say_skipped(what, reason);
}

/// Says a test is skipped so that `cargo test` shows it: the test harness captures `eprintln!`
/// of passing tests, but not what is written to the process's stderr directly. The run then
/// ends with one line counting the skips ([`count_skips_at_exit`]), below the harness's summary.
pub fn say_skipped(what: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {what}: {reason}");
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: registers a plain `extern "C" fn` that touches only a static.
        unsafe { libc::atexit(count_skips_at_exit) };
    }
    skipped.push(what.to_owned());
}

/// What [`say_skipped`] was told, for the closing line.
static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Runs when the test binary exits, after the harness's "test result" line.
extern "C" fn count_skips_at_exit() {
    use std::io::Write;
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {} test(s) did not run for a missing service (the SKIPPED lines above say \
         which and why; CI=true makes them fail instead)",
        skipped.len()
    );
}
