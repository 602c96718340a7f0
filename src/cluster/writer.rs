//! The membership writer: applies the registry's [`Event`]s to Redis in order, one task, so a
//! bind is never overtaken by the disconnect that follows it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use redis::AsyncCommands;
use tokio::sync::mpsc;

use crate::actors::events::Event;
use crate::error::ApiError;

use super::keys::MemberInfo;
use super::node::Cluster;
use super::scripts::{ADMIT, JOIN, LEAVE};
use crate::actors::outward::BackendEvent;
use crate::settings::EventName;

impl Cluster {
    /// Writes a new client to Redis before its welcome frame, so every node can reach it.
    pub(super) async fn admit_client(
        &self,
        system_id: &str,
        client_id: &str,
    ) -> Result<(), ApiError> {
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

    /// Applies local changes to Redis, in the order they happened.
    pub(super) async fn write_events(self: Arc<Self>, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(event) = events.recv().await {
            // A write lost while Redis is down is not retried one by one: the whole state is
            // written again once Redis answers (see `heartbeat_loop`).
            if self.apply(event).await.is_err() {
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    pub(super) async fn apply(&self, event: Event) -> Result<(), ApiError> {
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
                joined,
                notice,
            } => {
                let info =
                    serde_json::to_string(&MemberInfo { user_id, extend }).unwrap_or_default();
                if joined {
                    // A new membership: whether it made the group occupied is decided here,
                    // once for the whole cluster.
                    let first: redis::RedisResult<i64> = JOIN
                        .key(keys.members(&system_id, &group_name))
                        .key(keys.groups(&system_id))
                        .arg(&client_id)
                        .arg(&info)
                        .arg(&group_name)
                        .invoke_async(&mut conn)
                        .await;
                    if self.track(first)? == 1 {
                        self.occupancy(&system_id, &group_name, true);
                    }
                }
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
                match notice {
                    Some(notice) => self.publish(&system_id, Some(group_name), &notice).await,
                    None => Ok(()),
                }
            }
            Event::Presence {
                system_id,
                changes,
                rewrite,
            } => self.write_presence(&system_id, changes, rewrite).await,
            Event::Barrier(done) => {
                let _ = done.send(!self.dirty.load(Ordering::Relaxed));
                Ok(())
            }
        }
    }

    pub(super) async fn leave(
        &self,
        system: &str,
        group: &str,
        client: &str,
    ) -> Result<(), ApiError> {
        let result: redis::RedisResult<i64> = LEAVE
            .key(self.keys.members(system, group))
            .key(self.keys.groups(system))
            .arg(client)
            .arg(group)
            .invoke_async(&mut self.conn())
            .await;
        if self.track(result)? == 1 {
            self.occupancy(system, group, false);
        }
        Ok(())
    }

    /// Tells the system's webhook that a group became occupied or vacated, cluster-wide: only
    /// the node whose write made the change calls this.
    pub(super) fn occupancy(&self, system: &str, group: &str, occupied: bool) {
        if occupied {
            self.hook(system, EventName::GroupOccupied, || {
                BackendEvent::group_occupied(group)
            });
        } else {
            self.hook(system, EventName::GroupVacated, || {
                BackendEvent::group_vacated(group)
            });
        }
    }

    /// Queues a webhook event this node decided for the cluster, if the system asks for it.
    pub(super) fn hook(&self, system: &str, name: EventName, event: impl FnOnce() -> BackendEvent) {
        let settings = Self::lock(&self.known_systems).get(system).cloned();
        self.outward.send(system, settings.as_ref(), name, event);
    }
}
