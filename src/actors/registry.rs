//! The `SystemRegistry` actor: the single source of truth for systems, clients and groups.
//!
//! Every change of state goes through this one actor, so each REST call sees and makes a
//! consistent change: nothing is half-applied, and a client's group list always matches the
//! groups' member lists. Fan-out to a group is handed to that group's supervised [`Group`] actor;
//! pushes to one client or a whole system go straight to the sessions' outboxes. No handler here
//! awaits a session. In cluster mode the registry still holds only this node's clients, and
//! reports every change to them to the [`crate::cluster`] writer, in order.

use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::{
    Actor, Addr, AsyncContext, Context, Handler, MessageResult, ResponseFuture, Supervisor,
};
use bytestring::ByteString;

use super::events::{Event, EventSink};
use super::group::Group;
use super::messages::*;
use super::outbox::{Pushed, SessionCommand, SessionHandle};
use crate::metrics::Metrics;
use crate::protocol::{self, ClientInfo, CloseReason, OnlineClient, OnlineList};

/// What the registry enforces, fixed at start.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub max_groups_per_client: usize,
    pub max_clients_per_group: Option<usize>,
    /// How long a slow consumer's frozen session may keep its socket after being evicted.
    pub slow_close_grace: Duration,
    /// Cluster mode: where changes to local clients go, in order, to be written to Redis.
    pub cluster: Option<EventSink>,
}

/// One connected client.
struct Client {
    session: SessionHandle,
    user_id: String,
    extend: String,
    /// The groups it is in; kept equal to the groups whose `members` contain it.
    groups: BTreeSet<String>,
    /// Unix time in milliseconds.
    connected_at: u64,
}

/// One group: the registry's membership list and the address of the actor that fans out.
struct GroupEntry {
    members: BTreeSet<String>,
    /// The only strong address of the group's actor; dropping it lets the actor stop.
    actor: Addr<Group>,
}

/// One registered system (tenant). Nothing in it refers outside it.
#[derive(Default)]
struct Tenant {
    clients: HashMap<String, Client>,
    groups: BTreeMap<String, GroupEntry>,
}

pub struct SystemRegistry {
    /// systemId → tenant. Systems are never removed while the process runs.
    systems: HashMap<String, Tenant>,
    settings: RegistrySettings,
    metrics: Arc<Metrics>,
    /// Set by [`Shutdown`]: from then on new connections are refused.
    shutting_down: bool,
}

impl Actor for SystemRegistry {
    type Context = Context<Self>;
}

impl SystemRegistry {
    pub fn new(settings: RegistrySettings, metrics: Arc<Metrics>) -> Self {
        SystemRegistry {
            systems: HashMap::new(),
            settings,
            metrics,
            shutting_down: false,
        }
    }

    /// Removes a client whose outbound queue overflowed and closes it with 4008. Its session may
    /// be frozen (it only runs while its socket takes data), so if it has not gone within the
    /// grace period its socket is shut down from here.
    fn evict_slow(&mut self, ctx: &mut Context<Self>, system_id: &str, client_id: &str) {
        let Some(session) = self.remove_client(system_id, client_id) else {
            return;
        };
        log::warn!("client {client_id} of system '{system_id}' closed as a slow consumer");
        self.metrics.client_closed(CloseReason::Slow);
        session.command(SessionCommand::Close {
            kind: CloseReason::Slow,
            reason: "slow consumer".into(),
            frame: None,
        });
        ctx.run_later(self.settings.slow_close_grace, move |_, _| {
            session.shut_down_socket();
        });
    }

    /// Cluster mode: passes a change on to be written to Redis.
    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.settings.cluster {
            let _ = sink.send(event());
        }
    }

    /// Removes a client, telling the cluster (with the 1002 notice its groups got).
    fn remove_client(&mut self, system_id: &str, client_id: &str) -> Option<SessionHandle> {
        let tenant = self.systems.get_mut(system_id)?;
        let (session, groups, notice) = tenant.remove_client(client_id)?;
        self.emit(|| Event::Gone {
            system_id: system_id.to_owned(),
            client_id: client_id.to_owned(),
            groups,
            notice,
        });
        Some(session)
    }

    /// Pushes a frame to every local client of a system, evicting those that overflow.
    /// Returns how many clients it went to.
    fn push_to_system(
        &mut self,
        ctx: &mut Context<Self>,
        system_id: &str,
        frame: &ByteString,
    ) -> usize {
        let Some(tenant) = self.systems.get(system_id) else {
            return 0;
        };
        let overflowed: Vec<String> = tenant
            .clients
            .iter()
            .filter(|(_, client)| client.session.push(frame) == Pushed::Overflowed)
            .map(|(id, _)| id.clone())
            .collect();
        let count = tenant.clients.len();
        for client_id in overflowed {
            self.evict_slow(ctx, system_id, &client_id);
        }
        count
    }

    fn tenant(&mut self, system_id: &str) -> RegistryResult<&mut Tenant> {
        self.systems
            .get_mut(system_id)
            .ok_or_else(|| RegistryError::UnknownSystem(system_id.to_owned()))
    }
}

impl Tenant {
    fn client(&self, client_id: &str) -> RegistryResult<&Client> {
        self.clients
            .get(client_id)
            .ok_or_else(|| RegistryError::UnknownClient(client_id.to_owned()))
    }

    /// Removes `client_id` from `group_name` and tells the remaining members; drops the group
    /// (and so its actor) when it empties. The caller updates the client's own group list.
    fn leave_group(&mut self, client_id: &str, group_name: &str, notice: &ByteString) {
        let Some(entry) = self.groups.get_mut(group_name) else {
            return;
        };
        entry.members.remove(client_id);
        if entry.members.is_empty() {
            // Nobody is left to notify; dropping the address ends the actor.
            self.groups.remove(group_name);
        } else {
            entry.actor.do_send(Leave {
                client_id: client_id.to_owned(),
                notice: notice.clone(),
            });
        }
    }

    /// Removes a client entirely, sending 1002 to each group it was in. Returns its session,
    /// the groups it was in and the notice they got.
    fn remove_client(
        &mut self,
        client_id: &str,
    ) -> Option<(SessionHandle, Vec<String>, Option<ByteString>)> {
        let client = self.clients.remove(client_id)?;
        let mut notice = None;
        if !client.groups.is_empty() {
            let frame = protocol::presence_frame(false, client_id, &client.user_id, &client.extend);
            for group_name in &client.groups {
                self.leave_group(client_id, group_name, &frame);
            }
            notice = Some(frame);
        }
        // Nothing more is queued for it, whatever still holds its handle.
        client.session.start_closing();
        Some((client.session, client.groups.into_iter().collect(), notice))
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
        let cluster = self.settings.cluster.clone();
        let refuse = |reason: String| {
            // In cluster mode the handshake wrote the client to Redis already: take it back.
            if let (Some(sink), Some(system_id)) = (&cluster, &msg.system_id) {
                let _ = sink.send(Event::Gone {
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
        };
        if self.shutting_down {
            refuse("the server is shutting down".into());
            return;
        }
        let Some(system_id) = msg.system_id.as_deref().filter(|s| !s.is_empty()) else {
            refuse("systemId is required: pass ?systemId=... or a SystemId header".into());
            return;
        };
        let Ok(tenant) = self.tenant(system_id) else {
            refuse(format!("system '{system_id}' is not registered"));
            return;
        };
        log::debug!("client {} connected to system '{system_id}'", msg.client_id);
        // Pushed before any other frame can be addressed to this client: the welcome is first.
        // (In cluster mode the handshake has written the client to Redis already.)
        msg.session.push(&protocol::welcome_frame(&msg.client_id));
        tenant.clients.insert(
            msg.client_id,
            Client {
                session: msg.session,
                user_id: msg.user_id.unwrap_or_default(),
                extend: String::new(),
                groups: BTreeSet::new(),
                connected_at: now_millis(),
            },
        );
    }
}

impl Handler<Disconnect> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.remove_client(&msg.system_id, &msg.client_id);
    }
}

impl Handler<Register> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        match self.systems.entry(msg.system_id) {
            std::collections::hash_map::Entry::Occupied(e) => {
                Err(RegistryError::SystemExists(e.key().clone()))
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                log::info!("system '{}' registered", e.key());
                e.insert(Tenant::default());
                Ok(())
            }
        }
    }
}

impl Handler<SendToClient> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: SendToClient, ctx: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let client = tenant.client(&msg.client_id)?;
        if client.session.push(&msg.frame) == Pushed::Overflowed {
            self.evict_slow(ctx, &msg.system_id, &msg.client_id);
        }
        Ok(())
    }
}

impl Handler<SendToClients> for SystemRegistry {
    type Result = RegistryResult<Vec<String>>;
    fn handle(&mut self, msg: SendToClients, ctx: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let mut missing = Vec::new();
        let mut overflowed = Vec::new();
        let mut seen = BTreeSet::new();
        for client_id in &msg.client_ids {
            // A clientId listed twice still gets the message once.
            if !seen.insert(client_id) {
                continue;
            }
            match tenant.clients.get(client_id) {
                Some(client) => {
                    if client.session.push(&msg.frame) == Pushed::Overflowed {
                        overflowed.push(client_id);
                    }
                }
                None => missing.push(client_id.clone()),
            }
        }
        for client_id in overflowed {
            self.evict_slow(ctx, &msg.system_id, client_id);
        }
        Ok(missing)
    }
}

impl Handler<SendToGroup> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, msg: SendToGroup, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        Ok(match tenant.groups.get(&msg.group_name) {
            Some(entry) => {
                entry.actor.do_send(Broadcast { frame: msg.frame });
                entry.members.len()
            }
            None => 0,
        })
    }
}

impl Handler<SendToSystem> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, msg: SendToSystem, ctx: &mut Context<Self>) -> Self::Result {
        self.tenant(&msg.system_id)?;
        Ok(self.push_to_system(ctx, &msg.system_id, &msg.frame))
    }
}

impl Handler<BindToGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: BindToGroup, ctx: &mut Context<Self>) -> Self::Result {
        let overflow_recipient = ctx.address().recipient();
        let cluster = self.settings.cluster.clone();
        let max_groups = self.settings.max_groups_per_client;
        let max_members = self.settings.max_clients_per_group;
        let tenant = self.tenant(&msg.system_id)?;
        let members_now = tenant
            .groups
            .get(&msg.group_name)
            .map_or(0, |entry| entry.members.len());
        let client = tenant
            .clients
            .get_mut(&msg.client_id)
            .ok_or_else(|| RegistryError::UnknownClient(msg.client_id.clone()))?;
        let already_member = client.groups.contains(&msg.group_name);
        // Limits are checked before anything changes: a refused bind changes nothing.
        if !already_member {
            if client.groups.len() >= max_groups {
                return Err(RegistryError::TooManyGroups {
                    client_id: msg.client_id,
                    limit: max_groups,
                });
            }
            if let Some(limit) = max_members.filter(|limit| members_now >= *limit) {
                return Err(RegistryError::GroupFull {
                    group_name: msg.group_name,
                    limit,
                });
            }
        }
        // userId and extend belong to the client: the last bind wins, even a repeated one.
        client.user_id = msg.user_id;
        client.extend = msg.extend;
        client.groups.insert(msg.group_name.clone());
        let notice = (!already_member).then(|| {
            protocol::presence_frame(true, &msg.client_id, &client.user_id, &client.extend)
        });
        if let Some(sink) = &cluster {
            let _ = sink.send(Event::Bound {
                system_id: msg.system_id.clone(),
                client_id: msg.client_id.clone(),
                group_name: msg.group_name.clone(),
                all_groups: client.groups.iter().cloned().collect(),
                user_id: client.user_id.clone(),
                extend: client.extend.clone(),
                notice: notice.clone(),
            });
        }
        let Some(notice) = notice else {
            // Already a member: no membership change, no notice.
            return Ok(());
        };
        let session = client.session.clone();
        let entry = match tenant.groups.entry(msg.group_name) {
            btree_map::Entry::Occupied(e) => e.into_mut(),
            btree_map::Entry::Vacant(e) => {
                let group = Group::new(&msg.system_id, e.key(), overflow_recipient);
                e.insert(GroupEntry {
                    members: BTreeSet::new(),
                    actor: Supervisor::start(move |_| group),
                })
            }
        };
        entry.members.insert(msg.client_id.clone());
        entry.actor.do_send(Join {
            client_id: msg.client_id,
            session,
            notice,
        });
        Ok(())
    }
}

impl Handler<UnbindFromGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: UnbindFromGroup, _: &mut Context<Self>) -> Self::Result {
        let cluster = self.settings.cluster.clone();
        let tenant = self.tenant(&msg.system_id)?;
        let client = tenant
            .clients
            .get_mut(&msg.client_id)
            .ok_or_else(|| RegistryError::UnknownClient(msg.client_id.clone()))?;
        if !client.groups.remove(&msg.group_name) {
            // Not a member: nothing to undo.
            return Ok(());
        }
        let notice =
            protocol::presence_frame(false, &msg.client_id, &client.user_id, &client.extend);
        tenant.leave_group(&msg.client_id, &msg.group_name, &notice);
        if let Some(sink) = &cluster {
            let _ = sink.send(Event::Unbound {
                system_id: msg.system_id,
                client_id: msg.client_id,
                group_name: msg.group_name,
                notice,
            });
        }
        Ok(())
    }
}

impl Handler<GetOnlineList> for SystemRegistry {
    type Result = RegistryResult<OnlineList>;
    fn handle(&mut self, msg: GetOnlineList, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let members = tenant
            .groups
            .get(&msg.group_name)
            .map(|entry| &entry.members);
        let clients: Vec<OnlineClient> = members
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let client = tenant.clients.get(id)?;
                Some(OnlineClient {
                    client_id: id.clone(),
                    user_id: client.user_id.clone(),
                    extend: client.extend.clone(),
                })
            })
            .collect();
        Ok(OnlineList {
            count: clients.len(),
            list: clients.iter().map(|c| c.client_id.clone()).collect(),
            clients,
        })
    }
}

impl Handler<GetAllGroups> for SystemRegistry {
    type Result = RegistryResult<BTreeMap<String, Vec<String>>>;
    fn handle(&mut self, msg: GetAllGroups, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        Ok(tenant
            .groups
            .iter()
            .map(|(name, entry)| (name.clone(), entry.members.iter().cloned().collect()))
            .collect())
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
        self.metrics.client_closed(CloseReason::Rest);
        session.command(SessionCommand::Close {
            kind: CloseReason::Rest,
            reason: "closed by the server".into(),
            frame: None,
        });
        Ok(())
    }
}

impl Handler<GetClientInfo> for SystemRegistry {
    type Result = RegistryResult<ClientInfo>;
    fn handle(&mut self, msg: GetClientInfo, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        Ok(match tenant.clients.get(&msg.client_id) {
            Some(client) => ClientInfo::Online {
                online: true,
                client_id: msg.client_id,
                user_id: client.user_id.clone(),
                extend: client.extend.clone(),
                groups: client.groups.iter().cloned().collect(),
                connected_at: client.connected_at,
            },
            None => ClientInfo::Offline {
                online: false,
                client_id: msg.client_id,
            },
        })
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
            stats.clients += tenant.clients.len();
            stats.groups += tenant.groups.len();
        }
        MessageResult(stats)
    }
}

impl SystemRegistry {
    fn group_actor(&self, system_id: &str, group_name: &str) -> Option<Addr<Group>> {
        let entry = self.systems.get(system_id)?.groups.get(group_name)?;
        Some(entry.actor.clone())
    }
}

impl Handler<InspectGroup> for SystemRegistry {
    type Result = ResponseFuture<Option<GroupActorState>>;
    fn handle(&mut self, msg: InspectGroup, _: &mut Context<Self>) -> Self::Result {
        let actor = self.group_actor(&msg.system_id, &msg.group_name);
        Box::pin(async move { actor?.send(GetGroupActorState).await.ok() })
    }
}

impl Handler<StopGroupActor> for SystemRegistry {
    type Result = bool;
    fn handle(&mut self, msg: StopGroupActor, _: &mut Context<Self>) -> bool {
        match self.group_actor(&msg.system_id, &msg.group_name) {
            Some(actor) => {
                actor.do_send(Crash);
                true
            }
            None => false,
        }
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
        let cluster = self.settings.cluster.clone();
        for (system_id, tenant) in self.systems.iter_mut() {
            // Dropping the groups first spares everyone the 1002 storm of a mass disconnect.
            tenant.groups.clear();
            for (client_id, client) in tenant.clients.drain() {
                if let Some(sink) = &cluster {
                    // Other nodes' members still hear that these clients went offline.
                    let notice = (!client.groups.is_empty()).then(|| {
                        protocol::presence_frame(false, &client_id, &client.user_id, &client.extend)
                    });
                    let _ = sink.send(Event::Gone {
                        system_id: system_id.clone(),
                        client_id: client_id.clone(),
                        groups: client.groups.iter().cloned().collect(),
                        notice,
                    });
                }
                client.session.start_closing();
                client.session.command(SessionCommand::Close {
                    kind: CloseReason::Shutdown,
                    reason: "server shutting down".into(),
                    frame: None,
                });
                self.metrics.client_closed(CloseReason::Shutdown);
                closed += 1;
            }
        }
        closed
    }
}

impl Handler<GetSystemClients> for SystemRegistry {
    type Result = MessageResult<GetSystemClients>;
    fn handle(&mut self, _: GetSystemClients, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.systems
                .iter()
                .map(|(id, tenant)| (id.clone(), tenant.clients.len()))
                .collect(),
        )
    }
}

impl Handler<CheckInvariants> for SystemRegistry {
    type Result = MessageResult<CheckInvariants>;
    fn handle(&mut self, _: CheckInvariants, _: &mut Context<Self>) -> Self::Result {
        let mut violations = Vec::new();
        for (system_id, tenant) in &self.systems {
            for (group_name, entry) in &tenant.groups {
                if entry.members.is_empty() {
                    violations.push(format!("{system_id}/{group_name}: empty group kept"));
                }
                for member in &entry.members {
                    match tenant.clients.get(member) {
                        None => violations.push(format!(
                            "{system_id}/{group_name}: member {member} is not a client of the system"
                        )),
                        Some(client) if !client.groups.contains(group_name) => violations.push(
                            format!("{system_id}/{group_name}: {member} does not list the group"),
                        ),
                        Some(_) => {}
                    }
                }
            }
            for (client_id, client) in &tenant.clients {
                for group_name in &client.groups {
                    let listed = tenant
                        .groups
                        .get(group_name)
                        .is_some_and(|entry| entry.members.contains(client_id));
                    if !listed {
                        violations.push(format!(
                            "{system_id}: {client_id} lists {group_name}, which does not list it"
                        ));
                    }
                }
            }
        }
        MessageResult(violations)
    }
}

impl Handler<ResyncCluster> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, _: ResyncCluster, _: &mut Context<Self>) {
        let Some(sink) = &self.settings.cluster else {
            return;
        };
        for (system_id, tenant) in &self.systems {
            for (client_id, client) in &tenant.clients {
                let _ = sink.send(Event::Connected {
                    system_id: system_id.clone(),
                    client_id: client_id.clone(),
                });
                // One event carries the client's whole membership.
                if let Some(first_group) = client.groups.first() {
                    let _ = sink.send(Event::Bound {
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
