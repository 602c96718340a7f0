//! Where the events about a system's clients go: its webhook, and the MQTT bridge. Whoever
//! decides an event (the registry for its clients, the cluster for occupancy and dead nodes)
//! hands it here once; it is built only if the system's settings ask for it somewhere.

use std::sync::Arc;

use crate::settings::{EventName, SystemSettings};
use crate::webhooks::{WebhookEvent, Webhooks};

/// Where events go besides webhooks: the MQTT bridge. Known here by what it does, so that what
/// decides events (the registry, the cluster) does not depend on the bridge, which issues
/// commands to them.
pub trait EventPublisher: Send + Sync + std::fmt::Debug {
    /// Publishes `event` for the system, or drops (and counts) it.
    fn publish_event(&self, system_id: &str, event: &WebhookEvent);
    /// Whether it is connected to its broker (for `/healthz`).
    fn is_connected(&self) -> bool;
}

/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outlets {
    pub webhooks: Webhooks,
    /// `--mqtt-url`: the bridge; `None`: no broker is touched.
    pub mqtt: Option<Arc<dyn EventPublisher>>,
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
