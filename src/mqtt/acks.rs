//! Events published to the broker, acknowledged for real: the delivery thread hands a system's
//! batch over ([`EventPublisher`]) and learns once the broker has sent a PUBACK for every one, so
//! an event leaves the outbox only then.
//!
//! rumqttc does not say which packet id a publish got, but its event loop reports each publish
//! it sends (`Outgoing::Publish(pkid)`) in the order they were handed to the client. So the
//! batches are handed over one at a time (`publishing`), each message's waiter queued first
//! (`unsent`); the event loop moves the front waiter to `in_flight` under the packet id it
//! reports, and wakes it at the PUBACK. A publish sent again after a reconnect keeps its id and
//! its waiter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rumqttc::v5::mqttbytes::v5::{PubAck, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;

use super::MqttBridge;
use crate::actors::outward::BackendEvent;
use crate::webhooks::EventPublisher;

impl MqttBridge {
    fn lock_acks(&self) -> std::sync::MutexGuard<'_, super::Acks> {
        self.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The event loop sent a publish with packet id `pkid` (first time or again).
    pub(super) fn publish_sent(&self, pkid: u16) {
        let mut acks = self.lock_acks();
        if acks.in_flight.contains_key(&pkid) {
            return;
        }
        if let Some(waiter) = acks.unsent.pop_front() {
            acks.in_flight.insert(pkid, waiter);
        }
    }

    /// The broker acknowledged packet `ack.pkid`: delivered, unless it said no.
    pub(super) fn publish_acknowledged(&self, ack: &PubAck) {
        if let Some(waiter) = self.lock_acks().in_flight.remove(&ack.pkid) {
            let _ = waiter.send(matches!(
                ack.reason,
                PubAckReason::Success | PubAckReason::NoMatchingSubscribers
            ));
        }
    }

    /// `<prefix><systemId>/events/<name>`.
    fn event_topic(&self, system_id: &str, event: &BackendEvent) -> String {
        let name = serde_json::to_value(event.name)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        format!("{}{system_id}/events/{name}", self.prefix)
    }
}

/// Each event as its own QoS 1 message, as the JSON object a webhook batch carries.
impl EventPublisher for MqttBridge {
    fn publish(
        self: Arc<Self>,
        system_id: &str,
        events: &[BackendEvent],
    ) -> Pin<Box<dyn Future<Output = bool>>> {
        let messages: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|event| {
                let payload = serde_json::to_vec(event).unwrap_or_default();
                (self.event_topic(system_id, event), payload)
            })
            .collect();
        Box::pin(async move {
            let mut acknowledged = Vec::with_capacity(messages.len());
            {
                let _in_order = self.publishing.lock().await;
                for (topic, payload) in messages {
                    let (waiter, ack) = tokio::sync::oneshot::channel();
                    self.lock_acks().unsent.push_back(waiter);
                    let handed = self
                        .client
                        .publish(topic, QoS::AtLeastOnce, false, payload)
                        .await;
                    if handed.is_err() {
                        self.lock_acks().unsent.pop_back();
                        return false;
                    }
                    acknowledged.push(ack);
                }
            }
            for ack in acknowledged {
                if !ack.await.unwrap_or(false) {
                    return false;
                }
            }
            true
        })
    }
}
