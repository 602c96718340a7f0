//! The console's user tools: send to a user, a group's people, a user's connections, closing a
//! user everywhere.

use serde_json::json;

use super::*;

async fn inspected(c: &Client, needle: &str) -> String {
    wait_until(
        c,
        &format!("document.querySelector('#inspect-result').textContent.includes({needle:?})"),
    )
    .await;
    let shown = js(c, "document.querySelector('#inspect-result').textContent").await;
    shown.as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn console_sends_to_lists_and_closes_a_user() {
    let Some(browser) = browser(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "people", 3).await;
    bind(c, &ids[0], "room", "ann").await;
    bind(c, &ids[1], "room", "ann").await;
    bind(c, &ids[2], "room", "bob").await;
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 3",
            card_frames(0)
        ),
    )
    .await;

    // Send to ann: both of her tabs get it, bob's does not.
    click(c, "#target-user").await;
    fill(c, "#send-user-id", "ann").await;
    fill(c, "#send-data", "for ann").await;
    click(c, "#send").await;
    for card in 0..2 {
        wait_until(
            c,
            &format!("{}.querySelector('li.push') && {0}.querySelector('li.push').textContent.includes('for ann')", card_frames(card)),
        )
        .await;
    }
    let newest = js(c, "document.querySelector('#call-log .call').textContent").await;
    assert!(
        newest.as_str().unwrap().contains("\"count\": 2"),
        "{newest}"
    );
    let bobs = js(
        c,
        &format!("{}.querySelectorAll('li.push').length", card_frames(2)),
    )
    .await;
    assert_eq!(bobs, json!(0));

    // The group's people, with their connection counts.
    fill(c, "#inspect-group", "room").await;
    click(c, "#online-users").await;
    let shown = inspected(c, "userCount").await;
    assert!(
        shown.contains("\"userId\": \"ann\"") && shown.contains("\"clients\": 2"),
        "{shown}"
    );
    assert!(
        shown.contains("\"userCount\": 2") && shown.contains("\"clientCount\": 3"),
        "{shown}"
    );

    // A user's connections.
    fill(c, "#inspect-user", "ann").await;
    click(c, "#user-info").await;
    let shown = inspected(c, "\"online\": true").await;
    assert!(
        shown.contains(&ids[0]) && shown.contains(&ids[1]) && !shown.contains(&ids[2]),
        "{shown}"
    );

    // Log ann out everywhere: both tabs close with 1000.
    click(c, "#close-user").await;
    let shown = inspected(c, "\"count\": 2").await;
    assert!(shown.starts_with("200"), "{shown}");
    for card in 0..2 {
        wait_until(
            c,
            &format!("document.querySelectorAll('.client-card')[{card}].dataset.state === 'closed' && document.querySelectorAll('.client-card')[{card}].querySelector('.state').textContent.includes('1000')"),
        )
        .await;
    }
    let info = app
        .api("get_user_info", "people", json!({"userId": "ann"}))
        .await
        .ok();
    assert_eq!(info["online"], false);
}
