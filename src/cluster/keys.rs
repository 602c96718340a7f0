//! The Redis key and channel schema (the table in the module docs), and the JSON stored in a
//! group's member hash.

use serde::{Deserialize, Serialize};

/// Channel and key names under the prefix.
///
/// On a Redis Cluster ([`Keys::sharded`]) every key shares one hash tag (the prefix in braces),
/// so each Lua step stays on one shard, while each channel has a tag of its own (its system or
/// node), so sharded pub/sub spreads the channels over the shards and a message crosses only
/// the shard of its channel.
pub(super) struct Keys {
    /// Before every key (`{wshub:}` on a Redis Cluster).
    pub(super) prefix: String,
    /// Before every channel (the prefix as given).
    channels: String,
    /// Channels use sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`).
    pub(super) sharded: bool,
}

impl Keys {
    pub(super) fn new(endpoint: &crate::redis_endpoint::RedisEndpoint, prefix: &str) -> Keys {
        Keys {
            prefix: endpoint.key_prefix(prefix),
            channels: prefix.to_owned(),
            sharded: endpoint.shards_channels(),
        }
    }

    pub(super) fn systems(&self) -> String {
        format!("{}systems", self.prefix)
    }
    pub(super) fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    pub(super) fn alive(&self, node: &str) -> String {
        format!("{}alive:{node}", self.prefix)
    }
    pub(super) fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }
    pub(super) fn settling(&self) -> String {
        format!("{}settling", self.prefix)
    }
    pub(super) fn synced(&self, node: &str) -> String {
        format!("{}synced:{node}", self.prefix)
    }
    pub(super) fn purge_lock(&self, node: &str) -> String {
        format!("{}purging:{node}", self.prefix)
    }
    pub(super) fn settings(&self, system: &str) -> String {
        format!("{}system:{system}", self.prefix)
    }
    pub(super) fn settings_version(&self) -> String {
        format!("{}settings-version", self.prefix)
    }
    pub(super) fn clients(&self, system: &str) -> String {
        format!("{}clients:{system}", self.prefix)
    }
    pub(super) fn members(&self, system: &str, group: &str) -> String {
        format!("{}members:{system}:{group}", self.prefix)
    }
    pub(super) fn groups(&self, system: &str) -> String {
        format!("{}groups:{system}", self.prefix)
    }
    pub(super) fn client_groups(&self, system: &str, client: &str) -> String {
        format!("{}client-groups:{system}:{client}", self.prefix)
    }
    pub(super) fn node_clients(&self, node: &str) -> String {
        format!("{}node-clients:{node}", self.prefix)
    }
    /// The clientIds counting for a user in a scope (`field`, see `presence::field`).
    pub(super) fn present(&self, system: &str, field: &str) -> String {
        format!("{}present:{system}:{field}", self.prefix)
    }
    /// A system's departures in their grace: field → the pending departure.
    pub(super) fn leaving(&self, system: &str) -> String {
        format!("{}leaving:{system}", self.prefix)
    }
    /// Every pending departure, scored by the time (ms) its grace ends.
    pub(super) fn presence_due(&self) -> String {
        format!("{}presence-due", self.prefix)
    }
    /// What a node's connections count for (`system\nclientId\nfield`), for the purge.
    pub(super) fn node_presence(&self, node: &str) -> String {
        format!("{}node-presence:{node}", self.prefix)
    }
    pub(super) fn system_channel(&self, system: &str) -> String {
        if self.sharded {
            format!("{}sys:{{{system}}}", self.channels)
        } else {
            format!("{}sys:{system}", self.channels)
        }
    }
    /// The system whose channel `channel` is, if it is one.
    pub(super) fn system_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel.strip_prefix(&self.channels)?.strip_prefix("sys:")?;
        if self.sharded {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }
    pub(super) fn node_channel(&self, node: &str) -> String {
        if self.sharded {
            format!("{}node:{{{node}}}", self.channels)
        } else {
            format!("{}node:{node}", self.channels)
        }
    }
    /// `PUBLISH`, or `SPUBLISH` for sharded channels.
    pub(super) fn publish(&self, channel: &str, payload: &str) -> redis::Cmd {
        let mut cmd = redis::cmd(if self.sharded { "SPUBLISH" } else { "PUBLISH" });
        cmd.arg(channel).arg(payload);
        cmd
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct MemberInfo {
    #[serde(rename = "userId")]
    pub(super) user_id: String,
    pub(super) extend: String,
}
