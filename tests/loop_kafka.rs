//! The whole loop against a real broker: Elec2 streamed in time order through Kafka into the
//! daemon binary. After the abrupt change at row 17,425 (the Victoria data starts there) a
//! drift alarm names the Victoria features, a partial retrain runs on the layers it chose, the
//! candidate passes the gate and is promoted, and on the records that follow it beats the model
//! it replaced.

mod common;

use std::io::Read;
use std::time::Duration;

use common::*;
use relearn::config::Config;
use relearn::ingest::file::EMBEDDED_ELEC2;
use relearn::ingest::Decoder;
use relearn::learn::{BackendKind, Checkpoint};
use relearn::store::versions::ModelVersions;
use relearn::store::{RetrainLog, RocksStore};

const CHANGE: u64 = 17_425;
const COLUMNS: &str = r#"["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class"]"#;

fn elec2_lines() -> Vec<Vec<u8>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(EMBEDDED_ELEC2)
        .read_to_string(&mut text)
        .expect("embedded Elec2 decompresses");
    text.lines()
        .skip(1)
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// Produces `lines` (Elec2 rows, no header) to a fresh topic, runs the daemon on it with
/// `extra` TOML after the defaults (the columns given, the store at `store`) until every
/// record is ingested, stops it gracefully and returns the last `/metrics` body and the log.
fn run_on_elec2(
    lines: &[Vec<u8>],
    name: &str,
    store: &std::path::Path,
    extra: &str,
    timeout: Duration,
) -> (String, String) {
    let brokers = broker();
    let topic = unique(name);
    let dlq_topic = unique(&format!("{name}-dead"));
    create_topic(&brokers, &topic, 1);
    create_topic(&brokers, &dlq_topic, 1);
    produce(&brokers, &topic, 1, lines);
    let dir = store.parent().expect("the store is inside a directory");
    let log = dir.join(format!("{name}.log"));
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
topics = ["{topic}"]
group_id = "{group}"
dead_letter_topic = "{dlq_topic}"
[schema]
format = "csv"
columns = {COLUMNS}
[store]
path = "{store}"
[http]
listen = "{addr}"
{extra}
"#,
            group = unique(&format!("{name}-group")),
            store = store.display()
        ),
    )
    .expect("write the config");
    let child = spawn_daemon(&config, &log);
    let done = wait_for(timeout, || {
        let (_, body) = http_get(&addr, "/metrics")?;
        (metric(&body, "relearn_ingest_records_total")? as usize == lines.len()).then_some(body)
    });
    let out = stop_gracefully(child);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let body = done.unwrap_or_else(|| {
        panic!(
            "the daemon did not consume {} records; log:\n{log_text}",
            lines.len()
        )
    });
    assert!(
        out.status.success(),
        "daemon exit: {:?}\n{log_text}",
        out.status
    );
    (body, log_text)
}

#[test]
fn elec2_drift_after_row_17425_is_retrained_partially_and_promoted() {
    let lines = elec2_lines();
    assert_eq!(lines.len(), 45_312);
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    // The default schema's fields are Elec2's; Kafka records carry no header, so the columns
    // are given. Ingest waits for retrains so the run is reproducible; the promoted retrain
    // is compared with its parent below, so every version is kept. Input drift triggers a
    // retrain here, as in the demo profile (`config/elec2.toml`; by default it is only
    // diagnosed): without it the first retrain after the change waits for the error stream,
    // whose alarm moves with the Kafka batch boundaries (3,567 records after the change in
    // one run of 2026-12-03, 2,000 to 3,000 in others).
    let (body, log_text) = run_on_elec2(
        &lines,
        "elec2",
        &store_path,
        "[retrain]\nwait = \"always\"\n[models]\nkeep_last = 0\n[triggers]\ndrift_detectors = [\"adwin\", \"feature_ks\", \"layer_shift\"]",
        Duration::from_secs(300),
    );
    let accuracy = metric(&body, "relearn_learn_prequential_accuracy_ratio").unwrap();
    let correct = metric_with(
        &body,
        "relearn_learn_predictions_total",
        "outcome",
        "correct",
    )
    .unwrap();
    let wrong = metric_with(
        &body,
        "relearn_learn_predictions_total",
        "outcome",
        "incorrect",
    )
    .unwrap();
    eprintln!(
        "Elec2 over Kafka: prequential accuracy {:.4} over {} scored records (last window {accuracy:.4})",
        correct / (correct + wrong),
        correct + wrong
    );
    let promotions =
        metric_with(&body, "relearn_retrain_runs_total", "outcome", "promoted").unwrap_or(0.0);
    assert!(
        promotions >= 2.0,
        "bootstrap and at least one retrain promoted; log:\n{log_text}"
    );

    // The store, read after the daemon stopped.
    let store = RocksStore::open(&store_path, false).unwrap();
    let reports: Vec<serde_json::Value> = RetrainLog::new(&store).all().unwrap();
    let victoria = |r: &serde_json::Value| {
        r["drifted_features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "vicprice" || x == "vicdemand"))
    };
    let first = reports
        .iter()
        .find(|r| victoria(r))
        .unwrap_or_else(|| panic!("no retrain names the Victoria features: {reports:#?}"));
    let at = first["records_total"].as_u64().unwrap();
    eprintln!(
        "first retrain naming Victoria: at record {at}, trigger {}, reason {}, alarms {}, layers {}, outcome {} {}, validation {}, cost {}",
        first["trigger"], first["reason"], first["alarms"], first["layers"], first["outcome"],
        first["detail"], first["validation"], first["cost"]
    );
    assert!(
        at > CHANGE && at <= CHANGE + 3000,
        "the alarm follows the change at row {CHANGE}: retrain at {at}"
    );
    // Challenger promotions restart the detectors and move the accuracy reference, so the
    // retrain that answers the change may be fired by the drift alarm or by the accuracy drop
    // it causes; either way the feature detector saw Victoria move.
    assert!(
        first["trigger"] == "drift" || first["trigger"] == "accuracy_drop",
        "{}",
        first["trigger"]
    );
    assert!(
        first["alarms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "feature_ks")),
        "{}",
        first["alarms"]
    );
    // Reports before the change never name Victoria (its values were constant).
    assert!(reports
        .iter()
        .filter(|r| r["records_total"].as_u64().unwrap() <= CHANGE)
        .all(|r| !victoria(r)));

    // The first promoted triggered retrain from the change on (challenger promotions train
    // every layer online and are judged by the paired test): partial, and better than its
    // parent.
    let promoted = reports
        .iter()
        .find(|r| {
            r["records_total"].as_u64().unwrap() >= at
                && r["outcome"] == "promoted"
                && r["trigger"] != "challenger"
        })
        .expect("a retrain after the change was promoted");
    let layers = promoted["layers"].as_array().unwrap();
    assert!(
        !layers.is_empty() && layers.len() < 3,
        "partial: {layers:?} of hidden.0, hidden.1, head"
    );
    assert!(promoted["cost"]["ratio"].as_f64().unwrap() < 1.0);
    let new_v = promoted["version"].as_u64().unwrap();
    let old_v = promoted["parent"].as_u64().unwrap();
    let versions = ModelVersions::new(&store);
    let load = |v: u64| {
        let (_, bytes) = versions
            .get::<relearn::learner::VersionMeta>(v)
            .unwrap()
            .unwrap();
        Checkpoint::from_bytes(&bytes)
            .unwrap()
            .to_model(BackendKind::Flex)
            .unwrap()
    };
    let (old, new) = (load(old_v), load(new_v));
    let from = promoted["records_total"].as_u64().unwrap() as usize;
    let to = (from + 2000).min(lines.len());
    let mut schema = Config::default().schema;
    schema.format = relearn::config::Format::Csv;
    schema.columns = serde_json::from_str(COLUMNS).unwrap();
    let decoder = Decoder::new(&schema).unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for l in &lines[from..to] {
        let r = decoder.decode(l).unwrap();
        x.extend(r.features);
        y.push(r.label.and_then(|l| l.class()).unwrap());
    }
    let acc = |m: &relearn::learn::Model| {
        let p = m.predict(&x).unwrap();
        p.iter().zip(&y).filter(|(a, b)| a == b).count() as f64 / y.len() as f64
    };
    let (a_old, a_new) = (acc(&old), acc(&new));
    eprintln!(
        "records {from}..{to}: version {old_v} accuracy {a_old:.4}, version {new_v} (layers {layers:?}) {a_new:.4}"
    );
    // The gate promised a held-out gain of at least `retrain.min_gain` (0) on the window it
    // saw; on the next 2,000 records the promoted version must not fall behind its parent
    // by more than one point (a gain of a few records either way is noise).
    let v = &promoted["validation"];
    assert!(
        v["new_candidate"].as_f64().unwrap() >= v["new_current"].as_f64().unwrap(),
        "{v}"
    );
    assert!(
        a_new + 0.01 >= a_old,
        "the promoted version keeps up with its parent on the next records: {a_new} vs {a_old}"
    );
}

/// A backlog on Kafka with a tiny `challenger.max_train_share`: the challenger learns from
/// only some chunks, the rest are counted as skipped, and every record is still consumed,
/// scored by both models and paired.
#[test]
fn a_backlog_subsamples_the_challenger_and_counts_it() {
    const N: usize = 8_000;
    let lines: Vec<Vec<u8>> = elec2_lines().into_iter().take(N).collect();
    let dir = tempfile::tempdir().unwrap();
    let (body, _) = run_on_elec2(
        &lines,
        "elec2-budget",
        &dir.path().join("store"),
        "[challenger]\nmax_train_share = 0.02",
        Duration::from_secs(180),
    );
    let count = |name: &str, outcome: &str| metric_with(&body, name, "outcome", outcome).unwrap();
    let scored = count("relearn_learn_predictions_total", "correct")
        + count("relearn_learn_predictions_total", "incorrect");
    let paired = count("relearn_learn_challenger_predictions_total", "correct")
        + count("relearn_learn_challenger_predictions_total", "incorrect");
    let skipped = metric(&body, "relearn_learn_challenger_skipped_records_total").unwrap();
    eprintln!("scored {scored}, paired {paired}, challenger skipped {skipped}");
    // Every labeled record is scored, or counted as unscored (before the first model, which
    // the retrain worker trains while ingest goes on), and every scored one is paired.
    let unscored = count("relearn_learn_predictions_total", "unscored");
    assert_eq!(scored + unscored, N as f64, "{body}");
    assert!(scored > 0.0, "{body}");
    assert_eq!(paired, scored);
    // At 2% of the loop's time the challenger cannot learn from every chunk of a backlog
    // (its training is most of a chunk's time), nor from none.
    assert!(skipped > 0.0, "nothing skipped");
    assert!(skipped < scored, "skipped {skipped} of {scored}");
}
