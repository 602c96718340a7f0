//! The backend SDKs' own test suites (`sdk/go`: `go test ./...`; `sdk/php`: `tests/run.php`),
//! each against the real binary with the secret its tokens are minted from. They cover every
//! REST method, token minting, webhook verification with batches this server signed, errors,
//! and the goravel and Laravel examples. Without Go or PHP they skip (`CI=true`: fail).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{skip_unless_ci, ServerProcess, SECRET};

fn sdk_dir(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sdk")
        .join(language)
}

/// Whether `program --version`-like `probe` runs at all.
fn installed(program: &str, probe: &str) -> bool {
    Command::new(program)
        .arg(probe)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs a suite with the server's address and secret in its environment; returns its output
/// after asserting it passed.
fn run_suite(mut command: Command, server: &ServerProcess) -> String {
    let output = command
        .env("WSHUB_URL", format!("http://{}", server.address))
        .env("WSHUB_JWT_SECRET", SECRET)
        .env("CI", "true") // a suite that finds no server fails instead of skipping
        .output()
        .expect("the suite starts");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the suite failed:\n{printed}");
    assert!(
        !printed.contains("SKIP"),
        "the suite skipped tests:\n{printed}"
    );
    printed
}

#[test]
fn the_go_sdk_passes_its_tests_against_a_live_server() {
    if !installed("go", "version") {
        return skip_unless_ci("Go SDK", "no Go toolchain (Debian: apt install golang-go)");
    }
    let server = ServerProcess::start(&[], &[]);
    let mut go = Command::new("go");
    go.args(["test", "-count=1", "-v", "./..."])
        .current_dir(sdk_dir("go"));
    let printed = run_suite(go, &server);
    for test in [
        "TestMintedTokensAreAdminOrScoped",
        "TestEveryMessageAndGroupMethod",
        "TestErrorsCarryStatusCodeAndMessage",
        "TestVerifyWebhookAcceptsWshubsBatchAndRefusesTamperedOrStaleOnes",
        "TestTheGoravelExampleJoinsAndSays",
    ] {
        assert!(
            printed.contains(&format!("--- PASS: {test}")),
            "{test} did not pass:\n{printed}"
        );
    }
}

#[test]
fn the_php_sdk_passes_its_tests_against_a_live_server() {
    if !installed("php", "-v") {
        return skip_unless_ci("PHP SDK", "no PHP (Debian: apt install php-cli php-curl)");
    }
    let has_curl = Command::new("php")
        .args(["-r", "exit(extension_loaded('curl') ? 0 : 1);"])
        .status()
        .is_ok_and(|status| status.success());
    if !has_curl {
        return skip_unless_ci(
            "PHP SDK",
            "PHP has no curl extension (apt install php-curl)",
        );
    }
    let server = ServerProcess::start(&[], &[]);
    let mut php = Command::new("php");
    php.arg("tests/run.php").current_dir(sdk_dir("php"));
    let printed = run_suite(php, &server);
    assert!(
        printed.contains("7 passed, 0 failed"),
        "every test ran and passed:\n{printed}"
    );
}
