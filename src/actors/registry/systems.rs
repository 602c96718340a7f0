//! The registry's handlers for systems themselves: register, update, show, unregister. Each
//! change is written to the store before it is made here, so a reply means "durable".

use actix::{Context, Handler};

use super::{SystemRegistry, Tenant};
use crate::actors::messages::*;
use crate::actors::outward::OfflineReason;
use crate::protocol::{CloseReason, SystemInfo};
use crate::settings::SystemSettings;

impl Handler<Register> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: Register, _: &mut Context<Self>) -> Self::Result {
        if self.systems.contains_key(&msg.system_id) {
            return Err(RegistryError::SystemExists(msg.system_id));
        }
        self.store
            .put(&msg.system_id, &msg.settings)
            .map_err(|err| RegistryError::Storage(err.to_string()))?;
        log::info!(systemId = msg.system_id.as_str(); "system '{}' registered", msg.system_id);
        self.systems
            .insert(msg.system_id, Tenant::new(msg.settings));
        Ok(())
    }
}

impl Handler<UpdateSystem> for SystemRegistry {
    type Result = RegistryResult<SystemSettings>;
    fn handle(&mut self, msg: UpdateSystem, _: &mut Context<Self>) -> Self::Result {
        let mut settings = self.tenant(&msg.system_id)?.settings.clone();
        settings.apply(&msg.update);
        self.store
            .put(&msg.system_id, &settings)
            .map_err(|err| RegistryError::Storage(err.to_string()))?;
        self.settings
            .outward
            .settings_changed(&msg.system_id, &settings, &msg.update);
        self.tenant(&msg.system_id)?.settings = settings.clone();
        Ok(settings)
    }
}

impl Handler<GetSystem> for SystemRegistry {
    type Result = RegistryResult<SystemInfo>;
    fn handle(&mut self, msg: GetSystem, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&msg.system_id)?;
        let clients = tenant.clients().len();
        Ok(SystemInfo::new(msg.system_id, &tenant.settings, clients))
    }
}

impl Handler<Unregister> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, msg: Unregister, _: &mut Context<Self>) -> Self::Result {
        self.tenant(&msg.system_id)?;
        self.store
            .remove(&msg.system_id)
            .map_err(|err| RegistryError::Storage(err.to_string()))?;
        if let Some(mut tenant) = self.systems.remove(&msg.system_id) {
            log::info!(systemId = msg.system_id.as_str(); "system '{}' unregistered", msg.system_id);
            self.close_all(
                &msg.system_id,
                &mut tenant,
                (CloseReason::SystemRemoved, OfflineReason::SystemRemoved),
                "system removed",
            );
            // What is queued for its webhook still goes out (the sender keeps its last target).
        }
        Ok(())
    }
}
