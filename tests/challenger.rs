//! The champion and the challenger through the real binary on the embedded Elec2 records: a
//! concept that flips halfway (labels swapped) is followed by a challenger promotion within a
//! bounded number of records; a challenger on labels drawn at random is never promoted; and a
//! file replay is reproducible (the same retrain log and scores twice, whatever the batch
//! clock says).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use relearn::inspect::retrain_log_path;

/// Elec2's header and data lines, from the file embedded in the repository.
fn elec2() -> (String, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/elec2.csv.gz");
    let file = std::fs::File::open(&path).expect("data/elec2.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("gunzip elec2");
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().expect("a header");
    (header, lines.collect())
}

/// Writes a CSV of the first `n` rows with each row's label replaced by `label(i, label)`.
fn stream(dir: &Path, n: usize, label: impl Fn(usize, &str) -> String) -> PathBuf {
    let (header, rows) = elec2();
    let mut out = header + "\n";
    for (i, row) in rows.iter().take(n).enumerate() {
        let (features, y) = row.rsplit_once(',').expect("a label column");
        out.push_str(features);
        out.push(',');
        out.push_str(&label(i, y));
        out.push('\n');
    }
    let path = dir.join("stream.csv");
    std::fs::write(&path, out).expect("write the stream");
    path
}

/// Runs the binary over `input` with `extra` config and returns the store path and stdout.
fn run(dir: &Path, input: &Path, extra: &str) -> (PathBuf, String) {
    let store = dir.join(format!("store-{}", common::unique("run")));
    let config = dir.join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[file]
path = "{input}"
dead_letter_path = "{dead}"
[store]
path = "{store}"
[http]
listen = "127.0.0.1:0"
{extra}
"#,
            input = input.display(),
            dead = dir.join("dead.jsonl").display(),
            store = store.display(),
        ),
    )
    .expect("write the config");
    let out = Command::new(env!("CARGO_BIN_EXE_relearn"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RELEARN_LOG", "warn")
        .output()
        .expect("run the relearn binary");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "relearn run failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (store, stdout)
}

/// Only the challenger can adapt: no triggered retrain.
const CHALLENGER_ONLY: &str = r#"
[triggers]
drift_detectors = []
accuracy_drop = 0.0
"#;

/// The retrain log as stored (JSON), oldest first.
fn log_json(store: &Path) -> Vec<serde_json::Value> {
    retrain_log_path(store)
        .expect("the retrain log")
        .iter()
        .map(|r| serde_json::to_value(r).expect("a report serialises"))
        .collect()
}

fn challenger_promotions(store: &Path) -> Vec<serde_json::Value> {
    log_json(store)
        .into_iter()
        .filter(|r| r["trigger"] == "challenger" && r["outcome"] == "promoted")
        .collect()
}

#[test]
fn a_flipped_concept_is_followed_by_a_challenger_promotion() {
    const FLIP: u64 = 8_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let input = stream(dir.path(), 16_000, |i, y| {
        if (i as u64) < FLIP {
            y.to_string()
        } else if y == "UP" {
            "DOWN".into()
        } else {
            "UP".into()
        }
    });
    let (store, stdout) = run(dir.path(), &input, CHALLENGER_ONLY);
    let promotions = challenger_promotions(&store);
    let after: Vec<u64> = promotions
        .iter()
        .map(|r| r["records_total"].as_u64().expect("records_total"))
        .filter(|&at| at > FLIP)
        .collect();
    eprintln!("challenger promotions after the flip at {after:?}\n{stdout}");
    let first = *after.first().unwrap_or_else(|| {
        panic!("no challenger promotion after the flip; promotions: {promotions:#?}\n{stdout}")
    });
    // Within 3,000 records: output tracking (on by default) follows Elec2's runs of one
    // label on both models, which hides part of the flip from the paired test (2,000 with
    // it off; the whole-stream accuracy is 0.88 with it, 0.78 without, on this stream).
    assert!(
        first <= FLIP + 3_000,
        "the flip at {FLIP} is answered within 3,000 records, not at {first}"
    );
    // The promotion carries a validation that lets the old concept go: the champion's
    // replay accuracy was high, its recent accuracy low, and the gate allowed for it.
    let r = promotions
        .iter()
        .find(|r| r["records_total"] == first)
        .expect("the first promotion after the flip");
    let v = &r["validation"];
    assert!(
        v["new_candidate"].as_f64().unwrap() > v["new_current"].as_f64().unwrap(),
        "{r:#}"
    );
}

#[test]
fn a_challenger_on_random_labels_is_never_promoted() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Labels from a fixed xorshift generator, independent of the features.
    let input = stream(dir.path(), 12_000, |i, _| {
        let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        if x & 1 == 0 { "UP" } else { "DOWN" }.to_string()
    });
    let (store, stdout) = run(dir.path(), &input, CHALLENGER_ONLY);
    assert!(stdout.contains("records 12000 "), "{stdout}");
    let promotions = challenger_promotions(&store);
    assert!(
        promotions.is_empty(),
        "nothing can be learned from random labels, yet: {promotions:#?}"
    );
}

#[test]
fn a_file_replay_is_reproducible() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = stream(dir.path(), 12_000, |_, y| y.to_string());
    // Fields that depend on the wall clock.
    let strip = |mut r: serde_json::Value| {
        if let Some(o) = r.as_object_mut() {
            o.remove("finished_ms");
            if let Some(t) = o.get_mut("train").and_then(|t| t.as_object_mut()) {
                t.remove("wall_seconds");
                t.remove("examples_per_second");
            }
            if let Some(c) = o.get_mut("cost").and_then(|c| c.as_object_mut()) {
                c.remove("wall_seconds");
                c.remove("full_wall_seconds_estimate");
            }
        }
        r
    };
    let once = |extra: &str| {
        let (store, stdout) = run(dir.path(), &input, extra);
        let log: Vec<serde_json::Value> = log_json(&store).into_iter().map(strip).collect();
        let summary: Vec<String> = stdout
            .lines()
            .filter(|l| !l.contains("store "))
            .map(str::to_string)
            .collect();
        (log, summary)
    };
    let (log_a, summary_a) = once("");
    // A regular file's batches are cut by count only: a clock that would cut them every 256
    // records (the check's period) changes nothing.
    let (log_b, summary_b) = once("[ingest]\nbatch_max_wait_ms = 1");
    assert!(!log_a.is_empty(), "the run retrained at least once");
    assert_eq!(summary_a, summary_b, "the same scores");
    assert_eq!(log_a.len(), log_b.len(), "the same number of retrains");
    for (a, b) in log_a.iter().zip(&log_b) {
        assert_eq!(a, b, "the same retrain");
    }
}
