//! The console's first steps: what "Open a client" says before a system is chosen, and where the
//! API token is kept.

use super::{browser, click, fill, js, wait_until};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn open_a_client_without_a_system_says_why() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    c.goto(&app.url("/")).await.unwrap();
    click(c, "#open-client").await;
    let why = js(
        c,
        "(() => { const e = document.querySelector('#client-error'); return e.hidden ? '' : e.textContent; })()",
    )
    .await;
    assert!(
        why.as_str().unwrap().contains("Register a system first"),
        "{why}"
    );
    assert_eq!(
        js(c, "document.querySelectorAll('.client-card').length").await,
        0
    );
    // Once there is a system, the client opens.
    fill(c, "#token", &app.token).await;
    click(c, "#save-token").await;
    fill(c, "#system-id", "first").await;
    click(c, "#register").await;
    wait_until(
        c,
        "document.querySelector('#current-system').textContent === 'first'",
    )
    .await;
    assert_eq!(
        js(c, "document.querySelector('#client-error').hidden").await,
        true,
        "the reason goes once there is a system"
    );
    click(c, "#open-client").await;
    wait_until(
        c,
        "document.querySelectorAll('.client-card[data-state=open]').length === 1",
    )
    .await;
    assert_eq!(
        js(c, "document.querySelector('#client-error').hidden").await,
        true
    );
}

#[actix_web::test]
async fn the_token_is_kept_for_the_tab_unless_remembered() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    c.goto(&app.url("/")).await.unwrap();
    let kept = "[sessionStorage.getItem('wshub.token'), localStorage.getItem('wshub.token')]";
    assert_eq!(
        js(c, "document.querySelector('#remember-token').checked").await,
        false
    );
    fill(c, "#token", &app.token).await;
    click(c, "#save-token").await;
    wait_until(
        c,
        "document.querySelector('#token-status').textContent === 'accepted'",
    )
    .await;
    assert_eq!(js(c, kept).await, serde_json::json!([app.token, null]));
    // A reload of the tab keeps it.
    c.refresh().await.unwrap();
    wait_until(
        c,
        "document.querySelector('#token-status').textContent === 'accepted'",
    )
    .await;
    assert_eq!(
        js(c, "document.querySelector('#token').value").await,
        app.token.as_str()
    );

    // Remembered: in localStorage too, and the box is ticked on the next visit.
    click(c, "#remember-token").await;
    assert_eq!(
        js(c, "JSON.parse(localStorage.getItem('wshub.token'))").await,
        app.token.as_str()
    );
    c.refresh().await.unwrap();
    assert_eq!(
        js(c, "document.querySelector('#remember-token').checked").await,
        true
    );
    // Unticked: gone from localStorage at once.
    click(c, "#remember-token").await;
    assert_eq!(js(c, kept).await, serde_json::json!([app.token, null]));
}
