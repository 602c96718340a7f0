//! `GET /ws`: admits the connection at the gate (503 over the limits, before upgrading),
//! decides its admission (system, client token) and starts a [`WsSession`] for it.
//!
//! One admission (`admit`), two transports: the standalone server takes the upgraded socket
//! from actix-http ([`upgrade`]) and serves it itself; an application that embeds wshub serves
//! `/ws` as an actix-web route ([`connect`]), whose connection actix-http keeps.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix::{Actor, AsyncContext};
use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::ws::HandshakeError;
use actix_http::{h1, ConnectionType, Request, RequestHead, Response};
use actix_web::dev::Extensions;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use futures_util::Stream;
use serde::Deserialize;

use super::extract::{check_origin, SYSTEM_ID_HEADER};
use super::Hub;
use crate::actors::connection::{ClientFrames, ConnectionBody, SocketReader, SocketWriter};
use crate::actors::frame_guard::{FrameGuard, Oversize};
use crate::actors::messages::{HoldsResumable, RecoveryRequest};
use crate::actors::outbox::Outbox;
use crate::actors::session::{Admission, Heartbeat, WsSession};
use crate::backplane::{Lease, Relay, TokenHome};
use crate::config::ClientAuth;
use crate::error::{ApiError, HandshakeRefused};
use crate::gate::ConnectionPermit;
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
                past_limits: false,
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

/// Pass to `HttpServer::on_connect` (the standalone server passes it to actix-http's
/// `on_connect_ext`) so sessions can shut down a slow consumer's socket, and so connections get a
/// send buffer sized for pushes. Without it (an embedding host that does not call it) slow
/// consumers are still evicted and get no more frames; their connection then ends when the
/// client reads again or the host drops it.
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
fn parse_request(req: &RequestHead) -> WsQuery {
    let query_string = req.uri.query().unwrap_or_default();
    let mut query = web::Query::<WsQuery>::from_query(query_string)
        .map(web::Query::into_inner)
        .unwrap_or_default();
    query.system_id = query
        .system_id
        .take()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            req.headers
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
    let max = hub.config.limits.max_system_id_len;
    if system_id.len() > max {
        return Admission::Refuse(format!("systemId is longer than {max} bytes"));
    }
    let user_id = match hub.config.client_auth {
        ClientAuth::None => None,
        ClientAuth::Jwt => match hub.auth.verify_client(token, &system_id) {
            Ok(user_id) => {
                // The claim is the client's userId: it obeys the same rules as a bind's.
                if let Some(user_id) = &user_id {
                    let limits = &hub.config.limits;
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

/// A connection that passed every check before its upgrade: counted at the gate, its
/// admission decided, its session built but not started.
struct Admitted {
    session: WsSession,
    outbox: Arc<Outbox>,
    oversize: Oversize,
    permit: Arc<ConnectionPermit>,
    max_frame_size: usize,
}

impl Admitted {
    /// Starts the session reading `payload` (the client's bytes) and returns the body that
    /// writes its frames.
    fn start<S>(self, payload: S) -> ConnectionBody
    where
        S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
    {
        let client_frames = ClientFrames::new(
            FrameGuard::new(payload, self.max_frame_size, self.oversize),
            self.max_frame_size,
        );
        let session = self.session;
        let session = WsSession::create(|ctx| {
            ctx.add_stream(client_frames);
            session
        });
        ConnectionBody::new(self.outbox, session.recipient(), self.permit)
    }
}

/// Every check of a connection request, in order, and its session, not yet started.
/// `handshake` validates the upgrade (its answer is the caller's to send): both transports
/// ([`connect`], [`upgrade`]) go through here.
async fn admit<H>(
    head: &RequestHead,
    socket: Option<RawFd>,
    hub: &Hub,
    handshake: impl FnOnce() -> Result<H, HandshakeError>,
) -> actix_web::Result<(H, Admitted)> {
    if hub.is_shutting_down() {
        return Err(ApiError::Unavailable("the server is shutting down".into()).into());
    }
    if let Some(reason) = ambiguous_upgrade(head) {
        return Err(ApiError::BadRequest(reason).into());
    }
    if !hub.config.allowed_origins.is_empty() {
        check_origin(&head.headers, &hub.config.allowed_origins, "open /ws")?;
    }
    let mut query = parse_request(head);
    let mut recovery = query.recovery(hub.config.recovery.window().is_some());
    // A token names the node its client lives on: a resume that reached another node is
    // relayed there, or fails at once when that node is gone.
    let mut relay = None;
    if let RecoveryRequest::Resume { token, .. } = &recovery {
        match hub.node.backplane.clone().token_home(token.clone()).await? {
            TokenHome::Here => {}
            TokenHome::Lost => recovery = RecoveryRequest::Failed(ResumeRefusal::NodeLost),
            TokenHome::Elsewhere(link) => relay = Some(link),
        }
    }
    let relayed = relay.is_some();
    let (system_id, token) = (query.system_id, query.token);
    let permit = Arc::new(pass_gate(hub, system_id.as_deref(), &mut recovery, relayed).await?);
    // A request that cannot be upgraded is refused before anything is written anywhere.
    let upgrade = handshake().map_err(HandshakeRefused)?;
    // A relayed connection keeps no history: its client's node does.
    let recovery_buffer = (recovery.wanted() && !relayed).then_some(hub.config.recovery.buffer);
    let admission = admission(hub, system_id, token.as_deref(), (recovery, relay));
    let client_id = hub.node.backplane.new_client_id();
    // Before the upgrade: the client must be reachable once it has its welcome frame.
    // (A relayed client is reachable where it lives.)
    let lease = match &admission {
        Admission::Connect {
            system_id: Some(system_id),
            relay: None,
            ..
        } => {
            hub.node
                .backplane
                .make_reachable(system_id, &client_id)
                .await?
        }
        _ => Lease::none(),
    };
    let oversize = Oversize::default();
    let outbox = Outbox::new(
        client_id,
        hub.config.limits.max_outbound_queue,
        recovery_buffer,
        socket,
        hub.metrics.clone(),
    );
    let session = WsSession::new(
        admission,
        hub.registry.clone(),
        Heartbeat {
            ping_interval: hub.config.ping_interval,
            client_timeout: hub.config.client_timeout,
        },
        (outbox.clone(), oversize.clone()),
        (lease, permit.clone(), hub.config.slow_close_grace),
        (
            hub.config.client_message_rate,
            hub.config.client_message_burst,
        ),
    );
    let admitted = Admitted {
        session,
        outbox,
        oversize,
        permit,
        max_frame_size: hub.config.max_frame_size,
    };
    Ok((upgrade, admitted))
}

/// A place at the connection gate. Over a limit, only the resume of a client this node holds
/// (away, so counted already) gets in: it is marked `past_limits` and takes that client's place.
async fn pass_gate(
    hub: &Hub,
    system_id: Option<&str>,
    recovery: &mut RecoveryRequest,
    relayed: bool,
) -> Result<ConnectionPermit, ApiError> {
    let refusal = match hub.gate.admit(system_id) {
        Ok(permit) => return Ok(permit),
        Err(refusal) => ApiError::Unavailable(refusal.to_string()),
    };
    let (
        RecoveryRequest::Resume {
            token, past_limits, ..
        },
        Some(system_id),
        false,
    ) = (recovery, system_id, relayed)
    else {
        return Err(refusal);
    };
    let asked = HoldsResumable {
        system_id: system_id.to_owned(),
        token: token.clone(),
    };
    *past_limits = hub.registry.send(asked).await.unwrap_or(false);
    if !*past_limits {
        return Err(refusal);
    }
    Ok(hub.gate.admit_resume(Some(system_id)))
}

/// Why an upgrade request would be read two ways, if it would: HTTP/1.1 (actix-http) only
/// streams a connection's bytes after a `101` when the request says exactly `Upgrade:
/// websocket` and has no body; any other handshake would be answered `101` while the bytes
/// behind it were still parsed as HTTP requests (request smuggling past a proxy that tunnels
/// after a `101`). Such a request is refused, never upgraded.
fn ambiguous_upgrade(head: &RequestHead) -> Option<String> {
    let headers = &head.headers;
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return Some("a WebSocket handshake has no body: Transfer-Encoding is not allowed".into());
    }
    let has_body = headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|length| length.to_str().map(str::trim).ok() != Some("0"));
    if has_body {
        return Some("a WebSocket handshake has no body: Content-Length must be 0".into());
    }
    let mut upgrades = headers.get_all(header::UPGRADE);
    let exactly_websocket = |value: &actix_web::http::header::HeaderValue| {
        value
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
    };
    // None at all is not an upgrade (the handshake names what is missing); one must be exact.
    let loose = match (upgrades.next(), upgrades.next()) {
        (None, _) => false,
        (Some(only), None) => !exactly_websocket(only),
        (Some(_), Some(_)) => true,
    };
    if loose {
        return Some("the handshake's header must be exactly 'Upgrade: websocket'".into());
    }
    None
}

/// `GET /ws` as an actix-web route: how an application that embeds wshub
/// ([`super::configure`]) serves it. actix-http keeps the connection and its two 8 KiB buffers;
/// the response body writes the frames. The standalone server upgrades through [`upgrade`]
/// instead and only non-upgrade requests reach this route (and are refused by the handshake).
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    hub: web::Data<Hub>,
) -> actix_web::Result<HttpResponse> {
    let socket = req.conn_data::<ConnectionSocket>().map(|s| s.0);
    let (mut upgrade, admitted) = admit(req.head(), socket, &hub, || ws::handshake(&req)).await?;
    Ok(upgrade.streaming(admitted.start(stream)))
}

/// The path the standalone server upgrades.
pub const WS_PATH: &str = "/ws";

/// The standalone server's upgrade service (actix-http's `HttpService::upgrade`): every request
/// that asks for a WebSocket upgrade comes here with its connection. After the same checks as
/// [`connect`] it writes the `101` itself and serves the socket directly ([`SocketReader`],
/// [`SocketWriter`]); actix-http's connection buffers are dropped, which is most of an idle
/// connection's memory. A refusal is answered as the route answers it, in the JSON envelope, and
/// the connection closed.
pub fn upgrade(
    hub: Hub,
    req: Request,
    framed: Framed<TcpStream, h1::Codec>,
) -> impl Future<Output = actix_web::Result<()>> {
    // Boxed, arguments and all: the admission's state (the request, its checks, the handshake)
    // is freed once the connection is open. actix-http keeps this future inside every
    // connection's task, REST ones too, so it holds no more than the box and the writer.
    let opening = Box::pin(open(hub, req, framed));
    async move {
        if let Some(writer) = opening.await {
            writer.await;
        }
        Ok(())
    }
}

/// The checks and the handshake of [`upgrade`]; the session started and the writer of its
/// connection, or `None` when the request was refused (and answered) or the client left.
async fn open(
    hub: Hub,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Option<SocketWriter> {
    let socket = Some(framed.io_ref().as_raw_fd());
    let admitted = if req.path() == WS_PATH {
        admit(req.head(), socket, &hub, || {
            actix_http::ws::handshake(req.head())
        })
        .await
    } else {
        Err(ApiError::NotFound(format!(
            "no WebSocket endpoint at '{}': connect to {WS_PATH}",
            req.path()
        ))
        .into())
    };
    let (mut handshake, admitted) = match admitted {
        Ok(admitted) => admitted,
        Err(err) => {
            if let Err(err) = refuse(&mut framed, err.error_response()).await {
                log::debug!("could not answer a refused upgrade: {err}");
            }
            return None;
        }
    };
    let response = handshake.finish().drop_body();
    if let Err(err) = send(&mut framed, [h1::Message::Item((response, BodySize::None))]).await {
        // The session never started: dropping it gives its lease and permit back.
        log::debug!("could not write a 101: {err}");
        return None;
    }
    let (socket, early) = into_socket(framed);
    let socket = Rc::new(socket);
    let body = admitted.start(SocketReader::new(socket.clone(), early));
    Some(SocketWriter::new(body, socket))
}

/// The connection's socket and what the client sent behind its request (copied out, so that
/// actix-http's two buffers are freed here).
fn into_socket(framed: Framed<TcpStream, h1::Codec>) -> (TcpStream, Bytes) {
    let parts = framed.into_parts();
    let early = Bytes::copy_from_slice(&parts.read_buf);
    (parts.io, early)
}

type H1Item = h1::Message<(Response<()>, BodySize)>;

/// Writes `items` and flushes them.
async fn send(
    framed: &mut Framed<TcpStream, h1::Codec>,
    items: impl IntoIterator<Item = H1Item>,
) -> std::io::Result<()> {
    for item in items {
        Pin::new(&mut *framed).write(item)?;
    }
    poll_fn(|cx| Pin::new(&mut *framed).flush::<H1Item>(cx)).await
}

/// Answers a refused upgrade with its JSON envelope and `Connection: close`.
async fn refuse(
    framed: &mut Framed<TcpStream, h1::Codec>,
    response: HttpResponse,
) -> std::io::Result<()> {
    let (head, body) = response.into_parts();
    let mut head: Response<()> = head.into();
    head.head_mut().set_connection_type(ConnectionType::Close);
    let body = actix_web::body::to_bytes(body)
        .await
        .map_err(|err| std::io::Error::other(err.to_string()))?;
    let size = BodySize::Sized(body.len() as u64);
    let items = [
        h1::Message::Item((head, size)),
        h1::Message::Chunk(Some(body)),
        h1::Message::Chunk(None),
    ];
    send(framed, items).await
}
