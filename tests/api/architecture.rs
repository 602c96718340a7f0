//! The shape the code keeps, checked on the source: no import circles between files, no
//! cluster-mode branch above the backplane, every method in its own file under one list, and long
//! files say why they are long.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LONG_FILE: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source directory")
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `src/actors/registry.rs` → `["actors", "registry"]`; `mod.rs`, `lib.rs` name their directory.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(root().join("src")).expect("under src/");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The modules a file names through `crate::`, `super::` or `self::` paths, outside comments and
/// its `#[cfg(test)]` module, resolved to the longest module path that is a file.
fn imports(file: &Path, source: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let here = module_of(file);
    let code: String = source
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segments = path.split("::").filter(|s| !s.is_empty());
            let mut base = match segments.next() {
                Some("crate") => Vec::new(),
                Some("self") => here.clone(),
                _ => here[..here.len().saturating_sub(1)].to_vec(),
            };
            let mut rest: Vec<&str> = segments.collect();
            while rest.first() == Some(&"super") {
                base.pop();
                rest.remove(0);
            }
            // With `use x::{a, b}` the braces end the path at `x`: the module is `x` or above.
            for take in (0..=rest.len()).rev() {
                let mut candidate = base.clone();
                candidate.extend(rest[..take].iter().map(|s| s.to_string()));
                if modules.contains(&candidate) {
                    if candidate != here && !candidate.is_empty() {
                        found.insert(candidate);
                    }
                    break;
                }
            }
        }
    }
    // `use child::Item` (no prefix) names a child module of this one.
    for line in code.lines() {
        let line = line.trim_start();
        let Some(rest) = ["use ", "pub use ", "pub(crate) use ", "pub(super) use "]
            .iter()
            .find_map(|prefix| line.strip_prefix(prefix))
        else {
            continue;
        };
        let first: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let mut child = here.clone();
        child.push(first);
        if modules.contains(&child) {
            found.insert(child);
        }
    }
    found
}

#[test]
fn source_files_import_each_other_without_circles() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = files
        .iter()
        .map(|file| {
            let source = std::fs::read_to_string(file).expect("readable source");
            (module_of(file), imports(file, &source, &modules))
        })
        .collect();
    // Depth-first search; a module met again while still on the path closes a circle.
    fn visit(
        module: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        path: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            let names: Vec<String> = path[at..].iter().map(|m| m.join("::")).collect();
            circles.push(format!("{} -> {}", names.join(" -> "), module.join("::")));
            return;
        }
        if !done.insert(module.clone()) {
            return;
        }
        path.push(module.clone());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let mut circles = Vec::new();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn nothing_above_the_backplane_asks_whether_it_is_clustered() {
    let mut files = vec![root().join("src/hub.rs")];
    rust_files(&root().join("src/http"), &mut files);
    rust_files(&root().join("src/ops"), &mut files);
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable source");
        let code: Vec<String> = source
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .map(str::to_lowercase)
            .collect();
        for word in ["cluster", "redis"] {
            assert!(
                !code.iter().any(|line| line.contains(word)),
                "{} names {word} above the backplane",
                file.display()
            );
        }
    }
}

#[test]
fn the_actors_import_nothing_above_them() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(f)).collect();
    let above = [
        "http",
        "ops",
        "backplane",
        "cluster",
        "hub",
        "server",
        "mqtt",
        "webhooks",
    ];
    let mut actors = Vec::new();
    rust_files(&root().join("src/actors"), &mut actors);
    for file in actors {
        let source = std::fs::read_to_string(&file).expect("readable source");
        for module in imports(&file, &source, &modules) {
            assert!(
                !above.contains(&module[0].as_str()),
                "{} imports {} from above the actors",
                file.display(),
                module.join("::")
            );
        }
    }
}

#[test]
fn every_method_has_its_file_its_openapi_path_and_its_scope() {
    let doc: serde_json::Value =
        serde_json::from_str(wshub::http::openapi::document()).expect("the OpenAPI document");
    let mut files = Vec::new();
    rust_files(&root().join("src/ops"), &mut files);
    let mut unlisted: BTreeSet<String> = files
        .iter()
        .filter_map(|file| file.file_stem()?.to_str().map(str::to_owned))
        .filter(|stem| stem != "mod")
        .collect();
    for method in wshub::ops::METHODS {
        assert!(
            unlisted.remove(*method),
            "{method} has no file src/ops/{method}.rs"
        );
        assert!(
            doc["paths"][format!("/api/{method}")]["post"].is_object(),
            "{method} has no OpenAPI path"
        );
        assert!(
            wshub::ops::SCOPES
                .iter()
                .any(|(listed, _)| listed == method),
            "{method} has no scope"
        );
    }
    assert!(
        unlisted.is_empty(),
        "files in src/ops that are not methods: {unlisted:?}"
    );
    assert_eq!(
        doc["paths"].as_object().map(|paths| paths.len()),
        Some(wshub::ops::METHODS.len()),
        "OpenAPI paths that are not methods"
    );
}

#[test]
fn a_file_over_500_lines_says_why() {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    let unexplained: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let source = std::fs::read_to_string(file).expect("readable source");
            (source.lines().count() > LONG_FILE
                && !source.starts_with("//! Why this file is long:"))
            .then(|| file.display().to_string())
        })
        .collect();
    assert!(
        unexplained.is_empty(),
        "long without a reason: {unexplained:?}"
    );
}
