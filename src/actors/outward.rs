//! Where events about a system's clients leave the actors: the registry (and the cluster, for
//! occupancy and dead nodes) builds a [`BackendEvent`] when something happens and hands it to
//! [`Outward`], which gives it to each [`Outlet`] (the system's webhook, the MQTT bridge) whose
//! settings ask for it. It is built only if one does, and serialized once. The outlets depend on
//! this module, never the other way: the actors do not know the webhook sender or the bridge.

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::settings::{now_millis, EventName, SettingsUpdate, SystemSettings};

/// Somewhere events go: the webhook sender, the MQTT bridge.
pub trait Outlet: Send + Sync + std::fmt::Debug {
    /// Whether the system's settings ask this outlet for `name`.
    fn wants(&self, settings: &SystemSettings, name: EventName) -> bool;
    /// Takes an event the settings asked for.
    fn take(&self, system_id: &str, settings: &SystemSettings, event: &BackendEvent);
    /// The system's settings changed (`update_system`, as `update` asked).
    fn settings_changed(
        &self,
        _system_id: &str,
        _settings: &SystemSettings,
        _update: &SettingsUpdate,
    ) {
    }
}

/// Every outlet, in one handle. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Outward(Arc<[Arc<dyn Outlet>]>);

impl Outward {
    pub fn new(outlets: Vec<Arc<dyn Outlet>>) -> Outward {
        Outward(outlets.into())
    }

    /// Sends the event `name` of `system_id` to each outlet its settings ask it of; `event`
    /// builds it, once, only if one does.
    pub fn send(
        &self,
        system_id: &str,
        settings: Option<&SystemSettings>,
        name: EventName,
        event: impl FnOnce() -> BackendEvent,
    ) {
        let Some(settings) = settings else { return };
        let mut event = Some(event);
        let mut built = None;
        for outlet in self.0.iter().filter(|outlet| outlet.wants(settings, name)) {
            if built.is_none() {
                built = event.take().map(|build| build());
            }
            if let Some(event) = &built {
                outlet.take(system_id, settings, event);
            }
        }
    }

    /// Tells every outlet that a system's settings changed.
    pub fn settings_changed(
        &self,
        system_id: &str,
        settings: &SystemSettings,
        update: &SettingsUpdate,
    ) {
        for outlet in self.0.iter() {
            outlet.settings_changed(system_id, settings, update);
        }
    }
}

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
    /// (`user_offline` only) its connection was bound with another userId.
    Rebound,
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
pub struct BackendEvent {
    pub name: EventName,
    json: Box<RawValue>,
}

impl Serialize for BackendEvent {
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

impl BackendEvent {
    fn from_fields(name: EventName, fields: impl Serialize) -> BackendEvent {
        let whole = Whole {
            head: Head::now(name),
            fields,
        };
        // Strings, numbers and a raw value (already checked JSON) always serialize.
        let json = serde_json::value::to_raw_value(&whole).unwrap_or_default();
        BackendEvent { name, json }
    }

    fn new(name: EventName, fields: Value) -> BackendEvent {
        Self::from_fields(name, fields)
    }

    /// An event read back from where it was kept, as it was built when it happened.
    pub fn from_raw(name: EventName, json: Box<RawValue>) -> BackendEvent {
        BackendEvent { name, json }
    }

    /// The event's JSON, as sent.
    pub fn raw(&self) -> &RawValue {
        &self.json
    }

    /// The event's size as queued.
    pub fn bytes(&self) -> usize {
        self.json.get().len()
    }

    pub fn client_online(client_id: &str) -> BackendEvent {
        Self::new(EventName::ClientOnline, json!({ "clientId": client_id }))
    }

    pub fn client_offline(
        client_id: &str,
        user_id: &str,
        groups: &[String],
        offline: Offline,
    ) -> BackendEvent {
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

    pub fn group_joined(client_id: &str, group: &str, user_id: &str, extend: &str) -> BackendEvent {
        Self::new(
            EventName::GroupJoined,
            json!({ "clientId": client_id, "groupName": group, "userId": user_id, "extend": extend }),
        )
    }

    /// `reason`: `unbind`, or `offline` (the client left every group by going away).
    pub fn group_left(client_id: &str, group: &str, user_id: &str, reason: &str) -> BackendEvent {
        Self::new(
            EventName::GroupLeft,
            json!({ "clientId": client_id, "groupName": group, "userId": user_id, "reason": reason }),
        )
    }

    pub fn user_online(user_id: &str, client_id: &str) -> BackendEvent {
        Self::new(
            EventName::UserOnline,
            json!({ "userId": user_id, "clientId": client_id }),
        )
    }

    /// `reason`: that of the user's last connection.
    pub fn user_offline(user_id: &str, reason: OfflineReason) -> BackendEvent {
        Self::new(
            EventName::UserOffline,
            json!({ "userId": user_id, "reason": reason }),
        )
    }

    pub fn group_occupied(group: &str) -> BackendEvent {
        Self::new(EventName::GroupOccupied, json!({ "groupName": group }))
    }

    pub fn group_vacated(group: &str) -> BackendEvent {
        Self::new(EventName::GroupVacated, json!({ "groupName": group }))
    }

    /// `text`: the frame as sent; `data` is its JSON value if it parses, else the string. The
    /// value is kept as the client wrote it, not parsed into a tree.
    pub fn client_message(
        client_id: &str,
        user_id: &str,
        groups: &[String],
        text: &str,
    ) -> BackendEvent {
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
