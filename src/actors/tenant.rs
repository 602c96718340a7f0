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
use super::outward::OfflineReason;
use super::presence::{Change, Presence, Scope};
use crate::protocol::{self, ClientInfo, OnlineClient, OnlineList};
use crate::settings::{PresenceMode, SystemSettings};

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
    /// What the bind changed in its user's presence (or its old and new user's).
    pub changes: Vec<Change>,
}

/// A client joined a group: the group's fan-out adds `session` and sends `notice` (1001) to
/// every member, the new one included (none under presence "user" for a client with a user:
/// its user's arrival is announced instead, once).
pub struct Joined<S, G> {
    pub fan_out: G,
    pub session: S,
    pub notice: Option<ByteString>,
    /// The group had no members before: this bind created it.
    pub occupied: bool,
}

/// A client left a group: `notice` (1002, if per connection) goes to the members that remain,
/// through `fan_out`; `None` when the group emptied and is gone (nobody is left to tell).
pub struct Left<G> {
    pub notice: Option<ByteString>,
    pub fan_out: Option<G>,
    pub changes: Vec<Change>,
}

/// A client removed from the system.
pub struct Removed<S, G> {
    pub session: S,
    pub user_id: String,
    /// The groups it was in.
    pub groups: Vec<String>,
    pub resume_token: Option<String>,
    /// The 1002 notice those groups got; `None` when it was in none, or its notices are its
    /// user's.
    pub notice: Option<ByteString>,
    /// The fan-outs of the groups that still have members, to be told with `notice`.
    pub remaining: Vec<G>,
    /// The groups it was the last member of: they are gone.
    pub vacated: Vec<String>,
    /// What its leaving changed in its user's presence.
    pub changes: Vec<Change>,
}

/// A client resumed.
pub struct Resumed<S, G> {
    /// The session it had.
    pub old: S,
    pub was_away: bool,
    /// Its groups' fan-outs, to be given the new session.
    pub fan_outs: Vec<G>,
    /// What its return changed in its user's presence.
    pub changes: Vec<Change>,
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
    /// Who counts where, and the departures in their grace (decided here on one node).
    presence: Presence,
}

impl<S: Clone, G: Clone> Tenant<S, G> {
    pub fn new(settings: SystemSettings) -> Self {
        Tenant {
            settings,
            clients: HashMap::new(),
            groups: BTreeMap::new(),
            users: HashMap::new(),
            presence: Presence::default(),
        }
    }

    pub fn presence_mut(&mut self) -> &mut Presence {
        &mut self.presence
    }

    /// Whether a group's 1001/1002 about this user are per connection: always under presence
    /// "client", and for connections without a user.
    fn notices_per_connection(&self, user_id: &str) -> bool {
        self.settings.presence == PresenceMode::Client || user_id.is_empty()
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

    /// Adds a client that is in no group yet; returns its user's presence change.
    pub fn connect(
        &mut self,
        client_id: String,
        session: S,
        user_id: String,
        connected_at: u64,
        resume_token: Option<String>,
    ) -> Vec<Change> {
        reindex_user(&mut self.users, &client_id, "", &user_id);
        let client = self.clients.entry(client_id.clone()).insert_entry(Client {
            session,
            user_fixed: !user_id.is_empty(),
            user_id,
            extend: String::new(),
            groups: BTreeSet::new(),
            connected_at,
            resume_token,
            away: None,
        });
        client.get().presence_changes(&client_id, true, None)
    }

    /// Its connection is lost; absence number `away` begins, and it stops counting for its
    /// user. `None` if there is no such client.
    pub fn park(&mut self, client_id: &str, away: u64) -> Option<Vec<Change>> {
        let client = self.clients.get_mut(client_id)?;
        let changes =
            client.presence_changes(client_id, false, Some(OfflineReason::ConnectionLost));
        client.away = Some(away);
        Some(changes)
    }

    /// A resume: the client goes on with `session` and `resume_token`, counting for its user
    /// again if it was away.
    pub fn resume(
        &mut self,
        client_id: &str,
        session: S,
        resume_token: String,
    ) -> Option<Resumed<S, G>> {
        let client = self.clients.get_mut(client_id)?;
        let old = std::mem::replace(&mut client.session, session);
        client.resume_token = Some(resume_token);
        let was_away = client.away.take().is_some();
        let changes = match was_away {
            true => client.presence_changes(client_id, true, None),
            false => Vec::new(),
        };
        let fan_outs = client
            .groups
            .iter()
            .filter_map(|group| self.groups.get(group).map(|entry| entry.fan_out.clone()))
            .collect();
        Some(Resumed {
            old,
            was_away,
            fan_outs,
            changes,
        })
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
        let user_changes = !client.user_fixed && client.user_id != user_id;
        let mut changes = match user_changes {
            true => client.presence_changes(client_id, false, Some(OfflineReason::Rebound)),
            false => Vec::new(),
        };
        if !client.user_fixed {
            reindex_user(&mut self.users, client_id, &client.user_id, &user_id);
            client.user_id = user_id;
        }
        client.extend = extend;
        client.groups.insert(group_name.to_owned());
        if user_changes {
            changes.extend(client.presence_changes(client_id, true, None));
        } else if !already_member {
            changes.extend(
                client
                    .presence_changes(client_id, true, None)
                    .into_iter()
                    .filter(|change| change.scope == Scope::Group(group_name.to_owned())),
            );
        }
        let mut bound = Bound {
            all_groups: client.groups.iter().cloned().collect(),
            user_id: client.user_id.clone(),
            extend: client.extend.clone(),
            joined: None,
            changes,
        };
        if already_member {
            return Ok(bound);
        }
        let per_connection =
            self.settings.presence == PresenceMode::Client || client.user_id.is_empty();
        let notice = per_connection
            .then(|| protocol::presence_frame(true, client_id, &client.user_id, &client.extend));
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
        let changes = client
            .presence_changes(client_id, false, None)
            .into_iter()
            .filter(|change| change.scope == Scope::Group(group_name.to_owned()))
            .collect();
        if !client.groups.remove(group_name) {
            return Ok(None);
        }
        let per_connection =
            self.settings.presence == PresenceMode::Client || client.user_id.is_empty();
        let notice = per_connection
            .then(|| protocol::presence_frame(false, client_id, &client.user_id, &client.extend));
        let fan_out = self.leave_group(client_id, group_name);
        Ok(Some(Left {
            notice,
            fan_out,
            changes,
        }))
    }

    /// Removes a client from the system and from every group it was in, for `reason`.
    pub fn remove(&mut self, client_id: &str, reason: OfflineReason) -> Option<Removed<S, G>> {
        let client = self.clients.remove(client_id)?;
        reindex_user(&mut self.users, client_id, &client.user_id, "");
        let changes = client.presence_changes(client_id, false, Some(reason));
        let notice = (!client.groups.is_empty() && self.notices_per_connection(&client.user_id))
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
            changes,
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
}

mod check;
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
