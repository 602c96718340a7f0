//! The webhook outbox of a cluster node: its pending events in a Redis stream of its own,
//! `outbox:{node}` under the cluster's prefix, one entry per event (field `e`, the stored JSON)
//! with the id `0-<seq>`, so the stream's order is the order the node decided them in.
//!
//! Why a stream per node and not one per system read by a consumer group: a node delivers the
//! events it decided (it knows their order per client and per group, and batches them per
//! system), so no two nodes ever post one system's batches concurrently, out of order. What a
//! consumer group would add, taking over a dead consumer's pending entries, is done by the
//! dead-node purge instead: the one survivor that purges a node *adopts* its stream (moves its
//! entries into its own, atomically, a chunk at a time) before it announces the node's clients
//! offline, so those events come after the dead node's own.
//!
//! Owned by the delivery thread, which connects on first use (on its own runtime) and again
//! after a failure.

use std::sync::Arc;

use crate::redis_endpoint::{RedisConn, RedisEndpoint};

/// Moves up to ARGV[2] entries from KEYS[1] (a dead node's stream) to KEYS[2] (this node's),
/// numbered from ARGV[1], and returns their JSON in order; deletes KEYS[1] once it is empty.
static ADOPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[2])
local seq = tonumber(ARGV[1])
local moved = {}
for _, entry in ipairs(entries) do
  local json = entry[2][2]
  redis.call('XADD', KEYS[2], '0-' .. seq, 'e', json)
  redis.call('XDEL', KEYS[1], entry[1])
  moved[#moved + 1] = json
  seq = seq + 1
end
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return moved
"#,
    )
});

/// A node's stream of pending events.
pub struct RedisOutbox {
    /// Asked for the server at each connection (a Sentinel group's master may change).
    endpoint: Arc<RedisEndpoint>,
    /// `None` until the first write, and after a failed one.
    conn: Option<RedisConn>,
    prefix: String,
    /// This node's stream.
    key: String,
}

impl RedisOutbox {
    /// The outbox of node `node_id` in the Redis at `endpoint`, under `prefix`. Connects on
    /// first use, and again after a failure.
    pub fn new(endpoint: Arc<RedisEndpoint>, prefix: &str, node_id: &str) -> RedisOutbox {
        RedisOutbox {
            endpoint,
            conn: None,
            prefix: prefix.to_owned(),
            key: stream_key(prefix, node_id),
        }
    }

    /// What the log calls it.
    pub fn describe(&self) -> String {
        format!("in Redis ({})", self.key)
    }

    async fn conn(&mut self) -> redis::RedisResult<RedisConn> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        let (conn, _) = self.endpoint.connect().await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// Adds `added` (sequence number, JSON) and removes `removed`, in one round trip.
    pub async fn commit(&mut self, added: &[(u64, String)], removed: &[u64]) -> Result<(), String> {
        let mut pipe = redis::pipe();
        for (seq, json) in added {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg(format!("0-{seq}"))
                .arg("e")
                .arg(json)
                .ignore();
        }
        if !removed.is_empty() {
            let ids: Vec<String> = removed.iter().map(|seq| format!("0-{seq}")).collect();
            pipe.cmd("XDEL").arg(&self.key).arg(ids).ignore();
        }
        let result: redis::RedisResult<()> = match self.conn().await {
            Ok(mut conn) => pipe.query_async(&mut conn).await,
            Err(err) => Err(err),
        };
        result.map_err(|err| {
            self.conn = None;
            err.to_string()
        })
    }

    /// Moves up to `count` of dead node `node_id`'s pending events into this node's stream,
    /// numbered from `first_seq`; returns their JSON, in order (fewer than `count`: none left).
    pub async fn adopt(
        &mut self,
        node_id: &str,
        first_seq: u64,
        count: usize,
    ) -> Result<Vec<String>, String> {
        let mut invocation = ADOPT.prepare_invoke();
        invocation
            .key(stream_key(&self.prefix, node_id))
            .key(&self.key)
            .arg(first_seq)
            .arg(count);
        let result = match self.conn().await {
            Ok(mut conn) => invocation.invoke_async(&mut conn).await,
            Err(err) => Err(err),
        };
        result.map_err(|err| {
            self.conn = None;
            err.to_string()
        })
    }
}

fn stream_key(prefix: &str, node_id: &str) -> String {
    format!("{prefix}outbox:{node_id}")
}
