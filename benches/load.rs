//! Why this file is long: it is the whole load generator, the scenarios, their measurements and
//! the report that writes BENCHMARKS.md, and they share one client and one set of timing
//! helpers. It can become modules under `benches/load/` when it next grows.
//!
//! wshub's load generator: drives any server speaking the protocol (wshub, or the reference
//! limitsrv) by URL and reports JSON and a table.
//!
//! ```sh
//! cargo bench --bench load -- fanout      --url http://127.0.0.1:7800 --token $TOKEN --pid $PID
//! cargo bench --bench load -- fanout-rate --rate 50 --messages 300 ...
//! cargo bench --bench load -- system --clients 10000 ...
//! cargo bench --bench load -- idle --clients 15000 ...
//! cargo bench --bench load -- unicast --inflight 32 ...
//! cargo bench --bench load -- users --clients 300 ...   # send_to_user (3 tabs) beside send_to_client
//! cargo bench --bench load -- user-presence --clients 10000 ...   # presence "user": binds, page
//! cargo bench --bench load -- webhooks --clients 1000 ...   # events stored and delivered per second
//! cargo bench --bench load -- big-room --clients 10000 --rates 20,40,80 ...
//! cargo bench --bench load -- report --input benches/results.jsonl   # writes BENCHMARKS.md + SVG
//! ```
//! `benches/compare.sh` runs the scenarios against wshub and limitsrv, pinned to separate CPUs.
//!
//! The generator parses only what it needs from each frame: it looks for the `"t":` stamp the
//! sender put in `data` and reads the digits after it.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use awc::ws::{Frame, Message};
use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
#[command(name = "load", about = "wshub load generator")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug, Clone)]
enum Scenario {
    /// N clients in one group; M messages posted with K in flight, flat out.
    Fanout(Opts),
    /// N clients in one group; M messages posted at a fixed rate.
    FanoutRate(Opts),
    /// N clients in one system; M messages to the whole system.
    System(Opts),
    /// N idle connections: connect rate and server RSS per connection.
    Idle(Opts),
    /// send_to_client requests over K keep-alive connections, to N clients.
    Unicast(Opts),
    /// N clients as N/3 users of 3 connections each: M send_to_client requests, then M
    /// send_to_user, K in flight; server CPU per delivered frame of each.
    Users(Opts),
    /// Presence "user": N clients as N/10 users of 10 tabs each; each user's first tab bound to
    /// one group (a 1001 per user, to every member), then the other tabs (no notice); then a
    /// 1,000-user page of the group's users.
    UserPresence(Opts),
    /// A webhook to a receiver in this process: N clients each send 20 frames at once (their
    /// burst), 20·N `client_message` events; events per second from the first frame to the
    /// last event received (run the server with --data-dir to measure the outbox on disk).
    Webhooks(Opts),
    /// N clients in one group; M messages published to the MQTT broker of the server's bridge
    /// (--mqtt-url) as fast as the broker takes them (at most 500 ahead of delivery), then the
    /// same M through REST (K in flight), side by side.
    MqttFanout(Opts),
    /// N clients in one group; messages at rising fixed rates (--rates), each for
    /// --step-seconds, then one at twice the top rate: the highest rate held with p99 under
    /// 100 ms, and what overload does (slow-consumer closes, 503s, loss).
    BigRoom(Opts),
    /// Every scenario once (at the sizes given; --tiny for a smoke run).
    All(Opts),
    /// Writes BENCHMARKS.md and the latency plot from a results file.
    Report(ReportOpts),
}

#[derive(clap::Args, Debug, Clone)]
struct Opts {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:7800")]
    url: String,
    /// API token (none for servers without auth).
    #[arg(long, env = "WSHUB_TOKEN")]
    token: Option<String>,
    /// The server's pid, to read its CPU time and RSS from /proc (repeat for several nodes:
    /// figures are summed).
    #[arg(long)]
    pid: Vec<u32>,
    /// Spread the WebSocket clients over these base URLs (several nodes of a cluster);
    /// REST calls still go to --url. Default: --url.
    #[arg(long, value_delimiter = ',')]
    ws_urls: Vec<String>,
    /// Name of the scenario in the results (default: the subcommand's).
    #[arg(long)]
    name: Option<String>,
    /// Name of the server in the results (wshub, limitsrv, ...).
    #[arg(long, default_value = "wshub")]
    label: String,
    /// Clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Messages.
    #[arg(long)]
    messages: Option<usize>,
    /// Requests in flight.
    #[arg(long)]
    inflight: Option<usize>,
    /// Messages per second (fanout-rate).
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Size of each message's padding, in bytes.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Append the result as one JSON line to this file.
    #[arg(long)]
    json: Option<String>,
    /// Tiny sizes, to prove the harness works (CI).
    #[arg(long)]
    tiny: bool,
    /// Group scenarios: bind each member with a userId of its own (u0, u1, ...) in a system
    /// with presence "user", so every member counts as a user (wshub only).
    #[arg(long)]
    users: bool,
    /// Group scenarios: register the system with a webhook to this URL, every event (wshub
    /// only; the events of connects and binds are then queued, and kept with --data-dir).
    #[arg(long)]
    webhook_url: Option<String>,
    /// The broker of the server's MQTT bridge (mqtt-fanout).
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// The bridge's topic prefix (the server's --mqtt-prefix).
    #[arg(long, default_value = "wshub/")]
    mqtt_prefix: String,
    /// Concurrent connection attempts while connecting clients.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// Share of the clients (0 to 1) that connect with `recovery=1` (connection state
    /// recovery): what that costs the clients that did and did not ask for it.
    #[arg(long, default_value_t = 0.0)]
    recovery_share: f64,
    /// Messages per second of each big-room step, rising.
    #[arg(long, value_delimiter = ',', default_value = "1,2,5,10,20,40,80,160")]
    rates: Vec<f64>,
    /// Seconds each big-room step sends for.
    #[arg(long, default_value_t = 3.0)]
    step_seconds: f64,
}

impl Opts {
    fn pids(&self) -> Vec<u32> {
        self.pid.clone()
    }
}

#[derive(clap::Args, Debug, Clone)]
struct ReportOpts {
    /// Results, one JSON object a line.
    #[arg(long, default_value = "benches/results.jsonl")]
    input: String,
    /// The markdown report to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    output: String,
    /// The latency plot to write (referenced from the report).
    #[arg(long, default_value = "benches/latency.svg")]
    svg: String,
    /// Extra markdown (commands, notes) placed after the tables.
    #[arg(long)]
    notes: Option<String>,
}

fn main() {
    // `cargo bench` passes --bench; ignore it.
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let cli = Cli::parse_from(args);
    match cli.scenario {
        Scenario::Report(opts) => report(&opts),
        scenario => {
            actix_web::rt::System::new().block_on(async move {
                let results = run(scenario).await;
                for result in results {
                    print_result(&result);
                }
            });
        }
    }
}

async fn run(scenario: Scenario) -> Vec<Value> {
    match scenario {
        Scenario::Fanout(o) => vec![fanout(o, None).await],
        Scenario::FanoutRate(o) => {
            let rate = o.rate;
            vec![fanout(o, Some(rate)).await]
        }
        Scenario::System(o) => vec![system(o).await],
        Scenario::Idle(o) => vec![idle(o).await],
        Scenario::Unicast(o) => vec![unicast(o).await],
        Scenario::Users(o) => vec![users(o).await],
        Scenario::UserPresence(o) => vec![user_presence(o).await],
        Scenario::Webhooks(o) => vec![webhooks(o).await],
        Scenario::MqttFanout(o) => vec![mqtt_fanout(o).await],
        Scenario::BigRoom(o) => vec![big_room(o).await],
        Scenario::All(o) => {
            let rate = o.rate;
            vec![
                fanout(o.clone(), None).await,
                fanout(o.clone(), Some(rate)).await,
                system(o.clone()).await,
                unicast(o.clone()).await,
                users(o.clone()).await,
                user_presence(o.clone()).await,
                webhooks(o.clone()).await,
                idle(o).await,
            ]
        }
        Scenario::Report(_) => unreachable!(),
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Server-side readings from /proc

/// CPU seconds (user + system) the server's processes have used, summed; `None` without pids.
fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| process_cpu_seconds(*pid)).sum()
}

fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0) // USER_HZ is 100 on Linux
}

/// Resident memory of the server's processes, summed; `None` without pids.
fn rss_kib(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| process_rss_kib(*pid)).sum()
}

fn process_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------
// REST and WebSocket plumbing

struct Api {
    http: awc::Client,
    url: String,
    token: Option<String>,
    system: String,
    /// Base URLs for WebSocket clients (empty: `url`).
    ws_bases: Vec<String>,
    /// Share of clients that ask for recovery.
    recovery_share: f64,
    /// Calls the server refused with 503 (overloaded).
    refused: Cell<u64>,
}

impl Api {
    fn new(o: &Opts, connections: usize) -> Api {
        let connector = awc::Connector::new().limit(connections.max(1));
        Api {
            http: awc::Client::builder()
                .connector(connector)
                .timeout(Duration::from_secs(60))
                .finish(),
            url: o.url.trim_end_matches('/').to_owned(),
            token: o.token.clone(),
            system: format!("bench-{}", now_nanos() % 1_000_000_000),
            ws_bases: o.ws_urls.clone(),
            recovery_share: o.recovery_share.clamp(0.0, 1.0),
            refused: Cell::new(0),
        }
    }

    async fn call(&self, method: &str, body: String) -> Value {
        let mut request = self
            .http
            .post(format!("{}/api/{method}", self.url))
            .insert_header(("SystemId", self.system.as_str()))
            .insert_header(("Content-Type", "application/json"));
        if let Some(token) = &self.token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = request.send_body(body).await.expect("request sent");
        let status = response.status();
        let bytes = response.body().limit(64 << 20).await.expect("reply read");
        if status == awc::http::StatusCode::SERVICE_UNAVAILABLE {
            self.refused.set(self.refused.get() + 1);
            return Value::Null;
        }
        assert!(
            status.is_success(),
            "{method}: HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    /// The WebSocket URLs clients connect to, round robin.
    fn ws_urls(&self) -> Vec<String> {
        let bases = if self.ws_bases.is_empty() {
            vec![self.url.clone()]
        } else {
            self.ws_bases.clone()
        };
        bases
            .iter()
            .map(|base| {
                format!(
                    "{}/ws?systemId={}",
                    base.trim_end_matches('/').replacen("http", "ws", 1),
                    self.system
                )
            })
            .collect()
    }
}

/// What every reader task reports into.
#[derive(Default)]
struct Tally {
    /// Bench pushes received.
    received: Cell<u64>,
    /// Any frames received (notices included).
    frames: Cell<u64>,
    /// When the last bench push arrived.
    last: Cell<Option<Instant>>,
    /// End-to-end latency of each bench push, microseconds.
    latencies: RefCell<Vec<u32>>,
    /// Clients the server closed, and of those, closed as slow consumers (4008).
    closed: Cell<u64>,
    slow_closed: Cell<u64>,
}

/// Finds `"t":<digits>` in a frame: the send stamp the generator put in `data`.
fn stamp(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(4).position(|w| w == b"\"t\":")? + 4;
    let digits = frame[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut value = 0u64;
    let mut any = false;
    for d in digits {
        value = value * 10 + u64::from(d - b'0');
        any = true;
    }
    any.then_some(value)
}

/// Connects one client and returns its id; a spawned task then reads its frames into `tally`.
async fn connect_client(ws_url: String, tally: Rc<Tally>) -> String {
    let (_, mut conn) = awc::Client::new()
        .ws(ws_url)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .expect("websocket handshake");
    let id = loop {
        match conn.next().await {
            Some(Ok(Frame::Text(bytes))) => {
                let v: Value = serde_json::from_slice(&bytes).expect("welcome is JSON");
                break v["data"]["clientId"]
                    .as_str()
                    .expect("welcome has clientId")
                    .to_owned();
            }
            Some(Ok(_)) => continue,
            other => panic!("no welcome frame: {other:?}"),
        }
    };
    actix_web::rt::spawn(async move {
        while let Some(Ok(frame)) = conn.next().await {
            match frame {
                Frame::Text(bytes) => {
                    tally.frames.set(tally.frames.get() + 1);
                    if let Some(sent) = stamp(&bytes) {
                        let now = now_nanos();
                        tally.received.set(tally.received.get() + 1);
                        tally.last.set(Some(Instant::now()));
                        let micros = now.saturating_sub(sent) / 1000;
                        tally
                            .latencies
                            .borrow_mut()
                            .push(micros.min(u32::MAX as u64) as u32);
                    }
                }
                Frame::Ping(payload)
                    if conn.send(Message::Pong(payload.clone())).await.is_err() =>
                {
                    break
                }
                Frame::Close(reason) => {
                    tally.closed.set(tally.closed.get() + 1);
                    if reason.is_some_and(|r| u16::from(r.code) == 4008) {
                        tally.slow_closed.set(tally.slow_closed.get() + 1);
                    }
                    break;
                }
                _ => {}
            }
        }
    });
    id
}

/// Connects `n` clients, `concurrency` at a time. Returns ids and the connect rate.
async fn connect_many(
    api: &Api,
    n: usize,
    concurrency: usize,
    tally: &Rc<Tally>,
) -> (Vec<String>, f64) {
    let started = Instant::now();
    let mut ids = Vec::with_capacity(n);
    let urls = api.ws_urls();
    let recovering = (n as f64 * api.recovery_share).round() as usize;
    let mut pending = futures_util::stream::iter(0..n)
        .map(|i| {
            let mut url = urls[i % urls.len()].clone();
            if i < recovering {
                url.push_str("&recovery=1");
            }
            connect_client(url, tally.clone())
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(id) = pending.next().await {
        ids.push(id);
    }
    (ids, n as f64 / started.elapsed().as_secs_f64())
}

/// Waits until no frame has arrived for `quiet`.
async fn settle(tally: &Tally, quiet: Duration) {
    let mut last = tally.frames.get();
    loop {
        actix_web::rt::time::sleep(quiet).await;
        let now = tally.frames.get();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Waits until `expected` bench pushes arrived, or nothing came for `quiet`.
async fn await_delivery(tally: &Tally, expected: u64, quiet: Duration) {
    let mut last = (tally.received.get(), Instant::now());
    while tally.received.get() < expected {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        let now = tally.received.get();
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > quiet {
            return;
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn message_body(target: (&str, &str), seq: usize, pad: &str) -> String {
    format!(
        r#"{{"{}":"{}","code":7,"data":{{"t":{},"s":{seq},"p":"{pad}"}}}}"#,
        target.0,
        target.1,
        now_nanos()
    )
}

fn latency_summary(tally: &Tally) -> (f64, f64, f64, Vec<u32>) {
    let mut latencies = tally.latencies.borrow().clone();
    latencies.sort_unstable();
    (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0) as f64 / 1000.0,
        latencies,
    )
}

/// Sends `count` messages: with `rate`, on a fixed schedule; without, `inflight` at a time.
async fn send_messages(
    api: &Rc<Api>,
    method: &'static str,
    targets: Rc<Vec<(String, String)>>,
    count: usize,
    inflight: usize,
    rate: Option<f64>,
    pad: Rc<String>,
) {
    match rate {
        Some(rate) => {
            let interval = Duration::from_secs_f64(1.0 / rate);
            let started = Instant::now();
            let mut tasks = Vec::with_capacity(count);
            for seq in 0..count {
                let due = started + interval * seq as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    actix_web::rt::time::sleep(wait).await;
                }
                let (api, targets, pad) = (api.clone(), targets.clone(), pad.clone());
                tasks.push(actix_web::rt::spawn(async move {
                    let (k, v) = &targets[seq % targets.len()];
                    api.call(method, message_body((k, v), seq, &pad)).await;
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        }
        None => {
            let next = Rc::new(Cell::new(0usize));
            let workers: Vec<_> = (0..inflight.max(1))
                .map(|_| {
                    let (api, targets, pad, next) =
                        (api.clone(), targets.clone(), pad.clone(), next.clone());
                    actix_web::rt::spawn(async move {
                        loop {
                            let seq = next.get();
                            if seq >= count {
                                break;
                            }
                            next.set(seq + 1);
                            let (k, v) = &targets[seq % targets.len()];
                            api.call(method, message_body((k, v), seq, &pad)).await;
                        }
                    })
                })
                .collect();
            for worker in workers {
                worker.await.unwrap();
            }
        }
    }
}

/// What one send phase measured.
struct Phase {
    delivered: u64,
    lost: u64,
    /// First send to last delivery.
    elapsed: Duration,
    /// First send to last REST reply.
    requests_elapsed: Duration,
    cpu: Option<f64>,
    p50: f64,
    p99: f64,
    max: f64,
    latencies: Vec<u32>,
}

/// Sends `count` messages with `method` to `targets` and waits for `expected` deliveries,
/// measuring the server's CPU over the phase.
#[allow(clippy::too_many_arguments)]
async fn send_phase(
    o: &Opts,
    api: &Rc<Api>,
    tally: &Tally,
    method: &'static str,
    targets: Vec<(String, String)>,
    count: usize,
    inflight: usize,
    rate: Option<f64>,
    expected: u64,
) -> Phase {
    let cpu_before = cpu_seconds(&o.pids());
    let started = Instant::now();
    let pad = Rc::new("x".repeat(o.payload));
    send_messages(api, method, Rc::new(targets), count, inflight, rate, pad).await;
    let requests_elapsed = started.elapsed();
    await_delivery(tally, expected, Duration::from_secs(3)).await;
    let elapsed = tally
        .last
        .get()
        .map_or(started.elapsed(), |last| last.duration_since(started));
    let delivered = tally.received.get();
    let (p50, p99, max, latencies) = latency_summary(tally);
    Phase {
        delivered,
        lost: expected.saturating_sub(delivered),
        elapsed,
        requests_elapsed,
        cpu: cpu_before.zip(cpu_seconds(&o.pids())).map(|(a, b)| b - a),
        p50,
        p99,
        max,
        latencies,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// A registered system with `clients` clients connected and bound to group `g`.
struct Group {
    api: Rc<Api>,
    tally: Rc<Tally>,
    connect_rate: f64,
    bind_seconds: f64,
    /// Frames the binds brought (the presence notices).
    bind_notices: u64,
}

impl Group {
    async fn set_up(o: &Opts, clients: usize, inflight: usize) -> Group {
        let api = Rc::new(Api::new(o, inflight.max(16)));
        let mut register = json!({"systemId": api.system});
        if o.users {
            register["presence"] = json!("user");
        }
        if let Some(url) = &o.webhook_url {
            register["webhook"] = json!({"url": url, "secret": "bench-webhook-secret"});
        }
        api.call("register", register.to_string()).await;
        let tally = Rc::new(Tally::default());
        let (ids, connect_rate) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
        // Bind everyone (16 in flight), with the presence notices that go with it.
        let bind_started = Instant::now();
        futures_util::stream::iter(ids.iter().enumerate())
            .map(|(i, id)| {
                let mut bind = json!({"clientId": id, "groupName": "g"});
                if o.users {
                    bind["userId"] = json!(format!("u{i}"));
                }
                api.call("bind_to_group", bind.to_string())
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        let bind_seconds = bind_started.elapsed().as_secs_f64();
        settle(&tally, Duration::from_millis(300)).await;
        let bind_notices = tally.frames.get();
        Group {
            api,
            tally,
            connect_rate,
            bind_seconds,
            bind_notices,
        }
    }
}

async fn fanout(o: Opts, rate: Option<f64>) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 20 } else { 1000 });
    let messages = o.messages.unwrap_or(if o.tiny {
        10
    } else if rate.is_some() {
        300
    } else {
        2000
    });
    let inflight = o.inflight.unwrap_or(4);
    let Group {
        api,
        tally,
        connect_rate,
        bind_seconds,
        bind_notices,
    } = Group::set_up(&o, clients, inflight).await;

    let targets = vec![("groupName".to_owned(), "g".to_owned())];
    let expected = (clients * messages) as u64;
    let phase = send_phase(
        &o,
        &api,
        &tally,
        "send_to_group",
        targets,
        messages,
        inflight,
        rate,
        expected,
    )
    .await;
    let scenario = o.name.clone().unwrap_or_else(|| {
        if rate.is_some() {
            "fanout-rate"
        } else {
            "fanout"
        }
        .to_owned()
    });
    json!({
        "scenario": scenario, "server": o.label, "clients": clients, "messages": messages,
        "inflight": inflight, "rate": rate, "payload": o.payload,
        "recovery_share": api.recovery_share,
        "connect_per_s": connect_rate, "bind_seconds": bind_seconds, "bind_frames": bind_notices,
        "delivered": phase.delivered, "lost": phase.lost,
        "frames_per_s": phase.delivered as f64 / phase.elapsed.as_secs_f64(),
        "p50_ms": phase.p50, "p99_ms": phase.p99, "max_ms": phase.max,
        "cpu_s": phase.cpu, "cpu_us_per_frame": phase.cpu.map(|c| c * 1e6 / phase.delivered.max(1) as f64),
        "rss_kib": rss_kib(&o.pids()),
        "latency_curve": curve(&phase.latencies),
    })
}

/// Messages a publisher may be ahead of delivery in `mqtt-fanout`: half of Mosquitto's default
/// per-client queue (`max_queued_messages` 1000). The broker acknowledges a publish at once, so
/// an unpaced publisher outruns any fan-out, and past that queue the broker drops QoS 1 messages
/// to the bridge: the figure would be the broker's drop policy, not the bridge's throughput.
const MQTT_AHEAD: u64 = 500;

/// Delivery that has not moved for this long has stopped: the publisher goes on unpaced.
const STALLED: Duration = Duration::from_secs(3);

/// Publishes `count` messages to `topic` (QoS 1), each stamped like a REST send, as fast as the
/// broker takes them while no more than [`MQTT_AHEAD`] are undelivered (`tally` counts the
/// frames of `clients` readers).
async fn publish_messages(
    o: &Opts,
    topic: &str,
    count: usize,
    pad: &str,
    (tally, clients): (&Tally, u64),
) {
    use rumqttc::v5::mqttbytes::QoS;
    let address = o.mqtt_url.trim_start_matches("mqtt://");
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "1883"));
    let options = rumqttc::v5::MqttOptions::new(
        format!("load-{}", now_nanos()),
        host,
        port.parse().unwrap_or(1883),
    );
    let (client, mut event_loop) = rumqttc::v5::AsyncClient::new(options, 1000);
    let poller = actix_web::rt::spawn(async move { while event_loop.poll().await.is_ok() {} });
    let mut paced = true;
    for seq in 0..count {
        // Wait for delivery to catch up; once it has stalled, go on unpaced (the loss shows in
        // `lost`).
        let delivered_before = (seq as u64).saturating_sub(MQTT_AHEAD) * clients;
        if paced && tally.received.get() < delivered_before {
            await_delivery(tally, delivered_before, STALLED).await;
            paced = tally.received.get() >= delivered_before;
        }
        let body = format!(
            r#"{{"code":7,"data":{{"t":{},"s":{seq},"p":"{pad}"}}}}"#,
            now_nanos()
        );
        client
            .publish(topic, QoS::AtLeastOnce, false, body)
            .await
            .expect("publish queued");
    }
    // Let the last acknowledgements through before the client goes.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let _ = client.disconnect().await;
    poller.abort();
}

/// Clears what a phase counted, for the next phase on the same clients.
fn reset(tally: &Tally) {
    tally.received.set(0);
    tally.last.set(None);
    tally.latencies.borrow_mut().clear();
}

async fn mqtt_fanout(o: Opts) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 20 } else { 1000 });
    let messages = o.messages.unwrap_or(if o.tiny { 10 } else { 2000 });
    let inflight = o.inflight.unwrap_or(4);
    let Group { api, tally, .. } = Group::set_up(&o, clients, inflight).await;
    let expected = (clients * messages) as u64;

    // Through MQTT: the device publishes, the bridge pushes.
    let topic = format!("{}{}/group/g", o.mqtt_prefix, api.system);
    let pad = "x".repeat(o.payload);
    reset(&tally);
    let cpu_before = cpu_seconds(&o.pids());
    let started = Instant::now();
    publish_messages(&o, &topic, messages, &pad, (&tally, clients as u64)).await;
    await_delivery(&tally, expected, Duration::from_secs(3)).await;
    let mqtt_elapsed = tally
        .last
        .get()
        .map_or(started.elapsed(), |last| last.duration_since(started));
    let mqtt_cpu = cpu_before.zip(cpu_seconds(&o.pids())).map(|(a, b)| b - a);
    let mqtt_delivered = tally.received.get();
    let (p50, p99, max, latencies) = latency_summary(&tally);

    // The same through REST, on the same clients.
    reset(&tally);
    let targets = vec![("groupName".to_owned(), "g".to_owned())];
    let rest = send_phase(
        &o,
        &api,
        &tally,
        "send_to_group",
        targets,
        messages,
        inflight,
        None,
        expected,
    )
    .await;
    json!({
        "scenario": o.name.clone().unwrap_or_else(|| "mqtt-fanout".to_owned()),
        "server": o.label, "clients": clients, "messages": messages, "inflight": inflight,
        "payload": o.payload,
        "delivered": mqtt_delivered, "lost": expected.saturating_sub(mqtt_delivered),
        "messages_per_s": messages as f64 / mqtt_elapsed.as_secs_f64(),
        "frames_per_s": mqtt_delivered as f64 / mqtt_elapsed.as_secs_f64(),
        "p50_ms": p50, "p99_ms": p99, "max_ms": max,
        "cpu_s": mqtt_cpu,
        "cpu_us_per_frame": mqtt_cpu.map(|c| c * 1e6 / mqtt_delivered.max(1) as f64),
        "rest_messages_per_s": messages as f64 / rest.elapsed.as_secs_f64(),
        "rest_frames_per_s": rest.delivered as f64 / rest.elapsed.as_secs_f64(),
        "rest_p99_ms": rest.p99,
        "rest_cpu_us_per_frame": rest.cpu.map(|c| c * 1e6 / rest.delivered.max(1) as f64),
        "rest_lost": rest.lost,
        "rss_kib": rss_kib(&o.pids()),
        "latency_curve": curve(&latencies),
    })
}

/// Below this p99 a big room keeps up.
const BIG_ROOM_P99_MS: f64 = 100.0;

async fn big_room(o: Opts) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 20 } else { 10_000 });
    let Group {
        api,
        tally,
        bind_seconds,
        ..
    } = Group::set_up(&o, clients, 64).await;
    let targets = Rc::new(vec![("groupName".to_owned(), "g".to_owned())]);
    let pad = Rc::new("x".repeat(o.payload));
    let mut steps = Vec::new();
    let mut held: Option<(f64, f64)> = None;
    let mut result = serde_json::Map::new();
    // Every rate, then one at twice the top rate: what overload does.
    let top = o.rates.iter().copied().fold(0.0, f64::max);
    for rate in o.rates.iter().copied().chain([top * 2.0]) {
        reset(&tally);
        let refused_before = api.refused.get();
        let count = ((rate * o.step_seconds).round() as usize).max(1);
        let cpu_before = cpu_seconds(&o.pids());
        send_messages(
            &api,
            "send_to_group",
            targets.clone(),
            count,
            64,
            Some(rate),
            pad.clone(),
        )
        .await;
        let refused = api.refused.get() - refused_before;
        let expected = (count as u64 - refused) * clients as u64;
        await_delivery(&tally, expected, Duration::from_secs(3)).await;
        let cpu = cpu_before.zip(cpu_seconds(&o.pids())).map(|(a, b)| b - a);
        let delivered = tally.received.get();
        let cpu_per_frame = cpu.map(|c| c * 1e6 / delivered.max(1) as f64);
        let (p50, p99, max, _) = latency_summary(&tally);
        println!("  step {rate}/s: p50 {p50:.1} ms, p99 {p99:.1} ms, refused {refused}");
        result.insert(format!("p99_ms_at_{rate}"), json!(p99));
        steps.push(json!({
            "rate": rate, "messages": count, "refused": refused, "delivered": delivered,
            "lost": expected.saturating_sub(delivered), "p50_ms": p50, "p99_ms": p99,
            "max_ms": max, "cpu_us_per_frame": cpu_per_frame,
        }));
        if p99 < BIG_ROOM_P99_MS && refused == 0 && rate <= top {
            held = Some((rate, cpu_per_frame.unwrap_or(0.0)));
        }
        settle(&tally, Duration::from_millis(500)).await;
    }
    let overload = steps.last().cloned().unwrap_or(Value::Null);
    let lost: u64 = steps.iter().filter_map(|s| s["lost"].as_u64()).sum();
    let mut value = json!({
        "scenario": o.name.clone().unwrap_or_else(|| "big-room".to_owned()),
        "server": o.label, "clients": clients, "payload": o.payload,
        "bind_seconds": bind_seconds,
        "max_rate_p99_under_100ms": held.map(|h| h.0),
        "cpu_us_per_frame_at_max_rate": held.map(|h| h.1),
        "overload_rate": overload["rate"], "overload_p99_ms": overload["p99_ms"],
        "overload_refused": overload["refused"],
        "slow_consumer_closes": tally.slow_closed.get(), "clients_closed": tally.closed.get(),
        "lost": lost,
        "steps": steps,
        "rss_kib": rss_kib(&o.pids()),
    });
    if let Value::Object(map) = &mut value {
        map.extend(result);
    }
    value
}

async fn system(o: Opts) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 20 } else { 10_000 });
    let messages = o.messages.unwrap_or(if o.tiny { 5 } else { 50 });
    let inflight = o.inflight.unwrap_or(1);
    let api = Rc::new(Api::new(&o, 16));
    api.call("register", json!({"systemId": api.system}).to_string())
        .await;
    let tally = Rc::new(Tally::default());
    let (_, connect_rate) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
    settle(&tally, Duration::from_millis(300)).await;
    let targets = vec![("sendUserId".to_owned(), "bench".to_owned())];
    let expected = (clients * messages) as u64;
    let phase = send_phase(
        &o,
        &api,
        &tally,
        "send_to_system",
        targets,
        messages,
        inflight,
        None,
        expected,
    )
    .await;
    json!({
        "scenario": "system", "server": o.label, "clients": clients, "messages": messages,
        "inflight": inflight, "payload": o.payload, "connect_per_s": connect_rate,
        "delivered": phase.delivered, "lost": phase.lost,
        "frames_per_s": phase.delivered as f64 / phase.elapsed.as_secs_f64(),
        "p50_ms": phase.p50, "p99_ms": phase.p99, "max_ms": phase.max,
        "cpu_s": phase.cpu, "cpu_us_per_frame": phase.cpu.map(|c| c * 1e6 / phase.delivered.max(1) as f64),
        "rss_kib": rss_kib(&o.pids()),
    })
}

async fn idle(o: Opts) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 50 } else { 15_000 });
    let limit = fd_limit();
    if clients + 100 > limit {
        eprintln!(
            "note: {clients} connections need {clients} descriptors here and in the server; this process may open {limit}"
        );
    }
    let api = Rc::new(Api::new(&o, 4));
    api.call("register", json!({"systemId": api.system}).to_string())
        .await;
    let tally = Rc::new(Tally::default());
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kib(&o.pids());
    let (_, connect_rate) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
    settle(&tally, Duration::from_millis(500)).await;
    let rss_after = rss_kib(&o.pids());
    let per_connection = rss_before
        .zip(rss_after)
        .map(|(a, b)| b.saturating_sub(a) as f64 / clients as f64);
    json!({
        "scenario": "idle", "server": o.label, "clients": clients,
        "connect_per_s": connect_rate, "rss_before_kib": rss_before, "rss_kib": rss_after,
        "rss_kib_per_connection": per_connection, "fd_limit": limit,
    })
}

async fn unicast(o: Opts) -> Value {
    let clients = o.clients.unwrap_or(if o.tiny { 10 } else { 100 });
    let messages = o.messages.unwrap_or(if o.tiny { 50 } else { 20_000 });
    let inflight = o.inflight.unwrap_or(32);
    let api = Rc::new(Api::new(&o, inflight));
    api.call("register", json!({"systemId": api.system}).to_string())
        .await;
    let tally = Rc::new(Tally::default());
    let (ids, _) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
    settle(&tally, Duration::from_millis(200)).await;
    let targets = ids
        .into_iter()
        .map(|id| ("clientId".to_owned(), id))
        .collect();
    let phase = send_phase(
        &o,
        &api,
        &tally,
        "send_to_client",
        targets,
        messages,
        inflight,
        None,
        messages as u64,
    )
    .await;
    json!({
        "scenario": "unicast", "server": o.label, "clients": clients, "messages": messages,
        "inflight": inflight, "payload": o.payload,
        "requests_per_s": messages as f64 / phase.requests_elapsed.as_secs_f64(),
        "delivered": phase.delivered, "lost": phase.lost,
        "p50_ms": phase.p50, "p99_ms": phase.p99, "max_ms": phase.max,
        "cpu_s": phase.cpu, "cpu_us_per_request": phase.cpu.map(|c| c * 1e6 / messages.max(1) as f64),
        "rss_kib": rss_kib(&o.pids()),
    })
}

/// What the webhook receiver of the `webhooks` scenario counted.
#[derive(Default)]
struct Received {
    events: std::sync::atomic::AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

async fn webhooks(o: Opts) -> Value {
    const FRAMES: usize = 20;
    let clients = o.clients.unwrap_or(if o.tiny { 20 } else { 1000 });
    let received = std::sync::Arc::new(Received::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the receiver");
    let url = format!(
        "http://{}/hook",
        listener.local_addr().expect("its address")
    );
    let counted = received.clone();
    let server = actix_web::HttpServer::new(move || {
        let counted = counted.clone();
        actix_web::App::new().default_service(actix_web::web::to(
            move |body: actix_web::web::Bytes| {
                let counted = counted.clone();
                async move {
                    let batch: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let n = batch["events"].as_array().map_or(0, Vec::len) as u64;
                    counted
                        .events
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                    *counted.last.lock().unwrap() = Some(Instant::now());
                    actix_web::HttpResponse::Ok().finish()
                }
            },
        ))
    })
    .workers(1)
    .listen(listener)
    .expect("the receiver listens")
    .run();
    let receiver = server.handle();
    actix_web::rt::spawn(server);
    let api = Api::new(&o, 16);
    let hook = json!({"url": url, "secret": "bench-webhook-secret", "events": ["client_message"]});
    api.call(
        "register",
        json!({"systemId": api.system, "webhook": hook}).to_string(),
    )
    .await;
    let ws = api.ws_urls()[0].clone();
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (_, mut conn) = awc::Client::new()
            .ws(ws.as_str())
            .connect()
            .await
            .expect("ws");
        let _welcome = conn.next().await;
        conns.push(conn);
    }
    let cpu_before = cpu_seconds(&o.pids());
    let started = Instant::now();
    for conn in &mut conns {
        for n in 0..FRAMES {
            let _ = conn
                .send(Message::Text(format!("{{\"n\":{n}}}").into()))
                .await;
        }
    }
    let expected = (clients * FRAMES) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Until every event came, or none came for 2 s (the rest were dropped: see `dropped`).
    while received.events.load(std::sync::atomic::Ordering::Relaxed) < expected
        && Instant::now() < deadline
    {
        let quiet = received.last.lock().unwrap().map(|last| last.elapsed());
        if quiet.is_some_and(|quiet| quiet > Duration::from_secs(2)) {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let got = received.events.load(std::sync::atomic::Ordering::Relaxed);
    let last = received.last.lock().unwrap().unwrap_or(started);
    let elapsed = last.duration_since(started).as_secs_f64();
    let cpu = cpu_seconds(&o.pids()).zip(cpu_before).map(|(a, b)| a - b);
    receiver.stop(false).await;
    json!({
        "scenario": "webhooks", "server": o.label, "clients": clients, "events": expected,
        "received": got, "seconds": elapsed,
        "events_per_s": got as f64 / elapsed.max(1e-9),
        "cpu_us_per_event": cpu.map(|cpu| cpu * 1e6 / got.max(1) as f64),
    })
}

async fn user_presence(o: Opts) -> Value {
    const TABS: usize = 10;
    let clients = o.clients.unwrap_or(if o.tiny { 40 } else { 10_000 }) / TABS * TABS;
    let users = clients / TABS;
    let api = Rc::new(Api::new(&o, 16));
    let register = json!({"systemId": api.system, "presence": "user"});
    api.call("register", register.to_string()).await;
    let tally = Rc::new(Tally::default());
    let (ids, _) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
    settle(&tally, Duration::from_millis(300)).await;
    // Tab t of user u is client u * TABS + t.
    let bind_all = |tab_range: std::ops::Range<usize>| {
        let binds: Vec<String> = tab_range
            .flat_map(|t| (0..users).map(move |u| (u, t)))
            .map(|(u, t)| {
                let id = &ids[u * TABS + t];
                json!({"clientId": id, "groupName": "room", "userId": format!("u{u}")}).to_string()
            })
            .collect();
        let api = api.clone();
        async move {
            let started = Instant::now();
            futures_util::stream::iter(binds)
                .map(|body| api.call("bind_to_group", body))
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
            started.elapsed()
        }
    };
    let frames_before = tally.frames.get();
    let started = Instant::now();
    let first_tabs = bind_all(0..1).await;
    // Every member hears each user that joins after it, and itself: n(n+1)/2 notices.
    let expected = (users * (users + 1) / 2) as u64;
    while tally.frames.get() - frames_before < expected
        && started.elapsed() < Duration::from_secs(60)
    {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let first_tabs_notified = started.elapsed();
    settle(&tally, Duration::from_millis(300)).await;
    let notices = tally.frames.get() - frames_before;
    let frames_before = tally.frames.get();
    let other_tabs = bind_all(1..TABS).await;
    settle(&tally, Duration::from_millis(300)).await;
    let notices_for_other_tabs = tally.frames.get() - frames_before;
    let page_started = Instant::now();
    let page = api
        .call(
            "get_online_users",
            json!({"groupName": "room", "limit": 1000}).to_string(),
        )
        .await;
    let page_ms = page_started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(page["data"]["userCount"], json!(users), "{page}");
    assert_eq!(page["data"]["clientCount"], json!(clients), "{page}");
    json!({
        "scenario": "user-presence", "server": o.label, "clients": clients, "users": users,
        "tabs_per_user": TABS,
        "bind_first_tabs_ms": first_tabs.as_secs_f64() * 1e3,
        "first_tabs_notified_ms": first_tabs_notified.as_secs_f64() * 1e3,
        "notices_for_first_tabs": notices,
        "bind_other_tabs_ms": other_tabs.as_secs_f64() * 1e3,
        "notices_for_other_tabs": notices_for_other_tabs,
        "get_online_users_group_page_ms": page_ms,
    })
}

async fn users(o: Opts) -> Value {
    const TABS: usize = 3;
    let clients = o.clients.unwrap_or(if o.tiny { 9 } else { 300 }) / TABS * TABS;
    let messages = o.messages.unwrap_or(if o.tiny { 30 } else { 10_000 });
    let inflight = o.inflight.unwrap_or(32);
    let api = Rc::new(Api::new(&o, inflight.max(16)));
    api.call("register", json!({"systemId": api.system}).to_string())
        .await;
    let tally = Rc::new(Tally::default());
    let (ids, _) = connect_many(&api, clients, o.connect_concurrency, &tally).await;
    // Client i is a tab of user u<i/3>, each in a group of its own (one notice per bind).
    futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let body = json!({"clientId": id, "groupName": format!("solo-{i}"), "userId": format!("u{}", i / TABS)});
            api.call("bind_to_group", body.to_string())
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    settle(&tally, Duration::from_millis(300)).await;
    let to_clients = ids
        .into_iter()
        .map(|id| ("clientId".to_owned(), id))
        .collect();
    let by_client = send_phase(
        &o,
        &api,
        &tally,
        "send_to_client",
        to_clients,
        messages,
        inflight,
        None,
        messages as u64,
    )
    .await;
    reset(&tally);
    let to_users = (0..clients / TABS)
        .map(|u| ("userId".to_owned(), format!("u{u}")))
        .collect();
    let by_user = send_phase(
        &o,
        &api,
        &tally,
        "send_to_user",
        to_users,
        messages,
        inflight,
        None,
        (messages * TABS) as u64,
    )
    .await;
    let per_frame = |phase: &Phase| {
        phase
            .cpu
            .map(|cpu| cpu * 1e6 / phase.delivered.max(1) as f64)
    };
    let (client_frame, user_frame) = (per_frame(&by_client), per_frame(&by_user));
    // A page of the system's users (1,000 at most), as a backend re-reading presence would.
    let page_started = Instant::now();
    let page = api
        .call("get_online_users", json!({"limit": 1000}).to_string())
        .await;
    let page_ms = page_started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(page["data"]["userCount"], json!(clients / TABS), "{page}");
    json!({
        "scenario": "users", "server": o.label, "clients": clients, "tabs_per_user": TABS,
        "messages": messages, "inflight": inflight, "payload": o.payload,
        "cpu_us_per_frame_send_to_client": client_frame,
        "cpu_us_per_frame_send_to_user": user_frame,
        "user_to_client_cpu_ratio": client_frame.zip(user_frame).map(|(c, u)| u / c),
        "send_to_user_requests_per_s": messages as f64 / by_user.requests_elapsed.as_secs_f64(),
        "p99_ms": by_user.p99, "lost": by_client.lost + by_user.lost,
        "get_online_users_page_ms": page_ms,
    })
}

fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        })
        .unwrap_or(1024)
}

/// Latency at 0..=100 percentiles, milliseconds, for the plot.
fn curve(sorted: &[u32]) -> Vec<f64> {
    (0..=100).map(|p| percentile(sorted, p as f64)).collect()
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_result(result: &Value) {
    println!(
        "\n== {} against {} ==",
        result["scenario"].as_str().unwrap_or("?"),
        result["server"].as_str().unwrap_or("?")
    );
    if let Value::Object(map) = result {
        for (key, value) in map {
            if key == "latency_curve" {
                continue;
            }
            let shown = match value {
                Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or(0.0)),
                other => other.to_string(),
            };
            println!("  {key:<24} {shown}");
        }
    }
    if let Some(path) = std::env::args().skip_while(|a| a != "--json").nth(1) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("results file opens");
        writeln!(file, "{result}").expect("result written");
    }
    println!("{result}");
}

/// The figures compared between servers, per scenario: (key, label, higher is better).
const FIGURES: &[(&str, &str, &str, bool)] = &[
    ("fanout", "frames_per_s", "delivered frames/s", true),
    (
        "fanout",
        "cpu_us_per_frame",
        "server CPU µs per frame",
        false,
    ),
    ("fanout", "p99_ms", "p99 latency, ms", false),
    ("fanout", "bind_seconds", "bind N clients, s", false),
    ("fanout", "lost", "lost frames", false),
    (
        "fanout-rate",
        "cpu_us_per_frame",
        "server CPU µs per frame",
        false,
    ),
    ("fanout-rate", "p50_ms", "p50 latency, ms", false),
    ("fanout-rate", "p99_ms", "p99 latency, ms", false),
    ("fanout-rate", "max_ms", "max latency, ms", false),
    ("fanout-rate", "lost", "lost frames", false),
    (
        "fanout-rate-recovery",
        "cpu_us_per_frame",
        "server CPU µs per frame, half the clients in recovery mode",
        false,
    ),
    ("fanout-rate-recovery", "p99_ms", "p99 latency, ms", false),
    ("fanout-rate-recovery", "lost", "lost frames", false),
    (
        "fanout-rate-2-nodes",
        "cpu_us_per_frame",
        "CPU µs per frame, both nodes",
        false,
    ),
    ("fanout-rate-2-nodes", "p50_ms", "p50 latency, ms", false),
    ("fanout-rate-2-nodes", "p99_ms", "p99 latency, ms", false),
    ("fanout-rate-2-nodes", "max_ms", "max latency, ms", false),
    ("fanout-rate-2-nodes", "lost", "lost frames", false),
    ("mqtt-fanout", "messages_per_s", "MQTT publishes/s", true),
    (
        "mqtt-fanout",
        "frames_per_s",
        "delivered frames/s, MQTT",
        true,
    ),
    (
        "mqtt-fanout",
        "rest_frames_per_s",
        "delivered frames/s, REST",
        true,
    ),
    (
        "mqtt-fanout",
        "cpu_us_per_frame",
        "CPU µs per frame, MQTT",
        false,
    ),
    (
        "mqtt-fanout",
        "rest_cpu_us_per_frame",
        "CPU µs per frame, REST",
        false,
    ),
    ("mqtt-fanout", "p99_ms", "p99 latency, ms, MQTT", false),
    ("mqtt-fanout", "lost", "lost frames, MQTT", false),
    (
        "big-room",
        "max_rate_p99_under_100ms",
        "highest rate with p99 under 100 ms, messages/s",
        true,
    ),
    (
        "big-room",
        "cpu_us_per_frame_at_max_rate",
        "server CPU µs per frame at that rate",
        false,
    ),
    ("big-room", "p99_ms_at_1", "p99 latency at 1/s, ms", false),
    ("big-room", "p99_ms_at_10", "p99 latency at 10/s, ms", false),
    ("big-room", "p99_ms_at_40", "p99 latency at 40/s, ms", false),
    (
        "big-room",
        "p99_ms_at_160",
        "p99 latency at 160/s, ms",
        false,
    ),
    (
        "big-room",
        "overload_rate",
        "overload step, messages/s",
        true,
    ),
    (
        "big-room",
        "overload_p99_ms",
        "p99 latency in overload, ms",
        false,
    ),
    (
        "big-room",
        "overload_refused",
        "sends refused (503) in overload",
        false,
    ),
    (
        "big-room",
        "slow_consumer_closes",
        "readers closed as slow consumers",
        false,
    ),
    (
        "big-room",
        "lost",
        "lost frames (accepted, not delivered)",
        false,
    ),
    ("big-room", "bind_seconds", "bind N clients, s", false),
    ("system", "frames_per_s", "delivered frames/s", true),
    (
        "system",
        "cpu_us_per_frame",
        "server CPU µs per frame",
        false,
    ),
    ("system", "p99_ms", "p99 latency, ms", false),
    ("system", "lost", "lost frames", false),
    (
        "idle",
        "rss_kib_per_connection",
        "server RSS per connection, KiB",
        false,
    ),
    ("idle", "connect_per_s", "connections/s", true),
    (
        "unicast",
        "requests_per_s",
        "send_to_client requests/s",
        true,
    ),
    (
        "unicast",
        "cpu_us_per_request",
        "server CPU µs per request",
        false,
    ),
    ("unicast", "lost", "lost frames", false),
];

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    Some(values[values.len() / 2])
}

fn best(values: Vec<f64>, higher_is_better: bool) -> Option<f64> {
    values
        .into_iter()
        .reduce(|a, b| if (b > a) == higher_is_better { b } else { a })
}

fn report(o: &ReportOpts) {
    let text = std::fs::read_to_string(&o.input).expect("results file");
    let results: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut by: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for r in &results {
        let scenario = r["scenario"].as_str().unwrap_or("?").to_owned();
        let server = r["server"].as_str().unwrap_or("?").to_owned();
        params.entry(scenario.clone()).or_insert_with(|| {
            let mut p = format!("{} clients", r["clients"]);
            if r["messages"].is_number() {
                p += &format!(", {} messages", r["messages"]);
            }
            if r["rate"].is_number() {
                p += &format!(" at {}/s", r["rate"]);
            } else if r["inflight"].is_number() {
                p += &format!(", {} in flight", r["inflight"]);
            }
            if r["payload"].is_number() {
                p += &format!(", {} B padding", r["payload"]);
            }
            p
        });
        for (s, key, _, _) in FIGURES {
            if *s == scenario {
                if let Some(v) = r[*key].as_f64() {
                    by.entry((scenario.clone(), key.to_string(), server.clone()))
                        .or_default()
                        .push(v);
                }
            }
        }
    }
    let servers: Vec<String> = {
        let mut s: Vec<String> = results
            .iter()
            .filter_map(|r| r["server"].as_str().map(str::to_owned))
            .collect();
        s.sort();
        s.dedup();
        // wshub first, the reference second.
        s.sort_by_key(|name| name != "wshub");
        s
    };
    let mut md = String::new();
    md.push_str("# wshub benchmarks\n\n");
    md.push_str("Generated by `cargo bench --bench load -- report` from `");
    md.push_str(&o.input);
    md.push_str("`; do not edit by hand. Produced by `benches/compare.sh` (commands below).\n\n");
    md.push_str("## Machine\n\n");
    md.push_str(&machine());
    md.push_str("\n## Results\n\n");
    md.push_str("Each figure is the median of the runs (flat-out throughput: the best run). ");
    md.push_str("`ratio` is wshub / reference; for throughput higher is better, for CPU, latency and memory lower is better.\n\n");
    let mut current = String::new();
    for (scenario, key, label, higher) in FIGURES {
        if !by.keys().any(|(s, _, _)| s == scenario) {
            continue;
        }
        if current != *scenario {
            current = scenario.to_string();
            md.push_str(&format!(
                "\n### {scenario} ({})\n\n| figure | {} | ratio | runs |\n|---|{}---|---|\n",
                params.get(*scenario).cloned().unwrap_or_default(),
                servers.join(" | "),
                "---|".repeat(servers.len())
            ));
        }
        let pick = |server: &str| {
            let values = by
                .get(&(scenario.to_string(), key.to_string(), server.to_owned()))
                .cloned()
                .unwrap_or_default();
            let runs = values.len();
            let v = if *scenario == "fanout" && *key == "frames_per_s" {
                best(values, *higher)
            } else {
                median(values)
            };
            (v, runs)
        };
        let cells: Vec<(Option<f64>, usize)> = servers.iter().map(|s| pick(s)).collect();
        let ratio = match (cells.first(), cells.get(1)) {
            (Some((Some(a), _)), Some((Some(b), _))) if *b != 0.0 => format!("{:.2}", a / b),
            _ => "–".into(),
        };
        let runs: Vec<String> = cells.iter().map(|c| c.1.to_string()).collect();
        md.push_str(&format!(
            "| {label} | {} | {ratio} | {} |\n",
            cells
                .iter()
                .map(|(v, _)| v.map_or("–".into(), fmt_num))
                .collect::<Vec<_>>()
                .join(" | "),
            runs.join(" / ")
        ));
    }
    let svg_name = std::path::Path::new(&o.svg)
        .strip_prefix(
            std::path::Path::new(&o.output)
                .parent()
                .unwrap_or(std::path::Path::new("")),
        )
        .unwrap_or(std::path::Path::new(&o.svg))
        .display()
        .to_string();
    if plot(&results, &o.svg) {
        md.push_str(&format!(
            "\n## Latency\n\nEnd-to-end latency (REST call sent → frame read by the client) by percentile, fixed-rate fan-out, last run of each server:\n\n![latency by percentile]({svg_name})\n"
        ));
    }
    if let Some(notes) = &o.notes {
        md.push('\n');
        md.push_str(&std::fs::read_to_string(notes).expect("notes file"));
    }
    std::fs::write(&o.output, md).expect("report written");
    println!("wrote {} and {}", o.output, o.svg);
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    format!(
        "- CPU: {cpu}, {cores} cores; memory: {memory} GiB; Linux {kernel}\n- server pinned to CPU 0, load generator to CPU 1 (`taskset`); both release builds\n- open-file limit per process: {}\n",
        fd_limit()
    )
}

/// Draws latency-by-percentile curves of the fixed-rate fan-out, one line per server.
fn plot(results: &[Value], path: &str) -> bool {
    use plotters::prelude::*;
    let mut curves: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in results {
        if r["scenario"] == "fanout-rate" {
            if let Some(curve) = r["latency_curve"].as_array() {
                curves.insert(
                    r["server"].as_str().unwrap_or("?").to_owned(),
                    curve.iter().filter_map(Value::as_f64).collect(),
                );
            }
        }
    }
    if curves.is_empty() {
        return false;
    }
    let max = curves
        .values()
        .flat_map(|c| c.iter().take(100).copied())
        .fold(0.0f64, f64::max)
        .max(0.1);
    let root = SVGBackend::new(path, (720, 400)).into_drawing_area();
    let _ = root.fill(&WHITE);
    let mut chart = match ChartBuilder::on(&root)
        .caption("fan-out latency by percentile (ms)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(0f64..100f64, 0f64..max * 1.1)
    {
        Ok(chart) => chart,
        Err(_) => return false,
    };
    let _ = chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency, ms")
        .draw();
    let colors = [
        RGBColor(47, 111, 237),
        RGBColor(196, 106, 0),
        RGBColor(26, 143, 76),
    ];
    for (i, (server, curve)) in curves.iter().enumerate() {
        let color = colors[i % colors.len()];
        if let Ok(series) = chart.draw_series(LineSeries::new(
            curve
                .iter()
                .enumerate()
                .take(100)
                .map(|(p, v)| (p as f64, *v)),
            color.stroke_width(2),
        )) {
            series.label(server.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    let _ = chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw();
    root.present().is_ok()
}
