//! Test hooks, all in one place: messages that look inside the registry and the group actors,
//! or stop a group as a fault would. Hidden from the docs; nothing in the server sends them.

use actix::{ActorContext, Context, Handler, Message, MessageResult, ResponseFuture};

use super::group::Group;
use super::registry::SystemRegistry;

/// Checks that the registry's state keeps its rules (see
/// [`Tenant::violations`](super::tenant::Tenant::violations)). Result: the violations found,
/// empty when all hold.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct CheckInvariants;

/// What a group actor itself holds (not the registry's view of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupActorState {
    pub members: usize,
    /// How many times its supervisor has restarted it.
    pub restarts: u32,
}

/// Asks a group's actor for its own state; `None` if the group does not exist.
#[derive(Message)]
#[rtype(result = "Option<GroupActorState>")]
pub struct InspectGroup {
    pub system_id: String,
    pub group_name: String,
}

/// Stops a group's actor, as a fault would, so that its supervisor restarts it. Result: whether
/// the group exists.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct StopGroupActor {
    pub system_id: String,
    pub group_name: String,
}

/// Registry → group: stop yourself.
#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

/// Registry → group: report your state.
#[derive(Message)]
#[rtype(result = "GroupActorState")]
struct GetGroupActorState;

impl SystemRegistry {
    fn group_actor(&self, system_id: &str, group_name: &str) -> Option<actix::Addr<Group>> {
        let entry = self.systems.get(system_id)?.groups().get(group_name)?;
        Some(entry.fan_out.clone())
    }
}

impl Handler<CheckInvariants> for SystemRegistry {
    type Result = MessageResult<CheckInvariants>;
    fn handle(&mut self, _: CheckInvariants, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.systems
                .iter()
                .flat_map(|(system_id, tenant)| tenant.violations(system_id))
                .collect(),
        )
    }
}

impl Handler<InspectGroup> for SystemRegistry {
    type Result = ResponseFuture<Option<GroupActorState>>;
    fn handle(&mut self, msg: InspectGroup, _: &mut Context<Self>) -> Self::Result {
        let actor = self.group_actor(&msg.system_id, &msg.group_name);
        Box::pin(async move { actor?.send(GetGroupActorState).await.ok() })
    }
}

impl Handler<StopGroupActor> for SystemRegistry {
    type Result = bool;
    fn handle(&mut self, msg: StopGroupActor, _: &mut Context<Self>) -> bool {
        match self.group_actor(&msg.system_id, &msg.group_name) {
            Some(actor) => {
                actor.do_send(Crash);
                true
            }
            None => false,
        }
    }
}

impl Handler<Crash> for Group {
    type Result = ();
    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<GetGroupActorState> for Group {
    type Result = MessageResult<GetGroupActorState>;
    fn handle(&mut self, _: GetGroupActorState, _: &mut Context<Self>) -> Self::Result {
        let (members, restarts) = self.state();
        MessageResult(GroupActorState { members, restarts })
    }
}
