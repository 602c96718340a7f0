//! Requests to the node that owns a client: the registry's own command, carried over the
//! owner's `node:` channel, run by its registry, answered on the caller's channel.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytestring::ByteString;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::actors::messages as m;
use crate::actors::registry::SystemRegistry;
use crate::error::ApiError;
use crate::protocol::ClientInfo;
use crate::webhooks::Offline;

use super::node::RelayAddr;
use super::node::{owner_of, Cluster, RPC_TIMEOUT};
use super::scripts::PUBLISH;

/// An operation on a client, carried to the node that owns it: the very command the owner's
/// registry handles, so the wire form is the command's own serde form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", content = "cmd", rename_all = "snake_case")]
pub(super) enum Op {
    Send(m::SendToClient),
    SendMany(m::SendToClients),
    Bind(m::BindToGroup),
    Unbind(m::UnbindFromGroup),
    Close(m::CloseClient),
    Info(m::GetClientInfo),
    /// A system's settings changed: every node that knows the system takes them.
    Settings(m::UpdateSystem),
    /// A system was unregistered: every node closes its clients with 4001 and forgets it.
    Unregister(m::Unregister),
    /// Resume one of this node's clients over a connection another node relays.
    Resume {
        resume: crate::backplane::RelayedResume,
        relay: RelayAddr,
    },
}

impl Op {
    fn system_id(&self) -> &str {
        match self {
            Op::Send(cmd) => &cmd.system_id,
            Op::SendMany(cmd) => &cmd.system_id,
            Op::Bind(cmd) => &cmd.system_id,
            Op::Unbind(cmd) => &cmd.system_id,
            Op::Close(cmd) => &cmd.system_id,
            Op::Info(cmd) => &cmd.system_id,
            Op::Settings(cmd) => &cmd.system_id,
            Op::Unregister(cmd) => &cmd.system_id,
            Op::Resume { resume, .. } => &resume.system_id,
        }
    }
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
        op: Op,
    },
    Reply {
        id: u64,
        result: Result<serde_json::Value, (u16, String)>,
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

pub(super) fn client_info_from(value: serde_json::Value, client_id: String) -> ClientInfo {
    if value["online"] != serde_json::Value::Bool(true) {
        return ClientInfo::Offline {
            online: false,
            client_id,
        };
    }
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
    ClientInfo::Online {
        online: true,
        client_id,
        user_id: text("userId"),
        extend: text("extend"),
        groups: value["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        connected_at: value["connectedAt"].as_u64().unwrap_or_default(),
        connected: value["connected"].as_bool().unwrap_or(true),
    }
}

impl Cluster {
    /// Runs `op` where `client_id` lives: here through the registry, elsewhere through its node.
    pub(super) async fn on_owner(
        &self,
        client_id: &str,
        op: Op,
    ) -> Result<serde_json::Value, ApiError> {
        self.ensure_system(op.system_id()).await?;
        match owner_of(client_id) {
            Some(owner) if owner == self.node_id => self.execute(op).await,
            Some(owner) => self.request(owner, op).await,
            None => Err(not_connected(client_id)),
        }
    }

    pub(super) async fn request(&self, node: &str, op: Op) -> Result<serde_json::Value, ApiError> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        Self::lock(&self.pending).insert(id, tx);
        let message = NodeMessage::Request {
            id,
            reply_to: self.keys.node_channel(&self.node_id),
            op,
        };
        let payload = serde_json::to_string(&message).unwrap_or_default();
        // Guarded: while any node resyncs, "nobody listens" may be a node not yet resubscribed.
        let receivers = self
            .run_guarded(&PUBLISH, &[], &[&self.keys.node_channel(node), &payload])
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
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err((status, msg)))) => Err(ApiError::from_status(status, msg)),
            _ => {
                Self::lock(&self.pending).remove(&id);
                Err(ApiError::Unavailable(format!(
                    "node {node} did not answer in time; retry later"
                )))
            }
        }
    }

    /// Carries out an operation on local clients: the command goes to this node's registry.
    pub(super) async fn execute(&self, op: Op) -> Result<serde_json::Value, ApiError> {
        let op = match op {
            // About the system itself: nothing to do here unless this node knows it.
            Op::Settings(cmd) => return self.take_settings(cmd).await.map(|_| Default::default()),
            Op::Unregister(cmd) => {
                return self.forget_system(cmd).await.map(|_| Default::default())
            }
            // Only ever sent to another node (see `on_node_message`).
            Op::Resume { .. } => return Err(ApiError::Unavailable("not a local operation".into())),
            op => op,
        };
        // The caller checked the system; this node may not have met it yet. A client of another
        // system is then simply not connected in this one (404), as on a single node.
        self.ensure_system(op.system_id()).await?;
        let changes_membership = matches!(op, Op::Bind(_) | Op::Unbind(_) | Op::Close(_));
        if changes_membership {
            // These change what Redis holds: refused up front while it cannot be written,
            // rather than changed here and reported as failed.
            self.check_ready()?;
        }
        let value = match op {
            Op::Send(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::SendMany(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Info(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Bind(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Unbind(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Close(cmd) => serde_json::to_value(self.local(cmd).await?),
            Op::Settings(_) | Op::Unregister(_) | Op::Resume { .. } => Ok(serde_json::Value::Null),
        };
        if changes_membership {
            // Answered once Redis has the change, so every node reads it at once.
            self.written().await?;
        }
        Ok(value.unwrap_or_default())
    }

    /// Runs a command in this node's registry.
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
            Ok(NodeMessage::Request { id, reply_to, op }) => {
                let cluster = self.clone();
                actix_web::rt::spawn(async move {
                    let result = match op {
                        Op::Resume { resume, relay } => cluster
                            .resume_relayed(resume, relay)
                            .await
                            .map(|_| serde_json::Value::Null),
                        op => cluster.execute(op).await,
                    };
                    let result = result.map_err(|err| {
                        (
                            actix_web::ResponseError::status_code(&err).as_u16(),
                            err.to_string(),
                        )
                    });
                    let reply = serde_json::to_string(&NodeMessage::Reply { id, result })
                        .unwrap_or_default();
                    let sent: redis::RedisResult<i64> =
                        cluster.conn().publish(reply_to, reply).await;
                    let _ = cluster.track(sent);
                });
            }
            // In order, here: a relayed connection's frames keep the order they were sent in.
            Ok(NodeMessage::ToRelay { id, event }) => self.to_relay(id, event),
            Ok(NodeMessage::ToHome { from, event }) => self.to_home(from, event),
            Err(err) => log::debug!("unreadable cluster message: {err}"),
        }
    }
}
