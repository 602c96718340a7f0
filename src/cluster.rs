//! Cluster mode: several wshub nodes share one Redis and act as one server.
//!
//! Each node keeps its own clients in its own registry, as in single-node mode; Redis holds what
//! every node must see and carries what crosses nodes:
//!
//! | key / channel (under the prefix) | what | written by |
//! |---|---|---|
//! | `systems` (set) | registered systems | `register`, atomically (`SADD`) |
//! | `nodes` (set), `alive:{node}` (key with TTL) | live nodes | each node, every second |
//! | `clients:{system}` (hash clientId → node) | connected clients | the owning node |
//! | `members:{system}:{group}` (hash clientId → {userId, extend}) | group membership | the owning node |
//! | `groups:{system}` (set) | groups with members | the owning node |
//! | `client-groups:{system}:{clientId}` (set) | a client's groups | the owning node |
//! | `node-clients:{node}` (set of `system\nclientId`) | a node's clients, for the purge | the owning node |
//! | `epoch` (string), `settling` (key with TTL) | the generation of Redis's data, see below | the first node to find it missing, or one that reconnects |
//! | `synced:{node}` (key with TTL) | the generation a node has rewritten its state for | each node |
//! | channel `sys:{system}` | group and system broadcasts, notices | any node, once per message |
//! | channel `node:{node}` | requests for a node's clients, and replies | any node |
//!
//! A clientId starts with its node's id, so any node knows where a client lives without a lookup.
//! A node subscribes to `sys:{system}` while it has a client of that system, so it receives only
//! the broadcasts of systems it serves; a broadcast is published once whatever the group size,
//! and every node delivers it to its own members of the group. Writes to Redis about local
//! clients go through one ordered queue ([`Event`]), so a bind is never overtaken by the
//! disconnect that follows it; a REST call that changed membership is answered only once its
//! write is done (a barrier in that queue), so another node reads it at once.
//!
//! **Readiness.** After Redis comes back (empty or not) every node must resubscribe and write
//! its clients and groups again before the cluster's answers are true. The `epoch` key names
//! the generation of Redis's data: a node that reconnects to Redis sets a new one (and a short
//! `settling` period, so every live node is seen), each node rewrites its state for the
//! current epoch and says so in `synced:{node}`, and a node is *ready* once every live node is
//! synced to it. Calls that depend on the cluster's state answer 503 until then, and each of
//! them checks the epoch in the same Redis round trip (a script), so a restart between two
//! heartbeats is noticed at once instead of giving a false 404 or a false count.
//!
//! **Admission.** A WebSocket is upgraded only once this node is subscribed to its system's
//! channel and the client is written to Redis, so it is addressable from every node as soon
//! as it has its welcome frame.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::Addr;
use bytestring::ByteString;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::actors::events::{Event, EventSink};
use crate::actors::messages as m;
use crate::actors::registry::SystemRegistry;
use crate::backplane::{Backplane, Lease, Reply};
use crate::error::ApiError;
use crate::protocol::{ClientInfo, OnlineClient, OnlineList};

/// How often a node refreshes its liveness key.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a liveness key lives: a node silent this long is dead.
const NODE_TTL: Duration = Duration::from_secs(5);
/// How often each node looks for dead nodes to purge.
const PURGE_EVERY: Duration = Duration::from_secs(2);
/// How long a request to another node may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a handshake waits for this node to subscribe to a system's channel.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);
/// After a new epoch is set by a node that reconnected, how long before any node may be
/// ready: every live node beats (and so is seen) within it.
const SETTLE: Duration = Duration::from_millis(2500);
/// Heartbeat period while this node is not ready: recovery is noticed quickly.
const NOT_READY_BEAT: Duration = Duration::from_millis(200);
/// Length of a node id (hex); client ids are the node id followed by 32 hex digits.
pub const NODE_ID_LEN: usize = 12;

/// Settings of cluster mode.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// Prefix of every key and channel, so several clusters can share one Redis.
    pub prefix: String,
}

/// A broadcast on a `sys:` channel.
#[derive(Serialize, Deserialize)]
struct Published {
    /// The node that published it (it has delivered it to its own members already).
    o: String,
    /// Group, or the whole system when absent.
    g: Option<String>,
    /// The frame.
    f: String,
}

/// An operation on a client, carried to the node that owns it: the very command the owner's
/// registry handles, so the wire form is the command's own serde form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", content = "cmd", rename_all = "snake_case")]
enum Op {
    Send(m::SendToClient),
    SendMany(m::SendToClients),
    Bind(m::BindToGroup),
    Unbind(m::UnbindFromGroup),
    Close(m::CloseClient),
    Info(m::GetClientInfo),
}

impl Op {
    fn system_id(&self) -> &str {
        match self {
            Op::Send(cmd) => &cmd.system_id,
            Op::SendMany(cmd) => &cmd.system_id,
            Op::Bind(cmd) => &cmd.system_id,
            Op::Unbind(cmd) => &cmd.system_id,
            Op::Close(cmd) => &cmd.system_id,
            Op::Info(cmd) => &cmd.system_id,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum NodeMessage {
    Request {
        id: u64,
        reply_to: String,
        op: Op,
    },
    Reply {
        id: u64,
        result: Result<serde_json::Value, (u16, String)>,
    },
}

/// What a node answers to a request: a JSON value, or (HTTP status, message).
type RemoteResult = Result<serde_json::Value, (u16, String)>;

/// Channel and key names under the prefix.
struct Keys(String);

impl Keys {
    fn systems(&self) -> String {
        format!("{}systems", self.0)
    }
    fn nodes(&self) -> String {
        format!("{}nodes", self.0)
    }
    fn alive(&self, node: &str) -> String {
        format!("{}alive:{node}", self.0)
    }
    fn epoch(&self) -> String {
        format!("{}epoch", self.0)
    }
    fn settling(&self) -> String {
        format!("{}settling", self.0)
    }
    fn synced(&self, node: &str) -> String {
        format!("{}synced:{node}", self.0)
    }
    fn purge_lock(&self, node: &str) -> String {
        format!("{}purging:{node}", self.0)
    }
    fn clients(&self, system: &str) -> String {
        format!("{}clients:{system}", self.0)
    }
    fn members(&self, system: &str, group: &str) -> String {
        format!("{}members:{system}:{group}", self.0)
    }
    fn groups(&self, system: &str) -> String {
        format!("{}groups:{system}", self.0)
    }
    fn client_groups(&self, system: &str, client: &str) -> String {
        format!("{}client-groups:{system}:{client}", self.0)
    }
    fn node_clients(&self, node: &str) -> String {
        format!("{}node-clients:{node}", self.0)
    }
    fn system_channel(&self, system: &str) -> String {
        format!("{}sys:{system}", self.0)
    }
    fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.0)
    }
}

/// A Lua script, hashed once: calls run it by its SHA (redis-rs loads it again after a Redis
/// restart on its own).
type Script = std::sync::LazyLock<redis::Script>;

/// Removes a member and, when the group empties, the group from the system's set, atomically.
static LEAVE: Script = Script::new(|| {
    redis::Script::new(
        r#"
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return 1
"#,
    )
});

/// Returns the current epoch, making one (`ARGV[1]`) if there is none; a node that knows
/// other nodes may have lost state asks for a settling period of `ARGV[2]` ms (0: none).
static EPOCH: Script = Script::new(|| {
    redis::Script::new(
        r#"
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return ARGV[1]
"#,
    )
});

/// Starts a new epoch whatever the current one: every node must write its state again.
static NEW_EPOCH: Script = Script::new(|| {
    redis::Script::new(
        r#"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"#,
    )
});

/// The epoch guard every state-dependent call runs first: `-1` when Redis no longer holds
/// the epoch the caller was ready for (it restarted, or a node is resynchronising).
macro_rules! guarded {
    ($body:literal) => {
        Script::new(|| {
            redis::Script::new(concat!(
                "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n",
                $body
            ))
        })
    };
}

/// KEYS: epoch, a hash to count. ARGV: epoch, channel, payload. The member count, after
/// publishing.
static COUNT_AND_PUBLISH: Script = guarded!(
    "local n = redis.call('HLEN', KEYS[2])\nredis.call('PUBLISH', ARGV[2], ARGV[3])\nreturn n"
);
/// KEYS: epoch. ARGV: epoch, channel, payload. How many nodes received it.
static PUBLISH: Script = guarded!("return redis.call('PUBLISH', ARGV[2], ARGV[3])");
/// KEYS: epoch, systems. ARGV: epoch, systemId. 1 if added, 0 if it existed.
static REGISTER: Script = guarded!("return redis.call('SADD', KEYS[2], ARGV[2])");
/// KEYS: epoch, systems, clients:{system}, node-clients:{node}. ARGV: epoch, systemId,
/// clientId, node, node-clients entry.
static ADMIT: Script = guarded!(
    "redis.call('SADD', KEYS[2], ARGV[2])\nredis.call('HSET', KEYS[3], ARGV[3], ARGV[4])\nredis.call('SADD', KEYS[4], ARGV[5])\nreturn 1"
);

/// The channel subscriptions a node wants and those Redis has confirmed.
#[derive(Default)]
struct Subscriptions {
    /// Channel → how many holders want it ([`SystemLease`]s; the node channel holds one for
    /// good).
    wanted: HashMap<String, usize>,
    /// Channels the pub/sub connection is subscribed to now. A channel leaves this set before
    /// its UNSUBSCRIBE is sent, so a holder that finds it here is really subscribed.
    confirmed: HashSet<String>,
    /// Whether the pub/sub connection is up.
    connected: bool,
}

/// Keeps this node subscribed to a system's channel while held: a session holds one for its
/// whole life, so broadcasts from other nodes reach it.
pub struct SystemLease {
    subscriptions: Arc<Mutex<Subscriptions>>,
    subscribe_tx: mpsc::UnboundedSender<()>,
    channel: String,
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

#[derive(Serialize, Deserialize)]
struct MemberInfo {
    #[serde(rename = "userId")]
    user_id: String,
    extend: String,
}

/// This node's link to the cluster. Shared by the HTTP handlers (cluster-wide REST calls) and
/// the background tasks (writer, subscriber, heartbeat, purge).
pub struct Cluster {
    node_id: String,
    keys: Keys,
    redis: ConnectionManager,
    registry: Addr<SystemRegistry>,
    /// Systems known to be registered; systems are never removed, so a hit never goes stale.
    known_systems: Mutex<HashSet<String>>,
    /// Requests to other nodes waiting for their reply.
    pending: Mutex<HashMap<u64, oneshot::Sender<RemoteResult>>>,
    next_request: AtomicU64,
    /// Channel subscriptions wanted and confirmed, applied by the subscriber task (also after
    /// a reconnect); `subscribe_tx` wakes it, `subscriptions_changed` tells waiters it synced.
    subscriptions: Arc<Mutex<Subscriptions>>,
    subscribe_tx: mpsc::UnboundedSender<()>,
    subscriptions_changed: tokio::sync::watch::Sender<u64>,
    /// Where the registry's events go: the cluster adds barriers to the same queue.
    events: EventSink,
    /// Whether Redis answered last time; transitions are logged once.
    redis_up: AtomicBool,
    /// A write about local clients was lost (Redis down, or restarted empty): once Redis
    /// answers again, everything this node holds is written again.
    dirty: AtomicBool,
    /// The epoch this node has rewritten its state for (heartbeat task; cleared when the
    /// pub/sub connection drops).
    synced_epoch: Mutex<Option<String>>,
    /// The epoch every live node was seen synced to: state-dependent calls run while Redis
    /// still holds it, and answer 503 while this is `None` (heartbeat task; a watch so that
    /// start-up can wait for it).
    ready_epoch: tokio::sync::watch::Sender<Option<String>>,
    /// Wakes the heartbeat task early (the pub/sub connection came back, an epoch changed).
    wake_heartbeat: tokio::sync::Notify,
    /// This node has been synced to some epoch before (so it was part of a cluster).
    has_synced: AtomicBool,
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

fn unavailable(err: redis::RedisError) -> ApiError {
    ApiError::Unavailable(format!(
        "the cluster backplane (Redis) is unavailable: {err}; retry later"
    ))
}

impl Cluster {
    /// Connects to Redis and starts this node's background tasks on the current arbiter.
    /// `events` is the receiving end of the registry's [`EventSink`].
    pub async fn start(
        config: &ClusterConfig,
        node_id: String,
        registry: Addr<SystemRegistry>,
        event_sink: EventSink,
        events: mpsc::UnboundedReceiver<Event>,
    ) -> Result<Arc<Cluster>, redis::RedisError> {
        let client = redis::Client::open(config.redis_url.as_str())?;
        let manager_config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(1))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(1)
            .set_max_delay(1000);
        let redis = client
            .get_connection_manager_with_config(manager_config)
            .await?;
        let (subscribe_tx, subscribe_rx) = mpsc::unbounded_channel();
        let keys = Keys(config.prefix.clone());
        let mut subscriptions = Subscriptions::default();
        subscriptions.wanted.insert(keys.node_channel(&node_id), 1);
        let cluster = Arc::new(Cluster {
            node_id,
            keys,
            redis,
            registry,
            known_systems: Mutex::new(HashSet::new()),
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
        });
        // Fail fast when Redis is not there at all.
        let _: String = redis::cmd("PING").query_async(&mut cluster.conn()).await?;
        actix_web::rt::spawn(cluster.clone().write_events(events));
        actix_web::rt::spawn(cluster.clone().subscribe_loop(client, subscribe_rx));
        actix_web::rt::spawn(cluster.clone().heartbeat_loop());
        // Serve once this node counts as synced, so its first clients are reachable at once.
        let mut ready = cluster.ready_epoch.subscribe();
        let _ = tokio::time::timeout(NODE_TTL, ready.wait_for(Option::is_some)).await;
        log::info!(
            "cluster mode: node {} on {} (prefix '{}')",
            cluster.node_id,
            config.redis_url,
            cluster.keys.0
        );
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Notes whether Redis answered, logging each change once.
    fn track<T>(&self, result: redis::RedisResult<T>) -> Result<T, ApiError> {
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

    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // -----------------------------------------------------------------------------------------
    // Readiness

    fn ready_epoch(&self) -> Option<String> {
        self.ready_epoch.borrow().clone()
    }

    fn set_ready_epoch(&self, epoch: Option<String>) {
        self.ready_epoch.send_if_modified(|ready| {
            let changed = *ready != epoch;
            *ready = epoch;
            changed
        });
    }

    /// The epoch to run a state-dependent call against, or 503 while the cluster resyncs.
    fn check_ready(&self) -> Result<String, ApiError> {
        self.ready_epoch().ok_or_else(not_ready)
    }

    /// Runs one of the guarded scripts; a `-1` (Redis holds another epoch) is a 503 and makes
    /// this node re-check its readiness at once.
    async fn run_guarded(
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
    fn lost_epoch(&self, epoch: &str) {
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
    fn same_epoch(&self, expected: &str, seen: Option<String>) -> Result<(), ApiError> {
        if seen.as_deref() == Some(expected) {
            Ok(())
        } else {
            self.lost_epoch(expected);
            Err(not_ready())
        }
    }

    /// Waits until every change to local clients queued so far is written to Redis: a REST
    /// call that changed membership is answered after that, so every node reads it.
    async fn written(&self) -> Result<(), ApiError> {
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

    // -----------------------------------------------------------------------------------------
    // Admission of a WebSocket client

    /// Makes sure this node is subscribed to `system_id`'s channel for as long as the returned
    /// lease is held, waiting for Redis to confirm the subscription.
    async fn lease_system(&self, system_id: &str) -> Result<SystemLease, ApiError> {
        let channel = self.keys.system_channel(system_id);
        let mut changed = self.subscriptions_changed.subscribe();
        let confirmed = {
            let mut subs = Self::lock(&self.subscriptions);
            *subs.wanted.entry(channel.clone()).or_insert(0) += 1;
            subs.confirmed.contains(&channel)
        };
        let lease = SystemLease {
            subscriptions: self.subscriptions.clone(),
            subscribe_tx: self.subscribe_tx.clone(),
            channel: channel.clone(),
        };
        if confirmed {
            return Ok(lease);
        }
        let _ = self.subscribe_tx.send(());
        let wait = async {
            while changed.changed().await.is_ok() {
                if Self::lock(&self.subscriptions).confirmed.contains(&channel) {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, wait).await {
            Ok(true) => Ok(lease),
            _ => Err(ApiError::Unavailable(
                "could not subscribe to the system's channel on the cluster backplane (Redis); \
                 retry later"
                    .into(),
            )),
        }
    }

    /// Writes a new client to Redis before its welcome frame, so every node can reach it.
    async fn admit_client(&self, system_id: &str, client_id: &str) -> Result<(), ApiError> {
        let keys = &self.keys;
        let entry = format!("{system_id}\n{client_id}");
        self.run_guarded(
            &ADMIT,
            &[
                keys.systems(),
                keys.clients(system_id),
                keys.node_clients(&self.node_id),
            ],
            &[system_id, client_id, &self.node_id, &entry],
        )
        .await
        .map(drop)
    }

    // -----------------------------------------------------------------------------------------
    // Systems

    /// `register`: exactly one of several racing callers wins.
    async fn register_system(&self, system_id: &str) -> Result<(), ApiError> {
        let added = self
            .run_guarded(&REGISTER, &[self.keys.systems()], &[system_id])
            .await?;
        if added == 0 {
            return Err(m::RegistryError::SystemExists(system_id.to_owned()).into());
        }
        self.adopt_system(system_id).await;
        Ok(())
    }

    /// Makes sure a system registered anywhere in the cluster is known to the local registry.
    pub async fn ensure_system(&self, system_id: &str) -> Result<(), ApiError> {
        if Self::lock(&self.known_systems).contains(system_id) {
            return Ok(());
        }
        let epoch = self.check_ready()?;
        let (seen, exists): (Option<String>, bool) = self.track(
            redis::pipe()
                .get(self.keys.epoch())
                .sismember(self.keys.systems(), system_id)
                .query_async(&mut self.conn())
                .await,
        )?;
        // After a restart, "not there" may only mean "not written back yet".
        self.same_epoch(&epoch, seen)?;
        if !exists {
            return Err(m::RegistryError::UnknownSystem(system_id.to_owned()).into());
        }
        self.adopt_system(system_id).await;
        Ok(())
    }

    async fn adopt_system(&self, system_id: &str) {
        // Already there locally is fine: the cluster decided.
        let _ = self
            .registry
            .send(m::Register {
                system_id: system_id.to_owned(),
            })
            .await;
        Self::lock(&self.known_systems).insert(system_id.to_owned());
    }

    // -----------------------------------------------------------------------------------------
    // Requests to the node that owns a client

    /// Runs `op` where `client_id` lives: here through the registry, elsewhere through its node.
    async fn on_owner(&self, client_id: &str, op: Op) -> Result<serde_json::Value, ApiError> {
        self.ensure_system(op.system_id()).await?;
        match owner_of(client_id) {
            Some(owner) if owner == self.node_id => self.execute(op).await,
            Some(owner) => self.request(owner, op).await,
            None => Err(not_connected(client_id)),
        }
    }

    async fn request(&self, node: &str, op: Op) -> Result<serde_json::Value, ApiError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        Self::lock(&self.pending).insert(id, tx);
        let message = NodeMessage::Request {
            id,
            reply_to: self.keys.node_channel(&self.node_id),
            op,
        };
        let payload = serde_json::to_string(&message).unwrap_or_default();
        // Guarded: while any node resyncs, "nobody listens" may be a node not yet resubscribed.
        let receivers = self
            .run_guarded(&PUBLISH, &[], &[&self.keys.node_channel(node), &payload])
            .await;
        let receivers = match receivers {
            Ok(n) => n,
            Err(err) => {
                Self::lock(&self.pending).remove(&id);
                return Err(err);
            }
        };
        if receivers == 0 {
            // Nobody listens for that node: it is gone, and so are its clients.
            Self::lock(&self.pending).remove(&id);
            return Err(ApiError::NotFound(
                "the client's node is not running: it is not connected".into(),
            ));
        }
        match tokio::time::timeout(RPC_TIMEOUT, rx).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err((status, msg)))) => Err(ApiError::from_status(status, msg)),
            _ => {
                Self::lock(&self.pending).remove(&id);
                Err(ApiError::Unavailable(format!(
                    "node {node} did not answer in time; retry later"
                )))
            }
        }
    }

    /// Carries out an operation on local clients: the command goes to this node's registry.
    async fn execute(&self, op: Op) -> Result<serde_json::Value, ApiError> {
        // The caller checked the system; this node may not have met it yet. A client of another
        // system is then simply not connected in this one (404), as on a single node.
        self.ensure_system(op.system_id()).await?;
        let changes_membership = matches!(op, Op::Bind(_) | Op::Unbind(_) | Op::Close(_));
        if changes_membership {
            // These change what Redis holds: refused up front while it cannot be written,
            // rather than changed here and reported as failed.
            self.check_ready()?;
        }
        let value = match op {
            Op::Send(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::SendMany(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Info(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Bind(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Unbind(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Close(cmd) => serde_json::to_value(self.local(cmd).await?),
        };
        if changes_membership {
            // Answered once Redis has the change, so every node reads it at once.
            self.written().await?;
        }
        Ok(value.unwrap_or_default())
    }

    /// Runs a command in this node's registry.
    async fn local<M, T>(&self, cmd: M) -> Result<T, ApiError>
    where
        M: actix::Message<Result = m::RegistryResult<T>> + Send + 'static,
        T: Send + 'static,
        SystemRegistry: actix::Handler<M>,
    {
        Ok(self.registry.send(cmd).await??)
    }

    // -----------------------------------------------------------------------------------------
    // Broadcast helpers

    /// Counts the members at `count_key` and publishes the frame for the other nodes, in one
    /// round trip to Redis, guarded by the epoch so the count is never that of a half-rebuilt
    /// Redis.
    async fn count_and_publish(
        &self,
        system: &str,
        count_key: String,
        group: Option<String>,
        frame: &ByteString,
    ) -> Result<usize, ApiError> {
        let payload = self.envelope(group, frame);
        let count = self
            .run_guarded(
                &COUNT_AND_PUBLISH,
                &[count_key],
                &[&self.keys.system_channel(system), &payload],
            )
            .await?;
        Ok(count as usize)
    }

    fn envelope(&self, group: Option<String>, frame: &ByteString) -> String {
        serde_json::to_string(&Published {
            o: self.node_id.clone(),
            g: group,
            f: frame.to_string(),
        })
        .unwrap_or_default()
    }

    async fn publish(
        &self,
        system: &str,
        group: Option<String>,
        frame: &ByteString,
    ) -> Result<(), ApiError> {
        let payload = self.envelope(group, frame);
        let _: i64 = self.track(
            self.conn()
                .publish(self.keys.system_channel(system), payload)
                .await,
        )?;
        Ok(())
    }

    async fn online_list(&self, system: &str, group: &str) -> Result<OnlineList, ApiError> {
        self.ensure_system(system).await?;
        let epoch = self.check_ready()?;
        let (seen, members): (Option<String>, HashMap<String, String>) = self.track(
            redis::pipe()
                .get(self.keys.epoch())
                .hgetall(self.keys.members(system, group))
                .query_async(&mut self.conn())
                .await,
        )?;
        self.same_epoch(&epoch, seen)?;
        let mut clients: Vec<OnlineClient> = members
            .into_iter()
            .map(|(client_id, info)| {
                let info: MemberInfo = serde_json::from_str(&info).unwrap_or(MemberInfo {
                    user_id: String::new(),
                    extend: String::new(),
                });
                OnlineClient {
                    client_id,
                    user_id: info.user_id,
                    extend: info.extend,
                }
            })
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(OnlineList {
            count: clients.len(),
            list: clients.iter().map(|c| c.client_id.clone()).collect(),
            clients,
        })
    }

    async fn all_groups(
        &self,
        system: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
        self.ensure_system(system).await?;
        let epoch = self.check_ready()?;
        let mut conn = self.conn();
        let groups: Vec<String> = self.track(conn.smembers(self.keys.groups(system)).await)?;
        let mut pipe = redis::pipe();
        for group in &groups {
            pipe.hkeys(self.keys.members(system, group));
        }
        // Checked after the reads: a restart between them shows here.
        pipe.get(self.keys.epoch());
        let mut replies: Vec<redis::Value> = self.track(pipe.query_async(&mut conn).await)?;
        let seen = replies
            .pop()
            .and_then(|v| redis::from_redis_value::<Option<String>>(&v).ok())
            .flatten();
        self.same_epoch(&epoch, seen)?;
        let mut all = std::collections::BTreeMap::new();
        for (group, members) in groups.into_iter().zip(replies) {
            let mut members: Vec<String> = redis::from_redis_value(&members).unwrap_or_default();
            if !members.is_empty() {
                members.sort();
                all.insert(group, members);
            }
        }
        Ok(all)
    }

    // -----------------------------------------------------------------------------------------
    // Background tasks

    /// Applies local changes to Redis, in the order they happened.
    async fn write_events(self: Arc<Self>, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = events.recv().await {
            // A write lost while Redis is down is not retried one by one: the whole state is
            // written again once Redis answers (see `heartbeat_loop`).
            if self.apply(event).await.is_err() {
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    async fn apply(&self, event: Event) -> Result<(), ApiError> {
        let keys = &self.keys;
        let mut conn = self.conn();
        match event {
            Event::Connected {
                system_id,
                client_id,
            } => {
                // The system is re-added too: after Redis lost its data, the resync restores it.
                let result: redis::RedisResult<()> = redis::pipe()
                    .sadd(keys.systems(), &system_id)
                    .hset(keys.clients(&system_id), &client_id, &self.node_id)
                    .sadd(
                        keys.node_clients(&self.node_id),
                        format!("{system_id}\n{client_id}"),
                    )
                    .query_async(&mut conn)
                    .await;
                self.track(result)
            }
            Event::Gone {
                system_id,
                client_id,
                groups,
                notice,
            } => {
                for group in &groups {
                    self.leave(&system_id, group, &client_id).await?;
                    if let Some(notice) = &notice {
                        self.publish(&system_id, Some(group.clone()), notice)
                            .await?;
                    }
                }
                let result: redis::RedisResult<()> = redis::pipe()
                    .hdel(keys.clients(&system_id), &client_id)
                    .srem(
                        keys.node_clients(&self.node_id),
                        format!("{system_id}\n{client_id}"),
                    )
                    .del(keys.client_groups(&system_id, &client_id))
                    .query_async(&mut conn)
                    .await;
                self.track(result)
            }
            Event::Bound {
                system_id,
                client_id,
                group_name,
                all_groups,
                user_id,
                extend,
                notice,
            } => {
                let info =
                    serde_json::to_string(&MemberInfo { user_id, extend }).unwrap_or_default();
                let mut pipe = redis::pipe();
                for group in &all_groups {
                    pipe.hset(keys.members(&system_id, group), &client_id, &info);
                }
                pipe.sadd(keys.groups(&system_id), &all_groups)
                    .sadd(keys.client_groups(&system_id, &client_id), &all_groups);
                let result: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
                self.track(result)?;
                if let Some(notice) = notice {
                    self.publish(&system_id, Some(group_name), &notice).await?;
                }
                Ok(())
            }
            Event::Unbound {
                system_id,
                client_id,
                group_name,
                notice,
            } => {
                self.leave(&system_id, &group_name, &client_id).await?;
                let _: i64 = self.track(
                    conn.srem(keys.client_groups(&system_id, &client_id), &group_name)
                        .await,
                )?;
                self.publish(&system_id, Some(group_name), &notice).await
            }
            Event::Barrier(done) => {
                let _ = done.send(!self.dirty.load(Ordering::Relaxed));
                Ok(())
            }
        }
    }

    async fn leave(&self, system: &str, group: &str, client: &str) -> Result<(), ApiError> {
        let result: redis::RedisResult<i64> = LEAVE
            .key(self.keys.members(system, group))
            .key(self.keys.groups(system))
            .arg(client)
            .arg(group)
            .invoke_async(&mut self.conn())
            .await;
        self.track(result).map(drop)
    }

    /// Keeps a pub/sub connection subscribed to this node's channel and the systems it serves,
    /// reconnecting (and resubscribing) by itself when Redis goes away and comes back. A node
    /// that reconnects starts a new epoch: it missed what was published meanwhile, and Redis
    /// may have lost what every node wrote.
    async fn subscribe_loop(
        self: Arc<Self>,
        client: redis::Client,
        mut changed: mpsc::UnboundedReceiver<()>,
    ) {
        let mut backoff = Duration::from_millis(50);
        let mut reconnecting = false;
        loop {
            let pubsub = match client.get_async_pubsub().await {
                Ok(pubsub) => pubsub,
                Err(err) => {
                    log::debug!("Redis pub/sub connection failed: {err}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    continue;
                }
            };
            let (mut sink, mut stream) = pubsub.split();
            let mut subscribed: HashSet<String> = HashSet::new();
            if let Err(err) = self.sync_subscriptions(&mut sink, &mut subscribed).await {
                log::debug!("subscribing failed: {err}");
                tokio::time::sleep(backoff).await;
                continue;
            }
            if reconnecting && self.start_new_epoch().await.is_err() {
                continue;
            }
            Self::lock(&self.subscriptions).connected = true;
            self.wake_heartbeat.notify_one();
            log::info!("Redis pub/sub connected ({} channels)", subscribed.len());
            backoff = Duration::from_millis(50);
            loop {
                tokio::select! {
                    message = stream.next() => match message {
                        Some(message) => self.on_message(message),
                        None => break,
                    },
                    Some(()) = changed.recv() => {
                        if self.sync_subscriptions(&mut sink, &mut subscribed).await.is_err() {
                            break;
                        }
                    }
                }
            }
            log::error!("Redis pub/sub connection lost; reconnecting");
            reconnecting = true;
            {
                let mut subs = Self::lock(&self.subscriptions);
                subs.connected = false;
                subs.confirmed.clear();
            }
            *Self::lock(&self.synced_epoch) = None;
            self.set_ready_epoch(None);
        }
    }

    /// Starts a new epoch (see the module docs) with a settling period.
    async fn start_new_epoch(&self) -> Result<(), ApiError> {
        let result: redis::RedisResult<i64> = NEW_EPOCH
            .key(self.keys.epoch())
            .key(self.keys.settling())
            .arg(crate::protocol::new_id())
            .arg(SETTLE.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await;
        self.track(result).map(drop)
    }

    async fn sync_subscriptions(
        &self,
        sink: &mut redis::aio::PubSubSink,
        subscribed: &mut HashSet<String>,
    ) -> redis::RedisResult<()> {
        let (to_add, to_remove) = {
            let mut subs = Self::lock(&self.subscriptions);
            let wanted: HashSet<String> = subs.wanted.keys().cloned().collect();
            let to_remove: Vec<String> = subscribed.difference(&wanted).cloned().collect();
            // Unconfirmed before the UNSUBSCRIBE goes out, under the lock that leases take.
            for channel in &to_remove {
                subs.confirmed.remove(channel);
            }
            let to_add: Vec<String> = wanted.difference(subscribed).cloned().collect();
            (to_add, to_remove)
        };
        for channel in to_add {
            sink.subscribe(&channel).await?;
            subscribed.insert(channel);
        }
        for channel in to_remove {
            sink.unsubscribe(&channel).await?;
            subscribed.remove(&channel);
        }
        {
            let mut subs = Self::lock(&self.subscriptions);
            let Subscriptions {
                wanted, confirmed, ..
            } = &mut *subs;
            confirmed.extend(
                subscribed
                    .iter()
                    .filter(|channel| wanted.contains_key(*channel))
                    .cloned(),
            );
        }
        self.subscriptions_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Whether every channel wanted is confirmed (after a reconnect: resubscribed).
    fn fully_subscribed(&self) -> bool {
        let subs = Self::lock(&self.subscriptions);
        subs.connected && subs.wanted.keys().all(|c| subs.confirmed.contains(c))
    }

    fn on_message(self: &Arc<Self>, message: redis::Msg) {
        let channel = message.get_channel_name().to_owned();
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        if let Some(system) = channel.strip_prefix(&format!("{}sys:", self.keys.0)) {
            let Ok(published) = serde_json::from_str::<Published>(&payload) else {
                return;
            };
            if published.o != self.node_id {
                self.registry.do_send(m::RemoteBroadcast {
                    system_id: system.to_owned(),
                    group_name: published.g,
                    frame: ByteString::from(published.f),
                });
            }
            return;
        }
        match serde_json::from_str::<NodeMessage>(&payload) {
            Ok(NodeMessage::Reply { id, result }) => {
                if let Some(waiter) = Self::lock(&self.pending).remove(&id) {
                    let _ = waiter.send(result);
                }
            }
            Ok(NodeMessage::Request { id, reply_to, op }) => {
                let cluster = self.clone();
                actix_web::rt::spawn(async move {
                    let result = cluster.execute(op).await.map_err(|err| {
                        (
                            actix_web::ResponseError::status_code(&err).as_u16(),
                            err.to_string(),
                        )
                    });
                    let reply = serde_json::to_string(&NodeMessage::Reply { id, result })
                        .unwrap_or_default();
                    let sent: redis::RedisResult<i64> =
                        cluster.conn().publish(reply_to, reply).await;
                    let _ = cluster.track(sent);
                });
            }
            Err(err) => log::debug!("unreadable cluster message: {err}"),
        }
    }

    /// Refreshes this node's liveness, keeps its state written for the current epoch, decides
    /// readiness, and purges dead nodes.
    async fn heartbeat_loop(self: Arc<Self>) {
        let mut last_purge = tokio::time::Instant::now();
        loop {
            if let Err(err) = self.beat().await {
                log::debug!("heartbeat: {err}");
                self.set_ready_epoch(None);
            }
            if self.ready_epoch().is_some() && last_purge.elapsed() >= PURGE_EVERY {
                last_purge = tokio::time::Instant::now();
                let _ = self.purge_dead_nodes().await;
            }
            let period = if self.ready_epoch().is_some() {
                HEARTBEAT
            } else {
                NOT_READY_BEAT
            };
            let _ = tokio::time::timeout(period, self.wake_heartbeat.notified()).await;
        }
    }

    /// One heartbeat; see the module docs on readiness.
    async fn beat(&self) -> Result<(), ApiError> {
        let keys = &self.keys;
        let mut conn = self.conn();
        // A node that has been part of a cluster asks for a settling period if it must create
        // the epoch: Redis then lost everything, other nodes included.
        let settle = if self.has_synced.load(Ordering::Relaxed) {
            SETTLE
        } else {
            Duration::ZERO
        };
        let epoch: String = self.track(
            EPOCH
                .key(keys.epoch())
                .key(keys.settling())
                .arg(crate::protocol::new_id())
                .arg(settle.as_millis() as u64)
                .invoke_async(&mut conn)
                .await,
        )?;
        let synced = Self::lock(&self.synced_epoch).as_deref() == Some(epoch.as_str());
        if !synced || self.dirty.load(Ordering::Relaxed) {
            if !self.fully_subscribed() {
                return Err(not_ready());
            }
            self.rewrite_state().await?;
            if !self.fully_subscribed() {
                return Err(not_ready());
            }
            *Self::lock(&self.synced_epoch) = Some(epoch.clone());
            self.has_synced.store(true, Ordering::Relaxed);
        }
        let ttl = NODE_TTL.as_secs();
        let (settling, nodes): (bool, Vec<String>) = self.track(
            redis::pipe()
                .set_ex(keys.alive(&self.node_id), 1, ttl)
                .ignore()
                .sadd(keys.nodes(), &self.node_id)
                .ignore()
                .set_ex(keys.synced(&self.node_id), &epoch, ttl)
                .ignore()
                .exists(keys.settling())
                .smembers(keys.nodes())
                .query_async(&mut conn)
                .await,
        )?;
        let mut ready = !settling;
        if ready {
            let mut pipe = redis::pipe();
            for node in &nodes {
                pipe.exists(keys.alive(node)).get(keys.synced(node));
            }
            let states: Vec<(bool, Option<String>)> =
                self.track(pipe.query_async(&mut conn).await)?;
            ready = states
                .iter()
                .all(|(alive, synced)| !alive || synced.as_deref() == Some(epoch.as_str()));
        }
        if ready && self.ready_epoch().is_none() {
            log::info!("cluster ready (epoch {epoch}, {} nodes)", nodes.len());
        }
        self.set_ready_epoch(ready.then_some(epoch));
        Ok(())
    }

    /// Writes everything this node holds again: the systems it knows, its clients and their
    /// groups; returns once the writer has applied it all.
    async fn rewrite_state(&self) -> Result<(), ApiError> {
        if !self.has_synced.load(Ordering::Relaxed) {
            // A node that has never been synced holds nothing yet (and its registry may not
            // run until the server does).
            return Ok(());
        }
        log::info!("writing this node's systems, clients and groups to Redis");
        self.dirty.store(false, Ordering::Relaxed);
        let systems: Vec<String> = Self::lock(&self.known_systems).iter().cloned().collect();
        if !systems.is_empty() {
            let _: i64 = self.track(self.conn().sadd(self.keys.systems(), systems).await)?;
        }
        self.registry.send(m::ResyncCluster).await?;
        self.written().await
    }

    /// Removes the clients of every node whose liveness key expired, with their 1002 notices.
    /// A lock per dead node makes sure only one survivor purges it.
    async fn purge_dead_nodes(&self) -> Result<(), ApiError> {
        let keys = &self.keys;
        let mut conn = self.conn();
        let nodes: Vec<String> = self.track(conn.smembers(keys.nodes()).await)?;
        for node in nodes.into_iter().filter(|n| *n != self.node_id) {
            let alive: bool = self.track(conn.exists(keys.alive(&node)).await)?;
            if alive {
                continue;
            }
            let locked: bool = self.track(
                redis::cmd("SET")
                    .arg(keys.purge_lock(&node))
                    .arg(&self.node_id)
                    .arg("NX")
                    .arg("EX")
                    .arg(30)
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map(|r| r.is_some()),
            )?;
            if !locked {
                continue;
            }
            let clients: Vec<String> = self.track(conn.smembers(keys.node_clients(&node)).await)?;
            log::warn!("node {node} is dead: purging its {} clients", clients.len());
            for entry in clients {
                let Some((system, client)) = entry.split_once('\n') else {
                    continue;
                };
                let groups: Vec<String> =
                    self.track(conn.smembers(keys.client_groups(system, client)).await)?;
                for group in groups {
                    let info: Option<String> =
                        self.track(conn.hget(keys.members(system, &group), client).await)?;
                    self.leave(system, &group, client).await?;
                    let info: MemberInfo = info
                        .and_then(|i| serde_json::from_str(&i).ok())
                        .unwrap_or(MemberInfo {
                            user_id: String::new(),
                            extend: String::new(),
                        });
                    let notice =
                        crate::protocol::presence_frame(false, client, &info.user_id, &info.extend);
                    // Published as if from the dead node, so every live node delivers it.
                    let payload = serde_json::to_string(&Published {
                        o: node.clone(),
                        g: Some(group),
                        f: notice.to_string(),
                    })
                    .unwrap_or_default();
                    let _: i64 =
                        self.track(conn.publish(keys.system_channel(system), payload).await)?;
                }
                let result: redis::RedisResult<()> = redis::pipe()
                    .hdel(keys.clients(system), client)
                    .del(keys.client_groups(system, client))
                    .query_async(&mut conn)
                    .await;
                self.track(result)?;
            }
            let result: redis::RedisResult<()> = redis::pipe()
                .del(keys.node_clients(&node))
                .srem(keys.nodes(), &node)
                .query_async(&mut conn)
                .await;
            self.track(result)?;
        }
        Ok(())
    }
}

fn not_ready() -> ApiError {
    ApiError::Unavailable(
        "the cluster is resynchronising with its backplane (Redis came back or a node \
         reconnected); retry shortly"
            .into(),
    )
}

/// The cluster as the [`Backplane`]: see the module docs for where each operation goes.
impl Backplane for Cluster {
    fn new_client_id(&self) -> String {
        format!("{}{}", self.node_id, crate::protocol::new_id())
    }

    fn admit<'a>(&'a self, system_id: &'a str, client_id: &'a str) -> Reply<'a, Lease> {
        Box::pin(async move {
            // Systems registered on another node become known here; an unknown one is refused
            // by the registry as usual. This node subscribes to the system's channel and
            // writes the client to Redis, so the client is reachable from every node once it
            // has its welcome frame; Redis being unreachable (or resyncing) is a 503.
            match self.ensure_system(system_id).await {
                Err(err @ ApiError::Unavailable(_)) => Err(err),
                Err(_) => Ok(Lease::none()),
                Ok(()) => {
                    let lease = self.lease_system(system_id).await?;
                    self.admit_client(system_id, client_id).await?;
                    Ok(Lease::holding(lease))
                }
            }
        })
    }

    fn register(&self, cmd: m::Register) -> Reply<'_, ()> {
        Box::pin(async move { self.register_system(&cmd.system_id).await })
    }

    fn send_to_client(&self, cmd: m::SendToClient) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Send(cmd)).await.map(drop)
        })
    }

    fn send_to_clients(&self, cmd: m::SendToClients) -> Reply<'_, Vec<String>> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
            let mut missing = Vec::new();
            for client in cmd.client_ids {
                match owner_of(&client) {
                    Some(owner) => by_node.entry(owner.to_owned()).or_default().push(client),
                    None => missing.push(client),
                }
            }
            for (node, clients) in by_node {
                let op = Op::SendMany(m::SendToClients {
                    system_id: cmd.system_id.clone(),
                    client_ids: clients.clone(),
                    frame: cmd.frame.clone(),
                });
                let result = if node == self.node_id {
                    self.execute(op).await
                } else {
                    self.request(&node, op).await
                };
                match result {
                    Ok(value) => missing
                        .extend(serde_json::from_value::<Vec<String>>(value).unwrap_or_default()),
                    // A node that is gone has none of them.
                    Err(ApiError::NotFound(_)) => missing.extend(clients),
                    Err(err) => return Err(err),
                }
            }
            Ok(missing)
        })
    }

    /// Publishes once for the other nodes, delivers to local members; resolves to the
    /// cluster-wide member count.
    fn send_to_group(&self, cmd: m::SendToGroup) -> Reply<'_, usize> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let count = self
                .count_and_publish(
                    &cmd.system_id,
                    self.keys.members(&cmd.system_id, &cmd.group_name),
                    Some(cmd.group_name.clone()),
                    &cmd.frame,
                )
                .await?;
            self.local(cmd).await?;
            Ok(count)
        })
    }

    fn send_to_system(&self, cmd: m::SendToSystem) -> Reply<'_, usize> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let count = self
                .count_and_publish(
                    &cmd.system_id,
                    self.keys.clients(&cmd.system_id),
                    None,
                    &cmd.frame,
                )
                .await?;
            self.local(cmd).await?;
            Ok(count)
        })
    }

    fn bind_to_group(&self, cmd: m::BindToGroup) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Bind(cmd)).await.map(drop)
        })
    }

    fn unbind_from_group(&self, cmd: m::UnbindFromGroup) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Unbind(cmd)).await.map(drop)
        })
    }

    fn get_online_list(&self, cmd: m::GetOnlineList) -> Reply<'_, OnlineList> {
        Box::pin(async move { self.online_list(&cmd.system_id, &cmd.group_name).await })
    }

    fn get_all_groups(
        &self,
        cmd: m::GetAllGroups,
    ) -> Reply<'_, std::collections::BTreeMap<String, Vec<String>>> {
        Box::pin(async move { self.all_groups(&cmd.system_id).await })
    }

    fn close_client(&self, cmd: m::CloseClient) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Close(cmd)).await.map(drop)
        })
    }

    fn get_client_info(&self, cmd: m::GetClientInfo) -> Reply<'_, ClientInfo> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            match self.on_owner(&client, Op::Info(cmd)).await {
                Ok(value) => Ok(client_info_from(value, client)),
                Err(ApiError::NotFound(_)) => Ok(ClientInfo::Offline {
                    online: false,
                    client_id: client,
                }),
                Err(err) => Err(err),
            }
        })
    }
}

fn not_connected(client_id: &str) -> ApiError {
    m::RegistryError::UnknownClient(client_id.to_owned()).into()
}

fn client_info_from(value: serde_json::Value, client_id: String) -> ClientInfo {
    if value["online"] != serde_json::Value::Bool(true) {
        return ClientInfo::Offline {
            online: false,
            client_id,
        };
    }
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
    ClientInfo::Online {
        online: true,
        client_id,
        user_id: text("userId"),
        extend: text("extend"),
        groups: value["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        connected_at: value["connectedAt"].as_u64().unwrap_or_default(),
    }
}
