//! Systems that last: settings (`register` with a webhook, `update_system`, `get_system`,
//! `unregister`), and a single node's store across restarts, `kill -9`, a second process and a
//! corrupt file.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{mint, spawn_app, Reply, ServerProcess, WAIT};

const SECRET16: &str = "0123456789abcdef";

pub(super) fn hook(url: &str) -> Value {
    json!({"url": url, "secret": SECRET16})
}

#[actix_web::test]
async fn settings_are_set_shown_changed_and_removed_without_the_secret() {
    let app = spawn_app().await;
    app.api(
        "register",
        "",
        json!({"systemId": "s", "webhook": {"url": "http://127.0.0.1:9/hook", "secret": SECRET16, "events": ["group_left", "client_online", "client_online"]}}),
    )
    .await
    .ok();
    let _client = app.connect("s").await;
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["systemId"], "s");
    assert_eq!(info["clients"], 1);
    assert!(info["registeredAt"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(
        info["webhook"],
        json!({"url": "http://127.0.0.1:9/hook", "events": ["client_online", "group_left"]})
    );
    assert_eq!(info["mqtt"], Value::Null);
    assert!(
        !info.to_string().contains(SECRET16),
        "the secret is never shown"
    );

    // An absent key keeps a setting, an object replaces it whole, null removes it.
    app.api(
        "update_system",
        "s",
        json!({"mqtt": {"events": ["client_offline"]}}),
    )
    .await
    .ok();
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(info["mqtt"], json!({"events": ["client_offline"]}));
    app.api(
        "update_system",
        "s",
        json!({"webhook": hook("https://example.test/h")}),
    )
    .await
    .ok();
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"]["url"], "https://example.test/h");
    assert_eq!(
        info["webhook"]["events"].as_array().unwrap().len(),
        9,
        "no events listed: all of them"
    );
    app.api("update_system", "s", json!({"webhook": null, "mqtt": null}))
        .await
        .ok();
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(
        (&info["webhook"], &info["mqtt"]),
        (&Value::Null, &Value::Null)
    );
}

#[actix_web::test]
async fn bad_settings_are_400_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    app.register("s").await;
    let cases = [
        (json!({}), "name webhook, mqtt or presence"),
        (json!({"webhook": hook("not a url")}), "webhook.url"),
        (
            json!({"webhook": hook("ftp://example.test/h")}),
            "webhook.url",
        ),
        (json!({"webhook": hook("/relative")}), "webhook.url"),
        (
            json!({"webhook": {"url": "http://example.test", "secret": "short"}}),
            "webhook.secret",
        ),
        (
            json!({"webhook": {"url": "http://example.test", "secret": "x".repeat(257)}}),
            "webhook.secret",
        ),
        (
            json!({"webhook": {"url": "http://example.test", "secret": SECRET16, "events": ["client_online", "nope"]}}),
            "webhook.events[1]",
        ),
        (
            json!({"webhook": {"url": "http://example.test", "secret": SECRET16, "extra": 1}}),
            "webhook",
        ),
        (json!({"mqtt": {"events": ["bogus"]}}), "mqtt.events[0]"),
        (json!({"webhook": 5}), "webhook"),
    ];
    for (body, field) in cases {
        app.api("update_system", "s", body).await.err(400, field);
    }
    app.api(
        "register",
        "",
        json!({"systemId": "t", "webhook": hook("gopher://x")}),
    )
    .await
    .err(400, "webhook.url");
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"], Value::Null);
    // The refused register registered nothing.
    app.api("get_system", "t", json!({}))
        .await
        .err(403, "not registered");
}

#[actix_web::test]
async fn a_scoped_token_manages_its_own_system_only() {
    let app = spawn_app().await;
    app.register("mine").await;
    app.register("theirs").await;
    let token = mint(Some("mine"), 600);
    let call = |method: &'static str, system: &'static str, body: Value| {
        let token = token.clone();
        let app = &app;
        async move {
            app.call(crate::helpers::Call {
                method,
                http_method: awc::http::Method::POST,
                token: Some(&token),
                system: Some(system),
                body: body.to_string().into(),
            })
            .await
        }
    };
    call(
        "update_system",
        "mine",
        json!({"webhook": hook("http://a.test")}),
    )
    .await
    .ok();
    call("get_system", "mine", json!({})).await.ok();
    for method in ["update_system", "get_system", "unregister"] {
        call(method, "theirs", json!({"mqtt": null}))
            .await
            .err(403, "scoped to system 'mine'");
    }
    call("unregister", "mine", json!({})).await.ok();
}

#[actix_web::test]
async fn unregister_closes_clients_with_4001_and_frees_the_id() {
    let app = spawn_app().await;
    app.register("s").await;
    let mut a = app.connect("s").await;
    let mut b = app.connect("s").await;
    app.bind("s", &a, "room", "ann").await;
    app.bind("s", &b, "room", "bob").await;
    app.api("unregister", "s", json!({})).await.ok();
    for client in [&mut a, &mut b] {
        let reason = loop {
            match client.next_frame().await {
                awc::ws::Frame::Close(reason) => break reason.expect("a close reason"),
                awc::ws::Frame::Text(text) => {
                    let frame: Value = serde_json::from_slice(&text).unwrap();
                    assert_ne!(frame["code"], 1002, "no 1002 storm: {frame}");
                }
                _ => {}
            }
        };
        assert_eq!(u16::from(reason.code), 4001);
        assert_eq!(reason.description.as_deref(), Some("system removed"));
    }
    app.api("get_system", "s", json!({}))
        .await
        .err(403, "not registered");
    app.api("unregister", "s", json!({}))
        .await
        .err(403, "not registered");
    // The id may be registered again, with nothing left of before.
    app.register("s").await;
    let groups = app.api("get_all_groups", "s", json!({})).await.ok();
    assert_eq!(groups, json!({}));
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["clients"], 0);
}

// ---------------------------------------------------------------------------------------------
// A single node's store

pub(super) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wshub-test-{name}-{}", wshub::protocol::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `POST /api/<method>` against a server process.
pub(super) async fn call(address: &str, method: &str, system: &str, body: Value) -> Reply {
    let http = awc::Client::builder().timeout(WAIT).finish();
    let mut response = http
        .post(format!("http://{address}/api/{method}"))
        .insert_header(("Authorization", format!("Bearer {}", mint(None, 600))))
        .insert_header(("SystemId", system))
        .send_body(body.to_string())
        .await
        .expect("request sent");
    let bytes = response.body().await.expect("body read");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: serde_json::from_slice(&bytes).expect("reply is JSON"),
    }
}

fn kill_9(server: &mut ServerProcess) {
    let status = Command::new("kill")
        .args(["-9", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = server.child.wait();
}

#[test]
fn systems_and_settings_survive_a_kill_9_right_after_the_reply() {
    let dir = scratch_dir("kill9");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let mut first = ServerProcess::start(&["--data-dir", &dir_arg], &[]);
    let address = first.address.clone();
    actix_web::rt::System::new().block_on(async {
        call(
            &address,
            "register",
            "",
            json!({"systemId": "kept", "webhook": hook("http://127.0.0.1:9/h")}),
        )
        .await
        .ok();
        call(&address, "register", "", json!({"systemId": "gone"}))
            .await
            .ok();
        call(&address, "unregister", "gone", json!({})).await.ok();
        call(
            &address,
            "update_system",
            "kept",
            json!({"mqtt": {"events": ["client_online"]}}),
        )
        .await
        .ok();
    });
    // No shutdown: whatever was answered 200 must already be on disk.
    kill_9(&mut first);

    let second = ServerProcess::start(&["--data-dir", &dir_arg], &[]);
    let address = second.address.clone();
    actix_web::rt::System::new().block_on(async {
        let info = call(&address, "get_system", "kept", json!({})).await.ok();
        assert_eq!(info["webhook"]["url"], "http://127.0.0.1:9/h");
        assert_eq!(info["mqtt"], json!({"events": ["client_online"]}));
        call(&address, "get_system", "gone", json!({}))
            .await
            .err(403, "not registered");
        // Its clients connect as before the restart.
        assert_welcomed(&address, "kept").await;
    });
    drop(second);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client of `system` connects to the server process at `address` and is welcomed.
pub(super) async fn assert_welcomed(address: &str, system: &str) {
    let (_, mut conn) = awc::Client::new()
        .ws(format!("ws://{address}/ws?systemId={system}"))
        .connect()
        .await
        .expect("connected");
    assert_eq!(crate::helpers::next_json(&mut conn).await["code"], 0);
}

/// Starts the binary expecting it to refuse; returns what it printed.
fn refused_start(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_wshub"))
        .args(["--port", "0", "--workers", "1"])
        .args(args)
        .env("WSHUB_JWT_SECRET", "x")
        .output()
        .unwrap();
    assert!(!output.status.success(), "it started: {output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_data_directory_belongs_to_one_process() {
    let dir = scratch_dir("owned");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let holder = ServerProcess::start(&["--data-dir", &dir_arg], &[]);
    let stderr = refused_start(&["--data-dir", &dir_arg]);
    assert!(
        stderr.contains("in use by another wshub process"),
        "{stderr}"
    );
    assert!(stderr.contains(&dir_arg), "names the directory: {stderr}");
    drop(holder);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_corrupt_store_stops_the_start_naming_the_file() {
    let dir = scratch_dir("corrupt");
    let file = dir.join("systems.redb");
    std::fs::write(
        &file,
        b"this is not a database, and it is long enough to look like one".repeat(64),
    )
    .unwrap();
    let before = std::fs::read(&file).unwrap();
    let stderr = refused_start(&["--data-dir", dir.to_str().unwrap()]);
    assert!(stderr.contains("cannot read the system store"), "{stderr}");
    assert!(
        stderr.contains(file.to_str().unwrap()),
        "names the file: {stderr}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "never silently reset"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs of `size` mounted at a fresh directory, unmounted when dropped; `None` (and a printed
/// reason) where this process may not mount one, which under `CI=true` is a failure.
pub(super) struct SmallDisk(pub(super) PathBuf);

impl SmallDisk {
    pub(super) fn mount(size: &str) -> Option<SmallDisk> {
        let dir = scratch_dir("small-disk");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|status| status.success());
        if mounted {
            return Some(SmallDisk(dir));
        }
        let reason = "cannot mount a tmpfs (needs root)";
        crate::helpers::skip_unless_ci("full-disk test", reason);
        None
    }
}

impl SmallDisk {
    /// Fills what is left of it; returns the file that does.
    pub(super) fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the test's server may still hold its store open.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[actix_web::test]
async fn a_full_disk_is_reported_and_writes_resume_once_there_is_room() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let data = disk.0.join("data");
    let app = crate::helpers::spawn_app_with(|c| {
        c.data_dir = data.clone();
        c.ephemeral = false;
    })
    .await;
    app.register("before").await;
    let filler = disk.fill();
    let health = |app: &crate::helpers::TestApp| {
        let url = app.url("/healthz");
        let http = app.http.clone();
        async move {
            let mut reply = http.get(url).send().await.unwrap();
            reply.json::<Value>().await.unwrap()["data"]["store"].clone()
        }
    };
    assert_eq!(health(&app).await, "ok");
    let mut refused = 0;
    for i in 0..50 {
        let reply = app
            .api(
                "register",
                "",
                json!({"systemId": format!("full-{i}-{}", "x".repeat(100))}),
            )
            .await;
        if reply.status == 503 {
            refused += 1;
            break;
        }
    }
    assert_eq!(refused, 1, "a write to a full disk fails");
    assert_eq!(health(&app).await, "failing");
    std::fs::remove_file(&filler).unwrap();
    app.register("after").await;
    assert_eq!(health(&app).await, "ok");
}

#[actix_web::test]
async fn credentials_in_a_webhook_url_are_never_shown() {
    let app = spawn_app().await;
    app.api(
        "register",
        "",
        json!({"systemId": "s", "webhook": hook("http://alice:hunter2@127.0.0.1:9/hook?x=a@b")}),
    )
    .await
    .ok();
    let info = app.api("get_system", "s", json!({})).await.ok();
    assert_eq!(info["webhook"]["url"], "http://***@127.0.0.1:9/hook?x=a@b");
    assert!(!info.to_string().contains("hunter2"));
}
