//! The [`Cluster`] handle: its shared state (who owns each field is said beside it), start-up,
//! and readiness: whether Redis still holds the generation of data this node was ready for.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use tokio::sync::{mpsc, oneshot};

use crate::actors::events::{Event, EventSink};
use crate::actors::outbox::{Outbox, SessionHandle};
use crate::actors::outward::Outward;
use crate::actors::registry::SystemRegistry;
use crate::backplane::Decoder;
use crate::error::ApiError;
use crate::redis_endpoint::{RedisConn, RedisEndpoint};
use crate::settings::SystemSettings;

use super::keys::Keys;

/// How often a node refreshes its liveness key.
pub(super) const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a liveness key lives: a node silent this long is dead.
pub(super) const NODE_TTL: Duration = Duration::from_secs(5);
/// How often each node looks for dead nodes to purge.
pub(super) const PURGE_EVERY: Duration = Duration::from_secs(2);
/// How long a request to another node may take.
pub(super) const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a handshake waits for this node to subscribe to a system's channel.
pub(super) const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);
/// After a new epoch is set by a node that reconnected, how long before any node may be
/// ready: every live node beats (and so is seen) within it.
pub(super) const SETTLE: Duration = Duration::from_millis(2500);
/// Heartbeat period while this node is not ready: recovery is noticed quickly.
pub(super) const NOT_READY_BEAT: Duration = Duration::from_millis(200);
/// Length of a node id (hex); client ids are the node id followed by 32 hex digits.
pub const NODE_ID_LEN: usize = 12;

/// Settings of cluster mode.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `--redis-url`, parsed.
    pub endpoint: Arc<RedisEndpoint>,
    /// Prefix of every key and channel, so several clusters can share one Redis.
    pub prefix: String,
    /// How long a user whose last connection left still counts as online.
    pub presence_grace: Duration,
}

/// A node's answer to another's request: the reply in its wire form (read by the caller as the
/// command's reply type), or the error itself. (Wire forms travel as strings: the messages are
/// internally tagged, which serde cannot do with raw JSON inside.)
pub(super) type NodeAnswer = Result<String, ApiError>;

/// The channel subscriptions a node wants and those Redis has confirmed.
#[derive(Default)]
pub(super) struct Subscriptions {
    /// Channel → how many holders want it ([`SystemLease`]s; the node channel holds one for
    /// good).
    pub(super) wanted: HashMap<String, usize>,
    /// Channels the pub/sub connection is subscribed to now. A channel leaves this set before
    /// its UNSUBSCRIBE is sent, so a holder that finds it here is really subscribed.
    pub(super) confirmed: HashSet<String>,
    /// Whether the pub/sub connection is up.
    pub(super) connected: bool,
}

/// Keeps this node subscribed to a system's channel while held: a session holds one for its
/// whole life, so broadcasts from other nodes reach it.
pub struct SystemLease {
    pub(super) subscriptions: Arc<Mutex<Subscriptions>>,
    pub(super) subscribe_tx: mpsc::UnboundedSender<()>,
    pub(super) channel: String,
}

impl Drop for SystemLease {
    fn drop(&mut self) {
        let mut subs = Cluster::lock(&self.subscriptions);
        if let Some(count) = subs.wanted.get_mut(&self.channel) {
            *count -= 1;
            if *count == 0 {
                subs.wanted.remove(&self.channel);
                let _ = self.subscribe_tx.send(());
            }
        }
    }
}

/// This node's link to the cluster. Shared by the HTTP handlers (cluster-wide REST calls) and
/// the background tasks (writer, subscriber, heartbeat, purge).
pub struct Cluster {
    pub(super) node_id: String,
    pub(super) keys: Keys,
    /// Where Redis is (one address, or a Sentinel group's master).
    pub(super) endpoint: Arc<RedisEndpoint>,
    /// The command connection, to the servers `redis_address` names (see
    /// [`RedisEndpoint::serving`]); replaced when they change (a failover, see `liveness.rs`).
    pub(super) redis: Mutex<RedisConn>,
    pub(super) redis_address: Mutex<String>,
    /// Tells the subscriber to connect again (to a new master).
    pub(super) resubscribe: tokio::sync::Notify,
    pub(super) registry: Addr<SystemRegistry>,
    /// Reads the commands other nodes send for this node's clients.
    pub(super) decoder: Decoder,
    /// Systems known to be registered; systems are never removed, so a hit never goes stale.
    pub(super) known_systems: Mutex<HashMap<String, SystemSettings>>,
    /// Where the webhook events this node decides for the whole cluster go (group occupied or
    /// vacated, clients of a dead node gone).
    pub(super) outward: Outward,
    /// The last `settings-version` the heartbeat saw: when it moves, this node reads its
    /// systems' settings again (a change it missed while cut off from Redis).
    pub(super) settings_version_seen: AtomicU64,
    /// Requests to other nodes waiting for their reply.
    pub(super) pending: Mutex<HashMap<u64, oneshot::Sender<NodeAnswer>>>,
    pub(super) next_request: AtomicU64,
    /// Channel subscriptions wanted and confirmed, applied by the subscriber task (also after
    /// a reconnect); `subscribe_tx` wakes it, `subscriptions_changed` tells waiters it synced.
    pub(super) subscriptions: Arc<Mutex<Subscriptions>>,
    pub(super) subscribe_tx: mpsc::UnboundedSender<()>,
    pub(super) subscriptions_changed: tokio::sync::watch::Sender<u64>,
    /// Where the registry's events go: the cluster adds barriers to the same queue.
    pub(super) events: EventSink,
    /// Whether Redis answered last time; transitions are logged once.
    pub(super) redis_up: AtomicBool,
    /// A write about local clients was lost (Redis down, or restarted empty): once Redis
    /// answers again, everything this node holds is written again.
    pub(super) dirty: AtomicBool,
    /// The epoch this node has rewritten its state for (heartbeat task; cleared when the
    /// pub/sub connection drops).
    pub(super) synced_epoch: Mutex<Option<String>>,
    /// The epoch every live node was seen synced to: state-dependent calls run while Redis
    /// still holds it, and answer 503 while this is `None` (heartbeat task; a watch so that
    /// start-up can wait for it).
    pub(super) ready_epoch: tokio::sync::watch::Sender<Option<String>>,
    /// Wakes the heartbeat task early (the pub/sub connection came back, an epoch changed).
    pub(super) wake_heartbeat: tokio::sync::Notify,
    /// This node has been synced to some epoch before (so it was part of a cluster).
    pub(super) has_synced: AtomicBool,
    /// Connections relayed here for clients of other nodes (see `relay.rs`).
    pub(super) relays: Mutex<Relays>,
    /// This node's clients whose connections are relayed by other nodes.
    pub(super) remote_sessions: Mutex<RemoteSessions>,
    /// The ordered queue of relay traffic, published by one task.
    pub(super) relay_out: mpsc::UnboundedSender<(String, String)>,
    pub(super) relay_config: RelayConfig,
    /// `--presence-grace`: how long a user's departure waits before it is announced.
    pub(super) presence_grace: Duration,
    /// This node's webhook delivery, which takes over a dead node's pending events.
    pub(super) webhooks: crate::webhooks::Webhooks,
}

/// Which relayed connection: the relaying node and its number there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(super) struct RelayAddr {
    pub node: String,
    pub id: u64,
}

/// A relaying node's side of its relayed connections (see `relay.rs`): each session, and the
/// home of its client.
#[derive(Default)]
pub(super) struct Relays {
    pub sessions: HashMap<u64, (SessionHandle, String)>,
}

/// A home node's side: the relayed sessions of its clients.
#[derive(Default)]
pub(super) struct RemoteSessions {
    pub sessions: HashMap<RelayAddr, RemoteSession>,
}

pub(super) struct RemoteSession {
    pub system_id: String,
    pub outbox: Arc<Outbox>,
    /// Stops forwarding to the relay (the relayed connection is over).
    pub stop: Box<dyn FnOnce() + Send>,
}

/// What the home needs to make a relayed session like a local one.
#[derive(Clone)]
pub struct RelayConfig {
    pub max_outbound_queue: usize,
    pub recovery_buffer: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// This node's connection gate: a relayed client is counted here, where its state is.
    pub gate: Arc<crate::gate::ConnectionGate>,
}

/// A fresh node id: 12 hex digits.
pub fn new_node_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..NODE_ID_LEN].to_owned()
}

/// The node that owns a clientId made in cluster mode.
pub fn owner_of(client_id: &str) -> Option<&str> {
    (client_id.len() == NODE_ID_LEN + 32 && client_id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| &client_id[..NODE_ID_LEN])
}

pub(super) fn unavailable(err: redis::RedisError) -> ApiError {
    ApiError::Unavailable(format!(
        "the cluster backplane (Redis) is unavailable: {err}; retry later"
    ))
}

pub(super) fn not_ready() -> ApiError {
    ApiError::Unavailable(
        "the cluster is catching up with its backplane (Redis's data changed, or this node is \
         writing its state back after an outage); retry shortly"
            .into(),
    )
}

/// This node cannot hear the other nodes: what it would answer might be wrong.
pub(super) fn not_subscribed() -> ApiError {
    ApiError::Unavailable(
        "this node is not subscribed to the cluster backplane: Redis is unreachable, or the \
         subscription is being restored; retry shortly"
            .into(),
    )
}

impl Cluster {
    /// Connects to Redis and starts this node's background tasks on the current arbiter.
    /// `events` is the receiving end of the registry's [`EventSink`].
    pub async fn start(
        config: &ClusterConfig,
        node_id: String,
        (registry, decoder): (Addr<SystemRegistry>, Decoder),
        (event_sink, events): (EventSink, mpsc::UnboundedReceiver<Event>),
        (outward, webhooks): (Outward, crate::webhooks::Webhooks),
        relay_config: RelayConfig,
    ) -> Result<Arc<Cluster>, redis::RedisError> {
        let endpoint = config.endpoint.clone();
        let (redis, redis_address) = endpoint.connect().await?;
        let (subscribe_tx, subscribe_rx) = mpsc::unbounded_channel();
        let (relay_out, relay_queue) = mpsc::unbounded_channel();
        let keys = Keys::new(&endpoint, &config.prefix);
        let mut subscriptions = Subscriptions::default();
        subscriptions.wanted.insert(keys.node_channel(&node_id), 1);
        let cluster = Arc::new(Cluster {
            node_id,
            keys,
            endpoint,
            redis: Mutex::new(redis),
            redis_address: Mutex::new(redis_address),
            resubscribe: tokio::sync::Notify::new(),
            registry,
            decoder,
            known_systems: Mutex::new(HashMap::new()),
            outward,
            settings_version_seen: AtomicU64::new(u64::MAX),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            subscriptions: Arc::new(Mutex::new(subscriptions)),
            subscribe_tx,
            subscriptions_changed: tokio::sync::watch::Sender::new(0),
            events: event_sink,
            redis_up: AtomicBool::new(true),
            dirty: AtomicBool::new(false),
            synced_epoch: Mutex::new(None),
            ready_epoch: tokio::sync::watch::Sender::new(None),
            wake_heartbeat: tokio::sync::Notify::new(),
            has_synced: AtomicBool::new(false),
            relays: Mutex::new(Default::default()),
            remote_sessions: Mutex::new(Default::default()),
            relay_out,
            relay_config,
            presence_grace: config.presence_grace,
            webhooks,
        });
        // Fail fast when Redis is not there at all.
        let _: String = redis::cmd("PING").query_async(&mut cluster.conn()).await?;
        actix_web::rt::spawn(cluster.clone().write_events(events));
        actix_web::rt::spawn(cluster.clone().subscribe_loop(subscribe_rx));
        actix_web::rt::spawn(cluster.clone().heartbeat_loop());
        actix_web::rt::spawn(cluster.clone().publish_relayed(relay_queue));
        actix_web::rt::spawn(cluster.clone().departures_loop());
        // Serve once this node counts as synced, so its first clients are reachable at once.
        let mut ready = cluster.ready_epoch.subscribe();
        let _ = tokio::time::timeout(NODE_TTL, ready.wait_for(Option::is_some)).await;
        log::info!(
            "cluster mode: node {} on {} (prefix '{}')",
            cluster.node_id,
            cluster.endpoint.describe(),
            cluster.keys.prefix
        );
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(super) fn conn(&self) -> RedisConn {
        Self::lock(&self.redis).clone()
    }

    /// Notes whether Redis answered, logging each change once.
    pub(super) fn track<T>(&self, result: redis::RedisResult<T>) -> Result<T, ApiError> {
        match result {
            Ok(value) => {
                if !self.redis_up.swap(true, Ordering::Relaxed) {
                    log::warn!("Redis is reachable again");
                }
                Ok(value)
            }
            Err(err) => {
                if self.redis_up.swap(false, Ordering::Relaxed) {
                    log::error!(
                        "Redis is unreachable: {err}; cluster calls answer 503 until it is back"
                    );
                }
                Err(unavailable(err))
            }
        }
    }

    pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn ready_epoch(&self) -> Option<String> {
        self.ready_epoch.borrow().clone()
    }

    pub(super) fn set_ready_epoch(&self, epoch: Option<String>) {
        self.ready_epoch.send_if_modified(|ready| {
            let changed = *ready != epoch;
            *ready = epoch;
            changed
        });
    }

    /// The epoch to run a state-dependent call against, or 503 while the cluster resyncs.
    pub(super) fn check_ready(&self) -> Result<String, ApiError> {
        self.ready_epoch().ok_or_else(|| {
            // Say what is true: Redis down is not Redis catching up.
            if self.redis_up.load(Ordering::Relaxed) && self.fully_subscribed() {
                not_ready()
            } else {
                not_subscribed()
            }
        })
    }

    /// Runs one of the guarded scripts; a `-1` (Redis holds another epoch) is a 503 and makes
    /// this node re-check its readiness at once.
    pub(super) async fn run_guarded(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[&str],
    ) -> Result<i64, ApiError> {
        let epoch = self.check_ready()?;
        let mut invocation = script.key(self.keys.epoch());
        for key in keys {
            invocation.key(key);
        }
        invocation.arg(&epoch);
        for arg in args {
            invocation.arg(*arg);
        }
        let result: i64 = self.track(invocation.invoke_async(&mut self.conn()).await)?;
        if result < 0 {
            self.lost_epoch(&epoch);
            return Err(not_ready());
        }
        Ok(result)
    }

    /// Redis no longer holds `epoch`: not ready until every node has synced again.
    pub(super) fn lost_epoch(&self, epoch: &str) {
        let lost = self.ready_epoch.send_if_modified(|ready| {
            let lost = ready.as_deref() == Some(epoch);
            if lost {
                *ready = None;
            }
            lost
        });
        if lost {
            log::warn!("Redis's data changed generation: resynchronising the cluster");
        }
        self.wake_heartbeat.notify_one();
    }

    /// Checks that a read made in the same pipeline saw the epoch this node is ready for.
    pub(super) fn same_epoch(&self, expected: &str, seen: Option<String>) -> Result<(), ApiError> {
        if seen.as_deref() == Some(expected) {
            Ok(())
        } else {
            self.lost_epoch(expected);
            Err(not_ready())
        }
    }

    /// Waits until every change to local clients queued so far is written to Redis: a REST
    /// call that changed membership is answered after that, so every node reads it.
    pub(super) async fn written(&self) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        if self.events.send(Event::Barrier(tx)).is_err() {
            return Err(not_ready());
        }
        match rx.await {
            Ok(true) => Ok(()),
            _ => Err(ApiError::Unavailable(
                "the change was made on this node but could not be written to the cluster \
                 backplane (Redis); it will be written once Redis answers"
                    .into(),
            )),
        }
    }
}
