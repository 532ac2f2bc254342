//! The module layering ARCHITECTURE.md states, checked on the source: the leaf stages
//! (`learn`, `store`, `drift`, `retrain`, `record`, `totals`, `rng`, `error`, `units`) import
//! nothing of the configuration tree or of the stages that orchestrate them; burn appears
//! only in `learn`, RocksDB only in `store/rocks.rs`, rdkafka only in the Kafka modules of
//! `ingest`, axum only in `serve`.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The file's code before its unit tests, without comments (a doc link is no import).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    body.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a source file belongs to (`src/learn/model.rs`: `learn`).
fn module_of(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// The top-level modules a file's code names through `crate::`: `crate::a::b`, `crate::a`,
/// and every item of a group, `crate::{a::X, b}`.
fn crate_modules(code: &str) -> Vec<String> {
    let ident = |t: &str| -> String {
        t.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            out.push(ident(rest));
            continue;
        };
        // The items of the group at its top level (nested groups belong to an item).
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.push(ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    out.retain(|m| !m.is_empty());
    out
}

#[test]
fn the_scanner_sees_paths_and_groups() {
    let code = "use crate::learn::Model;\nuse crate::{config::{Config, Task}, rng};\nlet x = crate::app::run;";
    assert_eq!(crate_modules(code), ["learn", "config", "rng", "app"]);
}

#[test]
fn leaf_stages_import_no_orchestrator() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let leaves = [
        "learn", "store", "drift", "retrain", "record", "totals", "rng", "error", "units",
    ];
    let above = [
        "config", "app", "ingest", "learner", "serve", "metrics", "eval", "inspect",
    ];
    let (mut found, mut checked) = (Vec::new(), 0);
    for path in sources(&src) {
        let module = module_of(&src, &path);
        if !leaves.contains(&module.as_str()) {
            continue;
        }
        checked += 1;
        let code = code(&path);
        let used = crate_modules(&code);
        for target in above {
            if used.iter().any(|m| m == target) {
                found.push(format!("{} uses crate::{target}", path.display()));
            }
        }
    }
    assert!(
        checked >= 20,
        "only {checked} leaf source files found under {}",
        src.display()
    );
    assert!(
        found.is_empty(),
        "leaf stages reach up:\n{}",
        found.join("\n")
    );
}

/// A crate path, and where (a path under `src/`) it may appear.
type Rule = (&'static str, fn(&str) -> bool);

#[test]
fn backends_stay_in_their_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rules: [Rule; 4] = [
        ("burn::", |rel| rel.starts_with("learn/")),
        ("rocksdb::", |rel| rel == "store/rocks.rs"),
        ("rdkafka::", |rel| {
            ["ingest/kafka.rs", "ingest/dlq.rs", "ingest/predictions.rs"].contains(&rel)
        }),
        ("axum::", |rel| rel.starts_with("serve/")),
    ];
    let mut found = Vec::new();
    let mut burn_files = 0;
    for path in sources(&src) {
        let rel = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let code = code(&path);
        burn_files += usize::from(code.contains("burn::"));
        for (krate, allowed) in &rules {
            if code.contains(krate) && !allowed(&rel) {
                found.push(format!("{rel} uses {krate}"));
            }
        }
    }
    assert!(
        burn_files > 0,
        "no source file uses burn: the scan read nothing"
    );
    assert!(
        found.is_empty(),
        "a backend outside its module:\n{}",
        found.join("\n")
    );
}
