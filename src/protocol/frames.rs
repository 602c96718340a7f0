//! The frames pushed to clients, and what they carry: pushes (serialized once, shared by every
//! recipient), presence notices, the welcome and the refusal, close codes and reasons, ids, and
//! the `{code, msg, data}` envelope that REST replies share with the welcome.

use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

/// `data` is kept as raw JSON so that it reaches clients as the very value that was posted; an
/// absent `data` is `""`. (`#[serde(flatten)]` cannot carry a `RawValue`, hence the macro below
/// that gives each send method the message fields.)
pub fn empty_data() -> Box<RawValue> {
    RawValue::from_string("\"\"".to_owned()).unwrap_or_else(|_| unreachable!("\"\" is valid JSON"))
}

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
}
