//! The console's system panel: webhook settings and the MQTT bridge's state.

use serde_json::json;

use super::*;

#[actix_web::test]
async fn console_sets_shows_and_removes_a_systems_webhook() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    set_up(c, &app, "hooked", 0).await;
    fill(c, "#webhook-url", "https://backend.example/wshub").await;
    fill(c, "#webhook-secret", "short").await;
    click(c, "#save-webhook").await;
    wait_until(
        c,
        "document.querySelector('#system-result').textContent.includes('webhook.secret')",
    )
    .await;
    fill(c, "#webhook-secret", "a-secret-of-more-than-16").await;
    click(c, "#save-webhook").await;
    wait_until(
        c,
        "document.querySelector('#system-result').textContent.startsWith('200')",
    )
    .await;
    let shown = js(c, "document.querySelector('#system-result').textContent").await;
    let shown = shown.as_str().unwrap();
    assert!(shown.contains("https://backend.example/wshub"), "{shown}");
    assert!(
        !shown.contains("a-secret-of-more-than-16"),
        "never shows the secret"
    );
    let info = app.api("get_system", "hooked", json!({})).await.ok();
    assert_eq!(info["webhook"]["url"], "https://backend.example/wshub");

    click(c, "#remove-webhook").await;
    wait_until(
        c,
        "document.querySelector('#system-result').textContent.includes('\"webhook\": null')",
    )
    .await;
    let info = app.api("get_system", "hooked", json!({})).await.ok();
    assert_eq!(info["webhook"], serde_json::Value::Null);
}

#[actix_web::test]
async fn console_sets_a_systems_presence_to_user_and_back() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    set_up(c, &app, "people", 0).await;
    js(c, "document.querySelector('#presence').value = 'user'").await;
    click(c, "#save-presence").await;
    wait_until(
        c,
        "document.querySelector('#system-result').textContent.includes('\"presence\": \"user\"')",
    )
    .await;
    let info = app.api("get_system", "people", json!({})).await.ok();
    assert_eq!(info["presence"], "user");
    js(c, "document.querySelector('#presence').value = 'client'").await;
    click(c, "#save-presence").await;
    wait_until(
        c,
        "document.querySelector('#system-result').textContent.includes('\"presence\": \"client\"')",
    )
    .await;
    let info = app.api("get_system", "people", json!({})).await.ok();
    assert_eq!(info["presence"], "client");
}

#[actix_web::test]
async fn console_shows_whether_the_mqtt_bridge_is_connected() {
    let Some(url) = crate::mqtt::broker_url() else {
        return;
    };
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = crate::helpers::spawn_app_with(move |c| {
        c.mqtt_url = Some(url);
        c.mqtt_prefix = format!("wshub-test/{}/", &wshub::protocol::new_id()[..12]);
    })
    .await;
    let c = &browser.client;
    c.goto(&app.url("/")).await.unwrap();
    wait_until(
        c,
        "document.querySelector('#mqtt-status').textContent === 'MQTT connected'",
    )
    .await;
    // Without a bridge there is no badge.
    let plain = spawn_app().await;
    c.goto(&plain.url("/")).await.unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let hidden = js(c, "document.querySelector('#mqtt-status').hidden").await;
    assert_eq!(hidden, Value::Bool(true));
}
