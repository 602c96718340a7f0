//! The console at 1400×900, a common laptop window: method names fit the call log, replies keep
//! lists of ids on one line, and an inspection's result is in view.

use super::{bind, browser, click, fill, js, set_up, wait_until};
use crate::helpers::spawn_app;

#[actix_web::test]
async fn at_1400_by_900_names_fit_lists_stay_whole_and_results_are_in_view() {
    let Some(browser) = browser(1400, 900).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "layout", 3).await;
    for (id, user) in ids.iter().zip(["ann", "bob", "cy"]) {
        bind(c, id, "room", user).await;
    }
    // No bridge: no MQTT badge.
    let badge = js(
        c,
        "document.querySelector('#mqtt-status').offsetParent === null",
    )
    .await;
    assert_eq!(badge, true, "the MQTT badge shows without a bridge");
    click(c, "#unbind").await; // the longest method name
    wait_until(
        c,
        "Array.from(document.querySelectorAll('#call-log .call .method')).some(m => m.textContent === 'unbind_from_group')",
    )
    .await;
    let cut = js(
        c,
        "Array.from(document.querySelectorAll('#call-log .call .method')).filter(m => m.scrollWidth > m.clientWidth).map(m => m.textContent)",
    )
    .await;
    assert_eq!(cut, serde_json::json!([]), "method names cut off");

    fill(c, "#inspect-group", "room").await;
    click(c, "#all-groups").await;
    wait_until(
        c,
        "document.querySelector('#inspect-result').textContent.startsWith('200')",
    )
    .await;
    let shown = js(
        c,
        "(() => { const r = document.querySelector('#inspect-result').getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight; })()",
    )
    .await;
    assert_eq!(shown, true, "the inspect result is in view");
    let result = js(c, "document.querySelector('#inspect-result').textContent").await;
    let result = result.as_str().unwrap();
    assert!(
        result
            .lines()
            .any(|l| l.contains("\"room\": [\"") && l.trim_end().ends_with("]")),
        "the group's members on one line: {result}"
    );
}

/// Whatever the panel's width, a comma stays on the line of what it follows (a long id used to
/// wrap its comma onto a line of its own). Tried at every width from 150 to 420 px.
#[actix_web::test]
async fn inspect_results_never_wrap_a_comma_onto_its_own_line() {
    let Some(browser) = browser(1400, 900).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "commas", 3).await;
    for (id, user) in ids.iter().zip(["ann", "bob", "cy"]) {
        bind(c, id, "room", user).await;
    }
    for button in ["#all-groups", "#client-info"] {
        js(
            c,
            "document.querySelector('#inspect-result').textContent = ''",
        )
        .await;
        click(c, button).await;
        wait_until(
            c,
            "document.querySelector('#inspect-result').textContent.startsWith('200')",
        )
        .await;
        let widths = js(c, LONE_COMMA_WIDTHS).await;
        assert_eq!(
            widths,
            serde_json::json!([]),
            "{button}: lone commas at these widths"
        );
    }
}

/// The widths of `#inspect-result` at which some comma starts a line.
const LONE_COMMA_WIDTHS: &str = "(() => {
  const el = document.querySelector('#inspect-result');
  const text = el.firstChild;
  const s = text.textContent;
  const top = (i) => { const r = document.createRange(); r.setStart(text, i); r.setEnd(text, i + 1);
                       const rect = r.getClientRects()[0]; return rect ? rect.top : NaN; };
  const bad = [];
  for (let w = 150; w <= 420; w += 1) {
    el.style.width = w + 'px';
    for (let i = 1; i < s.length; i++) {
      if (s[i] === ',' && s[i - 1] !== '\\n' && top(i) > top(i - 1) + 1) { bad.push(w); break; }
    }
  }
  el.style.width = '';
  return bad;
})()";
