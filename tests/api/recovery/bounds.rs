//! What away clients may hold: they count against the connection limits until their window
//! ends, their frames together are bounded by `--recovery-away-bytes`, and only their own user
//! may resume them.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::{connect_recoverable, info, resume, until_away};
use crate::helpers::{next_json, spawn_app_with, SECRET};

#[actix_web::test]
async fn away_clients_count_against_the_limits_and_their_resume_still_gets_in() {
    let app = spawn_app_with(|c| c.limits.max_connections_per_system = Some(2)).await;
    app.register("s").await;
    let first = connect_recoverable(&app, "s").await;
    let second = connect_recoverable(&app, "s").await;
    let (first_id, first_token, _) = first.cut();
    let (second_id, _, _) = second.cut();
    until_away(&app, "s", &first_id).await;
    until_away(&app, "s", &second_id).await;

    // Two away clients fill the system: a new connection is refused as at any full gate, and
    // a made-up resume token does not get past the limit either.
    for query in [
        "?systemId=s&recovery=1".to_owned(),
        format!("?systemId=s&resume={}", "0".repeat(64)),
    ] {
        let refused = awc::Client::new()
            .ws(app.ws_url(&query))
            .connect()
            .await
            .err()
            .expect("refused");
        assert!(
            matches!(&refused, awc::error::WsClientError::InvalidResponseStatus(s) if s.as_u16() == 503),
            "{query}: {refused:?}"
        );
    }

    // The away client itself comes back: it takes its own place.
    let (mut conn, welcome) = resume(&app, "s", &first_token, None).await;
    assert_eq!(welcome["recovered"], true, "{welcome}");
    assert_eq!(welcome["clientId"], first_id.as_str());
    assert_eq!(
        app.gate_open(),
        2,
        "the resume took the away client's place"
    );
    let reply = app
        .api(
            "send_to_client",
            "s",
            json!({"clientId": first_id, "msg": "back"}),
        )
        .await
        .ok();
    assert_eq!(next_json(&mut conn).await["messageId"], reply["messageId"]);
}

#[actix_web::test]
async fn away_clients_past_the_away_bound_go_offline_longest_away_first() {
    let app = spawn_app_with(|c| c.recovery.away_bytes = 16 * 1024).await;
    app.register("s").await;
    let mut older = connect_recoverable(&app, "s").await;
    let mut newer = connect_recoverable(&app, "s").await;
    for r in [&mut older, &mut newer] {
        app.bind("s", &r.client, "g", "").await;
        r.next_push().await;
    }
    // The newer one's notice of the older one's join is not read: it is in its queue anyway.
    let (older_id, older_token, older_last) = older.cut();
    until_away(&app, "s", &older_id).await;
    let (newer_id, newer_token, _) = newer.cut();
    until_away(&app, "s", &newer_id).await;

    let data = "x".repeat(1000);
    for _ in 0..12 {
        let reply = app
            .api(
                "send_to_group",
                "s",
                json!({"groupName": "g", "msg": "m", "data": data}),
            )
            .await
            .ok();
        assert!(reply["count"].as_u64() >= Some(1), "{reply}");
    }
    // Both hold about 13 KB: together past 16 KiB, so the one away longest went offline.
    let gone = info(&app, "s", &older_id).await;
    assert_eq!(gone["online"], false, "{gone}");
    let kept = info(&app, "s", &newer_id).await;
    assert_eq!(kept["online"], true, "{kept}");
    assert!(app.metric("wshub_recovery_away_bytes").await <= 16.0 * 1024.0);

    let (_conn, late) = resume(&app, "s", &older_token, older_last.as_deref()).await;
    assert_eq!(late["recovered"], false, "{late}");
    assert_eq!(late["reason"], "bound_passed", "{late}");
    let (_conn, back) = resume(&app, "s", &newer_token, None).await;
    assert_eq!(back["recovered"], true, "{back}");
    // The older one's 1001 and, once it went offline, its 1002, and the twelve pushes.
    assert_eq!(back["missed"], 14, "{back}");
}

fn client_token(user_id: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        + 600;
    let claims = json!({"systemId": "s", "userId": user_id, "exp": exp});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("a token")
}

#[actix_web::test]
async fn another_users_token_cannot_resume_a_client() {
    let app = spawn_app_with(|c| c.client_auth = wshub::config::ClientAuth::Jwt).await;
    app.register("s").await;
    let alice = client_token("alice");
    let mut conn = app
        .ws_raw(&format!("?systemId=s&recovery=1&token={alice}"))
        .await;
    let welcome = next_json(&mut conn).await;
    let client_id = welcome["data"]["clientId"].as_str().unwrap().to_owned();
    let resume_token = welcome["data"]["resumeToken"].as_str().unwrap().to_owned();
    drop(conn);
    until_away(&app, "s", &client_id).await;

    let mallory = client_token("mallory");
    let mut stolen = app
        .ws_raw(&format!(
            "?systemId=s&resume={resume_token}&token={mallory}"
        ))
        .await;
    let refused = next_json(&mut stolen).await;
    assert_eq!(refused["data"]["recovered"], false, "{refused}");
    assert_eq!(refused["data"]["reason"], "invalid_token", "{refused}");
    assert_ne!(refused["data"]["clientId"], client_id.as_str());

    // Alice's own resume is undisturbed.
    let mut back = app
        .ws_raw(&format!("?systemId=s&resume={resume_token}&token={alice}"))
        .await;
    let welcome = next_json(&mut back).await;
    assert_eq!(welcome["data"]["recovered"], true, "{welcome}");
    assert_eq!(welcome["data"]["clientId"], client_id.as_str());
}
