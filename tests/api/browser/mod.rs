//! The console driven in a real headless Chromium (Debian's `chromium` + `chromedriver`) against
//! a real wshub. Without a browser the test skips with a printed reason; under `CI=true` a
//! missing browser is a failure.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

mod client_lib;
mod first_steps;
mod layout;
mod recovery;
mod system_panel;
mod users;

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const CHROMEDRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// A chromedriver process, a browser session and a throw-away profile; all cleaned up on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver runs in a process group of its own, which its Chromium processes join:
        // ending the group leaves no browser behind, even when the test failed mid-session.
        if let Ok(group) = i32::try_from(self.driver.id()) {
            if group > 1 {
                // SAFETY: kill(2) with a negative pid signals exactly that process group, the
                // one created for chromedriver by `process_group(0)` below.
                unsafe {
                    libc::kill(-group, libc::SIGKILL);
                }
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Starts Chromium through chromedriver, or returns `None` (after saying why) when this machine
/// has no browser and is not CI.
pub async fn browser(width: u32, height: u32) -> Option<Browser> {
    let (Some(chromium), Some(chromedriver)) =
        (first_existing(CHROMIUM), first_existing(CHROMEDRIVER))
    else {
        let reason = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
        crate::helpers::skip_unless_ci("browser test", reason);
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile =
        std::env::temp_dir().join(format!("wshub-chromium-{}-{}", std::process::id(), port));
    std::fs::create_dir_all(&profile).unwrap();
    let browser = Browser {
        client: connect(port, &chromium, &profile, width, height).await,
        driver,
        profile,
    };
    browser
        .client
        .set_window_size(width, height)
        .await
        .expect("window sized");
    Some(browser)
}

async fn connect(port: u16, chromium: &Path, profile: &Path, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
                "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let url = format!("http://127.0.0.1:{port}");
    // chromedriver needs a moment before it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => return client,
            Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("could not start a browser session: {err}"),
        }
    }
}

/// Evaluates a JavaScript expression in the page.
pub async fn js(client: &Client, expr: &str) -> Value {
    client
        .execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap_or_else(|e| panic!("script {expr} failed: {e}"))
}

/// Waits until a JavaScript expression is truthy.
pub async fn wait_until(client: &Client, expr: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = js(client, &format!("!!({expr})")).await;
        if value == json!(true) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {expr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn fill(client: &Client, selector: &str, text: &str) {
    let field = client.find(Locator::Css(selector)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

pub async fn click(client: &Client, selector: &str) {
    client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Text of a client card's frame log, by card position (0-based).
pub fn card_frames(index: usize) -> String {
    format!("document.querySelectorAll('.client-card')[{index}].querySelector('.frames')")
}

/// Saves the token, registers `system` and opens `clients` clients; returns their ids.
pub async fn set_up(client: &Client, app: &TestApp, system: &str, clients: usize) -> Vec<String> {
    client.goto(&app.url("/")).await.unwrap();
    fill(client, "#token", &app.token).await;
    click(client, "#save-token").await;
    wait_until(
        client,
        "document.querySelector('#token-status').textContent === 'accepted'",
    )
    .await;
    fill(client, "#system-id", system).await;
    click(client, "#register").await;
    wait_until(
        client,
        &format!("document.querySelector('#current-system').textContent === '{system}'"),
    )
    .await;
    for _ in 0..clients {
        click(client, "#open-client").await;
    }
    wait_until(
        client,
        &format!("document.querySelectorAll('.client-card[data-state=open]').length === {clients}"),
    )
    .await;
    let ids = js(
        client,
        "Array.from(document.querySelectorAll('.client-card')).map(c => c.dataset.clientId)",
    )
    .await;
    serde_json::from_value(ids).unwrap()
}

pub async fn bind(client: &Client, id: &str, group: &str, user: &str) {
    client
        .find(Locator::Css("#bind-client"))
        .await
        .unwrap()
        .select_by_value(id)
        .await
        .unwrap();
    fill(client, "#bind-group", group).await;
    fill(client, "#bind-user", user).await;
    click(client, "#bind").await;
}

pub async fn send_to_group(client: &Client, group: &str, data: &str) {
    click(client, "#target-group").await;
    fill(client, "#send-group", group).await;
    fill(client, "#send-data", data).await;
    click(client, "#send").await;
}

#[actix_web::test]
async fn console_drives_a_group_conversation_in_a_real_browser() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "e2e", 2).await;
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    // The token check is a call that succeeds: no red or amber row before anything was tried.
    let calls = js(
        c,
        "Array.from(document.querySelectorAll('#call-log .call')).map(c => [c.querySelector('.method').textContent, c.querySelector('.status').textContent])",
    )
    .await;
    let calls = calls.as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c[0].as_str().unwrap().contains("check_token")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .all(|c| c[1].as_str().unwrap().starts_with('2')),
        "{calls:?}"
    );

    bind(c, &ids[0], "room", "ann").await;
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 1",
            card_frames(0)
        ),
    )
    .await;
    bind(c, &ids[1], "room", "bob").await;
    // Both see bob's 1001; ann also saw her own.
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 2",
            card_frames(0)
        ),
    )
    .await;
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 1",
            card_frames(1)
        ),
    )
    .await;

    // Invalid JSON data is caught before anything is sent.
    click(c, "#data-json").await;
    send_to_group(c, "room", "{not json").await;
    wait_until(c, "!document.querySelector('#send-error').hidden").await;
    let calls_before = js(c, "document.querySelectorAll('#call-log .call').length").await;

    click(c, "#data-text").await;
    send_to_group(c, "room", "hello e2e").await;
    for card in 0..2 {
        wait_until(
            c,
            &format!("{}.querySelector('li.push') && {0}.querySelector('li.push').textContent.includes('hello e2e')", card_frames(card)),
        )
        .await;
    }
    let calls_after = js(c, "document.querySelectorAll('#call-log .call').length").await;
    assert_eq!(
        calls_after.as_u64().unwrap(),
        calls_before.as_u64().unwrap() + 1
    );
    // The REST log shows the call with its status and never the token.
    let newest = js(c, "document.querySelector('#call-log .call').textContent").await;
    let newest = newest.as_str().unwrap();
    assert!(
        newest.contains("POST /api/send_to_group") && newest.contains("200"),
        "{newest}"
    );
    let log_text = js(c, "document.querySelector('#call-log').textContent").await;
    assert!(!log_text.as_str().unwrap().contains(&app.token));

    // The server agrees with what the page shows.
    let list = app
        .api("get_online_list", "e2e", json!({"groupName": "room"}))
        .await
        .ok();
    assert_eq!(list["count"], 2);

    // Close bob through the console (REST close_client); ann sees 1002, bob's card shows 1000.
    click(
        c,
        &format!(".client-card[data-client-id='{}'] .kick", ids[1]),
    )
    .await;
    wait_until(
        c,
        &format!("{}.querySelector('li.offline')", card_frames(0)),
    )
    .await;
    wait_until(
        c,
        "document.querySelectorAll('.client-card')[1].dataset.state === 'closed' && document.querySelectorAll('.client-card')[1].querySelector('.state').textContent.includes('1000')",
    )
    .await;
    let offline = js(
        c,
        &format!("{}.querySelector('li.offline').textContent", card_frames(0)),
    )
    .await;
    assert!(offline.as_str().unwrap().contains("bob"), "{offline}");
}

/// Makes `static/console.png` for the README: `cargo test --test api -- --ignored screenshot`.
#[actix_web::test]
#[ignore]
async fn screenshot_for_the_readme() {
    let Some(browser) = browser(1280, 800).await else {
        return;
    };
    let app = spawn_app().await;
    let c = &browser.client;
    let ids = set_up(c, &app, "demo", 3).await;
    for (id, user) in ids.iter().zip(["ann", "bob", "cy"]) {
        bind(c, id, "lobby", user).await;
    }
    wait_until(
        c,
        &format!(
            "{}.querySelectorAll('li.online').length === 3",
            card_frames(0)
        ),
    )
    .await;
    send_to_group(c, "lobby", "hello lobby").await;
    click(c, "#data-json").await;
    click(c, "#target-client").await;
    fill(c, "#send-data", r#"{"score": 42, "done": false}"#).await;
    fill(c, "#send-code", "200").await;
    fill(c, "#send-msg", "match update").await;
    click(c, "#send").await;
    click(
        c,
        &format!(".client-card[data-client-id='{}'] .close-ws", ids[2]),
    )
    .await;
    wait_until(
        c,
        &format!("{}.querySelector('li.offline')", card_frames(0)),
    )
    .await;
    wait_until(
        c,
        "document.querySelectorAll('.client-card')[2].dataset.state === 'closed'",
    )
    .await;
    fill(c, "#inspect-group", "lobby").await;
    click(c, "#online-list").await;
    wait_until(
        c,
        "document.querySelector('#inspect-result').textContent.startsWith('200')",
    )
    .await;
    js(c, "(() => { for (const el of document.querySelectorAll('.controls, .cards, .calls')) el.scrollTop = 0; })()").await;
    let png = c.screenshot().await.unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/static/console.png"),
        png,
    )
    .unwrap();
}
