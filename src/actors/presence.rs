//! Users' presence: what counts for a user in the system and in each group, and the keeper that
//! decides, on one node, when a user arrives and when it has left.
//!
//! A connection counts while it is connected and has a userId: an away recovery connection does
//! not (it is still a member, but its user is shown offline after the grace). The tenant turns
//! each change of its clients into [`Change`]s (`Client::presence_changes`); one node decides
//! with [`Presence`] below, a cluster decides in Redis from the same changes (`crate::cluster`),
//! so the rules of *who counts* are written once.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use bytestring::ByteString;

use crate::actors::outward::{BackendEvent, OfflineReason};
use crate::protocol;
use crate::settings::EventName;

/// Where a user is present: the system as a whole, or one of its groups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    System,
    Group(String),
}

/// One connection of a user began or stopped counting in a scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub scope: Scope,
    pub user_id: String,
    pub client_id: String,
    /// The connection's extend, for a group's notice.
    pub extend: String,
    /// True: it counts from now; false: it stopped counting.
    pub arrived: bool,
    /// Why it stopped counting in the system (the `reason` of `user_offline`, when it was the
    /// user's last); `None` for an arrival, or a departure from one group only.
    pub reason: Option<OfflineReason>,
}

impl Change {
    /// The event that announces this change as its user's arrival in, or departure from, the
    /// system: `user_online` / `user_offline`.
    pub fn event(&self) -> (EventName, impl FnOnce() -> BackendEvent + '_) {
        let name = match self.arrived {
            true => EventName::UserOnline,
            false => EventName::UserOffline,
        };
        (name, move || match self.arrived {
            true => BackendEvent::user_online(&self.user_id, &self.client_id),
            false => BackendEvent::user_offline(
                &self.user_id,
                self.reason.unwrap_or(OfflineReason::Closed),
            ),
        })
    }

    /// The notice that announces this change to a group as its user's arrival or departure
    /// (1001 / 1002, about this connection).
    pub fn notice(&self) -> ByteString {
        protocol::presence_frame(self.arrived, &self.client_id, &self.user_id, &self.extend)
    }
}

/// What a change meant for its user in its scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user's first connection there: announce it.
    Arrived,
    /// The user's last connection there left: departure number `n` is announced when the grace
    /// ends, unless one comes back first ([`Presence::expire`]).
    Departing(u64),
    /// Nothing to announce (another connection of the user still counts, or one came back
    /// within the grace).
    Unchanged,
}

/// One node's count of connections per user and scope, and the departures in their grace.
#[derive(Debug, Default)]
pub struct Presence {
    /// (scope, userId) → the user's connections counting there; never 0.
    counts: HashMap<(Scope, String), usize>,
    /// (scope, userId) whose last connection left → the departure's number, until its grace
    /// ends or a connection comes back.
    leaving: HashMap<(Scope, String), u64>,
    departures: u64,
}

impl Presence {
    pub fn apply(&mut self, change: &Change) -> Outcome {
        let key = (change.scope.clone(), change.user_id.clone());
        if change.arrived {
            let count = self.counts.entry(key.clone()).or_default();
            *count += 1;
            if *count > 1 || self.leaving.remove(&key).is_some() {
                return Outcome::Unchanged;
            }
            return Outcome::Arrived;
        }
        match self.counts.get_mut(&key) {
            Some(count) if *count > 1 => {
                *count -= 1;
                Outcome::Unchanged
            }
            Some(_) => {
                self.counts.remove(&key);
                self.departures += 1;
                self.leaving.insert(key, self.departures);
                Outcome::Departing(self.departures)
            }
            None => Outcome::Unchanged,
        }
    }

    /// The grace of departure `number` ended: true if no connection came back meanwhile (the
    /// departure is then announced, once).
    pub fn expire(&mut self, scope: &Scope, user_id: &str, number: u64) -> bool {
        let key = (scope.clone(), user_id.to_owned());
        if self.leaving.get(&key) == Some(&number) {
            self.leaving.remove(&key);
            return true;
        }
        false
    }

    /// Forgets everything, returning the users online in the system or within their grace
    /// (each once): when every client is closed at once and no timer will run.
    pub fn clear(&mut self) -> Vec<String> {
        let users = self
            .counts
            .keys()
            .chain(self.leaving.keys())
            .filter(|(scope, _)| *scope == Scope::System)
            .map(|(_, user)| user.clone())
            .collect::<std::collections::BTreeSet<_>>();
        self.counts.clear();
        self.leaving.clear();
        users.into_iter().collect()
    }

    /// How many of a user's connections count in a scope (what the tests read).
    #[cfg(test)]
    pub fn count(&self, scope: &Scope, user_id: &str) -> usize {
        self.counts
            .get(&(scope.clone(), user_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(scope: Scope, client: &str, arrived: bool) -> Change {
        Change {
            scope,
            user_id: "ann".into(),
            client_id: client.into(),
            extend: String::new(),
            arrived,
            reason: Some(OfflineReason::Closed),
        }
    }

    #[test]
    fn a_user_arrives_with_its_first_connection_and_leaves_with_its_last() {
        let mut presence = Presence::default();
        let system = Scope::System;
        assert_eq!(
            presence.apply(&change(system.clone(), "a", true)),
            Outcome::Arrived
        );
        assert_eq!(
            presence.apply(&change(system.clone(), "b", true)),
            Outcome::Unchanged
        );
        assert_eq!(
            presence.apply(&change(system.clone(), "a", false)),
            Outcome::Unchanged
        );
        let Outcome::Departing(n) = presence.apply(&change(system.clone(), "b", false)) else {
            panic!("the last connection left");
        };
        assert!(presence.expire(&system, "ann", n));
        assert!(!presence.expire(&system, "ann", n), "announced once");
        assert_eq!(presence.apply(&change(system, "c", true)), Outcome::Arrived);
    }

    #[test]
    fn a_connection_back_within_the_grace_cancels_the_departure() {
        let mut presence = Presence::default();
        let group = Scope::Group("room".into());
        presence.apply(&change(group.clone(), "a", true));
        let Outcome::Departing(n) = presence.apply(&change(group.clone(), "a", false)) else {
            panic!("the last connection left");
        };
        assert_eq!(
            presence.apply(&change(group.clone(), "b", true)),
            Outcome::Unchanged
        );
        assert!(!presence.expire(&group, "ann", n));
        assert_eq!(presence.count(&group, "ann"), 1);
        assert_eq!(presence.clear(), Vec::<String>::new());
    }
}
