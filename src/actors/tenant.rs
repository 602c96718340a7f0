//! One system's state as plain data: its clients, its groups, and the rules a change must keep.
//!
//! This is the one owner of membership. The registry actor holds a [`Tenant`] per system and
//! carries out what a method returns (a join or leave for a group's actor, a session to close);
//! the rules themselves (limits checked before anything changes, the last bind's `userId` and
//! `extend` win, which notice goes where) live here, tested without an actor system.
//!
//! `S` is how a client's session is reached and `G` how a group's fan-out is reached: the
//! registry uses `SessionHandle` and `Addr<Group>`, the tests below plain values. A group's
//! actor keeps its members' sessions only to deliver to them, and learns every change from
//! the registry, in order, as a `Join` or `Leave` built from what these methods return.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytestring::ByteString;

use super::messages::{RegistryError, RegistryResult};
use crate::protocol::{self, ClientInfo, OnlineClient, OnlineList};
use crate::settings::SystemSettings;

/// The membership limits a bind must keep.
#[derive(Debug, Clone, Copy)]
pub struct MembershipLimits {
    pub max_groups_per_client: usize,
    pub max_clients_per_group: Option<usize>,
}

/// One connected client.
pub struct Client<S> {
    pub session: S,
    pub user_id: String,
    /// The userId came from the client's token: it stays for the connection's life.
    pub user_fixed: bool,
    pub extend: String,
    /// The groups it is in; always equal to the groups whose `members` contain it.
    pub groups: BTreeSet<String>,
    /// Unix time in milliseconds.
    pub connected_at: u64,
    /// The token that resumes it, for a client that asked for recovery.
    pub resume_token: Option<String>,
    /// Set while its connection is lost and its recovery window open: the window's number,
    /// so that only the timer of this absence ends it.
    pub away: Option<u64>,
}

/// One group: its members, and how its fan-out is reached.
pub struct GroupEntry<G> {
    pub members: BTreeSet<String>,
    pub fan_out: G,
}

/// What a bind changed.
pub struct Bound<S, G> {
    /// Every group the client is in now, the new one included.
    pub all_groups: Vec<String>,
    pub user_id: String,
    pub extend: String,
    /// `None` when the client was in the group already: nobody is told anything.
    pub joined: Option<Joined<S, G>>,
}

/// A client joined a group: the group's fan-out adds `session` and sends `notice` (1001) to
/// every member, the new one included.
pub struct Joined<S, G> {
    pub fan_out: G,
    pub session: S,
    pub notice: ByteString,
    /// The group had no members before: this bind created it.
    pub occupied: bool,
}

/// A client left a group: `notice` (1002) goes to the members that remain, through `fan_out`;
/// `None` when the group emptied and is gone (nobody is left to tell).
pub struct Left<G> {
    pub notice: ByteString,
    pub fan_out: Option<G>,
}

/// A client removed from the system.
pub struct Removed<S, G> {
    pub session: S,
    pub user_id: String,
    /// The groups it was in.
    pub groups: Vec<String>,
    pub resume_token: Option<String>,
    /// The 1002 notice those groups got; `None` when it was in none.
    pub notice: Option<ByteString>,
    /// The fan-outs of the groups that still have members, to be told with `notice`.
    pub remaining: Vec<G>,
    /// The groups it was the last member of: they are gone.
    pub vacated: Vec<String>,
}

/// One registered system. Nothing in it refers outside it.
pub struct Tenant<S, G> {
    /// What `register` and `update_system` set.
    pub settings: SystemSettings,
    clients: HashMap<String, Client<S>>,
    groups: BTreeMap<String, GroupEntry<G>>,
    /// userId → the clientIds with that user (connections without one are in none); always
    /// equal to what the clients' own `user_id` say.
    users: HashMap<String, BTreeSet<String>>,
}

impl<S: Clone, G: Clone> Tenant<S, G> {
    pub fn new(settings: SystemSettings) -> Self {
        Tenant {
            settings,
            clients: HashMap::new(),
            groups: BTreeMap::new(),
            users: HashMap::new(),
        }
    }

    pub fn clients(&self) -> &HashMap<String, Client<S>> {
        &self.clients
    }

    pub fn groups(&self) -> &BTreeMap<String, GroupEntry<G>> {
        &self.groups
    }

    pub fn client(&self, client_id: &str) -> RegistryResult<&Client<S>> {
        self.clients
            .get(client_id)
            .ok_or_else(|| RegistryError::UnknownClient(client_id.to_owned()))
    }

    /// Adds a client that is in no group yet.
    pub fn connect(
        &mut self,
        client_id: String,
        session: S,
        user_id: String,
        connected_at: u64,
        resume_token: Option<String>,
    ) {
        reindex_user(&mut self.users, &client_id, "", &user_id);
        self.clients.insert(
            client_id,
            Client {
                session,
                user_fixed: !user_id.is_empty(),
                user_id,
                extend: String::new(),
                groups: BTreeSet::new(),
                connected_at,
                resume_token,
                away: None,
            },
        );
    }

    /// Its connection is lost; absence number `away` begins. False if there is no such client.
    pub fn park(&mut self, client_id: &str, away: u64) -> bool {
        match self.clients.get_mut(client_id) {
            Some(client) => {
                client.away = Some(away);
                true
            }
            None => false,
        }
    }

    /// A resume: the client goes on with `session` and `resume_token`. Returns its old session,
    /// whether it was away, and its groups' fan-outs (to be given the new session).
    pub fn resume(
        &mut self,
        client_id: &str,
        session: S,
        resume_token: String,
    ) -> Option<(S, bool, Vec<G>)> {
        let client = self.clients.get_mut(client_id)?;
        let old = std::mem::replace(&mut client.session, session);
        client.resume_token = Some(resume_token);
        let was_away = client.away.take().is_some();
        let fan_outs = client
            .groups
            .iter()
            .filter_map(|group| self.groups.get(group).map(|entry| entry.fan_out.clone()))
            .collect();
        Some((old, was_away, fan_outs))
    }

    /// Binds a client to a group, making the group's fan-out with `new_fan_out` if the group is
    /// new. Limits are checked before anything changes, so a refused bind changes nothing.
    /// `userId` and `extend` belong to the client: the last bind wins, even a repeated one;
    /// but a userId from the client's token is fixed (a bind naming none keeps it, one naming
    /// another is refused).
    pub fn bind(
        &mut self,
        client_id: &str,
        group_name: &str,
        user_id: String,
        extend: String,
        limits: MembershipLimits,
        new_fan_out: impl FnOnce() -> G,
    ) -> RegistryResult<Bound<S, G>> {
        let members_now = self
            .groups
            .get(group_name)
            .map_or(0, |entry| entry.members.len());
        let client = self
            .clients
            .get_mut(client_id)
            .ok_or_else(|| RegistryError::UnknownClient(client_id.to_owned()))?;
        if client.user_fixed && !user_id.is_empty() && user_id != client.user_id {
            return Err(RegistryError::UserFixed {
                client_id: client_id.to_owned(),
                user_id: client.user_id.clone(),
            });
        }
        let already_member = client.groups.contains(group_name);
        if !already_member {
            if client.groups.len() >= limits.max_groups_per_client {
                return Err(RegistryError::TooManyGroups {
                    client_id: client_id.to_owned(),
                    limit: limits.max_groups_per_client,
                });
            }
            if let Some(limit) = limits
                .max_clients_per_group
                .filter(|limit| members_now >= *limit)
            {
                return Err(RegistryError::GroupFull {
                    group_name: group_name.to_owned(),
                    limit,
                });
            }
        }
        if !client.user_fixed {
            reindex_user(&mut self.users, client_id, &client.user_id, &user_id);
            client.user_id = user_id;
        }
        client.extend = extend;
        client.groups.insert(group_name.to_owned());
        let mut bound = Bound {
            all_groups: client.groups.iter().cloned().collect(),
            user_id: client.user_id.clone(),
            extend: client.extend.clone(),
            joined: None,
        };
        if already_member {
            return Ok(bound);
        }
        let notice = protocol::presence_frame(true, client_id, &client.user_id, &client.extend);
        let session = client.session.clone();
        let occupied = !self.groups.contains_key(group_name);
        let entry = self
            .groups
            .entry(group_name.to_owned())
            .or_insert_with(|| GroupEntry {
                members: BTreeSet::new(),
                fan_out: new_fan_out(),
            });
        entry.members.insert(client_id.to_owned());
        bound.joined = Some(Joined {
            fan_out: entry.fan_out.clone(),
            session,
            notice,
            occupied,
        });
        Ok(bound)
    }

    /// Unbinds a client from a group. `Ok(None)`: it was not a member, nothing changed.
    pub fn unbind(&mut self, client_id: &str, group_name: &str) -> RegistryResult<Option<Left<G>>> {
        let client = self
            .clients
            .get_mut(client_id)
            .ok_or_else(|| RegistryError::UnknownClient(client_id.to_owned()))?;
        if !client.groups.remove(group_name) {
            return Ok(None);
        }
        let notice = protocol::presence_frame(false, client_id, &client.user_id, &client.extend);
        let fan_out = self.leave_group(client_id, group_name);
        Ok(Some(Left { notice, fan_out }))
    }

    /// Removes a client from the system and from every group it was in.
    pub fn remove(&mut self, client_id: &str) -> Option<Removed<S, G>> {
        let client = self.clients.remove(client_id)?;
        reindex_user(&mut self.users, client_id, &client.user_id, "");
        let notice = (!client.groups.is_empty())
            .then(|| protocol::presence_frame(false, client_id, &client.user_id, &client.extend));
        let mut remaining = Vec::new();
        let mut vacated = Vec::new();
        for group_name in &client.groups {
            match self.leave_group(client_id, group_name) {
                Some(fan_out) => remaining.push(fan_out),
                None => vacated.push(group_name.clone()),
            }
        }
        Some(Removed {
            session: client.session,
            user_id: client.user_id,
            groups: client.groups.into_iter().collect(),
            resume_token: client.resume_token,
            notice,
            remaining,
            vacated,
        })
    }

    /// Takes every client out at once, groups first (shutdown: nobody is told who left).
    pub fn drain(&mut self) -> Vec<(String, Client<S>)> {
        self.groups.clear();
        self.users.clear();
        self.clients.drain().collect()
    }

    /// Removes `client_id` from a group's members, dropping the group when it empties; the
    /// caller has updated the client's own list. The group's fan-out, if it still has members.
    fn leave_group(&mut self, client_id: &str, group_name: &str) -> Option<G> {
        let entry = self.groups.get_mut(group_name)?;
        entry.members.remove(client_id);
        if entry.members.is_empty() {
            self.groups.remove(group_name);
            None
        } else {
            Some(entry.fan_out.clone())
        }
    }

    pub fn online_list(&self, group_name: &str) -> OnlineList {
        let clients: Vec<OnlineClient> = self
            .groups
            .get(group_name)
            .map(|entry| &entry.members)
            .into_iter()
            .flatten()
            .filter_map(|id| {
                let client = self.clients.get(id)?;
                Some(OnlineClient {
                    client_id: id.clone(),
                    user_id: client.user_id.clone(),
                    extend: client.extend.clone(),
                })
            })
            .collect();
        OnlineList {
            count: clients.len(),
            list: clients.iter().map(|c| c.client_id.clone()).collect(),
            clients,
        }
    }

    /// groupName → member clientIds.
    pub fn all_groups(&self) -> BTreeMap<String, Vec<String>> {
        self.groups
            .iter()
            .map(|(name, entry)| (name.clone(), entry.members.iter().cloned().collect()))
            .collect()
    }

    pub fn client_info(&self, client_id: String) -> ClientInfo {
        match self.clients.get(&client_id) {
            Some(client) => ClientInfo::Online {
                online: true,
                user_id: client.user_id.clone(),
                extend: client.extend.clone(),
                groups: client.groups.iter().cloned().collect(),
                connected_at: client.connected_at,
                connected: client.away.is_none(),
                client_id,
            },
            None => ClientInfo::Offline {
                online: false,
                client_id,
            },
        }
    }

    /// Where the state breaks its own rules: every group member is a client whose group list
    /// names the group, and the other way round, and no group is empty. Empty when all hold.
    pub fn violations(&self, system_id: &str) -> Vec<String> {
        let mut violations = Vec::new();
        for (group_name, entry) in &self.groups {
            if entry.members.is_empty() {
                violations.push(format!("{system_id}/{group_name}: empty group kept"));
            }
            for member in &entry.members {
                match self.clients.get(member) {
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
        for (client_id, client) in &self.clients {
            for group_name in &client.groups {
                let listed = self
                    .groups
                    .get(group_name)
                    .is_some_and(|entry| entry.members.contains(client_id));
                if !listed {
                    violations.push(format!(
                        "{system_id}: {client_id} lists {group_name}, which does not list it"
                    ));
                }
            }
            let indexed = self
                .users
                .get(&client.user_id)
                .is_some_and(|ids| ids.contains(client_id));
            if indexed == client.user_id.is_empty() {
                violations.push(format!(
                    "{system_id}: {client_id} of user '{}' is misindexed",
                    client.user_id
                ));
            }
        }
        for (user_id, ids) in &self.users {
            let all_theirs = ids.iter().all(|id| {
                self.clients
                    .get(id)
                    .is_some_and(|client| &client.user_id == user_id)
            });
            if ids.is_empty() || !all_theirs {
                violations.push(format!("{system_id}: user '{user_id}' indexes {ids:?}"));
            }
        }
        violations
    }
}

mod users;

/// Moves `client_id` from user `old` to user `new` in the user index (`""`: no user).
fn reindex_user(
    users: &mut HashMap<String, BTreeSet<String>>,
    client_id: &str,
    old: &str,
    new: &str,
) {
    if old == new {
        return;
    }
    if let Some(clients) = users.get_mut(old) {
        clients.remove(client_id);
        if clients.is_empty() {
            users.remove(old);
        }
    }
    if !new.is_empty() {
        users
            .entry(new.to_owned())
            .or_default()
            .insert(client_id.to_owned());
    }
}

#[cfg(test)]
mod tests;
