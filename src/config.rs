//! Configuration: every setting in one place, from flags with environment fallbacks.
//!
//! [`Cli`] is what `wshub --help` shows; [`Config`] is what the library runs on, so tests and
//! embedding applications build a `Config` directly (`Config::default()` plus overrides).

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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: 7800,
            jwt_secret: None,
            api_auth: ApiAuth::Jwt,
            workers: 0,
            ping_interval: Duration::from_secs(25),
            client_timeout: Duration::from_secs(60),
            max_frame_size: 8 * 1024,
            max_body_size: 1024 * 1024,
        }
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
        }
    }
}
