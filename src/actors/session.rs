//! One actor per WebSocket connection.
//!
//! Lifecycle: `started()` asks the registry to register it ([`Connect`]); the registry answers by
//! pushing the welcome frame, or a refusal that closes the socket with 1008. From then on the
//! connection's body writes the frames queued in its outbox (see [`super::connection`]), and the
//! session reads what the client sends, obeys close requests ([`SessionCommand`]), pings on a
//! timer and drops a client that stays silent too long. `stopping()` tells the registry
//! ([`Disconnect`]) whatever the cause: close frame, dropped TCP ([`ConnectionGone`]), heartbeat
//! timeout, oversized frame or REST `close_client`, and ends the connection after what the
//! session wrote last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, Running,
    StreamHandler,
};
use actix_http::ws::{CloseCode, CloseReason, Frame, Item, Message, ProtocolError};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;

use super::bucket::{Bucket, FRAMES_PER_MESSAGE, MIN_FRAME_RATE};
use super::frame_guard::Oversize;
use super::messages::{ClientMessage, Connect, ConnectionGone, Disconnect, RecoveryRequest};
use super::outbox::{Outbox, SessionCommand, SessionHandle};
use super::reach::{Lease, Relay, RelayedResume};
use super::registry::SystemRegistry;
use crate::actors::outward::{Offline, OfflineReason};
use crate::gate::ConnectionPermit;
use crate::metrics::Metrics;
use crate::protocol::CloseReason as Why;

/// Longest close reason: a close frame is a control frame (125 bytes at most) and its first
/// two bytes are the code. Longer reasons are cut at a character boundary; the refusal text
/// frame sent before a 1008 carries the whole reason.
pub const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut to at most [`MAX_CLOSE_REASON`] bytes, on a UTF-8 character boundary.
pub fn close_reason_text(reason: &str) -> String {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

/// Heartbeat settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// Silence after which the client is dropped.
    pub client_timeout: Duration,
}

/// What the handshake decided about a connection before its session starts.
#[derive(Debug)]
pub enum Admission {
    /// Ask the registry to admit it to this system (`None`: none was named; the registry refuses).
    Connect {
        system_id: Option<String>,
        /// Preset by a client token.
        user_id: Option<String>,
        recovery: RecoveryRequest,
        /// Set when the client to resume lives on another node: the connection is relayed.
        relay: Option<Box<dyn Relay>>,
    },
    /// Refuse at once with −1001 and close 1008, for this reason.
    Refuse(String),
}

pub struct WsSession {
    /// Taken when the registry is asked to admit the session; whatever is left in it once the
    /// session is registered names its system for `Disconnect`.
    admission: Option<Admission>,
    /// The system it asked to join, once it has asked.
    system_id: Option<String>,
    /// It asked for recovery: a lost connection leaves its outbox to the registry, which may
    /// keep it for a resume.
    recovery: bool,
    /// A relayed connection: its client lives on another node, which this session tells what
    /// the connection does (instead of this node's registry).
    relay: Option<Box<dyn Relay>>,
    registry: Addr<SystemRegistry>,
    heartbeat: Heartbeat,
    /// When the client last sent anything (a pong or any frame).
    last_heard: Instant,
    outbox: Arc<Outbox>,
    /// Set by the connection's frame guard when a client frame passed the size limit.
    oversize: Oversize,
    /// How the connection is ending, for `client_offline`: a lost connection unless the
    /// session learns otherwise.
    offline: Offline,
    /// Data messages the client may still send now (`--client-message-rate` and `-burst`).
    messages: Bucket,
    /// Frames of any kind (pings, pongs, fragments): [`FRAMES_PER_MESSAGE`] times the message
    /// allowance, so that control frames and empty fragments cannot keep a core busy either.
    frames: Bucket,
    /// The fragments of a text message being received, until its last one.
    fragments: Option<BytesMut>,
    /// What keeps the client reachable through the backplane (in a cluster, this node's
    /// subscription to the system's channel); released when the session is dropped.
    lease: Lease,
    /// Its place at the connection gate, shared with the connection's body: a recovery client
    /// whose connection is lost leaves it to its outbox, so that it stays counted while away.
    permit: Option<Arc<ConnectionPermit>>,
    /// How long the connection may take to write what the session wrote last once it stops
    /// (`--slow-close-grace`); then its socket is shut down.
    close_grace: Duration,
}

impl WsSession {
    /// The client's id is its outbox's.
    pub fn new(
        admission: Admission,
        registry: Addr<SystemRegistry>,
        heartbeat: Heartbeat,
        (outbox, oversize): (Arc<Outbox>, Oversize),
        (lease, permit, close_grace): (Lease, Arc<ConnectionPermit>, Duration),
        (message_rate, message_burst): (f64, u32),
    ) -> Self {
        WsSession {
            admission: Some(admission),
            system_id: None,
            recovery: false,
            relay: None,
            registry,
            heartbeat,
            last_heard: Instant::now(),
            outbox,
            oversize,
            offline: Offline::new(OfflineReason::ConnectionLost, None),
            messages: Bucket::new(message_rate, f64::from(message_burst)),
            frames: Bucket::new(
                (message_rate * FRAMES_PER_MESSAGE).max(MIN_FRAME_RATE),
                (f64::from(message_burst) * FRAMES_PER_MESSAGE).max(MIN_FRAME_RATE),
            ),
            fragments: None,
            lease,
            permit: Some(permit),
            close_grace,
        }
    }

    fn metrics(&self) -> &Metrics {
        self.outbox.metrics()
    }

    fn close(&self, ctx: &mut Context<Self>, code: CloseCode, reason: &str) {
        self.outbox.start_closing();
        self.outbox.write_own(Message::Close(Some(CloseReason {
            code,
            description: Some(close_reason_text(reason)),
        })));
        ctx.stop();
    }

    fn start_heartbeat(&self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.heartbeat.ping_interval, |session, ctx| {
            if session.last_heard.elapsed() > session.heartbeat.client_timeout {
                log::debug!("client {} timed out", session.outbox.client_id());
                session.metrics().client_closed(Why::Heartbeat);
                session.offline = Offline::new(OfflineReason::Timeout, None);
                // A silent peer may be gone without a FIN: no close handshake, just stop.
                ctx.stop();
                return;
            }
            session.outbox.write_own(Message::Ping(Bytes::new()));
        });
    }

    fn close_too_big(&mut self, ctx: &mut Context<Self>) {
        self.close_unreadable(ctx, Why::TooBig, CloseCode::Size, "frame too big");
    }

    /// Closes a client whose bytes cannot be read on (too big, not UTF-8, broken framing) and
    /// stops reading from it.
    fn close_unreadable(&mut self, ctx: &mut Context<Self>, kind: Why, code: CloseCode, why: &str) {
        self.metrics().client_closed(kind);
        self.outbox.stop_reading();
        self.close_for_protocol(ctx, code, why);
    }

    /// Closes a client that broke the rules (1002, 1003, 1007, 1009, 4029).
    fn close_for_protocol(&mut self, ctx: &mut Context<Self>, code: CloseCode, why: &str) {
        self.offline = Offline::new(OfflineReason::Protocol, Some(u16::from(code)));
        self.close(ctx, code, why);
    }

    /// A text frame from the client: counted against its rate, then handed to the registry
    /// (which makes it a `client_message` if the system's webhook asks for those).
    fn client_text(&mut self, text: ByteString, ctx: &mut Context<Self>) {
        if !self.messages.take() {
            self.close_too_many(ctx);
            return;
        }
        if let Some(relay) = &self.relay {
            relay.client_message(text);
        } else if let Some(system_id) = &self.system_id {
            self.registry.do_send(ClientMessage {
                system_id: system_id.clone(),
                client_id: self.outbox.client_id(),
                text,
            });
        }
    }

    fn close_too_many(&mut self, ctx: &mut Context<Self>) {
        self.metrics().client_closed(Why::TooManyMessages);
        self.close_for_protocol(ctx, CloseCode::Other(4029), "too many messages");
    }

    /// A whole text message's bytes: forwarded if they are UTF-8, else closed with 1007.
    fn client_bytes(&mut self, bytes: Bytes, ctx: &mut Context<Self>) {
        match ByteString::try_from(bytes) {
            Ok(text) => self.client_text(text, ctx),
            Err(_) => {
                let why = "text is not valid UTF-8";
                self.close_unreadable(ctx, Why::ProtocolError, CloseCode::Invalid, why);
            }
        }
    }

    fn refuse(&self, ctx: &mut Context<Self>, reason: &str) {
        self.outbox
            .write_own(Message::Text(crate::protocol::refusal_frame(reason)));
        self.close(ctx, CloseCode::Policy, reason);
    }

    /// Tells the registry (or, relayed, the client's node) this client is gone (at most once).
    fn disconnect(&mut self) {
        if let Some(relay) = self.relay.take() {
            self.outbox.start_closing();
            relay.gone(self.offline);
            return;
        }
        let lost = matches!(
            self.offline.reason,
            OfflineReason::ConnectionLost | OfflineReason::Timeout
        );
        // A recovery client's lost connection may be resumed: the registry decides whether
        // its outbox goes on queuing.
        if !(self.recovery && lost) {
            self.outbox.start_closing();
        }
        if let Some(system_id) = self.system_id.take() {
            if self.recovery && lost {
                let lease = std::mem::replace(&mut self.lease, Lease::none());
                self.outbox.keep(lease);
                if let Some(permit) = self.permit.take() {
                    self.outbox.keep(permit);
                }
            }
            // Sent through the same mailbox after Connect, so it is handled after it.
            self.registry.do_send(Disconnect {
                system_id,
                client_id: self.outbox.client_id(),
                offline: self.offline,
                outbox: self.outbox.clone(),
            });
        }
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        match self.admission.take() {
            Some(Admission::Connect {
                system_id: Some(system_id),
                user_id,
                recovery: RecoveryRequest::Resume { token, last, .. },
                relay: Some(relay),
            }) => {
                self.start_heartbeat(ctx);
                let session = SessionHandle::new(ctx.address().recipient(), self.outbox.clone());
                let resume = RelayedResume {
                    system_id,
                    token,
                    last,
                    user_id,
                };
                let opened = relay.open(session, resume);
                self.relay = Some(relay);
                // Its node did not answer: drop the connection; the client's next try learns
                // whether the node is gone.
                ctx.spawn(actix::fut::wrap_future(opened).map(
                    |result, _, ctx: &mut Self::Context| {
                        if result.is_err() {
                            ctx.stop();
                        }
                    },
                ));
            }
            Some(Admission::Connect {
                system_id,
                user_id,
                recovery,
                ..
            }) => {
                self.start_heartbeat(ctx);
                self.system_id = system_id.clone();
                self.recovery = recovery.wanted();
                self.registry.do_send(Connect {
                    system_id,
                    client_id: self.outbox.client_id(),
                    user_id,
                    session: SessionHandle::new(ctx.address().recipient(), self.outbox.clone()),
                    recovery,
                });
            }
            Some(Admission::Refuse(reason)) => self.refuse(ctx, &reason),
            None => ctx.stop(),
        }
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        log::debug!(clientId = self.outbox.client_id(); "client disconnected");
        self.disconnect();
        self.outbox.end_connection();
        // A client that does not read its last frames (a slow consumer's 4008, any close, or
        // nothing at all after a heartbeat timeout) must not keep its connection: once the grace
        // is over, its socket is shut down. Nothing to wait for when the connection is gone
        // already (the usual way a session stops: the client left), or once it goes in the
        // meantime (a stuck connection's body keeps the outbox alive; a gone one, not).
        if !self.outbox.has_socket() {
            return Running::Stop;
        }
        let outbox = Arc::downgrade(&self.outbox);
        let grace = self.close_grace;
        actix::spawn(async move {
            actix_web::rt::time::sleep(grace).await;
            if let Some(outbox) = outbox.upgrade() {
                outbox.shut_down_socket();
            }
        });
        Running::Stop
    }
}

impl Drop for WsSession {
    /// Stopped without `stopping()` (its arbiter went away): the same clean-up.
    fn drop(&mut self) {
        self.disconnect();
        self.outbox.end_connection();
    }
}

impl Handler<ConnectionGone> for WsSession {
    type Result = ();
    fn handle(&mut self, _: ConnectionGone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<SessionCommand> for WsSession {
    type Result = ();
    fn handle(&mut self, cmd: SessionCommand, ctx: &mut Self::Context) {
        let SessionCommand::Close {
            kind,
            reason,
            frame,
        } = cmd;
        // Frames queued before the close go out first, except to a slow consumer.
        let queued = self.outbox.take_all();
        let count = queued.len() as u64;
        if kind == Why::Slow {
            self.metrics().frames_dropped.inc_by(count);
        } else {
            for frame in queued {
                self.outbox.write_own(Message::Text(frame));
            }
            self.metrics().frames_delivered.inc_by(count);
        }
        if let Some(frame) = frame {
            self.outbox.write_own(Message::Text(frame));
        }
        match kind.code() {
            Some(code) => self.close(ctx, CloseCode::from(code), &reason),
            None => ctx.stop(),
        }
    }
}

/// What the client sends ([`super::connection::ClientFrames`]); its end (EOF) stops the session.
impl StreamHandler<Result<Frame, ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<Frame, ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        if item.is_ok() {
            self.metrics().client_frames.inc();
            if !self.frames.take() {
                self.close_too_many(ctx);
                return;
            }
        }
        match item {
            Ok(Frame::Ping(payload)) => self.outbox.write_own(Message::Pong(payload)),
            Ok(Frame::Pong(_)) => {}
            Ok(Frame::Text(bytes)) => self.client_bytes(bytes, ctx),
            // The protocol is text (JSON); a binary frame is refused, as is the start of a
            // fragmented binary message.
            Ok(Frame::Binary(_)) | Ok(Frame::Continuation(Item::FirstBinary(_))) => {
                self.metrics().client_closed(Why::Binary);
                self.close_for_protocol(
                    ctx,
                    CloseCode::Unsupported,
                    "binary frames are not accepted",
                );
            }
            // A fragmented text message is assembled (its total is bounded by the frame guard,
            // 1009 past --max-frame-size) and then handled as one text frame.
            Ok(Frame::Continuation(Item::FirstText(first))) => {
                self.fragments = Some(BytesMut::from(&first[..]));
            }
            Ok(Frame::Continuation(Item::Continue(more))) => match &mut self.fragments {
                Some(fragments) => fragments.extend_from_slice(&more),
                None => self.close_for_protocol(ctx, CloseCode::Protocol, "unexpected fragment"),
            },
            Ok(Frame::Continuation(Item::Last(last))) => match self.fragments.take() {
                Some(mut fragments) => {
                    fragments.extend_from_slice(&last);
                    self.client_bytes(fragments.freeze(), ctx);
                }
                None => self.close_for_protocol(ctx, CloseCode::Protocol, "unexpected fragment"),
            },
            Ok(Frame::Close(reason)) => {
                let code = reason.as_ref().map(|reason| u16::from(reason.code));
                self.offline = Offline::new(OfflineReason::Closed, code);
                self.outbox.start_closing();
                self.outbox.write_own(Message::Close(reason));
                ctx.stop();
            }
            Err(ProtocolError::Overflow) => self.close_too_big(ctx),
            Err(_) if self.oversize.is_set() => self.close_too_big(ctx),
            // The codec reports a frame it refuses (reserved bits set) as invalid data: that is
            // the client breaking the protocol, not a lost connection.
            Err(ProtocolError::Io(err)) if err.kind() == std::io::ErrorKind::InvalidData => {
                log::debug!("client {}: protocol error: {err}", self.outbox.client_id());
                let why = "protocol error";
                self.close_unreadable(ctx, Why::ProtocolError, CloseCode::Protocol, why);
            }
            // The connection ended under the stream (EOF or a reset mid-frame): lost, not a
            // protocol error, and there is nobody to send a close frame to.
            Err(ProtocolError::Io(err)) => {
                log::debug!("client {}: connection lost: {err}", self.outbox.client_id());
                ctx.stop();
            }
            Err(err) => {
                log::debug!("client {}: protocol error: {err}", self.outbox.client_id());
                let why = "protocol error";
                self.close_unreadable(ctx, Why::ProtocolError, CloseCode::Protocol, why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{close_reason_text, MAX_CLOSE_REASON};

    #[test]
    fn close_reasons_are_cut_on_a_character_boundary() {
        assert_eq!(close_reason_text("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason_text(&long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert_eq!(cut, "é".repeat(MAX_CLOSE_REASON / 2));
    }
}
