//! Extractors that turn a REST request into checked, typed input before a handler runs:
//! who is calling and for which system ([`Authorized`], making an [`ops::Caller`] or an
//! [`ops::SystemCaller`]), with what body ([`Body`]).
//! Each fails with the [`ApiError`] the caller should see.

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use actix_web_httpauth::headers::authorization::{Bearer, Scheme};
use serde::de::{DeserializeOwned, IgnoredAny};

use super::Hub;
use crate::config::ApiAuth;
use crate::error::ApiError;
use crate::ops;
use crate::protocol::CheckLimits;

pub use crate::ops::SYSTEM_ID_HEADER;

fn hub(req: &HttpRequest) -> Result<&Hub, ApiError> {
    req.app_data::<web::Data<Hub>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| ApiError::Unavailable("wshub is not configured on this route".into()))
}

/// A caller as its method's scope wants it ([`ops::Caller`] or [`ops::SystemCaller`]): the
/// token verified, and for a system method the `SystemId` header read and the token allowed
/// for that system.
pub struct Authorized<C>(pub C);

impl<C: ops::Authorized> FromRequest for Authorized<C> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req).and_then(|caller| {
            let system_id = match C::SCOPE {
                ops::Scope::AnyToken => None,
                ops::Scope::System => Some(system_header(req, &caller)?),
            };
            Ok(Authorized(C::new(caller, system_id)))
        }))
    }
}

/// Verifies the caller's token (and, without tokens, where the call comes from).
fn authorize(req: &HttpRequest) -> Result<ops::Caller, ApiError> {
    let hub = hub(req)?;
    if hub.auth.mode() == ApiAuth::None {
        // Without tokens, nothing but these checks stops a web page the operator's browser
        // visits from calling the API (CSRF), or a DNS-rebinding page from reaching it.
        // The Host check also keeps a rebinding page from passing as same-origin under its
        // own name.
        check_host(req, &hub.config.allowed_hosts)?;
        check_origin(req.headers(), &hub.config.allowed_origins, "call /api")?;
    }
    let token = bearer_token(req)?;
    let scope = hub
        .auth
        .verify(token.as_ref().map(Bearer::token))
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    Ok(ops::Caller { scope })
}

/// The bearer token of a request, if it has an `Authorization` header. The scheme is matched
/// without regard to case (RFC 7235); actix-web-httpauth's parser wants "Bearer" exactly, so
/// the header is given to it with the scheme spelt that way.
fn bearer_token(req: &HttpRequest) -> Result<Option<Bearer>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed =
        || ApiError::Unauthorized("malformed Authorization header: expected 'Bearer <JWT>'".into());
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(malformed());
    }
    let canonical =
        HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| malformed())?;
    Bearer::parse(&canonical).map(Some).map_err(|_| malformed())
}

/// Refuses (403) a browser request whose `Origin` is neither listed nor the server's own (the
/// bundled console). A request with no `Origin` is not from a browser page and passes.
/// `allowed` empty: every other origin is refused.
pub fn check_origin(headers: &HeaderMap, allowed: &[String], what: &str) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    if is_same_origin(headers) {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or("(unreadable)");
    if allowed
        .iter()
        .any(|listed| listed.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "origin '{origin}' may not {what}: list it in --allowed-origins"
    )))
}

/// Whether the request's `Origin` is the server's own (`http(s)://` + its `Host`).
fn is_same_origin(headers: &HeaderMap) -> bool {
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST))
    else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

/// With `--api-auth none`: refuses (403) a `Host` that is neither an IP address, `localhost`,
/// nor listed in `--allowed-hosts`, so a page on a rebinding DNS name cannot reach the API.
fn check_host(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(host) = req.headers().get(header::HOST) else {
        return Ok(());
    };
    let host = host.to_str().unwrap_or_default();
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let is_ip = name.parse::<std::net::IpAddr>().is_ok();
    let listed = allowed.iter().any(|h| h.eq_ignore_ascii_case(name));
    if is_ip || name.eq_ignore_ascii_case("localhost") || listed {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "host '{name}' is not allowed with --api-auth none: use an IP address or localhost, \
         or list it in --allowed-hosts"
    )))
}

/// The system the `SystemId` header names, once the caller's token may act for it.
fn system_header(req: &HttpRequest, caller: &ops::Caller) -> Result<String, ApiError> {
    let system_id = match req.headers().get(SYSTEM_ID_HEADER) {
        None => {
            return Err(ApiError::BadRequest(
                "missing SystemId header: name the system this call acts on".into(),
            ))
        }
        Some(value) => value
            .to_str()
            .map_err(|_| ApiError::BadRequest("SystemId header: must be printable ASCII".into()))?,
    };
    if system_id.is_empty() {
        return Err(ApiError::BadRequest(
            "SystemId header: must not be empty".into(),
        ));
    }
    caller.require(system_id)?;
    Ok(system_id.to_owned())
}

/// A JSON body parsed into `T`. Whatever the `Content-Type`, the body is read as JSON (the Go
/// servers' SDKs do not always set it); an empty body reads as `{}`. Errors name the field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + CheckLimits + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Reads at most the configured limit (`web::PayloadConfig` registered by `configure`).
        let bytes = web::Bytes::from_request(req, payload);
        let settings = hub(req).map(|hub| hub.config.clone());
        Box::pin(async move {
            let settings = settings?;
            let limit = settings.max_body_size;
            let bytes = bytes
                .await
                .map_err(|err| match err.as_error::<PayloadError>() {
                    Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(format!(
                        "request body is larger than the limit of {limit} bytes"
                    )),
                    _ => ApiError::BadRequest(format!("could not read the request body: {err}")),
                })?;
            let body: T = parse_json(if bytes.is_empty() { b"{}" } else { &bytes })?;
            body.check_limits(&settings.limits)?;
            Ok(Body(body))
        })
    }
}

/// Parses a JSON body; the error names the offending field when there is one.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also fill a struct from an array, positionally; bodies are objects only.
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::BadRequest(
            "malformed JSON body: expected a JSON object".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // For a missing or mistyped field the parser's position says nothing the field name does
        // not; for broken JSON it points at the break.
        let message = match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                format!("{path}: {}", without_position(&inner))
            }
            serde_json::error::Category::Data => without_position(&inner),
            // serde_json reports a value of the wrong kind for an enum (`"presence": 1`) as a
            // syntax error; in JSON that parses, it is the field's fault.
            serde_json::error::Category::Syntax
                if path != "." && serde_json::from_slice::<IgnoredAny>(bytes).is_ok() =>
            {
                format!("{path}: not one of the values this field takes")
            }
            _ => format!("malformed JSON body: {inner}"),
        };
        ApiError::BadRequest(message)
    })?;
    de.end()
        .map_err(|err| ApiError::BadRequest(format!("malformed JSON body: {err}")))?;
    Ok(value)
}

/// A serde_json message without its trailing " at line L column C".
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if err.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}
