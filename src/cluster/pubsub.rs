//! The pub/sub side: this node's channel subscriptions (kept while sessions hold a
//! [`SystemLease`]), publishing broadcasts once for every node, and what arrives on the channels.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::actors::messages as m;
use crate::backplane::Audience;
use crate::error::ApiError;

use super::node::{Cluster, Subscriptions, SystemLease, SUBSCRIBE_TIMEOUT};
use super::scripts::{CHECK_EPOCH, COUNT, COUNT_AND_PUBLISH, PUBLISH};
use super::subscriber::Subscriber;

/// A broadcast on a `sys:` channel.
#[derive(Serialize, Deserialize)]
pub(super) struct Published {
    /// The node that published it (it has delivered it to its own members already).
    pub(super) o: String,
    /// Group, or the whole system when absent.
    pub(super) g: Option<String>,
    /// The frame.
    pub(super) f: String,
}

impl Published {
    /// The payload of a broadcast `from` a node (which delivers it to its own members itself).
    pub(super) fn payload(from: &str, group: Option<String>, frame: &str) -> String {
        serde_json::to_string(&Published {
            o: from.to_owned(),
            g: group,
            f: frame.to_owned(),
        })
        .unwrap_or_default()
    }
}

impl Cluster {
    /// Makes sure this node is subscribed to `system_id`'s channel for as long as the returned
    /// lease is held, waiting for Redis to confirm the subscription.
    pub(super) async fn lease_system(&self, system_id: &str) -> Result<SystemLease, ApiError> {
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

    /// Counts the members at `count_key` and publishes the frame for the other nodes, guarded
    /// by the epoch so the count is never that of a half-rebuilt Redis: in one round trip, or
    /// (sharded channels, on their own shards) the count and then the publish.
    pub(super) async fn count_and_publish(
        &self,
        system: &str,
        count_key: String,
        group: Option<String>,
        frame: &ByteString,
    ) -> Result<usize, ApiError> {
        let payload = self.envelope(group, frame);
        let channel = self.keys.system_channel(system);
        let count = if self.keys.sharded {
            let count = self.run_guarded(&COUNT, &[count_key], &[]).await?;
            self.publish_now(&channel, &payload).await?;
            count
        } else {
            let args = [channel.as_str(), payload.as_str()];
            self.run_guarded(&COUNT_AND_PUBLISH, &[count_key], &args)
                .await?
        };
        Ok(count as usize)
    }

    /// Publishes `payload` on `channel` while Redis holds the epoch this node is ready for
    /// (else 503); how many nodes received it.
    pub(super) async fn publish_guarded(
        &self,
        channel: &str,
        payload: &str,
    ) -> Result<i64, ApiError> {
        if self.keys.sharded {
            self.run_guarded(&CHECK_EPOCH, &[], &[]).await?;
            self.publish_now(channel, payload).await
        } else {
            self.run_guarded(&PUBLISH, &[], &[channel, payload]).await
        }
    }

    /// Publishes `payload` on `channel`; how many nodes received it.
    pub(super) async fn publish_now(&self, channel: &str, payload: &str) -> Result<i64, ApiError> {
        let publish = self.keys.publish(channel, payload);
        self.track(publish.query_async(&mut self.conn()).await)
    }

    pub(super) fn envelope(&self, group: Option<String>, frame: &ByteString) -> String {
        Published::payload(&self.node_id, group, frame)
    }

    pub(super) async fn publish(
        &self,
        system: &str,
        group: Option<String>,
        frame: &ByteString,
    ) -> Result<(), ApiError> {
        let payload = self.envelope(group, frame);
        self.publish_now(&self.keys.system_channel(system), &payload)
            .await?;
        Ok(())
    }

    /// Keeps a pub/sub connection subscribed to this node's channel and the systems it serves,
    /// reconnecting (and resubscribing) by itself when Redis goes away and comes back. A node
    /// that reconnects starts a new epoch: it missed what was published meanwhile, and Redis
    /// may have lost what every node wrote.
    pub(super) async fn subscribe_loop(self: Arc<Self>, mut changed: mpsc::UnboundedReceiver<()>) {
        let mut backoff = Duration::from_millis(50);
        let mut reconnecting = false;
        loop {
            // Asked each time: a Sentinel group (or a shard) may have another master now.
            let connected =
                Subscriber::connect(&self.endpoint, self.conn(), self.keys.sharded).await;
            let mut subscriber = match connected {
                Ok(subscriber) => subscriber,
                Err(err) => {
                    log::debug!("Redis pub/sub connection failed: {err}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                    continue;
                }
            };
            let mut subscribed: HashSet<String> = HashSet::new();
            if let Err(err) = self
                .sync_subscriptions(&mut subscriber, &mut subscribed)
                .await
            {
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
                    message = subscriber.next() => match message {
                        Some(message) => self.on_message(message),
                        None => break,
                    },
                    Some(()) = changed.recv() => {
                        if self.sync_subscriptions(&mut subscriber, &mut subscribed).await.is_err() {
                            break;
                        }
                    }
                    () = self.resubscribe.notified() => break,
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

    pub(super) async fn sync_subscriptions(
        &self,
        subscriber: &mut Subscriber,
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
            subscriber.subscribe(&channel).await?;
            subscribed.insert(channel);
        }
        for channel in to_remove {
            subscriber.unsubscribe(&channel).await?;
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
    pub(super) fn fully_subscribed(&self) -> bool {
        let subs = Self::lock(&self.subscriptions);
        subs.connected && subs.wanted.keys().all(|c| subs.confirmed.contains(c))
    }

    pub(super) fn on_message(self: &Arc<Self>, message: redis::Msg) {
        let channel = message.get_channel_name().to_owned();
        let Ok(payload) = message.get_payload::<String>() else {
            return;
        };
        if let Some(system) = self.keys.system_of_channel(&channel) {
            let Ok(published) = serde_json::from_str::<Published>(&payload) else {
                return;
            };
            if published.o == self.node_id {
                return; // Delivered here when it was published.
            }
            // The same delivery as the publishing node's: one path for local delivery.
            self.registry.do_send(m::Deliver {
                system_id: system.to_owned(),
                audience: published.g.map_or(Audience::System, Audience::Group),
                frame: ByteString::from(published.f),
            });
            return;
        }
        self.on_node_message(&payload);
    }
}
