//! Nodes on a Redis Cluster (`redis+cluster://`): a shard's master killed under load is
//! followed without a restart. The test runs its own cluster (three masters, a replica each;
//! Debian's redis-server on free ports, cluster bus ports chosen the same way).

use std::time::Duration;

use crate::failover::until;

use redis::AsyncCommands;

use crate::helpers::OwnServer;

/// How long a silent master has before its replica takes over.
const NODE_TIMEOUT_MS: &str = "1000";

/// A Redis Cluster private to one test: `nodes[..3]` start as masters, `nodes[3..]` as their
/// replicas.
pub(crate) struct RedisClusterGroup {
    pub(crate) nodes: Vec<OwnServer>,
    dir: std::path::PathBuf,
    /// The master [`FailingRedis::kill_master`] killed, and a key it served.
    killed: Option<(usize, String)>,
}

impl RedisClusterGroup {
    /// Starts six servers and joins them with `redis-cli --cluster create`; `None` (the test
    /// skips) where redis-server or redis-cli is missing, outside CI.
    pub(crate) async fn start() -> Option<RedisClusterGroup> {
        let installed = |program: &str| {
            std::process::Command::new(program)
                .arg("--version")
                .output()
                .is_ok()
        };
        if !installed("redis-server") || !installed("redis-cli") {
            let reason =
                "redis-server or redis-cli is not installed (apt-get install redis-server)";
            crate::helpers::skip_unless_ci("Redis Cluster test", reason);
            return None;
        }
        let dir = crate::systems::scratch_dir("redis-cluster");
        let mut nodes = Vec::new();
        for i in 0..6 {
            let node_dir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let bus_port = free_port().to_string();
            let node_dir = node_dir.to_str().unwrap().to_owned();
            let args = [
                "--port",
                "{port}",
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus_port,
                "--cluster-node-timeout",
                NODE_TIMEOUT_MS,
                "--dir",
                &node_dir,
                "--save",
                "",
                "--appendonly",
                "no",
            ];
            nodes.push(OwnServer::start("redis-server", &args).expect("a cluster node starts"));
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(created.status.success(), "{created:?}");
        let group = RedisClusterGroup {
            nodes,
            dir,
            killed: None,
        };
        // A replica takes over only once it has synced with its master.
        until(
            Duration::from_secs(20),
            "the cluster ok and synced",
            || async {
                let mut ok = true;
                for node in &group.nodes {
                    let cluster: String = match connect(node.port).await {
                        Ok(mut conn) => redis::cmd("CLUSTER")
                            .arg("INFO")
                            .query_async(&mut conn)
                            .await
                            .unwrap_or_default(),
                        Err(_) => String::new(),
                    };
                    ok &= cluster.contains("cluster_state:ok");
                    let replication = crate::failover::info(node.port, None, "replication").await;
                    ok &= replication.contains("role:master")
                        || replication.contains("master_link_status:up");
                }
                ok
            },
        )
        .await;
        Some(group)
    }

    /// `redis+cluster://` naming the three first masters.
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes[..3]
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// Which of `nodes` is the master serving `key` now, as the node at `ask` sees it.
    async fn master_of(&self, ask: u16, key: &str) -> Option<usize> {
        let mut conn = connect(ask).await.ok()?;
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query_async(&mut conn)
            .await
            .ok()?;
        let ranges: Vec<(i64, i64, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async::<Vec<redis::Value>>(&mut conn)
            .await
            .ok()?
            .into_iter()
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
            .collect();
        let (_, _, (_, port)) = ranges
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))?;
        self.nodes.iter().position(|node| node.port == port)
    }
}

impl crate::failover::FailingRedis for RedisClusterGroup {
    fn url(&self) -> String {
        RedisClusterGroup::url(self)
    }

    async fn kill_master(&mut self, prefix: &str) {
        // The nodes' keys share the hash tag `{prefix}`.
        let key = format!("{{{prefix}}}epoch");
        let index = self.master_of(self.nodes[0].port, &key).await;
        let index = index.expect("a master serves the nodes' keys");
        self.nodes[index].kill();
        self.killed = Some((index, key));
    }

    async fn promoted(&self) -> bool {
        let Some((killed, key)) = &self.killed else {
            return false;
        };
        let survivor = self.nodes[(killed + 1) % 3].port;
        let master = self.master_of(survivor, key).await;
        master.is_some_and(|index| index != *killed)
    }

    async fn members_on_master(&self, prefix: &str, system: &str, group: &str) -> usize {
        // The nodes' keys share the hash tag `{prefix}`.
        let key = format!("{{{prefix}}}members:{system}:{group}");
        let asked = self.nodes[3].port;
        let master = self.master_of(asked, &key).await.expect("a master");
        let mut conn = connect(self.nodes[master].port).await.unwrap();
        conn.hlen(key).await.unwrap()
    }
}

impl Drop for RedisClusterGroup {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn connect(port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    crate::failover::connect(port, None).await
}

/// The master of the shard that holds the nodes' keys killed under a steady load of calls:
/// meanwhile every call is answered right or 503 (never wrongly), the clients stay connected,
/// and within 10 s of its replica's promotion both nodes serve again with every system and
/// membership written back to the promoted replica.
#[actix_web::test]
async fn a_redis_cluster_shard_failover_is_followed_without_a_restart_and_without_a_wrong_answer() {
    if let Some(group) = RedisClusterGroup::start().await {
        crate::failover::failover_under_load(group, "Redis Cluster shard failover").await;
    }
}
