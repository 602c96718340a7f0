//! The Redis key and channel schema (the table in the module docs), and the JSON stored in a
//! group's member hash.

use serde::{Deserialize, Serialize};

/// Channel and key names under the prefix.
pub(super) struct Keys(pub(super) String);

impl Keys {
    pub(super) fn systems(&self) -> String {
        format!("{}systems", self.0)
    }
    pub(super) fn nodes(&self) -> String {
        format!("{}nodes", self.0)
    }
    pub(super) fn alive(&self, node: &str) -> String {
        format!("{}alive:{node}", self.0)
    }
    pub(super) fn epoch(&self) -> String {
        format!("{}epoch", self.0)
    }
    pub(super) fn settling(&self) -> String {
        format!("{}settling", self.0)
    }
    pub(super) fn synced(&self, node: &str) -> String {
        format!("{}synced:{node}", self.0)
    }
    pub(super) fn purge_lock(&self, node: &str) -> String {
        format!("{}purging:{node}", self.0)
    }
    pub(super) fn settings(&self, system: &str) -> String {
        format!("{}system:{system}", self.0)
    }
    pub(super) fn settings_version(&self) -> String {
        format!("{}settings-version", self.0)
    }
    pub(super) fn clients(&self, system: &str) -> String {
        format!("{}clients:{system}", self.0)
    }
    pub(super) fn members(&self, system: &str, group: &str) -> String {
        format!("{}members:{system}:{group}", self.0)
    }
    pub(super) fn groups(&self, system: &str) -> String {
        format!("{}groups:{system}", self.0)
    }
    pub(super) fn client_groups(&self, system: &str, client: &str) -> String {
        format!("{}client-groups:{system}:{client}", self.0)
    }
    pub(super) fn node_clients(&self, node: &str) -> String {
        format!("{}node-clients:{node}", self.0)
    }
    /// The clientIds counting for a user in a scope (`field`, see `presence::field`).
    pub(super) fn present(&self, system: &str, field: &str) -> String {
        format!("{}present:{system}:{field}", self.0)
    }
    /// A system's departures in their grace: field → the pending departure.
    pub(super) fn leaving(&self, system: &str) -> String {
        format!("{}leaving:{system}", self.0)
    }
    /// Every pending departure, scored by the time (ms) its grace ends.
    pub(super) fn presence_due(&self) -> String {
        format!("{}presence-due", self.0)
    }
    /// What a node's connections count for (`system\nclientId\nfield`), for the purge.
    pub(super) fn node_presence(&self, node: &str) -> String {
        format!("{}node-presence:{node}", self.0)
    }
    pub(super) fn system_channel(&self, system: &str) -> String {
        format!("{}sys:{system}", self.0)
    }
    pub(super) fn node_channel(&self, node: &str) -> String {
        format!("{}node:{node}", self.0)
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct MemberInfo {
    #[serde(rename = "userId")]
    pub(super) user_id: String,
    pub(super) extend: String,
}
