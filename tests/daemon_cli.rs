//! The binary as users run it: the embedded demo, the file source with resume and dead
//! letters, health endpoints and graceful SIGTERM, and config mistakes named at start.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;

const RECORD: &str = r#"{"day": 2, "period": 0.5, "nswprice": 0.05, "nswdemand": 0.4, "vicprice": 0.003, "vicdemand": 0.4, "transfer": 0.4}"#;
const TOKEN: &str = "test-admin-token-51c2";

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[replay]\ncapacity = 0\n", "replay.capacity"),
        ("[replay]\ncapacty = 10\n", "capacty"),
        ("[schema]\nformat = \"xml\"\n", "schema.format"),
        ("[http]\nlisten = \"localhost\"\n", "http.listen"),
        (
            "[kafka]\nbrokers = \"b:1\"\ngroup_id = \"\"\n",
            "kafka.group_id",
        ),
        ("[store\npath = 1\n", "TOML"),
        ("[shutdown]\ngrace_seconds = 0\n", "shutdown.grace_seconds"),
        // `day` is a numeric feature of the default schema.
        ("[schema]\ncategorical = [\"day\"]\n", "schema.categorical"),
        ("[schema]\nmissing = \"drop\"\n", "schema.missing"),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for cmd in ["check-config", "run"] {
            let out = relearn()
                .args([cmd, "--config"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{cmd} accepted {text:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(key),
                "{cmd} on {text:?}: stderr does not name {key}: {err}"
            );
        }
    }
    let out = relearn()
        .args(["check-config"])
        .env("RELEARN__REPLAY__SEED", "not-a-number")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("replay.seed"));
    let out = relearn()
        .args(["check-config", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.toml"));
}

#[test]
fn embedded_demo_streams_elec2_into_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let run_demo = || {
        let out = relearn()
            .arg("run")
            .env("RELEARN__STORE__PATH", dir.path())
            .env(
                "RELEARN__HTTP__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = run_demo();
    assert!(
        stdout.contains("records 45312 (labeled 45312, unlabeled 0, malformed 0)"),
        "{stdout}"
    );
    let report = relearn::inspect::inspect_path(dir.path()).unwrap();
    assert_eq!(report.counters["records"], 45_312);
    assert_eq!(report.replay_records, 10_000);
    // The loop ran: a first model, retrains, prequential accuracy well above the majority
    // class (0.58 of Elec2 is DOWN).
    let (accuracy, line) = loop_summary(&stdout);
    assert!(accuracy > 0.7, "{line}");
    assert!(line.contains("promoted"), "{line}");
    assert!(
        report.versions >= 2,
        "bootstrap and promoted retrains: {report:?}"
    );
    {
        // The newest version serves; retention keeps the last models.keep_last (50) and the
        // first (pinned) one.
        let store = relearn::store::RocksStore::open_read_only(dir.path()).unwrap();
        let kept = relearn::store::versions::ModelVersions::new(&store)
            .list::<relearn::learner::VersionMeta>()
            .unwrap();
        assert_eq!(report.active_version, kept.last().map(|r| r.version));
        assert!(kept.len() <= 51, "{} versions kept", kept.len());
        assert_eq!(
            kept.first().map(|r| r.version),
            Some(1),
            "the first version is kept"
        );
    }
    assert!(report
        .retrains
        .iter()
        .any(|r| r.trigger == relearn::drift::trigger::TriggerKind::Drift));

    // A second run resumes after the stored offset: nothing is processed twice.
    let stdout = run_demo();
    assert!(stdout.contains("records 45312 ("), "{stdout}");
    let report = relearn::inspect::inspect_path(dir.path()).unwrap();
    assert_eq!(report.counters["records"], 45_312);

    // `inspect` prints the same report as JSON.
    let out = relearn()
        .args(["inspect", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counters"]["records"], 45_312);
    // `inspect --retrains` prints every retrain's whole report.
    let out = relearn()
        .args(["inspect", "--retrains", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let log: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(log.len(), report.retrains.len());
    // A drift-triggered retrain's whole report: the layer diagnosis, the layers trained,
    // the validation on old and new records, the cost against training every layer.
    let drift = log
        .iter()
        .find(|r| r["trigger"] == "drift")
        .expect("a drift-triggered retrain");
    assert!(
        drift["layer_choice"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{drift}"
    );
    assert_eq!(drift["train"]["layers"], drift["layers"], "{drift}");
    assert!(
        drift["validation"]["old_records"].as_u64().is_some(),
        "{drift}"
    );
    let (flops, full) = (
        drift["cost"]["flops"].as_f64().expect("flops"),
        drift["cost"]["full_flops"].as_f64().expect("full_flops"),
    );
    assert!(flops > 0.0 && flops <= full, "{drift}");
    // A rejected retrain says why.
    for rejected in log.iter().filter(|r| r["outcome"] == "rejected") {
        assert!(
            rejected["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{rejected}"
        );
    }
}

/// The loop's summary line: (prequential accuracy, whole line).
fn loop_summary(stdout: &str) -> (f64, String) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("model version "))
        .unwrap_or_else(|| panic!("no loop summary: {stdout}"));
    let accuracy = line
        .split("prequential accuracy ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    (accuracy, line.to_string())
}

/// The Elec2 profile (the demo's config): with the previous record and the last four labels
/// as inputs, the loop beats the no-change classifier (0.853) on the same stream.
#[test]
fn elec2_profile_uses_the_recent_past() {
    let out = relearn()
        .args(["run", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/elec2.toml"))
        .env(
            "RELEARN__HTTP__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("RELEARN__FILE__EXIT_AT_END", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (accuracy, line) = loop_summary(&String::from_utf8_lossy(&out.stdout));
    eprintln!("{line}");
    assert!(accuracy > 0.86, "{line}");
}

#[test]
fn file_source_resumes_and_dead_letters_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let dead = dir.path().join("dead.jsonl");
    let config = dir.path().join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            "[file]\npath = \"{}\"\ndead_letter_path = \"{}\"\n[schema]\nfeatures = [\"x\", \"z\"]\nlabel = \"y\"\nclasses = [\"a\", \"b\"]\n[store]\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
            input.display(),
            dead.display(),
            dir.path().join("store").display()
        ),
    )
    .unwrap();
    let line = |i: usize| -> String {
        match i % 10 {
            3 => format!("{i},oops,a\n"),
            5 => format!("{i},1\n"),
            _ => format!("{i},{},{}\n", i * 2, if i % 2 == 0 { "a" } else { "b" }),
        }
    };
    let mut f = std::fs::File::create(&input).unwrap();
    f.write_all(b"x,z,y\n").unwrap();
    for i in 0..1000 {
        f.write_all(line(i).as_bytes()).unwrap();
    }
    drop(f);
    let run = || {
        let out = relearn()
            .args(["run", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    for i in 1000..1500 {
        f.write_all(line(i).as_bytes()).unwrap();
    }
    drop(f);
    run();
    let report = relearn::inspect::inspect_path(&dir.path().join("store")).unwrap();
    assert_eq!(
        report.counters["records"], 1500,
        "appended lines only were processed"
    );
    assert_eq!(report.counters["malformed/non_numeric"], 150);
    assert_eq!(report.counters["malformed/wrong_field_count"], 150);
    assert_eq!(report.counters["labeled"], 1200);
    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 300);
    for l in &letters {
        let payload = base64::engine::general_purpose::STANDARD
            .decode(l["payload_base64"].as_str().unwrap())
            .unwrap();
        let text = String::from_utf8(payload).unwrap();
        let i: usize = text.split(',').next().unwrap().parse().unwrap();
        assert_eq!(format!("{text}\n"), line(i));
        let want = if i % 10 == 3 {
            "non_numeric"
        } else {
            "wrong_field_count"
        };
        assert_eq!(l["reason"], want);
    }
}

#[test]
fn health_endpoints_and_graceful_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = relearn()
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.path())
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: the embedded stream takes seconds, longer on a loaded 2-core machine.
    let body = wait_for(Duration::from_secs(180), || {
        let (s, body) = http_get(&addr, "/metrics")?;
        (s == 200 && metric(&body, "relearn_ingest_records_total")? == 45_312.0).then_some(body)
    })
    .expect("metrics show the whole demo stream");
    assert!(body.contains("# TYPE relearn_ingest_batch_write_seconds histogram"));
    assert_eq!(
        metric(&body, "relearn_store_replay_records"),
        Some(10_000.0)
    );
    // The engine's memory, read at the scrape: 45,312 records are in memtables or flushed
    // (the store holds them, so something does), and the block cache is within its 16 MiB.
    let memory = |part| metric_with(&body, "relearn_store_memory_bytes", "part", part);
    let (memtables, cache) = (memory("memtables"), memory("block_cache"));
    assert!(
        memtables.is_some_and(|b| b > 0.0),
        "memtables {memtables:?}"
    );
    assert!(
        cache.is_some_and(|b| (0.0..=16.0 * 1024.0 * 1024.0).contains(&b)),
        "block cache {cache:?}"
    );
    assert!(memory("table_readers").is_some());
    assert_eq!(http_get(&addr, "/healthz").unwrap().0, 200);
    assert_eq!(http_get(&addr, "/readyz").unwrap().0, 200);
    assert_eq!(http_get(&addr, "/nope").unwrap().0, 404);
    let out = stop_gracefully(child);
    assert!(String::from_utf8_lossy(&out.stdout).contains("records 45312"));
    assert!(
        http_get(&addr, "/healthz").is_none(),
        "listener closed after shutdown"
    );
}

/// SIGTERM while the first model trains for what would be hours: training stops between two
/// steps, the open batch is written, and the daemon exits 0 inside `shutdown.grace_seconds`
/// (past the budget it would exit 1), leaving a store that opens.
#[test]
fn sigterm_during_a_long_retrain_exits_within_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let child = relearn()
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.path())
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN__TRAIN__EPOCHS", "10000000")
        .env("RELEARN__SHUTDOWN__GRACE_SECONDS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), || {
        let (s, body) = http_get(&addr, "/metrics")?;
        (s == 200 && metric(&body, "relearn_retrain_running")? == 1.0).then_some(())
    })
    .expect("the bootstrap retrain starts");
    // No version serves yet: predict answers 503 no_model, for the champion and the
    // challenger alike.
    for path in ["/v1/predict", "/v1/predict?model=challenger"] {
        let (code, e) = post_json(&addr, path, None, RECORD);
        assert_eq!(
            (code, e["error"]["code"].as_str()),
            (503, Some("no_model")),
            "{path}: {e}"
        );
    }
    // Let it train for a while: it is far from done.
    std::thread::sleep(Duration::from_secs(2));
    let (_, body) = http_get(&addr, "/metrics").unwrap();
    assert_eq!(metric(&body, "relearn_retrain_running"), Some(1.0));
    sigterm_exits_inside_the_budget(child);
    let report = relearn::inspect::inspect_path(dir.path()).expect("the store opens");
    assert!(report.counters["records"] > 0);
}

/// A store with versions, then a manual retrain that would run for hours: activation answers
/// 409 while it runs, an oversized body 413, and SIGTERM still ends inside the budget.
#[test]
fn conflict_and_oversized_answers_then_sigterm_mid_manual_retrain() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let input = dir.path().join("elec2-head.csv");
    {
        use std::io::Read;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/elec2.csv.gz");
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let head: Vec<&str> = text.lines().take(2_001).collect();
        std::fs::write(&input, head.join("\n") + "\n").unwrap();
    }
    // First run: the 2,000 records to the end, leaving versions behind.
    let out = relearn()
        .arg("run")
        .env("RELEARN__STORE__PATH", &store)
        .env("RELEARN__FILE__PATH", &input)
        .env("RELEARN__HTTP__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let child = relearn()
        .arg("run")
        .env("RELEARN__STORE__PATH", &store)
        .env("RELEARN__FILE__PATH", &input)
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__HTTP__MAX_BODY_BYTES", "4096")
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN__TRAIN__EPOCHS", "10000000")
        .env("RELEARN__SHUTDOWN__GRACE_SECONDS", "5")
        .env("RELEARN_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let version = wait_for(Duration::from_secs(60), || {
        let (code, p) = try_post_predict(&addr)?;
        (code == 200).then(|| p["version"].as_u64()).flatten()
    })
    .expect("the stored version serves after the restart");
    let big = format!("[{}]", vec![RECORD; 40].join(","));
    assert!(big.len() > 4096);
    let (code, _) = post_json(&addr, "/v1/predict", None, &big);
    assert_eq!(code, 413, "a body over http.max_body_bytes");
    let (code, r) = post_json(&addr, "/v1/retrain", Some(TOKEN), r#"{"layers": ["head"]}"#);
    assert_eq!(code, 202, "{r}");
    wait_for(Duration::from_secs(30), || {
        let (s, body) = http_get(&addr, "/metrics")?;
        (s == 200 && metric(&body, "relearn_retrain_running")? == 1.0).then_some(())
    })
    .expect("the manual retrain starts");
    let (code, e) = post_json(
        &addr,
        &format!("/v1/models/{version}/activate"),
        Some(TOKEN),
        "",
    );
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (409, Some("retrain_running")),
        "{e}"
    );
    // Serving goes on while it trains.
    let (code, _) = post_json(&addr, "/v1/predict", None, RECORD);
    assert_eq!(code, 200);
    sigterm_exits_inside_the_budget(child);
    // The cancelled retrain changed nothing: the same version serves after a restart.
    let report = relearn::inspect::inspect_path(&store).expect("the store opens");
    assert_eq!(report.counters["records"], 2_000);
    assert_eq!(report.active_version, Some(version));
}

/// Sends SIGTERM and expects exit 0: inside a 5 s `shutdown.grace_seconds`, past which the
/// daemon would exit 1 ("exceeded shutdown.grace_seconds").
fn sigterm_exits_inside_the_budget(mut child: std::process::Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let Some(status) = wait_for(Duration::from_secs(30), || child.try_wait().ok().flatten()) else {
        let _ = child.kill();
        panic!("the daemon did not exit within 30 s of SIGTERM");
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        status.success(),
        "exit 0 inside the 5 s budget, not the budget's exit 1: {status:?}\n{stderr}"
    );
    assert!(
        !stderr.contains("exceeded shutdown.grace_seconds"),
        "{stderr}"
    );
}

fn try_post_predict(addr: &str) -> Option<(u16, serde_json::Value)> {
    let (code, bytes) = http_request(
        addr,
        "POST",
        "/v1/predict",
        &[("Content-Type", "application/json")],
        RECORD.as_bytes(),
    )?;
    Some((code, serde_json::from_slice(&bytes).unwrap_or_default()))
}

#[test]
fn models_subcommand_lists_and_reactivates_versions() {
    use relearn::store::versions::ModelVersions;
    use relearn::store::{KvStore, RocksStore, WriteBatch};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path(), false).unwrap();
        let versions = ModelVersions::new(&store);
        // The fields a retrain report cannot be without.
        let meta: relearn::learner::VersionMeta = serde_json::from_value(serde_json::json!({
            "retrain": 1, "trigger": "manual", "reason": "test", "outcome": "promoted",
            "records_total": 0
        }))
        .unwrap();
        for (parent, activate) in [(None, true), (Some(1), true)] {
            let mut b = WriteBatch::new();
            versions
                .stage_new(&mut b, b"ckpt", parent, 1, &meta, activate, 0)
                .unwrap();
            store.write(b).unwrap();
        }
    }
    let models = |extra: &[&str]| {
        relearn()
            .arg("models")
            .args(extra)
            .arg("--store")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = models(&[]);
    ok(&out);
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listing["active"], 2);
    assert_eq!(listing["versions"].as_array().unwrap().len(), 2);
    ok(&models(&["--activate", "1"]));
    let store = RocksStore::open_read_only(dir.path()).unwrap();
    assert_eq!(ModelVersions::new(&store).active().unwrap(), Some(1));
    let out = models(&["--activate", "7"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("version 7 does not exist"));
}
