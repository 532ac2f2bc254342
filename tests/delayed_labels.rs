//! Delayed labels through the real binary (file source, real RocksDB): records arrive
//! without their label and their labels arrive later, keyed by `id`, with random delays;
//! some never, some twice, some after the record expired, some for keys never seen. The
//! daemon is killed (SIGKILL) at random moments and restarted until it finishes. Then the
//! join counts are exact, and the prequential totals are exactly what the predictions file
//! says was served when each record's features arrived.

mod common;

use common::Gen;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Records whose label comes later.
const N: usize = 15_000;
/// `labels.max_delay_records`. Label delays are drawn far from it on either side (in
/// time units, about 1.9 records each), so which labels are late does not hang on the exact
/// rule at the bound.
const MAX_DELAY: u64 = 2_000;

/// What the stream holds, counted while writing it.
#[derive(Debug, Default)]
struct Expected {
    /// Labels that meet their record in time, and their labels.
    joined: BTreeMap<String, bool>,
    /// Records that carry their own label (learned at once), and their labels.
    complete: BTreeMap<String, bool>,
    duplicate: u64,
    late: u64,
    orphan: u64,
    /// Records that never get a label, or only after they expired.
    unlabeled_in_time: u64,
}

/// The concept: y = (a + b/2 > 0), 5% of labels flipped.
fn label(g: &mut Gen, a: f64, b: f64) -> bool {
    let y = a + 0.5 * b > 0.0;
    if g.unit() < 0.05 {
        !y
    } else {
        y
    }
}

fn write_stream(path: &Path) -> Expected {
    let mut g = Gen(23);
    let mut e = Expected::default();
    // (time, tie-break, line): sorted by time into the stream.
    let mut events: Vec<(f64, u64, String)> = Vec::new();
    let mut tie = 0u64;
    let mut push = |events: &mut Vec<(f64, u64, String)>, t: f64, line: String| {
        tie += 1;
        events.push((t, tie, line));
    };
    let yes = |y: bool| if y { "yes" } else { "no" };
    for i in 0..N {
        let t = i as f64;
        let (a, b) = (g.unit() * 2.0 - 1.0, g.unit() * 2.0 - 1.0);
        let y = label(&mut g, a, b);
        let key = format!("k{i}");
        if i % 10 == 0 {
            // Carries its label: learned at once.
            push(
                &mut events,
                t,
                format!(r#"{{"id":"{key}","a":{a:.4},"b":{b:.4},"y":"{}"}}"#, yes(y)),
            );
            e.complete.insert(key, y);
            continue;
        }
        push(
            &mut events,
            t,
            format!(r#"{{"id":"{key}","a":{a:.4},"b":{b:.4}}}"#),
        );
        let label_line = |y: bool| format!(r#"{{"id":"{key}","y":"{}"}}"#, yes(y));
        match g.next() % 20 {
            0 | 1 => e.unlabeled_in_time += 1, // never labeled
            // Near the end the stream thins out (labels only): no late label there.
            2 if i + 1_600 > N => e.unlabeled_in_time += 1,
            2 => {
                // Labeled long after the bound: the record expired first.
                e.unlabeled_in_time += 1;
                e.late += 1;
                let d = 1_200.0 + 200.0 * g.unit();
                push(&mut events, t + d, label_line(y));
            }
            k => {
                let d = 1.0 + 200.0 * g.unit();
                push(&mut events, t + d, label_line(y));
                e.joined.insert(key.clone(), y);
                if k == 3 {
                    // A second label (the other class): first label wins.
                    e.duplicate += 1;
                    push(&mut events, t + d + 1.0 + 50.0 * g.unit(), label_line(!y));
                }
            }
        }
        if i % 40 == 7 {
            e.orphan += 1;
            push(
                &mut events,
                t + 0.5,
                format!(r#"{{"id":"x{i}","y":"yes"}}"#),
            );
        }
    }
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut text = String::new();
    for (_, _, line) in &events {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write the stream");
    e
}

fn relearn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relearn"));
    c.env("RELEARN_LOG", "warn");
    c
}

/// The last prediction of each source position (a batch lost to a kill is scored again
/// after the restart; the last one is the one whose batch was stored), by key.
fn served(predictions: &Path) -> HashMap<String, relearn::ingest::predictions::PredictionMessage> {
    let text = std::fs::read_to_string(predictions).expect("read the predictions file");
    let mut by_offset = BTreeMap::new();
    for line in text.lines() {
        let p: relearn::ingest::predictions::PredictionMessage =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        by_offset.insert(p.offset, p);
    }
    by_offset
        .into_values()
        .map(|p| (p.key.clone().expect("every record has a key"), p))
        .collect()
}

#[test]
fn delayed_labels_join_exactly_across_kills_and_score_what_was_served() {
    let dir = tempfile::tempdir().unwrap();
    let stream = dir.path().join("stream.jsonl");
    let e = write_stream(&stream);
    let store = dir.path().join("store");
    let predictions = dir.path().join("predictions.jsonl");
    let config = dir.path().join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[schema]
format = "json"
features = ["a", "b"]
label = "y"
classes = ["no", "yes"]
key = "id"
[labels]
enabled = true
max_delay_records = {MAX_DELAY}
[file]
path = "{input}"
dead_letter_path = "{dead}"
predictions_path = "{predictions}"
[store]
path = "{store}"
[http]
listen = "127.0.0.1:0"
"#,
            input = stream.display(),
            dead = dir.path().join("dead.jsonl").display(),
            predictions = predictions.display(),
            store = store.display(),
        ),
    )
    .unwrap();

    // Killed at random moments, restarted from the store each time.
    let mut g = Gen(5);
    let mut kills = 0;
    for _ in 0..5 {
        let mut child = relearn()
            .args(["run", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn relearn");
        std::thread::sleep(Duration::from_millis(50 + g.next() % 800));
        if child.try_wait().expect("poll relearn").is_none() {
            child.kill().expect("SIGKILL relearn");
            kills += 1;
        }
        let _ = child.wait();
    }
    let out = relearn()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run relearn");
    assert!(
        out.status.success(),
        "relearn run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = relearn::inspect::inspect_path(&store).expect("inspect the store");
    let c = |k: &str| r.counters.get(k).copied().unwrap_or(0);
    eprintln!("killed {kills} times; counters {:?}; expected {} joined, {} duplicate, {} late, {} orphan, {} without a label in time", r.counters, e.joined.len(), e.duplicate, e.late, e.orphan, e.unlabeled_in_time);

    let labels = e.joined.len() as u64 + e.duplicate + e.late + e.orphan;
    let records = N as u64 + labels;
    assert_eq!(c("records"), records);
    assert_eq!(c("label_records"), labels);
    assert_eq!(c("labels/joined"), e.joined.len() as u64);
    assert_eq!(c("labels/duplicate"), e.duplicate);
    assert_eq!(c("labels/late"), e.late);
    assert_eq!(c("labels/orphan"), e.orphan);
    assert_eq!(c("labels/superseded"), 0);
    // Every record without a label in time has expired or still waits at the end.
    assert_eq!(
        c("labels/expired") + r.pending_labels as u64,
        e.unlabeled_in_time
    );
    assert!(c("labels/expired") > 0 && r.pending_labels > 0, "{r:?}");
    // Learned: the records that carried their label and the joined ones.
    assert_eq!(
        c("labeled"),
        e.complete.len() as u64 + e.joined.len() as u64
    );
    assert!(!r.counters.keys().any(|k| k.starts_with("malformed/")));

    // What was served at feature time is what the prequential totals count.
    let served = served(&predictions);
    let (mut right, mut wrong, mut unscored) = (0u64, 0u64, 0u64);
    let mut by_version: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (key, y) in e.joined.iter().chain(&e.complete) {
        match served.get(key) {
            None => unscored += 1,
            Some(p) => {
                let hit = p.class.as_deref() == Some(if *y { "yes" } else { "no" });
                if hit {
                    right += 1;
                } else {
                    wrong += 1;
                }
                let v = by_version.entry(p.version).or_default();
                v.0 += u64::from(hit);
                v.1 += 1;
            }
        }
    }
    let t = |k: &str| r.loop_totals.get(k).copied().unwrap_or(0);
    assert_eq!(t("predictions/correct"), right);
    assert_eq!(t("predictions/incorrect"), wrong);
    assert_eq!(t("predictions/unscored"), unscored);
    assert!(
        right > 3 * wrong,
        "the concept is learned: {right} right, {wrong} wrong"
    );
    // Realised accuracy per version (the report keeps the last 16 versions).
    for (v, tally) in &r.realised {
        assert_eq!(by_version.get(v), Some(tally), "version {v}");
    }
    assert!(!r.realised.is_empty());
}
