//! The README's TypeScript recipe: its frontend snippet, with `/wshub.d.ts` fetched from a live
//! server as the README says and its `tsconfig.json`, passes `tsc --strict`; a wrong call fails.
//! The compiler: `npm ci` in `tests/typescript` (`.ci/run` does it).

use std::path::Path;

use crate::helpers::ServerProcess;

/// Runs tsc on the project in `dir`; returns whether it passed and what it printed.
fn tsc(tsc: &Path, dir: &Path) -> (bool, String) {
    let output = std::process::Command::new(tsc)
        .args(["--noEmit", "-p"])
        .arg(dir)
        .output()
        .expect("tsc runs");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), printed)
}

#[test]
fn the_readme_typescript_recipe_type_checks_the_frontend_snippet() {
    let compiler =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typescript/node_modules/.bin/tsc");
    if !compiler.exists() {
        return crate::helpers::skip_unless_ci(
            "TypeScript check",
            "no TypeScript compiler: run `npm ci` in tests/typescript",
        );
    }
    // A server process: the fetch below blocks this thread.
    let server = ServerProcess::start(&[], &[]);
    let blocks = crate::helpers::readme_blocks("## In a frontend");
    let block = |language: &str| {
        blocks
            .iter()
            .find(|(l, _)| l == language)
            .map(|(_, body)| body.clone())
            .unwrap_or_else(|| panic!("a {language} block in \"In a frontend\""))
    };
    let dir = std::env::temp_dir().join(format!("wshub-ts-{}", wshub::protocol::new_id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    // The README's steps: fetch the types, write its tsconfig, use its snippet.
    let fetch = block("sh").replace("127.0.0.1:7800", &server.address);
    crate::readme::run_in_bash(&fetch.replace("curl ", "curl -sf "), &dir);
    std::fs::write(dir.join("tsconfig.json"), block("json")).unwrap();
    std::fs::write(dir.join("src/app.ts"), block("js")).unwrap();
    let (ok, printed) = tsc(&compiler, &dir);
    assert!(ok, "the README's snippet does not type-check:\n{printed}");

    // The types are really applied: a wrong option and a wrong field are errors.
    let wrong = r#"import { connect } from "http://127.0.0.1:7800/wshub.js";
const hub = connect({ url: 42, systemId: "demo" });
hub.on("message", (m) => m.nonsense);
"#;
    std::fs::write(dir.join("src/wrong.ts"), wrong).unwrap();
    let (ok, printed) = tsc(&compiler, &dir);
    assert!(!ok, "a wrong call type-checked");
    assert!(
        printed.contains("src/wrong.ts(2,") && printed.contains("src/wrong.ts(3,"),
        "{printed}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
