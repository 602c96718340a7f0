//! Liveness and purge: each node's heartbeat, epochs after Redis restarts, rewriting this
//! node's state, and removing what dead nodes left behind.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;

use crate::actors::messages as m;
use crate::actors::outward::{BackendEvent, Offline, OfflineReason};
use crate::error::ApiError;
use crate::settings::{EventName, PresenceMode, SystemSettings};

use super::keys::MemberInfo;
use super::node::{
    not_subscribed, Cluster, HEARTBEAT, NODE_TTL, NOT_READY_BEAT, PURGE_EVERY, SETTLE,
};
use super::pubsub::Published;
use super::scripts::{EPOCH, NEW_EPOCH};

/// Longest a heartbeat spends following a failover (asking the sentinels, or a Redis Cluster
/// for its masters, and reconnecting): the beat that follows must come well within the
/// liveness TTL, or the other nodes would purge this live node.
const FOLLOW_WITHIN: Duration = Duration::from_secs(2);

/// Longest a purge waits for the webhook delivery thread to take over a dead node's pending
/// events.
const ADOPT_WITHIN: Duration = Duration::from_secs(10);

impl Cluster {
    /// Starts a new epoch (see the module docs) with a settling period.
    pub(super) async fn start_new_epoch(&self) -> Result<(), ApiError> {
        let result: redis::RedisResult<i64> = NEW_EPOCH
            .key(self.keys.epoch())
            .key(self.keys.settling())
            .arg(crate::protocol::new_id())
            .arg(SETTLE.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await;
        self.track(result).map(drop)
    }

    /// Refreshes this node's liveness, keeps its state written for the current epoch, decides
    /// readiness, and purges dead nodes.
    pub(super) async fn heartbeat_loop(self: Arc<Self>) {
        let mut last_purge = tokio::time::Instant::now();
        loop {
            let _ = tokio::time::timeout(FOLLOW_WITHIN, self.follow_master()).await;
            if let Err(err) = self.beat().await {
                log::debug!("heartbeat: {err}");
                self.set_ready_epoch(None);
            }
            if self.ready_epoch().is_some() && last_purge.elapsed() >= PURGE_EVERY {
                last_purge = tokio::time::Instant::now();
                let _ = self.purge_dead_nodes().await;
                let _ = self.check_relay_peers().await;
            }
            let period = if self.ready_epoch().is_some() {
                HEARTBEAT
            } else {
                NOT_READY_BEAT
            };
            let _ = tokio::time::timeout(period, self.wake_heartbeat.notified()).await;
        }
    }

    /// A Sentinel group's master, or a Redis Cluster shard's, may change: when another serves,
    /// the command connection moves to it and the subscriber connects again, which starts a new
    /// epoch, so every node writes back what it knows (a promoted replica may lag behind the
    /// old master). While no master answers, calls fail and answer 503.
    async fn follow_master(&self) {
        if !self.endpoint.follows_failovers() {
            return;
        }
        // No answer: the connection may hold a stale map of a Redis Cluster (a dead master's
        // slots, where every call times out); a fresh connection reads the map again.
        let asked = self.endpoint.serving(&mut self.conn()).await.ok();
        let old = Self::lock(&self.redis_address).clone();
        if asked.as_ref() == Some(&old) {
            return;
        }
        match self.endpoint.connect().await {
            Ok((conn, serving)) => {
                *Self::lock(&self.redis) = conn;
                if serving != old {
                    log::warn!("the Redis master is {serving} now (was {old}); following it");
                    *Self::lock(&self.redis_address) = serving;
                    self.resubscribe.notify_one();
                }
            }
            Err(err) => log::debug!("no new Redis master answers yet: {err}"),
        }
    }

    /// This node has seen the settings at `version` (its own `update_system`).
    pub(super) fn saw_settings_version(&self, version: u64) {
        let _ =
            self.settings_version_seen
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seen| {
                    (seen == u64::MAX || seen < version).then_some(version)
                });
    }

    /// One heartbeat; see the module docs on readiness.
    pub(super) async fn beat(&self) -> Result<(), ApiError> {
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
                return Err(not_subscribed());
            }
            self.rewrite_state().await?;
            if !self.fully_subscribed() {
                return Err(not_subscribed());
            }
            *Self::lock(&self.synced_epoch) = Some(epoch.clone());
            self.has_synced.store(true, Ordering::Relaxed);
        }
        let ttl = NODE_TTL.as_secs();
        let (settling, nodes, settings_version): (bool, Vec<String>, Option<u64>) = self.track(
            redis::pipe()
                .set_ex(keys.alive(&self.node_id), 1, ttl)
                .ignore()
                .sadd(keys.nodes(), &self.node_id)
                .ignore()
                .set_ex(keys.synced(&self.node_id), &epoch, ttl)
                .ignore()
                .exists(keys.settling())
                .smembers(keys.nodes())
                .get(keys.settings_version())
                .query_async(&mut conn)
                .await,
        )?;
        let settings_version = settings_version.unwrap_or_default();
        if self
            .settings_version_seen
            .swap(settings_version, Ordering::Relaxed)
            != settings_version
        {
            self.refresh_systems().await?;
        }
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
    pub(super) async fn rewrite_state(&self) -> Result<(), ApiError> {
        if !self.has_synced.load(Ordering::Relaxed) {
            // A node that has never been synced holds nothing yet (and its registry may not
            // run until the server does).
            return Ok(());
        }
        log::info!("writing this node's systems, clients and groups to Redis");
        self.dirty.store(false, Ordering::Relaxed);
        let systems: Vec<(String, SystemSettings)> = Self::lock(&self.known_systems)
            .iter()
            .map(|(id, settings)| (id.clone(), settings.clone()))
            .collect();
        if !systems.is_empty() {
            // Settings only where Redis has none: a node that was merely cut off must not undo
            // a change made meanwhile (it reads them back through `settings-version`). But a
            // Redis whose `settings-version` is behind what this node has seen holds older
            // settings than this node (a promoted replica that lagged, a server restored from
            // a snapshot): then this node's are written over them.
            let version: Option<u64> =
                self.track(self.conn().get(self.keys.settings_version()).await)?;
            let seen = self.settings_version_seen.load(Ordering::Relaxed);
            let behind = seen != u64::MAX && version.unwrap_or_default() < seen;
            if behind {
                log::warn!(
                    "Redis holds settings older than this node has seen (version {} < {seen}): \
                     writing this node's back",
                    version.unwrap_or_default()
                );
            }
            let mut pipe = redis::pipe();
            for (system_id, settings) in &systems {
                let json = serde_json::to_string(settings).unwrap_or_default();
                pipe.sadd(self.keys.systems(), system_id).ignore();
                if behind {
                    pipe.set(self.keys.settings(system_id), json).ignore();
                } else {
                    pipe.set_nx(self.keys.settings(system_id), json).ignore();
                }
            }
            if behind {
                // Moved past what any node has seen, so every node reads the settings again.
                pipe.set(self.keys.settings_version(), seen + 1).ignore();
            }
            let _: () = self.track(pipe.query_async(&mut self.conn()).await)?;
        }
        self.forget_own_presence().await?;
        self.registry.send(m::ReportAll).await?;
        self.written().await
    }

    /// Removes the clients of every node whose liveness key expired, with their 1002 notices.
    /// A lock per dead node makes sure only one survivor purges it.
    pub(super) async fn purge_dead_nodes(&self) -> Result<(), ApiError> {
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
            // Its pending webhook events first, so that what is announced below comes after
            // them. Not taken: the purge waits for the next round.
            let adopted = tokio::time::timeout(ADOPT_WITHIN, self.webhooks.adopt(&node)).await;
            if let Err(err) =
                adopted.unwrap_or_else(|_| Err(format!("no answer in {ADOPT_WITHIN:?}")))
            {
                log::warn!("dead node {node}: its pending webhook events not taken over ({err}); trying again");
                let _: redis::RedisResult<()> = conn.del(keys.purge_lock(&node)).await;
                continue;
            }
            self.purge_presence(&node).await?;
            let clients: Vec<String> = self.track(conn.smembers(keys.node_clients(&node)).await)?;
            log::warn!("node {node} is dead: purging its {} clients", clients.len());
            for entry in clients {
                let Some((system, client)) = entry.split_once('\n') else {
                    continue;
                };
                // Known here, so the webhook events below reach the system's webhook.
                let _ = self.ensure_system(system).await;
                let groups: Vec<String> =
                    self.track(conn.smembers(keys.client_groups(system, client)).await)?;
                let mut user_id = String::new();
                for group in &groups {
                    let info: Option<String> =
                        self.track(conn.hget(keys.members(system, group), client).await)?;
                    let info: MemberInfo = info
                        .and_then(|i| serde_json::from_str(&i).ok())
                        .unwrap_or(MemberInfo {
                            user_id: String::new(),
                            extend: String::new(),
                        });
                    self.hook(system, EventName::GroupLeft, || {
                        BackendEvent::group_left(client, group, &info.user_id, "offline")
                    });
                    self.leave(system, group, client).await?;
                    // Under presence "user" a user's own departure is announced instead.
                    if info.user_id.is_empty() || self.presence_mode(system) == PresenceMode::Client
                    {
                        let notice = crate::protocol::presence_frame(
                            false,
                            client,
                            &info.user_id,
                            &info.extend,
                        );
                        // Published as if from the dead node, so every live node delivers it.
                        let payload = Published::payload(&node, Some(group.clone()), &notice);
                        self.publish_now(&keys.system_channel(system), &payload)
                            .await?;
                    }
                    user_id = info.user_id;
                }
                self.hook(system, EventName::ClientOffline, || {
                    let offline = Offline::new(OfflineReason::NodeLost, None);
                    BackendEvent::client_offline(client, &user_id, &groups, offline)
                });
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
