//! The user index of a [`Tenant`]: which clients each userId has, the reads built on it, and
//! what a client counts for in its user's presence.

use std::collections::HashMap;

use super::{Client, Tenant};
use crate::actors::outward::OfflineReason;
use crate::actors::presence::{Change, Scope};

impl<S: Clone, G: Clone> Tenant<S, G> {
    /// The clients of user `user_id`, by clientId (none for `""`).
    pub fn user_clients<'a>(
        &'a self,
        user_id: &str,
    ) -> impl Iterator<Item = (&'a String, &'a Client<S>)> + 'a {
        self.users
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.clients.get_key_value(id))
    }

    /// Each user with a connection in `group` (or, with `None`, in the system) and how many
    /// connections it has there. Connections without a user are not counted.
    pub fn user_counts(&self, group: Option<&str>) -> Vec<(String, usize)> {
        let Some(group) = group else {
            return self
                .users
                .iter()
                .map(|(user_id, clients)| (user_id.clone(), clients.len()))
                .collect();
        };
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let members = self.groups.get(group).map(|entry| &entry.members);
        for client in members
            .into_iter()
            .flatten()
            .filter_map(|id| self.clients.get(id))
        {
            if !client.user_id.is_empty() {
                *counts.entry(&client.user_id).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(user_id, n)| (user_id.to_owned(), n))
            .collect()
    }

    /// The first `limit` clients in clientId order whose id comes after `after`.
    pub fn clients_after(&self, after: Option<&str>, limit: usize) -> Vec<(&String, &Client<S>)> {
        let mut ids: Vec<&String> = self
            .clients
            .keys()
            .filter(|id| after.is_none_or(|after| id.as_str() > after))
            .collect();
        if ids.len() > limit {
            ids.select_nth_unstable(limit);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|id| self.clients.get_key_value(id.as_str()))
            .collect()
    }
}

impl<S> Client<S> {
    /// The presence changes of this client starting (`arrived`) or stopping to count for its
    /// user, in the system and in each of its groups: none without a user, or while away.
    pub fn presence_changes(
        &self,
        client_id: &str,
        arrived: bool,
        reason: Option<OfflineReason>,
    ) -> Vec<Change> {
        if self.user_id.is_empty() || self.away.is_some() {
            return Vec::new();
        }
        std::iter::once(Scope::System)
            .chain(self.groups.iter().cloned().map(Scope::Group))
            .map(|scope| self.change(client_id, scope, arrived, reason))
            .collect()
    }

    fn change(
        &self,
        client_id: &str,
        scope: Scope,
        arrived: bool,
        reason: Option<OfflineReason>,
    ) -> Change {
        Change {
            scope,
            user_id: self.user_id.clone(),
            client_id: client_id.to_owned(),
            extend: self.extend.clone(),
            arrived,
            reason,
        }
    }
}
