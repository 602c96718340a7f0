//! The registry's handlers that concern every system at once: counts for `/healthz` and
//! `/metrics`, shutdown, and writing everything to the cluster again.

use actix::{Context, Handler, MessageResult};

use super::SystemRegistry;
use crate::actors::events::Event;
use crate::actors::messages::*;
use crate::actors::outward::OfflineReason;
use crate::protocol::CloseReason;

impl Handler<GetStats> for SystemRegistry {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Context<Self>) -> Self::Result {
        let mut stats = RegistryStats {
            systems: self.systems.len(),
            away_bytes: self.away.held(),
            store: self.store.path().map(|_| match self.store.failing() {
                None => StoreHealth::Ok,
                Some(_) => StoreHealth::Failing,
            }),
            ..RegistryStats::default()
        };
        for tenant in self.systems.values() {
            stats.clients += tenant.clients().len();
            stats.groups += tenant.groups().len();
            stats.away += tenant
                .clients()
                .values()
                .filter(|c| c.away.is_some())
                .count();
        }
        MessageResult(stats)
    }
}

impl Handler<GetSystemClients> for SystemRegistry {
    type Result = MessageResult<GetSystemClients>;
    fn handle(&mut self, _: GetSystemClients, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.systems
                .iter()
                .map(|(id, tenant)| (id.clone(), tenant.clients().len()))
                .collect(),
        )
    }
}

impl Handler<Shutdown> for SystemRegistry {
    type Result = usize;
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> usize {
        self.shutting_down = true;
        let mut closed = 0;
        let systems = std::mem::take(&mut self.systems);
        for (system_id, mut tenant) in systems {
            closed += self.close_all(
                &system_id,
                &mut tenant,
                (CloseReason::Shutdown, OfflineReason::Shutdown),
                "server shutting down",
            );
            // The system stays registered; only its clients are gone.
            self.systems.insert(system_id, tenant);
        }
        closed
    }
}

impl Handler<ReportAll> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, _: ReportAll, _: &mut Context<Self>) {
        for (system_id, tenant) in &self.systems {
            for (client_id, client) in tenant.clients() {
                self.emit(|| Event::Connected {
                    system_id: system_id.clone(),
                    client_id: client_id.clone(),
                });
                // One event carries the client's whole membership.
                if let Some(first_group) = client.groups.first() {
                    self.emit(|| Event::Bound {
                        system_id: system_id.clone(),
                        client_id: client_id.clone(),
                        group_name: first_group.clone(),
                        all_groups: client.groups.iter().cloned().collect(),
                        user_id: client.user_id.clone(),
                        extend: client.extend.clone(),
                        joined: false,
                        notice: None,
                    });
                }
                let changes = client.presence_changes(client_id, true, None);
                if !changes.is_empty() {
                    self.emit(|| Event::Presence {
                        system_id: system_id.clone(),
                        changes,
                        rewrite: true,
                    });
                }
            }
        }
    }
}
