//! The tenant's own rules as a check: what the membership property test (and any test) asks of
//! a tenant after every step.

use super::Tenant;

impl<S: Clone, G: Clone> Tenant<S, G> {
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
