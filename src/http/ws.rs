//! `GET /ws`: admits the connection at the gate (503 over the limits, before upgrading),
//! decides its admission (system, client token) and starts a [`WsSession`] for it.

use std::any::Any;
use std::os::fd::{AsRawFd, RawFd};

use actix::{Actor, AsyncContext};
use actix_web::dev::Extensions;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;

use super::extract::{check_origin, SYSTEM_ID_HEADER};
use super::frame_guard::{FrameGuard, Oversize};
use super::Hub;
use crate::actors::connection::{ClientFrames, ConnectionBody};
use crate::actors::messages::RecoveryRequest;
use crate::actors::outbox::Outbox;
use crate::actors::session::{Admission, WsSession};
use crate::backplane::{Lease, Relay, TokenHome};
use crate::config::ClientAuth;
use crate::error::ApiError;
use crate::protocol::ResumeRefusal;

#[derive(Deserialize, Default)]
struct WsQuery {
    #[serde(rename = "systemId")]
    system_id: Option<String>,
    token: Option<String>,
    /// `1` (or `true`): the client asks for connection state recovery.
    recovery: Option<String>,
    /// A resume token from an earlier welcome.
    resume: Option<String>,
    /// The messageId of the last frame the client received (empty: none).
    last: Option<String>,
}

impl WsQuery {
    /// What the client asked of recovery; nothing when it is off (`--recovery-window 0`).
    fn recovery(&mut self, enabled: bool) -> RecoveryRequest {
        let resume = self.resume.take().filter(|token| !token.is_empty());
        let asked = matches!(self.recovery.as_deref(), Some("1" | "true"));
        match resume {
            _ if !enabled => RecoveryRequest::None,
            Some(token) => RecoveryRequest::Resume {
                token,
                last: self.last.take().filter(|last| !last.is_empty()),
            },
            None if asked => RecoveryRequest::Fresh,
            None => RecoveryRequest::None,
        }
    }
}

/// The connection's socket descriptor, recorded by [`on_connect`] so that a slow consumer's
/// stuck connection can be cut off from outside.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSocket(pub RawFd);

/// Kernel send buffer of each connection. Sized for a push connection, not a bulk transfer: the
/// kernel's auto-tuning would let a client that stops reading hold megabytes there, unseen by
/// the outbound-queue bound.
pub const SOCKET_SEND_BUFFER: usize = 64 * 1024;

/// Pass to `HttpServer::on_connect` so sessions can shut down a slow consumer's socket, and so
/// connections get a send buffer sized for pushes. Without it (an embedding host that does not
/// call it) slow consumers are still evicted and get no more frames; their connection then ends
/// when the client reads again or the host drops it.
pub fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(err) = socket2::SockRef::from(tcp).set_send_buffer_size(SOCKET_SEND_BUFFER) {
            log::debug!("could not size a connection's send buffer: {err}");
        }
        data.insert(ConnectionSocket(tcp.as_raw_fd()));
    }
}

/// Reads the query (an unreadable query counts as empty), with the `SystemId` header as the
/// fallback for the system.
fn parse_request(req: &HttpRequest) -> WsQuery {
    let mut query = web::Query::<WsQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    query.system_id = query
        .system_id
        .take()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            req.headers()
                .get(SYSTEM_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        });
    query
}

fn admission(
    hub: &Hub,
    system_id: Option<String>,
    token: Option<&str>,
    (recovery, relay): (RecoveryRequest, Option<Box<dyn Relay>>),
) -> Admission {
    let Some(system_id) = system_id else {
        return Admission::Connect {
            system_id: None,
            user_id: None,
            recovery,
            relay: None,
        };
    };
    let max = hub.settings.limits.max_system_id_len;
    if system_id.len() > max {
        return Admission::Refuse(format!("systemId is longer than {max} bytes"));
    }
    let user_id = match hub.settings.client_auth {
        ClientAuth::None => None,
        ClientAuth::Jwt => match hub.auth.verify_client(token, &system_id) {
            Ok(user_id) => {
                // The claim is the client's userId: it obeys the same rules as a bind's.
                if let Some(user_id) = &user_id {
                    let limits = &hub.settings.limits;
                    if let Err(reason) = crate::protocol::check_user_id("userId", user_id, limits) {
                        return Admission::Refuse(format!("client token's {reason}"));
                    }
                }
                user_id
            }
            Err(reason) => return Admission::Refuse(reason),
        },
    };
    Admission::Connect {
        system_id: Some(system_id),
        user_id,
        recovery,
        relay,
    }
}

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<Hub>,
) -> actix_web::Result<HttpResponse> {
    if hub.is_shutting_down() {
        return Err(ApiError::Unavailable("the server is shutting down".into()).into());
    }
    if !hub.settings.allowed_origins.is_empty() {
        check_origin(&req, &hub.settings.allowed_origins, "open /ws")?;
    }
    let mut query = parse_request(&req);
    let mut recovery = query.recovery(hub.settings.recovery.window.is_some());
    // A token names the node its client lives on: a resume that reached another node is
    // relayed there, or fails at once when that node is gone.
    let mut relay = None;
    if let RecoveryRequest::Resume { token, .. } = &recovery {
        match hub.backplane.clone().token_home(token.clone()).await? {
            TokenHome::Here => {}
            TokenHome::Lost => recovery = RecoveryRequest::Failed(ResumeRefusal::NodeLost),
            TokenHome::Elsewhere(link) => relay = Some(link),
        }
    }
    let relayed = relay.is_some();
    let (system_id, token) = (query.system_id, query.token);
    let permit = hub
        .gate
        .admit(system_id.as_deref())
        .map_err(|refusal| ApiError::Unavailable(refusal.to_string()))?;
    // A request that cannot be upgraded is refused before anything is written anywhere.
    let mut upgrade = ws::handshake(&req)?;
    // A relayed connection keeps no history: its client's node does.
    let recovery_buffer = (recovery.wanted() && !relayed).then_some(hub.settings.recovery.buffer);
    let admission = admission(&hub, system_id, token.as_deref(), (recovery, relay));
    let client_id = hub.backplane.new_client_id();
    // Before the upgrade: the client must be reachable once it has its welcome frame.
    // (A relayed client is reachable where it lives.)
    let lease = match &admission {
        Admission::Connect {
            system_id: Some(system_id),
            relay: None,
            ..
        } => hub.backplane.admit(system_id, &client_id).await?,
        _ => Lease::none(),
    };
    let socket = req.conn_data::<ConnectionSocket>().map(|s| s.0);
    let oversize = Oversize::default();
    let outbox = Outbox::new(
        client_id,
        hub.settings.limits.max_outbound_queue,
        recovery_buffer,
        socket,
        hub.metrics.clone(),
    );
    let max_frame_size = hub.settings.max_frame_size;
    let client_frames = ClientFrames::new(
        FrameGuard::new(stream, max_frame_size, oversize.clone()),
        max_frame_size,
    );
    let session = WsSession::new(
        admission,
        hub.registry.clone(),
        hub.settings.heartbeat,
        (outbox.clone(), oversize),
        (lease, hub.settings.slow_close_grace),
        hub.settings.client_messages,
    );
    let session = WsSession::create(|ctx| {
        ctx.add_stream(client_frames);
        session
    });
    let body = ConnectionBody::new(outbox, session.recipient(), permit);
    Ok(upgrade.streaming(body))
}
