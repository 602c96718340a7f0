//! The REST operations, `POST /api/<method>`: one file per method, and one list of them (at the
//! end of this file) from which the method table ([`METHODS`]), each method's token scope
//! ([`SCOPES`]), the HTTP routes and the OpenAPI paths ([`each_method`], which `http::api` and
//! `http::openapi` visit) and the typed commands other nodes read ([`decode_command`]) all come.
//!
//! A method's file holds its request (parsed once, at the edge, and checked against the limits),
//! its reply, and what it does: [`Operation::call`] builds the command and sends it where it
//! must run through the [`Backplane`]: on the node that owns a client (a [`ClientCommand`], whose
//! registry handler is in the same file), or to the nodes with members of a group or system;
//! and what it reads from the [`Directory`] (systems, membership).
//!
//! ## Adding a method
//! 1. A file here, named after the method, with:
//!    - the request (`#[derive(Deserialize, ToSchema)]`, and [`CheckLimits`]: each refusal names
//!      its field) and `pub type Request = ...;`;
//!    - the reply (`#[derive(Serialize, ToSchema)]`);
//!    - `impl Operation for` the request: its name, summary, caller ([`Caller`] or
//!      [`SystemCaller`], which sets its token scope), reply, command and `call`;
//!    - if it acts on one client wherever that client is connected, its command: a struct
//!      deriving `actix::Message`, `Serialize` and `Deserialize`, `impl ClientCommand`, and its
//!      `Handler` for the registry (`type Command = ...`); otherwise `type Command = NoCommand`.
//! 2. One line, the file's name, in the list at the end of this file.
//! 3. Its tests under `tests/api/`, and its section in `socket.md`.
//!
//! `cargo fmt` does not reach these files (their `mod` lines come from a macro): format them
//! with `rustfmt --edition 2021 src/ops/*.rs` (CI checks every file that way).
//!
//! The route, the metrics label, the scope check, the body's parsing and limits, the envelope,
//! the OpenAPI path and the command's wire form between nodes follow from the list.
//!
//! The user methods (`send_to_user`, `get_user_info`, `close_user`, `get_online_users`,
//! `list_clients`) show a fourth shape: a user's connections may be on any node, so their
//! command runs on every live node ([`Backplane::on_every_node`]) and the replies are merged
//! here. Each node answers from its registry, which is always current, so the answer is true at
//! the instant it is asked, with no second copy of users to keep in step.

use std::future::Future;
use std::sync::Arc;

use actix::{Addr, Handler, Message};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::messages::RegistryResult;
use crate::actors::registry::SystemRegistry;
use crate::auth::Scope as TokenScope;
use crate::backplane::{Answer, Backplane, Command, Directory, ReplyValue};
use crate::config::Limits;
use crate::error::ApiError;
use crate::protocol::CheckLimits;

/// What an operation reads and where it sends its commands: this node's view of the server.
/// Built once at start; the HTTP layer and the MQTT bridge call operations with it.
pub struct Node {
    /// Where commands run and broadcasts go (one node, or a cluster).
    pub backplane: Arc<dyn Backplane>,
    /// Systems and membership as every node sees them.
    pub directory: Arc<dyn Directory>,
    /// The limits a request is checked against, and `--max-push-size`.
    pub limits: Limits,
    /// `--webhook-deny-private`.
    pub webhook_deny_private: bool,
    /// Signs and checks pagination cursors (from the JWT secret, the same on every node).
    pub cursors: crate::protocol::cursor::CursorKey,
}

/// A caller whose token (if auth is on) has been verified: any valid token.
pub struct Caller {
    pub scope: TokenScope,
}

impl Caller {
    /// Refuses (403) a caller whose token is scoped to a system other than `system_id`.
    pub fn require(&self, system_id: &str) -> Result<(), ApiError> {
        match &self.scope {
            TokenScope::System(own) if own != system_id => Err(ApiError::Forbidden(format!(
                "token is scoped to system '{own}', not '{system_id}'"
            ))),
            _ => Ok(()),
        }
    }
}

/// A verified caller allowed to act on the system named in the `SystemId` header. Whether that
/// system is registered is checked where the operation runs, in the same step.
pub struct SystemCaller {
    pub system_id: String,
}

/// The errors every method may answer with: a malformed body or a field out of its limits
/// (400), a missing or bad token (401), a token for another system, an unregistered system or a
/// refused origin (403), not a POST (405), a body or frame over its limit (413), shutting down,
/// overloaded or the backplane unavailable (503).
pub const COMMON_ERRORS: &[u16] = &[400, 401, 403, 405, 413, 503];

/// The OpenAPI tags: what the methods act on.
pub const TAGS: [(&str, &str); 6] = [
    ("tokens", "What an API token may do"),
    ("systems", "Tenants: register, configure, remove"),
    (
        "messages",
        "Pushes to a client, a list of clients, a group or a whole system",
    ),
    ("groups", "Membership: bind, unbind, who is in a group"),
    ("clients", "One connection: its state, closing it"),
    (
        "users",
        "A user's connections (tabs, devices), on every node: push, read, close",
    ),
];

/// Name of the header that says which system a REST call acts on.
pub const SYSTEM_ID_HEADER: &str = "SystemId";

/// Whom a method's token must be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Any valid token: the method checks a system it names itself (`register`'s body).
    AnyToken,
    /// A token for the system named in the `SystemId` header (an admin token, or one scoped to
    /// that system).
    System,
}

/// A caller as a method's scope has it checked, before the method runs.
pub trait Authorized: 'static {
    const SCOPE: Scope;
    /// Made by the HTTP layer once the token is verified and, for [`Scope::System`], the
    /// `SystemId` header is read and the token allowed for it.
    fn new(caller: Caller, system_id: Option<String>) -> Self;
}

impl Authorized for Caller {
    const SCOPE: Scope = Scope::AnyToken;
    fn new(caller: Caller, _: Option<String>) -> Self {
        caller
    }
}

impl Authorized for SystemCaller {
    const SCOPE: Scope = Scope::System;
    fn new(_: Caller, system_id: Option<String>) -> Self {
        SystemCaller {
            system_id: system_id.unwrap_or_default(),
        }
    }
}

/// One REST method, implemented by its request type: it parses (serde), checks itself
/// ([`CheckLimits`]) and runs ([`Operation::call`]).
pub trait Operation: DeserializeOwned + CheckLimits + ToSchema + 'static {
    /// The method's name: its path, `/api/<NAME>`, and its metrics label.
    const NAME: &'static str;
    /// One line for the OpenAPI description.
    const SUMMARY: &'static str;
    /// Its group in the OpenAPI description (see [`TAGS`]).
    const TAG: &'static str;
    /// The HTTP statuses it may answer an error with (for the OpenAPI description).
    const ERRORS: &'static [u16] = COMMON_ERRORS;
    /// Who may call it: [`Caller`] (any valid token) or [`SystemCaller`] (a token for the
    /// `SystemId` header's system).
    type Caller: Authorized;
    /// The envelope's `data` on success.
    type Reply: Serialize + ToSchema + 'static;
    /// The command it runs on the node that owns a client ([`NoCommand`] if none).
    type Command: Carried;
    /// Runs the method for a caller whose token and body have passed every check.
    fn call(
        self,
        node: &Node,
        caller: Self::Caller,
    ) -> impl Future<Output = Result<Self::Reply, ApiError>>;
}

/// A command on one client, applied by the registry of the node that owns the client, which may
/// be another node: it then travels in its serde form and its reply comes back the same way.
/// Its `Handler` for the registry is in its method's file.
pub trait ClientCommand:
    Message<Result = RegistryResult<<Self as ClientCommand>::Reply>>
    + Serialize
    + DeserializeOwned
    + Send
    + 'static
{
    /// Its method's name: the tag of its wire form.
    const METHOD: &'static str;
    /// Whether it changes group membership.
    const CHANGES_MEMBERSHIP: bool = false;
    type Reply: Serialize + DeserializeOwned + Send + 'static;
    fn system_id(&self) -> &str;
}

impl<C> Command for C
where
    C: ClientCommand,
    SystemRegistry: Handler<C>,
{
    fn method(&self) -> &'static str {
        C::METHOD
    }
    fn system_id(&self) -> &str {
        ClientCommand::system_id(self)
    }
    fn changes_membership(&self) -> bool {
        C::CHANGES_MEMBERSHIP
    }
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    fn apply(
        self: Box<Self>,
        registry: &Addr<SystemRegistry>,
    ) -> LocalBoxFuture<'static, Result<Box<dyn ReplyValue>, ApiError>> {
        let sent = registry.send(*self);
        Box::pin(async move {
            let reply: <C as ClientCommand>::Reply = sent.await??;
            Ok(Box::new(reply) as Box<dyn ReplyValue>)
        })
    }
}

/// How a method's command is read back from its wire form on the node that runs it.
pub trait Carried {
    fn decode(json: &str) -> Result<Box<dyn Command>, String>;
}

impl<C> Carried for C
where
    C: ClientCommand,
    SystemRegistry: Handler<C>,
{
    fn decode(json: &str) -> Result<Box<dyn Command>, String> {
        serde_json::from_str::<C>(json)
            .map(|command| Box::new(command) as Box<dyn Command>)
            .map_err(|err| err.to_string())
    }
}

/// The command of a method that runs none on another node.
pub enum NoCommand {}

impl Carried for NoCommand {
    fn decode(_: &str) -> Result<Box<dyn Command>, String> {
        Err("this method sends no command to other nodes".into())
    }
}

/// Runs a method for a caller other than the HTTP layer (the MQTT bridge), its request checked
/// against the limits as a REST body is.
pub async fn run<O: Operation>(
    node: &Node,
    caller: O::Caller,
    request: O,
) -> Result<O::Reply, ApiError> {
    request.check_limits(&node.limits)?;
    request.call(node, caller).await
}

/// Runs `command` on the node that owns `client_id` and reads its reply.
async fn on_owner<C>(node: &Node, client_id: &str, command: C) -> Result<C::Reply, ApiError>
where
    C: ClientCommand,
    SystemRegistry: Handler<C>,
{
    let answer = node
        .backplane
        .on_owner(client_id, Box::new(command))
        .await?;
    read_answer::<C>(answer)
}

/// Runs `command` on every live node and reads their replies (this node's first).
async fn on_every_node<C>(node: &Node, command: C) -> Result<Vec<C::Reply>, ApiError>
where
    C: ClientCommand,
    SystemRegistry: Handler<C>,
{
    let answers = node.backplane.on_every_node(Box::new(command)).await?;
    answers.into_iter().map(read_answer::<C>).collect()
}

/// A command's reply as its own type, whether it ran here or on another node.
fn read_answer<C: ClientCommand>(answer: Answer) -> Result<C::Reply, ApiError> {
    match answer {
        Answer::Here(reply) => reply
            .into_any()
            .downcast::<C::Reply>()
            .map(|reply| *reply)
            .map_err(|_| unreadable(C::METHOD, "of another type")),
        Answer::Remote(json) => {
            serde_json::from_str(&json).map_err(|err| unreadable(C::METHOD, &err.to_string()))
        }
    }
}

fn unreadable(method: &str, why: &str) -> ApiError {
    log::error!("the reply to {method} could not be read: {why}");
    ApiError::Unavailable(format!(
        "the reply to {method} could not be read; retry later"
    ))
}

/// Serializes a push once; a frame over `--max-push-size` is a 413.
fn encode(
    node: &Node,
    message_id: &str,
    message: crate::protocol::MessageRef<'_>,
) -> Result<bytestring::ByteString, ApiError> {
    crate::protocol::encode_push(message_id, message, node.limits.max_push_size)
        .map_err(|over| ApiError::PayloadTooLarge(over.to_string()))
}

/// Encodes a push once and delivers it to `audience` wherever its members are: the reply of
/// `send_to_group` and `send_to_system`.
async fn broadcast(
    node: &Node,
    system_id: &str,
    audience: crate::backplane::Audience,
    message: crate::protocol::MessageRef<'_>,
) -> Result<crate::protocol::CountReply, ApiError> {
    let message_id = crate::protocol::new_id();
    let frame = encode(node, &message_id, message)?;
    let count = node
        .backplane
        .to_members(system_id, audience, frame)
        .await?;
    Ok(crate::protocol::CountReply { message_id, count })
}

/// With `--webhook-deny-private`, a webhook URL that leads inside the network is a 400.
async fn check_webhook_address(
    node: &Node,
    webhook: Option<&crate::protocol::WebhookRequest>,
) -> Result<(), ApiError> {
    let Some((host, port)) = webhook
        .filter(|_| node.webhook_deny_private)
        .and_then(crate::protocol::WebhookRequest::host_and_port)
    else {
        return Ok(());
    };
    crate::webhooks::guard::check_host(&host, port)
        .await
        .map_err(|reason| ApiError::BadRequest(format!("webhook.url: {reason}")))
}

/// A request naming one user: `get_user_info`, `close_user`.
macro_rules! user_request {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            pub user_id: $crate::protocol::rest::Name,
        }

        impl $crate::protocol::rest::CheckLimits for $name {
            fn check_limits(
                &self,
                limits: &$crate::config::Limits,
            ) -> Result<(), $crate::protocol::rest::OverLimit> {
                $crate::protocol::rest::check_user_id("userId", self.user_id.as_str(), limits)
            }
        }
    };
}

pub(crate) use user_request;

/// Something done with every method's type: [`each_method`] calls it once per method.
pub trait VisitMethod {
    fn visit<O: Operation>(&mut self);
}

/// Declares the methods: each a module of this directory whose `Request` implements
/// [`Operation`].
macro_rules! operations {
    ($($method:ident),* $(,)?) => {
        $(pub mod $method;)*

        /// Every method, as it appears in the path and in metric labels.
        pub const METHODS: &[&str] = &[$(<$method::Request as Operation>::NAME),*];

        /// Each method's token scope.
        pub const SCOPES: &[(&str, Scope)] = &[$((
            <$method::Request as Operation>::NAME,
            <<$method::Request as Operation>::Caller as Authorized>::SCOPE,
        )),*];

        /// Calls `visit` with every method's request type (the HTTP layer makes its routes so).
        pub fn each_method<V: VisitMethod>(visit: &mut V) {
            $(visit.visit::<$method::Request>();)*
        }

        /// Reads a command another node sent for `method` (see [`Carried`]).
        pub fn decode_command(method: &str, json: &str) -> Result<Box<dyn Command>, String> {
            $(if method == <$method::Request as Operation>::NAME {
                return <<$method::Request as Operation>::Command as Carried>::decode(json);
            })*
            Err(format!("no method '{method}'"))
        }

    };
}

operations! {
    check_token,
    register,
    update_system,
    get_system,
    unregister,
    send_to_client,
    send_to_clients,
    send_to_group,
    send_to_system,
    bind_to_group,
    unbind_from_group,
    get_online_list,
    get_all_groups,
    close_client,
    get_client_info,
    send_to_user,
    get_user_info,
    close_user,
    get_online_users,
    list_clients,
}
