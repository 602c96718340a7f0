//! `unbind_from_group`: removes a client from a group (1002 to the members left).

use actix::{Context, Handler};
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::events::Event;
use crate::actors::messages::Leave;
use crate::actors::messages::RegistryResult;
use crate::actors::outward::BackendEvent;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{check_group, CheckLimits, EmptyList, Name, OverLimit};
use crate::settings::EventName;

pub type Request = UnbindFromGroupRequest;

/// `unbind_from_group`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnbindFromGroupRequest {
    pub client_id: Name,
    pub group_name: Name,
}

impl CheckLimits for UnbindFromGroupRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_group(&self.group_name, limits)
    }
}

impl Operation for UnbindFromGroupRequest {
    const NAME: &'static str = "unbind_from_group";
    const SUMMARY: &'static str = "Unbinds a client from a group (1002 to those left)";
    const TAG: &'static str = "groups";
    const ERRORS: &'static [u16] = &[400, 401, 403, 404, 405, 413, 503];
    type Caller = SystemCaller;
    type Reply = EmptyList;
    type Command = UnbindFromGroup;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<EmptyList, ApiError> {
        let client_id = self.client_id.into_inner();
        let command = UnbindFromGroup {
            system_id: caller.system_id,
            client_id: client_id.clone(),
            group_name: self.group_name.into_inner(),
        };
        super::on_owner(node, &client_id, command).await?;
        Ok(EmptyList)
    }
}

/// Removes a client from a group on the node that owns it.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<()>")]
pub struct UnbindFromGroup {
    pub system_id: String,
    pub client_id: String,
    pub group_name: String,
}

impl ClientCommand for UnbindFromGroup {
    const METHOD: &'static str = UnbindFromGroupRequest::NAME;
    const CHANGES_MEMBERSHIP: bool = true;
    type Reply = ();
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<UnbindFromGroup> for SystemRegistry {
    type Result = RegistryResult<()>;
    fn handle(&mut self, cmd: UnbindFromGroup, _: &mut Context<Self>) -> Self::Result {
        let tenant = self.tenant(&cmd.system_id)?;
        let Some(left) = tenant.unbind(&cmd.client_id, &cmd.group_name)? else {
            return Ok(()); // Not a member: nothing to undo.
        };
        let user_id = tenant
            .client(&cmd.client_id)
            .map(|client| client.user_id.clone())
            .unwrap_or_default();
        if let Some(group) = &left.fan_out {
            group.do_send(Leave {
                client_id: cmd.client_id.clone(),
                notice: left.notice.clone(),
            });
        }
        let (client_id, group) = (&cmd.client_id, &cmd.group_name);
        self.hook(&cmd.system_id, EventName::GroupLeft, || {
            BackendEvent::group_left(client_id, group, &user_id, "unbind")
        });
        if left.fan_out.is_none() && self.decides_occupancy() {
            self.hook(&cmd.system_id, EventName::GroupVacated, || {
                BackendEvent::group_vacated(group)
            });
        }
        self.emit(|| Event::Unbound {
            system_id: cmd.system_id.clone(),
            client_id: cmd.client_id,
            group_name: cmd.group_name,
            notice: left.notice,
        });
        self.presence_changed(&cmd.system_id, left.changes);
        Ok(())
    }
}
