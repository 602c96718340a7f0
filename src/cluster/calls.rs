//! Requests to another node: a command on one of its clients (the method's own command type,
//! in its serde form, read back there by the [`Decoder`](crate::backplane::Decoder)), a system's
//! change, or a relayed resume; carried over the node's `node:` channel, answered on the
//! caller's channel with the reply's serde form or the error itself.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytestring::ByteString;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::actors::messages as m;
use crate::actors::outward::Offline;
use crate::actors::registry::SystemRegistry;
use crate::backplane::{Answer, Command, ReplyValue};
use crate::error::ApiError;
use crate::settings::SystemSettings;

use super::node::{owner_of, Cluster, RPC_TIMEOUT};
use super::node::{NodeAnswer, RelayAddr};

/// What one node asks of another.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub(super) enum NodeCall {
    /// A command on one of its clients: the method's name and the command's wire form, read
    /// back by the node's [`Decoder`](crate::backplane::Decoder) as the method's own type.
    Command { method: String, command: String },
    /// A system's settings changed: every node that knows the system takes them.
    Settings {
        system_id: String,
        settings: SystemSettings,
    },
    /// A system was unregistered: every node closes its clients with 4001 and forgets it.
    Unregister { system_id: String },
    /// Resume one of this node's clients over a connection another node relays.
    Resume {
        resume: crate::backplane::RelayedResume,
        relay: RelayAddr,
    },
}

/// From the home to the relay.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub(super) enum ToRelay {
    Frames {
        frames: Vec<ByteString>,
    },
    Close {
        code: Option<u16>,
        reason: String,
        frame: Option<ByteString>,
    },
}

/// From the relay to the home.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub(super) enum ToHome {
    Message { text: ByteString },
    Gone { offline: Offline },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(super) enum NodeMessage {
    Request {
        id: u64,
        reply_to: String,
        call: NodeCall,
    },
    Reply {
        id: u64,
        result: NodeAnswer,
    },
    /// To a node relaying a connection: frames or a close for it.
    ToRelay {
        id: u64,
        event: ToRelay,
    },
    /// To a client's node from the node relaying its connection.
    ToHome {
        from: RelayAddr,
        event: ToHome,
    },
}

pub(super) fn not_connected(client_id: &str) -> ApiError {
    m::RegistryError::UnknownClient(client_id.to_owned()).into()
}

impl Cluster {
    /// Runs `command` where `client_id` lives: here through the registry, elsewhere through
    /// its node.
    pub(super) async fn run_on_owner(
        &self,
        client_id: &str,
        command: Box<dyn Command>,
    ) -> Result<Answer, ApiError> {
        self.ensure_system(command.system_id()).await?;
        match owner_of(client_id) {
            Some(owner) if owner == self.node_id => self.execute(command).await.map(Answer::Here),
            Some(owner) => {
                let call = NodeCall::Command {
                    method: command.method().to_owned(),
                    command: command.encode(),
                };
                let reply = self.request(owner, call).await?;
                Ok(Answer::Remote(reply))
            }
            None => Err(not_connected(client_id)),
        }
    }

    /// Runs `command` here and, in its wire form, on every other live node, at once.
    pub(super) async fn run_on_every_node(
        &self,
        command: Box<dyn Command>,
    ) -> Result<Vec<Answer>, ApiError> {
        self.ensure_system(command.system_id()).await?;
        let nodes: Vec<String> = self.track(self.conn().smembers(self.keys.nodes()).await)?;
        let (method, encoded) = (command.method(), command.encode());
        let elsewhere = nodes
            .iter()
            .filter(|node| **node != self.node_id)
            .map(|node| {
                let call = NodeCall::Command {
                    method: method.to_owned(),
                    command: encoded.clone(),
                };
                self.request(node, call)
            });
        let (here, there) = futures_util::future::join(
            self.execute(command),
            futures_util::future::join_all(elsewhere),
        )
        .await;
        let mut answers = vec![Answer::Here(here?)];
        for answer in there {
            match answer {
                Ok(reply) => answers.push(Answer::Remote(reply)),
                // Nobody listens for that node: it is gone, and so are its clients.
                Err(ApiError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(answers)
    }

    pub(super) async fn request(&self, node: &str, call: NodeCall) -> NodeAnswer {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        Self::lock(&self.pending).insert(id, tx);
        let message = NodeMessage::Request {
            id,
            reply_to: self.keys.node_channel(&self.node_id),
            call,
        };
        let payload = serde_json::to_string(&message).unwrap_or_default();
        // Guarded: while any node resyncs, "nobody listens" may be a node not yet resubscribed.
        let receivers = self
            .publish_guarded(&self.keys.node_channel(node), &payload)
            .await;
        let receivers = match receivers {
            Ok(n) => n,
            Err(err) => {
                Self::lock(&self.pending).remove(&id);
                return Err(err);
            }
        };
        if receivers == 0 {
            // Nobody listens for that node: it is gone, and so are its clients.
            Self::lock(&self.pending).remove(&id);
            return Err(ApiError::NotFound(
                "the client's node is not running: it is not connected".into(),
            ));
        }
        match tokio::time::timeout(RPC_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            _ => {
                Self::lock(&self.pending).remove(&id);
                Err(ApiError::Unavailable(format!(
                    "node {node} did not answer in time; retry later"
                )))
            }
        }
    }

    /// Runs a command on one of this node's clients, through this node's registry.
    pub(super) async fn execute(
        &self,
        command: Box<dyn Command>,
    ) -> Result<Box<dyn ReplyValue>, ApiError> {
        // The caller checked the system; this node may not have met it yet. A client of another
        // system is then simply not connected in this one (404), as on a single node.
        self.ensure_system(command.system_id()).await?;
        let changes_membership = command.changes_membership();
        if changes_membership {
            // These change what Redis holds: refused up front while it cannot be written,
            // rather than changed here and reported as failed.
            self.check_ready()?;
        }
        let reply = command.apply(&self.registry).await?;
        if changes_membership {
            // Answered once Redis has the change, so every node reads it at once.
            self.written().await?;
        }
        Ok(reply)
    }

    /// Carries out what another node asked of this one.
    pub(super) async fn answer(&self, call: NodeCall) -> NodeAnswer {
        let done = || "null".to_owned();
        match call {
            NodeCall::Command { method, command } => {
                let command = (self.decoder)(&method, &command).map_err(|err| {
                    ApiError::BadRequest(format!("unreadable {method} command: {err}"))
                })?;
                Ok(self.execute(command).await?.encode())
            }
            // About the system itself: nothing to do here unless this node knows it.
            NodeCall::Settings {
                system_id,
                settings,
            } => self
                .take_settings(system_id, settings)
                .await
                .map(|_| done()),
            NodeCall::Unregister { system_id } => {
                self.forget_system(system_id).await.map(|_| done())
            }
            // Only ever sent to another node (see `on_node_message`).
            NodeCall::Resume { .. } => Err(ApiError::Unavailable("not a local operation".into())),
        }
    }

    /// Runs a directory command in this node's registry.
    pub(super) async fn local<M, T>(&self, cmd: M) -> Result<T, ApiError>
    where
        M: actix::Message<Result = m::RegistryResult<T>> + Send + 'static,
        T: Send + 'static,
        SystemRegistry: actix::Handler<M>,
    {
        Ok(self.registry.send(cmd).await??)
    }

    /// A message on this node's own channel: a reply to one of its requests, or a request to
    /// run an operation on one of its clients.
    pub(super) fn on_node_message(self: &Arc<Self>, payload: &str) {
        match serde_json::from_str::<NodeMessage>(payload) {
            Ok(NodeMessage::Reply { id, result }) => {
                if let Some(waiter) = Self::lock(&self.pending).remove(&id) {
                    let _ = waiter.send(result);
                }
            }
            Ok(NodeMessage::Request { id, reply_to, call }) => {
                let cluster = self.clone();
                actix_web::rt::spawn(async move {
                    let result = match call {
                        NodeCall::Resume { resume, relay } => cluster
                            .resume_relayed(resume, relay)
                            .await
                            .map(|_| "null".to_owned()),
                        call => cluster.answer(call).await,
                    };
                    let reply = serde_json::to_string(&NodeMessage::Reply { id, result })
                        .unwrap_or_default();
                    let _ = cluster.publish_now(&reply_to, &reply).await;
                });
            }
            // In order, here: a relayed connection's frames keep the order they were sent in.
            Ok(NodeMessage::ToRelay { id, event }) => self.to_relay(id, event),
            Ok(NodeMessage::ToHome { from, event }) => self.to_home(from, event),
            Err(err) => log::debug!("unreadable cluster message: {err}"),
        }
    }
}
