//! Resuming through another node: the connection is relayed to the node that holds the client.
//!
//! A client stays on its *home* node (the one whose id starts its clientId and its resume
//! token) for its whole life, so every REST call, broadcast and membership read reaches it
//! exactly as before, with no lookup that could go stale. When its resume lands on another node
//! (the *relay*), the relay asks the home to resume it over a [`RelaySession`]: an outbox on the
//! home like any session's, whose frames the home publishes, in order, to the relay's `node:`
//! channel, and which the relay writes to the socket. What the socket does (a client message,
//! its end) goes back the same way. The home's registry runs the very same resume as for a
//! local one: the replay, 4009 for an old connection, the reasons for a refusal.
//!
//! Failure modes: if the home dies, the relay drops its relayed connections (no close frame)
//! and the client's next resume gets `node_lost`; if the relay dies, the home treats the
//! connection as lost (the client's window opens). Each frame to a relayed client crosses Redis
//! twice (broadcast, then relay).

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;

use actix::{Actor, ActorContext, AsyncContext, Context, Handler, Message, StreamHandler};
use bytestring::ByteString;
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;
use redis::AsyncCommands;

use crate::actors::messages as m;
use crate::actors::outbox::{Outbox, Pushed, SessionCommand, SessionHandle};
use crate::actors::outward::Offline;
use crate::backplane::{Backplane, Lease, Relay, RelayedResume, TokenHome};
use crate::error::ApiError;
use crate::protocol::CloseReason;

use super::calls::{NodeCall, NodeMessage, ToHome, ToRelay};
use super::node::{Cluster, RelayAddr, RemoteSession, NODE_ID_LEN};

impl Cluster {
    /// Where a token's client lives: its first 12 hex digits name its node.
    pub(super) async fn home_of(self: Arc<Self>, token: String) -> Result<TokenHome, ApiError> {
        let home = token
            .get(..NODE_ID_LEN)
            .filter(|_| token.len() == NODE_ID_LEN + 64)
            .filter(|home| home.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(home) = home.filter(|home| *home != self.node_id) else {
            return Ok(TokenHome::Here);
        };
        let alive: bool = self.track(self.conn().exists(self.keys.alive(home)).await)?;
        if !alive {
            return Ok(TokenHome::Lost);
        }
        Ok(TokenHome::Elsewhere(Box::new(RelayLink {
            id: self.next_request.fetch_add(1, Ordering::Relaxed),
            home: home.to_owned(),
            cluster: self,
        })))
    }

    /// Publishes on the ordered relay queue: frames and events of one connection keep their
    /// order.
    fn relay_publish(&self, node: &str, message: &NodeMessage) {
        let payload = serde_json::to_string(message).unwrap_or_default();
        let _ = self.relay_out.send((self.keys.node_channel(node), payload));
    }

    /// The task that publishes the relay queue, one message after the other.
    pub(super) async fn publish_relayed(
        self: Arc<Self>,
        mut queue: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    ) {
        while let Some((channel, payload)) = queue.recv().await {
            let _ = self.publish_now(&channel, &payload).await;
        }
    }

    /// The home: a relay asks to resume one of this node's clients over it.
    pub(super) async fn resume_relayed(
        self: &Arc<Self>,
        resume: RelayedResume,
        relay: RelayAddr,
    ) -> Result<(), ApiError> {
        self.ensure_system(&resume.system_id).await?;
        let system_id = resume.system_id.clone();
        // The id a refused resume's fresh session gets; written down like any new client's.
        let fresh_id = Backplane::new_client_id(&**self);
        let lease = self.lease_system(&system_id).await?;
        self.admit_client(&system_id, &fresh_id).await?;
        let settings = &self.relay_config;
        let outbox = Outbox::new(
            fresh_id.clone(),
            settings.max_outbound_queue,
            Some(settings.recovery_buffer),
            None,
            settings.metrics.clone(),
        );
        outbox.keep(Lease::holding(lease));
        // Counted here, where its state lives, so that it still counts once away (the relaying
        // node's place ends with its connection). Never refused: the relaying node admitted it.
        outbox.keep(settings.gate.admit_resume(Some(&system_id)));
        let actor = RelaySession {
            cluster: self.clone(),
            relay: relay.clone(),
            outbox: outbox.clone(),
        }
        .start();
        let session = SessionHandle::new(actor.clone().recipient(), outbox.clone());
        Self::lock(&self.remote_sessions).sessions.insert(
            relay,
            RemoteSession {
                system_id: system_id.clone(),
                outbox,
                stop: Box::new(move || actor.do_send(StopRelaying)),
            },
        );
        self.registry.do_send(m::Connect {
            system_id: Some(system_id),
            client_id: fresh_id,
            user_id: resume.user_id,
            session,
            recovery: m::RecoveryRequest::Resume {
                token: resume.token,
                last: resume.last,
                past_limits: false,
            },
        });
        Ok(())
    }

    /// The relay: what the home sends for one of its relayed connections.
    pub(super) fn to_relay(&self, id: u64, event: ToRelay) {
        let relays = Self::lock(&self.relays);
        let Some((session, _)) = relays.sessions.get(&id) else {
            return;
        };
        match event {
            ToRelay::Frames { frames } => {
                for frame in &frames {
                    if session.push(frame) == Pushed::Overflowed {
                        session.command(SessionCommand::Close {
                            kind: CloseReason::Slow,
                            reason: "slow consumer".into(),
                            frame: None,
                        });
                        break;
                    }
                }
            }
            ToRelay::Close {
                code,
                reason,
                frame,
            } => session.command(SessionCommand::Close {
                // No close frame for a code the server does not send (a drop).
                kind: CloseReason::from_code(code).unwrap_or(CloseReason::Heartbeat),
                reason,
                frame,
            }),
        }
    }

    /// The home: what a relay reports about one of this node's relayed sessions.
    pub(super) fn to_home(&self, from: RelayAddr, event: ToHome) {
        let mut remote = Self::lock(&self.remote_sessions);
        match event {
            ToHome::Message { text } => {
                if let Some(session) = remote.sessions.get(&from) {
                    self.registry.do_send(m::ClientMessage {
                        system_id: session.system_id.clone(),
                        client_id: session.outbox.client_id(),
                        text,
                    });
                }
            }
            ToHome::Gone { offline } => {
                if let Some(session) = remote.sessions.remove(&from) {
                    self.end_remote_session(session, offline);
                }
            }
        }
    }

    fn end_remote_session(&self, session: RemoteSession, offline: Offline) {
        (session.stop)();
        self.registry.do_send(m::Disconnect {
            system_id: session.system_id,
            client_id: session.outbox.client_id(),
            offline,
            outbox: session.outbox,
        });
    }

    /// Heartbeat: relayed connections whose other end's node died. A relay drops those whose
    /// home is gone (the client then learns it on its next resume); a home treats those whose
    /// relay is gone as lost connections.
    pub(super) async fn check_relay_peers(&self) -> Result<(), ApiError> {
        let homes: HashSet<String> = Self::lock(&self.relays)
            .sessions
            .values()
            .map(|(_, home)| home.clone())
            .collect();
        let relays: HashSet<String> = Self::lock(&self.remote_sessions)
            .sessions
            .keys()
            .map(|addr| addr.node.clone())
            .collect();
        let mut dead: HashSet<String> = HashSet::new();
        for node in homes.union(&relays) {
            let alive: bool = self.track(self.conn().exists(self.keys.alive(node)).await)?;
            if !alive {
                dead.insert(node.clone());
            }
        }
        if dead.is_empty() {
            return Ok(());
        }
        let dropped: Vec<SessionHandle> = {
            let mut relays = Self::lock(&self.relays);
            let gone: Vec<u64> = relays
                .sessions
                .iter()
                .filter(|(_, (_, home))| dead.contains(home))
                .map(|(id, _)| *id)
                .collect();
            gone.iter()
                .filter_map(|id| relays.sessions.remove(id))
                .map(|(session, _)| session)
                .collect()
        };
        for session in dropped {
            session.command(SessionCommand::Close {
                kind: CloseReason::Heartbeat,
                reason: "the client's node is gone".into(),
                frame: None,
            });
        }
        let ended: Vec<RemoteSession> = {
            let mut remote = Self::lock(&self.remote_sessions);
            let gone: Vec<RelayAddr> = remote
                .sessions
                .keys()
                .filter(|addr| dead.contains(&addr.node))
                .cloned()
                .collect();
            gone.iter()
                .filter_map(|addr| remote.sessions.remove(addr))
                .collect()
        };
        for session in ended {
            let lost = Offline::new(crate::actors::outward::OfflineReason::ConnectionLost, None);
            self.end_remote_session(session, lost);
        }
        Ok(())
    }
}

/// The relay's end of a relayed connection, held by its session.
struct RelayLink {
    cluster: Arc<Cluster>,
    home: String,
    id: u64,
}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLink")
            .field("home", &self.home)
            .field("id", &self.id)
            .finish()
    }
}

impl RelayLink {
    fn addr(&self) -> RelayAddr {
        RelayAddr {
            node: self.cluster.node_id.clone(),
            id: self.id,
        }
    }
}

impl Relay for RelayLink {
    fn open(
        &self,
        session: SessionHandle,
        resume: RelayedResume,
    ) -> LocalBoxFuture<'static, Result<(), ()>> {
        let (cluster, home, id, relay) = (
            self.cluster.clone(),
            self.home.clone(),
            self.id,
            self.addr(),
        );
        Box::pin(async move {
            Cluster::lock(&cluster.relays)
                .sessions
                .insert(id, (session, home.clone()));
            match cluster
                .request(&home, NodeCall::Resume { resume, relay })
                .await
            {
                Ok(_) => Ok(()),
                Err(err) => {
                    log::debug!("relayed resume to node {home} failed: {err}");
                    Cluster::lock(&cluster.relays).sessions.remove(&id);
                    Err(())
                }
            }
        })
    }

    fn client_message(&self, text: ByteString) {
        let message = NodeMessage::ToHome {
            from: self.addr(),
            event: ToHome::Message { text },
        };
        self.cluster.relay_publish(&self.home, &message);
    }

    fn gone(&self, offline: Offline) {
        Cluster::lock(&self.cluster.relays)
            .sessions
            .remove(&self.id);
        let message = NodeMessage::ToHome {
            from: self.addr(),
            event: ToHome::Gone { offline },
        };
        self.cluster.relay_publish(&self.home, &message);
    }
}

/// A relayed session's side of its outbox: yields every waiting frame at once, as one batch. (A
/// local session's connection reads its outbox itself:
/// [`ConnectionBody`](crate::actors::connection::ConnectionBody).)
struct OutboxStream(Arc<Outbox>);

impl Stream for OutboxStream {
    type Item = VecDeque<ByteString>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        // Register before looking, so a push that lands in between still wakes us.
        self.0.register(cx.waker());
        let batch = self.0.take_all();
        if batch.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Some(batch))
        }
    }
}

/// The home's end of a relayed connection: a session whose frames go to the relay.
pub(super) struct RelaySession {
    cluster: Arc<Cluster>,
    relay: RelayAddr,
    outbox: Arc<Outbox>,
}

impl RelaySession {
    fn send(&self, event: ToRelay) {
        let message = NodeMessage::ToRelay {
            id: self.relay.id,
            event,
        };
        self.cluster.relay_publish(&self.relay.node, &message);
    }
}

impl Actor for RelaySession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.add_stream(OutboxStream(self.outbox.clone()));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        Cluster::lock(&self.cluster.remote_sessions)
            .sessions
            .remove(&self.relay);
    }
}

impl StreamHandler<VecDeque<ByteString>> for RelaySession {
    fn handle(&mut self, frames: VecDeque<ByteString>, _: &mut Context<Self>) {
        if self.outbox.is_closing() {
            return;
        }
        self.send(ToRelay::Frames {
            frames: frames.into(),
        });
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<SessionCommand> for RelaySession {
    type Result = ();
    fn handle(&mut self, cmd: SessionCommand, ctx: &mut Context<Self>) {
        let SessionCommand::Close {
            kind,
            reason,
            frame,
        } = cmd;
        // As a local session: what was queued before the close goes first, but to a slow one.
        let queued = self.outbox.take_all();
        if kind != CloseReason::Slow && !queued.is_empty() {
            self.send(ToRelay::Frames {
                frames: queued.into(),
            });
        }
        self.outbox.start_closing();
        self.send(ToRelay::Close {
            code: kind.code(),
            reason,
            frame,
        });
        ctx.stop();
    }
}

/// The relayed connection is over: stop forwarding (the outbox stays with the registry).
#[derive(Message)]
#[rtype(result = "()")]
struct StopRelaying;

impl Handler<StopRelaying> for RelaySession {
    type Result = ();
    fn handle(&mut self, _: StopRelaying, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
