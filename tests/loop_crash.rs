//! A crash during a retrain: the daemon binary, retraining on its worker thread while ingest
//! goes on, is killed with SIGKILL. After the restart the previous version serves, the loop
//! state (detectors, trigger state) and the replay buffer are intact, and the next trigger
//! retrains normally. And crashes while the challenger learns and is promoted: after SIGKILLs
//! at several moments every labeled record is counted exactly once (scored, or unscored
//! before the first model) and the active version loads.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use common::*;
use relearn::datasets::digits;
use relearn::store::versions::ModelVersions;
use relearn::store::{Cf, KvStore, ReplayBuffer, RetrainLog, RocksStore};

fn append_rows(path: &Path, from: usize, to: usize) {
    let d = digits().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    if from == 0 {
        let header: Vec<String> = (0..64).map(|i| format!("p{i}")).collect();
        writeln!(f, "{},y", header.join(",")).unwrap();
    }
    for i in from..to {
        let row: Vec<String> = d.row(i).iter().map(|v| v.to_string()).collect();
        writeln!(f, "{},{}", row.join(","), d.y.bits(i)).unwrap();
    }
}

/// The daemon with `train.epochs` set (a long retrain to kill the process in).
fn spawn(config: &Path, log: &Path, epochs: usize) -> Child {
    let epochs = epochs.to_string();
    spawn_daemon_with(config, log, &[("RELEARN__TRAIN__EPOCHS", epochs.as_str())])
}

fn metrics_until(
    addr: &str,
    log: &Path,
    child: &mut Child,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    wait_for(Duration::from_secs(120), || {
        let (_, body) = http_get(addr, "/metrics")?;
        ok(&body).then_some(body)
    })
    .unwrap_or_else(|| {
        let _ = child.kill();
        panic!(
            "{what} did not happen; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    })
}

fn m(body: &str, name: &str) -> f64 {
    metric(body, name).unwrap_or(-1.0)
}

fn runs(body: &str, outcome: &str) -> f64 {
    metric_with(body, "relearn_retrain_runs_total", "outcome", outcome).unwrap_or(-1.0)
}

#[test]
fn sigkill_during_a_retrain_keeps_the_old_version_and_the_loop_state() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits.csv");
    let store_path = dir.path().join("store");
    let log = dir.path().join("daemon.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("relearn.toml");
    let features: Vec<String> = (0..64).map(|i| format!("\"p{i}\"")).collect();
    std::fs::write(
        &config,
        format!(
            r#"
[file]
path = "{data}"
exit_at_end = false
[schema]
format = "csv"
features = [{features}]
label = "y"
classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
[ingest]
batch_max_records = 100
[store]
path = "{store}"
[http]
listen = "{addr}"
[model]
hidden = [64, 32]
bootstrap_labeled = 500
[drift]
window = 800
[triggers]
drift_detectors = []
accuracy_drop = 0.0
every_labeled = 500
min_new_labeled = 100
[retrain]
wait = "never"
[challenger]
# This part is about a triggered retrain; the challenger's crashes are the test below.
enabled = false
"#,
            data = data.display(),
            features = features.join(", "),
            store = store_path.display()
        ),
    )
    .unwrap();

    // 1. The first model, then a clean stop.
    append_rows(&data, 0, 700);
    let mut child = spawn(&config, &log, 5);
    metrics_until(&addr, &log, &mut child, "version 1", |b| {
        m(b, "relearn_learn_model_version") == 1.0 && m(b, "relearn_ingest_records_total") == 700.0
    });
    assert!(stop_gracefully(child).status.success());

    // 2. More records fire the count trigger; the retrain (made slow with many epochs) runs
    //    beside ingest, which processes every record meanwhile; SIGKILL during it.
    append_rows(&data, 700, 1400);
    let mut child = spawn(&config, &log, 100_000);
    let body = metrics_until(&addr, &log, &mut child, "a running retrain", |b| {
        m(b, "relearn_retrain_running") == 1.0 && m(b, "relearn_ingest_records_total") == 1400.0
    });
    assert_eq!(m(&body, "relearn_learn_model_version"), 1.0);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    {
        let store = RocksStore::open(&store_path, false).unwrap();
        assert_eq!(
            ModelVersions::new(&store).active().unwrap(),
            Some(1),
            "the previous version is still the active one"
        );
        assert_eq!(ModelVersions::new(&store).count().unwrap(), 1);
        assert_eq!(ReplayBuffer::all(&store).unwrap().len(), 1400);
        let state: serde_json::Value =
            serde_json::from_slice(&store.get(Cf::Meta, b"loop/state").unwrap().unwrap()).unwrap();
        assert_eq!(state["serving_version"], 1);
        assert_eq!(state["ring_pushed"], 1400);
        assert!(state["labeled_since_retrain"].as_u64().unwrap() >= 500);
        assert!(state["window"].as_array().unwrap().len() > 100);
        assert_eq!(state["retrains"], 2, "the killed retrain was started");
        let reports = RetrainLog::new(&store).count().unwrap();
        assert_eq!(reports, 1, "only the bootstrap finished");
    }

    // 3. Restart: version 1 serves; the next records fire the trigger again and the retrain
    //    finishes normally.
    append_rows(&data, 1400, 1500);
    let mut child = spawn(&config, &log, 5);
    let body = metrics_until(&addr, &log, &mut child, "a finished retrain", |b| {
        metric_with(b, "relearn_retrain_triggers_total", "trigger", "count") == Some(2.0)
            && m(b, "relearn_retrain_running") == 0.0
    });
    eprintln!(
        "after restart: version {}, promoted {}, rejected {}, failed {}",
        m(&body, "relearn_learn_model_version"),
        runs(&body, "promoted"),
        runs(&body, "rejected"),
        runs(&body, "failed")
    );
    assert_eq!(runs(&body, "failed"), 0.0);
    assert!(stop_gracefully(child).status.success());
    let store = RocksStore::open(&store_path, false).unwrap();
    let reports = RetrainLog::new(&store).all::<serde_json::Value>().unwrap();
    assert_eq!(
        reports.len(),
        2,
        "bootstrap and the retrain after the restart"
    );
    let last = &reports[1];
    assert_eq!(last["trigger"], "count");
    assert_eq!(last["parent"], 1);
}

#[test]
fn sigkill_while_the_challenger_learns_counts_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("digits.csv");
    let store_path = dir.path().join("store");
    let log = dir.path().join("daemon.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("relearn.toml");
    let features: Vec<String> = (0..64).map(|i| format!("\"p{i}\"")).collect();
    std::fs::write(
        &config,
        format!(
            r#"
[file]
path = "{data}"
exit_at_end = true
[schema]
format = "csv"
features = [{features}]
label = "y"
classes = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
[ingest]
batch_max_records = 50
batch_max_wait_ms = 5
[store]
path = "{store}"
[http]
listen = "{addr}"
[model]
hidden = [64, 32]
"#,
            data = data.display(),
            features = features.join(", "),
            store = store_path.display()
        ),
    )
    .unwrap();
    const N: usize = 1797;
    append_rows(&data, 0, N);
    // SIGKILL at growing counts of processed records (wherever the challenger is then).
    let mut killed = 0;
    for threshold in [100.0, 400.0, 700.0, 1000.0, 1300.0] {
        let mut child = spawn(&config, &log, 5);
        let reached = wait_for(Duration::from_secs(60), || {
            let (_, body) = http_get(&addr, "/metrics")?;
            (m(&body, "relearn_ingest_records_total") >= threshold).then_some(())
        });
        let _ = child.kill();
        child.wait().unwrap();
        if reached.is_some() {
            killed += 1;
        }
    }
    assert!(killed >= 3, "only {killed} kills landed mid-stream");
    let child = spawn(&config, &log, 5);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("records {N} ")), "{stdout}");

    let store = RocksStore::open(&store_path, false).unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&store.get(Cf::Meta, b"loop/state").unwrap().unwrap()).unwrap();
    let total = |k: &str| state["totals"][k].as_u64().unwrap_or(0);
    assert_eq!(
        total("predictions/correct")
            + total("predictions/incorrect")
            + total("predictions/unscored"),
        N as u64,
        "every labeled record counted once: {}",
        state["totals"]
    );
    assert_eq!(
        total("challenger/correct") + total("challenger/incorrect") + total("predictions/unscored"),
        N as u64,
        "the challenger scored every record the champion scored: {}",
        state["totals"]
    );
    let versions = ModelVersions::new(&store);
    let active = versions.active().unwrap().expect("an active version");
    let (_, bytes) = versions
        .get::<relearn::learner::VersionMeta>(active)
        .unwrap()
        .expect("the active version exists");
    relearn::learn::Checkpoint::from_bytes(&bytes)
        .expect("the active checkpoint loads")
        .to_model(relearn::learn::BackendKind::Flex)
        .expect("and builds a model");
}
