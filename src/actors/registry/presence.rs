//! Users' presence in the registry: carrying out the [`Change`]s a tenant reports. On one node
//! the registry decides them itself ([`Presence`](crate::actors::presence::Presence)):
//! a user's first connection is announced at once (`user_online`; under presence "user", the
//! 1001 to the group), its last one after `--presence-grace` if none came back (`user_offline`,
//! the 1002). In a cluster the changes go to the mirror, which decides them in Redis for every
//! node at once.

use std::time::Instant;

use super::SystemRegistry;
use crate::actors::events::Event;
use crate::actors::messages::Broadcast;
use crate::actors::outward::{BackendEvent, OfflineReason};
use crate::actors::presence::{Change, Outcome, Scope};
use crate::settings::{EventName, PresenceMode};

/// How often departures whose grace ended are looked for.
pub(super) const DEPARTURES_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

impl SystemRegistry {
    /// Carries out what a change of `system_id`'s clients did to their users' presence.
    pub(crate) fn presence_changed(&mut self, system_id: &str, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        if !self.decides_occupancy() {
            self.emit(|| Event::Presence {
                system_id: system_id.to_owned(),
                changes,
                rewrite: false,
            });
            return;
        }
        let deadline = Instant::now() + self.settings.presence_grace;
        for change in changes {
            let Some(tenant) = self.systems.get_mut(system_id) else {
                return;
            };
            match tenant.presence_mut().apply(&change) {
                Outcome::Arrived => self.announce(system_id, &change),
                Outcome::Departing(number) => {
                    self.next_departure += 1;
                    self.departures.insert(
                        (deadline, self.next_departure),
                        (system_id.to_owned(), change, number),
                    );
                }
                Outcome::Unchanged => {}
            }
        }
    }

    /// Announces that a user arrived in, or left, a scope: `user_online` / `user_offline` for
    /// the system; the 1001 / 1002 to a group's members under presence "user".
    fn announce(&self, system_id: &str, change: &Change) {
        let Some(tenant) = self.systems.get(system_id) else {
            return;
        };
        match &change.scope {
            Scope::System => {
                let (name, event) = change.event();
                self.hook(system_id, name, event);
            }
            Scope::Group(group) if tenant.settings.presence == PresenceMode::User => {
                if let Some(entry) = tenant.groups().get(group) {
                    entry.fan_out.do_send(Broadcast {
                        frame: change.notice(),
                    });
                }
            }
            Scope::Group(_) => {}
        }
    }

    /// Announces the departures whose grace ended with no connection back.
    pub(super) fn departures_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.departures.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (system_id, change, number) = entry.remove();
            let expired = self.systems.get_mut(&system_id).is_some_and(|tenant| {
                tenant
                    .presence_mut()
                    .expire(&change.scope, &change.user_id, number)
            });
            if expired {
                self.announce(&system_id, &change);
            }
        }
    }

    /// Every client of a system is being closed at once (`reason`): on one node its users go
    /// offline now, since nothing will come back here; a cluster's mirror hears each departure
    /// and gives other nodes the grace to take the users over.
    pub(super) fn everyone_leaves(
        &mut self,
        system_id: &str,
        changes: Vec<Change>,
        reason: OfflineReason,
        tenant: &mut super::SystemState,
    ) {
        if !self.decides_occupancy() {
            return self.presence_changed(system_id, changes);
        }
        for user_id in tenant.presence_mut().clear() {
            self.settings.outward.send(
                system_id,
                Some(&tenant.settings),
                EventName::UserOffline,
                || BackendEvent::user_offline(&user_id, reason),
            );
        }
    }
}
