//! Why this file is long: every flag, with its environment variable, default and help text,
//! and the settings it becomes, live in this one module, so that what an operator can set is
//! read (and changed) in one place.
//!
//! Configuration: every setting in one place, from flags with environment fallbacks.
//!
//! [`Cli`] is what `wshub --help` shows; [`Config`] is what the library runs on, so tests and
//! embedding applications build a `Config` directly (`Config::default()` plus overrides). Each
//! default is written once, on its flag in [`ServeArgs`]; `Config::default()` reads them there.

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

/// Size limits on what clients and backends send. Each is a flag; see `wshub --help`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `data` value in a push, in bytes of JSON (413 over it).
    pub max_data_size: usize,
    /// Most clientIds in one `send_to_clients` (400 over it).
    pub max_client_ids: usize,
    /// Longest `systemId`, in bytes (400, or −1001 on /ws).
    pub max_system_id_len: usize,
    /// Longest `groupName`, in bytes (400).
    pub max_group_name_len: usize,
    /// Longest `userId` (and `sendUserId`), in bytes (400).
    pub max_user_id_len: usize,
    /// Longest `extend`, in bytes (400).
    pub max_extend_len: usize,
    /// Most groups one client may be in (400 on the bind over it).
    pub max_groups_per_client: usize,
    /// Most clients in one group; `None`: unlimited (400 on the bind over it).
    pub max_clients_per_group: Option<usize>,
    /// Most WebSocket connections in all (503 on the handshake over it).
    pub max_connections: usize,
    /// Most WebSocket connections per system; `None`: unlimited (503 on the handshake over it).
    pub max_connections_per_system: Option<usize>,
    /// Bytes of frames that may wait for one client before it is closed as a slow consumer.
    pub max_outbound_queue: usize,
    /// Largest frame a push may encode to, all fields included (413 over it). Never more than
    /// `max_outbound_queue`, so any accepted frame fits an empty queue.
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

/// Webhook delivery settings, from the flags.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// A 2xx within this acknowledges a batch.
    pub timeout: Duration,
    /// How long a batch is retried before it is dropped.
    pub retry_for: Duration,
    /// Most events waiting per system; past it the oldest not in flight are dropped.
    pub queue: usize,
    /// Most bytes of events waiting per system (as serialized); past it, the same.
    pub queue_bytes: usize,
    /// Refuse URLs that resolve to loopback, private or link-local addresses.
    pub deny_private: bool,
}

/// The MQTT bridge: `--mqtt-url` and `--mqtt-prefix`.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub url: String,
    pub prefix: String,
}

/// When a send waits for delivery to catch up, and for how long: `--overload-lag` and
/// `--overload-wait` (see [`crate::actors::wakeups`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OverloadGate {
    /// Delivery lag over which sends wait. A pass over 10,000 sessions with frames waiting takes
    /// tens of milliseconds; a lag several times that is overload.
    pub lag: Duration,
    /// How long a send waits for the lag to come down before it is refused (503).
    pub wait: Duration,
}

/// Connection state recovery: `--recovery-window` and `--recovery-buffer`.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryConfig {
    /// How long a client that lost its connection may come back as itself; `None`: recovery is
    /// off (`--recovery-window 0`), clients asking for it get a plain session.
    pub window: Option<Duration>,
    /// Bytes of frames kept for one recovery client.
    pub buffer: usize,
    /// Bytes all away clients may hold together (`--recovery-away-bytes`); past it the
    /// longest-away go offline.
    pub away_bytes: usize,
}

/// The settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on; 0 picks a free one (tests).
    pub port: u16,
    /// HS256 secret for API tokens; `None` makes a random one at start.
    pub jwt_secret: Option<String>,
    /// REST authentication mode.
    pub api_auth: ApiAuth,
    /// HTTP worker threads; 0 means one per CPU.
    pub workers: usize,
    /// How often the server pings each client.
    pub ping_interval: Duration,
    /// A client that sends nothing (pong or any frame) for this long is dropped.
    pub client_timeout: Duration,
    /// Largest frame accepted from a client, in bytes (over it: close 1009).
    pub max_frame_size: usize,
    /// Largest REST body, in bytes (over it: 413).
    pub max_body_size: usize,
    /// Limits on input, groups and connections.
    pub limits: Limits,
    /// WebSocket client authentication.
    pub client_auth: ClientAuth,
    /// On SIGTERM/SIGINT: how long clients and in-flight calls get before the process exits.
    pub shutdown_grace: Duration,
    /// How long a client the server closed gets to read its last frames before its socket is
    /// shut.
    pub slow_close_grace: Duration,
    /// When sends wait for delivery to catch up, and when they are refused (503).
    pub overload: OverloadGate,
    /// Cluster mode: the Redis all nodes share; `None`: a single node that never touches Redis.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel.
    pub redis_prefix: String,
    /// Single node: the directory whose store keeps registered systems across restarts;
    /// `None` (`--ephemeral`): systems live as long as the process. Unused in cluster mode.
    pub data_dir: Option<std::path::PathBuf>,
    /// Webhook delivery.
    pub webhooks: WebhookConfig,
    /// Serve `/healthz` and `/metrics` on this port (of `internal_host`) only; `None`: on the
    /// public port. 0 picks a free one (tests).
    pub internal_port: Option<u16>,
    /// Address of the internal port.
    pub internal_host: String,
    /// Serve the console at `/`.
    pub console: bool,
    /// The MQTT bridge; `None`: no broker is touched.
    pub mqtt: Option<MqttConfig>,
    /// Data frames a client may send per second, on average.
    pub client_message_rate: f64,
    /// Data frames a client may send at once, above the rate.
    pub client_message_burst: u32,
    /// Browser origins allowed to open `/ws` (empty: any) and, with `--api-auth none`, to call
    /// `/api` (empty: none).
    pub allowed_origins: Vec<String>,
    /// With `--api-auth none`, `Host` names `/api` answers besides IP addresses and
    /// `localhost` (a defence against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Connection state recovery.
    pub recovery: RecoveryConfig,
}

impl Default for Config {
    /// The defaults `wshub --help` shows, but `--ephemeral`: an embedding application or a test
    /// names its data directory. The defaults are written once, on the flags below: this parses
    /// `wshub --ephemeral` with the environment fallbacks switched off.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None::<&str>));
        let parsed = command
            .try_get_matches_from(["wshub", "--ephemeral"])
            .and_then(|matches| ServeArgs::from_arg_matches(&matches));
        match parsed {
            Ok(args) => Config::from(args),
            // The flags' own defaults always parse; a failure here is a bug in this file.
            Err(err) => unreachable!("the flags' defaults do not parse: {err}"),
        }
    }
}

impl Config {
    /// Checks settings that only make sense together, before anything starts. Fixes what can
    /// be fixed safely (a `max_connections` above what the open-file limit allows is clamped,
    /// with a warning, since connections over it would hang in `accept` instead of getting
    /// 503) and refuses the rest with a message naming the flags.
    pub fn validate(&mut self) -> Result<(), String> {
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
#[command(name = "wshub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print an API token signed with the configured secret (--jwt-secret / WSHUB_JWT_SECRET).
    Token(TokenArgs),
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WSHUB_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "WSHUB_PORT", default_value_t = 7800)]
    pub port: u16,
    /// HS256 secret for API tokens. Without it a random secret is made at start and an admin
    /// token valid for 24 h is logged.
    #[arg(long, env = "WSHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// REST authentication: jwt, or none (legacy SDKs on a trusted network only).
    #[arg(long, env = "WSHUB_API_AUTH", value_enum, default_value = "jwt")]
    pub api_auth: ApiAuth,
    /// HTTP worker threads (0: one per CPU).
    #[arg(long, env = "WSHUB_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// Seconds between the server's pings to each client (fractions allowed).
    #[arg(long, env = "WSHUB_PING_INTERVAL", default_value_t = 25.0, value_parser = positive_seconds)]
    pub ping_interval: f64,
    /// Seconds of silence after which a client is dropped as offline (fractions allowed).
    #[arg(long, env = "WSHUB_CLIENT_TIMEOUT", default_value_t = 60.0, value_parser = positive_seconds)]
    pub client_timeout: f64,
    /// Largest frame accepted from a client, in bytes (close 1009 over it).
    #[arg(long, env = "WSHUB_MAX_FRAME_SIZE", default_value_t = 8 * 1024)]
    pub max_frame_size: usize,
    /// Largest REST request body, in bytes (413 over it).
    #[arg(long, env = "WSHUB_MAX_BODY_SIZE", default_value_t = 1024 * 1024)]
    pub max_body_size: usize,
    /// Largest `data` in a push, in bytes of JSON (413 over it).
    #[arg(long, env = "WSHUB_MAX_DATA_SIZE", default_value_t = 64 * 1024)]
    pub max_data_size: usize,
    /// Most clientIds in one send_to_clients (400 over it).
    #[arg(long, env = "WSHUB_MAX_CLIENT_IDS", default_value_t = 1000)]
    pub max_client_ids: usize,
    /// Longest systemId, in bytes.
    #[arg(long, env = "WSHUB_MAX_SYSTEM_ID_LEN", default_value_t = 128)]
    pub max_system_id_len: usize,
    /// Longest groupName, in bytes.
    #[arg(long, env = "WSHUB_MAX_GROUP_NAME_LEN", default_value_t = 128)]
    pub max_group_name_len: usize,
    /// Longest userId and sendUserId, in bytes.
    #[arg(long, env = "WSHUB_MAX_USER_ID_LEN", default_value_t = 128)]
    pub max_user_id_len: usize,
    /// Longest extend, in bytes.
    #[arg(long, env = "WSHUB_MAX_EXTEND_LEN", default_value_t = 4096)]
    pub max_extend_len: usize,
    /// Most groups one client may be in.
    #[arg(long, env = "WSHUB_MAX_GROUPS_PER_CLIENT", default_value_t = 100)]
    pub max_groups_per_client: usize,
    /// Most clients in one group [default: unlimited].
    #[arg(long, env = "WSHUB_MAX_CLIENTS_PER_GROUP")]
    pub max_clients_per_group: Option<usize>,
    /// Most WebSocket connections in all [default: the open-file limit less 512].
    #[arg(long, env = "WSHUB_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most WebSocket connections per system [default: unlimited].
    #[arg(long, env = "WSHUB_MAX_CONNECTIONS_PER_SYSTEM")]
    pub max_connections_per_system: Option<usize>,
    /// Bytes of frames that may wait for one client before it is closed with 4008.
    #[arg(long, env = "WSHUB_MAX_OUTBOUND_QUEUE", default_value_t = 1024 * 1024)]
    pub max_outbound_queue: usize,
    /// Largest frame a push may encode to, all fields included (413 over it); at most
    /// --max-outbound-queue.
    #[arg(long, env = "WSHUB_MAX_PUSH_SIZE", default_value_t = 256 * 1024)]
    pub max_push_size: usize,
    /// WebSocket client authentication: none, or jwt (/ws?token=TOKEN, a JWT with a systemId claim).
    #[arg(long, env = "WSHUB_CLIENT_AUTH", value_enum, default_value = "none")]
    pub client_auth: ClientAuth,
    /// Seconds that clients and in-flight calls get on SIGTERM/SIGINT before the process exits.
    #[arg(long, env = "WSHUB_SHUTDOWN_GRACE", default_value_t = 10.0, value_parser = positive_seconds)]
    pub shutdown_grace: f64,
    /// Seconds a client the server closed (a slow consumer's 4008, any close, a heartbeat
    /// timeout) gets to read its last frames before its socket is shut.
    #[arg(long, env = "WSHUB_SLOW_CLOSE_GRACE", default_value_t = 2.0, value_parser = positive_seconds)]
    pub slow_close_grace: f64,
    /// Seconds delivery may be behind the sends (the oldest waiting client's wait) before a send
    /// waits for it to catch up.
    #[arg(long, env = "WSHUB_OVERLOAD_LAG", default_value_t = 0.25, value_parser = positive_seconds)]
    pub overload_lag: f64,
    /// Seconds a send waits for delivery to catch up before it is refused with 503.
    #[arg(long, env = "WSHUB_OVERLOAD_WAIT", default_value_t = 5.0, value_parser = positive_seconds)]
    pub overload_wait: f64,
    /// Cluster mode: redis://HOST:PORT/DB shared by every node [default: single node, no Redis].
    #[arg(long, env = "WSHUB_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so several clusters can share one Redis.
    #[arg(long, env = "WSHUB_REDIS_PREFIX", default_value = "wshub:")]
    pub redis_prefix: String,
    /// Single node: directory of the store that keeps registered systems and their settings
    /// across restarts (created if missing; one process per directory).
    #[arg(long, env = "WSHUB_DATA_DIR", default_value = "wshub-data")]
    pub data_dir: std::path::PathBuf,
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
    /// MQTT bridge: mqtt://HOST:PORT of the broker, or mqtt://USER:PASS@HOST:PORT [default: no bridge].
    #[arg(long, env = "WSHUB_MQTT_URL")]
    pub mqtt_url: Option<String>,
    /// Topic prefix of the MQTT bridge.
    #[arg(long, env = "WSHUB_MQTT_PREFIX", default_value = "wshub/")]
    pub mqtt_prefix: String,
    /// Keep registered systems in memory only: they are gone when the process stops.
    #[arg(long, env = "WSHUB_EPHEMERAL")]
    pub ephemeral: bool,
    /// Seconds a webhook endpoint gets to answer a batch with a 2xx.
    #[arg(long, env = "WSHUB_WEBHOOK_TIMEOUT", default_value_t = 5.0, value_parser = positive_seconds)]
    pub webhook_timeout: f64,
    /// Seconds a batch is retried (backing off from 1 s to 60 s) before it is dropped.
    #[arg(long, env = "WSHUB_WEBHOOK_RETRY_FOR", default_value_t = 600.0, value_parser = positive_seconds)]
    pub webhook_retry_for: f64,
    /// Most webhook events waiting per system; past it the oldest are dropped (and reported).
    #[arg(long, env = "WSHUB_WEBHOOK_QUEUE", default_value_t = 10_000)]
    pub webhook_queue: usize,
    /// Most bytes of webhook events waiting per system, as sent; past it the oldest are
    /// dropped (and reported).
    #[arg(long, env = "WSHUB_WEBHOOK_QUEUE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub webhook_queue_bytes: usize,
    /// Refuse webhook URLs that lead to loopback, private or link-local addresses.
    #[arg(long, env = "WSHUB_WEBHOOK_DENY_PRIVATE")]
    pub webhook_deny_private: bool,
    /// Data frames a client may send per second, on average (4029 over it).
    #[arg(long, env = "WSHUB_CLIENT_MESSAGE_RATE", default_value_t = 10.0, value_parser = positive_rate)]
    pub client_message_rate: f64,
    /// Data frames a client may send at once, above the rate.
    #[arg(long, env = "WSHUB_CLIENT_MESSAGE_BURST", default_value_t = 20)]
    pub client_message_burst: u32,
    /// Comma-separated browser origins (scheme://host, with :port if not the default) allowed
    /// to open /ws [default: any]; with --api-auth none, the only origins allowed to call /api
    /// [default: none].
    #[arg(long, env = "WSHUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Comma-separated host names that /api answers with --api-auth none, besides IP
    /// addresses and localhost (against DNS rebinding).
    #[arg(long, env = "WSHUB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Seconds a client that asked for recovery (/ws?recovery=1) and lost its connection may
    /// resume as itself, with its groups and the frames it missed; 0 turns recovery off.
    #[arg(long, env = "WSHUB_RECOVERY_WINDOW", default_value_t = 120.0, value_parser = seconds)]
    pub recovery_window: f64,
    /// Bytes of frames kept for one recovery client; an absent client past it goes offline.
    #[arg(long, env = "WSHUB_RECOVERY_BUFFER", default_value_t = 1024 * 1024)]
    pub recovery_buffer: usize,
    /// Bytes all away recovery clients may hold together (their kept frames, counted with what
    /// keeping each costs); past it the clients away longest go offline (recovery_expired).
    #[arg(long, env = "WSHUB_RECOVERY_AWAY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub recovery_away_bytes: usize,
}

/// A comma-separated flag's items, trimmed, without empty ones.
fn clean_list(items: Vec<String>) -> Vec<String> {
    items
        .into_iter()
        .map(|item| item.trim().trim_end_matches('/').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "'{s}' is not a positive number of frames per second"
        )),
    }
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds (0 or more)")),
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Self {
        Config {
            host: args.host,
            port: args.port,
            jwt_secret: args.jwt_secret.filter(|s| !s.is_empty()),
            api_auth: args.api_auth,
            workers: args.workers,
            ping_interval: Duration::from_secs_f64(args.ping_interval),
            client_timeout: Duration::from_secs_f64(args.client_timeout),
            max_frame_size: args.max_frame_size,
            max_body_size: args.max_body_size,
            limits: Limits {
                max_data_size: args.max_data_size,
                max_client_ids: args.max_client_ids,
                max_system_id_len: args.max_system_id_len,
                max_group_name_len: args.max_group_name_len,
                max_user_id_len: args.max_user_id_len,
                max_extend_len: args.max_extend_len,
                max_groups_per_client: args.max_groups_per_client,
                max_clients_per_group: args.max_clients_per_group,
                max_connections: args.max_connections.unwrap_or_else(default_max_connections),
                max_connections_per_system: args.max_connections_per_system,
                max_outbound_queue: args.max_outbound_queue,
                max_push_size: args.max_push_size,
            },
            client_auth: args.client_auth,
            shutdown_grace: Duration::from_secs_f64(args.shutdown_grace),
            slow_close_grace: Duration::from_secs_f64(args.slow_close_grace),
            overload: OverloadGate {
                lag: Duration::from_secs_f64(args.overload_lag),
                wait: Duration::from_secs_f64(args.overload_wait),
            },
            redis_url: args.redis_url.filter(|s| !s.is_empty()),
            redis_prefix: args.redis_prefix,
            data_dir: (!args.ephemeral).then_some(args.data_dir),
            webhooks: WebhookConfig {
                timeout: Duration::from_secs_f64(args.webhook_timeout),
                retry_for: Duration::from_secs_f64(args.webhook_retry_for),
                queue: args.webhook_queue.max(1),
                queue_bytes: args.webhook_queue_bytes.max(1),
                deny_private: args.webhook_deny_private,
            },
            internal_port: args.internal_port,
            internal_host: args.internal_host,
            console: args.console == Switch::On,
            mqtt: args
                .mqtt_url
                .filter(|url| !url.is_empty())
                .map(|url| MqttConfig {
                    url,
                    prefix: args.mqtt_prefix,
                }),
            client_message_rate: args.client_message_rate,
            client_message_burst: args.client_message_burst.max(1),
            allowed_origins: clean_list(args.allowed_origins),
            allowed_hosts: clean_list(args.allowed_hosts),
            recovery: RecoveryConfig {
                window: (args.recovery_window > 0.0)
                    .then(|| Duration::from_secs_f64(args.recovery_window)),
                buffer: args.recovery_buffer.max(1),
                away_bytes: args.recovery_away_bytes.max(1),
            },
        }
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
            config.data_dir, None,
            "the library keeps systems in memory unless told"
        );
    }
}
