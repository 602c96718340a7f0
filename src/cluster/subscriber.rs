//! The subscriber's connection, whichever pub/sub the backplane uses: one connection with
//! `SUBSCRIBE` to one Redis (or a Sentinel group's master), or on a Redis Cluster one
//! connection per shard with `SSUBSCRIBE`, each channel on the master of its slot. Either way
//! the subscriber loop (`pubsub.rs`) sees one stream of messages, which ends when any
//! connection is lost (what was published meanwhile is missed, so the loop starts a new epoch).

use std::collections::HashMap;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::{PushInfo, PushKind};
use tokio::sync::mpsc;

use crate::redis_endpoint::{
    master_serving, slot_masters, slot_of, RedisConn, RedisEndpoint, SlotRange,
};

pub(super) enum Subscriber {
    Single {
        sink: PubSubSink,
        stream: PubSubStream,
    },
    Sharded(Shards),
}

/// Sharded pub/sub on a Redis Cluster.
pub(super) struct Shards {
    /// Commands connection, to ask the cluster where a channel lives.
    conn: RedisConn,
    /// Which master serves each slot (`CLUSTER SLOTS`, read at connect).
    slots: Vec<SlotRange>,
    /// A connection per master that serves a channel this node wants, by address.
    masters: HashMap<(String, u16), MultiplexedConnection>,
    /// Where each subscribed channel lives.
    homes: HashMap<String, (String, u16)>,
    /// What every shard connection pushes (messages, confirmations, its loss).
    pushes: mpsc::UnboundedReceiver<PushInfo>,
    push_tx: mpsc::UnboundedSender<PushInfo>,
    /// Credentials for the masters.
    credentials: redis::RedisConnectionInfo,
}

impl Subscriber {
    /// Connects the way `endpoint` asks (for a Sentinel group: to the master it names now);
    /// `conn` asks a Redis Cluster where its slots are.
    pub(super) async fn connect(
        endpoint: &RedisEndpoint,
        mut conn: RedisConn,
        sharded: bool,
    ) -> redis::RedisResult<Subscriber> {
        if !sharded {
            let client = endpoint.client().await?;
            let (sink, stream) = client.get_async_pubsub().await?.split();
            return Ok(Subscriber::Single { sink, stream });
        }
        let slots = slot_masters(&mut conn).await?;
        let (push_tx, pushes) = mpsc::unbounded_channel();
        Ok(Subscriber::Sharded(Shards {
            conn,
            slots,
            masters: HashMap::new(),
            homes: HashMap::new(),
            pushes,
            push_tx,
            credentials: endpoint.credentials(),
        }))
    }

    pub(super) async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Subscriber::Single { sink, .. } => sink.subscribe(channel).await,
            Subscriber::Sharded(shards) => shards.subscribe(channel).await,
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            Subscriber::Single { sink, .. } => sink.unsubscribe(channel).await,
            Subscriber::Sharded(shards) => shards.unsubscribe(channel).await,
        }
    }

    /// The next message; `None` once a connection is lost (or a shard dropped a subscription
    /// by itself, as it does when a slot moves).
    pub(super) async fn next(&mut self) -> Option<redis::Msg> {
        match self {
            Subscriber::Single { stream, .. } => stream.next().await,
            Subscriber::Sharded(shards) => loop {
                let push = shards.pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage => return redis::Msg::from_push_info(push),
                    PushKind::Disconnection => return None,
                    PushKind::SUnsubscribe => {
                        let channel: Option<String> = push
                            .data
                            .first()
                            .and_then(|c| redis::from_redis_value(c).ok());
                        // Not one this node let go of: the shard dropped it.
                        if channel.is_some_and(|c| shards.homes.contains_key(&c)) {
                            return None;
                        }
                    }
                    _ => {}
                }
            },
        }
    }
}

impl Shards {
    async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        let slot = slot_of(&mut self.conn, channel).await?;
        let home = master_serving(&self.slots, slot).cloned().ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::ClusterDown, "no master serves a slot"))
        })?;
        let mut conn = match self.masters.get(&home) {
            Some(conn) => conn.clone(),
            None => {
                let conn = self.connect(&home).await?;
                self.masters.insert(home.clone(), conn.clone());
                conn
            }
        };
        // Answered once the shard has confirmed it (RESP3: the confirmation is the reply).
        redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .exec_async(&mut conn)
            .await?;
        self.homes.insert(channel.to_owned(), home);
        Ok(())
    }

    async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        let Some(home) = self.homes.remove(channel) else {
            return Ok(());
        };
        let Some(mut conn) = self.masters.get(&home).cloned() else {
            return Ok(());
        };
        redis::cmd("SUNSUBSCRIBE")
            .arg(channel)
            .exec_async(&mut conn)
            .await
    }

    /// A RESP3 connection to one master, its pushes into the common queue.
    async fn connect(
        &self,
        (host, port): &(String, u16),
    ) -> redis::RedisResult<MultiplexedConnection> {
        let mut redis = self.credentials.clone();
        redis.protocol = redis::ProtocolVersion::RESP3;
        let client = redis::Client::open(redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(host.clone(), *port),
            redis,
        })?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(std::time::Duration::from_secs(1))
            .set_response_timeout(std::time::Duration::from_secs(2))
            .set_push_sender(self.push_tx.clone());
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}
