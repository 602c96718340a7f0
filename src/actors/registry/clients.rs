//! The registry's handlers for a client's own life: connecting, going away, speaking, and
//! overflowing its queue.

use actix::{Context, Handler};

use super::SystemRegistry;
use crate::actors::events::Event;
use crate::actors::messages::*;
use crate::actors::outbox::SessionCommand;
use crate::actors::outward::{BackendEvent, OfflineReason};
use crate::protocol::{self, CloseReason};
use crate::settings::EventName;

impl Handler<Connect> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        let refusal = if self.shutting_down {
            Err("the server is shutting down".to_owned())
        } else {
            match msg.system_id.as_deref().filter(|s| !s.is_empty()) {
                None => Err("systemId is required: pass ?systemId=... or a SystemId header".into()),
                Some(system_id) if !self.systems.contains_key(system_id) => {
                    Err(format!("system '{system_id}' is not registered"))
                }
                Some(system_id) => Ok(system_id.to_owned()),
            }
        };
        let system_id = match refusal {
            Ok(system_id) => system_id,
            Err(reason) => {
                // A mirror may hold the client already (the handshake made it reachable): take it back.
                if let Some(system_id) = &msg.system_id {
                    self.emit(|| Event::Gone {
                        system_id: system_id.clone(),
                        client_id: msg.client_id.clone(),
                        groups: Vec::new(),
                        notice: None,
                    });
                }
                msg.session.command(SessionCommand::Close {
                    kind: CloseReason::Refused,
                    frame: Some(protocol::refusal_frame(&reason)),
                    reason,
                });
                return;
            }
        };
        log::debug!(systemId = system_id.as_str(), clientId = msg.client_id.as_str(); "client connected");
        self.accept(system_id, msg);
    }
}

impl Handler<Disconnect> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, ctx: &mut Context<Self>) {
        let Some(client) = self.find_client(&msg.system_id, &msg.client_id) else {
            return;
        };
        // The client went on with another session (a resume): this one's end changes nothing.
        if !client.session.is(&msg.outbox) {
            return;
        }
        // Only a connection lost without a close frame may be resumed.
        let lost = matches!(
            msg.offline.reason,
            OfflineReason::ConnectionLost | OfflineReason::Timeout
        );
        match self.settings.recovery.window() {
            Some(window) if lost && client.resume_token.is_some() => {
                self.park(ctx, &msg.system_id, &msg.client_id, window)
            }
            _ => {
                self.remove_client(&msg.system_id, &msg.client_id, msg.offline);
            }
        }
    }
}

impl Handler<ClientMessage> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: ClientMessage, _: &mut Context<Self>) {
        let Some(client) = self.find_client(&msg.system_id, &msg.client_id) else {
            return;
        };
        let (user_id, groups) = (&client.user_id, &client.groups);
        self.hook(&msg.system_id, EventName::ClientMessage, || {
            let groups: Vec<String> = groups.iter().cloned().collect();
            BackendEvent::client_message(&msg.client_id, user_id, &groups, &msg.text)
        });
    }
}

impl Handler<ClientOverflowed> for SystemRegistry {
    type Result = ();
    fn handle(&mut self, msg: ClientOverflowed, _: &mut Context<Self>) {
        self.evict_slow(&msg.system_id, &msg.client_id);
    }
}
