//! The cluster as the [`Backplane`]: systems, the REST operations, and membership reads.

use std::collections::HashMap;

use redis::AsyncCommands;

use crate::actors::messages as m;
use crate::backplane::{Backplane, Lease, Reply, TokenHome};
use crate::error::ApiError;
use crate::protocol::{ClientInfo, OnlineClient, OnlineList, SystemInfo};
use crate::settings::{SettingsUpdate, SystemSettings};

use super::calls::{client_info_from, Op};
use super::keys::MemberInfo;
use super::node::{owner_of, Cluster};
use super::scripts::{UNREGISTER, UPDATE_SETTINGS};
use super::systems::read_settings;

/// The cluster as the [`Backplane`]: see the module docs for where each operation goes.
impl Backplane for Cluster {
    fn new_client_id(&self) -> String {
        format!("{}{}", self.node_id, crate::protocol::new_id())
    }

    fn admit<'a>(&'a self, system_id: &'a str, client_id: &'a str) -> Reply<'a, Lease> {
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

    fn register(&self, cmd: m::Register) -> Reply<'_, ()> {
        Box::pin(async move { self.register_system(&cmd.system_id, &cmd.settings).await })
    }

    /// Changes the settings in Redis (compare-and-set, so two racing updates both count), then
    /// has every node take them before answering; a node that missed it catches up on its next
    /// heartbeat (`settings-version`).
    fn update_system(&self, cmd: m::UpdateSystem) -> Reply<'_, SystemSettings> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let system_id = &cmd.system_id;
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
                settings.apply(&cmd.update);
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
                    1 => {
                        let update = SettingsUpdate::replacing(&settings);
                        self.on_every_node(|| {
                            Op::Settings(m::UpdateSystem {
                                system_id: system_id.clone(),
                                update: update.clone(),
                            })
                        })
                        .await?;
                        return Ok(settings);
                    }
                    _ => continue,
                }
            }
            Err(ApiError::Unavailable(
                "the system's settings kept changing under this update; retry".into(),
            ))
        })
    }

    fn get_system(&self, cmd: m::GetSystem) -> Reply<'_, SystemInfo> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let epoch = self.check_ready()?;
            let (seen, settings, clients): (Option<String>, Option<String>, usize) = self.track(
                redis::pipe()
                    .get(self.keys.epoch())
                    .get(self.keys.settings(&cmd.system_id))
                    .hlen(self.keys.clients(&cmd.system_id))
                    .query_async(&mut self.conn())
                    .await,
            )?;
            self.same_epoch(&epoch, seen)?;
            let settings = read_settings(settings.as_deref());
            Ok(SystemInfo::new(cmd.system_id, &settings, clients))
        })
    }

    /// Removes the system from Redis, then has every node close its clients (4001) and forget
    /// it; answered once every live node has.
    fn unregister(&self, cmd: m::Unregister) -> Reply<'_, ()> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let system_id = &cmd.system_id;
            let keys = [
                self.keys.systems(),
                self.keys.settings(system_id),
                self.keys.settings_version(),
            ];
            if self.run_guarded(&UNREGISTER, &keys, &[system_id]).await? == 0 {
                return Err(m::RegistryError::UnknownSystem(system_id.clone()).into());
            }
            let unconfirmed = self
                .on_every_node(|| {
                    Op::Unregister(m::Unregister {
                        system_id: system_id.clone(),
                    })
                })
                .await?;
            if unconfirmed.is_empty() {
                Ok(())
            } else {
                Err(ApiError::Unavailable(format!(
                    "system '{system_id}' is removed, but node(s) {} have not confirmed closing                      its clients yet; they will within a heartbeat",
                    unconfirmed.join(", ")
                )))
            }
        })
    }

    fn send_to_client(&self, cmd: m::SendToClient) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Send(cmd)).await.map(drop)
        })
    }

    fn send_to_clients(&self, cmd: m::SendToClients) -> Reply<'_, Vec<String>> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
            let mut missing = Vec::new();
            for client in cmd.client_ids {
                match owner_of(&client) {
                    Some(owner) => by_node.entry(owner.to_owned()).or_default().push(client),
                    None => missing.push(client),
                }
            }
            for (node, clients) in by_node {
                let op = Op::SendMany(m::SendToClients {
                    system_id: cmd.system_id.clone(),
                    client_ids: clients.clone(),
                    frame: cmd.frame.clone(),
                });
                let result = if node == self.node_id {
                    self.execute(op).await
                } else {
                    self.request(&node, op).await
                };
                match result {
                    Ok(value) => missing
                        .extend(serde_json::from_value::<Vec<String>>(value).unwrap_or_default()),
                    // A node that is gone has none of them.
                    Err(ApiError::NotFound(_)) => missing.extend(clients),
                    Err(err) => return Err(err),
                }
            }
            Ok(missing)
        })
    }

    /// Publishes once for the other nodes, delivers to local members; resolves to the
    /// cluster-wide member count.
    fn send_to_group(&self, cmd: m::SendToGroup) -> Reply<'_, usize> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let count = self
                .count_and_publish(
                    &cmd.system_id,
                    self.keys.members(&cmd.system_id, &cmd.group_name),
                    Some(cmd.group_name.clone()),
                    &cmd.frame,
                )
                .await?;
            self.local(cmd).await?;
            Ok(count)
        })
    }

    fn send_to_system(&self, cmd: m::SendToSystem) -> Reply<'_, usize> {
        Box::pin(async move {
            self.ensure_system(&cmd.system_id).await?;
            let count = self
                .count_and_publish(
                    &cmd.system_id,
                    self.keys.clients(&cmd.system_id),
                    None,
                    &cmd.frame,
                )
                .await?;
            self.local(cmd).await?;
            Ok(count)
        })
    }

    fn bind_to_group(&self, cmd: m::BindToGroup) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Bind(cmd)).await.map(drop)
        })
    }

    fn unbind_from_group(&self, cmd: m::UnbindFromGroup) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Unbind(cmd)).await.map(drop)
        })
    }

    fn get_online_list(&self, cmd: m::GetOnlineList) -> Reply<'_, OnlineList> {
        Box::pin(async move { self.online_list(&cmd.system_id, &cmd.group_name).await })
    }

    fn get_all_groups(
        &self,
        cmd: m::GetAllGroups,
    ) -> Reply<'_, std::collections::BTreeMap<String, Vec<String>>> {
        Box::pin(async move { self.all_groups(&cmd.system_id).await })
    }

    fn close_client(&self, cmd: m::CloseClient) -> Reply<'_, ()> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            self.on_owner(&client, Op::Close(cmd)).await.map(drop)
        })
    }

    fn token_home(self: std::sync::Arc<Self>, token: String) -> Reply<'static, TokenHome> {
        Box::pin(self.home_of(token))
    }

    fn get_client_info(&self, cmd: m::GetClientInfo) -> Reply<'_, ClientInfo> {
        Box::pin(async move {
            let client = cmd.client_id.clone();
            match self.on_owner(&client, Op::Info(cmd)).await {
                Ok(value) => Ok(client_info_from(value, client)),
                Err(ApiError::NotFound(_)) => Ok(ClientInfo::Offline {
                    online: false,
                    client_id: client,
                }),
                Err(err) => Err(err),
            }
        })
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
