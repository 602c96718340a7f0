//! Systems in a cluster: registering one (with its settings, in one step), adopting one
//! registered on another node, taking a settings change or an unregister on every node, and
//! catching up on changes a node missed while cut off from Redis.

use redis::AsyncCommands;

use super::calls::NodeCall;
use super::node::Cluster;
use super::scripts::REGISTER;
use crate::actors::messages as m;
use crate::error::ApiError;
use crate::settings::{SettingsUpdate, SystemSettings};

impl Cluster {
    /// `register`: exactly one of several racing callers wins; the settings are written with
    /// the system, in the same step.
    pub(super) async fn register_system(
        &self,
        system_id: &str,
        settings: &SystemSettings,
    ) -> Result<(), ApiError> {
        let json = serde_json::to_string(settings).unwrap_or_default();
        let added = self
            .run_guarded(
                &REGISTER,
                &[self.keys.systems(), self.keys.settings(system_id)],
                &[system_id, &json],
            )
            .await?;
        if added == 0 {
            return Err(m::RegistryError::SystemExists(system_id.to_owned()).into());
        }
        self.adopt_system(system_id, settings.clone()).await;
        Ok(())
    }

    /// Makes sure a system registered anywhere in the cluster is known to the local registry,
    /// with its settings.
    pub async fn ensure_system(&self, system_id: &str) -> Result<(), ApiError> {
        if Self::lock(&self.known_systems).contains_key(system_id) {
            return Ok(());
        }
        let epoch = self.check_ready()?;
        let (seen, exists, settings): (Option<String>, bool, Option<String>) = self.track(
            redis::pipe()
                .get(self.keys.epoch())
                .sismember(self.keys.systems(), system_id)
                .get(self.keys.settings(system_id))
                .query_async(&mut self.conn())
                .await,
        )?;
        // After a restart, "not there" may only mean "not written back yet".
        self.same_epoch(&epoch, seen)?;
        if !exists {
            return Err(m::RegistryError::UnknownSystem(system_id.to_owned()).into());
        }
        self.adopt_system(system_id, read_settings(settings.as_deref()))
            .await;
        Ok(())
    }

    /// Registers a system in the local registry, or brings its settings up to date there.
    pub(super) async fn adopt_system(&self, system_id: &str, settings: SystemSettings) {
        let registered = self
            .registry
            .send(m::Register {
                system_id: system_id.to_owned(),
                settings: settings.clone(),
            })
            .await;
        if matches!(registered, Ok(Err(m::RegistryError::SystemExists(_)))) {
            let _ = self
                .registry
                .send(m::UpdateSystem {
                    system_id: system_id.to_owned(),
                    update: SettingsUpdate::replacing(&settings),
                })
                .await;
        }
        Self::lock(&self.known_systems).insert(system_id.to_owned(), settings);
    }

    /// Another node changed a system's settings: take them, if this node knows the system.
    pub(super) async fn take_settings(
        &self,
        system_id: String,
        settings: SystemSettings,
    ) -> Result<(), ApiError> {
        if !Self::lock(&self.known_systems).contains_key(&system_id) {
            return Ok(());
        }
        let cmd = m::UpdateSystem {
            system_id: system_id.clone(),
            update: SettingsUpdate::replacing(&settings),
        };
        match self.local(cmd).await {
            Ok(settings) => {
                Self::lock(&self.known_systems).insert(system_id, settings);
                Ok(())
            }
            Err(ApiError::Forbidden(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// A system was unregistered: close its clients here with 4001 and forget it; answered once
    /// Redis knows those clients are gone.
    pub(super) async fn forget_system(&self, system_id: String) -> Result<(), ApiError> {
        Self::lock(&self.known_systems).remove(&system_id);
        match self.local(m::Unregister { system_id }).await {
            Ok(()) | Err(ApiError::Forbidden(_)) => {}
            Err(err) => return Err(err),
        }
        self.written().await
    }

    /// Runs `call` on every live node, this one included, at once. Returns the nodes that did
    /// not confirm it (a node that is gone has nothing to do and counts as done).
    pub(super) async fn on_every_node(
        &self,
        call: impl Fn() -> NodeCall,
    ) -> Result<Vec<String>, ApiError> {
        let mut nodes: Vec<String> = self.track(self.conn().smembers(self.keys.nodes()).await)?;
        if !nodes.contains(&self.node_id) {
            nodes.push(self.node_id.clone());
        }
        let calls = nodes.iter().map(|node| {
            let call = call();
            async move {
                let result = if *node == self.node_id {
                    self.answer(call).await
                } else {
                    self.request(node, call).await
                };
                match result {
                    Ok(_) | Err(ApiError::NotFound(_)) => None,
                    Err(err) => {
                        log::warn!("node {node} did not confirm a system change: {err}");
                        Some(node.clone())
                    }
                }
            }
        });
        Ok(futures_util::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect())
    }

    /// Reads every known system's settings again: the heartbeat saw `settings-version` move,
    /// so a change (or a removal) may have been missed while this node was cut off.
    pub(super) async fn refresh_systems(&self) -> Result<(), ApiError> {
        let systems: Vec<String> = Self::lock(&self.known_systems).keys().cloned().collect();
        if systems.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for system_id in &systems {
            pipe.sismember(self.keys.systems(), system_id)
                .get(self.keys.settings(system_id));
        }
        let found: Vec<(bool, Option<String>)> =
            self.track(pipe.query_async(&mut self.conn()).await)?;
        for (system_id, (exists, settings)) in systems.into_iter().zip(found) {
            if exists {
                let settings = read_settings(settings.as_deref());
                let known = Self::lock(&self.known_systems).get(&system_id).cloned();
                if known.as_ref() != Some(&settings) {
                    self.adopt_system(&system_id, settings).await;
                }
            } else {
                log::info!("system '{system_id}' was unregistered on another node");
                self.forget_system(system_id).await?;
            }
        }
        Ok(())
    }
}

/// Settings as Redis holds them; a system registered before settings existed has none.
pub(super) fn read_settings(json: Option<&str>) -> SystemSettings {
    json.filter(|json| !json.is_empty())
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_else(|| SystemSettings::new(0))
}
