//! Cluster mode: several wshub nodes share one Redis and act as one server. The Redis may be a
//! Sentinel group's master ([`crate::redis_endpoint`]): each node follows a failover by itself
//! (`liveness.rs`), and a new master is treated like a Redis that restarted (see Readiness).
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
//! | `present:{system}:{field}` (set of clientIds) | who counts for a user in the system or a group (`presence.rs`) | the owning node |
//! | `leaving:{system}` (hash field → departure), `presence-due` (sorted set by deadline) | users' departures in their grace | the node whose write emptied the scope; removed by the one that announces it |
//! | `node-presence:{node}` (set of `system\nclientId\nfield`) | what a node's connections count for, for the purge | the owning node |
//! | `epoch` (string), `settling` (key with TTL) | the generation of Redis's data, see below | the first node to find it missing, or one that reconnects |
//! | `synced:{node}` (key with TTL) | the generation a node has rewritten its state for | each node |
//! | `outbox:{node}` (stream) | a node's pending webhook events (`webhooks/outbox_redis.rs`) | the node's webhook thread; emptied and deleted by the survivor that purges it |
//! | channel `sys:{system}` | group and system broadcasts, notices | any node, once per message |
//! | channel `node:{node}` | requests for a node's clients, and replies | any node |
//!
//! On a Redis Cluster (`redis+cluster://`) the prefix of every key becomes a hash tag
//! (`{wshub:}systems`), so every script's keys are on one shard, and each channel gets a tag
//! of its own (`wshub:sys:{system}`, `wshub:node:{node}`) and goes through sharded pub/sub,
//! so the messages spread over the shards (`keys.rs`, `subscriber.rs`).
//!
//! A clientId starts with its node's id, so any node knows where a client lives without a lookup.
//! A node subscribes to `sys:{system}` while it has a client of that system, so it receives only
//! the broadcasts of systems it serves; a broadcast is published once whatever the group size,
//! and every node delivers it to its own members of the group. Writes to Redis about local
//! clients go through one ordered queue ([`Event`](crate::actors::events::Event)), so a bind is never overtaken by the
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
//!
//! ## Files
//! - `node.rs`: the [`Cluster`] handle, its state and start-up, and readiness.
//! - `keys.rs` and `scripts.rs`: the key schema and the Lua scripts.
//! - `backplane.rs`: the REST operations, as the crate's `Backplane`.
//! - `systems.rs`: systems and their settings across nodes.
//! - `calls.rs`: requests to the node that owns a client.
//! - `pubsub.rs`: subscriptions, broadcasts, and what arrives on the channels.
//! - `subscriber.rs`: the subscriber's connections (one, or one per Redis Cluster shard).
//! - `writer.rs`: the ordered writer of this node's clients and groups.
//! - `liveness.rs`: heartbeats, epochs and the purge of dead nodes.
//! - `presence.rs`: users' presence (arrivals, departures after the grace) across nodes.
//! - `relay.rs`: a resume that reached another node, relayed to the client's node.
//! - `import.rs`: `wshub import`, a single node's systems written into a cluster.

mod backplane;
mod calls;
mod import;
mod keys;
mod liveness;
mod node;
mod presence;
mod pubsub;
mod relay;
mod scripts;
mod subscriber;
mod systems;
mod writer;

pub use import::{import_systems, Imported};
pub use node::RelayConfig;
pub use node::{new_node_id, owner_of, Cluster, ClusterConfig, SystemLease, NODE_ID_LEN};
