//! The `SystemRegistry` actor: the single source of truth for systems, clients and groups.
//!
//! Every change of state goes through this one actor, so each REST call sees and makes a
//! consistent change: nothing is half-applied. The state itself is plain data, a
//! [`Tenant`] per system that keeps the rules (see [`super::tenant`]); the handlers here look
//! the system up, call one `Tenant` method, and carry out what it returns: a `Join` or `Leave`
//! for a group's supervised [`Group`] actor (which does the fan-out), a close for a session, an
//! [`Event`] for the cluster. Pushes to one client or a whole system go straight to the
//! sessions' outboxes. No handler here awaits a session. In cluster mode the registry still holds
//! only this node's clients, and reports every change to them to the cluster's writer, in order.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler};
use bytestring::ByteString;

mod clients;
mod presence;
mod recovery;
mod systems;
mod whole;

use super::away::AwayBudget;
use super::events::{Event, EventSink};
use super::group::Group;
use super::messages::*;
use super::outbox::{Pushed, SessionCommand, SessionHandle};
use super::outward::{BackendEvent, Offline, OfflineReason, Outward};
use super::presence::Change;
use super::resume::ResumeBook;
use super::tenant::{Client, MembershipLimits, Removed, Tenant};
use crate::config::RecoveryConfig;
use crate::metrics::Metrics;
use crate::protocol::{self, AllGroups, CloseReason, OnlineList, ResumeRefusal};
use crate::settings::{EventName, PresenceMode};
use crate::store::{StoreError, SystemStore};

/// What the registry enforces, fixed at start.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub limits: MembershipLimits,
    /// Where changes to this node's clients are reported, in order, if anything mirrors them
    /// (in cluster mode, the writer that keeps Redis up to date).
    pub events: Option<EventSink>,
    /// Where events about clients go (webhooks, MQTT), and settings changes they follow.
    pub outward: Outward,
    /// Whether this registry's groups are the whole of them, so that it decides when a group
    /// is occupied or vacated. In a cluster the backplane decides, for all nodes at once.
    pub local_occupancy: bool,
    /// Connection state recovery.
    pub recovery: RecoveryConfig,
    /// How long a user whose last connection left still counts as online (`--presence-grace`).
    pub presence_grace: std::time::Duration,
}

/// A system's state as the registry holds it: sessions reached through their outboxes, groups
/// through their actors.
pub(super) type SystemState = Tenant<SessionHandle, Addr<Group>>;

pub struct SystemRegistry {
    /// systemId → its state.
    pub(super) systems: HashMap<String, SystemState>,
    /// Where systems and their settings are kept across restarts (single node). Written in the
    /// registry's own turn, before the reply: system changes are rare, and this keeps them in the
    /// order the registry decided them and makes a 200 mean "durable".
    store: SystemStore,
    settings: RegistryConfig,
    metrics: Arc<Metrics>,
    /// Set by [`Shutdown`]: from then on new connections are refused.
    shutting_down: bool,
    /// Resume tokens given out, and those whose client did not come back.
    book: ResumeBook,
    /// What every away client holds together, charged by their outboxes.
    away: Arc<AwayBudget>,
    /// The away clients by absence number, oldest first: whom [`super::away::TrimAway`] sends offline
    /// first. An entry outlives its absence until the window's timer removes it, so a lookup
    /// checks that the client is still away with that number.
    away_order: BTreeMap<u64, (String, String)>,
    /// Users' departures in their grace, by deadline (one node: see [`presence`]): the system,
    /// the change that made the user leave, and the departure's number in its tenant.
    departures: BTreeMap<(std::time::Instant, u64), (String, Change, u64)>,
    next_departure: u64,
}

impl Actor for SystemRegistry {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        use actix::AsyncContext;
        ctx.run_interval(presence::DEPARTURES_EVERY, |registry, _| {
            registry.departures_due()
        });
    }
}

impl SystemRegistry {
    /// A registry holding the systems `store` kept.
    pub fn new(
        settings: RegistryConfig,
        metrics: Arc<Metrics>,
        store: SystemStore,
        away: Arc<AwayBudget>,
    ) -> Result<Self, StoreError> {
        let systems = store
            .load()?
            .into_iter()
            .map(|(system_id, settings)| (system_id, Tenant::new(settings)))
            .collect();
        Ok(SystemRegistry {
            systems,
            store,
            settings,
            metrics,
            shutting_down: false,
            book: ResumeBook::default(),
            away,
            away_order: BTreeMap::new(),
            departures: BTreeMap::new(),
            next_departure: 0,
        })
    }

    /// The membership limits (`--max-groups-per-client`, `--max-clients-per-group`).
    pub(crate) fn limits(&self) -> MembershipLimits {
        self.settings.limits
    }

    /// Whether this registry's groups are the whole of them, so that it decides when a group is
    /// occupied or vacated (in a cluster, the backplane decides, for all nodes at once).
    pub(crate) fn decides_occupancy(&self) -> bool {
        self.settings.local_occupancy
    }

    /// A client of a system, if both exist.
    pub(crate) fn find_client(
        &self,
        system_id: &str,
        client_id: &str,
    ) -> Option<&Client<SessionHandle>> {
        self.systems.get(system_id)?.clients().get(client_id)
    }

    pub(crate) fn tenant(&mut self, system_id: &str) -> RegistryResult<&mut SystemState> {
        self.systems
            .get_mut(system_id)
            .ok_or_else(|| RegistryError::UnknownSystem(system_id.to_owned()))
    }

    /// Passes a change on to the mirror, if there is one.
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(sink) = &self.settings.events {
            let _ = sink.send(event());
        }
    }

    /// Sends an event about the system wherever its settings ask for it (webhook, MQTT).
    pub(crate) fn hook(
        &self,
        system_id: &str,
        name: EventName,
        event: impl FnOnce() -> BackendEvent,
    ) {
        let settings = self.systems.get(system_id).map(|tenant| &tenant.settings);
        self.settings.outward.send(system_id, settings, name, event);
    }

    /// Removes a client: its remaining groups get the 1002 notice, the mirror and the outlets
    /// are told, nothing more is queued for its session. Returns the session, to be closed by
    /// the caller.
    pub(crate) fn remove_client(
        &mut self,
        system_id: &str,
        client_id: &str,
        offline: Offline,
    ) -> Option<SessionHandle> {
        let Removed {
            session,
            user_id,
            groups,
            resume_token,
            notice,
            remaining,
            vacated,
            changes,
        } = self
            .systems
            .get_mut(system_id)?
            .remove(client_id, offline.reason)?;
        if let Some(token) = &resume_token {
            self.book.forget(token);
        }
        for group in &groups {
            self.hook(system_id, EventName::GroupLeft, || {
                BackendEvent::group_left(client_id, group, &user_id, "offline")
            });
        }
        if self.settings.local_occupancy {
            for group in &vacated {
                self.hook(system_id, EventName::GroupVacated, || {
                    BackendEvent::group_vacated(group)
                });
            }
        }
        self.hook(system_id, EventName::ClientOffline, || {
            BackendEvent::client_offline(client_id, &user_id, &groups, offline)
        });
        for group in remaining {
            group.do_send(Leave {
                client_id: client_id.to_owned(),
                notice: notice.clone(),
            });
        }
        session.start_closing();
        session.retire();
        self.emit(|| Event::Gone {
            system_id: system_id.to_owned(),
            client_id: client_id.to_owned(),
            groups,
            notice,
        });
        self.presence_changed(system_id, changes);
        Some(session)
    }

    /// Removes a client whose outbound queue overflowed and closes it with 4008 (its session
    /// cuts the connection if it stays stuck, see [`WsSession`](super::session::WsSession)).
    /// An away client's kept frames passed `--recovery-buffer`: it goes offline (it has no
    /// connection to close).
    pub(crate) fn evict_slow(&mut self, system_id: &str, client_id: &str) {
        if self.is_away(system_id, client_id) {
            self.end_absence(system_id, client_id, ResumeRefusal::BoundPassed);
            return;
        }
        let offline = Offline::new(OfflineReason::SlowConsumer, Some(4008));
        let Some(session) = self.remove_client(system_id, client_id, offline) else {
            return;
        };
        log::warn!(systemId = system_id, clientId = client_id; "client {client_id} of system '{system_id}' closed as a slow consumer");
        self.close(&session, CloseReason::Slow, "slow consumer");
    }

    /// Closes every client of a system at once, its groups first (which spares everyone the
    /// 1002 storm of a mass disconnect). Returns how many were closed.
    fn close_all(
        &mut self,
        system_id: &str,
        tenant: &mut SystemState,
        (why, offline): (CloseReason, OfflineReason),
        reason: &str,
    ) -> usize {
        let groups: Vec<String> = tenant.groups().keys().cloned().collect();
        let changes: Vec<Change> = tenant
            .clients()
            .iter()
            .flat_map(|(id, client)| client.presence_changes(id, false, Some(offline)))
            .collect();
        let clients = tenant.drain();
        let count = clients.len();
        let settings = Some(&tenant.settings);
        let hooks = &self.settings.outward;
        let offline = Offline::new(offline, why.code());
        for (client_id, client) in clients {
            if let Some(token) = &client.resume_token {
                self.book.forget(token);
            }
            let client_groups: Vec<String> = client.groups.iter().cloned().collect();
            for group in &client_groups {
                hooks.send(system_id, settings, EventName::GroupLeft, || {
                    BackendEvent::group_left(&client_id, group, &client.user_id, "offline")
                });
            }
            hooks.send(system_id, settings, EventName::ClientOffline, || {
                BackendEvent::client_offline(&client_id, &client.user_id, &client_groups, offline)
            });
            // Other nodes' members still hear that these clients went offline (or, under
            // presence "user", that their users did, from the mirror).
            let per_connection =
                tenant.settings.presence == PresenceMode::Client || client.user_id.is_empty();
            let notice = (!client.groups.is_empty() && per_connection).then(|| {
                protocol::presence_frame(false, &client_id, &client.user_id, &client.extend)
            });
            self.emit(|| Event::Gone {
                system_id: system_id.to_owned(),
                client_id: client_id.clone(),
                groups: client.groups.iter().cloned().collect(),
                notice,
            });
            client.session.start_closing();
            client.session.retire();
            self.close(&client.session, why, reason);
        }
        if self.settings.local_occupancy {
            for group in &groups {
                hooks.send(system_id, settings, EventName::GroupVacated, || {
                    BackendEvent::group_vacated(group)
                });
            }
        }
        self.everyone_leaves(system_id, changes, offline.reason, tenant);
        count
    }

    pub(crate) fn close(&self, session: &SessionHandle, why: CloseReason, reason: &str) {
        self.metrics.client_closed(why);
        session.command(SessionCommand::Close {
            kind: why,
            reason: reason.into(),
            frame: None,
        });
    }

    /// Closes a client as `close_client` does (1000): removed at once, so a reply already
    /// reflects it; the session's own Disconnect, when it stops, then finds nothing to do.
    /// False if it is not connected here.
    pub(crate) fn close_by_rest(&mut self, system_id: &str, client_id: &str) -> bool {
        let offline = Offline::new(OfflineReason::CloseClient, Some(1000));
        let Some(session) = self.remove_client(system_id, client_id, offline) else {
            return false;
        };
        self.close(&session, CloseReason::Rest, "closed by the server");
        true
    }

    /// Pushes `frame` to each of `client_ids` that is connected, once each, evicting those that
    /// overflow. Returns the ids that are not connected.
    pub(crate) fn push_to_clients(
        &mut self,
        system_id: &str,
        client_ids: &[String],
        frame: &ByteString,
    ) -> RegistryResult<Vec<String>> {
        let tenant = self.tenant(system_id)?;
        let mut missing = Vec::new();
        let mut overflowed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for client_id in client_ids {
            // A clientId listed twice still gets the message once.
            if !seen.insert(client_id) {
                continue;
            }
            match tenant.clients().get(client_id) {
                Some(client) if client.session.push(frame) == Pushed::Overflowed => {
                    overflowed.push(client_id.clone())
                }
                Some(_) => {}
                None => missing.push(client_id.clone()),
            }
        }
        for client_id in overflowed {
            self.evict_slow(system_id, &client_id);
        }
        Ok(missing)
    }
}

impl Handler<Deliver> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        match msg.audience {
            Audience::Group(group_name) => Ok(match tenant.groups().get(&group_name) {
                Some(entry) => {
                    entry.fan_out.do_send(Broadcast { frame: msg.frame });
                    entry.members.len()
                }
                None => 0,
            }),
            Audience::System => {
                let overflowed: Vec<String> = tenant
                    .clients()
                    .iter()
                    .filter(|(_, client)| client.session.push(&msg.frame) == Pushed::Overflowed)
                    .map(|(id, _)| id.clone())
                    .collect();
                let count = tenant.clients().len();
                for client_id in overflowed {
                    self.evict_slow(&msg.system_id, &client_id);
                }
                Ok(count)
            }
        }
    }
}

impl Handler<GetOnlineList> for SystemRegistry {
    type Result = RegistryResult<OnlineList>;
    fn handle(&mut self, msg: GetOnlineList, _: &mut Context<Self>) -> Self::Result {
        Ok(self.tenant(&msg.system_id)?.online_list(&msg.group_name))
    }
}

impl Handler<GetAllGroups> for SystemRegistry {
    type Result = RegistryResult<AllGroups>;
    fn handle(&mut self, msg: GetAllGroups, _: &mut Context<Self>) -> Self::Result {
        Ok(AllGroups(self.tenant(&msg.system_id)?.all_groups()))
    }
}
