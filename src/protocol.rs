//! Why this file is long: it is the whole wire contract, the REST bodies, the limits checked on
//! them, the frames pushed to clients and the reply envelopes, kept in one place so that what
//! crosses the network can be read (and changed) side by side with socket.md.
//!
//! Wire types: everything that crosses the network, in one place.
//!
//! REST request bodies are parsed once, at the edge, into these structs; frames pushed to clients
//! are serialized once, here, into [`ByteString`]s that every recipient shares.
//! See `socket.md` for the contract these types implement.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::Limits;
use crate::settings::{
    EventName, MqttSettings, Patch, SettingsUpdate, SystemSettings, WebhookSettings,
};

/// `code` of the frame sent when a client is bound to a group.
pub const CODE_CLIENT_ONLINE: i64 = 1001;
/// `code` of the frame sent when a client leaves a group (unbind, close, disconnect).
pub const CODE_CLIENT_OFFLINE: i64 = 1002;
/// `code` of the frame sent before a WebSocket is refused (bad or missing system, bad token).
pub const CODE_CONNECT_REFUSED: i64 = -1001;

/// Why the server closed or dropped a client: the close code it sends and the `reason` label of
/// `wshub_clients_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// REST `close_client` (1000).
    Rest,
    /// The server is shutting down (1001).
    Shutdown,
    /// Refused at connect: no such system, a bad client token (1008).
    Refused,
    /// It sent a frame over `--max-frame-size` (1009).
    TooBig,
    /// It broke the WebSocket protocol (1002).
    ProtocolError,
    /// It sent a binary frame (1003).
    Binary,
    /// It sent more than `--client-message-rate` (4029).
    TooManyMessages,
    /// Its outbound queue passed `--max-outbound-queue` (4008).
    Slow,
    /// Its system was unregistered (4001).
    SystemRemoved,
    /// It stayed silent past `--client-timeout`: dropped without a close frame.
    Heartbeat,
    /// The same client resumed on another connection (4009).
    ResumedElsewhere,
    /// A resume let past the connection limits failed: a fresh client would be over them
    /// (1013, try again later).
    TryAgain,
}

impl CloseReason {
    /// The close code sent, if any.
    pub fn code(self) -> Option<u16> {
        match self {
            CloseReason::Rest => Some(1000),
            CloseReason::Shutdown => Some(1001),
            CloseReason::Refused => Some(1008),
            CloseReason::TooBig => Some(1009),
            CloseReason::ProtocolError => Some(1002),
            CloseReason::Binary => Some(1003),
            CloseReason::TooManyMessages => Some(4029),
            CloseReason::Slow => Some(4008),
            CloseReason::SystemRemoved => Some(4001),
            CloseReason::Heartbeat => None,
            CloseReason::ResumedElsewhere => Some(4009),
            CloseReason::TryAgain => Some(1013),
        }
    }

    /// The reason a close code stands for (a relayed close); `None` for a code the server does
    /// not send, and for none at all (a drop without a close frame).
    pub fn from_code(code: Option<u16>) -> Option<CloseReason> {
        Some(match code? {
            1000 => CloseReason::Rest,
            1001 => CloseReason::Shutdown,
            1008 => CloseReason::Refused,
            1009 => CloseReason::TooBig,
            1002 => CloseReason::ProtocolError,
            1003 => CloseReason::Binary,
            4029 => CloseReason::TooManyMessages,
            4008 => CloseReason::Slow,
            4001 => CloseReason::SystemRemoved,
            4009 => CloseReason::ResumedElsewhere,
            1013 => CloseReason::TryAgain,
            _ => return None,
        })
    }

    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::Rest => "rest",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Refused => "refused",
            CloseReason::TooBig => "too_big",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::Binary => "binary",
            CloseReason::TooManyMessages => "too_many_messages",
            CloseReason::Slow => "slow",
            CloseReason::SystemRemoved => "system_removed",
            CloseReason::Heartbeat => "heartbeat",
            CloseReason::ResumedElsewhere => "resumed_elsewhere",
            CloseReason::TryAgain => "try_again",
        }
    }
}

/// A fresh unguessable id: a UUIDv4 (122 random bits) as 32 lowercase hex digits.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A resume token: two UUIDv4s (244 random bits) as 64 lowercase hex digits, unrelated to any
/// clientId.
pub fn new_resume_token() -> String {
    format!("{}{}", new_id(), new_id())
}

/// A string field that must be present and non-empty (`systemId`, `clientId`, `groupName`).
///
/// Rejecting the empty string during deserialization makes the error name the field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

impl utoipa::PartialSchema for Name {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // No control character, no whitespace at either end (systemIds are stricter still:
        // printable ASCII, see the SystemId header).
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .pattern(Some(
                r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Name {}

impl TryFrom<String> for Name {
    type Error = &'static str;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            Err("must not be an empty string")
        } else {
            Ok(Name(value))
        }
    }
}

impl Name {
    pub fn into_inner(self) -> String {
        self.0
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request over one of the size limits.
#[derive(Debug, PartialEq, Eq, derive_more::Display)]
pub enum OverLimit {
    /// A field too long, a list too long, a name with characters it may not hold (400).
    #[display("{_0}")]
    Field(String),
    /// `data` too large (413).
    #[display("{_0}")]
    Data(String),
}

/// Size checks that serde cannot express, run once a body has parsed.
pub trait CheckLimits {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit>;
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), OverLimit> {
    if value.len() > max {
        Err(OverLimit::Field(format!(
            "{field}: longer than the limit of {max} bytes"
        )))
    } else {
        Ok(())
    }
}

/// Which characters a name may hold; see socket.md, "Names".
#[derive(Debug, Clone, Copy)]
enum Charset {
    /// `systemId`: printable ASCII (it travels in the `SystemId` header), spaces only inside.
    HeaderSafe,
    /// `groupName`, `userId`, `sendUserId`: any Unicode but control characters, no whitespace
    /// at either end.
    Text,
}

fn check_chars(field: &str, value: &str, charset: Charset) -> Result<(), OverLimit> {
    let trimmed = value.trim() != value;
    let (bad_char, rule): (fn(char) -> bool, &str) = match charset {
        Charset::HeaderSafe => (
            |c| !(' '..='~').contains(&c),
            "printable ASCII (space to '~'), with no space at either end",
        ),
        Charset::Text => (
            char::is_control,
            "free of control characters, with no whitespace at either end",
        ),
    };
    if trimmed || value.chars().any(bad_char) {
        Err(OverLimit::Field(format!("{field}: must be {rule}")))
    } else {
        Ok(())
    }
}

/// Length and characters of a name.
fn check_name(field: &str, value: &str, max: usize, charset: Charset) -> Result<(), OverLimit> {
    check_len(field, value, max)?;
    check_chars(field, value, charset)
}

/// Checks a `systemId` wherever it is chosen (`register`).
pub fn check_system_id(value: &str, limits: &Limits) -> Result<(), OverLimit> {
    check_name(
        "systemId",
        value,
        limits.max_system_id_len,
        Charset::HeaderSafe,
    )
}

/// Checks a `userId` (a bind's, or a client token's claim) or a `sendUserId`.
pub fn check_user_id(field: &str, value: &str, limits: &Limits) -> Result<(), OverLimit> {
    check_name(field, value, limits.max_user_id_len, Charset::Text)
}

fn check_data(data: &RawValue, limits: &Limits) -> Result<(), OverLimit> {
    let max = limits.max_data_size;
    if data.get().len() > max {
        Err(OverLimit::Data(format!(
            "data: larger than the limit of {max} bytes"
        )))
    } else {
        Ok(())
    }
}

/// `register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub system_id: Name,
    #[serde(default)]
    pub webhook: Option<WebhookRequest>,
    #[serde(default)]
    pub mqtt: Option<MqttRequest>,
}

impl RegisterRequest {
    /// The settings of a system registered now with this request.
    pub fn settings(&self) -> SystemSettings {
        let mut settings = SystemSettings::new(crate::settings::now_millis());
        settings.webhook = self.webhook.as_ref().map(WebhookRequest::settings);
        settings.mqtt = self.mqtt.as_ref().map(MqttRequest::settings);
        settings
    }
}

/// `webhook` in `register` and `update_system`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// An absolute http:// or https:// URL.
    #[schema(pattern = r"^https?://[^/?#\s]+")]
    pub url: String,
    /// 16 to 256 characters.
    #[schema(min_length = 16, max_length = 256)]
    pub secret: String,
    /// Absent: every event.
    #[serde(default)]
    pub events: Option<Vec<EventName>>,
}

impl WebhookRequest {
    pub fn settings(&self) -> WebhookSettings {
        WebhookSettings {
            url: self.url.clone(),
            secret: self.secret.clone(),
            events: event_set(self.events.as_deref().unwrap_or(&EventName::ALL)),
        }
    }

    /// The URL's host and port, once it has passed the checks.
    pub fn host_and_port(&self) -> Option<(String, u16)> {
        let uri = self.url.parse::<actix_web::http::Uri>().ok()?;
        let default = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        Some((uri.host()?.to_owned(), uri.port_u16().unwrap_or(default)))
    }

    fn check(&self) -> Result<(), OverLimit> {
        let bad = |msg: &str| Err(OverLimit::Field(format!("webhook.{msg}")));
        match self.url.parse::<actix_web::http::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some_and(|host| !host.is_empty()) => {}
            _ => return bad("url: must be an absolute http:// or https:// URL"),
        }
        let secret_chars = self.secret.chars().count();
        if !(16..=256).contains(&secret_chars) {
            return bad("secret: must be 16 to 256 characters");
        }
        Ok(())
    }
}

/// `mqtt` in `register` and `update_system`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttRequest {
    pub events: Vec<EventName>,
}

impl MqttRequest {
    pub fn settings(&self) -> MqttSettings {
        MqttSettings {
            events: event_set(&self.events),
        }
    }

    /// Events are published under `<prefix><systemId>/events/<name>`: a systemId that is not
    /// one topic level (`/`, the wildcards `+` and `#`, a leading `$`, a NUL) would publish
    /// into another system's topics, or nowhere.
    pub fn check_system_id(&self, system_id: &str) -> Result<(), OverLimit> {
        let not_a_level = system_id.contains(['/', '+', '#', '\0']) || system_id.starts_with('$');
        if not_a_level && !self.events.is_empty() {
            return Err(OverLimit::Field(format!(
                "mqtt.events: systemId '{system_id}' cannot be an MQTT topic level ('/', '+', \
                 '#', a leading '$'): its events cannot be published"
            )));
        }
        Ok(())
    }
}

/// Sorted, without repeats.
fn event_set(events: &[EventName]) -> Vec<EventName> {
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    events
}

/// Tells an absent key (`None`) from `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// `update_system`: an absent key keeps that setting, `null` removes it, an object replaces it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateSystemRequest {
    #[serde(default, deserialize_with = "present")]
    pub webhook: Option<Option<WebhookRequest>>,
    #[serde(default, deserialize_with = "present")]
    pub mqtt: Option<Option<MqttRequest>>,
}

impl UpdateSystemRequest {
    pub fn update(&self) -> SettingsUpdate {
        fn patch<R, T>(field: &Option<Option<R>>, settings: impl Fn(&R) -> T) -> Patch<T> {
            match field {
                None => Patch::Keep,
                Some(None) => Patch::Remove,
                Some(Some(request)) => Patch::Set(settings(request)),
            }
        }
        SettingsUpdate {
            webhook: patch(&self.webhook, WebhookRequest::settings),
            mqtt: patch(&self.mqtt, MqttRequest::settings),
        }
    }
}

/// `data` is kept as raw JSON so that it reaches clients as the very value that was posted; an
/// absent `data` is `""`. (`#[serde(flatten)]` cannot carry a `RawValue`, hence the macro below
/// that gives each send method the message fields.)
fn empty_data() -> Box<RawValue> {
    RawValue::from_string("\"\"".to_owned()).unwrap_or_else(|_| unreachable!("\"\" is valid JSON"))
}

macro_rules! send_request {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fdoc])* pub $field: $ty,)*
            #[serde(default)]
            pub send_user_id: String,
            #[serde(default)]
            pub code: i64,
            #[serde(default)]
            pub msg: String,
            /// Any JSON value; delivered to clients as posted.
            #[serde(default = "empty_data")]
            #[schema(value_type = serde_json::Value)]
            pub data: Box<RawValue>,
        }

        impl $name {
            /// Splits off the message, so the target can be matched separately.
            pub fn message(&self) -> MessageRef<'_> {
                MessageRef {
                    send_user_id: &self.send_user_id,
                    code: self.code,
                    msg: &self.msg,
                    data: &self.data,
                }
            }
        }
    };
}

send_request!(
    /// `send_to_client`.
    SendToClientRequest { client_id: Name }
);
send_request!(
    /// `send_to_clients`.
    SendToClientsRequest {
        /// At most --max-client-ids (1000).
        #[schema(min_items = 1, max_items = 1000)]
        client_ids: Vec<Name>
    }
);
send_request!(
    /// `send_to_group`.
    SendToGroupRequest { group_name: Name }
);
send_request!(
    /// `send_to_system`.
    SendToSystemRequest {}
);

/// `bind_to_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindToGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub extend: String,
}

/// `unbind_from_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnbindFromGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
}

/// `get_online_list`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupRequest {
    pub group_name: Name,
}

/// `close_client`, `get_client_info`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientRequest {
    pub client_id: Name,
}

/// `get_all_groups` takes an empty object; unknown fields are ignored everywhere.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmptyRequest {}

/// The message fields of a push, borrowed from whichever request carried them.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub send_user_id: &'a str,
    pub code: i64,
    pub msg: &'a str,
    pub data: &'a RawValue,
}

/// A frame pushed to clients: `{"messageId","sendUserId","code","msg","data"}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PushFrame<'a> {
    message_id: &'a str,
    send_user_id: &'a str,
    code: i64,
    msg: &'a str,
    data: &'a RawValue,
}

/// The messageId of a frame made by [`push_frame`]: it is always the first field, so it is read
/// without parsing the frame. `None` for other frames (the welcome).
pub fn message_id_of(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix(r#"{"messageId":""#)?;
    // Ids are made by the server (hex, or a node prefix and hex): never an escaped quote.
    rest.split_once('"').map(|(id, _)| id)
}

/// Serializes a push once (as [`push_frame`]), refusing a frame larger than `max_push_size`
/// (`--max-push-size`), which is what keeps every frame within what a client's outbound queue
/// accepts.
pub fn encode_push(
    message_id: &str,
    message: MessageRef<'_>,
    max_push_size: usize,
) -> Result<ByteString, OverLimit> {
    let frame = push_frame(message_id, message);
    if frame.len() > max_push_size {
        return Err(OverLimit::Data(format!(
            "the message encodes to a frame of {} bytes, over the limit of {max_push_size} \
             bytes (--max-push-size); shorten msg or data",
            frame.len()
        )));
    }
    Ok(frame)
}

/// Serializes a push once; the result is shared by every recipient.
pub fn push_frame(message_id: &str, message: MessageRef<'_>) -> ByteString {
    let frame = PushFrame {
        message_id,
        send_user_id: message.send_user_id,
        code: message.code,
        msg: message.msg,
        data: message.data,
    };
    to_frame(&frame)
}

/// The `data` of a 1001/1002 notice, carried as a JSON *string* (frontends `JSON.parse` it).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresenceData<'a> {
    client_id: &'a str,
    user_id: &'a str,
    extend: &'a str,
}

/// A 1001 ("client online") or 1002 ("client offline") notice about one client.
pub fn presence_frame(online: bool, client_id: &str, user_id: &str, extend: &str) -> ByteString {
    let inner = PresenceData {
        client_id,
        user_id,
        extend,
    };
    let data_string = serde_json::to_string(&inner).unwrap_or_default();
    let data = serde_json::value::to_raw_value(&data_string).unwrap_or_else(|_| empty_data());
    let (code, msg) = if online {
        (CODE_CLIENT_ONLINE, "client online")
    } else {
        (CODE_CLIENT_OFFLINE, "client offline")
    };
    push_frame(
        &new_id(),
        MessageRef {
            send_user_id: user_id,
            code,
            msg,
            data: &data,
        },
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Welcome<'a> {
    client_id: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    recovery: Option<&'a RecoveryWelcome>,
}

/// What a welcome tells a client that asked for recovery.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryWelcome {
    /// Single use: presented with `resume=` after a lost connection.
    pub resume_token: String,
    pub recovered: bool,
    /// Frames replayed after the welcome (a successful resume only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<usize>,
    /// Why a resume was not honoured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ResumeRefusal>,
}

/// Why a resume could not be honoured: the welcome's `reason`, and the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeRefusal {
    /// Unknown, already used, or of another system.
    InvalidToken,
    /// The window ended before the resume.
    Expired,
    /// `last` names a frame the server no longer holds (or never sent).
    LastNotHeld,
    /// The frames kept for it passed `--recovery-buffer`.
    BoundPassed,
    /// The node that held it is gone (cluster mode).
    NodeLost,
}

impl ResumeRefusal {
    pub fn label(self) -> &'static str {
        match self {
            ResumeRefusal::InvalidToken => "invalid_token",
            ResumeRefusal::Expired => "expired",
            ResumeRefusal::LastNotHeld => "last_not_held",
            ResumeRefusal::BoundPassed => "bound_passed",
            ResumeRefusal::NodeLost => "node_lost",
        }
    }
}

/// The first frame a client gets: `{"code":0,"msg":"success","data":{"clientId":..}}`, with
/// `resumeToken`, `recovered` (and `missed` or `reason`) for a client that asked for recovery.
pub fn welcome_frame(client_id: &str, recovery: Option<&RecoveryWelcome>) -> ByteString {
    to_frame(&Envelope::success(Welcome {
        client_id,
        recovery,
    }))
}

/// The frame sent before a refused connection is closed: `{"code":-1001,"msg":..,"data":[]}`.
pub fn refusal_frame(reason: &str) -> ByteString {
    to_frame(&Envelope {
        code: CODE_CONNECT_REFUSED,
        msg: reason,
        data: EmptyList,
    })
}

fn to_frame<T: Serialize>(value: &T) -> ByteString {
    // Serializing these structs cannot fail: every field is a string, an integer or valid JSON.
    ByteString::from(serde_json::to_string(value).unwrap_or_default())
}

/// The REST reply (and welcome frame) envelope: `{"code","msg","data"}`.
#[derive(Debug, Serialize)]
pub struct Envelope<M, T> {
    pub code: i64,
    pub msg: M,
    pub data: T,
}

impl<T> Envelope<&'static str, T> {
    pub fn success(data: T) -> Self {
        Envelope {
            code: 0,
            msg: "success",
            data,
        }
    }
}

/// Serializes as `[]`: the `data` of replies that carry nothing (the Go servers' shape).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyList;

impl utoipa::PartialSchema for EmptyList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ArrayBuilder::new()
            .items(utoipa::openapi::schema::Object::new())
            .max_items(Some(0))
            .into()
    }
}

impl utoipa::ToSchema for EmptyList {}

impl Serialize for EmptyList {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        serializer.serialize_seq(Some(0))?.end()
    }
}

/// `data` of `send_to_client`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageIdReply {
    pub message_id: String,
}

/// `data` of `send_to_clients`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendToClientsReply {
    pub message_id: String,
    pub missing: Vec<String>,
}

/// `data` of `send_to_group` and `send_to_system`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountReply {
    pub message_id: String,
    pub count: usize,
}

/// One member in `get_online_list`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineClient {
    pub client_id: String,
    pub user_id: String,
    pub extend: String,
}

/// `data` of `get_online_list`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OnlineList {
    pub count: usize,
    pub list: Vec<String>,
    pub clients: Vec<OnlineClient>,
}

/// `data` of `get_system`: the settings, less the webhook's secret.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemInfo {
    pub system_id: String,
    pub registered_at: u64,
    /// Connected clients (in cluster mode, on every node).
    pub clients: usize,
    pub webhook: Option<WebhookInfo>,
    pub mqtt: Option<MqttSettings>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookInfo {
    pub url: String,
    pub events: Vec<EventName>,
}

impl SystemInfo {
    pub fn new(system_id: String, settings: &SystemSettings, clients: usize) -> SystemInfo {
        SystemInfo {
            system_id,
            registered_at: settings.registered_at,
            clients,
            webhook: settings.webhook.as_ref().map(|webhook| WebhookInfo {
                url: redact_credentials(&webhook.url),
                events: webhook.events.clone(),
            }),
            mqtt: settings.mqtt.clone(),
        }
    }
}

/// `url` with any `user:password@` replaced by `***@`: shown, a webhook URL must not give away
/// the credentials the backend put in it.
pub fn redact_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// `data` of `check_token`: the system the token is scoped to, `null` for every system.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub system_id: Option<String>,
}

/// `data` of `get_client_info`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ClientInfo {
    #[serde(rename_all = "camelCase")]
    Online {
        online: bool,
        client_id: String,
        user_id: String,
        extend: String,
        groups: Vec<String>,
        /// Unix time in milliseconds.
        connected_at: u64,
        /// False while a recovery client is away (its connection lost, its window open).
        connected: bool,
    },
    #[serde(rename_all = "camelCase")]
    Offline { online: bool, client_id: String },
}

/// Checks a push's own fields (`sendUserId`, `data`) wherever the push comes from.
pub fn check_message(message: MessageRef<'_>, limits: &Limits) -> Result<(), OverLimit> {
    check_user_id("sendUserId", message.send_user_id, limits)?;
    check_data(message.data, limits)
}

fn check_group(group_name: &Name, limits: &Limits) -> Result<(), OverLimit> {
    check_name(
        "groupName",
        group_name.as_str(),
        limits.max_group_name_len,
        Charset::Text,
    )
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

impl CheckLimits for UpdateSystemRequest {
    fn check_limits(&self, _: &Limits) -> Result<(), OverLimit> {
        if self.webhook.is_none() && self.mqtt.is_none() {
            return Err(OverLimit::Field(
                "name webhook or mqtt (or both): an update with neither changes nothing".into(),
            ));
        }
        match &self.webhook {
            Some(Some(webhook)) => webhook.check(),
            _ => Ok(()),
        }
    }
}

impl CheckLimits for SendToClientRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_message(self.message(), limits)
    }
}

impl CheckLimits for SendToClientsRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        if self.client_ids.is_empty() {
            return Err(OverLimit::Field("clientIds: must not be empty".into()));
        }
        let max = limits.max_client_ids;
        if self.client_ids.len() > max {
            return Err(OverLimit::Field(format!(
                "clientIds: more than the limit of {max} ids"
            )));
        }
        check_message(self.message(), limits)
    }
}

impl CheckLimits for SendToGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)?;
        check_message(self.message(), limits)
    }
}

impl CheckLimits for SendToSystemRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_message(self.message(), limits)
    }
}

impl CheckLimits for BindToGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)?;
        check_user_id("userId", &self.user_id, limits)?;
        check_len("extend", &self.extend, limits.max_extend_len)
    }
}

impl CheckLimits for UnbindFromGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)
    }
}

impl CheckLimits for GroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)
    }
}

/// clientIds are made by the server; an over-long one simply is not connected (404).
impl CheckLimits for ClientRequest {
    fn check_limits(&self, _: &Limits) -> Result<(), OverLimit> {
        Ok(())
    }
}

impl CheckLimits for EmptyRequest {
    fn check_limits(&self, _: &Limits) -> Result<(), OverLimit> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_id_is_read_off_a_push_without_parsing_it() {
        let data = serde_json::value::to_raw_value(&serde_json::json!({"a": "\"x\""})).unwrap();
        let message = MessageRef {
            send_user_id: "u\"1",
            code: 7,
            msg: "m",
            data: &data,
        };
        let frame = push_frame("node1-abc", message);
        assert_eq!(message_id_of(&frame), Some("node1-abc"));
        assert_eq!(message_id_of(&welcome_frame("c", None)), None);
    }

    #[test]
    fn a_recovery_welcome_adds_its_fields_to_the_plain_one() {
        assert_eq!(
            welcome_frame("c", None),
            r#"{"code":0,"msg":"success","data":{"clientId":"c"}}"#
        );
        let recovery = RecoveryWelcome {
            resume_token: "t".into(),
            recovered: false,
            missed: None,
            reason: Some(ResumeRefusal::LastNotHeld),
        };
        assert_eq!(
            welcome_frame("c", Some(&recovery)),
            r#"{"code":0,"msg":"success","data":{"clientId":"c","resumeToken":"t","recovered":false,"reason":"last_not_held"}}"#
        );
    }

    #[test]
    fn names_with_control_characters_or_outer_spaces_are_refused() {
        let limits = Limits::default();
        for bad in ["", " s", "s ", "a\nb", "a\u{7}b", "é"] {
            let checked = check_system_id(bad, &limits);
            assert!(
                bad.is_empty() || checked.is_err(),
                "{bad:?} accepted as systemId"
            );
        }
        assert!(check_system_id("my system-1_x.y", &limits).is_ok());
        for bad in [" ann", "ann\t", "a\u{0}b", "a\u{85}b"] {
            assert!(
                check_user_id("userId", bad, &limits).is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(check_user_id("userId", "", &limits).is_ok());
        assert!(check_user_id("userId", "Zoë 🚀 ann", &limits).is_ok());
    }
}
