//! One actor per WebSocket connection.
//!
//! Lifecycle: `started()` asks the registry to register it ([`Connect`]); the registry answers by
//! pushing the welcome frame, or a refusal that closes the socket with 1008. From then on the
//! session writes whatever [`SessionCommand`] it is sent, pings on a timer and drops a client
//! that stays silent too long. `stopping()` tells the registry ([`Disconnect`]) whatever the
//! cause: close frame, dropped TCP, heartbeat timeout, oversized frame or REST `close_client`.

use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Handler, Running, StreamHandler};
use actix_web_actors::ws::{self, CloseCode, CloseReason, WebsocketContext};

use super::messages::{CloseKind, Connect, Disconnect, SessionCommand};
use super::registry::SystemRegistry;

/// Heartbeat settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// Silence after which the client is dropped.
    pub client_timeout: Duration,
}

pub struct WsSession {
    client_id: String,
    /// As given by the client; `None` or unregistered gets the connection refused.
    system_id: Option<String>,
    registry: Addr<SystemRegistry>,
    heartbeat: Heartbeat,
    /// When the client last sent anything (a pong or any frame).
    last_heard: Instant,
}

impl WsSession {
    pub fn new(
        client_id: String,
        system_id: Option<String>,
        registry: Addr<SystemRegistry>,
        heartbeat: Heartbeat,
    ) -> Self {
        WsSession {
            client_id,
            system_id,
            registry,
            heartbeat,
            last_heard: Instant::now(),
        }
    }

    fn close(&self, ctx: &mut WebsocketContext<Self>, code: CloseCode, reason: &str) {
        ctx.close(Some(CloseReason {
            code,
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }

    fn start_heartbeat(&self, ctx: &mut WebsocketContext<Self>) {
        ctx.run_interval(self.heartbeat.ping_interval, |session, ctx| {
            if session.last_heard.elapsed() > session.heartbeat.client_timeout {
                log::debug!("client {} timed out", session.client_id);
                // A silent peer may be gone without a FIN: no close handshake, just stop.
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
    }
}

impl Actor for WsSession {
    type Context = WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.start_heartbeat(ctx);
        self.registry.do_send(Connect {
            system_id: self.system_id.clone(),
            client_id: self.client_id.clone(),
            session: ctx.address().recipient(),
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        log::debug!("client {} disconnected", self.client_id);
        if let Some(system_id) = self.system_id.take() {
            // Sent through the same mailbox after Connect, so it is handled after it.
            self.registry.do_send(Disconnect {
                system_id,
                client_id: self.client_id.clone(),
            });
        }
        Running::Stop
    }
}

impl Handler<SessionCommand> for WsSession {
    type Result = ();
    fn handle(&mut self, cmd: SessionCommand, ctx: &mut Self::Context) {
        match cmd {
            SessionCommand::Push(frame) => ctx.text(frame),
            SessionCommand::Close {
                kind,
                reason,
                frame,
            } => {
                if let Some(frame) = frame {
                    ctx.text(frame);
                }
                let code = match kind {
                    CloseKind::ClosedByApi => CloseCode::Normal,
                    CloseKind::Refused => CloseCode::Policy,
                };
                self.close(ctx, code, &reason);
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            // Frames from clients are accepted and ignored: the REST API is the only way in.
            Ok(ws::Message::Pong(_))
            | Ok(ws::Message::Text(_))
            | Ok(ws::Message::Binary(_))
            | Ok(ws::Message::Continuation(_))
            | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => {
                self.close(ctx, CloseCode::Size, "frame too big");
            }
            Err(err) => {
                log::debug!("client {}: protocol error: {err}", self.client_id);
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}
