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
    pub extend: String,
    /// The groups it is in; always equal to the groups whose `members` contain it.
    pub groups: BTreeSet<String>,
    /// Unix time in milliseconds.
    pub connected_at: u64,
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
    /// The groups it was in.
    pub groups: Vec<String>,
    /// The 1002 notice those groups got; `None` when it was in none.
    pub notice: Option<ByteString>,
    /// The fan-outs of the groups that still have members, to be told with `notice`.
    pub remaining: Vec<G>,
}

/// One registered system. Nothing in it refers outside it.
pub struct Tenant<S, G> {
    /// What `register` and `update_system` set.
    pub settings: SystemSettings,
    clients: HashMap<String, Client<S>>,
    groups: BTreeMap<String, GroupEntry<G>>,
}

impl<S: Clone, G: Clone> Tenant<S, G> {
    pub fn new(settings: SystemSettings) -> Self {
        Tenant {
            settings,
            clients: HashMap::new(),
            groups: BTreeMap::new(),
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
    pub fn connect(&mut self, client_id: String, session: S, user_id: String, connected_at: u64) {
        self.clients.insert(
            client_id,
            Client {
                session,
                user_id,
                extend: String::new(),
                groups: BTreeSet::new(),
                connected_at,
            },
        );
    }

    /// Binds a client to a group, making the group's fan-out with `new_fan_out` if the group is
    /// new. Limits are checked before anything changes, so a refused bind changes nothing.
    /// `userId` and `extend` belong to the client: the last bind wins, even a repeated one.
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
        client.user_id = user_id;
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
        let notice = (!client.groups.is_empty())
            .then(|| protocol::presence_frame(false, client_id, &client.user_id, &client.extend));
        let remaining = client
            .groups
            .iter()
            .filter_map(|group_name| self.leave_group(client_id, group_name))
            .collect();
        Some(Removed {
            session: client.session,
            groups: client.groups.into_iter().collect(),
            notice,
            remaining,
        })
    }

    /// Takes every client out at once, groups first (shutdown: nobody is told who left).
    pub fn drain(&mut self) -> Vec<(String, Client<S>)> {
        self.groups.clear();
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
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions are numbers and fan-outs are group names: enough to see who is told what.
    type TestTenant = Tenant<u32, &'static str>;

    const LIMITS: MembershipLimits = MembershipLimits {
        max_groups_per_client: 2,
        max_clients_per_group: Some(2),
    };

    fn tenant_with(clients: &[&str]) -> TestTenant {
        let mut tenant = TestTenant::new(SystemSettings::new(0));
        for (n, id) in clients.iter().enumerate() {
            tenant.connect(id.to_string(), n as u32, String::new(), 0);
        }
        tenant
    }

    fn bind(
        tenant: &mut TestTenant,
        client: &str,
        group: &'static str,
        user: &str,
    ) -> Bound<u32, &'static str> {
        tenant
            .bind(
                client,
                group,
                user.into(),
                format!("ext-{user}"),
                LIMITS,
                || group,
            )
            .expect("bind")
    }

    fn frame(notice: &ByteString) -> serde_json::Value {
        serde_json::from_str(notice).expect("notice is JSON")
    }

    #[test]
    fn a_first_bind_joins_and_announces_1001_a_repeat_changes_only_user_id_and_extend() {
        let mut tenant = tenant_with(&["a"]);
        let bound = bind(&mut tenant, "a", "room", "alice");
        let joined = bound.joined.expect("a new member joins");
        assert_eq!((joined.fan_out, joined.session), ("room", 0));
        let notice = frame(&joined.notice);
        assert_eq!(notice["code"], 1001);
        // `data` is the presence object as a JSON string, as the Go servers sent it.
        let data: serde_json::Value =
            serde_json::from_str(notice["data"].as_str().expect("data is a string")).unwrap();
        assert_eq!(data["userId"], "alice");
        assert_eq!(bound.all_groups, ["room"]);

        let again = bind(&mut tenant, "a", "room", "alice2");
        assert!(again.joined.is_none(), "no notice for a member already in");
        let list = tenant.online_list("room");
        assert_eq!(list.count, 1);
        assert_eq!(list.clients[0].user_id, "alice2");
        assert_eq!(list.clients[0].extend, "ext-alice2");
        assert!(tenant.violations("s").is_empty());
    }

    #[test]
    fn a_bind_over_a_limit_changes_nothing() {
        let mut tenant = tenant_with(&["a", "b", "c"]);
        bind(&mut tenant, "a", "one", "alice");
        bind(&mut tenant, "a", "two", "alice");
        let err = tenant
            .bind("a", "three", "new".into(), "x".into(), LIMITS, || "three")
            .err();
        assert!(matches!(
            err,
            Some(RegistryError::TooManyGroups { limit: 2, .. })
        ));
        bind(&mut tenant, "b", "one", "bob");
        let err = tenant
            .bind("c", "one", "carol".into(), String::new(), LIMITS, || "one")
            .err();
        assert!(matches!(
            err,
            Some(RegistryError::GroupFull { limit: 2, .. })
        ));
        // Nothing of either refused bind is left behind.
        assert_eq!(tenant.client("a").unwrap().user_id, "alice");
        assert!(tenant.client("c").unwrap().groups.is_empty());
        assert!(!tenant.groups().contains_key("three"));
        assert!(tenant.violations("s").is_empty());
    }

    #[test]
    fn unbinding_tells_those_left_and_drops_an_empty_group() {
        let mut tenant = tenant_with(&["a", "b"]);
        bind(&mut tenant, "a", "room", "alice");
        bind(&mut tenant, "b", "room", "bob");
        let left = tenant.unbind("a", "room").unwrap().expect("was a member");
        assert_eq!(frame(&left.notice)["code"], 1002);
        assert_eq!(left.fan_out, Some("room"));
        assert!(
            tenant.unbind("a", "room").unwrap().is_none(),
            "a second unbind is a no-op"
        );
        let last = tenant.unbind("b", "room").unwrap().unwrap();
        assert_eq!(last.fan_out, None, "nobody is left to tell");
        assert!(tenant.groups().is_empty());
        assert!(matches!(
            tenant.unbind("nobody", "room"),
            Err(RegistryError::UnknownClient(_))
        ));
    }

    #[test]
    fn removing_a_client_leaves_every_group_with_one_notice() {
        let mut tenant = tenant_with(&["a", "b"]);
        bind(&mut tenant, "a", "one", "alice");
        bind(&mut tenant, "a", "two", "alice");
        bind(&mut tenant, "b", "two", "bob");
        let removed = tenant.remove("a").expect("was connected");
        assert_eq!(removed.groups, ["one", "two"]);
        assert_eq!(frame(&removed.notice.unwrap())["code"], 1002);
        assert_eq!(removed.remaining, ["two"], "group one emptied and is gone");
        assert_eq!(tenant.all_groups().keys().collect::<Vec<_>>(), ["two"]);
        assert!(tenant.remove("a").is_none());
        assert!(matches!(
            tenant.client_info("a".into()),
            ClientInfo::Offline { online: false, .. }
        ));
        assert!(tenant.violations("s").is_empty());
    }

    proptest::proptest! {
        /// Whatever the order of binds, unbinds and disconnects, both sides of membership agree.
        #[test]
        fn membership_stays_consistent(ops in proptest::collection::vec((0u8..3, 0usize..4, 0usize..3), 0..60)) {
            const CLIENTS: [&str; 4] = ["a", "b", "c", "d"];
            const GROUPS: [&str; 3] = ["x", "y", "z"];
            let mut tenant = tenant_with(&CLIENTS);
            for (op, client, group) in ops {
                let (client, group) = (CLIENTS[client], GROUPS[group]);
                match op {
                    0 => { let _ = tenant.bind(client, group, "u".into(), String::new(), LIMITS, || group); }
                    1 => { let _ = tenant.unbind(client, group); }
                    _ => {
                        if tenant.remove(client).is_some() {
                            tenant.connect(client.into(), 9, String::new(), 0);
                        }
                    }
                }
                proptest::prop_assert_eq!(tenant.violations("s"), Vec::<String>::new());
                for entry in tenant.groups().values() {
                    proptest::prop_assert!(entry.members.len() <= 2);
                }
            }
        }
    }
}
