//! Tokens never wider than their author meant, errors in plain words, the scheme in any case;
//! with auth off, the browser-borne attacks (CSRF, DNS rebinding) are refused; pages can't be
//! framed; `/ws` obeys `--allowed-origins`; names with control characters are refused.

use actix_web::web::Bytes;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{mint, spawn_app, spawn_app_with, Call, TestApp, SECRET};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(header: Header, claims: Value) -> String {
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn call_with(
    app: &TestApp,
    token: &str,
    system: Option<&str>,
    method: &str,
) -> crate::helpers::Reply {
    app.call(Call {
        method,
        http_method: awc::http::Method::POST,
        token: Some(token),
        system,
        body: Bytes::from(json!({"systemId": "victim"}).to_string()),
    })
    .await
}

#[actix_web::test]
async fn a_claim_that_is_null_misspelt_or_unknown_never_makes_an_admin_token() {
    let app = spawn_app().await;
    app.register("victim").await;
    let exp = now() + 600;
    let cases = [
        (
            json!({"exp": exp, "systemId": null}),
            "'systemId' claim must be a string",
        ),
        (
            json!({"exp": exp, "systemId": ""}),
            "'systemId' claim must not be empty",
        ),
        (
            json!({"exp": exp, "systemId": ["a"]}),
            "'systemId' claim must be a string",
        ),
        (
            json!({"exp": exp, "systemid": "mine"}),
            "unknown claim 'systemid'",
        ),
        (
            json!({"exp": exp, "system_id": "mine"}),
            "unknown claim 'system_id'",
        ),
        (json!({"exp": exp, "nbf": now() + 3600}), "not valid yet"),
    ];
    for (claims, needle) in cases {
        let token = sign(Header::new(Algorithm::HS256), claims.clone());
        call_with(&app, &token, Some("victim"), "get_all_groups")
            .await
            .err(401, needle);
    }
    let mut critical = Header::new(Algorithm::HS256);
    critical.crit = Some(vec!["exp".into()]);
    let token = sign(critical, json!({"exp": exp}));
    call_with(&app, &token, Some("victim"), "get_all_groups")
        .await
        .err(401, "'crit' header");
    // Every registered claim is fine.
    let full = sign(
        Header::new(Algorithm::HS256),
        json!({"exp": exp, "iat": now(), "nbf": now() - 10, "sub": "backend", "iss": "me",
               "aud": "wshub", "jti": "1"}),
    );
    call_with(&app, &full, Some("victim"), "get_all_groups")
        .await
        .ok();
}

#[actix_web::test]
async fn token_errors_are_in_plain_words() {
    let app = spawn_app().await;
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"exp": now() + 600}),
        &EncodingKey::from_secret(b"another"),
    )
    .unwrap();
    let hs512 = sign(Header::new(Algorithm::HS512), json!({"exp": now() + 600}));
    for (token, needle) in [
        (
            wrong_key.as_str(),
            "the signature does not match this server's secret",
        ),
        (hs512.as_str(), "must be signed with HS256"),
        ("abc.def", "it is not a JWT"),
        (&mint(None, -3600), "it has expired"),
    ] {
        let reply = call_with(&app, token, None, "register").await;
        reply.err(401, needle);
        let msg = reply.body["msg"].as_str().unwrap();
        for internal in ["InvalidSignature", "ErrorKind", "line 1 column", "HS384"] {
            assert!(!msg.contains(internal), "{msg}");
        }
    }
}

#[actix_web::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let reply = app
            .http
            .post(app.url("/api/register"))
            .insert_header(("Authorization", format!("{scheme} {}", app.token)))
            .send_body(json!({"systemId": format!("s-{scheme}")}).to_string())
            .await
            .unwrap();
        assert_eq!(reply.status().as_u16(), 200, "{scheme}");
    }
}

#[actix_web::test]
async fn a_client_tokens_user_id_obeys_the_user_id_rules() {
    let app = spawn_app_with(|c| c.client_auth = wshub::config::ClientAuth::Jwt).await;
    app.register("a").await;
    for (user_id, needle) in [
        ("u".repeat(129), "longer than the limit of 128 bytes"),
        ("ann\n".to_owned(), "free of control characters"),
    ] {
        let token = sign(
            Header::new(Algorithm::HS256),
            json!({"exp": now() + 600, "systemId": "a", "userId": user_id}),
        );
        let mut conn = app.ws_raw(&format!("?systemId=a&token={token}")).await;
        let frame = crate::helpers::next_json(&mut conn).await;
        assert_eq!(frame["code"], -1001, "{frame}");
        assert!(frame["msg"].as_str().unwrap().contains(needle), "{frame}");
    }
}

#[actix_web::test]
async fn names_with_control_characters_or_outer_spaces_are_400() {
    let app = spawn_app().await;
    for bad in [" s", "s ", "a\u{1}b", "tab\t", "é"] {
        app.api("register", "", json!({"systemId": bad}))
            .await
            .err(400, "systemId: must be printable ASCII");
    }
    app.register("s").await;
    let a = app.connect("s").await;
    for bad in [" g", "g\n", "a\u{7f}b"] {
        app.api(
            "bind_to_group",
            "s",
            json!({"clientId": a.id, "groupName": bad}),
        )
        .await
        .err(400, "groupName: must be free of control characters");
        app.api("send_to_group", "s", json!({"groupName": bad}))
            .await
            .err(400, "groupName");
    }
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": a.id, "groupName": "g", "userId": "ann\r"}),
    )
    .await
    .err(400, "userId: must be free of control characters");
    app.api("send_to_system", "s", json!({"sendUserId": " x"}))
        .await
        .err(400, "sendUserId");
    // Unicode that is not a control character is fine.
    app.api(
        "bind_to_group",
        "s",
        json!({"clientId": a.id, "groupName": "salle de thé 🍵", "userId": "Zoë"}),
    )
    .await
    .ok();
    assert_eq!(app.stats().await.systems, 1);
}

async fn post_without_auth(app: &TestApp, headers: &[(&str, &str)]) -> u16 {
    let mut request = app.http.post(app.url("/api/register"));
    for header in headers {
        request = request.insert_header(*header);
    }
    request
        .send_body(json!({"systemId": crate::helpers::unique("csrf")}).to_string())
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[actix_web::test]
async fn with_auth_off_cross_origin_and_rebinding_requests_are_403() {
    let app = spawn_app_with(|c| {
        c.api_auth = wshub::config::ApiAuth::None;
        c.allowed_origins = vec!["https://admin.example".into()];
        c.allowed_hosts = vec!["wshub.internal".into()];
    })
    .await;
    let port = app.port.to_string();
    let host = |name: &str| format!("{name}:{port}");
    // Backends (no Origin) on an IP, localhost or a listed name: allowed.
    assert_eq!(post_without_auth(&app, &[]).await, 200);
    assert_eq!(
        post_without_auth(&app, &[("Host", &host("localhost"))]).await,
        200
    );
    assert_eq!(
        post_without_auth(&app, &[("Host", &host("wshub.internal"))]).await,
        200
    );
    assert_eq!(
        post_without_auth(&app, &[("Host", &format!("[::1]:{port}"))]).await,
        200
    );
    assert_eq!(
        post_without_auth(&app, &[("Origin", "https://admin.example")]).await,
        200
    );
    // A page elsewhere (a text/plain form post needs no preflight) or a rebinding name: 403.
    assert_eq!(
        post_without_auth(
            &app,
            &[
                ("Origin", "https://evil.example"),
                ("Content-Type", "text/plain")
            ]
        )
        .await,
        403
    );
    assert_eq!(post_without_auth(&app, &[("Origin", "null")]).await, 403);
    // The console's own calls are same-origin.
    let own = format!("http://127.0.0.1:{port}");
    assert_eq!(
        post_without_auth(&app, &[("Origin", &own), ("Host", &host("127.0.0.1"))]).await,
        200
    );
    // A rebinding page is "same-origin" under its own name, and refused for that name.
    assert_eq!(
        post_without_auth(
            &app,
            &[
                ("Origin", &format!("http://evil.example:{port}")),
                ("Host", &host("evil.example"))
            ]
        )
        .await,
        403
    );
    assert_eq!(
        post_without_auth(&app, &[("Host", &host("evil.example"))]).await,
        403
    );
}

#[actix_web::test]
async fn ws_checks_origin_only_when_allowed_origins_is_set() {
    let open = spawn_app().await;
    open.register("s").await;
    let any_origin = awc::Client::new()
        .ws(open.ws_url("?systemId=s"))
        .origin("https://anywhere.example")
        .connect()
        .await;
    assert!(any_origin.is_ok());

    let strict = spawn_app_with(|c| c.allowed_origins = vec!["https://app.example".into()]).await;
    strict.register("s").await;
    let refused = awc::Client::new()
        .ws(strict.ws_url("?systemId=s"))
        .origin("https://evil.example")
        .connect()
        .await;
    match refused {
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => {
            assert_eq!(status.as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let allowed = awc::Client::new()
        .ws(strict.ws_url("?systemId=s"))
        .origin("https://app.example")
        .connect()
        .await;
    assert!(allowed.is_ok());
    // Non-browser clients send no Origin and are let in, and so is the console's own page.
    strict.connect("s").await;
    let console = awc::Client::new()
        .ws(strict.ws_url("?systemId=s"))
        .origin(format!("http://127.0.0.1:{}", strict.port).as_str())
        .connect()
        .await;
    assert!(console.is_ok());
}

#[actix_web::test]
async fn the_console_and_manual_cannot_be_framed() {
    let app = spawn_app().await;
    for path in ["/", "/docs"] {
        let reply = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(reply.headers().get("x-frame-options").unwrap(), "DENY");
        assert_eq!(
            reply.headers().get("content-security-policy").unwrap(),
            "frame-ancestors 'none'"
        );
    }
}
