//! One actor per (system, group): fans frames out to the group's members.
//!
//! The [`SystemRegistry`](super::registry::SystemRegistry) starts each `Group` under an
//! [`actix::Supervisor`] and is the only holder of its address, so the registry is its only
//! sender and the group sees joins, leaves and broadcasts in the order the registry decided them.
//! When the group empties, the registry drops the address; the actor then drains its mailbox and
//! stops for good (a supervisor only restarts an actor whose address is still held).
//!
//! What the supervisor guards, plainly: a group actor that stops while it still has members
//! (the one failure an actor can report: `ctx.stop()` from a handler) is restarted at once with
//! the same members, and the messages queued meanwhile are delivered, so the group keeps
//! delivering; `tests/api/supervision.rs` shows it. It does not guard against a panic: actix does
//! not catch panics, and one in a handler takes down the worker thread, as in any actix actor.
//! The member map here is this actor's delivery list; the registry's `Tenant` owns membership
//! and is the only source of the `Join`s and `Leave`s that change it.

use std::collections::HashMap;

use actix::{Actor, Context, Handler, Recipient, Supervised};
use bytestring::ByteString;

use super::messages::{Broadcast, ClientOverflowed, Join, Leave, Rejoin};
use super::outbox::{Pushed, SessionHandle};

pub struct Group {
    system_id: String,
    group_name: String,
    /// clientId → the member's session. Mirrors the registry's membership for this group.
    members: HashMap<String, SessionHandle>,
    /// Where to report a member whose outbound queue overflowed.
    registry: Recipient<ClientOverflowed>,
    /// Times the supervisor restarted this actor.
    restarts: u32,
}

impl Group {
    pub fn new(system_id: &str, group_name: &str, registry: Recipient<ClientOverflowed>) -> Self {
        Group {
            system_id: system_id.to_owned(),
            group_name: group_name.to_owned(),
            members: HashMap::new(),
            registry,
            restarts: 0,
        }
    }

    /// How many members it delivers to, and how many times it was restarted (test hooks).
    pub(super) fn state(&self) -> (usize, u32) {
        (self.members.len(), self.restarts)
    }

    fn send_to_all(&self, frame: &ByteString) {
        for (client_id, session) in &self.members {
            // Never waits on a session: a slow member cannot hold up the others.
            if session.push(frame) == Pushed::Overflowed {
                self.registry.do_send(ClientOverflowed {
                    system_id: self.system_id.clone(),
                    client_id: client_id.clone(),
                });
            }
        }
    }
}

impl Actor for Group {
    type Context = Context<Self>;
}

impl Supervised for Group {
    /// The supervisor restarts the same `Group` value, so members survive a restart as they are;
    /// only the actor's context (timers, futures) is reset.
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts += 1;
        log::warn!(
            "group actor {}/{} restarted by its supervisor ({} members kept)",
            self.system_id,
            self.group_name,
            self.members.len()
        );
    }
}

impl Handler<Join> for Group {
    type Result = ();
    fn handle(&mut self, msg: Join, _: &mut Context<Self>) {
        self.members.insert(msg.client_id, msg.session);
        if let Some(notice) = &msg.notice {
            self.send_to_all(notice);
        }
    }
}

impl Handler<Rejoin> for Group {
    type Result = ();
    fn handle(&mut self, msg: Rejoin, _: &mut Context<Self>) {
        if let Some(session) = self.members.get_mut(&msg.client_id) {
            *session = msg.session;
        }
    }
}

impl Handler<Leave> for Group {
    type Result = ();
    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        if self.members.remove(&msg.client_id).is_some() {
            if let Some(notice) = &msg.notice {
                self.send_to_all(notice);
            }
        }
    }
}

impl Handler<Broadcast> for Group {
    type Result = ();
    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) {
        self.send_to_all(&msg.frame);
    }
}
