//! Webhooks: what a backend is told about its system's clients, signed and delivered in order.
//!
//! The registry (which knows each client's `userId` and groups) builds a [`WebhookEvent`] when
//! something happens and hands it to [`Webhooks::queue`] with the system's webhook settings, if
//! they ask for that event. [`Webhooks`] is a channel into the delivery thread
//! ([`delivery`]): one queue per system, bounded, batched (up to [`BATCH_EVENTS`] events or
//! [`BATCH_WINDOW`]), one batch in flight per system, retried with backoff, signed with
//! HMAC-SHA256 over `"<timestamp>.<body>"`. The delivery thread is its own actix arbiter, so a
//! slow or dead endpoint costs pushes, REST replies and other systems nothing.

pub mod delivery;
pub mod guard;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use crate::config::WebhookConfig;
use crate::settings::{now_millis, EventName, WebhookSettings};

/// Most events in one batch.
pub const BATCH_EVENTS: usize = 100;
/// Longest an event waits for others to share its batch.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// First wait before a retry; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a client went offline: the `reason` of `client_offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// It closed, with a close frame.
    Closed,
    /// Its connection ended without a close frame.
    ConnectionLost,
    /// It stayed silent past `--client-timeout`.
    Timeout,
    /// The server closed it for breaking the rules: 1002, 1003, 1009, 4029.
    Protocol,
    CloseClient,
    SlowConsumer,
    Shutdown,
    /// Its node died (cluster mode; reported by the node that purged it).
    NodeLost,
    SystemRemoved,
    /// A recovery client did not come back: its window ended, its kept frames passed
    /// `--recovery-buffer`, or its resume could not be honoured.
    RecoveryExpired,
}

/// How and why a client left: the reason and the close code, if there was one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Offline {
    pub reason: OfflineReason,
    pub code: Option<u16>,
}

impl Offline {
    pub fn new(reason: OfflineReason, code: Option<u16>) -> Offline {
        Offline { reason, code }
    }
}

/// One event, as the backend reads it: `{"id","name","timeMs", ...fields}`, serialized once
/// when it happens. Queues hold it as those bytes (what a queue's byte bound counts), never as a
/// parsed tree: a client's 8 KiB frame of `[0,0,...]` costs 8 KiB here, not a `Value` per item.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    pub name: EventName,
    json: Box<RawValue>,
}

impl Serialize for WebhookEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

/// The fields every event starts with.
#[derive(Serialize)]
struct Head {
    id: String,
    name: EventName,
    #[serde(rename = "timeMs")]
    time_ms: u64,
}

impl Head {
    fn now(name: EventName) -> Head {
        Head {
            id: crate::protocol::new_id(),
            name,
            time_ms: now_millis(),
        }
    }
}

/// An event's head and its own fields, as one object.
#[derive(Serialize)]
struct Whole<F> {
    #[serde(flatten)]
    head: Head,
    #[serde(flatten)]
    fields: F,
}

impl WebhookEvent {
    fn from_fields(name: EventName, fields: impl Serialize) -> WebhookEvent {
        let whole = Whole {
            head: Head::now(name),
            fields,
        };
        // Strings, numbers and a raw value (already checked JSON) always serialize.
        let json = serde_json::value::to_raw_value(&whole).unwrap_or_default();
        WebhookEvent { name, json }
    }

    fn new(name: EventName, fields: Value) -> WebhookEvent {
        Self::from_fields(name, fields)
    }

    /// The event's size as queued.
    pub fn bytes(&self) -> usize {
        self.json.get().len()
    }

    pub fn client_online(client_id: &str) -> WebhookEvent {
        Self::new(EventName::ClientOnline, json!({ "clientId": client_id }))
    }

    pub fn client_offline(
        client_id: &str,
        user_id: &str,
        groups: &[String],
        offline: Offline,
    ) -> WebhookEvent {
        Self::new(
            EventName::ClientOffline,
            json!({
                "clientId": client_id,
                "userId": user_id,
                "groups": groups,
                "reason": offline.reason,
                "code": offline.code,
            }),
        )
    }

    pub fn group_joined(client_id: &str, group: &str, user_id: &str, extend: &str) -> WebhookEvent {
        Self::new(
            EventName::GroupJoined,
            json!({ "clientId": client_id, "groupName": group, "userId": user_id, "extend": extend }),
        )
    }

    /// `reason`: `unbind`, or `offline` (the client left every group by going away).
    pub fn group_left(client_id: &str, group: &str, user_id: &str, reason: &str) -> WebhookEvent {
        Self::new(
            EventName::GroupLeft,
            json!({ "clientId": client_id, "groupName": group, "userId": user_id, "reason": reason }),
        )
    }

    pub fn group_occupied(group: &str) -> WebhookEvent {
        Self::new(EventName::GroupOccupied, json!({ "groupName": group }))
    }

    pub fn group_vacated(group: &str) -> WebhookEvent {
        Self::new(EventName::GroupVacated, json!({ "groupName": group }))
    }

    /// `text`: the frame as sent; `data` is its JSON value if it parses, else the string. The
    /// value is kept as the client wrote it, not parsed into a tree.
    pub fn client_message(
        client_id: &str,
        user_id: &str,
        groups: &[String],
        text: &str,
    ) -> WebhookEvent {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields<'a> {
            client_id: &'a str,
            user_id: &'a str,
            groups: &'a [String],
            data: &'a RawValue,
        }
        let data = RawValue::from_string(text.to_owned())
            .or_else(|_| serde_json::value::to_raw_value(text))
            .unwrap_or_default();
        let fields = Fields {
            client_id,
            user_id,
            groups,
            data: &data,
        };
        Self::from_fields(EventName::ClientMessage, fields)
    }
}

/// What the delivery thread is told. `registration` is the system's `registeredAt`: events
/// belong to the registration that produced them, and never go to a later one of the same id.
pub(crate) enum Command {
    /// Queue `event` for `system_id`'s webhook, which is `target` now.
    Event {
        system_id: String,
        registration: u64,
        target: WebhookSettings,
        event: WebhookEvent,
    },
    /// The system's webhook is `target` now: what is queued goes to the new URL.
    Retarget {
        system_id: String,
        registration: u64,
        target: WebhookSettings,
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
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("started", &self.0.commands.get().is_some())
            .finish()
    }
}

impl Webhooks {
    /// Webhook delivery with these settings; nothing starts until there is something to send.
    pub fn start(
        config: WebhookConfig,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Webhooks {
        Webhooks(std::sync::Arc::new(Delivery {
            config,
            metrics,
            commands: std::sync::OnceLock::new(),
            pending: std::sync::Arc::new(AtomicUsize::new(0)),
        }))
    }

    fn send(&self, command: Command) {
        let delivery = &self.0;
        let commands = delivery.commands.get_or_init(|| {
            let (commands, receiver) = mpsc::unbounded_channel();
            let pending = delivery.pending.clone();
            delivery::start(
                delivery.config.clone(),
                delivery.metrics.clone(),
                pending,
                receiver,
            );
            commands
        });
        if let Command::Event { .. } = command {
            delivery.pending.fetch_add(1, Ordering::AcqRel);
        }
        let _ = commands.send(command);
    }

    /// Queues `event` for the webhook of the system registered at `registration`, which is
    /// `target` now.
    pub fn queue(
        &self,
        system_id: &str,
        registration: u64,
        target: &WebhookSettings,
        event: WebhookEvent,
    ) {
        self.send(Command::Event {
            system_id: system_id.to_owned(),
            registration,
            target: target.clone(),
            event,
        });
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

    /// Events not yet delivered or given up.
    pub fn pending(&self) -> usize {
        self.0.pending.load(Ordering::Acquire)
    }

    /// Waits until every event handed over so far is delivered or given up, for at most
    /// `grace`; returns how many are still pending then (lost, if the process ends).
    pub async fn drain(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.pending()
    }
}
