//! `wshub import`: a single node's systems, kept in its data directory, brought into a cluster.

use std::process::Command;

use serde_json::json;

use crate::helpers::ServerProcess;
use crate::systems::{assert_welcomed, call, hook, scratch_dir};

/// Runs `wshub import` with `args`; returns whether it succeeded and what it printed.
fn import(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wshub"))
        .arg("import")
        .args(args)
        .env_remove("WSHUB_DATA_DIR")
        .env_remove("WSHUB_REDIS_URL")
        .env_remove("WSHUB_REDIS_PREFIX")
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

#[test]
fn wshub_import_brings_a_single_nodes_systems_into_a_cluster() {
    let Some(redis) = crate::cluster::redis_url() else {
        return;
    };
    let prefix = crate::cluster::fresh_prefix();
    let dir = scratch_dir("import");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let single = ServerProcess::start(&["--data-dir", &dir_arg], &[]);
    let address = single.address.clone();
    actix_web::rt::System::new().block_on(async {
        let kept = json!({"systemId": "kept", "webhook": hook("http://127.0.0.1:9/single")});
        call(&address, "register", "", kept).await.ok();
        call(&address, "register", "", json!({"systemId": "both"}))
            .await
            .ok();
    });
    drop(single);

    // A cluster node started on the same data directory says the systems there are not used.
    let node = ServerProcess::start_logging(
        &[
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
            "--data-dir",
            &dir_arg,
        ],
        &[],
    );
    let warning = node
        .all_lines()
        .into_iter()
        .find(|l| l.contains("wshub import"));
    assert!(
        warning.is_some_and(|l| l.contains("WARN") && l.contains(&dir_arg)),
        "{:?}",
        node.all_lines()
    );
    let address = node.address.clone();
    actix_web::rt::System::new().block_on(async {
        call(&address, "get_system", "kept", json!({}))
            .await
            .err(403, "not registered");
        let theirs = json!({"systemId": "both", "webhook": hook("http://127.0.0.1:9/cluster")});
        call(&address, "register", "", theirs).await.ok();
    });

    let args = [
        "--data-dir",
        &dir_arg,
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
    ];
    let (ok, printed) = import(&args);
    assert!(ok, "{printed}");
    assert!(printed.contains("imported kept"), "{printed}");
    assert!(printed.contains("skipped both"), "{printed}");
    assert!(printed.contains("1 imported, 1 skipped"), "{printed}");
    actix_web::rt::System::new().block_on(async {
        // The running node serves the imported system with its settings, at once.
        let info = call(&address, "get_system", "kept", json!({})).await.ok();
        assert_eq!(info["webhook"]["url"], "http://127.0.0.1:9/single");
        let info = call(&address, "get_system", "both", json!({})).await.ok();
        assert_eq!(info["webhook"]["url"], "http://127.0.0.1:9/cluster");
        assert_welcomed(&address, "kept").await;
    });
    // Running it twice changes nothing.
    let (ok, printed) = import(&args);
    assert!(ok && printed.contains("0 imported, 2 skipped"), "{printed}");

    // No store there: it says so and fails.
    let empty = scratch_dir("import-none");
    let (ok, printed) = import(&["--data-dir", empty.to_str().unwrap(), "--redis-url", &redis]);
    assert!(
        !ok && printed.contains("systems.redb does not exist"),
        "{printed}"
    );
    // No Redis there: it says so and fails.
    let (ok, printed) = import(&["--data-dir", &dir_arg, "--redis-url", "redis://127.0.0.1:9"]);
    assert!(
        !ok && printed.contains("cannot import into Redis"),
        "{printed}"
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
