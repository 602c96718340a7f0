//! The standalone server: binds first (so a test can ask for port 0 and read the port back),
//! then serves the push endpoints, the console, the manual, health and metrics, and shuts down
//! gracefully on SIGTERM / SIGINT.
//!
//! It is assembled from actix-web's parts (actix-server, actix-http's `HttpService`, the `App`)
//! the way actix-web's `HttpServer` assembles them, so that it can add what `HttpServer` cannot:
//! an upgrade service, through which a WebSocket connection leaves actix-http and its buffers
//! ([`crate::http::ws::upgrade`]).

use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions, Server, ServerHandle};
use actix_web::middleware::DefaultHeaders;
use actix_web::rt::net::TcpStream;
use actix_web::{web, App};

use crate::cluster::{new_node_id, Cluster, ClusterConfig, RelayConfig};
use crate::config::{ApiAuth, Config, Switch};
use crate::http::operator::{self, Exposure, Listener};
use crate::http::{self, client_lib, console, docs, openapi};
use crate::hub::Hub;
use crate::redis_endpoint::RedisEndpoint;
use crate::store::SystemStore;
use crate::webhooks::outbox::Outbox;

pub struct Application {
    port: u16,
    internal_port: Option<u16>,
    server: Server,
    hub: Hub,
}

impl Application {
    /// Binds the listener, connects to Redis in cluster mode and prepares the registry; the
    /// server runs once [`run_until_stopped`](Self::run_until_stopped) is awaited. Call inside
    /// an actix system.
    pub async fn build(mut config: Config) -> std::io::Result<Application> {
        config
            .validate()
            .map_err(|msg| std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))?;
        let listener = TcpListener::bind((config.host.as_str(), config.port))?;
        let address = listener.local_addr()?;
        let internal = match config.internal_port {
            Some(port) => Some(TcpListener::bind((config.internal_host.as_str(), port))?),
            None => None,
        };
        let exposure = web::Data::new(Exposure {
            internal_port: internal
                .as_ref()
                .map(|listener| listener.local_addr().map(|a| a.port()))
                .transpose()?,
            console: config.console == Switch::On,
        });
        let (events, events_rx) = match config.redis_url {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        // One node keeps its systems in its store; a cluster keeps them in Redis.
        let store = match (&config.redis_url, config.store_dir()) {
            (None, Some(dir)) => {
                let store = SystemStore::open(dir).map_err(std::io::Error::other)?;
                log::info!(
                    "registered systems are kept in {}",
                    store.path().unwrap_or(dir).display()
                );
                store
            }
            (None, None) => {
                log::info!("--ephemeral: registered systems are kept in memory only");
                SystemStore::ephemeral()
            }
            (Some(_), dir) => {
                warn_of_systems_left_behind(dir);
                SystemStore::ephemeral()
            }
        };
        let node_id = new_node_id();
        // Pending webhook events: beside the systems on one node, in Redis in a cluster (where
        // another node takes them over if this one dies).
        let parse = |url: &str| {
            RedisEndpoint::parse(url)
                .map(std::sync::Arc::new)
                .map_err(|err| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("--redis-url: {err}"),
                    )
                })
        };
        let endpoint = config.redis_url.as_deref().map(parse).transpose()?;
        let outbox = match (&config.redis_url, config.store_dir()) {
            // An endpoint of its own: its connections live on the delivery thread's runtime.
            (Some(url), _) => {
                let endpoint = parse(url)?;
                let prefix = endpoint.key_prefix(&config.redis_prefix);
                Outbox::redis(endpoint, &prefix, &node_id)
            }
            (None, Some(dir)) => Outbox::open(dir).map_err(std::io::Error::other)?,
            (None, None) => Outbox::memory(),
        };
        let (parts, registry) = Hub::assemble(&config, events.clone(), store, outbox)?;
        let hub = match (&endpoint, events, events_rx) {
            (Some(endpoint), Some(events), Some(events_rx)) => {
                let cluster_config = ClusterConfig {
                    endpoint: endpoint.clone(),
                    prefix: config.redis_prefix.clone(),
                    presence_grace: config.presence_grace,
                };
                let cluster = Cluster::start(
                    &cluster_config,
                    node_id,
                    (parts.registry.clone(), crate::ops::decode_command),
                    (events, events_rx),
                    (parts.outward.clone(), parts.webhooks.clone()),
                    RelayConfig {
                        max_outbound_queue: config.limits.max_outbound_queue,
                        recovery_buffer: config.recovery.buffer,
                        metrics: parts.metrics.clone(),
                        gate: parts.gate.clone(),
                    },
                )
                .await
                .map_err(|err| {
                    let at = endpoint.describe();
                    std::io::Error::other(format!("cannot reach Redis at {at}: {err}"))
                })?;
                parts.into_hub(cluster.clone(), cluster)
            }
            _ => parts.alone(),
        };
        hub.start_bridges();
        // Where the registry runs. actix-web has no per-worker start hook: the app factory below
        // is the only code of ours each HTTP worker runs on its own thread before it serves. So
        // the registry (and the group actors it starts) is started there, by the first worker
        // to build its App. With one worker (one CPU, as the benchmarks run) the REST handlers,
        // the registry, the groups and the sessions then share a thread and a REST call never
        // crosses threads (unicast 22k -> 36k req/s, fan-out p99 35 -> 14 ms: BENCHMARKS.md).
        let registry = registry.on_first_worker();
        // Rendered once here, not per request.
        let manual = web::Data::new(docs::Manual::render());

        let internal_port = exposure.internal_port;
        let app_hub = hub.clone();
        let app = move |listener: Listener| {
            registry.start_if_first();
            App::new()
                .app_data(web::Data::new(listener))
                // No page of wshub's is meant to be framed (clickjacking the console).
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Content-Security-Policy", "frame-ancestors 'none'")),
                )
                .configure(http::configure(app_hub.clone()))
                .app_data(manual.clone())
                .app_data(exposure.clone())
                .service(page("/", console::index))
                .service(page("/static/console.js", console::script))
                .service(page("/static/console.css", console::stylesheet))
                .service(page("/favicon.ico", console::favicon))
                .service(page("/wshub.js", client_lib::script))
                .service(page("/wshub.d.ts", client_lib::types))
                .service(page("/openapi.json", openapi::openapi_json))
                .service(page("/docs", docs::docs))
                .service(page("/socket.md", docs::socket_md))
                .service(page("/healthz", operator::healthz))
                .service(page("/metrics", operator::metrics))
                .default_service(web::to(operator::unknown_route))
        };
        let mut server = actix_server::Server::build()
            // Signals are handled in `run_until_stopped`, which closes the clients first.
            .disable_signals()
            .shutdown_timeout(config.shutdown_grace.as_secs().max(1));
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        let listeners = std::iter::once(listener).chain(internal);
        for listener in listeners {
            let local = listener.local_addr()?;
            let listener_role = if Some(local.port()) == internal_port {
                log::info!("/healthz and /metrics on http://{local} only");
                Listener::Internal
            } else {
                Listener::Public
            };
            // What actix-web's `HttpServer` builds for each listener (its defaults), with one
            // addition: requests that ask for a WebSocket upgrade go to `ws::upgrade` with their
            // connection, which then holds no actix-http buffers. (`HttpServer` has no way to
            // add an upgrade service.)
            let (app, hub, shutdown) =
                (app.clone(), hub.clone(), server.graceful_shutdown_signal());
            server = server.listen(format!("wshub-{local}"), listener, move || {
                let (shutdown, hub) = (shutdown.clone(), hub.clone());
                let app = app(listener_role)
                    .into_factory()
                    .map_err(|err: actix_web::Error| err.error_response());
                // actix-web's own server makes this with the listener's address (a
                // crate-private constructor); nothing here reads it: the listener's role is
                // app data, and the Host header names the server.
                let app_config = AppConfig::default();
                HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let shutdown = shutdown.clone();
                        async move { shutdown.notified().await }
                    })
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .local_addr(local)
                    .on_connect_ext(|io: &TcpStream, data: &mut Extensions| {
                        http::ws::on_connect(io, data)
                    })
                    .upgrade(fn_service(move |(req, framed)| {
                        http::ws::upgrade(hub.clone(), req, framed)
                    }))
                    .finish(map_config(app, move |_| app_config.clone()))
                    .tcp()
            })?;
        }
        let server = server.run();

        match config.api_auth {
            ApiAuth::Jwt => log::info!("wshub listening on http://{address} (API auth: jwt)"),
            ApiAuth::None => {
                log::info!("wshub listening on http://{address} (API auth: none)");
                log::warn!(
                    "API authentication is OFF (--api-auth none): anyone who can reach \
                     http://{address}/api can register systems and push to every client"
                );
            }
        }
        if config.console == Switch::On {
            log::info!("console: http://{address}/");
        }
        if internal_port.is_none() {
            log::info!("/healthz and /metrics on http://{address} (--internal-port moves them)");
        }
        log::info!(
            "manual: http://{address}/docs · REST: http://{address}/api/<method> (OpenAPI: \
             http://{address}/openapi.json) · WebSocket: ws://{address}/ws?systemId=..."
        );
        if let Some(token) = hub.generated_admin_token() {
            log::warn!(
                "no --jwt-secret / WSHUB_JWT_SECRET set: using a random secret, so tokens die \
                 with this process. Admin token, valid 24 h:\n\n    {token}\n"
            );
        }

        Ok(Application {
            port: address.port(),
            internal_port,
            server,
            hub,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `--internal-port`, as bound.
    pub fn internal_port(&self) -> Option<u16> {
        self.internal_port
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stops the server when called (`stop(true)` waits for in-flight requests).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped. On SIGTERM or SIGINT: new REST calls get 503, every client gets
    /// close 1001, the listener closes, in-flight calls are answered, and the future completes
    /// within the shutdown grace period.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let hub = self.hub.clone();
        let (finished, finishing) = tokio::sync::oneshot::channel();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            graceful_shutdown(&hub, &handle).await;
            let _ = finished.send(());
        });
        let served = self.server.await;
        // Stopped by a signal: the webhook events still being delivered get their share of the
        // grace before the process ends.
        if self.hub.is_shutting_down() {
            let _ = finishing.await;
        }
        served
    }
}

/// A page served for GET, and for HEAD as GET without its body.
fn page<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}

/// The longest the listener stays open after shutdown begins; see [`graceful_shutdown`].
const DRAIN_BEFORE_CLOSE: Duration = Duration::from_millis(500);

/// Closes every client with 1001, drains, then stops the server gracefully (in-flight calls
/// finish, the rest is cut at the grace period).
///
/// Why the drain: once shutdown begins every REST answer carries `Connection: close`. When the
/// server stops, actix closes each kept-alive connection that is idle at that instant, and a
/// call the backend writes on it at the same instant finds it closed. Keeping the listener open
/// a moment first lets every connection in use take one more call, answered 503 with
/// `Connection: close`, so a busy backend reconnects and is refused instead of cut off.
///
/// Webhook events queued by then (the shutdown's own `client_offline` included) are delivered
/// meanwhile, within the same grace; how many could not be is logged.
pub async fn graceful_shutdown(hub: &Hub, handle: &ServerHandle) {
    let grace = hub.config.shutdown_grace;
    let deadline = std::time::Instant::now() + grace;
    let closed = hub.shut_down_clients().await;
    log::info!("shutting down: closed {closed} clients with 1001");
    actix_web::rt::time::sleep(DRAIN_BEFORE_CLOSE.min(grace / 4)).await;
    let webhooks = hub.webhooks.clone();
    let delivering = webhooks.drain(deadline.saturating_duration_since(std::time::Instant::now()));
    let (lost, ()) = futures_util::future::join(delivering, handle.stop(true)).await;
    if lost > 0 && webhooks.is_durable() {
        log::info!(
            "shutting down: {lost} webhook events not delivered within --shutdown-grace \
             ({grace:?}) are kept in the outbox and go out after the next start (in a \
             cluster, from the node that takes this one's over)"
        );
    } else if lost > 0 {
        log::warn!(
            "shutting down: {lost} webhook events were not delivered within --shutdown-grace \
             ({grace:?}) and are lost"
        );
    }
}

async fn shutdown_signal() {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                log::error!("cannot listen for SIGTERM: {err}");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(err) = actix_web::rt::signal::ctrl_c().await {
            log::error!("cannot listen for SIGINT: {err}");
            std::future::pending::<()>().await;
        }
    };
    futures_util::future::select(Box::pin(terminate), Box::pin(interrupt)).await;
    log::info!("signal received: shutting down gracefully");
}

/// A cluster node does not read the data directory: systems registered while it ran as a single
/// node would silently be "not registered" now. Say so, and how to bring them along.
fn warn_of_systems_left_behind(dir: Option<&std::path::Path>) {
    let Some(dir) = dir else { return };
    let store = dir.join(crate::store::STORE_FILE);
    if store.exists() {
        log::warn!(
            "cluster mode reads registered systems from Redis only, not from {}; to keep the \
             systems a single node registered there, run `wshub import --data-dir {} \
             --redis-url <this node's --redis-url>` (and its --redis-prefix) once",
            store.display(),
            dir.display()
        );
    }
}
