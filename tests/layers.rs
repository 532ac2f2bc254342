//! The module layering ARCHITECTURE.md states, checked on the source: the leaf stages
//! (`learn`, `store`, `drift`, `retrain`, `record`, `totals`, `rng`, `error`, `units`) import
//! nothing of the configuration tree or of the stages that orchestrate them; burn appears
//! only in `learn`, RocksDB only in `store/rocks.rs`, rdkafka only in the Kafka modules of
//! `ingest`, axum only in `serve`; no source file imports, directly or through others, a
//! file that imports it; and no top-level module does either (`config` aggregates the
//! stages' sections and builds the narrower configs the orchestrators take, so no stage
//! imports `config`).

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

/// The file's code before its unit-test module, without comments (a doc link is no import).
/// Only a `#[cfg(test)]` that opens a module ends the code: one on a single method (a test
/// helper inside an `impl`) leaves the rest of the file in.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read a source file");
    let end = ["#[cfg(test)]\nmod ", "#[cfg(all(test"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let body = &text[..end];
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
        "learn",
        "store",
        "drift",
        "retrain",
        "record",
        "totals",
        "rng",
        "error",
        "units",
        "challenger",
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

/// The paths of the use-tree at the start of `s` (`a::b`, `a::{b, c::{d, e}}`), one per
/// leaf, and how many bytes of `s` it takes.
fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let skip_space = |i: usize| s.len() - s[i..].trim_start().len();
    let mut segments = Vec::new();
    let mut i = skip_space(0);
    loop {
        if s[i..].starts_with('{') {
            i += 1;
            let mut out = Vec::new();
            loop {
                let (paths, used) = use_tree(&s[i..]);
                out.extend(paths.into_iter().map(|p| [segments.clone(), p].concat()));
                i = skip_space(i + used);
                match s[i..].chars().next() {
                    Some(',') => i += 1,
                    Some('}') => return (out, i + 1),
                    _ => return (out, i),
                }
            }
        }
        let ident: String = s[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            return (vec![segments], i);
        }
        i += ident.len();
        segments.push(ident);
        if !s[i..].starts_with("::") {
            return (vec![segments], i);
        }
        i += 2;
    }
}

/// Every path a file's code names from the crate root or from a parent (`super::`), made
/// absolute: `module` is the file's module path (`learn::model::host`: `learn`, `model`,
/// `host`).
fn absolute_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let after_ident = at > 0
            && (bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':');
        let base: Option<(Vec<String>, usize)> = if after_ident {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            let mut ups = 0;
            while rest[ups * "super::".len()..].starts_with("super::") {
                ups += 1;
            }
            let keep = module.len().saturating_sub(ups);
            Some((module[..keep].to_vec(), ups * "super::".len()))
        } else {
            None
        };
        match base {
            Some((base, len)) => {
                let (paths, used) = use_tree(&rest[len..]);
                out.extend(paths.into_iter().map(|p| [base.clone(), p].concat()));
                at += len + used.max(1);
            }
            None => at += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

#[test]
fn the_path_scanner_resolves_groups_and_parents() {
    let module = ["learn".to_string(), "model".to_string(), "host".to_string()];
    let code = "use super::{Activation, host2::X};\nuse crate::{config::{Config, Task}, rng};\nlet y = super::super::train::step(a::b);";
    let paths: Vec<String> = absolute_paths(code, &module)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(
        paths,
        [
            "learn::model::Activation",
            "learn::model::host2::X",
            "config::Config",
            "config::Task",
            "rng",
            "learn::train::step",
        ]
    );
}

/// No source file imports from a file that imports from it, directly or through others: a
/// module may use its parents' items and its children freely, every other dependency runs
/// one way.
#[test]
fn no_file_imports_a_file_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: Vec<(Vec<String>, PathBuf)> = Vec::new();
    for path in sources(&src) {
        let rel = path.strip_prefix(&src).expect("under src");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .collect();
        if parts
            .last()
            .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
        {
            parts.pop();
        }
        if !parts.is_empty() {
            modules.push((parts, path));
        }
    }
    assert!(modules.len() >= 40, "only {} modules found", modules.len());
    // The module a path lands in: the longest module that is a prefix of it.
    let owner = |path: &[String]| -> Option<usize> {
        (1..=path.len())
            .rev()
            .find_map(|n| modules.iter().position(|(m, _)| m[..] == path[..n]))
    };
    let edges: Vec<Vec<usize>> = modules
        .iter()
        .map(|(module, path)| {
            let mut to: Vec<usize> = absolute_paths(&code(path), module)
                .iter()
                .filter_map(|p| owner(p))
                .filter(|&t| !module.starts_with(&modules[t].0))
                .collect();
            to.sort_unstable();
            to.dedup();
            to
        })
        .collect();
    // Depth-first search; a back edge closes a cycle, reported along the stack.
    fn visit(
        v: usize,
        edges: &[Vec<usize>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[v] = 1;
        stack.push(v);
        for &w in &edges[v] {
            if state[w] == 1 {
                let from = stack.iter().position(|&x| x == w).expect("on the stack");
                return Some([&stack[from..], &[w]].concat());
            }
            if state[w] == 0 {
                if let Some(cycle) = visit(w, edges, state, stack) {
                    return Some(cycle);
                }
            }
        }
        stack.pop();
        state[v] = 2;
        None
    }
    let mut state = vec![0u8; modules.len()];
    for v in 0..modules.len() {
        if state[v] == 0 {
            if let Some(cycle) = visit(v, &edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = cycle.iter().map(|&i| modules[i].0.join("::")).collect();
                panic!("an import cycle: {}", names.join(" -> "));
            }
        }
    }
    let total: usize = edges.iter().map(Vec::len).sum();
    assert!(
        total >= 100,
        "only {total} imports between files found: the scan read nothing"
    );
}

/// No top-level module imports, directly or through others, one that imports it: the
/// modules form layers (`config` on top of the stages whose sections it aggregates).
#[test]
fn no_top_level_module_imports_one_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for path in sources(&src) {
        let module = module_of(&src, &path);
        if module == "lib" || module == "main" {
            continue;
        }
        let used = crate_modules(&code(&path));
        let to = edges.entry(module.clone()).or_default();
        to.extend(used.into_iter().filter(|m| *m != module));
    }
    assert!(
        edges.len() >= 15,
        "only {} top-level modules found",
        edges.len()
    );
    // Every module reachable from `from`.
    let reach = |from: &str| -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let mut cycles = Vec::new();
    for (module, to) in &edges {
        for target in to {
            if reach(target).contains(module) {
                cycles.push(format!("{module} -> {target} -> ... -> {module}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "top-level modules in a cycle:\n{}",
        cycles.join("\n")
    );
}
