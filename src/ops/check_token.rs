//! `check_token`: which systems the caller's token acts for. It succeeds for any valid token, so
//! a token can be checked without touching a system.

use serde::Serialize;

use super::{Caller, NoCommand, Node, Operation};
use crate::auth::Scope as TokenScope;
use crate::error::ApiError;

pub type Request = CheckTokenRequest;

crate::protocol::empty_request!(
    /// `check_token` takes an empty object (or no body).
    CheckTokenRequest
);

/// `data` of `check_token`: the system the token is scoped to, `null` for every system.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub system_id: Option<String>,
}

impl Operation for CheckTokenRequest {
    const NAME: &'static str = "check_token";
    const SUMMARY: &'static str = "Which systems the token acts for";
    const TAG: &'static str = "tokens";
    type Caller = Caller;
    type Reply = TokenInfo;
    type Command = NoCommand;

    async fn call(self, _: &Node, caller: Caller) -> Result<TokenInfo, ApiError> {
        let system_id = match caller.scope {
            TokenScope::Admin => None,
            TokenScope::System(system_id) => Some(system_id),
        };
        Ok(TokenInfo { system_id })
    }
}
