//! `update_system`: changes a system's webhook, MQTT or presence settings.

use serde::Deserialize;

use super::{NoCommand, Node, Operation, SystemCaller};
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{present, CheckLimits, EmptyList, MqttRequest, OverLimit, WebhookRequest};
use crate::settings::{Patch, PresenceMode, SettingsUpdate};

pub type Request = UpdateSystemRequest;

/// `update_system`: an absent key keeps that setting, `null` removes it, an object replaces it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateSystemRequest {
    #[serde(default, deserialize_with = "present")]
    pub webhook: Option<Option<WebhookRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub mqtt: Option<Option<MqttRequest>>,
    /// Whom the 1001/1002 notices are about from now on; absent keeps it.
    #[serde(default)]
    pub presence: Option<PresenceMode>,
}

impl UpdateSystemRequest {
    pub fn update(&self) -> SettingsUpdate {
        fn patch<R, T>(field: &Option<Option<R>>, settings: impl Fn(&R) -> T) -> Patch<T> {
            match field {
                None => Patch::Keep,
                Some(None) => Patch::Remove,
                Some(Some(request)) => Patch::Set(settings(request)),
            }
        }
        SettingsUpdate {
            webhook: patch(&self.webhook, WebhookRequest::settings),
            mqtt: patch(&self.mqtt, MqttRequest::settings),
            presence: self.presence,
        }
    }
}

impl CheckLimits for UpdateSystemRequest {
    fn check_limits(&self, _: &Limits) -> Result<(), OverLimit> {
        if self.webhook.is_none() && self.mqtt.is_none() && self.presence.is_none() {
            return Err(OverLimit::Field(
                "name webhook, mqtt or presence: an update with none changes nothing".into(),
            ));
        }
        match &self.webhook {
            Some(Some(webhook)) => webhook.check(),
            _ => Ok(()),
        }
    }
}

impl Operation for UpdateSystemRequest {
    const NAME: &'static str = "update_system";
    const SUMMARY: &'static str = "Changes a system's webhook, MQTT or presence settings";
    const TAG: &'static str = "systems";
    type Caller = SystemCaller;
    type Reply = EmptyList;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        super::check_webhook_address(node, self.webhook.as_ref().and_then(Option::as_ref)).await?;
        if let Some(Some(mqtt)) = &self.mqtt {
            mqtt.check_system_id(&caller.system_id)
                .map_err(|refused| ApiError::BadRequest(refused.to_string()))?;
        }
        node.directory
            .update(caller.system_id, self.update())
            .await?;
        Ok(EmptyList)
    }
}
