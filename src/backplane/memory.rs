//! A single node: every command runs in this node's registry, and the directory is the registry
//! itself (with the store it writes systems to).

use actix::{Addr, Handler, Message};
use bytestring::ByteString;

use super::{Answer, Audience, Backplane, ByOwner, Command, Directory, Lease, Reply};
use crate::actors::messages::{self as m, RegistryResult};
use crate::actors::registry::SystemRegistry;
use crate::protocol::{AllGroups, OnlineList, SystemInfo};
use crate::settings::{SettingsUpdate, SystemSettings};

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

    fn make_reachable<'a>(&'a self, _: &'a str, _: &'a str) -> Reply<'a, Lease> {
        Box::pin(async { Ok(Lease::none()) })
    }

    fn on_owner<'a>(&'a self, _: &'a str, command: Box<dyn Command>) -> Reply<'a, Answer> {
        Box::pin(async move { command.apply(&self.registry).await.map(Answer::Here) })
    }

    fn on_every_node(&self, command: Box<dyn Command>) -> Reply<'_, Vec<Answer>> {
        Box::pin(async move {
            let reply = command.apply(&self.registry).await?;
            Ok(vec![Answer::Here(reply)])
        })
    }

    fn by_owner(&self, client_ids: Vec<String>) -> ByOwner {
        ByOwner {
            owned: vec![client_ids],
            unowned: Vec::new(),
        }
    }

    fn to_members<'a>(
        &'a self,
        system_id: &'a str,
        audience: Audience,
        frame: ByteString,
    ) -> Reply<'a, usize> {
        self.ask(m::Deliver {
            system_id: system_id.to_owned(),
            audience,
            frame,
        })
    }
}

impl Directory for MemoryBackplane {
    fn register(&self, system_id: String, settings: SystemSettings) -> Reply<'_, ()> {
        self.ask(m::Register {
            system_id,
            settings,
        })
    }
    fn update(&self, system_id: String, update: SettingsUpdate) -> Reply<'_, SystemSettings> {
        self.ask(m::UpdateSystem { system_id, update })
    }
    fn unregister(&self, system_id: String) -> Reply<'_, ()> {
        self.ask(m::Unregister { system_id })
    }
    fn system(&self, system_id: String) -> Reply<'_, SystemInfo> {
        self.ask(m::GetSystem { system_id })
    }
    fn members(&self, system_id: String, group_name: String) -> Reply<'_, OnlineList> {
        self.ask(m::GetOnlineList {
            system_id,
            group_name,
        })
    }
    fn groups(&self, system_id: String) -> Reply<'_, AllGroups> {
        self.ask(m::GetAllGroups { system_id })
    }
}
