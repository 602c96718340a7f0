//! A backplane with no single point of failure: nodes on a Sentinel-watched Redis follow a
//! failover by themselves. Each test runs its own master, replica and three sentinels (Debian's
//! redis-server, on free ports).

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::json;

use crate::cluster::{node, OutageAnswers};
use crate::helpers::{OwnServer, TestApp, WsClient};

const MASTER_NAME: &str = "wshub";

/// A master, its replica and three sentinels watching them, private to one test.
pub(crate) struct SentinelGroup {
    pub(crate) master: OwnServer,
    pub(crate) replica: OwnServer,
    sentinels: Vec<OwnServer>,
    dir: std::path::PathBuf,
    /// What the master and the replica ask of their clients (the sentinels ask nothing).
    password: Option<String>,
}

impl SentinelGroup {
    /// Starts the group (its master and replica asking for `password`, if any) and waits until
    /// the sentinels know the replica and each other (so a failover can be agreed); `None` (the
    /// test skips) where redis-server is missing, outside CI.
    pub(crate) async fn start(password: Option<&str>) -> Option<SentinelGroup> {
        if std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            let reason = "the redis-server binary is not installed (apt-get install redis-server)";
            crate::helpers::skip_unless_ci("Sentinel failover test", reason);
            return None;
        }
        let mut plain = vec!["--port", "{port}", "--save", "", "--appendonly", "no"];
        if let Some(password) = password {
            plain.extend(["--requirepass", password, "--masterauth", password]);
        }
        let master = OwnServer::start("redis-server", &plain).expect("a master starts");
        let master_port = master.port.to_string();
        let mut replica_args = plain.clone();
        replica_args.extend(["--replicaof", "127.0.0.1", &master_port]);
        let replica = OwnServer::start("redis-server", &replica_args).expect("a replica starts");
        until(Duration::from_secs(10), "the replica in sync", || async {
            info(replica.port, password, "replication")
                .await
                .contains("master_link_status:up")
        })
        .await;
        let dir = crate::systems::scratch_dir("sentinels");
        let mut sentinels = Vec::new();
        for i in 0..3 {
            // Each sentinel rewrites its own file.
            let conf = dir.join(format!("sentinel-{i}.conf"));
            // With a password, the sentinels ask for one of their own too (and give it to
            // each other).
            let auth = password
                .map(|p| {
                    let own = sentinel_password(p);
                    format!(
                        "sentinel auth-pass {MASTER_NAME} {p}\nrequirepass {own}\n\
                         sentinel sentinel-pass {own}\n"
                    )
                })
                .unwrap_or_default();
            std::fs::write(
                &conf,
                format!(
                    "bind 127.0.0.1\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n{auth}"
                ),
            )
            .unwrap();
            let conf = conf.to_str().unwrap().to_owned();
            let args = [conf.as_str(), "--sentinel", "--port", "{port}"];
            sentinels.push(OwnServer::start("redis-server", &args).expect("a sentinel starts"));
        }
        let group = SentinelGroup {
            master,
            replica,
            sentinels,
            dir,
            password: password.map(str::to_owned),
        };
        until(
            Duration::from_secs(20),
            "the sentinels see each other",
            || group.sentinels_ready(),
        )
        .await;
        Some(group)
    }

    /// `redis+sentinel://` naming every sentinel (and the password, if any).
    pub(crate) fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let credentials = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        let sentinels_ask = self
            .password
            .as_deref()
            .map(|p| format!("?sentinel_password={}", sentinel_password(p)))
            .unwrap_or_default();
        format!(
            "redis+sentinel://{credentials}{}/{MASTER_NAME}{sentinels_ask}",
            hosts.join(",")
        )
    }

    /// A connection to a sentinel (with its password, if it asks for one).
    async fn sentinel(&self, port: u16) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let own = self.password.as_deref().map(sentinel_password);
        connect(port, own.as_deref()).await
    }

    async fn sentinels_ready(&self) -> bool {
        for sentinel in &self.sentinels {
            let Ok(mut conn) = self.sentinel(sentinel.port).await else {
                return false;
            };
            let others: redis::RedisResult<Vec<redis::Value>> = redis::cmd("SENTINEL")
                .arg("sentinels")
                .arg(MASTER_NAME)
                .query_async(&mut conn)
                .await;
            let replicas: redis::RedisResult<Vec<redis::Value>> = redis::cmd("SENTINEL")
                .arg("replicas")
                .arg(MASTER_NAME)
                .query_async(&mut conn)
                .await;
            if others.map_or(0, |o| o.len()) < 2 || replicas.map_or(0, |r| r.len()) < 1 {
                return false;
            }
        }
        true
    }

    /// The master's port as the first sentinel names it now.
    pub(crate) async fn master_port(&self) -> Option<u16> {
        let mut conn = self.sentinel(self.sentinels[0].port).await.ok()?;
        let address: Option<(String, String)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(MASTER_NAME)
            .query_async(&mut conn)
            .await
            .ok()?;
        address.and_then(|(_, port)| port.parse().ok())
    }
}

/// A Redis setup whose master a test kills, and which promotes a replica in its place.
pub(crate) trait FailingRedis {
    /// `--redis-url` for the nodes.
    fn url(&self) -> String;
    /// Kills the master that serves `key` (a key or a channel; `kill -9`).
    async fn kill_master(&mut self, key: &str);
    /// Whether a replica serves in its place now.
    async fn promoted(&self) -> bool;
    /// How many members the master serving now holds for `group` of `system`.
    async fn members_on_master(&self, prefix: &str, system: &str, group: &str) -> usize;
}

impl FailingRedis for SentinelGroup {
    fn url(&self) -> String {
        SentinelGroup::url(self)
    }

    async fn kill_master(&mut self, _key: &str) {
        self.master.kill();
    }

    async fn promoted(&self) -> bool {
        self.master_port().await == Some(self.replica.port)
    }

    async fn members_on_master(&self, prefix: &str, system: &str, group: &str) -> usize {
        let port = self.master_port().await.expect("a master");
        let mut conn = connect(port, self.password.as_deref()).await.unwrap();
        let key = format!("{prefix}members:{system}:{group}");
        conn.hlen(key).await.unwrap()
    }
}

/// What the sentinels of a group whose master asks for `password` ask for.
fn sentinel_password(password: &str) -> String {
    format!("{password}-sentinels")
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for sentinel in &mut self.sentinels {
            sentinel.kill();
        }
        self.replica.kill();
        self.master.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) async fn connect(
    port: u16,
    password: Option<&str>,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let credentials = password.map(|p| format!(":{p}@")).unwrap_or_default();
    redis::Client::open(format!("redis://{credentials}127.0.0.1:{port}"))?
        .get_multiplexed_async_connection()
        .await
}

pub(crate) async fn info(port: u16, password: Option<&str>, section: &str) -> String {
    match connect(port, password).await {
        Ok(mut conn) => redis::cmd("INFO")
            .arg(section)
            .query_async(&mut conn)
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub(crate) async fn until<F, Fut>(within: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two nodes on `url` under `prefix`, `system` registered, and `members` clients in its group
/// "g" (users u0, u1, ...), connected alternately to each node.
pub(crate) async fn two_nodes_with_members(
    url: &str,
    prefix: &str,
    system: &str,
    members: usize,
) -> (TestApp, TestApp, Vec<WsClient>) {
    let (a, b) = (node(url, prefix).await, node(url, prefix).await);
    a.register(system).await;
    let mut clients = Vec::new();
    for i in 0..members {
        let on = if i % 2 == 0 { &a } else { &b };
        let client = on.connect(system).await;
        on.bind(system, &client, "g", &format!("u{i}")).await;
        clients.push(client);
    }
    (a, b, clients)
}

/// The master (asking for a password, as in production, and the sentinels for one of their
/// own) killed under a steady load of calls:
/// meanwhile every call is answered right or 503 (never wrongly), the clients stay connected,
/// and within 10 s of the replica's promotion both nodes serve again with every system and
/// membership written back.
#[actix_web::test]
async fn a_sentinel_failover_is_followed_without_a_restart_and_without_a_wrong_answer() {
    if let Some(group) = SentinelGroup::start(Some("a-redis-password")).await {
        failover_under_load(group, "Sentinel failover", "s", "failover:epoch").await;
    }
}

/// Two nodes on `group` (prefix `failover:`), six clients in a group of `system`; the master
/// that serves `victim` killed while one node sends to the group and the other lists it, every
/// 20 ms: each answer is right or 503, both serve again within 10 s of the promotion, the
/// members are written back to the new master, and every client got every send answered 200.
pub(crate) async fn failover_under_load(
    mut group: impl FailingRedis,
    label: &str,
    system: &str,
    victim: &str,
) {
    let url = group.url();
    let (a, b, mut clients) = two_nodes_with_members(&url, "failover:", system, 6).await;
    group.kill_master(victim).await;
    let killed = Instant::now();
    let mut promoted: Option<Instant> = None;
    let mut answers = OutageAnswers::default();
    let mut delivered = Vec::new();
    loop {
        if promoted.is_none() && group.promoted().await {
            promoted = Some(Instant::now());
        }
        let sent = b
            .api(
                "send_to_group",
                system,
                json!({"groupName": "g", "data": "x"}),
            )
            .await;
        let list = a
            .api("get_online_list", system, json!({"groupName": "g"}))
            .await;
        if sent.status == 200 {
            assert_eq!(sent.body["data"]["count"], 6, "{sent:?}");
            delivered.push(sent.body["data"]["messageId"].clone());
        }
        if list.status == 200 {
            assert_eq!(list.body["data"]["count"], 6, "{list:?}");
        }
        if answers.note(&[&sent, &list], promoted.is_some()) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "never served again: {:?}",
            answers.statuses
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (promoted, served) = (promoted.unwrap(), answers.healthy_since().unwrap());
    let serving_after = served.saturating_duration_since(promoted);
    eprintln!(
        "{label}: promoted {:?} after the kill, served again {serving_after:?} after the \
         promotion; answers {:?}",
        promoted - killed,
        answers.statuses
    );
    assert!(serving_after < Duration::from_secs(10), "{serving_after:?}");

    // Written back to the new master: the group's members.
    assert_eq!(group.members_on_master("failover:", system, "g").await, 6);
    // Every client is still connected, and got every send answered 200: no frame was lost.
    crate::cluster::every_client_got((&b, system), &mut clients, &delivered).await;
}

/// Sentinels that stop answering (frozen, so connections hang instead of being refused) while
/// the master is fine: each heartbeat gives up asking them in time, so no node misses its
/// liveness deadline and is taken for dead; every call keeps its right answer.
#[actix_web::test]
async fn frozen_sentinels_do_not_make_live_nodes_look_dead() {
    let Some(group) = SentinelGroup::start(None).await else {
        return;
    };
    let url = group.url();
    let (a, _b, clients) = two_nodes_with_members(&url, "frozen:", "s", 4).await;
    let signal = |name: &str| {
        for sentinel in &group.sentinels {
            let pid = sentinel.pid().expect("the sentinel runs").to_string();
            let sent = std::process::Command::new("kill")
                .args([name, &pid])
                .status()
                .expect("kill runs");
            assert!(sent.success());
        }
    };
    signal("-STOP");
    // Longer than the liveness TTL (5 s) and a purge round.
    let frozen = Instant::now();
    while frozen.elapsed() < Duration::from_secs(9) {
        let list = a
            .api("get_online_list", "s", json!({"groupName": "g"}))
            .await;
        assert_eq!(list.status, 200, "{list:?}");
        assert_eq!(list.body["data"]["count"], 4, "{list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    signal("-CONT");
    drop(clients);
}

/// A managed Redis failing over behind one address: the server is replaced by a copy that lacks
/// the last writes (here: restarted from a snapshot taken before them). Nothing is configured
/// for it: the nodes see their connections drop, and write back what the copy lacks (a system
/// registered since, its members, a settings change), never answering wrongly meanwhile.
#[actix_web::test]
async fn a_redis_replaced_by_a_lagging_copy_behind_one_address_gets_everything_written_back() {
    if crate::cluster::redis_url().is_none() {
        return;
    }
    let dir = crate::systems::scratch_dir("lagging-redis");
    let Some(mut redis) = crate::cluster::own_redis_saving_to(&dir, "lagging Redis test") else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let (a, b, mut clients) = two_nodes_with_members(&url, "lagging:", "s1", 4).await;
    let mut admin = connect(redis.port, None).await.unwrap();
    let _: () = redis::cmd("SAVE").query_async(&mut admin).await.unwrap();
    // What the copy will lack.
    b.register("s2").await;
    let on_s2 = a.connect("s2").await;
    a.bind("s2", &on_s2, "h", "x").await;
    for i in 4..6 {
        let on = if i % 2 == 0 { &a } else { &b };
        let client = on.connect("s1").await;
        on.bind("s1", &client, "g", &format!("u{i}")).await;
        clients.push(client);
    }
    b.api("update_system", "s1", json!({"presence": "user"}))
        .await
        .ok();

    redis.kill();
    redis
        .restart()
        .expect("the copy starts at the same address");
    let replaced = Instant::now();
    let mut answers = OutageAnswers::default();
    loop {
        let list = a
            .api("get_online_list", "s1", json!({"groupName": "g"}))
            .await;
        let other = b
            .api("get_online_list", "s2", json!({"groupName": "h"}))
            .await;
        let settings = a.api("get_system", "s1", json!({})).await;
        if list.status == 200 {
            assert_eq!(list.body["data"]["count"], 6, "{list:?}");
        }
        if other.status == 200 {
            assert_eq!(other.body["data"]["count"], 1, "{other:?}");
        }
        if settings.status == 200 {
            assert_eq!(settings.body["data"]["presence"], "user", "{settings:?}");
        }
        if answers.note(&[&list, &other, &settings], true) {
            break;
        }
        assert!(
            replaced.elapsed() < Duration::from_secs(20),
            "never served again: {:?}",
            answers.statuses
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let served = answers.healthy_since().unwrap() - replaced;
    eprintln!(
        "replaced by a lagging copy: served again after {served:?}; answers {:?}",
        answers.statuses
    );
    assert!(served < Duration::from_secs(10), "{served:?}");
    // The clients stayed connected.
    let sent = b
        .api(
            "send_to_group",
            "s1",
            json!({"groupName": "g", "msg": "after"}),
        )
        .await
        .ok();
    assert_eq!(sent["count"], 6);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
