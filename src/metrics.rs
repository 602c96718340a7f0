//! Prometheus metrics, one set per [`Hub`](crate::Hub) (so several servers in one process, as in
//! the tests, keep separate counts), served at `GET /metrics` in the text format.

use crate::protocol::CloseReason;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// At most this many systems get their own `system` label on the connections gauge; the rest
/// are summed under `system="_other"`, so a tenant explosion cannot explode the series count.
pub const MAX_SYSTEM_LABELS: usize = 100;

pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections (all, including ones not yet admitted by the registry).
    pub connections: IntGauge,
    /// Registered clients per system, set at scrape time.
    pub connections_by_system: IntGaugeVec,
    /// Groups, set at scrape time.
    pub groups: IntGauge,
    /// REST sends accepted, by method.
    pub messages_pushed: IntCounterVec,
    /// Frames written to client sockets.
    pub frames_delivered: IntCounter,
    /// Frames not delivered because their client was slow or closing.
    pub frames_dropped: IntCounter,
    clients_closed: IntCounterVec,
    /// REST calls, by method and HTTP status.
    pub rest_requests: IntCounterVec,
    /// REST latency in seconds, by method.
    pub rest_latency: HistogramVec,
    /// Webhook requests, by result (`ok`, `refused`, `timeout`, `unreachable`).
    pub webhook_requests: IntCounterVec,
    /// Webhook requests that are tried again.
    pub webhook_retries: IntCounter,
    /// Webhook events lost to a full queue or to retries given up.
    pub webhook_events_dropped: IntCounter,
    /// Webhook events waiting, all systems together.
    pub webhook_queue_depth: IntGauge,
    /// Webhook events kept in the outbox (`--data-dir`) until acknowledged.
    pub webhook_events_stored: IntGauge,
    /// Age of the oldest webhook event not yet acknowledged, in seconds (0 when none).
    pub webhook_oldest_pending: Gauge,
    /// Frames from clients, of every kind, before any is refused.
    pub client_frames: IntCounter,
    /// MQTT messages bridged, by direction (`in`: broker to clients, `out`: events to broker).
    pub mqtt_messages: IntCounterVec,
    /// MQTT messages dropped, by direction.
    pub mqtt_dropped: IntCounterVec,
    /// 1 while the bridge is connected to its broker.
    pub mqtt_connected: IntGauge,
    /// Resumes tried, by result (`recovered`, or why not).
    pub resumes: IntCounterVec,
    /// Recovery clients whose connection is lost and whose window is open.
    pub clients_away: IntGauge,
    /// What away clients hold together (bounded by `--recovery-away-bytes`), set at scrape time.
    pub recovery_away_bytes: IntGauge,
    /// How far delivery is behind the sends, in seconds, set at scrape time.
    pub delivery_lag: Gauge,
    /// Sends that waited for delivery to catch up (REST and MQTT).
    pub sends_delayed: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        // Registration of fresh, uniquely named collectors into a fresh registry cannot fail.
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            let _ = r.register(Box::new(c.clone()));
            c
        }
        let gauge = |name: &str, help: &str| {
            reg(
                &registry,
                IntGauge::new(name, help).unwrap_or_else(|_| unreachable!()),
            )
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)
                    .unwrap_or_else(|_| unreachable!()),
            )
        };
        let counter = |name: &str, help: &str| {
            reg(
                &registry,
                IntCounter::new(name, help).unwrap_or_else(|_| unreachable!()),
            )
        };
        Metrics {
            connections: gauge("wshub_connections", "Open WebSocket connections."),
            connections_by_system: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "wshub_system_clients",
                        "Connected clients per system (the largest 100; the rest as _other).",
                    ),
                    &["system"],
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            groups: gauge("wshub_groups", "Groups with at least one member."),
            messages_pushed: counter_vec(
                "wshub_messages_pushed_total",
                "Messages accepted by the REST send methods.",
                &["method"],
            ),
            frames_delivered: counter(
                "wshub_frames_delivered_total",
                "Frames written to client connections (pushes and notices).",
            ),
            frames_dropped: counter(
                "wshub_frames_dropped_total",
                "Frames not delivered because the client was slow or closing.",
            ),
            clients_closed: counter_vec(
                "wshub_clients_closed_total",
                "Clients closed or dropped by the server, by reason.",
                &["reason"],
            ),
            rest_requests: counter_vec(
                "wshub_rest_requests_total",
                "REST calls by method and HTTP status.",
                &["method", "status"],
            ),
            rest_latency: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "wshub_rest_request_duration_seconds",
                        "REST call latency by method.",
                    )
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1.0,
                    ]),
                    &["method"],
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            webhook_requests: counter_vec(
                "wshub_webhook_requests_total",
                "Webhook requests by result: ok, refused (not 2xx), timeout, unreachable.",
                &["result"],
            ),
            webhook_retries: counter(
                "wshub_webhook_retries_total",
                "Webhook requests tried again after a failure.",
            ),
            webhook_events_dropped: counter(
                "wshub_webhook_events_dropped_total",
                "Webhook events lost to a full queue or to retries given up.",
            ),
            webhook_queue_depth: gauge(
                "wshub_webhook_queue_depth",
                "Webhook events waiting to be sent, all systems together.",
            ),
            webhook_events_stored: gauge(
                "wshub_webhook_events_stored",
                "Webhook events kept in the outbox on disk until their batch is acknowledged.",
            ),
            webhook_oldest_pending: reg(
                &registry,
                Gauge::new(
                    "wshub_webhook_oldest_pending_seconds",
                    "Age of the oldest webhook event not yet acknowledged (0 when none).",
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            client_frames: counter(
                "wshub_client_frames_total",
                "Frames received from clients, of every kind (data, control, fragments)."
            ),
            mqtt_messages: counter_vec(
                "wshub_mqtt_messages_total",
                "MQTT messages bridged: in (broker to clients), out (events the broker acknowledged).",
                &["direction"],
            ),
            mqtt_dropped: counter_vec(
                "wshub_mqtt_dropped_total",
                "MQTT messages dropped: in (bad topic or payload, unknown target), out (queue full, or refused).",
                &["direction"],
            ),
            mqtt_connected: gauge(
                "wshub_mqtt_connected",
                "1 while the MQTT bridge is connected to its broker.",
            ),
            resumes: counter_vec(
                "wshub_resumes_total",
                "Resumes tried, by result: recovered, invalid_token, expired, last_not_held, \
                 bound_passed, node_lost.",
                &["result"],
            ),
            clients_away: gauge(
                "wshub_clients_away",
                "Recovery clients whose connection is lost and whose window is open.",
            ),
            recovery_away_bytes: gauge(
                "wshub_recovery_away_bytes",
                "Bytes away recovery clients hold together (bounded by --recovery-away-bytes).",
            ),
            delivery_lag: reg(
                &registry,
                Gauge::new(
                    "wshub_delivery_lag_seconds",
                    "How long the oldest session with frames waiting has waited for its turn to \
                     write.",
                )
                .unwrap_or_else(|_| unreachable!()),
            ),
            sends_delayed: counter(
                "wshub_sends_delayed_total",
                "Sends that waited because delivery was behind (the server was overloaded).",
            ),
            registry,
        }
        .with_process_and_build_info()
    }

    /// Adds the process's own metrics (`process_resident_memory_bytes`, `process_open_fds`,
    /// `process_cpu_seconds_total`, ...) and `wshub_build_info{version} 1`.
    fn with_process_and_build_info(self) -> Metrics {
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = self.registry.register(Box::new(process));
        }
        if let Ok(info) = IntGaugeVec::new(
            Opts::new(
                "wshub_build_info",
                "The running build: always 1, its version in the label.",
            ),
            &["version"],
        ) {
            info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
            let _ = self.registry.register(Box::new(info));
        }
        self
    }

    pub fn client_closed(&self, reason: CloseReason) {
        self.clients_closed
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// Sets the per-system gauge from `(system, clients)` pairs, largest first.
    pub fn set_system_clients(&self, mut counts: Vec<(String, usize)>) {
        self.connections_by_system.reset();
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        let other: usize = counts.iter().skip(MAX_SYSTEM_LABELS).map(|c| c.1).sum();
        for (system, clients) in counts.iter().take(MAX_SYSTEM_LABELS) {
            self.connections_by_system
                .with_label_values(&[system.as_str()])
                .set(*clients as i64);
        }
        if counts.len() > MAX_SYSTEM_LABELS {
            self.connections_by_system
                .with_label_values(&["_other"])
                .set(other as i64);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
