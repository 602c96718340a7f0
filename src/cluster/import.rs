//! `wshub import`: the systems a single node kept in its data directory, written into a
//! cluster's Redis, so moving from one node to a cluster keeps them (a cluster reads systems
//! only from Redis and would answer 403 "not registered" for each).

use super::keys::Keys;
use crate::settings::SystemSettings;

/// KEYS: systems, system:{id}. ARGV: systemId, settings. 1 if the system was added; 0 if the
/// cluster has it already (its settings are left as they are).
static IMPORT: super::scripts::Script = super::scripts::Script::new(|| {
    redis::Script::new(
        r#"
local added = redis.call('SADD', KEYS[1], ARGV[1])
if added == 1 then redis.call('SET', KEYS[2], ARGV[2]) end
return added
"#,
    )
});

/// What happened to one system.
#[derive(Debug, PartialEq, Eq)]
pub enum Imported {
    Added,
    /// Registered in the cluster already: the cluster's settings win.
    AlreadyThere,
}

/// Registers each system in the cluster at `redis_url` under `prefix`, with its settings, the
/// way `register` would; a system the cluster has already is skipped. Nodes that are running
/// pick the new systems up on their first call for them.
pub async fn import_systems(
    redis_url: &str,
    prefix: &str,
    systems: &[(String, SystemSettings)],
) -> redis::RedisResult<Vec<Imported>> {
    let endpoint = crate::redis_endpoint::RedisEndpoint::parse(redis_url)?;
    let (mut redis, _) = endpoint.connect().await?;
    let keys = Keys::new(&endpoint, prefix);
    let mut outcome = Vec::with_capacity(systems.len());
    for (system_id, settings) in systems {
        // As `register` writes them (plain data: serializing cannot fail).
        let json = serde_json::to_string(settings).unwrap_or_default();
        let added: i64 = IMPORT
            .key(keys.systems())
            .key(keys.settings(system_id))
            .arg(system_id)
            .arg(json)
            .invoke_async(&mut redis)
            .await?;
        outcome.push(if added == 1 {
            Imported::Added
        } else {
            Imported::AlreadyThere
        });
    }
    Ok(outcome)
}
