//! The console's client cards drop a connection as a cut network would, and resume it.

use super::{bind, browser, card_frames, click, js, send_to_group, set_up, wait_until};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_dropped_console_client_resumes_and_shows_the_frames_it_missed() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "cut", 2).await;
    bind(c, &ids[0], "room", "ann").await;
    bind(c, &ids[1], "room", "bob").await;
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 2",
            card_frames(0)
        ),
    )
    .await;
    // The cards are wshub.js connections: the console uses the library every frontend gets.
    let loaded = js(
        c,
        "performance.getEntriesByType('resource').some(e => e.name.endsWith('/wshub.js'))",
    )
    .await;
    assert_eq!(loaded, true, "the console loads /wshub.js");
    click(
        c,
        &format!(".client-card[data-client-id='{}'] .drop", ids[1]),
    )
    .await;
    wait_until(
        c,
        "document.querySelectorAll('.client-card')[1].dataset.state === 'dropped'",
    )
    .await;
    send_to_group(c, "room", "while away 1").await;
    send_to_group(c, "room", "while away 2").await;
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.push').length === 2",
            card_frames(0)
        ),
    )
    .await;
    click(
        c,
        &format!(".client-card[data-client-id='{}'] .resume", ids[1]),
    )
    .await;
    wait_until(
        c,
        "document.querySelectorAll('.client-card')[1].dataset.state === 'open'",
    )
    .await;
    let card = card_frames(1);
    wait_until(
        c,
        &format!("{card}.querySelectorAll('li.push').length === 2"),
    )
    .await;
    let shown = js(c, &format!("{card}.textContent")).await;
    let shown = shown.as_str().unwrap();
    assert!(
        shown.contains(&format!("resumed as {} · missed 2", ids[1])),
        "{shown}"
    );
    assert!(
        shown.contains("while away 1") && shown.contains("while away 2"),
        "{shown}"
    );
    // Same client: the card keeps its id, and ann never saw bob go offline.
    let id = js(
        c,
        "document.querySelectorAll('.client-card')[1].dataset.clientId",
    )
    .await;
    assert_eq!(id, ids[1].as_str());
    let offline = js(
        c,
        &format!("{}.querySelector('li.offline')", card_frames(0)),
    )
    .await;
    assert_eq!(offline, serde_json::Value::Null);
}
