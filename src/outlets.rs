//! Where the events about a system's clients go: its webhook, and the MQTT bridge. Whoever
//! decides an event (the registry for its clients, the cluster for occupancy and dead nodes)
//! hands it here once; it is built only if the system's settings ask for it somewhere.

use std::sync::Arc;

use crate::mqtt::MqttBridge;
use crate::settings::{EventName, SystemSettings};
use crate::webhooks::{WebhookEvent, Webhooks};

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outlets {
    pub webhooks: Webhooks,
    /// `--mqtt-url`: the bridge; `None`: no broker is touched.
    pub mqtt: Option<Arc<MqttBridge>>,
}

impl Outlets {
    /// Sends the event `name` of `system_id` wherever its settings ask for it.
    pub fn send(
        &self,
        system_id: &str,
        settings: Option<&SystemSettings>,
        name: EventName,
        event: impl FnOnce() -> WebhookEvent,
    ) {
        let Some(settings) = settings else { return };
        let webhook = settings.webhook.as_ref().filter(|w| w.wants(name));
        let mqtt = self.mqtt.as_ref().filter(|_| {
            settings
                .mqtt
                .as_ref()
                .is_some_and(|m| m.events.binary_search(&name).is_ok())
        });
        if webhook.is_none() && mqtt.is_none() {
            return;
        }
        let event = event();
        if let Some(bridge) = mqtt {
            bridge.publish_event(system_id, &event);
        }
        if let Some(target) = webhook {
            let registration = settings.registered_at;
            self.webhooks.queue(system_id, registration, target, event);
        }
    }
}
