//! Where the cluster's Redis is: one address (`redis://`, `rediss://`), the master of a
//! Sentinel-watched group (`redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>`,
//! the credentials for the master and its replicas), asked of the sentinels again at every
//! connection, so a failover is followed without a restart; or a Redis Cluster
//! (`redis+cluster://[user:password@]host:port[,host:port...]`, any of its nodes), whose
//! client follows slot moves and shard failovers by itself.
//!
//! Shared by everything that connects to the backplane: the command connection and the
//! subscriber (`cluster`), the webhook outbox's connection, and `wshub import`. [`RedisConn`]
//! is the command connection whichever it is, so no caller asks which.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::IntoConnectionInfo;

/// Longest the sentinels (and the master they name, which is asked its role) may take to answer.
const ASK_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The scheme of a Sentinel address.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// The scheme of a Redis Cluster address.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// How long connecting to a server, and one of its answers, may take: past that a call
/// answers 503 instead of waiting for a dead server.
const CONNECT_WITHIN: Duration = Duration::from_secs(1);
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub enum RedisEndpoint {
    Direct(redis::Client),
    /// Asked for the master at each connection (one query, to the first sentinel that answers).
    Sentinel {
        sentinels: tokio::sync::Mutex<SentinelClient>,
        master: String,
    },
    /// A Redis Cluster: commands go to the shard that owns their keys; the subscriber connects
    /// to each shard's master itself (`cluster/subscriber.rs`), with `credentials`.
    Cluster {
        client: ClusterClient,
        /// The nodes given, `host:port,...`, for the log.
        seeds: String,
        credentials: redis::RedisConnectionInfo,
    },
}

/// A command connection to the backplane, reconnecting by itself: to one server (a direct
/// address or a Sentinel group's master), or to every shard of a Redis Cluster.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_command(cmd),
            RedisConn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RedisConn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(conn) => conn.get_db(),
            RedisConn::Cluster(conn) => conn.get_db(),
        }
    }
}

impl RedisEndpoint {
    /// Parses `--redis-url`. A Sentinel address names at least one sentinel and the master's
    /// name, a cluster address at least one node; nothing is connected yet.
    pub fn parse(url: &str) -> redis::RedisResult<RedisEndpoint> {
        if let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) {
            return Self::parse_cluster(rest);
        }
        let Some(rest) = url.strip_prefix(SENTINEL_SCHEME) else {
            return Ok(RedisEndpoint::Direct(redis::Client::open(url)?));
        };
        let invalid = |what: &str| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid Sentinel address",
                format!("{what}: expected {SENTINEL_SCHEME}host:port[,host:port...]/<master-name>"),
            ))
        };
        let (authority, master) = rest
            .rsplit_once('/')
            .ok_or_else(|| invalid("no master name"))?;
        // `?sentinel_password=...` (and `sentinel_username=...`): what the sentinels ask for.
        let (master, query) = master.split_once('?').unwrap_or((master, ""));
        if master.is_empty() {
            return Err(invalid("no master name"));
        }
        let mut sentinel_auth = redis::RedisConnectionInfo::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            match pair.split_once('=') {
                Some(("sentinel_password", value)) => sentinel_auth.password = Some(value.into()),
                Some(("sentinel_username", value)) => sentinel_auth.username = Some(value.into()),
                _ => return Err(invalid(&format!("unknown option '{pair}'"))),
            }
        }
        // `user:password@` (or `:password@`) is for the master and its replicas.
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let sentinels = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(|host| {
                let mut info = format!("redis://{host}").into_connection_info()?;
                info.redis = sentinel_auth.clone();
                Ok(info)
            })
            .collect::<redis::RedisResult<Vec<redis::ConnectionInfo>>>()?;
        if sentinels.is_empty() {
            return Err(invalid("no sentinel"));
        }
        let node_info = credentials.map(|credentials| {
            let (username, password) = match credentials.split_once(':') {
                Some((username, password)) => (username, Some(password.to_owned())),
                None => (credentials, None),
            };
            SentinelNodeConnectionInfo {
                tls_mode: None,
                redis_connection_info: Some(redis::RedisConnectionInfo {
                    username: (!username.is_empty()).then(|| username.to_owned()),
                    password,
                    ..Default::default()
                }),
            }
        });
        let client = SentinelClient::build(
            sentinels,
            master.to_owned(),
            node_info,
            SentinelServerType::Master,
        )?;
        Ok(RedisEndpoint::Sentinel {
            sentinels: tokio::sync::Mutex::new(client),
            master: master.to_owned(),
        })
    }

    /// `[user:password@]host:port[,host:port...]`: the credentials go to every node.
    fn parse_cluster(rest: &str) -> redis::RedisResult<RedisEndpoint> {
        let (credentials, hosts) = match rest.trim_end_matches('/').rsplit_once('@') {
            Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
            None => (String::new(), rest.trim_end_matches('/')),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(|host| format!("redis://{credentials}{host}"))
            .collect();
        if nodes.is_empty() || hosts.contains('/') {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid Redis Cluster address",
                format!("expected {CLUSTER_SCHEME}host:port[,host:port...] (no database number)"),
            )));
        }
        let client = ClusterClient::builder(nodes.clone())
            .connection_timeout(CONNECT_WITHIN)
            .response_timeout(ANSWER_WITHIN)
            // A shard that is failing over answers 503 at once; the caller retries.
            .retries(2)
            .max_retry_wait(200)
            .build()?;
        let credentials = nodes[0].as_str().into_connection_info()?.redis;
        let seeds = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .collect::<Vec<_>>()
            .join(",");
        Ok(RedisEndpoint::Cluster {
            client,
            seeds,
            credentials,
        })
    }

    /// The prefix of every key and channel under `prefix`: in a Redis Cluster, a hash tag, so
    /// the keys one script touches live on one shard (a prefix with a tag of its own is kept).
    pub fn key_prefix(&self, prefix: &str) -> String {
        let tagged = prefix
            .find('{')
            .is_some_and(|open| prefix[open..].find('}').is_some_and(|close| close > 1));
        match self {
            RedisEndpoint::Cluster { .. } if !tagged => format!("{{{prefix}}}"),
            _ => prefix.to_owned(),
        }
    }

    /// Whether channels go through sharded pub/sub (a Redis Cluster: a message crosses only its
    /// channel's shard).
    pub fn shards_channels(&self) -> bool {
        matches!(self, RedisEndpoint::Cluster { .. })
    }

    /// A command connection to the backplane as it is now (for a Sentinel group, to the
    /// master it names now), and which servers it reaches (see [`RedisEndpoint::serving`]).
    pub async fn connect(&self) -> redis::RedisResult<(RedisConn, String)> {
        match self {
            RedisEndpoint::Cluster { client, .. } => {
                let mut conn = RedisConn::Cluster(client.get_async_connection().await?);
                let serving = self.serving(&mut conn).await?;
                Ok((conn, serving))
            }
            _ => {
                let client = self.client().await?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(CONNECT_WITHIN)
                    .set_response_timeout(ANSWER_WITHIN)
                    .set_number_of_retries(1)
                    .set_max_delay(1000);
                let conn = client.get_connection_manager_with_config(config).await?;
                Ok((RedisConn::Single(conn), address_of(&client)))
            }
        }
    }

    /// Which servers hold the data now: the one address, the master the sentinels name, or a
    /// Redis Cluster's masters (their ids, asked over `conn`). When this changes, a failover
    /// happened and the promoted server may lag behind the old one.
    pub async fn serving(&self, conn: &mut RedisConn) -> redis::RedisResult<String> {
        match self {
            RedisEndpoint::Cluster { .. } => {
                let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(conn).await?;
                Ok(cluster_masters(&nodes))
            }
            _ => Ok(address_of(&self.client().await?)),
        }
    }

    /// What every server of a Redis Cluster is asked with (elsewhere the client carries its
    /// own: nothing).
    pub fn credentials(&self) -> redis::RedisConnectionInfo {
        match self {
            RedisEndpoint::Cluster { credentials, .. } => credentials.clone(),
            _ => Default::default(),
        }
    }

    /// A client for the server to use now: the one address, or the master the sentinels name
    /// now (checked to call itself master). (A Redis Cluster has no one server: see
    /// [`RedisEndpoint::connect`] and [`slot_masters`].)
    pub async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            RedisEndpoint::Direct(client) => Ok(client.clone()),
            RedisEndpoint::Cluster { .. } => Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a Redis Cluster has no single server",
            ))),
            RedisEndpoint::Sentinel { sentinels, .. } => {
                let asked = async { sentinels.lock().await.async_get_client().await };
                // A sentinel that never answers must not hold up the heartbeat that asks.
                tokio::time::timeout(ASK_WITHIN, asked)
                    .await
                    .unwrap_or_else(|_| {
                        Err(redis::RedisError::from((
                            redis::ErrorKind::IoError,
                            "the sentinels did not name a master in time",
                        )))
                    })
            }
        }
    }

    /// Whether the server can change under this address (a Sentinel group, a Redis Cluster's
    /// shards).
    pub fn follows_failovers(&self) -> bool {
        !matches!(self, RedisEndpoint::Direct(_))
    }

    /// What the log calls it.
    pub fn describe(&self) -> String {
        match self {
            RedisEndpoint::Direct(client) => client.get_connection_info().addr.to_string(),
            RedisEndpoint::Sentinel { master, .. } => format!("Sentinel master '{master}'"),
            RedisEndpoint::Cluster { seeds, .. } => format!("Redis Cluster ({seeds})"),
        }
    }
}

impl std::fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Slots `start..=end`, served by the master at (`host`, `port`).
pub type SlotRange = (i64, i64, (String, u16));

/// The slot of `key` (a key or a channel) in a Redis Cluster.
pub async fn slot_of(conn: &mut impl ConnectionLike, key: &str) -> redis::RedisResult<i64> {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await
}

/// The master that serves `slot`, in `ranges`.
pub fn master_serving(ranges: &[SlotRange], slot: i64) -> Option<&(String, u16)> {
    ranges
        .iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .map(|(_, _, master)| master)
}

/// Which master serves each range of slots, from `CLUSTER SLOTS` asked over `conn`.
pub async fn slot_masters(conn: &mut impl ConnectionLike) -> redis::RedisResult<Vec<SlotRange>> {
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    Ok(ranges
        .iter()
        .filter_map(|range| {
            let redis::Value::Array(fields) = range else {
                return None;
            };
            let start = redis::from_redis_value(fields.first()?).ok()?;
            let end = redis::from_redis_value(fields.get(1)?).ok()?;
            let redis::Value::Array(master) = fields.get(2)? else {
                return None;
            };
            let host = redis::from_redis_value(master.first()?).ok()?;
            let port = redis::from_redis_value(master.get(1)?).ok()?;
            Some((start, end, (host, port)))
        })
        .collect())
}

/// The masters that serve slots, from `CLUSTER NODES` (`<id> <addr> <flags> <master> <ping>
/// <pong> <epoch> <link> <slots...>` a line), by id: a failed master is left out, so a shard
/// whose replica took over reads differently.
fn cluster_masters(nodes: &str) -> String {
    let mut masters: Vec<&str> = nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            let serves = fields.len() > 8;
            let master = flags.split(',').any(|flag| flag == "master")
                && !flags
                    .split(',')
                    .any(|flag| flag == "fail" || flag == "fail?");
            (serves && master).then(|| fields[0])
        })
        .collect();
    masters.sort_unstable();
    masters.join(",")
}

/// The address a client connects to, to tell one master from another.
pub fn address_of(client: &redis::Client) -> String {
    client.get_connection_info().addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::{cluster_masters, RedisEndpoint};

    #[test]
    fn a_cluster_address_names_its_nodes_and_tags_the_prefix() {
        let endpoint =
            RedisEndpoint::parse("redis+cluster://:pw@127.0.0.1:7000,10.0.0.2:7001").unwrap();
        assert!(endpoint.follows_failovers());
        assert_eq!(
            endpoint.describe(),
            "Redis Cluster (127.0.0.1:7000,10.0.0.2:7001)"
        );
        // One hash tag for every key and channel: one script's keys on one shard.
        assert_eq!(endpoint.key_prefix("wshub:"), "{wshub:}");
        assert_eq!(endpoint.key_prefix("app:{eu}:"), "app:{eu}:");
        assert_eq!(endpoint.key_prefix("odd{}:"), "{odd{}:}");
        let direct = RedisEndpoint::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(direct.key_prefix("wshub:"), "wshub:");
        for url in ["redis+cluster://", "redis+cluster://127.0.0.1:7000/0"] {
            let err = RedisEndpoint::parse(url).expect_err(url).to_string();
            assert!(err.contains("host:port"), "{url}: {err}");
        }
    }

    #[test]
    fn a_failed_over_shard_changes_the_masters_that_serve() {
        let before = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
                      b2 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n\
                      c3 127.0.0.1:7002@17002 slave b2 0 0 2 connected\n";
        let failing = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
                       b2 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected 8192-16383\n\
                       c3 127.0.0.1:7002@17002 slave b2 0 0 2 connected\n";
        let after = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
                     b2 127.0.0.1:7001@17001 master,fail - 0 0 2 disconnected\n\
                     c3 127.0.0.1:7002@17002 master - 0 0 3 connected 8192-16383\n";
        assert_eq!(cluster_masters(before), "a1,b2");
        assert_eq!(cluster_masters(failing), "a1");
        assert_eq!(cluster_masters(after), "a1,c3");
    }

    #[test]
    fn a_sentinel_address_names_its_sentinels_and_master() {
        let endpoint =
            RedisEndpoint::parse("redis+sentinel://127.0.0.1:26379,10.0.0.2:26379/mymaster")
                .unwrap();
        assert!(endpoint.follows_failovers());
        assert_eq!(endpoint.describe(), "Sentinel master 'mymaster'");
        let with_password =
            RedisEndpoint::parse("redis+sentinel://:s3cr@t/x@127.0.0.1:26379/mymaster").unwrap();
        assert_eq!(with_password.describe(), "Sentinel master 'mymaster'");
        let sentinels_asking = RedisEndpoint::parse(
            "redis+sentinel://:m@127.0.0.1:26379/mymaster?sentinel_password=s&sentinel_username=u",
        )
        .unwrap();
        assert_eq!(sentinels_asking.describe(), "Sentinel master 'mymaster'");
        let direct = RedisEndpoint::parse("redis://127.0.0.1:6379/0").unwrap();
        assert!(!direct.follows_failovers());
        assert_eq!(direct.describe(), "127.0.0.1:6379");
    }

    #[test]
    fn a_sentinel_address_without_a_master_or_a_sentinel_is_refused_and_says_why() {
        for (url, why) in [
            ("redis+sentinel://127.0.0.1:26379", "no master name"),
            ("redis+sentinel://127.0.0.1:26379/", "no master name"),
            ("redis+sentinel:///mymaster", "no sentinel"),
            ("redis+sentinel://:secret@/mymaster", "no sentinel"),
            (
                "redis+sentinel://127.0.0.1:26379/m?password=x",
                "unknown option 'password=x'",
            ),
            (
                "redis+sentinel://127.0.0.1:26379/?sentinel_password=x",
                "no master name",
            ),
        ] {
            let err = RedisEndpoint::parse(url).expect_err(url).to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
