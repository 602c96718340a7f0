//! `GET /openapi.json`: the REST API as OpenAPI 3.1, generated from the very types the handlers
//! parse bodies into and serialize replies from (`protocol`), so it cannot drift from them. Every
//! reply is the `{code, msg, data}` envelope; each method's `data` is its reply type, and every
//! error is the envelope with `data: []`. A test checks that every method in
//! [`super::api::METHODS`] is described.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::protocol::{self as p, EmptyList};

/// The reply envelope of a method whose `data` is `$data`.
macro_rules! envelope {
    ($name:ident, $data:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(ToSchema)]
        #[allow(dead_code)]
        pub struct $name {
            /// 0 on success.
            code: i64,
            /// "success", or what went wrong, naming the field.
            msg: String,
            data: $data,
        }
    };
}

envelope!(
    Done,
    EmptyList,
    "Success with nothing to return: `data` is `[]`."
);
envelope!(
    Failure,
    EmptyList,
    "An error: `code` is not 0 and `msg` names the field or the cause."
);
envelope!(Sent, p::MessageIdReply, "`send_to_client`: the messageId.");
envelope!(
    SentToMany,
    p::SendToClientsReply,
    "`send_to_clients`: the messageId and the clientIds not connected."
);
envelope!(
    Counted,
    p::CountReply,
    "`send_to_group`, `send_to_system`: the messageId and how many clients it went to."
);
envelope!(Online, p::OnlineList, "`get_online_list`.");
envelope!(
    Groups,
    std::collections::BTreeMap<String, Vec<String>>,
    "`get_all_groups`: groupName → clientIds."
);
envelope!(Client, p::ClientInfo, "`get_client_info`.");
envelope!(System, p::SystemInfo, "`get_system`.");
envelope!(Token, p::TokenInfo, "`check_token`.");

/// Describes one method: `POST /api/<name>`, its body, its reply and every error; `system`
/// methods take the `SystemId` header.
macro_rules! method {
    (no_system $name:ident, $body:ty, $reply:ty, $summary:literal) => {
        method!(@ $name, $body, $reply, $summary, params());
    };
    ($name:ident, $body:ty, $reply:ty, $summary:literal) => {
        method!(@ $name, $body, $reply, $summary, params(("SystemId" = String, Header,
            description = "the system the call acts on: printable ASCII, no space at either \
                end, at most --max-system-id-len (128) bytes",
            min_length = 1, max_length = 128, pattern = r"^[!-~]([ -~]*[!-~])?$")));
    };
    (@ $name:ident, $body:ty, $reply:ty, $summary:literal, $params:expr) => {
        #[utoipa::path(
            post,
            path = concat!("/api/", stringify!($name)),
            summary = $summary,
            request_body(content = $body, content_type = "application/json"),
            $params,
            responses(
                (status = 200, body = $reply),
                (status = 400, body = Failure, description = "malformed body, or a field missing, mistyped or out of its limits"),
                (status = 401, body = Failure, description = "missing, malformed, expired or wrongly signed token"),
                (status = 403, body = Failure, description = "token scoped to another system, or the system is not registered"),
                (status = 404, body = Failure, description = "the clientId is not connected in this system"),
                (status = 405, body = Failure, description = "not a POST"),
                (status = 409, body = Failure, description = "the system is already registered"),
                (status = 413, body = Failure, description = "body, data or the encoded frame over its limit"),
                (status = 503, body = Failure, description = "shutting down, or the cluster's Redis is unavailable")
            ),
            security(("bearer" = []))
        )]
        #[allow(dead_code)]
        fn $name() {}
    };
}

method!(no_system check_token, p::EmptyRequest, Token, "Which systems the token acts for");
method!(no_system register, p::RegisterRequest, Done, "Registers a system");
method!(
    update_system,
    p::UpdateSystemRequest,
    Done,
    "Changes a system's webhook or MQTT settings"
);
method!(
    get_system,
    p::EmptyRequest,
    System,
    "A system's settings and client count"
);
method!(
    unregister,
    p::EmptyRequest,
    Done,
    "Removes a system and closes its clients (4001)"
);
method!(
    send_to_client,
    p::SendToClientRequest,
    Sent,
    "Pushes a message to one client"
);
method!(
    send_to_clients,
    p::SendToClientsRequest,
    SentToMany,
    "Pushes a message to a list of clients"
);
method!(
    send_to_group,
    p::SendToGroupRequest,
    Counted,
    "Pushes a message to a group"
);
method!(
    send_to_system,
    p::SendToSystemRequest,
    Counted,
    "Pushes a message to every client of the system"
);
method!(
    bind_to_group,
    p::BindToGroupRequest,
    Done,
    "Binds a client to a group (1001 to its members)"
);
method!(
    unbind_from_group,
    p::UnbindFromGroupRequest,
    Done,
    "Unbinds a client from a group (1002 to those left)"
);
method!(
    get_online_list,
    p::GroupRequest,
    Online,
    "The members of a group"
);
method!(
    get_all_groups,
    p::EmptyRequest,
    Groups,
    "Every group of the system and its members"
);
method!(
    close_client,
    p::ClientRequest,
    Done,
    "Closes a client's connection (1000)"
);
method!(
    get_client_info,
    p::ClientRequest,
    Client,
    "One client's state"
);

/// Bearer JWTs (HS256) on every method (none with `--api-auth none`), and bodies that may be
/// left out.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // An empty body counts as `{}`: methods with no required field need none.
        for (path, item) in openapi.paths.paths.iter_mut() {
            let optional = ["check_token", "get_system", "unregister", "get_all_groups"]
                .iter()
                .any(|name| path.ends_with(&format!("/{name}")))
                || path.ends_with("/send_to_system");
            if let Some(body) = item.post.as_mut().and_then(|op| op.request_body.as_mut()) {
                if optional {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wshub REST API",
        description = "Backends register systems, bind clients to groups and push messages. \
                       The manual is served at /docs."
    ),
    paths(
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
        get_client_info
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The description, as JSON: built on first use, then served as is.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(document())
}
