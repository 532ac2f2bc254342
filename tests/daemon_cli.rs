//! The binary as users run it: the embedded demo, the file source with resume and dead
//! letters, health endpoints and graceful SIGTERM, and config mistakes named at start.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use common::*;

fn relearn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relearn"));
    c.env("RELEARN_LOG", "warn");
    c
}

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
            .list()
            .unwrap();
        assert_eq!(report.active_version, kept.last().map(|r| r.version));
        assert!(kept.len() <= 51, "{} versions kept", kept.len());
        assert_eq!(
            kept.first().map(|r| r.version),
            Some(1),
            "the first version is kept"
        );
    }
    assert!(report.retrains.iter().any(|r| r["trigger"] == "drift"));

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
    let rejected = log
        .iter()
        .find(|r| r["outcome"] == "rejected")
        .expect("a rejected retrain");
    assert!(
        rejected["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{rejected}"
    );
    assert!(
        rejected["validation"]["old_records"].as_u64().is_some(),
        "{rejected}"
    );
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
    let body = wait_for(Duration::from_secs(30), || {
        let (s, body) = http_get(&addr, "/metrics")?;
        (s == 200 && metric(&body, "relearn_ingest_records_total")? == 45_312.0).then_some(body)
    })
    .expect("metrics show the whole demo stream");
    assert!(body.contains("# TYPE relearn_ingest_batch_write_seconds histogram"));
    assert_eq!(
        metric(&body, "relearn_store_replay_records"),
        Some(10_000.0)
    );
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

#[test]
fn models_subcommand_lists_and_reactivates_versions() {
    use relearn::store::versions::ModelVersions;
    use relearn::store::{KvStore, RocksStore, WriteBatch};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = RocksStore::open(dir.path(), false).unwrap();
        let versions = ModelVersions::new(&store);
        for (parent, activate) in [(None, true), (Some(1), true)] {
            let mut b = WriteBatch::new();
            versions
                .stage_new(
                    &mut b,
                    b"ckpt",
                    parent,
                    1,
                    serde_json::json!({}),
                    activate,
                    0,
                )
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
