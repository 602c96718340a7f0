//! Errors at the REST boundary, each rendered as the JSON envelope with its HTTP status.

use std::fmt;

use actix_http::ws::HandshakeError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::actors::messages::RegistryError;
use crate::protocol::{EmptyList, Envelope, OverLimit};

/// Everything a REST call can fail with. The message is what the caller reads in `msg`.
/// Serializable, so that a node answers another with the error itself.
#[derive(Debug, derive_more::Display, serde::Serialize, serde::Deserialize)]
pub enum ApiError {
    /// 400: malformed JSON, a missing, mistyped or empty field, a missing header.
    #[display("{_0}")]
    BadRequest(String),
    /// 401: missing, malformed, expired or wrongly signed token.
    #[display("{_0}")]
    Unauthorized(String),
    /// 403: token scoped to another system, or system not registered.
    #[display("{_0}")]
    Forbidden(String),
    /// 404: the client is not connected in this system, or no such API method.
    #[display("{_0}")]
    NotFound(String),
    /// 405: anything but POST on an API method.
    #[display("method not allowed: API methods take POST")]
    MethodNotAllowed,
    /// 409: `register` of a system that exists.
    #[display("{_0}")]
    Conflict(String),
    /// 413: body over the configured limit.
    #[display("{_0}")]
    PayloadTooLarge(String),
    /// 503: an actor's mailbox is closed (shutting down) or the server is overloaded.
    #[display("{_0}")]
    Unavailable(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed => {
                response.insert_header((header::ALLOW, "POST"));
            }
            _ => {}
        }
        response.json(Envelope {
            code: -1,
            msg: self.to_string(),
            data: EmptyList,
        })
    }
}

impl From<RegistryError> for ApiError {
    fn from(err: RegistryError) -> Self {
        match err {
            RegistryError::UnknownSystem(_) => ApiError::Forbidden(err.to_string()),
            RegistryError::SystemExists(_) | RegistryError::UserFixed { .. } => {
                ApiError::Conflict(err.to_string())
            }
            RegistryError::UnknownClient(_) => ApiError::NotFound(err.to_string()),
            RegistryError::TooManyGroups { .. } | RegistryError::GroupFull { .. } => {
                ApiError::BadRequest(err.to_string())
            }
            RegistryError::Storage(_) => ApiError::Unavailable(err.to_string()),
        }
    }
}

impl From<OverLimit> for ApiError {
    fn from(over: OverLimit) -> Self {
        match over {
            OverLimit::Field(msg) => ApiError::BadRequest(msg),
            OverLimit::Data(msg) => ApiError::PayloadTooLarge(msg),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        log::warn!("registry did not answer: {err}");
        ApiError::Unavailable("the server is shutting down or overloaded; retry later".into())
    }
}

/// A request to `/ws` that is not a WebSocket handshake: actix-http's status and headers for it
/// (405 with `Allow: GET`, 400, 426 with the version wanted), with the JSON envelope naming what
/// is missing.
#[derive(Debug)]
pub struct HandshakeRefused(pub HandshakeError);

impl fmt::Display for HandshakeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.0 {
            HandshakeError::GetMethodRequired => "its method must be GET",
            HandshakeError::NoWebsocketUpgrade => "header 'Upgrade: websocket' is missing",
            HandshakeError::NoConnectionUpgrade => "header 'Connection: Upgrade' is missing",
            HandshakeError::NoVersionHeader => "header 'Sec-WebSocket-Version' is missing",
            HandshakeError::UnsupportedVersion => "header 'Sec-WebSocket-Version' must be 13",
            HandshakeError::BadWebsocketKey => "header 'Sec-WebSocket-Key' is missing or invalid",
        };
        write!(f, "not a WebSocket handshake: {what}")
    }
}

impl ResponseError for HandshakeRefused {
    fn status_code(&self) -> StatusCode {
        actix_http::Response::from(&self.0).status()
    }

    fn error_response(&self) -> HttpResponse {
        let refusal = actix_http::Response::from(&self.0);
        let mut response = HttpResponse::build(refusal.status());
        for (name, value) in refusal.headers() {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(Envelope {
            code: -1,
            msg: self.to_string(),
            data: EmptyList,
        })
    }
}
