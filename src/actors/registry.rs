//! The `SystemRegistry` actor: the single source of truth for systems, clients and groups.
//!
//! Every change of state goes through this one actor, so each REST call sees and makes a
//! consistent change: nothing is half-applied. The state itself is plain data, a
//! [`Tenant`] per system that keeps the rules (see [`super::tenant`]); the handlers here look
//! the system up, call one `Tenant` method, and carry out what it returns: a `Join` or `Leave`
//! for a group's supervised [`Group`] actor (which does the fan-out), a close for a session, an
//! [`Event`] for the cluster. Pushes to one client or a whole system go straight to the
//! sessions' outboxes. No handler here awaits a session. In cluster mode the registry still holds
//! only this node's clients, and reports every change to them to the cluster's writer, in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, AsyncContext, Context, Handler, MessageResult, Recipient, Supervisor};
use bytestring::ByteString;

mod systems;

use super::events::{Event, EventSink};
use super::group::Group;
use super::messages::*;
use super::outbox::{Pushed, SessionCommand, SessionHandle};
use super::tenant::{MembershipLimits, Removed, Tenant};
use crate::metrics::Metrics;
use crate::protocol::{self, ClientInfo, CloseReason, OnlineList};
use crate::store::{StoreError, SystemStore};

/// What the registry enforces, fixed at start.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub limits: MembershipLimits,
    /// How long a slow consumer's frozen session may keep its socket after being evicted.
    pub slow_close_grace: Duration,
    /// Where changes to this node's clients are reported, in order, if anything mirrors them
    /// (in cluster mode, the writer that keeps Redis up to date).
    pub events: Option<EventSink>,
}

/// A system's state as the registry holds it: sessions reached through their outboxes, groups
/// through their actors.
pub(super) type SystemState = Tenant<SessionHandle, Addr<Group>>;

pub struct SystemRegistry {
    /// systemId → its state.
    pub(super) systems: HashMap<String, SystemState>,
    /// Where systems and their settings are kept across restarts (single node). Written in the
    /// registry's own turn, before the reply: system changes are rare, and this keeps them in the
    /// order the registry decided them and makes a 200 mean "durable".
    store: SystemStore,
    settings: RegistrySettings,
    metrics: Arc<Metrics>,
    /// Set by [`Shutdown`]: from then on new connections are refused.
    shutting_down: bool,
}

impl Actor for SystemRegistry {
    type Context = Context<Self>;
}

impl SystemRegistry {
    /// A registry holding the systems `store` kept.
    pub fn new(
        settings: RegistrySettings,
        metrics: Arc<Metrics>,
        store: SystemStore,
    ) -> Result<Self, StoreError> {
        let systems = store
            .load()?
            .into_iter()
            .map(|(system_id, settings)| (system_id, Tenant::new(settings)))
            .collect();
        Ok(SystemRegistry {
            systems,
            store,
            settings,
            metrics,
            shutting_down: false,
        })
    }

    fn tenant(&mut self, system_id: &str) -> RegistryResult<&mut SystemState> {
        self.systems
            .get_mut(system_id)
            .ok_or_else(|| RegistryError::UnknownSystem(system_id.to_owned()))
    }

    /// Cluster mode: passes a change on to be written to Redis.
    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.settings.events {
            let _ = sink.send(event());
        }
    }

    /// Removes a client: its remaining groups get the 1002 notice, the cluster is told, nothing
    /// more is queued for its session. Returns the session, to be closed by the caller.
    fn remove_client(&mut self, system_id: &str, client_id: &str) -> Option<SessionHandle> {
        let Removed {
            session,
            groups,
            notice,
            remaining,
        } = self.systems.get_mut(system_id)?.remove(client_id)?;
        if let Some(notice) = &notice {
            for group in remaining {
                group.do_send(Leave {
                    client_id: client_id.to_owned(),
                    notice: notice.clone(),
                });
            }
        }
        session.start_closing();
        self.emit(|| Event::Gone {
            system_id: system_id.to_owned(),
            client_id: client_id.to_owned(),
            groups,
            notice,
        });
        Some(session)
    }

    /// Removes a client whose outbound queue overflowed and closes it with 4008. Its session may
    /// be frozen (it only runs while its socket takes data), so if it has not gone within the
    /// grace period its socket is shut down from here.
    fn evict_slow(&mut self, ctx: &mut Context<Self>, system_id: &str, client_id: &str) {
        let Some(session) = self.remove_client(system_id, client_id) else {
            return;
        };
        log::warn!("client {client_id} of system '{system_id}' closed as a slow consumer");
        self.close(&session, CloseReason::Slow, "slow consumer");
        ctx.run_later(self.settings.slow_close_grace, move |_, _| {
            session.shut_down_socket();
        });
    }

    /// Closes every client of a system at once, its groups first (which spares everyone the
    /// 1002 storm of a mass disconnect). Returns how many were closed.
    fn close_all(
        &mut self,
        system_id: &str,
        tenant: &mut SystemState,
        why: CloseReason,
        reason: &str,
    ) -> usize {
        let clients = tenant.drain();
        let count = clients.len();
        for (client_id, client) in clients {
            // Other nodes' members still hear that these clients went offline.
            let notice = (!client.groups.is_empty()).then(|| {
                protocol::presence_frame(false, &client_id, &client.user_id, &client.extend)
            });
            self.emit(|| Event::Gone {
                system_id: system_id.to_owned(),
                client_id: client_id.clone(),
                groups: client.groups.iter().cloned().collect(),
                notice,
            });
            client.session.start_closing();
            self.close(&client.session, why, reason);
        }
        count
    }

    fn close(&self, session: &SessionHandle, why: CloseReason, reason: &str) {
        self.metrics.client_closed(why);
        session.command(SessionCommand::Close {
            kind: why,
            reason: reason.into(),
            frame: None,
        });
    }

    /// Pushes `frame` to each of `client_ids` that is connected, once each, evicting those that
    /// overflow. Returns the ids that are not connected.
    fn push_to_clients(
        &mut self,
        ctx: &mut Context<Self>,
        system_id: &str,
        client_ids: &[String],
        frame: &ByteString,
    ) -> RegistryResult<Vec<String>> {
        let tenant = self.tenant(system_id)?;
        let mut missing = Vec::new();
        let mut overflowed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for client_id in client_ids {
            // A clientId listed twice still gets the message once.
            if !seen.insert(client_id) {
                continue;
            }
            match tenant.clients().get(client_id) {
                Some(client) if client.session.push(frame) == Pushed::Overflowed => {
                    overflowed.push(client_id.clone())
                }
                Some(_) => {}
                None => missing.push(client_id.clone()),
            }
        }
        for client_id in overflowed {
            self.evict_slow(ctx, system_id, &client_id);
        }
        Ok(missing)
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl Handler<Connect> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        let refusal = if self.shutting_down {
            Err("the server is shutting down".to_owned())
        } else {
            match msg.system_id.as_deref().filter(|s| !s.is_empty()) {
                None => Err("systemId is required: pass ?systemId=... or a SystemId header".into()),
                Some(system_id) if !self.systems.contains_key(system_id) => {
                    Err(format!("system '{system_id}' is not registered"))
                }
                Some(system_id) => Ok(system_id.to_owned()),
            }
        };
        let system_id = match refusal {
            Ok(system_id) => system_id,
            Err(reason) => {
                // In cluster mode the handshake wrote the client to Redis already: take it back.
                if let Some(system_id) = &msg.system_id {
                    self.emit(|| Event::Gone {
                        system_id: system_id.clone(),
                        client_id: msg.client_id.clone(),
                        groups: Vec::new(),
                        notice: None,
                    });
                }
                msg.session.command(SessionCommand::Close {
                    kind: CloseReason::Refused,
                    frame: Some(protocol::refusal_frame(&reason)),
                    reason,
                });
                return;
            }
        };
        log::debug!("client {} connected to system '{system_id}'", msg.client_id);
        // Pushed before any other frame can be addressed to this client: the welcome is first.
        msg.session.push(&protocol::welcome_frame(&msg.client_id));
        if let Some(tenant) = self.systems.get_mut(&system_id) {
            let user_id = msg.user_id.unwrap_or_default();
            tenant.connect(msg.client_id, msg.session, user_id, now_millis());
        }
    }
}

impl Handler<Disconnect> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.remove_client(&msg.system_id, &msg.client_id);
    }
}

impl Handler<SendToClient> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: SendToClient, ctx: &mut Context<Self>) -> Self::Result {
        let client = self.tenant(&msg.system_id)?.client(&msg.client_id)?;
        if client.session.push(&msg.frame) == Pushed::Overflowed {
            self.evict_slow(ctx, &msg.system_id, &msg.client_id);
        }
        Ok(())
    }
}

impl Handler<SendToClients> for SystemRegistry {
    type Result = RegistryResult<Vec<String>>;
    fn handle(&mut self, msg: SendToClients, ctx: &mut Context<Self>) -> Self::Result {
        self.push_to_clients(ctx, &msg.system_id, &msg.client_ids, &msg.frame)
    }
}

impl Handler<SendToGroup> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, msg: SendToGroup, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        Ok(match tenant.groups().get(&msg.group_name) {
            Some(entry) => {
                entry.fan_out.do_send(Broadcast { frame: msg.frame });
                entry.members.len()
            }
            None => 0,
        })
    }
}

impl Handler<SendToSystem> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, msg: SendToSystem, ctx: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let overflowed: Vec<String> = tenant
            .clients()
            .iter()
            .filter(|(_, client)| client.session.push(&msg.frame) == Pushed::Overflowed)
            .map(|(id, _)| id.clone())
            .collect();
        let count = tenant.clients().len();
        for client_id in overflowed {
            self.evict_slow(ctx, &msg.system_id, &client_id);
        }
        Ok(count)
    }
}

impl Handler<BindToGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: BindToGroup, ctx: &mut Context<Self>) -> Self::Result {
        let overflow: Recipient<ClientOverflowed> = ctx.address().recipient();
        let limits = self.settings.limits;
        let system_id = msg.system_id.clone();
        let group_name = msg.group_name.clone();
        let bound = self.tenant(&msg.system_id)?.bind(
            &msg.client_id,
            &msg.group_name,
            msg.user_id,
            msg.extend,
            limits,
            || {
                let group = Group::new(&system_id, &group_name, overflow);
                Supervisor::start(move |_| group)
            },
        )?;
        let notice = bound.joined.as_ref().map(|joined| joined.notice.clone());
        self.emit(|| Event::Bound {
            system_id: msg.system_id,
            client_id: msg.client_id.clone(),
            group_name: msg.group_name,
            all_groups: bound.all_groups,
            user_id: bound.user_id,
            extend: bound.extend,
            notice,
        });
        if let Some(joined) = bound.joined {
            joined.fan_out.do_send(Join {
                client_id: msg.client_id,
                session: joined.session,
                notice: joined.notice,
            });
        }
        Ok(())
    }
}

impl Handler<UnbindFromGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: UnbindFromGroup, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let Some(left) = tenant.unbind(&msg.client_id, &msg.group_name)? else {
            return Ok(()); // Not a member: nothing to undo.
        };
        if let Some(group) = &left.fan_out {
            group.do_send(Leave {
                client_id: msg.client_id.clone(),
                notice: left.notice.clone(),
            });
        }
        self.emit(|| Event::Unbound {
            system_id: msg.system_id,
            client_id: msg.client_id,
            group_name: msg.group_name,
            notice: left.notice,
        });
        Ok(())
    }
}

impl Handler<GetOnlineList> for SystemRegistry {
    type Result = RegistryResult<OnlineList>;
    fn handle(&mut self, msg: GetOnlineList, _: &mut Context<Self>) -> Self::Result {
        Ok(self.tenant(&msg.system_id)?.online_list(&msg.group_name))
    }
}

impl Handler<GetAllGroups> for SystemRegistry {
    type Result = RegistryResult<BTreeMap<String, Vec<String>>>;
    fn handle(&mut self, msg: GetAllGroups, _: &mut Context<Self>) -> Self::Result {
        Ok(self.tenant(&msg.system_id)?.all_groups())
    }
}

impl Handler<CloseClient> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: CloseClient, _: &mut Context<Self>) -> Self::Result {
        self.tenant(&msg.system_id)?;
        // Removed now, so the reply already reflects it; the session's own Disconnect, when it
        // stops, then finds nothing left to do.
        let session = self
            .remove_client(&msg.system_id, &msg.client_id)
            .ok_or_else(|| RegistryError::UnknownClient(msg.client_id.clone()))?;
        self.close(&session, CloseReason::Rest, "closed by the server");
        Ok(())
    }
}

impl Handler<GetClientInfo> for SystemRegistry {
    type Result = RegistryResult<ClientInfo>;
    fn handle(&mut self, msg: GetClientInfo, _: &mut Context<Self>) -> Self::Result {
        Ok(self.tenant(&msg.system_id)?.client_info(msg.client_id))
    }
}

impl Handler<GetStats> for SystemRegistry {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = RegistryStats {
            systems: self.systems.len(),
            ..RegistryStats::default()
        };
        for tenant in self.systems.values() {
            stats.clients += tenant.clients().len();
            stats.groups += tenant.groups().len();
        }
        MessageResult(stats)
    }
}

impl Handler<GetSystemClients> for SystemRegistry {
    type Result = MessageResult<GetSystemClients>;
    fn handle(&mut self, _: GetSystemClients, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.systems
                .iter()
                .map(|(id, tenant)| (id.clone(), tenant.clients().len()))
                .collect(),
        )
    }
}

impl Handler<ClientOverflowed> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: ClientOverflowed, ctx: &mut Context<Self>) {
        self.evict_slow(ctx, &msg.system_id, &msg.client_id);
    }
}

impl Handler<Shutdown> for SystemRegistry {
    type Result = usize;
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> usize {
        self.shutting_down = true;
        let mut closed = 0;
        let systems = std::mem::take(&mut self.systems);
        for (system_id, mut tenant) in systems {
            closed += self.close_all(
                &system_id,
                &mut tenant,
                CloseReason::Shutdown,
                "server shutting down",
            );
            // The system stays registered; only its clients are gone.
            self.systems.insert(system_id, tenant);
        }
        closed
    }
}

impl Handler<ResyncCluster> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, _: ResyncCluster, _: &mut Context<Self>) {
        for (system_id, tenant) in &self.systems {
            for (client_id, client) in tenant.clients() {
                self.emit(|| Event::Connected {
                    system_id: system_id.clone(),
                    client_id: client_id.clone(),
                });
                // One event carries the client's whole membership.
                if let Some(first_group) = client.groups.first() {
                    self.emit(|| Event::Bound {
                        system_id: system_id.clone(),
                        client_id: client_id.clone(),
                        group_name: first_group.clone(),
                        all_groups: client.groups.iter().cloned().collect(),
                        user_id: client.user_id.clone(),
                        extend: client.extend.clone(),
                        notice: None,
                    });
                }
            }
        }
    }
}
