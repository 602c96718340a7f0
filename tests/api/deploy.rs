//! `deploy/wshub.service` is hardened: "OK" (under 4.5) to `systemd-analyze security`, and its
//! syscall filter lets through everything wshub does.

use std::process::Command;

use crate::helpers::skip_unless_ci;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/wshub.service");

/// Whether `program` runs here; if not, the test is skipped (failed under `CI=true`).
fn have(program: &str, package: &str) -> bool {
    let runs = Command::new(program).arg("--version").output().is_ok();
    if !runs {
        skip_unless_ci(
            "deployment test",
            &format!("{program} is not installed (apt-get install {package})"),
        );
    }
    runs
}

#[test]
fn the_unit_is_hardened_to_ok() {
    if !have("systemd-analyze", "systemd") {
        return;
    }
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", UNIT])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let score: f64 = text
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for wshub.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        score < 4.5,
        "exposure {score}, want under 4.5 (OK):\n{text}"
    );
}

/// The syscalls in a `systemd-analyze syscall-filter` group, nested groups expanded.
fn syscalls_of(group: &str) -> std::collections::HashSet<String> {
    let output = Command::new("systemd-analyze")
        .args(["syscall-filter", "--no-pager", group])
        .output()
        .unwrap();
    let mut names = std::collections::HashSet::new();
    for line in String::from_utf8_lossy(&output.stdout).lines().skip(1) {
        let item = line.trim();
        if item.starts_with('@') {
            names.extend(syscalls_of(item));
        } else if !item.is_empty() && !item.starts_with('#') {
            names.insert(item.to_owned());
        }
    }
    names
}

/// What the unit's `SystemCallFilter=` lines let through: the first names what is allowed,
/// `~` lines take groups away.
fn allowed_by_the_unit() -> std::collections::HashSet<String> {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let mut allowed = std::collections::HashSet::new();
    for filter in unit
        .lines()
        .filter_map(|l| l.strip_prefix("SystemCallFilter="))
    {
        match filter.strip_prefix('~') {
            Some(denied) => {
                for group in denied.split_whitespace() {
                    for name in syscalls_of(group) {
                        allowed.remove(&name);
                    }
                }
            }
            None => {
                for group in filter.split_whitespace() {
                    allowed.extend(syscalls_of(group));
                }
            }
        }
    }
    allowed
}

/// The syscall names in an `strace -f` log.
fn traced(log: &str) -> std::collections::HashSet<String> {
    log.lines()
        .filter_map(|line| {
            let call = line.split_once(' ')?.1.trim_start();
            let call = call.strip_prefix("<... ").unwrap_or(call);
            let name: String = call
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && call[name.len()..].starts_with(['(', ' '])).then_some(name)
        })
        .collect()
}

/// The unit's seccomp filter (`SystemCallFilter=`) would kill wshub at its first syscall outside
/// it (EPERM, here): every syscall wshub makes starting, serving REST and WebSocket clients and
/// shutting down on SIGTERM, traced with strace, is one the filter allows.
#[test]
fn the_units_syscall_filter_allows_every_syscall_wshub_makes() {
    if !have("systemd-analyze", "systemd") || !have("strace", "strace") {
        return;
    }
    // A container may forbid ptrace: that is the machine, not a missing package.
    let can_trace = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_trace {
        return crate::helpers::say_skipped("syscall filter test", "ptrace is not permitted here");
    }
    use std::io::{BufRead, BufReader};
    let trace = std::env::temp_dir().join(format!("wshub-strace-{}", wshub::protocol::new_id()));
    // A data directory, as the unit gives it: the stores' writes are traced too.
    let data = crate::systems::scratch_dir("strace-data");
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_wshub"))
        .args([
            "--port",
            "0",
            "--workers",
            "2",
            "--shutdown-grace",
            "2",
            "--data-dir",
        ])
        .arg(&data)
        .env("WSHUB_JWT_SECRET", crate::helpers::SECRET)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("strace starts");
    let mut log = BufReader::new(strace.stderr.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "wshub exited early");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in log.lines() {});
    actix_web::rt::System::new().block_on(async {
        let call = |method: &'static str, system: &'static str, body: serde_json::Value| {
            crate::systems::call(&address, method, system, body)
        };
        // With a webhook, so events are written to the outbox (and their posts tried).
        let hook = serde_json::json!({"url": "http://127.0.0.1:9/h", "secret": "0123456789abcdef"});
        call(
            "register",
            "",
            serde_json::json!({"systemId": "traced", "webhook": hook}),
        )
        .await
        .ok();
        let (_, mut conn) = awc::Client::new()
            .ws(format!("ws://{address}/ws?systemId=traced"))
            .connect()
            .await
            .unwrap();
        let welcome = crate::helpers::next_json(&mut conn).await;
        let client_id = welcome["data"]["clientId"].as_str().unwrap().to_owned();
        call(
            "bind_to_group",
            "traced",
            serde_json::json!({"clientId": client_id, "groupName": "g", "userId": "u"}),
        )
        .await
        .ok();
        call(
            "send_to_group",
            "traced",
            serde_json::json!({"groupName": "g", "msg": "hi"}),
        )
        .await
        .ok();
        call(
            "get_online_list",
            "traced",
            serde_json::json!({"groupName": "g"}),
        )
        .await
        .ok();
        let metrics = awc::Client::new()
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(metrics.status(), 200);
    });
    // SIGTERM to wshub itself (strace's child), and strace ends with it.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", strace.id())).unwrap();
    let wshub_pid = children
        .split_whitespace()
        .next()
        .expect("wshub runs")
        .to_owned();
    Command::new("kill")
        .args(["-TERM", &wshub_pid])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while strace.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", &wshub_pid]).status();
            let _ = strace.kill();
            panic!("wshub did not stop on SIGTERM under strace");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let made = traced(&std::fs::read_to_string(&trace).unwrap());
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_dir_all(&data);
    assert!(
        made.contains("epoll_wait") || made.contains("epoll_pwait"),
        "{made:?}"
    );
    let allowed = allowed_by_the_unit();
    // strace's own exec of the binary comes first; it is wshub's too.
    let mut refused: Vec<&String> = made
        .iter()
        .filter(|name| !allowed.contains(*name))
        .collect();
    refused.sort();
    assert!(refused.is_empty(), "the unit's filter refuses {refused:?}");
}
