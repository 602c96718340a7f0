//! Webhooks: what a backend is told about its system's clients, signed and delivered in order.
//!
//! The registry (which knows each client's `userId` and groups) builds a [`BackendEvent`] when
//! something happens and hands it to its outlets ([`crate::actors::outward`]); [`Webhooks`] is
//! one, queueing the event for the system's webhook if its settings ask for that event. [`Webhooks`] is a channel into the delivery thread
//! ([`delivery`]): one queue per system, bounded, batched (up to [`BATCH_EVENTS`] events or
//! [`BATCH_WINDOW`]), one batch in flight per system, retried with backoff, signed with
//! HMAC-SHA256 over `"<timestamp>.<body>"`. The delivery thread is its own actix arbiter, so a
//! slow or dead endpoint costs pushes, REST replies and other systems nothing.
//!
//! The same thread, with the same outbox, delivers the events a system's `mqtt` settings ask for
//! ([`MqttEvents`]) to the broker through the bridge ([`EventPublisher`]): one more queue per
//! system, whose batches leave the outbox once the broker acknowledged them.

pub mod delivery;
pub mod guard;
pub mod outbox;
pub mod outbox_redis;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::actors::outward::{BackendEvent, Outlet};
pub use crate::config::WebhookConfig;
pub use crate::settings::Destination;
use crate::settings::{EventName, SettingsUpdate, SystemSettings, WebhookSettings};
use outbox::{Outbox, OutboxHealth};

/// Most events in one batch.
pub const BATCH_EVENTS: usize = 100;
/// Longest an event waits for others to share its batch.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// First wait before a retry; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Publishes a system's events to the MQTT broker (the bridge): resolves to true once the
/// broker acknowledged every one (PUBACK), false if they cannot be published.
pub trait EventPublisher: Send + Sync {
    fn publish(
        self: std::sync::Arc<Self>,
        system_id: &str,
        events: &[BackendEvent],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>>;
}

/// What the delivery thread is told. `registration` is the system's `registeredAt`: events
/// belong to the registration that produced them, and never go to a later one of the same id.
pub(crate) enum Command {
    /// Queue `event` for `target` (`system_id`'s webhook, which is that now, or the broker).
    Event {
        system_id: String,
        registration: u64,
        target: Destination,
        event: BackendEvent,
    },
    /// The system's webhook is `target` now: what is queued goes to the new URL.
    Retarget {
        system_id: String,
        registration: u64,
        target: WebhookSettings,
    },
    /// Node `node_id` is dead: take over its pending events (queued before what follows), and
    /// say how many, or why not.
    Adopt {
        node_id: String,
        done: tokio::sync::oneshot::Sender<Result<usize, String>>,
    },
}

/// Where events go. Cheap to clone. The delivery thread starts with the first event (a server
/// whose systems have no webhook never starts it) and lives as long as any clone.
#[derive(Clone)]
pub struct Webhooks(std::sync::Arc<Delivery>);

/// The delivery thread's settings, and its command channel once started.
struct Delivery {
    config: WebhookConfig,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    commands: std::sync::OnceLock<mpsc::UnboundedSender<Command>>,
    /// Events handed over and not yet delivered or given up (queued, in the channel, or in
    /// flight): what a shutdown waits for.
    pending: std::sync::Arc<AtomicUsize>,
    /// Events handed over and not yet in the outbox: what a shutdown must not leave behind.
    unstored: std::sync::Arc<AtomicUsize>,
    /// The outbox, until the delivery thread takes it.
    outbox: std::sync::Mutex<Option<Outbox>>,
    /// The MQTT bridge, which publishes the events sent to the broker.
    mqtt: Option<std::sync::Arc<dyn EventPublisher>>,
    durable: bool,
    health: OutboxHealth,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("started", &self.0.commands.get().is_some())
            .finish()
    }
}

impl Webhooks {
    /// Webhook delivery with these settings, keeping pending events in `outbox`. With an
    /// outbox on disk the delivery thread starts at once (it delivers what was kept); with one in
    /// memory, at the first event (a server whose systems have no webhook never starts it). Must
    /// be called inside a running actix system.
    pub fn new(
        config: WebhookConfig,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
        outbox: Outbox,
        mqtt: Option<std::sync::Arc<dyn EventPublisher>>,
    ) -> Webhooks {
        let durable = outbox.is_durable();
        let webhooks = Webhooks(std::sync::Arc::new(Delivery {
            config,
            metrics,
            commands: std::sync::OnceLock::new(),
            pending: std::sync::Arc::new(AtomicUsize::new(0)),
            unstored: std::sync::Arc::new(AtomicUsize::new(0)),
            health: outbox.health(),
            outbox: std::sync::Mutex::new(Some(outbox)),
            mqtt,
            durable,
        }));
        if durable {
            webhooks.commands();
        }
        webhooks
    }

    /// The delivery thread's command channel, starting the thread the first time.
    fn commands(&self) -> &mpsc::UnboundedSender<Command> {
        let delivery = &self.0;
        delivery.commands.get_or_init(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            let outbox = delivery
                .outbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_else(Outbox::memory);
            let counters = delivery::Counters {
                pending: delivery.pending.clone(),
                unstored: delivery.unstored.clone(),
            };
            delivery::start(
                delivery.config.clone(),
                (delivery.metrics.clone(), delivery.mqtt.clone()),
                counters,
                outbox,
                receiver,
            );
            commands
        })
    }

    fn send(&self, command: Command) {
        let commands = self.commands();
        if let Command::Event { .. } = command {
            self.0.pending.fetch_add(1, Ordering::AcqRel);
            self.0.unstored.fetch_add(1, Ordering::AcqRel);
        }
        let _ = commands.send(command);
    }

    /// Whether pending events are kept on disk across restarts.
    pub fn is_durable(&self) -> bool {
        self.0.durable
    }

    /// Why the outbox cannot be written now, if it cannot.
    pub fn outbox_failing(&self) -> Option<String> {
        self.0
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues `event` for the webhook of the system registered at `registration`, which is
    /// `target` now.
    pub fn queue(
        &self,
        system_id: &str,
        registration: u64,
        target: &WebhookSettings,
        event: BackendEvent,
    ) {
        self.send(Command::Event {
            system_id: system_id.to_owned(),
            registration,
            target: Destination::Webhook(target.clone()),
            event,
        });
    }

    /// The events a system's `mqtt` settings ask for, as an outlet: they go through the outbox
    /// too, and leave it once the broker acknowledged them.
    pub fn mqtt_outlet(&self) -> MqttEvents {
        MqttEvents(self.clone())
    }

    /// The system's webhook now points at `target`: what is queued goes there. (A webhook that
    /// is removed, or whose system is, is not retargeted: what is queued still goes out.)
    pub fn retarget(&self, system_id: &str, registration: u64, target: &WebhookSettings) {
        self.send(Command::Retarget {
            system_id: system_id.to_owned(),
            registration,
            target: target.clone(),
        });
    }

    /// Takes over the pending events of dead node `node_id` (cluster mode): once this returns
    /// `Ok`, they are in this node's outbox, queued ahead of any event handed over after the
    /// call. Returns how many there were.
    pub async fn adopt(&self, node_id: &str) -> Result<usize, String> {
        let (done, adopted) = tokio::sync::oneshot::channel();
        self.send(Command::Adopt {
            node_id: node_id.to_owned(),
            done,
        });
        adopted
            .await
            .unwrap_or_else(|_| Err("the webhook delivery thread has stopped".into()))
    }

    /// Events handed over and not yet delivered or given up.
    pub fn pending(&self) -> usize {
        self.0.pending.load(Ordering::Acquire)
    }

    /// Waits until every event handed over so far is delivered or given up, for at most
    /// `grace`, and then (for at most a second more) until every one is in the outbox; returns
    /// how many are still pending then: kept for the next start with an outbox on disk, lost
    /// without one.
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stored_by = tokio::time::Instant::now() + Duration::from_secs(1);
        while self.0.unstored.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < stored_by
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.pending()
    }
}

/// A system's webhook as an outlet of the registry's (and the cluster's) events.
impl Outlet for Webhooks {
    fn wants(&self, settings: &SystemSettings, name: EventName) -> bool {
        settings.webhook.as_ref().is_some_and(|w| w.wants(name))
    }

    fn take(&self, system_id: &str, settings: &SystemSettings, event: &BackendEvent) {
        if let Some(target) = &settings.webhook {
            self.queue(system_id, settings.registered_at, target, event.clone());
        }
    }

    fn settings_changed(
        &self,
        system_id: &str,
        settings: &SystemSettings,
        update: &SettingsUpdate,
    ) {
        if let Some(webhook) = settings
            .webhook
            .as_ref()
            .filter(|_| !update.webhook.is_keep())
        {
            self.retarget(system_id, settings.registered_at, webhook);
        }
    }
}

/// The events a system's `mqtt` settings ask for, queued in the outbox for the MQTT bridge.
#[derive(Debug)]
pub struct MqttEvents(Webhooks);

impl Outlet for MqttEvents {
    fn wants(&self, settings: &SystemSettings, name: EventName) -> bool {
        settings
            .mqtt
            .as_ref()
            .is_some_and(|mqtt| mqtt.events.binary_search(&name).is_ok())
    }

    fn take(&self, system_id: &str, settings: &SystemSettings, event: &BackendEvent) {
        self.0.send(Command::Event {
            system_id: system_id.to_owned(),
            registration: settings.registered_at,
            target: Destination::Mqtt { mqtt: true },
            event: event.clone(),
        });
    }
}
