//! The README's "Five minutes with curl" walkthrough, run as written: its shell blocks in bash
//! (curl against a real server started as its first block says), its WebSocket client step with
//! a real client, and every reply compared with the one the README shows.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::helpers::ServerProcess;

/// The JSON values a block shows after `prefix` (`# ` for replies, `< ` for frames).
fn shown(block: &str, prefix: &str) -> Vec<Value> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix(prefix))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every JSON value curl printed (`curl -s` ends no line, so replies run together).
fn printed(output: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(output)
        .into_iter::<Value>()
        .map(|v| v.expect("curl printed JSON"))
        .collect()
}

/// Runs `script` in bash (`-euo pipefail`) in `dir`, as the second terminal would; returns what
/// it printed, after asserting it succeeded.
pub(crate) fn run_in_bash(script: &str, dir: &Path) -> String {
    let output = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script}\nfailed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `true` when `actual` has every field `shown` has, with the same value; ids (abbreviated, like
/// `"2dba65f3..."`, or whole) stand for any, and `data` strings holding JSON are compared the
/// same way.
fn matches(shown: &Value, actual: &Value) -> bool {
    match (shown, actual) {
        (Value::Object(shown), Value::Object(actual)) => shown
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|actual| matches(value, actual))),
        (Value::String(shown), Value::String(actual)) => {
            if let (Ok(shown), Ok(actual)) = (
                serde_json::from_str::<Value>(shown),
                serde_json::from_str::<Value>(actual),
            ) {
                return matches(&shown, &actual);
            }
            shown.ends_with("...") || shown == actual || is_an_example_id(shown)
        }
        _ => shown == actual,
    }
}

/// The README's example clientIds and messageIds: 32 hex digits.
fn is_an_example_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn the_five_minute_walkthrough_works_in_the_order_the_readme_gives() {
    let has_curl = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_curl {
        return crate::helpers::skip_unless_ci("README walkthrough", "curl is not installed");
    }
    let blocks = crate::helpers::readme_blocks("## Five minutes with curl");
    let sh: Vec<&str> = blocks
        .iter()
        .filter(|(language, _)| language == "sh")
        .map(|(_, body)| body.as_str())
        .collect();
    let [start, register, connect, send] = sh[..] else {
        panic!("the walkthrough has four shell blocks: {sh:?}");
    };
    // 1. The server, with the secret the first block exports.
    let secret = start
        .split("WSHUB_JWT_SECRET=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the first block sets a secret");
    assert!(start.contains("cargo run --release"));
    let server = ServerProcess::start(&[], &[("WSHUB_JWT_SECRET", Some(secret))]);
    let binary = env!("CARGO_BIN_EXE_wshub");
    let as_here = |block: &str| {
        block
            .replace(
                "http://127.0.0.1:7800",
                &format!("http://{}", server.address),
            )
            .replace("cargo run --release -q --", binary)
    };

    // 2. Register `demo`: the reply shown. Again (the console or an earlier run did it): 409,
    // as the README says, and the walkthrough carries on.
    let replies = printed(&run_in_bash(&as_here(register), Path::new(".")));
    assert_eq!(replies, shown(register, "# "), "{register}");
    let again = printed(&run_in_bash(&as_here(register), Path::new(".")));
    let readme = include_str!("../../README.md");
    let said = readme
        .split("If you registered `demo`")
        .nth(1)
        .and_then(|paragraph| paragraph.split("`{").nth(1))
        .and_then(|rest| rest.split("}`").next())
        .map(|json| serde_json::from_str::<Value>(&format!("{{{json}}}")))
        .expect("the README shows the reply to a second register")
        .expect("as JSON");
    assert_eq!(again, [said]);

    // 3. A WebSocket client of `demo`, as wscat would.
    let url = connect
        .split('"')
        .nth(1)
        .expect("the client step quotes its URL")
        .replace("127.0.0.1:7800", &server.address);
    actix_web::rt::System::new().block_on(async {
        let (_, mut client) = awc::Client::new()
            .ws(url)
            .connect()
            .await
            .expect("connected");
        let welcome = crate::helpers::next_json(&mut client).await;
        assert!(matches(&shown(connect, "# < ")[0], &welcome), "{welcome}");
        let client_id = welcome["data"]["clientId"].as_str().expect("a clientId");

        // 4. Bind and send, with the exports of the register step and the client's id.
        let exports: Vec<&str> = register
            .lines()
            .filter(|l| l.starts_with("export "))
            .collect();
        let example_id = send
            .split("CID=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the send step sets CID");
        let script = format!(
            "{}\n{}",
            exports.join("\n"),
            send.replace(example_id, client_id)
        );
        let replies = printed(&run_in_bash(&as_here(&script), Path::new(".")));
        assert!(replies.iter().all(|r| r["code"] == 0), "{replies:?}");
        let last = replies.last().expect("replies");
        assert!(matches(&shown(send, "# ")[0], last), "{last}");

        // What the client shows next: the block after the send step.
        let frames_block = blocks
            .iter()
            .skip_while(|(_, body)| body != send)
            .nth(1)
            .map(|(_, body)| body.as_str())
            .expect("the frames the client shows");
        for expected in shown(frames_block, "< ") {
            let frame = crate::helpers::next_json(&mut client).await;
            assert!(matches(&expected, &frame), "{expected} vs {frame}");
        }
    });
}

/// The `--flags` and `WSHUB_*` variables in a README's configuration section (from its heading
/// to the next `## `), and in the whole file.
fn flags_in(readme: &str, heading: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let section = crate::helpers::section_of(readme, heading);
    let words = |text: &str| -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '…'))
            .filter(|w| {
                (w.starts_with("--") && w.len() > 2 && !w.ends_with('-')) || w.starts_with("WSHUB_")
            })
            .map(str::to_owned)
            .collect()
    };
    (words(section), words(readme))
}

#[test]
fn the_chinese_readme_names_every_flag_the_english_one_does() {
    let english = include_str!("../../README.md");
    let chinese = include_str!("../../README.zh-CN.md");
    assert!(
        english.contains("(README.zh-CN.md)"),
        "README.md links the Chinese one"
    );
    let (english_table, english_all) = flags_in(english, "## Configuration");
    let (chinese_table, chinese_all) = flags_in(chinese, "## 配置");
    assert!(english_table.len() > 40, "{english_table:?}");
    let only_english: Vec<_> = english_table.difference(&chinese_table).collect();
    let only_chinese: Vec<_> = chinese_table.difference(&english_table).collect();
    assert!(
        only_english.is_empty() && only_chinese.is_empty(),
        "configuration tables differ: only in README.md {only_english:?}, only in README.zh-CN.md {only_chinese:?}"
    );
    // Its walkthrough runs the same commands (the comments translated).
    let commands = |markdown: &str, heading: &str| -> Vec<String> {
        crate::helpers::blocks_of(markdown, heading)
            .into_iter()
            .filter(|(language, _)| language == "sh")
            .flat_map(|(_, body)| {
                body.lines()
                    .map(|l| l.split(" # ").next().unwrap_or_default().trim().to_owned())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(
        commands(chinese, "## 五分钟上手"),
        commands(english, "## Five minutes with curl")
    );
    // And nothing the Chinese one mentions elsewhere is unknown to the English one.
    let unknown: Vec<_> = chinese_all.difference(&english_all).collect();
    assert!(
        unknown.is_empty(),
        "README.zh-CN.md names {unknown:?}, README.md does not"
    );
}
