//! `bind_to_group`: adds a client to a group, with the userId and extend its members see (1001
//! to every member, the new one included).

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::events::Event;
use crate::actors::group::Group;
use crate::actors::messages::RegistryResult;
use crate::actors::messages::{ClientOverflowed, Join};
use crate::actors::outward::BackendEvent;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{
    check_group, check_len, check_user_id, CheckLimits, EmptyList, Name, OverLimit,
};
use crate::settings::EventName;
use actix::{AsyncContext, Recipient, Supervisor};

pub type Request = BindToGroupRequest;

/// `bind_to_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindToGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub extend: String,
}

impl CheckLimits for BindToGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)?;
        check_user_id("userId", &self.user_id, limits)?;
        check_len("extend", &self.extend, limits.max_extend_len)
    }
}

impl Operation for BindToGroupRequest {
    const NAME: &'static str = "bind_to_group";
    const SUMMARY: &'static str = "Binds a client to a group (1001 to its members)";
    const TAG: &'static str = "groups";
    const ERRORS: &'static [u16] = &[400, 401, 403, 404, 405, 409, 413, 503];
    type Caller = SystemCaller;
    type Reply = EmptyList;
    type Command = BindToGroup;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        let client_id = self.client_id.into_inner();
        let command = BindToGroup {
            system_id: caller.system_id,
            client_id: client_id.clone(),
            group_name: self.group_name.into_inner(),
            user_id: self.user_id,
            extend: self.extend,
        };
        super::on_owner(node, &client_id, command).await?;
        Ok(EmptyList)
    }
}

/// Adds a client to a group on the node that owns it.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<()>")]
pub struct BindToGroup {
    pub system_id: String,
    pub client_id: String,
    pub group_name: String,
    pub user_id: String,
    pub extend: String,
}

impl ClientCommand for BindToGroup {
    const METHOD: &'static str = BindToGroupRequest::NAME;
    const CHANGES_MEMBERSHIP: bool = true;
    type Reply = ();
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<BindToGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, cmd: BindToGroup, ctx: &mut Context<Self>) -> Self::Result {
        let overflow: Recipient<ClientOverflowed> = ctx.address().recipient();
        let limits = self.limits();
        let system_id = cmd.system_id.clone();
        let group_name = cmd.group_name.clone();
        let bound = self.tenant(&cmd.system_id)?.bind(
            &cmd.client_id,
            &cmd.group_name,
            cmd.user_id,
            cmd.extend,
            limits,
            || {
                let group = Group::new(&system_id, &group_name, overflow);
                Supervisor::start(move |_| group)
            },
        )?;
        if let Some(joined) = &bound.joined {
            let (client_id, group) = (&cmd.client_id, &cmd.group_name);
            if joined.occupied && self.decides_occupancy() {
                self.hook(&cmd.system_id, EventName::GroupOccupied, || {
                    BackendEvent::group_occupied(group)
                });
            }
            self.hook(&cmd.system_id, EventName::GroupJoined, || {
                BackendEvent::group_joined(client_id, group, &bound.user_id, &bound.extend)
            });
        }
        let notice = bound
            .joined
            .as_ref()
            .and_then(|joined| joined.notice.clone());
        self.emit(|| Event::Bound {
            system_id: cmd.system_id.clone(),
            client_id: cmd.client_id.clone(),
            group_name: cmd.group_name,
            all_groups: bound.all_groups,
            user_id: bound.user_id,
            extend: bound.extend,
            joined: bound.joined.is_some(),
            notice,
        });
        if let Some(joined) = bound.joined {
            joined.fan_out.do_send(Join {
                client_id: cmd.client_id,
                session: joined.session,
                notice: joined.notice,
            });
        }
        // After the Join: an arrival announced to the group reaches the new member too.
        self.presence_changed(&cmd.system_id, bound.changes);
        Ok(())
    }
}
