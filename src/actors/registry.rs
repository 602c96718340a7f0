//! The `SystemRegistry` actor: the single source of truth for systems, clients and groups.
//!
//! Every change of state goes through this one actor, so each REST call sees and makes a
//! consistent change: nothing is half-applied, and a client's group list always matches the
//! groups' member lists. Fan-out to a group is handed to that group's supervised [`Group`] actor;
//! pushes to one client or a whole system go straight to the sessions. No handler here awaits a
//! session.

use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, Context, Handler, MessageResult, Recipient, ResponseFuture, Supervisor};
use bytestring::ByteString;

use super::group::Group;
use super::messages::*;
use crate::protocol::{self, ClientInfo, OnlineClient, OnlineList};

/// One connected client.
struct Client {
    session: Recipient<SessionCommand>,
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

#[derive(Default)]
pub struct SystemRegistry {
    /// systemId → tenant. Systems are never removed while the process runs.
    systems: HashMap<String, Tenant>,
}

impl Actor for SystemRegistry {
    type Context = Context<Self>;
}

impl SystemRegistry {
    pub fn new() -> Self {
        Self::default()
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

    /// Removes a client entirely, sending 1002 to each group it was in. Returns its session.
    fn remove_client(&mut self, client_id: &str) -> Option<Recipient<SessionCommand>> {
        let client = self.clients.remove(client_id)?;
        if !client.groups.is_empty() {
            let notice =
                protocol::presence_frame(false, client_id, &client.user_id, &client.extend);
            for group_name in &client.groups {
                self.leave_group(client_id, group_name, &notice);
            }
        }
        Some(client.session)
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
        let refuse = |reason: String| {
            msg.session.do_send(SessionCommand::Close {
                kind: CloseKind::Refused,
                frame: Some(protocol::refusal_frame(&reason)),
                reason,
            });
        };
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
        msg.session
            .do_send(SessionCommand::Push(protocol::welcome_frame(
                &msg.client_id,
            )));
        tenant.clients.insert(
            msg.client_id,
            Client {
                session: msg.session,
                user_id: String::new(),
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
        if let Ok(tenant) = self.tenant(&msg.system_id) {
            tenant.remove_client(&msg.client_id);
        }
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
    fn handle(&mut self, msg: SendToClient, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let client = tenant.client(&msg.client_id)?;
        client.session.do_send(SessionCommand::Push(msg.frame));
        Ok(())
    }
}

impl Handler<SendToClients> for SystemRegistry {
    type Result = RegistryResult<Vec<String>>;
    fn handle(&mut self, msg: SendToClients, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let mut missing = Vec::new();
        let mut seen = BTreeSet::new();
        for client_id in msg.client_ids {
            // A clientId listed twice still gets the message once.
            if !seen.insert(client_id.clone()) {
                continue;
            }
            match tenant.clients.get(&client_id) {
                Some(client) => client
                    .session
                    .do_send(SessionCommand::Push(msg.frame.clone())),
                None => missing.push(client_id),
            }
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
    fn handle(&mut self, msg: SendToSystem, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        for client in tenant.clients.values() {
            client
                .session
                .do_send(SessionCommand::Push(msg.frame.clone()));
        }
        Ok(tenant.clients.len())
    }
}

impl Handler<BindToGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: BindToGroup, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let client = tenant
            .clients
            .get_mut(&msg.client_id)
            .ok_or_else(|| RegistryError::UnknownClient(msg.client_id.clone()))?;
        // userId and extend belong to the client: the last bind wins, even a repeated one.
        client.user_id = msg.user_id;
        client.extend = msg.extend;
        if !client.groups.insert(msg.group_name.clone()) {
            // Already a member: no membership change, no notice.
            return Ok(());
        }
        let notice =
            protocol::presence_frame(true, &msg.client_id, &client.user_id, &client.extend);
        let session = client.session.clone();
        let entry = match tenant.groups.entry(msg.group_name) {
            btree_map::Entry::Occupied(e) => e.into_mut(),
            btree_map::Entry::Vacant(e) => {
                let group = Group::new(&msg.system_id, e.key());
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
        let tenant = self.tenant(&msg.system_id)?;
        // Removed now, so the reply already reflects it; the session's own Disconnect, when it
        // stops, then finds nothing left to do.
        let session = tenant
            .remove_client(&msg.client_id)
            .ok_or_else(|| RegistryError::UnknownClient(msg.client_id.clone()))?;
        session.do_send(SessionCommand::Close {
            kind: CloseKind::ClosedByApi,
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
