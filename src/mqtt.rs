//! The MQTT bridge (`--mqtt-url`): devices publish and browsers see it, browsers speak and devices
//! hear it.
//!
//! - **Down:** a publish to `<prefix><systemId>/group/<groupName>`, `.../client/<clientId>`,
//!   `.../user/<userId>` or `.../system` is run as the matching `send_to_*` method, with its checks, as a REST call is. The bridge subscribes through an MQTT 5 shared subscription, so in a
//!   cluster each publish enters once, on one node, and reaches members on every node.
//! - **Up:** the events a system's `mqtt` settings ask for are published to
//!   `<prefix><systemId>/events/<name>` at QoS 1, as the JSON object a webhook batch carries,
//!   by the node that decided them (as for webhooks). They go through the webhook outbox
//!   ([`crate::webhooks::MqttEvents`]) and leave it once the broker acknowledged them
//!   (`acks.rs`), so they survive restarts and node deaths as webhook events do.
//!
//! Broker down: events wait in the outbox's bounded queue, then the oldest are dropped and
//! counted; the event loop reconnects with backoff and subscribes again. Nothing else waits for
//! the broker.

mod acks;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use serde_json::value::RawValue;

use crate::actors::wakeups;
pub use crate::config::MqttConfig;
use crate::config::OverloadGate;
use crate::metrics::Metrics;
use crate::ops::send_to_client::SendToClientRequest;
use crate::ops::send_to_group::SendToGroupRequest;
use crate::ops::send_to_system::SendToSystemRequest;
use crate::ops::send_to_user::SendToUserRequest;
use crate::ops::{self, Node, SystemCaller};
use crate::protocol::{self as p, Name};

/// Publishes that may wait for the broker before new ones are dropped.
const QUEUE: usize = 10_000;
/// Bytes of received publishes that may wait to be pushed before new ones are dropped.
const INBOX_BYTES: usize = 32 * 1024 * 1024;
/// What an MQTT publish carries besides its payload, at most, for the packets the bridge
/// takes: a topic of a system, a group and the prefix, and a few properties.
const PUBLISH_OVERHEAD: usize = 4 * 1024;
/// The largest packet MQTT can carry (its remaining-length field).
const MQTT_MAX_PACKET: usize = 268_435_455;

/// The largest packet the bridge takes from the broker (and says so in its CONNECT): twice the
/// push limit, so that a publish a little over it arrives and is refused, counted, rather than
/// dropping the connection; a larger one the broker does not send (MQTT 5 drops it there).
pub fn max_incoming_packet(max_push_size: usize) -> u32 {
    let size = max_push_size
        .saturating_mul(2)
        .saturating_add(PUBLISH_OVERHEAD)
        .min(MQTT_MAX_PACKET);
    u32::try_from(size).unwrap_or(u32::MAX)
}

/// What the bridge subscribes to: the four kinds of down topic, not its own events.
fn down_filters(prefix: &str) -> [String; 4] {
    ["+/group/+", "+/client/+", "+/user/+", "+/system"]
        .map(|rest| format!("$share/{SHARE_GROUP}/{prefix}{rest}"))
}
/// The shared-subscription group: every wshub node of a cluster is in it.
const SHARE_GROUP: &str = "wshub";
/// Seconds the broker keeps a named bridge's session (and what it has not acknowledged).
const SESSION_EXPIRY: u32 = 3600;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// At most one log line per kind of refusal in this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The broker's address and credentials, from `mqtt://[user:pass@]host:port`.
fn options(
    config: &MqttConfig,
    client_id: &str,
    max_push_size: usize,
) -> Result<MqttOptions, String> {
    let rest = config
        .url
        .strip_prefix("mqtt://")
        .ok_or_else(|| format!("--mqtt-url {}: must start with mqtt://", config.url))?;
    let (credentials, address) = match rest.rsplit_once('@') {
        Some((credentials, address)) => (Some(credentials), address),
        None => (None, rest),
    };
    let address = address.trim_end_matches('/');
    let (host, port) = match address.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("--mqtt-url {}: bad port", config.url))?,
        ),
        None => (address, 1883),
    };
    if host.is_empty() {
        return Err(format!("--mqtt-url {}: no host", config.url));
    }
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(15));
    // A publish is acknowledged once its push was accepted (or refused for good), not on receipt.
    options.set_manual_acks(true);
    if config.client_id.is_some() {
        options.set_clean_start(false);
        options.set_session_expiry_interval(Some(SESSION_EXPIRY));
    }
    options.set_max_packet_size(Some(max_incoming_packet(max_push_size)));
    if let Some(credentials) = credentials {
        let (user, pass) = credentials.split_once(':').unwrap_or((credentials, ""));
        options.set_credentials(user, pass);
    }
    Ok(options)
}

/// The bridge: its client (cheap to clone) and, until it is started, its event loop.
pub struct MqttBridge {
    client: AsyncClient,
    prefix: String,
    connected: AtomicBool,
    metrics: Arc<Metrics>,
    /// When a push waits for delivery, as a REST send does.
    overload: OverloadGate,
    event_loop: Mutex<Option<EventLoop>>,
    /// Event publishes waiting for their packet id, then for their PUBACK (`acks.rs`).
    acks: Mutex<Acks>,
    /// Held while a batch of events is handed to the client, so `acks` sees the client's order.
    publishing: tokio::sync::Mutex<()>,
}

/// The waiters of event publishes: in the order they were handed to the client until the event
/// loop sends them, then by packet id until their PUBACK. True: acknowledged.
#[derive(Default)]
struct Acks {
    unsent: std::collections::VecDeque<tokio::sync::oneshot::Sender<bool>>,
    in_flight: std::collections::HashMap<u16, tokio::sync::oneshot::Sender<bool>>,
}

impl std::fmt::Debug for MqttBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBridge")
            .field("prefix", &self.prefix)
            .field("connected", &self.connected.load(Ordering::Relaxed))
            .finish()
    }
}

impl MqttBridge {
    /// Makes the bridge; nothing touches the network until [`start`](Self::start).
    pub fn new(
        config: &MqttConfig,
        metrics: Arc<Metrics>,
        overload: OverloadGate,
        max_push_size: usize,
    ) -> Result<Arc<MqttBridge>, String> {
        let client_id = config
            .client_id
            .clone()
            .unwrap_or_else(|| format!("wshub-{}", &p::new_id()[..12]));
        let options = options(config, &client_id, max_push_size)?;
        let (client, event_loop) = AsyncClient::new(options, QUEUE);
        Ok(Arc::new(MqttBridge {
            client,
            prefix: config.prefix.clone(),
            connected: AtomicBool::new(false),
            metrics,
            overload,
            event_loop: Mutex::new(Some(event_loop)),
            acks: Mutex::default(),
            publishing: tokio::sync::Mutex::new(()),
        }))
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl MqttBridge {
    /// Runs the event loop (connect, subscribe, reconnect) and runs each publish as the
    /// matching `send_to_*` method, in order, on the current actix arbiter. Call once.
    pub fn start(self: &Arc<Self>, node: Arc<Node>) {
        let Some(mut event_loop) = self.event_loop.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let (inbox, mut received) = tokio::sync::mpsc::channel::<(String, Publish)>(QUEUE);
        // Bytes of payloads in the inbox.
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
        let max_push_size = node.limits.max_push_size;
        let bridge = self.clone();
        actix_web::rt::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_millis(100);
                        log::info!("MQTT bridge connected");
                        bridge.connected.store(true, Ordering::Relaxed);
                        bridge.metrics.mqtt_connected.set(1);
                        let filters = down_filters(&bridge.prefix);
                        let client = bridge.client.clone();
                        // Events queued while the broker was away fill the client's channel; the
                        // subscription waits for room behind them instead of being refused.
                        actix_web::rt::spawn(async move {
                            for filter in filters {
                                if let Err(err) = client.subscribe(filter, QoS::AtLeastOnce).await {
                                    log::error!("MQTT bridge cannot subscribe: {err}");
                                }
                            }
                        });
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                        let size = publish.payload.len();
                        // Past the push limit it could never be pushed: refused here, before it
                        // waits anywhere; and the inbox is bounded in bytes as well as count.
                        let refused = size > max_push_size
                            || queued.load(Ordering::Acquire) + size > INBOX_BYTES;
                        if refused || inbox.try_send((topic, publish.clone())).is_err() {
                            bridge.metrics.mqtt_dropped.with_label_values(&["in"]).inc();
                            // Refused for good: the broker need not send it again.
                            let _ = bridge.client.try_ack(&publish);
                        } else {
                            queued.fetch_add(size, Ordering::AcqRel);
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => bridge.publish_sent(pkid),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => bridge.publish_acknowledged(&ack),
                    Ok(_) => {}
                    Err(err) => {
                        if bridge.connected.swap(false, Ordering::Relaxed) {
                            log::warn!("MQTT bridge lost the broker: {err}; reconnecting");
                        }
                        bridge.metrics.mqtt_connected.set(0);
                        actix_web::rt::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        });
        let bridge = self.clone();
        actix_web::rt::spawn(async move {
            let mut last_log = None::<Instant>;
            while let Some((topic, publish)) = received.recv().await {
                taken.fetch_sub(publish.payload.len(), Ordering::AcqRel);
                let result = bridge.push(&node, &topic, &publish.payload).await;
                // Only now (QoS 1): a node stopping before this gets it again (--mqtt-client-id).
                let _ = bridge.client.ack(&publish).await;
                match result {
                    Ok(()) => bridge
                        .metrics
                        .mqtt_messages
                        .with_label_values(&["in"])
                        .inc(),
                    Err(reason) => {
                        bridge.metrics.mqtt_dropped.with_label_values(&["in"]).inc();
                        if last_log.is_none_or(|at| at.elapsed() > LOG_EVERY) {
                            log::warn!("MQTT publish on '{topic}' dropped: {reason} (logged once per 10 s)");
                            last_log = Some(Instant::now());
                        }
                    }
                }
            }
        });
    }

    /// Pushes one MQTT publish as the matching `send_to_*` method, with its checks.
    async fn push(&self, node: &Node, topic: &str, payload: &[u8]) -> Result<(), String> {
        let target = parse_topic(&self.prefix, topic).ok_or("not a wshub topic")?;
        let text = std::str::from_utf8(payload).map_err(|_| "binary payload")?;
        let Message {
            send_user_id,
            code,
            msg,
            data,
        } = Message::parse(text)?;
        // Like a REST send: wait while delivery is behind (the broker holds what comes meanwhile).
        wakeups::wait_for_delivery(self.overload, &self.metrics)
            .await
            .map_err(|wakeups::Overloaded| "the server is overloaded")?;
        let name = |value: String| Name::try_from(value).map_err(str::to_owned);
        let caller = |system_id| SystemCaller { system_id };
        let result = match target {
            Target::Group(system_id, group) => {
                let request = SendToGroupRequest {
                    group_name: name(group)?,
                    send_user_id,
                    code,
                    msg,
                    data,
                };
                ops::run(node, caller(system_id), request).await.map(drop)
            }
            Target::Client(system_id, client) => {
                let request = SendToClientRequest {
                    client_id: name(client)?,
                    send_user_id,
                    code,
                    msg,
                    data,
                };
                ops::run(node, caller(system_id), request).await.map(drop)
            }
            Target::User(system_id, user) => {
                let request = SendToUserRequest {
                    user_id: name(user)?,
                    send_user_id,
                    code,
                    msg,
                    data,
                };
                ops::run(node, caller(system_id), request).await.map(drop)
            }
            Target::System(system_id) => {
                let request = SendToSystemRequest {
                    send_user_id,
                    code,
                    msg,
                    data,
                };
                ops::run(node, caller(system_id), request).await.map(drop)
            }
        };
        result.map_err(|err| err.to_string())
    }
}

/// Where a down publish goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Group(String, String),
    Client(String, String),
    User(String, String),
    System(String),
}

fn parse_topic(prefix: &str, topic: &str) -> Option<Target> {
    let rest = topic.strip_prefix(prefix)?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [system, "group", group] if !system.is_empty() && !group.is_empty() => {
            Some(Target::Group((*system).into(), (*group).into()))
        }
        [system, "client", client] if !system.is_empty() && !client.is_empty() => {
            Some(Target::Client((*system).into(), (*client).into()))
        }
        [system, "user", user] if !system.is_empty() && !user.is_empty() => {
            Some(Target::User((*system).into(), (*user).into()))
        }
        [system, "system"] if !system.is_empty() => Some(Target::System((*system).into())),
        _ => None,
    }
}

/// A down payload's message fields.
struct Message {
    send_user_id: String,
    code: i64,
    msg: String,
    data: Box<RawValue>,
}

impl Message {
    /// A JSON object with any of `code`, `msg`, `data`, `sendUserId` supplies those fields; any
    /// other JSON is `data`; anything else is `data` as a string.
    fn parse(text: &str) -> Result<Message, String> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(default)]
            send_user_id: Option<String>,
            #[serde(default)]
            code: Option<i64>,
            #[serde(default)]
            msg: Option<String>,
            #[serde(default)]
            data: Option<Box<RawValue>>,
        }
        let as_data = |raw: Box<RawValue>| Message {
            send_user_id: String::new(),
            code: 0,
            msg: String::new(),
            data: raw,
        };
        let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text) else {
            let string = serde_json::value::to_raw_value(text).map_err(|e| e.to_string())?;
            return Ok(as_data(string));
        };
        if raw.get().trim_start().starts_with('{') {
            if let Ok(fields) = serde_json::from_str::<Fields>(raw.get()) {
                let any = fields.send_user_id.is_some()
                    || fields.code.is_some()
                    || fields.msg.is_some()
                    || fields.data.is_some();
                if any {
                    let empty = serde_json::value::to_raw_value("").map_err(|e| e.to_string())?;
                    return Ok(Message {
                        send_user_id: fields.send_user_id.unwrap_or_default(),
                        code: fields.code.unwrap_or_default(),
                        msg: fields.msg.unwrap_or_default(),
                        data: fields.data.unwrap_or(empty),
                    });
                }
            }
        }
        Ok(as_data(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_a_group_a_client_a_user_or_the_system() {
        let parse = |t| parse_topic("wshub/", t);
        assert_eq!(
            parse("wshub/s/group/room"),
            Some(Target::Group("s".into(), "room".into()))
        );
        assert_eq!(
            parse("wshub/s/client/abc"),
            Some(Target::Client("s".into(), "abc".into()))
        );
        assert_eq!(
            parse("wshub/s/user/u-42"),
            Some(Target::User("s".into(), "u-42".into()))
        );
        assert_eq!(parse("wshub/s/system"), Some(Target::System("s".into())));
        for bad in [
            "wshub/s",
            "wshub/s/group",
            "wshub/s/user",
            "wshub//system",
            "other/s/system",
            "wshub/s/events/x",
            "wshub/s/group/a/b",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_are_fields_a_json_value_or_text() {
        let m =
            Message::parse(r#"{"code":7,"msg":"m","data":{"t":1},"sendUserId":"dev"}"#).unwrap();
        assert_eq!(
            (
                m.code,
                m.msg.as_str(),
                m.data.get(),
                m.send_user_id.as_str()
            ),
            (7, "m", r#"{"t":1}"#, "dev")
        );
        let m = Message::parse(r#"{"temp":21.5}"#).unwrap();
        assert_eq!((m.code, m.data.get()), (0, r#"{"temp":21.5}"#));
        let m = Message::parse("42").unwrap();
        assert_eq!(m.data.get(), "42");
        let m = Message::parse("door open").unwrap();
        assert_eq!(m.data.get(), r#""door open""#);
    }

    #[test]
    fn the_url_gives_host_port_and_credentials() {
        let config = |url: &str| MqttConfig {
            url: url.into(),
            prefix: "wshub/".into(),
            client_id: None,
        };
        let options = |config: &MqttConfig, id| options(config, id, 256 * 1024);
        let o = options(&config("mqtt://user:pw@broker.test:1884"), "id").unwrap();
        assert_eq!(o.broker_address(), ("broker.test".to_owned(), 1884));
        assert_eq!(o.max_packet_size(), Some(516 * 1024));
        assert!(options(&config("http://x"), "id").is_err());
        assert!(options(&config("mqtt://:1883"), "id").is_err());
        assert_eq!(
            options(&config("mqtt://b"), "id")
                .unwrap()
                .broker_address()
                .1,
            1883
        );
    }
}
