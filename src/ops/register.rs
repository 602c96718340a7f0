//! `register`: a new system, with its webhook, MQTT and presence settings.

use serde::Deserialize;

use super::{Caller, NoCommand, Node, Operation};
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{
    check_system_id, CheckLimits, EmptyList, MqttRequest, Name, OverLimit, WebhookRequest,
};
use crate::settings::{PresenceMode, SystemSettings};

pub type Request = RegisterRequest;

/// `register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub system_id: Name,
    #[serde(default)]
    pub webhook: Option<WebhookRequest>,
    #[serde(default)]
    pub mqtt: Option<MqttRequest>,
    /// Whom the 1001/1002 notices are about: each connection (default) or each user.
    #[serde(default)]
    pub presence: PresenceMode,
}

impl RegisterRequest {
    /// The settings of a system registered now with this request.
    pub fn settings(&self) -> SystemSettings {
        let mut settings = SystemSettings::new(crate::settings::now_millis());
        settings.webhook = self.webhook.as_ref().map(WebhookRequest::settings);
        settings.mqtt = self.mqtt.as_ref().map(MqttRequest::settings);
        settings.presence = self.presence;
        settings
    }
}

impl CheckLimits for RegisterRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_system_id(self.system_id.as_str(), limits)?;
        if let Some(mqtt) = &self.mqtt {
            mqtt.check_system_id(self.system_id.as_str())?;
        }
        self.webhook.as_ref().map_or(Ok(()), WebhookRequest::check)
    }
}

impl Operation for RegisterRequest {
    const NAME: &'static str = "register";
    const SUMMARY: &'static str = "Registers a system";
    const TAG: &'static str = "systems";
    const ERRORS: &'static [u16] = &[400, 401, 403, 405, 409, 413, 503];
    type Caller = Caller;
    type Reply = EmptyList;
    type Command = NoCommand;

    async fn call(self, node: &Node, caller: Caller) -> Result<EmptyList, ApiError> {
        let settings = self.settings();
        let system_id = self.system_id.into_inner();
        caller.require(&system_id)?;
        super::check_webhook_address(node, self.webhook.as_ref()).await?;
        node.directory.register(system_id, settings).await?;
        Ok(EmptyList)
    }
}
