//! API authentication with tokens minted by the `jsonwebtoken` crate, as a backend would.

use actix_web::web::Bytes;
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::helpers::{mint, mint_with, spawn_app, spawn_app_with, Call, Reply, TestApp, SECRET};

async fn with_token(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    system: Option<&str>,
    body: serde_json::Value,
) -> Reply {
    app.call(Call {
        method,
        http_method: awc::http::Method::POST,
        token,
        system,
        body: Bytes::from(body.to_string()),
    })
    .await
}

/// `alg: none`, `{"exp": 9999999999}`, no signature.
const ALG_NONE_TOKEN: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTl9.";

#[actix_web::test]
async fn bad_tokens_are_401_with_www_authenticate() {
    let app = spawn_app().await;
    let expired = mint(None, -3600);
    let other_key = mint_with(Algorithm::HS256, "some-other-secret", None, 3600);
    let hs512 = mint_with(Algorithm::HS512, SECRET, None, 3600);
    let cases: [(Option<&str>, &str); 6] = [
        (None, "missing bearer token"),
        (Some("garbage"), "invalid token"),
        (Some(&expired), "invalid token"),
        (Some(&other_key), "invalid token"),
        (Some(ALG_NONE_TOKEN), "invalid token"),
        (Some(&hs512), "invalid token"),
    ];
    for (token, needle) in cases {
        let reply = with_token(&app, token, "register", None, json!({"systemId": "x"})).await;
        reply.err(401, needle);
        assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
    }
    // A token without exp is refused too.
    let no_exp = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &json!({"systemId": "x"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    with_token(
        &app,
        Some(&no_exp),
        "register",
        None,
        json!({"systemId": "x"}),
    )
    .await
    .err(401, "invalid token");
    // A non-Bearer Authorization header.
    let reply = app
        .http
        .post(app.url("/api/register"))
        .insert_header(("Authorization", "Basic dXNlcjpwYXNz"))
        .send_body(r#"{"systemId":"x"}"#)
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
    assert_eq!(
        app.stats().await.systems,
        0,
        "no refused call registered anything"
    );
}

#[actix_web::test]
async fn scoped_token_acts_for_its_own_system_only() {
    let app = spawn_app().await;
    let token_a = mint(Some("a"), 3600);
    with_token(
        &app,
        Some(&token_a),
        "register",
        None,
        json!({"systemId": "a"}),
    )
    .await
    .ok();
    with_token(
        &app,
        Some(&token_a),
        "register",
        None,
        json!({"systemId": "b"}),
    )
    .await
    .err(403, "scoped to system 'a'");
    app.register("b").await; // the admin token may register anything
    with_token(&app, Some(&token_a), "get_all_groups", Some("a"), json!({}))
        .await
        .ok();
    with_token(&app, Some(&token_a), "get_all_groups", Some("b"), json!({}))
        .await
        .err(403, "scoped to system 'a', not 'b'");
    // The admin token works for every system.
    app.api("get_all_groups", "a", json!({})).await.ok();
    app.api("get_all_groups", "b", json!({})).await.ok();
}

#[actix_web::test]
async fn auth_can_be_switched_off() {
    let app = spawn_app_with(|c| c.api_auth = wshub::config::ApiAuth::None).await;
    with_token(&app, None, "register", None, json!({"systemId": "legacy"}))
        .await
        .ok();
    with_token(&app, None, "get_all_groups", Some("legacy"), json!({}))
        .await
        .ok();
}

#[actix_web::test]
async fn check_token_says_what_a_token_acts_for_without_a_system() {
    let app = spawn_app().await;
    let call = |token: Option<String>| {
        let app = &app;
        async move {
            let mut request = app.http.post(app.url("/api/check_token"));
            if let Some(token) = token {
                request = request.insert_header(("Authorization", format!("Bearer {token}")));
            }
            let mut response = request.send_body("{}").await.unwrap();
            let body: serde_json::Value = response.json().await.unwrap();
            (response.status().as_u16(), body)
        }
    };
    let (status, body) = call(Some(mint(None, 60))).await;
    assert_eq!((status, &body["data"]), (200, &json!({"systemId": null})));
    let (status, body) = call(Some(mint(Some("s"), 60))).await;
    assert_eq!((status, &body["data"]), (200, &json!({"systemId": "s"})));
    let (status, body) = call(Some("not-a-token".into())).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = call(None).await;
    assert_eq!(status, 401);
}
