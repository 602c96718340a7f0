//! What REST bodies and replies share: names and the limits checked on them, the webhook and
//! MQTT settings of `register` and `update_system`, the message fields of every send, and the
//! replies the registry and the backplane produce. Each method's own request and reply are in its
//! file under [`crate::ops`].

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use bytestring::ByteString;

use super::frames::{push_frame, MessageRef};
use crate::config::Limits;
use crate::settings::{EventName, MqttSettings, PresenceMode, SystemSettings, WebhookSettings};

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

pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), OverLimit> {
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

/// Checks the characters of a clientId a caller names among others (`send_to_clients`): no
/// clientId the server makes has a control character or outer whitespace, so such an id is a
/// malformed request (as the OpenAPI schema says), not a client that is merely not connected.
pub fn check_client_id(field: &str, value: &str) -> Result<(), OverLimit> {
    check_chars(field, value, Charset::Text)
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

    pub fn check(&self) -> Result<(), OverLimit> {
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
pub fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// A send method's request: its target fields, then the message fields every send takes.
/// `data` is kept as raw JSON so that it reaches clients as the very value that was posted; an
/// absent `data` is `""`. (`#[serde(flatten)]` cannot carry a `RawValue`, hence a macro.)
macro_rules! send_request {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
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
            #[serde(default = "crate::protocol::frames::empty_data")]
            #[schema(value_type = serde_json::Value)]
            pub data: Box<serde_json::value::RawValue>,
        }

        impl $name {
            /// Splits off the message, so the target can be matched separately.
            pub fn message(&self) -> $crate::protocol::frames::MessageRef<'_> {
                $crate::protocol::frames::MessageRef {
                    send_user_id: &self.send_user_id,
                    code: self.code,
                    msg: &self.msg,
                    data: &self.data,
                }
            }
        }
    };
}

pub(crate) use send_request;

/// A request with nothing to check against the limits.
macro_rules! no_limits {
    ($name:ident) => {
        impl $crate::protocol::rest::CheckLimits for $name {
            fn check_limits(
                &self,
                _: &$crate::config::Limits,
            ) -> Result<(), $crate::protocol::rest::OverLimit> {
                Ok(())
            }
        }
    };
}

pub(crate) use no_limits;

/// A method's request with no field: an empty object, or no body at all. Unknown fields are
/// ignored, as everywhere.
macro_rules! empty_request {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        pub struct $name {}

        $crate::protocol::rest::no_limits!($name);
    };
}

pub(crate) use empty_request;

/// A method's request that names one client. clientIds are made by the server: an over-long one
/// simply is not connected (404), so there is no limit to check.
macro_rules! client_request {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub client_id: $crate::protocol::rest::Name,
        }

        $crate::protocol::rest::no_limits!($name);
    };
}

pub(crate) use client_request;

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

/// `data` of `get_all_groups`: groupName → the clientIds of its members.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct AllGroups(pub std::collections::BTreeMap<String, Vec<String>>);

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
    pub presence: PresenceMode,
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
            presence: settings.presence,
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
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Checks a push's own fields (`sendUserId`, `data`) wherever the push comes from.
pub fn check_message(message: MessageRef<'_>, limits: &Limits) -> Result<(), OverLimit> {
    check_user_id("sendUserId", message.send_user_id, limits)?;
    check_data(message.data, limits)
}

pub fn check_group(group_name: &Name, limits: &Limits) -> Result<(), OverLimit> {
    check_name(
        "groupName",
        group_name.as_str(),
        limits.max_group_name_len,
        Charset::Text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
