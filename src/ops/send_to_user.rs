//! `send_to_user`: pushes a message to every connection of a user, on every node.

use actix::{Context, Handler};
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use super::{ClientCommand, Node, Operation, SystemCaller};
use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::{
    self as p, check_message, check_user_id, send_request, CheckLimits, Name, OverLimit,
};

pub type Request = SendToUserRequest;

send_request!(
    /// `send_to_user`.
    SendToUserRequest { user_id: Name }
);

impl CheckLimits for SendToUserRequest {
    fn check_limits(&self, limits: &Limits) -> Result<(), OverLimit> {
        check_user_id("userId", self.user_id.as_str(), limits)?;
        check_message(self.message(), limits)
    }
}

impl Operation for SendToUserRequest {
    const NAME: &'static str = "send_to_user";
    const SUMMARY: &'static str = "Pushes a message to every connection of a user";
    const TAG: &'static str = "users";
    type Caller = SystemCaller;
    type Reply = p::CountReply;
    type Command = SendToUser;

    async fn call(self, node: &Node, caller: SystemCaller) -> Result<p::CountReply, ApiError> {
        let message_id = p::new_id();
        let frame = super::encode(node, &message_id, self.message())?;
        let command = SendToUser {
            system_id: caller.system_id,
            user_id: self.user_id.into_inner(),
            frame,
        };
        let counts = super::on_every_node(node, command).await?;
        Ok(p::CountReply {
            message_id,
            count: counts.into_iter().sum(),
        })
    }
}

/// Pushes a frame to this node's connections of a user, once each. Result: how many.
#[derive(Debug, actix::Message, Serialize, Deserialize)]
#[rtype(result = "RegistryResult<usize>")]
pub struct SendToUser {
    pub system_id: String,
    pub user_id: String,
    pub frame: ByteString,
}

impl ClientCommand for SendToUser {
    const METHOD: &'static str = SendToUserRequest::NAME;
    type Reply = usize;
    fn system_id(&self) -> &str {
        &self.system_id
    }
}

impl Handler<SendToUser> for SystemRegistry {
    type Result = RegistryResult<usize>;
    fn handle(&mut self, cmd: SendToUser, _: &mut Context<Self>) -> Self::Result {
        let clients: Vec<String> = self
            .tenant(&cmd.system_id)?
            .user_clients(&cmd.user_id)
            .map(|(client_id, _)| client_id.clone())
            .collect();
        let missing = self.push_to_clients(&cmd.system_id, &clients, &cmd.frame)?;
        Ok(clients.len() - missing.len())
    }
}
