//! The cluster as the [`Backplane`] (where a command runs, where a broadcast goes) and the
//! [`Directory`] (systems and membership, as Redis holds them).

use std::collections::HashMap;

use redis::AsyncCommands;

use bytestring::ByteString;

use crate::actors::messages as m;
use crate::backplane::{
    Answer, Audience, Backplane, ByOwner, Command, Directory, Lease, Reply, TokenHome,
};
use crate::error::ApiError;
use crate::protocol::{AllGroups, OnlineClient, OnlineList, SystemInfo};
use crate::settings::{SettingsUpdate, SystemSettings};

use super::calls::NodeCall;
use super::keys::MemberInfo;
use super::node::{owner_of, Cluster};
use super::scripts::{UNREGISTER, UPDATE_SETTINGS};
use super::systems::read_settings;

/// The cluster as the [`Backplane`]: a command runs on the node named in its clientId; a
/// broadcast is counted and published in one Redis round trip, then delivered here.
impl Backplane for Cluster {
    fn new_client_id(&self) -> String {
        format!("{}{}", self.node_id, crate::protocol::new_id())
    }

    fn make_reachable<'a>(&'a self, system_id: &'a str, client_id: &'a str) -> Reply<'a, Lease> {
        Box::pin(async move {
            // Systems registered on another node become known here; an unknown one is refused
            // by the registry as usual. This node subscribes to the system's channel and
            // writes the client to Redis, so the client is reachable from every node once it
            // has its welcome frame; Redis being unreachable (or resyncing) is a 503.
            match self.ensure_system(system_id).await {
                Err(err @ ApiError::Unavailable(_)) => Err(err),
                Err(_) => Ok(Lease::none()),
                Ok(()) => {
                    let lease = self.lease_system(system_id).await?;
                    self.admit_client(system_id, client_id).await?;
                    Ok(Lease::holding(lease))
                }
            }
        })
    }

    fn token_home(self: std::sync::Arc<Self>, token: String) -> Reply<'static, TokenHome> {
        Box::pin(self.home_of(token))
    }

    fn on_owner<'a>(&'a self, client_id: &'a str, command: Box<dyn Command>) -> Reply<'a, Answer> {
        Box::pin(self.run_on_owner(client_id, command))
    }

    fn on_every_node(&self, command: Box<dyn Command>) -> Reply<'_, Vec<Answer>> {
        Box::pin(self.run_on_every_node(command))
    }

    fn by_owner(&self, client_ids: Vec<String>) -> ByOwner {
        let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
        let mut unowned = Vec::new();
        for client in client_ids {
            match owner_of(&client) {
                Some(owner) => by_node.entry(owner.to_owned()).or_default().push(client),
                None => unowned.push(client),
            }
        }
        ByOwner {
            owned: by_node.into_values().collect(),
            unowned,
        }
    }

    /// Publishes once for the other nodes, delivers to local members; resolves to the
    /// cluster-wide member count.
    fn to_members<'a>(
        &'a self,
        system_id: &'a str,
        audience: Audience,
        frame: ByteString,
    ) -> Reply<'a, usize> {
        Box::pin(async move {
            self.ensure_system(system_id).await?;
            let (count_key, group) = match &audience {
                Audience::Group(group) => (self.keys.members(system_id, group), Some(group)),
                Audience::System => (self.keys.clients(system_id), None),
            };
            let count = self
                .count_and_publish(system_id, count_key, group.cloned(), &frame)
                .await?;
            self.local(m::Deliver {
                system_id: system_id.to_owned(),
                audience,
                frame,
            })
            .await?;
            Ok(count)
        })
    }
}

/// Systems and membership, as Redis holds them for every node.
impl Directory for Cluster {
    fn register(&self, system_id: String, settings: SystemSettings) -> Reply<'_, ()> {
        Box::pin(async move { self.register_system(&system_id, &settings).await })
    }

    /// Changes the settings in Redis (compare-and-set, so two racing updates both count), then
    /// has every node take them before answering; a node that missed it catches up on its next
    /// heartbeat (`settings-version`).
    fn update(&self, system_id: String, update: SettingsUpdate) -> Reply<'_, SystemSettings> {
        Box::pin(async move {
            self.ensure_system(&system_id).await?;
            let system_id = &system_id;
            for _ in 0..UPDATE_ATTEMPTS {
                let epoch = self.check_ready()?;
                let (seen, current): (Option<String>, Option<String>) = self.track(
                    redis::pipe()
                        .get(self.keys.epoch())
                        .get(self.keys.settings(system_id))
                        .query_async(&mut self.conn())
                        .await,
                )?;
                self.same_epoch(&epoch, seen)?;
                let current = current.unwrap_or_default();
                let mut settings = read_settings(Some(&current));
                settings.apply(&update);
                let json = serde_json::to_string(&settings).unwrap_or_default();
                let keys = [
                    self.keys.systems(),
                    self.keys.settings(system_id),
                    self.keys.settings_version(),
                ];
                match self
                    .run_guarded(&UPDATE_SETTINGS, &keys, &[system_id, &json, &current])
                    .await?
                {
                    0 => return Err(m::RegistryError::UnknownSystem(system_id.clone()).into()),
                    1 => continue,
                    written => {
                        // Seen here at once: a Redis that comes back without this change
                        // (a lagging copy) is then known to be behind (`rewrite_state`).
                        self.saw_settings_version(written as u64 - 1);
                        self.on_every_node(|| NodeCall::Settings {
                            system_id: system_id.clone(),
                            settings: settings.clone(),
                        })
                        .await?;
                        return Ok(settings);
                    }
                }
            }
            Err(ApiError::Unavailable(
                "the system's settings kept changing under this update; retry".into(),
            ))
        })
    }

    fn system(&self, system_id: String) -> Reply<'_, SystemInfo> {
        Box::pin(async move {
            self.ensure_system(&system_id).await?;
            let epoch = self.check_ready()?;
            let (seen, settings, clients): (Option<String>, Option<String>, usize) = self.track(
                redis::pipe()
                    .get(self.keys.epoch())
                    .get(self.keys.settings(&system_id))
                    .hlen(self.keys.clients(&system_id))
                    .query_async(&mut self.conn())
                    .await,
            )?;
            self.same_epoch(&epoch, seen)?;
            let settings = read_settings(settings.as_deref());
            Ok(SystemInfo::new(system_id, &settings, clients))
        })
    }

    /// Removes the system from Redis, then has every node close its clients (4001) and forget
    /// it; answered once every live node has.
    fn unregister(&self, system_id: String) -> Reply<'_, ()> {
        Box::pin(async move {
            self.ensure_system(&system_id).await?;
            let system_id = &system_id;
            let keys = [
                self.keys.systems(),
                self.keys.settings(system_id),
                self.keys.settings_version(),
            ];
            if self.run_guarded(&UNREGISTER, &keys, &[system_id]).await? == 0 {
                return Err(m::RegistryError::UnknownSystem(system_id.clone()).into());
            }
            let unconfirmed = self
                .on_every_node(|| NodeCall::Unregister {
                    system_id: system_id.clone(),
                })
                .await?;
            if unconfirmed.is_empty() {
                Ok(())
            } else {
                Err(ApiError::Unavailable(format!(
                    "system '{system_id}' is removed, but node(s) {} have not confirmed closing its clients yet; they will within a heartbeat",
                    unconfirmed.join(", ")
                )))
            }
        })
    }

    fn members(&self, system_id: String, group_name: String) -> Reply<'_, OnlineList> {
        Box::pin(async move { self.online_list(&system_id, &group_name).await })
    }

    fn groups(&self, system_id: String) -> Reply<'_, AllGroups> {
        Box::pin(async move { self.all_groups(&system_id).await.map(AllGroups) })
    }
}

impl Cluster {
    pub(super) async fn online_list(
        &self,
        system: &str,
        group: &str,
    ) -> Result<OnlineList, ApiError> {
        self.ensure_system(system).await?;
        let epoch = self.check_ready()?;
        let (seen, members): (Option<String>, HashMap<String, String>) = self.track(
            redis::pipe()
                .get(self.keys.epoch())
                .hgetall(self.keys.members(system, group))
                .query_async(&mut self.conn())
                .await,
        )?;
        self.same_epoch(&epoch, seen)?;
        let mut clients: Vec<OnlineClient> = members
            .into_iter()
            .map(|(client_id, info)| {
                let info: MemberInfo = serde_json::from_str(&info).unwrap_or(MemberInfo {
                    user_id: String::new(),
                    extend: String::new(),
                });
                OnlineClient {
                    client_id,
                    user_id: info.user_id,
                    extend: info.extend,
                }
            })
            .collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(OnlineList {
            count: clients.len(),
            list: clients.iter().map(|c| c.client_id.clone()).collect(),
            clients,
        })
    }

    pub(super) async fn all_groups(
        &self,
        system: &str,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, ApiError> {
        self.ensure_system(system).await?;
        let epoch = self.check_ready()?;
        let mut conn = self.conn();
        let groups: Vec<String> = self.track(conn.smembers(self.keys.groups(system)).await)?;
        let mut pipe = redis::pipe();
        for group in &groups {
            pipe.hkeys(self.keys.members(system, group));
        }
        // Checked after the reads: a restart between them shows here.
        pipe.get(self.keys.epoch());
        let mut replies: Vec<redis::Value> = self.track(pipe.query_async(&mut conn).await)?;
        let seen = replies
            .pop()
            .and_then(|v| redis::from_redis_value::<Option<String>>(&v).ok())
            .flatten();
        self.same_epoch(&epoch, seen)?;
        let mut all = std::collections::BTreeMap::new();
        for (group, members) in groups.into_iter().zip(replies) {
            let mut members: Vec<String> = redis::from_redis_value(&members).unwrap_or_default();
            if !members.is_empty() {
                members.sort();
                all.insert(group, members);
            }
        }
        Ok(all)
    }
}

/// How many times an `update_system` re-reads settings that changed under it.
const UPDATE_ATTEMPTS: usize = 5;
