//! The membership rules, without an actor system.
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
        tenant.connect(id.to_string(), n as u32, String::new(), 0, None);
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

fn frame(notice: &Option<ByteString>) -> serde_json::Value {
    serde_json::from_str(notice.as_ref().expect("a notice")).expect("notice is JSON")
}

#[test]
fn a_first_bind_joins_and_announces_1001_a_repeat_changes_only_user_id_and_extend() {
    let mut tenant = tenant_with(&["a"]);
    let bound = bind(&mut tenant, "a", "room", "alice");
    let joined = bound.joined.expect("a new member joins");
    assert!(joined.occupied, "the first member makes the group");
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
    let removed = tenant
        .remove("a", OfflineReason::Closed)
        .expect("was connected");
    assert_eq!(removed.groups, ["one", "two"]);
    assert_eq!(frame(&removed.notice)["code"], 1002);
    assert_eq!(removed.remaining, ["two"], "group one emptied and is gone");
    assert_eq!(removed.vacated, ["one"]);
    assert_eq!(removed.user_id, "alice");
    assert_eq!(tenant.all_groups().keys().collect::<Vec<_>>(), ["two"]);
    assert!(tenant.remove("a", OfflineReason::Closed).is_none());
    assert!(matches!(
        tenant.client_info("a".into()),
        ClientInfo::Offline { online: false, .. }
    ));
    assert!(tenant.violations("s").is_empty());
}

proptest::proptest! {
    /// Whatever the order of binds, unbinds and disconnects, both sides of membership agree, and
    /// so do the user index and the clients' own userIds.
    #[test]
    fn membership_stays_consistent(ops in proptest::collection::vec((0u8..3, 0usize..4, 0usize..3), 0..60)) {
        const CLIENTS: [&str; 4] = ["a", "b", "c", "d"];
        const GROUPS: [&str; 3] = ["x", "y", "z"];
        const USERS: [&str; 3] = ["", "u", "v"];
        let mut tenant = tenant_with(&CLIENTS);
        for (op, client, group) in ops {
            let (user_slot, client, group) = (client, CLIENTS[client], GROUPS[group]);
            match op {
                0 => {
                    let user = USERS[(user_slot + group.as_bytes()[0] as usize) % 3];
                    let _ = tenant.bind(client, group, user.into(), String::new(), LIMITS, || group);
                }
                1 => { let _ = tenant.unbind(client, group); }
                _ => {
                    if tenant.remove(client, OfflineReason::Closed).is_some() {
                        tenant.connect(client.into(), 9, USERS[user_slot % 3].into(), 0, None);
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

#[test]
fn a_users_clients_follow_connects_binds_and_removals() {
    let mut tenant = tenant_with(&["a", "b"]);
    tenant.connect("c".into(), 7, "ann".into(), 0, None);
    bind(&mut tenant, "a", "x", "ann");
    bind(&mut tenant, "b", "x", "bob");
    let ann = |t: &TestTenant| {
        t.user_clients("ann")
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ann(&tenant), ["a", "c"]);
    // The last bind's userId wins: "a" moves to bob.
    bind(&mut tenant, "a", "y", "bob");
    assert_eq!(ann(&tenant), ["c"]);
    assert_eq!(tenant.user_clients("bob").count(), 2);
    tenant.remove("c", OfflineReason::Closed);
    assert!(ann(&tenant).is_empty());
    assert_eq!(tenant.user_clients("").count(), 0, "no user is no user");
    assert!(tenant.violations("s").is_empty());
}

/// What each change of a client with a user reports for its user's presence, and that under
/// presence "user" its group notices are left to the user's.
#[test]
fn a_client_with_a_user_counts_while_connected_in_the_system_and_its_groups() {
    let mut tenant = TestTenant::new(SystemSettings::new(0));
    tenant.settings.presence = PresenceMode::User;
    let scopes = |changes: &[Change]| -> Vec<(Scope, String, bool)> {
        changes
            .iter()
            .map(|c| (c.scope.clone(), c.user_id.clone(), c.arrived))
            .collect()
    };
    let group = |name: &str| Scope::Group(name.into());
    let ann = || "ann".to_owned();
    // A token userId counts in the system at once.
    let changes = tenant.connect("a".into(), 0, ann(), 0, Some("t".into()));
    assert_eq!(scopes(&changes), [(Scope::System, ann(), true)]);
    let bound = bind(&mut tenant, "a", "room", "");
    assert_eq!(scopes(&bound.changes), [(group("room"), ann(), true)]);
    assert!(
        bound.joined.expect("joined").notice.is_none(),
        "the user's notice instead"
    );
    // Cut: it stops counting everywhere, as a lost connection.
    let changes = tenant.park("a", 1).expect("a client");
    assert_eq!(
        scopes(&changes),
        [(Scope::System, ann(), false), (group("room"), ann(), false)]
    );
    assert_eq!(changes[0].reason, Some(OfflineReason::ConnectionLost));
    // Removed while away: nothing more to take away.
    let resumed = tenant.resume("a", 1, "t2".into()).expect("resumed");
    assert_eq!(resumed.changes.len(), 2);
    assert!(resumed.changes.iter().all(|c| c.arrived));
    // A userless client keeps its per-connection notices; bound with a user, it counts.
    tenant.connect("b".into(), 2, String::new(), 0, None);
    let bound = bind(&mut tenant, "b", "room", "bob");
    assert!(bound.joined.expect("joined").notice.is_none());
    assert_eq!(
        scopes(&bound.changes),
        [
            (Scope::System, "bob".into(), true),
            (group("room"), "bob".into(), true)
        ]
    );
    // Re-bound as another user: bob leaves everywhere, carl arrives everywhere.
    let bound = bind(&mut tenant, "b", "room", "carl");
    assert_eq!(
        scopes(&bound.changes),
        [
            (Scope::System, "bob".into(), false),
            (group("room"), "bob".into(), false),
            (Scope::System, "carl".into(), true),
            (group("room"), "carl".into(), true),
        ]
    );
    let left = tenant
        .unbind("b", "room")
        .expect("a client")
        .expect("a member");
    assert!(left.notice.is_none());
    assert_eq!(
        scopes(&left.changes),
        [(group("room"), "carl".into(), false)]
    );
    let removed = tenant.remove("b", OfflineReason::Closed).expect("b");
    assert_eq!(
        scopes(&removed.changes),
        [(Scope::System, "carl".into(), false)]
    );
    tenant.connect("c".into(), 3, String::new(), 0, None);
    let bound = bind(&mut tenant, "c", "room", "");
    assert!(bound.changes.is_empty());
    assert!(
        bound.joined.expect("joined").notice.is_some(),
        "userless: per connection"
    );
}
