//! A system's settings: what `register` and `update_system` set, what `get_system` shows (less
//! the secret), and what the store (one node) or Redis (a cluster) keeps.

use serde::{Deserialize, Serialize};

/// The events a backend can be told about (the webhook and MQTT event set).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    ClientOnline,
    ClientOffline,
    GroupJoined,
    GroupLeft,
    GroupOccupied,
    GroupVacated,
    ClientMessage,
    /// A user's first connection in the system appeared.
    UserOnline,
    /// A user's last connection left and `--presence-grace` passed without one coming back.
    UserOffline,
}

impl EventName {
    pub const ALL: [EventName; 9] = [
        EventName::ClientOnline,
        EventName::ClientOffline,
        EventName::GroupJoined,
        EventName::GroupLeft,
        EventName::GroupOccupied,
        EventName::GroupVacated,
        EventName::ClientMessage,
        EventName::UserOnline,
        EventName::UserOffline,
    ];
}

/// Whom a group's 1001 and 1002 notices are about: each connection (the legacy behaviour), or
/// each user (the first connection of a user in a group, and its last one after the grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceMode {
    #[default]
    Client,
    User,
}

/// Where a system's events are posted, and the secret that signs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: String,
    /// Sorted, without repeats.
    pub events: Vec<EventName>,
}

impl WebhookSettings {
    pub fn wants(&self, event: EventName) -> bool {
        self.events.binary_search(&event).is_ok()
    }
}

/// Where an event goes: a system's webhook, or the MQTT broker (`<prefix><systemId>/events/
/// <name>`). Kept with each stored event (a webhook's form is the one stored before MQTT events
/// were, so old outboxes read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Destination {
    /// `mqtt` is always true: it tells this form from a webhook's.
    Mqtt {
        mqtt: bool,
    },
    Webhook(WebhookSettings),
}

impl Destination {
    pub(crate) fn is_mqtt(&self) -> bool {
        matches!(self, Destination::Mqtt { .. })
    }
}

/// Which events the MQTT bridge publishes for a system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MqttSettings {
    /// Sorted, without repeats.
    pub events: Vec<EventName>,
}

/// Everything kept about a registered system (clients and groups are not: they belong to live
/// connections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSettings {
    /// Unix time in milliseconds.
    pub registered_at: u64,
    #[serde(default)]
    pub webhook: Option<WebhookSettings>,
    #[serde(default)]
    pub mqtt: Option<MqttSettings>,
    #[serde(default)]
    pub presence: PresenceMode,
}

impl SystemSettings {
    /// A system registered now, with nothing set.
    pub fn new(registered_at: u64) -> SystemSettings {
        SystemSettings {
            registered_at,
            webhook: None,
            mqtt: None,
            presence: PresenceMode::Client,
        }
    }

    /// Applies an `update_system`.
    pub fn apply(&mut self, update: &SettingsUpdate) {
        update.webhook.apply_to(&mut self.webhook);
        update.mqtt.apply_to(&mut self.mqtt);
        if let Some(presence) = update.presence {
            self.presence = presence;
        }
    }
}

/// One setting in an `update_system`: absent (keep it), `null` (remove it), or a new value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Patch<T> {
    #[default]
    Keep,
    Remove,
    Set(T),
}

impl<T: Clone> Patch<T> {
    fn apply_to(&self, setting: &mut Option<T>) {
        match self {
            Patch::Keep => {}
            Patch::Remove => *setting = None,
            Patch::Set(value) => *setting = Some(value.clone()),
        }
    }

    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}

/// What an `update_system` changes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SettingsUpdate {
    pub webhook: Patch<WebhookSettings>,
    pub mqtt: Patch<MqttSettings>,
    /// `None`: kept.
    #[serde(default)]
    pub presence: Option<PresenceMode>,
}

impl SettingsUpdate {
    /// The update that makes any system's settings equal to `settings` (but its
    /// `registered_at`): how a cluster node brings its copy up to date.
    pub fn replacing(settings: &SystemSettings) -> SettingsUpdate {
        fn whole<T: Clone>(setting: &Option<T>) -> Patch<T> {
            setting.clone().map_or(Patch::Remove, Patch::Set)
        }
        SettingsUpdate {
            webhook: whole(&settings.webhook),
            mqtt: whole(&settings.mqtt),
            presence: Some(settings.presence),
        }
    }
}

/// Unix time in milliseconds, now.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(url: &str) -> WebhookSettings {
        WebhookSettings {
            url: url.into(),
            secret: "0123456789abcdef".into(),
            events: EventName::ALL.to_vec(),
        }
    }

    #[test]
    fn an_update_keeps_removes_or_replaces_each_setting_on_its_own() {
        let mut settings = SystemSettings::new(1);
        settings.apply(&SettingsUpdate {
            webhook: Patch::Set(webhook("http://a")),
            mqtt: Patch::Set(MqttSettings {
                events: vec![EventName::ClientOnline],
            }),
            presence: Some(PresenceMode::User),
        });
        settings.apply(&SettingsUpdate {
            webhook: Patch::Set(webhook("http://b")),
            mqtt: Patch::Keep,
            presence: None,
        });
        assert_eq!(
            settings.webhook.as_ref().map(|w| w.url.as_str()),
            Some("http://b")
        );
        assert!(settings.mqtt.is_some());
        settings.apply(&SettingsUpdate {
            webhook: Patch::Keep,
            mqtt: Patch::Remove,
            presence: None,
        });
        assert!(settings.webhook.is_some() && settings.mqtt.is_none());
        assert_eq!(settings.presence, PresenceMode::User);
        assert_eq!(settings.registered_at, 1);
    }

    #[test]
    fn the_stored_form_reads_back() {
        let mut settings = SystemSettings::new(7);
        settings.webhook = Some(webhook("https://example.test/hook"));
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(
            serde_json::from_str::<SystemSettings>(&json).unwrap(),
            settings
        );
        assert!(settings.webhook.unwrap().wants(EventName::GroupVacated));
    }
}
