//! Why this file is long: every flag, with its environment variable, default and help text,
//! and the settings it becomes, live in this one module, so that what an operator can set is
//! read (and changed) in one place.
//!
//! Configuration: every setting in one place, from flags with environment fallbacks.
//!
//! Each setting is written once: a field of [`Config`] (or of a group it flattens: [`Limits`],
//! [`OverloadGate`], [`WebhookConfig`], [`RecoveryConfig`]) carries its flag, its environment
//! variable, its default, its help text and its type, parsed into what the server uses (seconds
//! into a `Duration`, counts that must be at least 1 checked at the edge). [`Cli`] is what
//! `wshub --help` shows; the library runs on the same `Config`, so tests and embedding
//! applications build one directly (`Config::default()`, the flags' defaults, plus overrides).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// How the REST API authenticates backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApiAuth {
    /// `Authorization: Bearer <HS256 JWT>` on every call.
    Jwt,
    /// No authentication, for legacy SDKs on a trusted network only.
    None,
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// How WebSocket clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuth {
    /// Any client may connect to a registered system.
    None,
    /// `/ws?token=<JWT>` with a `systemId` claim equal to the requested system.
    Jwt,
}

/// Size limits on what clients and backends send, and on connections.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest `data` in a push, in bytes of JSON (413 over it).
    #[arg(long, env = "WSHUB_MAX_DATA_SIZE", default_value_t = 64 * 1024)]
    pub max_data_size: usize,
    /// Most clientIds in one send_to_clients (400 over it).
    #[arg(long, env = "WSHUB_MAX_CLIENT_IDS", default_value_t = 1000)]
    pub max_client_ids: usize,
    /// Longest systemId, in bytes (400, or -1001 on /ws).
    #[arg(long, env = "WSHUB_MAX_SYSTEM_ID_LEN", default_value_t = 128)]
    pub max_system_id_len: usize,
    /// Longest groupName, in bytes (400).
    #[arg(long, env = "WSHUB_MAX_GROUP_NAME_LEN", default_value_t = 128)]
    pub max_group_name_len: usize,
    /// Longest userId and sendUserId, in bytes (400).
    #[arg(long, env = "WSHUB_MAX_USER_ID_LEN", default_value_t = 128)]
    pub max_user_id_len: usize,
    /// Longest extend, in bytes (400).
    #[arg(long, env = "WSHUB_MAX_EXTEND_LEN", default_value_t = 4096)]
    pub max_extend_len: usize,
    /// Most groups one client may be in (400 on the bind over it).
    #[arg(long, env = "WSHUB_MAX_GROUPS_PER_CLIENT", default_value_t = 100)]
    pub max_groups_per_client: usize,
    /// Most clients in one group (400 on the bind over it) [default: unlimited].
    #[arg(long, env = "WSHUB_MAX_CLIENTS_PER_GROUP")]
    pub max_clients_per_group: Option<usize>,
    /// Most WebSocket connections in all (503 on the handshake over it) [default: the
    /// open-file limit less 512].
    #[arg(long, env = "WSHUB_MAX_CONNECTIONS", default_value_t = default_max_connections(),
        hide_default_value = true)]
    pub max_connections: usize,
    /// Most WebSocket connections per system (503 on the handshake over it) [default:
    /// unlimited].
    #[arg(long, env = "WSHUB_MAX_CONNECTIONS_PER_SYSTEM")]
    pub max_connections_per_system: Option<usize>,
    /// Bytes of frames that may wait for one client before it is closed with 4008.
    #[arg(long, env = "WSHUB_MAX_OUTBOUND_QUEUE", default_value_t = 1024 * 1024)]
    pub max_outbound_queue: usize,
    /// Largest frame a push may encode to, all fields included (413 over it); at most
    /// --max-outbound-queue, so any accepted frame fits an empty queue.
    #[arg(long, env = "WSHUB_MAX_PUSH_SIZE", default_value_t = 256 * 1024)]
    pub max_push_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Config::default().limits
    }
}

/// Descriptors kept free for the listener, REST connections, Redis and logs.
const RESERVED_DESCRIPTORS: u64 = 512;

/// The process's soft open-file limit less a reserve: each connection holds one descriptor, and
/// refusing at the handshake beats failing in `accept`.
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    if !ok || limit.rlim_cur == libc::RLIM_INFINITY {
        return 1_000_000;
    }
    let soft = limit.rlim_cur;
    soft.saturating_sub(RESERVED_DESCRIPTORS).max(soft / 2) as usize
}

/// Webhook delivery.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Seconds a webhook endpoint gets to answer a batch with a 2xx.
    #[arg(id = "webhook_timeout", value_name = "WEBHOOK_TIMEOUT", long = "webhook-timeout", env = "WSHUB_WEBHOOK_TIMEOUT",
        default_value = "5", value_parser = positive_seconds)]
    pub timeout: Duration,
    /// Seconds a batch is retried (backing off from 1 s to 60 s) before it is dropped.
    #[arg(id = "webhook_retry_for", value_name = "WEBHOOK_RETRY_FOR", long = "webhook-retry-for", env = "WSHUB_WEBHOOK_RETRY_FOR",
        default_value = "600", value_parser = positive_seconds)]
    pub retry_for: Duration,
    /// Most webhook events waiting per system; past it the oldest are dropped (and reported).
    #[arg(id = "webhook_queue", value_name = "WEBHOOK_QUEUE", long = "webhook-queue", env = "WSHUB_WEBHOOK_QUEUE",
        default_value_t = 10_000, value_parser = at_least_one)]
    pub queue: usize,
    /// Most bytes of webhook events waiting per system, as sent; past it the oldest are
    /// dropped (and reported).
    #[arg(id = "webhook_queue_bytes", value_name = "WEBHOOK_QUEUE_BYTES", long = "webhook-queue-bytes",
        env = "WSHUB_WEBHOOK_QUEUE_BYTES", default_value_t = 16 * 1024 * 1024,
        value_parser = at_least_one)]
    pub queue_bytes: usize,
    /// Refuse webhook URLs that lead to loopback, private or link-local addresses.
    #[arg(
        id = "webhook_deny_private",
        value_name = "WEBHOOK_DENY_PRIVATE",
        long = "webhook-deny-private",
        env = "WSHUB_WEBHOOK_DENY_PRIVATE"
    )]
    pub deny_private: bool,
}

/// The MQTT bridge, as [`Config::mqtt`] makes it from `--mqtt-url` and `--mqtt-prefix`.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub url: String,
    pub prefix: String,
    /// A stable client id: the broker keeps the bridge's session across its restarts.
    pub client_id: Option<String>,
}

/// When a send waits for delivery to catch up, and for how long (see
/// [`crate::actors::wakeups`]).
#[derive(Debug, Clone, Copy, PartialEq, Args)]
pub struct OverloadGate {
    /// Seconds delivery may be behind the sends (the oldest waiting client's wait) before a send
    /// waits for it to catch up. A pass over 10,000 sessions with frames waiting takes tens of
    /// milliseconds; a lag several times that is overload.
    #[arg(id = "overload_lag", value_name = "OVERLOAD_LAG", long = "overload-lag", env = "WSHUB_OVERLOAD_LAG",
        default_value = "0.25", value_parser = positive_seconds)]
    pub lag: Duration,
    /// Seconds a send waits for delivery to catch up before it is refused with 503.
    #[arg(id = "overload_wait", value_name = "OVERLOAD_WAIT", long = "overload-wait", env = "WSHUB_OVERLOAD_WAIT",
        default_value = "5", value_parser = positive_seconds)]
    pub wait: Duration,
}

/// Connection state recovery.
#[derive(Debug, Clone, Copy, Args)]
pub struct RecoveryConfig {
    /// Seconds a client that asked for recovery (/ws?recovery=1) and lost its connection may
    /// resume as itself, with its groups and the frames it missed; 0 turns recovery off
    /// (clients asking for it get a plain session).
    #[arg(id = "recovery_window", value_name = "RECOVERY_WINDOW", long = "recovery-window", env = "WSHUB_RECOVERY_WINDOW",
        default_value = "120", value_parser = seconds)]
    pub window: Duration,
    /// Bytes of frames kept for one recovery client; an absent client past it goes offline.
    #[arg(id = "recovery_buffer", value_name = "RECOVERY_BUFFER", long = "recovery-buffer", env = "WSHUB_RECOVERY_BUFFER",
        default_value_t = 1024 * 1024, value_parser = at_least_one)]
    pub buffer: usize,
    /// Bytes all away recovery clients may hold together (their kept frames, counted with what
    /// keeping each costs); past it the clients away longest go offline (recovery_expired).
    #[arg(id = "recovery_away_bytes", value_name = "RECOVERY_AWAY_BYTES", long = "recovery-away-bytes",
        env = "WSHUB_RECOVERY_AWAY_BYTES", default_value_t = 64 * 1024 * 1024,
        value_parser = at_least_one)]
    pub away_bytes: usize,
}

impl RecoveryConfig {
    /// The window, if recovery is on.
    pub fn window(&self) -> Option<Duration> {
        (!self.window.is_zero()).then_some(self.window)
    }
}

/// The settings the server runs with: every flag of `wshub` (see `wshub --help`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "WSHUB_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "WSHUB_PORT", default_value_t = 7800)]
    pub port: u16,
    /// HS256 secret for API tokens. Without it a random secret is made at start and an admin
    /// token valid for 24 h is logged.
    #[arg(long, env = "WSHUB_JWT_SECRET", hide_env_values = true, value_parser = non_empty)]
    pub jwt_secret: Option<String>,
    /// REST authentication: jwt, or none (legacy SDKs on a trusted network only).
    #[arg(long, env = "WSHUB_API_AUTH", value_enum, default_value = "jwt")]
    pub api_auth: ApiAuth,
    /// HTTP worker threads (0: one per CPU).
    #[arg(long, env = "WSHUB_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Seconds between the server's pings to each client (fractions allowed).
    #[arg(long, env = "WSHUB_PING_INTERVAL", default_value = "25", value_parser = positive_seconds)]
    pub ping_interval: Duration,
    /// Seconds of silence (no pong, no frame) after which a client is dropped as offline.
    #[arg(long, env = "WSHUB_CLIENT_TIMEOUT", default_value = "60", value_parser = positive_seconds)]
    pub client_timeout: Duration,
    /// Largest frame accepted from a client, in bytes (close 1009 over it).
    #[arg(long, env = "WSHUB_MAX_FRAME_SIZE", default_value_t = 8 * 1024)]
    pub max_frame_size: usize,
    /// Largest REST request body, in bytes (413 over it).
    #[arg(long, env = "WSHUB_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    pub max_body_size: usize,
    #[command(flatten)]
    pub limits: Limits,
    /// WebSocket client authentication: none, or jwt (/ws?token=TOKEN, a JWT with a systemId claim).
    #[arg(long, env = "WSHUB_CLIENT_AUTH", value_enum, default_value = "none")]
    pub client_auth: ClientAuth,
    /// Seconds that clients and in-flight calls get on SIGTERM/SIGINT before the process exits.
    #[arg(long, env = "WSHUB_SHUTDOWN_GRACE", default_value = "10", value_parser = positive_seconds)]
    pub shutdown_grace: Duration,
    /// Seconds a client the server closed (a slow consumer's 4008, any close, a heartbeat
    /// timeout) gets to read its last frames before its socket is shut.
    #[arg(long, env = "WSHUB_SLOW_CLOSE_GRACE", default_value = "2", value_parser = positive_seconds)]
    pub slow_close_grace: Duration,
    #[command(flatten)]
    pub overload: OverloadGate,
    /// Cluster mode: redis://HOST:PORT/DB shared by every node,
    /// redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER-NAME, or
    /// redis+cluster://HOST:PORT[,HOST:PORT...] [default: single node, no Redis].
    #[arg(long, env = "WSHUB_REDIS_URL", value_parser = non_empty)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so several clusters can share one Redis.
    #[arg(long, env = "WSHUB_REDIS_PREFIX", default_value = "wshub:")]
    pub redis_prefix: String,
    /// Single node: directory of the stores that keep registered systems, their settings and
    /// pending webhook events across restarts (created if missing; one process per directory).
    #[arg(long, env = "WSHUB_DATA_DIR", default_value = "wshub-data")]
    pub data_dir: std::path::PathBuf,
    /// Keep registered systems and pending webhook events in memory only: they are gone when the
    /// process stops (one node; a cluster keeps both in Redis).
    #[arg(long, env = "WSHUB_EPHEMERAL")]
    pub ephemeral: bool,
    #[command(flatten)]
    pub webhooks: WebhookConfig,
    /// Serve /healthz and /metrics on this port only (404 on the public port) [default: on the
    /// public port].
    #[arg(long, env = "WSHUB_INTERNAL_PORT")]
    pub internal_port: Option<u16>,
    /// Address of --internal-port.
    #[arg(long, env = "WSHUB_INTERNAL_HOST", default_value = "127.0.0.1")]
    pub internal_host: String,
    /// The browser console at /: on, or off (404; the API and /docs stay).
    #[arg(long, env = "WSHUB_CONSOLE", value_enum, default_value = "on")]
    pub console: Switch,
    /// MQTT bridge: mqtt://HOST:PORT of the broker, or mqtt://USER:PASS@HOST:PORT [default: no
    /// bridge].
    #[arg(long, env = "WSHUB_MQTT_URL", value_parser = non_empty)]
    pub mqtt_url: Option<String>,
    /// Topic prefix of the MQTT bridge.
    #[arg(long, env = "WSHUB_MQTT_PREFIX", default_value = "wshub/")]
    pub mqtt_prefix: String,
    /// The bridge's MQTT client id, one per node, the same across its restarts: the broker then
    /// keeps its session (an hour), and QoS 1 publishes not yet pushed when the node stopped or
    /// crashed are delivered to it again [default: a new id each start, no session kept].
    #[arg(long, env = "WSHUB_MQTT_CLIENT_ID", value_parser = non_empty)]
    pub mqtt_client_id: Option<String>,
    /// Data frames a client may send per second, on average (4029 over it).
    #[arg(long, env = "WSHUB_CLIENT_MESSAGE_RATE", default_value_t = 10.0, value_parser = positive_rate)]
    pub client_message_rate: f64,
    /// Data frames a client may send at once, above the rate.
    #[arg(long, env = "WSHUB_CLIENT_MESSAGE_BURST", default_value_t = 20,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub client_message_burst: u32,
    /// Comma-separated browser origins (scheme://host, with :port if not the default) allowed
    /// to open /ws [default: any]; with --api-auth none, the only origins allowed to call /api
    /// [default: none].
    #[arg(long, env = "WSHUB_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = list_item)]
    pub allowed_origins: Vec<String>,
    /// Comma-separated host names that /api answers with --api-auth none, besides IP
    /// addresses and localhost (against DNS rebinding).
    #[arg(long, env = "WSHUB_ALLOWED_HOSTS", value_delimiter = ',', value_parser = list_item)]
    pub allowed_hosts: Vec<String>,
    #[command(flatten)]
    pub recovery: RecoveryConfig,
    /// Seconds a user whose last connection left (or was cut) still counts as online, so a page
    /// reload or a resume fires no user_offline (and, with presence "user", no 1002).
    #[arg(long, env = "WSHUB_PRESENCE_GRACE", default_value = "5", value_parser = seconds)]
    pub presence_grace: Duration,
}

impl Default for Config {
    /// The defaults `wshub --help` shows, but `--ephemeral`: an embedding application or a test
    /// names its data directory. This parses `wshub --ephemeral` with the environment fallbacks
    /// switched off.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None::<&str>));
        let parsed = command
            .try_get_matches_from(["wshub", "--ephemeral"])
            .and_then(|matches| Config::from_arg_matches(&matches));
        match parsed {
            Ok(config) => config,
            // The flags' own defaults always parse; a failure here is a bug in this file.
            Err(err) => unreachable!("the flags' defaults do not parse: {err}"),
        }
    }
}

impl Config {
    /// Where registered systems are kept across restarts (single node); `None` with
    /// `--ephemeral`.
    pub fn store_dir(&self) -> Option<&std::path::Path> {
        (!self.ephemeral).then_some(self.data_dir.as_path())
    }

    /// The MQTT bridge, if `--mqtt-url` names a broker.
    pub fn mqtt(&self) -> Option<MqttConfig> {
        self.mqtt_url
            .clone()
            .filter(|url| !url.is_empty())
            .map(|url| MqttConfig {
                url,
                prefix: self.mqtt_prefix.clone(),
                client_id: self.mqtt_client_id.clone(),
            })
    }

    /// Checks settings that only make sense together, before anything starts. Fixes what can
    /// be fixed safely (a `max_connections` above what the open-file limit allows is clamped,
    /// with a warning, since connections over it would hang in `accept` instead of getting
    /// 503; empty items of a comma-separated list are dropped) and refuses the rest with a
    /// message naming the flags.
    pub fn validate(&mut self) -> Result<(), String> {
        self.allowed_origins.retain(|item| !item.is_empty());
        self.allowed_hosts.retain(|item| !item.is_empty());
        for unset_if_empty in [
            &mut self.jwt_secret,
            &mut self.redis_url,
            &mut self.mqtt_url,
        ] {
            if unset_if_empty.as_deref() == Some("") {
                *unset_if_empty = None;
            }
        }
        let limits = &mut self.limits;
        if limits.max_push_size > limits.max_outbound_queue {
            return Err(format!(
                "--max-push-size ({}) is larger than --max-outbound-queue ({}): a frame that size \
                 could never be queued for any client; lower the first or raise the second",
                limits.max_push_size, limits.max_outbound_queue
            ));
        }
        let allowed = default_max_connections();
        if limits.max_connections > allowed {
            log::warn!(
                "--max-connections {} is more than the open-file limit allows ({allowed}, the \
                 soft limit less {RESERVED_DESCRIPTORS} for listeners, REST and Redis): using \
                 {allowed}; raise `ulimit -n` to allow more",
                limits.max_connections
            );
            limits.max_connections = allowed;
        }
        Ok(())
    }
}

/// wshub: a WebSocket push server. Backends register systems, clients connect over WebSocket,
/// and backends bind them to groups and push messages over REST.
#[derive(Debug, Parser)]
#[command(
    name = "wshub",
    version,
    about,
    after_help = "Logging: RUST_LOG sets what is logged (default: info, with actix-server's \
                  start-up chatter at warn), e.g. RUST_LOG=debug or RUST_LOG=info,wshub=debug; \
                  RUST_LOG=info,wshub::access=off silences the line per REST call."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How log lines are written: text, or one JSON object per line (time, level, target,
    /// message and fields such as systemId, clientId, method, status, duration_ms).
    #[arg(
        long,
        env = "WSHUB_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: crate::logging::LogFormat,
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an API token signed with the configured secret (--jwt-secret / WSHUB_JWT_SECRET).
    Token(TokenArgs),
    /// Copy the systems a single node kept in --data-dir into a cluster's Redis (systems the
    /// cluster has already are skipped), before starting the cluster's nodes.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The single node's data directory (stop that node first: its store is locked while it
    /// runs).
    #[arg(long, env = "WSHUB_DATA_DIR", default_value = "wshub-data")]
    pub data_dir: std::path::PathBuf,
    /// The cluster's Redis, as its nodes are given it.
    #[arg(long, env = "WSHUB_REDIS_URL", value_parser = non_empty)]
    pub redis_url: String,
    /// The cluster's key prefix, as its nodes are given it.
    #[arg(long, env = "WSHUB_REDIS_PREFIX", default_value = "wshub:")]
    pub redis_prefix: String,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Scope the token to this system; without it the token is an admin token.
    #[arg(long = "system")]
    pub system: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
    /// HS256 secret the server uses.
    #[arg(long, env = "WSHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
}

/// An item of a comma-separated flag, trimmed (an empty one is dropped by
/// [`Config::validate`]).
fn list_item(s: &str) -> Result<String, String> {
    Ok(s.trim().trim_end_matches('/').to_owned())
}

/// A value whose empty form means "not set" (an empty environment variable is set, to clap):
/// [`Config::validate`] drops it.
fn non_empty(s: &str) -> Result<String, String> {
    Ok(s.to_owned())
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(format!("'{s}' is not a whole number of 1 or more")),
    }
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "'{s}' is not a positive number of frames per second"
        )),
    }
}

fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a number of seconds (0 or more)")),
    }
}

fn positive_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_defaults_are_the_flags_defaults() {
        let config = Config::default();
        assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 7800));
        assert_eq!(config.api_auth, ApiAuth::Jwt);
        assert_eq!(config.ping_interval, Duration::from_secs(25));
        assert_eq!(config.max_frame_size, 8 * 1024);
        assert_eq!(config.limits.max_push_size, 256 * 1024);
        assert_eq!(config.limits.max_connections, default_max_connections());
        assert_eq!(config.redis_url, None);
        assert_eq!(config.redis_prefix, "wshub:");
        assert_eq!(
            config.store_dir(),
            None,
            "the library keeps systems in memory unless told"
        );
        assert_eq!(config.recovery.window(), Some(Duration::from_secs(120)));
    }
}
