//! A single node: every operation is the command handled by this node's registry.

use actix::{Addr, Handler, Message};

use super::{Backplane, Lease, Reply};
use crate::actors::messages::{self as m, RegistryResult};
use crate::actors::registry::SystemRegistry;
use crate::protocol::SystemInfo;
use crate::settings::SystemSettings;

pub struct MemoryBackplane {
    registry: Addr<SystemRegistry>,
}

impl MemoryBackplane {
    pub fn new(registry: Addr<SystemRegistry>) -> MemoryBackplane {
        MemoryBackplane { registry }
    }

    fn ask<M, T>(&self, cmd: M) -> Reply<'_, T>
    where
        M: Message<Result = RegistryResult<T>> + Send + 'static,
        T: Send + 'static,
        SystemRegistry: Handler<M>,
    {
        Box::pin(async move { Ok(self.registry.send(cmd).await??) })
    }
}

impl Backplane for MemoryBackplane {
    fn new_client_id(&self) -> String {
        crate::protocol::new_id()
    }

    fn admit<'a>(&'a self, _: &'a str, _: &'a str) -> Reply<'a, Lease> {
        Box::pin(async { Ok(Lease::none()) })
    }

    fn register(&self, cmd: m::Register) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn update_system(&self, cmd: m::UpdateSystem) -> Reply<'_, SystemSettings> {
        self.ask(cmd)
    }
    fn get_system(&self, cmd: m::GetSystem) -> Reply<'_, SystemInfo> {
        self.ask(cmd)
    }
    fn unregister(&self, cmd: m::Unregister) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn send_to_client(&self, cmd: m::SendToClient) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn send_to_clients(&self, cmd: m::SendToClients) -> Reply<'_, Vec<String>> {
        self.ask(cmd)
    }
    fn send_to_group(&self, cmd: m::SendToGroup) -> Reply<'_, usize> {
        self.ask(cmd)
    }
    fn send_to_system(&self, cmd: m::SendToSystem) -> Reply<'_, usize> {
        self.ask(cmd)
    }
    fn bind_to_group(&self, cmd: m::BindToGroup) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn unbind_from_group(&self, cmd: m::UnbindFromGroup) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn get_online_list(&self, cmd: m::GetOnlineList) -> Reply<'_, crate::protocol::OnlineList> {
        self.ask(cmd)
    }
    fn get_all_groups(
        &self,
        cmd: m::GetAllGroups,
    ) -> Reply<'_, std::collections::BTreeMap<String, Vec<String>>> {
        self.ask(cmd)
    }
    fn close_client(&self, cmd: m::CloseClient) -> Reply<'_, ()> {
        self.ask(cmd)
    }
    fn get_client_info(&self, cmd: m::GetClientInfo) -> Reply<'_, crate::protocol::ClientInfo> {
        self.ask(cmd)
    }
}
