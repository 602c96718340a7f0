//! Nodes on a Redis Cluster (`redis+cluster://`): a shard's master killed under load is
//! followed without a restart. The test runs its own cluster (three masters, a replica each;
//! Debian's redis-server on free ports, cluster bus ports chosen the same way).

use std::time::Duration;

use crate::failover::until;

use redis::AsyncCommands;

use wshub::redis_endpoint::{master_serving, slot_masters, slot_of};

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
        let slot = slot_of(&mut conn, key).await.ok()?;
        let ranges = slot_masters(&mut conn).await.ok()?;
        let (_, port) = master_serving(&ranges, slot)?;
        self.nodes.iter().position(|node| node.port == *port)
    }
}

impl crate::failover::FailingRedis for RedisClusterGroup {
    fn url(&self) -> String {
        RedisClusterGroup::url(self)
    }

    async fn kill_master(&mut self, key: &str) {
        let index = self.master_of(self.nodes[0].port, key).await;
        let index = index.expect("a master serves the key");
        self.nodes[index].kill();
        self.killed = Some((index, key.to_owned()));
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

/// The master of the shard that holds the nodes' keys (their hash tag is the prefix) killed
/// under a steady load of calls: meanwhile every call is answered right or 503 (never
/// wrongly), the clients stay connected, and within 10 s of its replica's promotion both
/// nodes serve again with every membership written back to the promoted replica.
#[actix_web::test]
async fn a_failover_of_the_shard_with_the_keys_is_followed_without_a_wrong_answer() {
    if let Some(group) = RedisClusterGroup::start().await {
        let label = "Redis Cluster failover, the keys' shard";
        crate::failover::failover_under_load(group, label, "s", "{failover:}epoch").await;
    }
}

/// The same with the master of another shard killed: the one a system's channel lives on
/// (sharded pub/sub; the system is chosen so its channel is not on the keys' shard).
#[actix_web::test]
async fn a_failover_of_the_shard_with_a_systems_channel_is_followed_without_a_wrong_answer() {
    let Some(group) = RedisClusterGroup::start().await else {
        return;
    };
    let port = group.nodes[0].port;
    let keys_master = group.master_of(port, "{failover:}epoch").await;
    let mut system = None;
    for candidate in (0..100).map(|i| format!("s{i}")) {
        let channel = format!("failover:sys:{{{candidate}}}");
        if group.master_of(port, &channel).await != keys_master {
            system = Some((candidate, channel));
            break;
        }
    }
    let (system, channel) = system.expect("a system whose channel is on another shard");
    let label = "Redis Cluster failover, a channel's shard";
    crate::failover::failover_under_load(group, label, &system, &channel).await;
}

/// How many times each master has run `command` (lower case), by port.
async fn calls_of(group: &RedisClusterGroup, command: &str) -> Vec<(u16, u64)> {
    let mut counts = Vec::new();
    let stat = format!("cmdstat_{command}:calls=");
    for node in &group.nodes {
        let stats = crate::failover::info(node.port, None, "commandstats").await;
        let calls = stats
            .lines()
            .find_map(|line| line.strip_prefix(stat.as_str()))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0);
        let replication = crate::failover::info(node.port, None, "replication").await;
        if replication.contains("role:master") {
            counts.push((node.port, calls));
        }
    }
    counts
}

/// Sharded pub/sub spreads the traffic: 300 systems with a client each on four nodes, one
/// broadcast per system; each of the three shards carries within ±30% of a third of the
/// messages (one Redis's pub/sub is no longer the ceiling of the whole cluster).
#[actix_web::test]
async fn the_broadcasts_of_300_systems_spread_evenly_over_three_shards() {
    let Some(group) = RedisClusterGroup::start().await else {
        return;
    };
    let url = group.url();
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(crate::cluster::node(&url, "spread:").await);
    }
    let systems: Vec<String> = (0..300).map(|i| format!("system-{i}")).collect();
    let mut clients = Vec::new();
    for (i, system) in systems.iter().enumerate() {
        nodes[i % 4].register(system).await;
        clients.push(nodes[(i + 1) % 4].connect(system).await);
    }
    let before = calls_of(&group, "spublish").await;
    let scripts_before = calls_of(&group, "evalsha").await;
    for (i, system) in systems.iter().enumerate() {
        let sent = nodes[i % 4]
            .api(
                "send_to_system",
                system,
                serde_json::json!({"msg": "hello"}),
            )
            .await;
        assert_eq!(sent.status, 200, "{sent:?}");
    }
    for client in &mut clients {
        assert_eq!(client.next_json().await["msg"], "hello");
    }
    let per_shard = since(&before, &calls_of(&group, "spublish").await);
    let scripts = since(&scripts_before, &calls_of(&group, "evalsha").await);
    eprintln!("broadcasts of 300 systems, per shard: {per_shard:?}; scripts: {scripts:?}");
    assert_eq!(per_shard.len(), 3);
    let mean = per_shard.iter().sum::<u64>() as f64 / 3.0;
    for count in &per_shard {
        let off = (*count as f64 - mean).abs() / mean;
        assert!(
            off <= 0.3,
            "{per_shard:?}: one shard is {:.0}% off",
            off * 100.0
        );
    }
}

/// Per master, how many more calls `after` counts than `before`.
fn since(before: &[(u16, u64)], after: &[(u16, u64)]) -> Vec<u64> {
    after
        .iter()
        .map(|(port, calls)| {
            let earlier = before
                .iter()
                .find(|(p, _)| p == port)
                .map_or(0, |(_, c)| *c);
            calls - earlier
        })
        .collect()
}

/// The id of the cluster node at `port` (`CLUSTER MYID`).
async fn node_id(port: u16) -> String {
    let mut conn = connect(port).await.unwrap();
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// A system's channel moved to another shard while its members listen (what adding a shard
/// does): the shard drops the subscriptions, the nodes subscribe again where the channel lives
/// now, and every send answered 200, before, during and after, reaches every member.
#[actix_web::test]
async fn a_channel_whose_slot_moves_to_another_shard_keeps_reaching_every_member() {
    let Some(group) = RedisClusterGroup::start().await else {
        return;
    };
    let url = group.url();
    let (_a, b, mut clients) =
        crate::failover::two_nodes_with_members(&url, "moving:", "s", 4).await;
    let channel = "moving:sys:{s}";
    let port = group.nodes[0].port;
    let mut conn = connect(port).await.unwrap();
    let slot = slot_of(&mut conn, channel).await.unwrap();
    let from = group.master_of(port, channel).await.unwrap();
    let to = (from + 1) % 3;
    let (from_id, to_id) = (
        node_id(group.nodes[from].port).await,
        node_id(group.nodes[to].port).await,
    );
    let mut delivered = Vec::new();
    let send = async |delivered: &mut Vec<serde_json::Value>| {
        let sent = b
            .api(
                "send_to_group",
                "s",
                serde_json::json!({"groupName": "g", "msg": "x"}),
            )
            .await;
        assert!(sent.status == 200 || sent.status == 503, "{sent:?}");
        if sent.status == 200 {
            delivered.push(sent.body["data"]["messageId"].clone());
        }
    };
    send(&mut delivered).await;
    // The slot holds no keys (the nodes' keys share the prefix's tag): moving it is the
    // SETSLOT steps alone, the new owner told to every master.
    let setslot = async |port: u16, args: &[&str]| {
        let mut conn = connect(port).await.unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(args)
            .query_async(&mut conn)
            .await
            .unwrap();
    };
    setslot(group.nodes[to].port, &["IMPORTING", &from_id]).await;
    setslot(group.nodes[from].port, &["MIGRATING", &to_id]).await;
    for index in [to, from, (from + 2) % 3] {
        setslot(group.nodes[index].port, &["NODE", &to_id]).await;
    }
    let moved = std::time::Instant::now();
    while moved.elapsed() < Duration::from_secs(5) {
        send(&mut delivered).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(group.master_of(port, channel).await, Some(to));
    let after = delivered.len();
    for _ in 0..5 {
        send(&mut delivered).await;
    }
    assert_eq!(
        delivered.len(),
        after + 5,
        "served again once the slot moved"
    );
    eprintln!(
        "a channel's slot moved: {} sends answered 200",
        delivered.len()
    );
    crate::cluster::every_client_got((&b, "s"), &mut clients, &delivered).await;
}
