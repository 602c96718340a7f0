//! `--client-auth jwt`: /ws needs a token for the requested system.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::{expect_close, mint, next_json, spawn_app_with, SECRET};

/// A client token signed with the test secret, with these claims.
pub(crate) fn client_token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// Unix time `offset` seconds from now, for an `exp` claim.
pub(crate) fn exp(offset: i64) -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + offset
}

#[actix_web::test]
async fn clients_need_a_token_for_their_system() {
    let app = spawn_app_with(|c| c.client_auth = wshub::config::ClientAuth::Jwt).await;
    app.register("a").await;
    app.register("b").await;

    let expired = client_token(json!({"systemId": "a", "exp": exp(-3600)}));
    let other_system = client_token(json!({"systemId": "b", "exp": exp(600)}));
    let wrong_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"systemId": "a", "exp": exp(600)}),
        &EncodingKey::from_secret(b"not-the-secret"),
    )
    .unwrap();
    let admin = mint(None, 600);
    for (token, needle) in [
        (None, "client token is required"),
        (Some(expired.as_str()), "invalid client token"),
        (Some(wrong_key.as_str()), "invalid client token"),
        (Some(other_system.as_str()), "for system 'b', not 'a'"),
        (Some(admin.as_str()), "no systemId claim"),
    ] {
        let query = match token {
            Some(token) => format!("?systemId=a&token={token}"),
            None => "?systemId=a".to_owned(),
        };
        let mut conn = app.ws_raw(&query).await;
        let frame = next_json(&mut conn).await;
        assert_eq!(frame["code"], -1001, "{frame}");
        assert!(frame["msg"].as_str().unwrap().contains(needle), "{frame}");
        assert_eq!(u16::from(expect_close(&mut conn).await.unwrap().code), 1008);
    }
    assert_eq!(app.stats().await.clients, 0);

    // A good token admits the client, with the userId it names.
    let good = client_token(json!({"systemId": "a", "userId": "ann", "exp": exp(600)}));
    let mut conn = app.ws_raw(&format!("?systemId=a&token={good}")).await;
    let welcome = next_json(&mut conn).await;
    assert_eq!(welcome["code"], 0);
    let id = welcome["data"]["clientId"].as_str().unwrap();
    let info = app
        .api("get_client_info", "a", json!({"clientId": id}))
        .await
        .ok();
    assert_eq!(info["userId"], "ann");

    // That userId is fixed: a bind naming none keeps it, one naming it again is fine, one
    // naming another is a 409 that changes nothing.
    let bind = |user: Option<&str>, group: &str| {
        let mut body = json!({"clientId": id, "groupName": group});
        if let Some(user) = user {
            body["userId"] = json!(user);
        }
        app.api("bind_to_group", "a", body)
    };
    bind(None, "g1").await.ok();
    bind(Some("ann"), "g2").await.ok();
    bind(Some("bob"), "g3").await.err(409, "userId");
    let info = app
        .api("get_client_info", "a", json!({"clientId": id}))
        .await
        .ok();
    assert_eq!(
        (&info["userId"], &info["groups"]),
        (&json!("ann"), &json!(["g1", "g2"]))
    );
    let user = app
        .api("get_user_info", "a", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(user["clients"][0]["clientId"], id);
}

#[actix_web::test]
async fn a_resume_needs_a_valid_client_token_too() {
    let app = spawn_app_with(|c| c.client_auth = wshub::config::ClientAuth::Jwt).await;
    app.register("a").await;
    let token = client_token(json!({"systemId": "a", "exp": exp(600)}));
    let mut conn = app
        .ws_raw(&format!("?systemId=a&recovery=1&token={token}"))
        .await;
    let welcome = next_json(&mut conn).await;
    let resume_token = welcome["data"]["resumeToken"].as_str().unwrap().to_owned();
    let id = welcome["data"]["clientId"].as_str().unwrap().to_owned();
    drop(conn);
    // Without a token the resume is refused like any connection, and the client stays away.
    let mut refused = app
        .ws_raw(&format!("?systemId=a&resume={resume_token}&last="))
        .await;
    assert_eq!(next_json(&mut refused).await["code"], -1001);
    assert_eq!(
        u16::from(expect_close(&mut refused).await.unwrap().code),
        1008
    );
    let mut resumed = app
        .ws_raw(&format!(
            "?systemId=a&resume={resume_token}&last=&token={token}"
        ))
        .await;
    let welcome = next_json(&mut resumed).await;
    assert_eq!(welcome["data"]["recovered"], true, "{welcome}");
    assert_eq!(welcome["data"]["clientId"], id.as_str());
}
