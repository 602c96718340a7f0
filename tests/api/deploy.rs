//! `deploy/wshub.service` is hardened: "OK" (under 4.5) to `systemd-analyze security`.

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
