//! Delayed labels through the real binary (file source, real RocksDB): records arrive
//! without their label and their labels arrive later, keyed by `id`, with random delays;
//! some never, some twice, some after the record expired, some for keys never seen. The
//! daemon is killed (SIGKILL) at random moments and restarted until it finishes. Then the
//! join counts are exact, and the prequential totals are exactly what the predictions file
//! says was served when each record's features arrived.

mod common;

use common::{relearn, Gen};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
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
    let t = |k: &str| {
        let total: relearn::totals::Total = k.parse().expect("a known total");
        r.loop_totals.get(&total).copied().unwrap_or(0)
    };
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

fn processed(addr: &str) -> Option<u64> {
    let (_, body) = common::http_get(addr, "/metrics")?;
    common::metric(&body, "relearn_ingest_records_total").map(|v| v as u64)
}

/// Runs the daemon until it has processed `records`, killing it (SIGKILL) at `kills`
/// random counts on the way; returns it still running.
fn run_with_kills(
    config: &Path,
    log: &Path,
    addr: &str,
    from: u64,
    records: u64,
    kills: usize,
    g: &mut Gen,
) -> std::process::Child {
    let span = records.saturating_sub(from + 1);
    let kills = if span > 10 { kills } else { 0 };
    let mut points: Vec<u64> = (0..kills).map(|_| from + 1 + g.next() % span).collect();
    points.sort_unstable();
    for point in points {
        let mut child = common::spawn_daemon(config, log);
        let reached = common::wait_for(Duration::from_secs(120), || {
            processed(addr).filter(|&n| n >= point)
        });
        child.kill().expect("SIGKILL relearn");
        let _ = child.wait();
        assert!(
            reached.is_some(),
            "the daemon did not reach {point} records; see {}",
            log.display()
        );
    }
    let child = common::spawn_daemon(config, log);
    let done = common::wait_for(Duration::from_secs(180), || {
        processed(addr).filter(|&n| n >= records)
    });
    assert_eq!(done, Some(records), "see {}", log.display());
    child
}

/// Labels on a topic of their own through a real broker: features first (3 partitions),
/// then labels for most keys (2 partitions), some twice, some for unknown keys; SIGKILL at
/// random moments of both phases. The join counts are exact, and the prequential totals equal
/// an offline recomputation from the predictions topic (deduplicated on its source headers).
#[test]
fn label_topic_joins_exactly_and_the_predictions_topic_says_what_was_served() {
    let brokers = common::broker();
    let (records_topic, labels_topic) = (common::unique("dl-records"), common::unique("dl-labels"));
    let (predictions_topic, dlq_topic) =
        (common::unique("dl-predictions"), common::unique("dl-dead"));
    common::create_topic(&brokers, &records_topic, 3);
    common::create_topic(&brokers, &labels_topic, 2);
    common::create_topic(&brokers, &predictions_topic, 1);
    common::create_topic(&brokers, &dlq_topic, 1);
    const KEYS: usize = 20_000;
    /// Records that carry their label, first: the first model learns from them.
    const COMPLETE: usize = 3_000;
    let mut g = Gen(41);
    let yes = |y: bool| if y { "yes" } else { "no" };
    let mut complete = BTreeMap::new();
    let mut features: Vec<Vec<u8>> = (0..COMPLETE)
        .map(|i| {
            let (a, b) = (g.unit() * 2.0 - 1.0, g.unit() * 2.0 - 1.0);
            let y = label(&mut g, a, b);
            complete.insert(format!("c{i}"), y);
            format!(r#"{{"id":"c{i}","a":{a:.4},"b":{b:.4},"y":"{}"}}"#, yes(y)).into_bytes()
        })
        .collect();
    let mut truth = Vec::with_capacity(KEYS);
    features.extend((0..KEYS).map(|i| {
        let (a, b) = (g.unit() * 2.0 - 1.0, g.unit() * 2.0 - 1.0);
        truth.push(label(&mut g, a, b));
        format!(r#"{{"id":"k{i}","a":{a:.4},"b":{b:.4}}}"#).into_bytes()
    }));
    let (mut labels, mut joined, mut duplicate, mut orphan) =
        (Vec::new(), BTreeMap::new(), 0u64, 0u64);
    for (i, y) in truth.iter().enumerate() {
        match g.next() % 10 {
            0 => {} // never labeled: still waiting at the end
            k => {
                labels.push(format!(r#"{{"id":"k{i}","y":"{}"}}"#, yes(*y)).into_bytes());
                joined.insert(format!("k{i}"), *y);
                if k == 1 {
                    // The second label goes to the same partition (i % 2), after the first.
                    duplicate += 1;
                    labels.push(format!(r#"{{"id":"k{i}","y":"{}"}}"#, yes(!*y)).into_bytes());
                }
            }
        }
        if i % 50 == 3 {
            orphan += 1;
            labels.push(format!(r#"{{"id":"x{i}","y":"no"}}"#).into_bytes());
        }
    }
    // Keep each key's labels on one partition, in order: partition = key number % 2.
    let key_partition = |p: &Vec<u8>| {
        let s = String::from_utf8_lossy(p);
        let n: usize = s[8..]
            .split('"')
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0);
        (n % 2) as i32
    };
    common::produce(&brokers, &records_topic, 3, &features);

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let log = dir.path().join("daemon.log");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let config = dir.path().join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
topics = ["{records_topic}"]
label_topics = ["{labels_topic}"]
predictions_topic = "{predictions_topic}"
group_id = "{group}"
dead_letter_topic = "{dlq_topic}"
[kafka.consumer_properties]
"group.instance.id" = "delayed-labels-test"
"session.timeout.ms" = "6000"
[schema]
format = "json"
features = ["a", "b"]
label = "y"
classes = ["no", "yes"]
key = "id"
[labels]
enabled = true
max_delay_records = 1000000
[ingest]
batch_max_records = 500
batch_max_wait_ms = 20
# The first model is trained inline, before the batch that fired it is stored: every
# feature record then finds a model (a kill during an asynchronous bootstrap would leave
# the features consumed meanwhile unscored, and their number would depend on timing).
[retrain]
wait = "always"
[store]
path = "{store}"
[http]
listen = "{addr}"
"#,
            group = common::unique("dl-group"),
            store = store.display()
        ),
    )
    .unwrap();

    // Phase 1: the features, killed twice on the way.
    let first = features.len() as u64;
    let child = run_with_kills(&config, &log, &addr, 0, first, 2, &mut g);
    // Phase 2: the labels, produced while it runs, killed twice more.
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("enable.idempotence", "true")
            .create()
            .expect("producer");
        let futures: Vec<_> = labels
            .iter()
            .map(|p| {
                let rec: FutureRecord<'_, (), [u8]> = FutureRecord::to(&labels_topic)
                    .payload(p.as_slice())
                    .partition(key_partition(p));
                producer
                    .send_result(rec)
                    .unwrap_or_else(|(e, _)| panic!("enqueue: {e}"))
            })
            .collect();
        for f in futures {
            futures::executor::block_on(f)
                .expect("delivery channel")
                .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
        }
    }
    let mut child = Some(child);
    let total = first + labels.len() as u64;
    let from = processed(&addr).unwrap_or(first);
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let child = run_with_kills(&config, &log, &addr, from, total, 2, &mut g);
    let out = common::stop_gracefully(child);
    assert!(out.status.success(), "graceful stop; see {}", log.display());

    let r = relearn::inspect::inspect_path(&store).expect("inspect the store");
    let c = |k: &str| r.counters.get(k).copied().unwrap_or(0);
    assert_eq!(c("records"), total);
    assert_eq!(c("labels/joined"), joined.len() as u64);
    assert_eq!(c("labels/duplicate"), duplicate);
    assert_eq!(c("labels/orphan"), orphan);
    assert_eq!(
        c("labels/expired") + c("labels/late") + c("labels/superseded"),
        0
    );
    assert_eq!(r.pending_labels, KEYS - joined.len());
    assert_eq!(
        r.offsets
            .get(&format!("{labels_topic}/0"))
            .copied()
            .unwrap_or(0)
            + r.offsets
                .get(&format!("{labels_topic}/1"))
                .copied()
                .unwrap_or(0),
        labels.len() as i64
    );

    // The predictions topic: one per scored feature record (deduplicated on the source
    // position, the last one wins: it is the one whose batch was stored).
    let produced = common::end_offsets(&brokers, &predictions_topic, 1)[0] as usize;
    assert!(produced >= KEYS, "{produced} predictions");
    let messages = common::read_all(
        &brokers,
        &predictions_topic,
        1,
        produced,
        Duration::from_secs(60),
    );
    assert_eq!(messages.len(), produced);
    let mut by_position: BTreeMap<
        (String, String, String),
        relearn::ingest::predictions::PredictionMessage,
    > = BTreeMap::new();
    for m in &messages {
        use rdkafka::Message as _;
        let h = |n: &str| common::header(m, n).unwrap_or_default();
        let p: relearn::ingest::predictions::PredictionMessage =
            serde_json::from_slice(m.payload().unwrap_or(&[])).expect("a prediction");
        let position = (
            h("relearn.source.topic"),
            h("relearn.source.partition"),
            h("relearn.source.offset"),
        );
        assert_eq!(
            position,
            (
                p.topic.clone(),
                p.partition.to_string(),
                p.offset.to_string()
            )
        );
        assert_eq!(
            m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            p.key
        );
        by_position.insert(position, p);
    }
    let served: HashMap<String, _> = by_position
        .into_values()
        .map(|p| (p.key.clone().expect("keyed"), p))
        .collect();
    let (mut right, mut wrong, mut unscored) = (0u64, 0u64, 0u64);
    for (key, y) in joined.iter().chain(&complete) {
        match served.get(key) {
            None => unscored += 1,
            Some(p) if p.class.as_deref() == Some(yes(*y)) => right += 1,
            Some(_) => wrong += 1,
        }
    }
    let t = |k: &str| {
        let total: relearn::totals::Total = k.parse().expect("a known total");
        r.loop_totals.get(&total).copied().unwrap_or(0)
    };
    assert_eq!(
        (
            t("predictions/correct"),
            t("predictions/incorrect"),
            t("predictions/unscored")
        ),
        (right, wrong, unscored)
    );
    assert!(right > 3 * wrong, "learned: {right} right, {wrong} wrong");
}

/// `relearn eval --key id --delayed-labels` takes the same stream as CSV (label rows: the key
/// and the label, empty features): the key is not an input, and the model learns.
#[test]
fn eval_takes_a_delayed_label_csv() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("stream.jsonl");
    write_stream(&jsonl);
    let mut csv = String::from("id,a,b,y\n");
    for line in std::fs::read_to_string(&jsonl).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| match &v[k] {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        csv.push_str(&format!(
            "{},{},{},{}\n",
            field("id"),
            field("a"),
            field("b"),
            field("y")
        ));
    }
    let path = dir.path().join("stream.csv");
    std::fs::write(&path, csv).unwrap();
    let args = [
        "--label",
        "y",
        "--key",
        "id",
        "--delayed-labels",
        "--strategies",
        "default,majority",
    ];
    let report = common::eval_report(&path, &args, &dir.path().join("eval"));
    assert_eq!(
        report["features"],
        serde_json::json!(["a", "b"]),
        "{report}"
    );
    assert_eq!(report["categorical"], serde_json::json!([]), "{report}");
    let row = |strategy: &str| common::eval_row(&report, strategy);
    // Learned: the records joined in time are scored (their labels count), well above the
    // majority class (Bayes accuracy 0.95).
    let default = row("default");
    assert!(default["accuracy"].as_f64().unwrap() > 0.85, "{report}");
    assert!(
        row("majority")["accuracy"].as_f64().unwrap() < 0.7,
        "{report}"
    );
    // Labeled: the complete records and every first label (under the default bound of
    // 100,000 records, the labels late for the 2,000 of the other test join too); scored:
    // those minus the ones before the first model.
    let e = write_stream(&dir.path().join("again.jsonl"));
    let labeled = (e.complete.len() + e.joined.len()) as u64 + e.late;
    assert_eq!(default["labeled"].as_u64(), Some(labeled), "{report}");
    let scored = default["scored"].as_u64().unwrap();
    assert!(scored > labeled - 1_000 && scored <= labeled, "{report}");
}
