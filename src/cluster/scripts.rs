//! The Lua scripts: each state-dependent call checks the epoch in the same round trip.

/// A Lua script, hashed once: calls run it by its SHA (redis-rs loads it again after a Redis
/// restart on its own).
pub(super) type Script = std::sync::LazyLock<redis::Script>;

/// Removes a member and, when the group empties, the group from the system's set, atomically.
/// 1 when this removal emptied the group (it is vacated, cluster-wide), else 0.
pub(super) static LEAVE: Script = Script::new(|| {
    redis::Script::new(
        r#"
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  if removed == 1 then return 1 end
end
return 0
"#,
    )
});

/// KEYS: members:{system}:{group}, groups:{system}. ARGV: clientId, member info, group. 1 when
/// this member is the group's first (it is occupied, cluster-wide), else 0.
pub(super) static JOIN: Script = Script::new(|| {
    redis::Script::new(
        r#"
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if added == 1 and redis.call('HLEN', KEYS[1]) == 1 then return 1 end
return 0
"#,
    )
});

/// KEYS: present:{system}:{field}, leaving:{system}, presence-due, node-presence:{node}.
/// ARGV: clientId, field, node entry. 1 when this connection is the user's first in the scope
/// and no departure of the user was in its grace there (announce the arrival), else 0.
pub(super) static PRESENCE_UP: Script = Script::new(|| {
    redis::Script::new(
        r#"
redis.call('SADD', KEYS[4], ARGV[3])
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 or redis.call('SCARD', KEYS[1]) > 1 then return 0 end
local pending = redis.call('HGET', KEYS[2], ARGV[2])
if pending then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('ZREM', KEYS[3], pending)
  return 0
end
return 1
"#,
    )
});

/// KEYS as [`PRESENCE_UP`]. ARGV: clientId, field, node entry, the pending departure, the
/// time (ms) its grace ends, 1 to announce it. 1 when this connection was the user's last in
/// the scope (the departure is pending when announced), else 0.
pub(super) static PRESENCE_DOWN: Script = Script::new(|| {
    redis::Script::new(
        r#"
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 or redis.call('SCARD', KEYS[1]) > 0 then return 0 end
if ARGV[6] == '1' then
  local old = redis.call('HGET', KEYS[2], ARGV[2])
  if old then redis.call('ZREM', KEYS[3], old) end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
end
return 1
"#,
    )
});

/// KEYS: presence-due, leaving:{system}. ARGV: the pending departure, its field. 1 for the one
/// node that takes it (and announces it), 0 if another did or a connection came back.
pub(super) static PRESENCE_CLAIM: Script = Script::new(|| {
    redis::Script::new(
        r#"
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return 1
"#,
    )
});

/// Returns the current epoch, making one (`ARGV[1]`) if there is none; a node that knows
/// other nodes may have lost state asks for a settling period of `ARGV[2]` ms (0: none).
pub(super) static EPOCH: Script = Script::new(|| {
    redis::Script::new(
        r#"
local epoch = redis.call('GET', KEYS[1])
if epoch then return epoch end
redis.call('SET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], '1', 'PX', ARGV[2]) end
return ARGV[1]
"#,
    )
});

/// Starts a new epoch whatever the current one: every node must write its state again.
pub(super) static NEW_EPOCH: Script = Script::new(|| {
    redis::Script::new(
        r#"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1
"#,
    )
});

/// The epoch guard every state-dependent call runs first: `-1` when Redis no longer holds
/// the epoch the caller was ready for (it restarted, or a node is resynchronising).
macro_rules! guarded {
    ($body:literal) => {
        Script::new(|| {
            redis::Script::new(concat!(
                "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end\n",
                $body
            ))
        })
    };
}

/// KEYS: epoch, a hash to count. ARGV: epoch, channel, payload. The member count, after
/// publishing.
pub(super) static COUNT_AND_PUBLISH: Script = guarded!(
    "local n = redis.call('HLEN', KEYS[2])\nredis.call('PUBLISH', ARGV[2], ARGV[3])\nreturn n"
);
/// KEYS: epoch. ARGV: epoch, channel, payload. How many nodes received it.
pub(super) static PUBLISH: Script = guarded!("return redis.call('PUBLISH', ARGV[2], ARGV[3])");
/// KEYS: epoch, a hash to count. ARGV: epoch. The member count (for sharded channels, which
/// live on other shards than the keys: the publish follows).
pub(super) static COUNT: Script = guarded!("return redis.call('HLEN', KEYS[2])");
/// KEYS: epoch. ARGV: epoch. 0 (for sharded channels: the publish follows).
pub(super) static CHECK_EPOCH: Script = guarded!("return 0");
/// KEYS: epoch, systems, system:{id}. ARGV: epoch, systemId, settings. 1 if added (with its
/// settings), 0 if it existed.
pub(super) static REGISTER: Script = guarded!(
    "local added = redis.call('SADD', KEYS[2], ARGV[2])\nif added == 1 then redis.call('SET', KEYS[3], ARGV[3]) end\nreturn added"
);
/// KEYS: epoch, systems, system:{id}, settings-version. ARGV: epoch, systemId, new settings,
/// the settings the change was made from. 0: no such system; 1: the settings changed meanwhile
/// (read them again and retry); more: written, and the new settings-version is this less one.
pub(super) static UPDATE_SETTINGS: Script = guarded!(
    "if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then return 0 end\nif (redis.call('GET', KEYS[3]) or '') ~= ARGV[4] then return 1 end\nredis.call('SET', KEYS[3], ARGV[3])\nreturn redis.call('INCR', KEYS[4]) + 1"
);
/// KEYS: epoch, systems, system:{id}, settings-version. ARGV: epoch, systemId. 1 if removed,
/// 0 if there was no such system.
pub(super) static UNREGISTER: Script = guarded!(
    "if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return 0 end\nredis.call('DEL', KEYS[3])\nredis.call('INCR', KEYS[4])\nreturn 1"
);
/// KEYS: epoch, systems, clients:{system}, node-clients:{node}. ARGV: epoch, systemId,
/// clientId, node, node-clients entry.
pub(super) static ADMIT: Script = guarded!(
    "redis.call('SADD', KEYS[2], ARGV[2])\nredis.call('HSET', KEYS[3], ARGV[3], ARGV[4])\nredis.call('SADD', KEYS[4], ARGV[5])\nreturn 1"
);
