//! The MQTT side of the delivery thread: a batch of a system's events for the broker, handed to
//! the bridge, settled once the broker acknowledged every one.

use super::{BackendEvent, Shared};

impl Shared {
    /// Publishes one batch to the MQTT broker, one message per event, in order; true once the
    /// broker acknowledged them all. (The bridge's client sends them again after a reconnect.)
    pub(super) async fn publish(&self, system_id: &str, events: &[BackendEvent]) -> bool {
        let Some(mqtt) = &self.mqtt else {
            log::warn!("events of system '{system_id}' for MQTT, but this node has no bridge");
            return false;
        };
        let acknowledged = mqtt.clone().publish(system_id, events).await;
        if acknowledged {
            self.metrics
                .mqtt_messages
                .with_label_values(&["out"])
                .inc_by(events.len() as u64);
        }
        acknowledged
    }
}
