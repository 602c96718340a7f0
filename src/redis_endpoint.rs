//! Where the cluster's Redis is: one address (`redis://`, `rediss://`), or the master of a
//! Sentinel-watched group (`redis+sentinel://[user:password@]host:port[,host:port...]/<master-name>`,
//! the credentials for the master and its replicas), asked of the sentinels again at every
//! connection, so a failover is followed without a restart.
//!
//! Shared by everything that connects to the backplane: the command connection and the
//! subscriber (`cluster`), the webhook outbox's connection, and `wshub import`.

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};

/// Longest the sentinels (and the master they name, which is asked its role) may take to answer.
const ASK_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The scheme of a Sentinel address.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

pub enum RedisEndpoint {
    Direct(redis::Client),
    /// Asked for the master at each connection (one query, to the first sentinel that answers).
    Sentinel {
        sentinels: tokio::sync::Mutex<SentinelClient>,
        master: String,
    },
}

impl RedisEndpoint {
    /// Parses `--redis-url`. A Sentinel address names at least one sentinel and the master's
    /// name; nothing is connected yet.
    pub fn parse(url: &str) -> redis::RedisResult<RedisEndpoint> {
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
        if master.is_empty() {
            return Err(invalid("no master name"));
        }
        // `user:password@` (or `:password@`) is for the master and its replicas; the sentinels
        // are asked without one.
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let sentinels: Vec<String> = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(|host| format!("redis://{host}"))
            .collect();
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

    /// A client for the server to use now: the one address, or the master the sentinels name
    /// now (checked to call itself master).
    pub async fn client(&self) -> redis::RedisResult<redis::Client> {
        match self {
            RedisEndpoint::Direct(client) => Ok(client.clone()),
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

    /// Whether the server can change under this address (a Sentinel group).
    pub fn follows_failovers(&self) -> bool {
        matches!(self, RedisEndpoint::Sentinel { .. })
    }

    /// What the log calls it.
    pub fn describe(&self) -> String {
        match self {
            RedisEndpoint::Direct(client) => client.get_connection_info().addr.to_string(),
            RedisEndpoint::Sentinel { master, .. } => format!("Sentinel master '{master}'"),
        }
    }
}

impl std::fmt::Debug for RedisEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The address a client connects to, to tell one master from another.
pub fn address_of(client: &redis::Client) -> String {
    client.get_connection_info().addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::RedisEndpoint;

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
        ] {
            let err = RedisEndpoint::parse(url).expect_err(url).to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
