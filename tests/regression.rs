//! A numeric target end to end through the real binary (`schema.task = "regression"`): the
//! daemon takes a stream whose target is a number (with gaps in a feature, targets that are
//! missing and targets that are not numbers), bootstraps a model, promotes challengers and
//! runs a manual retrain through the gate, and `/v1/predict` answers a value close to the
//! generating function; `relearn eval` reports MAE, RMSE and R^2 far better than the mean
//! predictor's.

mod common;

use common::Gen;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{get_json, http_get, post_json, wait_for};

const N: usize = 6_000;
const TOKEN: &str = "regression-admin-token-51c9";

/// The generating function: demand in the hundreds, linear in `a` and `b`, 60 higher in
/// the north.
fn truth(a: f64, b: f64, north: bool) -> f64 {
    300.0 + 40.0 * a - 25.0 * b + if north { 60.0 } else { 0.0 }
}

/// What the stream holds, counted while writing it.
struct Stream {
    path: PathBuf,
    /// Rows whose target is `NA` (unlabeled) and rows whose target is not a number.
    unlabeled: u64,
    bad_target: u64,
    missing_b: u64,
}

/// `N` rows `a,b,region,demand`: `a`, `b` uniform in [-2, 2], noise uniform with sd 5; one
/// `b` in 10 missing (`NA`, imputed by the model), one target in 40 `NA`, one in 500 `oops`.
fn write_stream(dir: &Path) -> Stream {
    let mut g = Gen(41);
    let mut out = String::from("a,b,region,demand\n");
    let (mut unlabeled, mut bad_target, mut missing_b) = (0, 0, 0);
    for i in 0..N {
        let a = g.unit() * 4.0 - 2.0;
        let b = g.unit() * 4.0 - 2.0;
        let north = g.next() % 2 == 0;
        let noise = (g.unit() - 0.5) * 10.0 * 3f64.sqrt();
        let y = truth(a, b, north) + noise;
        let b_text = if i % 10 == 3 {
            missing_b += 1;
            "NA".to_string()
        } else {
            format!("{b:.4}")
        };
        let y_text = if i % 500 == 250 {
            bad_target += 1;
            "oops".to_string()
        } else if i % 40 == 7 {
            unlabeled += 1;
            "NA".to_string()
        } else {
            format!("{y:.3}")
        };
        let region = if north { "north" } else { "south" };
        out.push_str(&format!("{a:.4},{b_text},{region},{y_text}\n"));
    }
    let path = dir.join("demand.csv");
    std::fs::write(&path, out).expect("write the stream");
    Stream {
        path,
        unlabeled,
        bad_target,
        missing_b,
    }
}

#[test]
fn a_numeric_target_is_learned_retrained_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let addr = format!("127.0.0.1:{}", common::free_port());
    let store = dir.path().join("store");
    let config = dir.path().join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[schema]
features = ["a", "b"]
categorical = ["region"]
label = "demand"
task = "regression"
[file]
path = "{input}"
exit_at_end = false
dead_letter_path = "{dead}"
[store]
path = "{store}"
[http]
listen = "{addr}"
"#,
            input = s.path.display(),
            dead = dir.path().join("dead.jsonl").display(),
            store = store.display(),
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_relearn"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RELEARN_LOG", "info")
        .env("RELEARN_ADMIN_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(
            std::fs::File::create(&log)
                .map(std::process::Stdio::from)
                .unwrap(),
        )
        .spawn()
        .expect("start the relearn binary");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = wait_for(Duration::from_secs(120), || {
        let (code, st) = common::try_get_json(&addr, "/v1/status")?;
        (code == 200 && st["records"] == N as u64).then_some(st)
    })
    .unwrap_or_else(|| panic!("the stream is not consumed; log:\n{}", log_text()));
    assert!(
        status["serving_version"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );

    // A manual retrain goes through the gate, judged on MAE.
    let (code, r) = post_json(&addr, "/v1/retrain", Some(TOKEN), "");
    assert_eq!(code, 202, "{r}");
    let last = wait_for(Duration::from_secs(120), || {
        let (_, st) = get_json(&addr, "/v1/status");
        (st["last_retrain"]["trigger"] == "manual").then(|| st["last_retrain"].clone())
    })
    .unwrap_or_else(|| panic!("the manual retrain did not run; log:\n{}", log_text()));
    assert!(
        last["outcome"] == "promoted" || last["outcome"] == "rejected",
        "{last}"
    );
    // The gate's scores are minus the MAE in target standard deviations: negative, and
    // small for a model that learned the function (noise alone: MAE 2.5, target sd ~ 60).
    let v = &last["validation"];
    let new_current = v["new_current"].as_f64().unwrap();
    assert!(new_current < 0.0 && new_current > -0.25, "{last}");

    // Served values are close to the generating function, for a region and for a record
    // whose `b` is missing (imputed at the mean, 0).
    let value = |body: &str| {
        let (code, p) = post_json(&addr, "/v1/predict", None, body);
        assert_eq!(code, 200, "{body}: {p}");
        assert!(p.get("class").is_none(), "{p}");
        p["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("no value: {p}"))
    };
    for (a, b, north) in [(1.0, -1.0, true), (-1.5, 0.5, false), (0.0, 1.5, true)] {
        let region = if north { "north" } else { "south" };
        let got = value(&format!(r#"{{"a": {a}, "b": {b}, "region": "{region}"}}"#));
        let want = truth(a, b, north);
        assert!(
            (got - want).abs() < 15.0,
            "({a}, {b}, {region}): {got} vs {want}"
        );
    }
    let got = value(r#"{"a": 1.0, "b": null, "region": "south"}"#);
    assert!((got - truth(1.0, 0.0, false)).abs() < 20.0, "{got}");
    let (code, e) = post_json(
        &addr,
        "/v1/predict",
        None,
        r#"{"a": 1.0, "b": [1], "region": "x"}"#,
    );
    assert_eq!(code, 400, "{e}");

    let (_, metrics) = http_get(&addr, "/metrics").unwrap();
    let mae = common::metric(&metrics, "relearn_learn_prequential_mae").expect("the MAE gauge");
    assert!(mae > 2.0 && mae < 12.0, "prequential MAE {mae}");
    common::stop_gracefully(child);

    let report = relearn::inspect::inspect_path(&store).expect("inspect the store");
    let c = &report.counters;
    assert_eq!(c["records"], N as u64);
    assert_eq!(c["malformed/invalid_target"], s.bad_target);
    assert_eq!(c["unlabeled"], s.unlabeled);
    assert_eq!(c["labeled"], N as u64 - s.unlabeled - s.bad_target);
    assert_eq!(c["missing/b"], s.missing_b);

    // relearn eval on the same file: MAE, RMSE and R^2 against the mean predictor.
    let args = ["--label", "demand", "--strategies", "default,majority"];
    let report = common::eval_report(&s.path, &args, &dir.path().join("eval"));
    assert_eq!(
        report["task"], "regression",
        "inferred from the numeric label"
    );
    let row = |strategy: &str| common::eval_row(&report, strategy)["regression"].clone();
    let (default, mean) = (row("default"), row("majority"));
    let mae = default["mae"].as_f64().unwrap();
    let mean_mae = mean["mae"].as_f64().unwrap();
    // The target's sd is about 62 (MAE of the mean ~ 50); the noise's MAE is 2.5.
    assert!(mean_mae > 40.0, "{report}");
    assert!(mae < 12.0, "{report}");
    assert!(default["r2"].as_f64().unwrap() > 0.9, "{report}");
}

/// A numeric target with no other column (a metric's series) is learned from its own past:
/// the last targets are the inputs (`schema.lag_labels`, on by default for a regression).
#[test]
fn a_target_alone_is_learned_from_its_past_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("series.csv");
    // A daily cycle of 24 records, amplitude 50, with uniform noise of +-2 (a fixed LCG).
    let mut state: u64 = 12_345;
    let mut values = Vec::new();
    for t in 0..2_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let u = (state >> 11) as f64 / (1u64 << 53) as f64;
        values
            .push(100.0 + 50.0 * (std::f64::consts::TAU * t as f64 / 24.0).sin() + 4.0 * (u - 0.5));
    }
    let text: String = std::iter::once("y".to_string())
        .chain(values.iter().map(|v| format!("{v:.3}")))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text + "\n").unwrap();
    // The no-change forecast's MAE over the same records (about 8.4).
    let no_change =
        values.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (values.len() - 1) as f64;
    let args = ["--label", "y", "--strategies", "default"];
    let report = common::eval_report(&path, &args, &dir.path().join("eval"));
    assert_eq!(report["task"], "regression", "{report}");
    assert_eq!(
        report["features"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    let mae = common::eval_row(&report, "default")["regression"]["mae"]
        .as_f64()
        .unwrap();
    assert!(
        no_change > 7.0 && mae < no_change / 2.0,
        "MAE {mae}, no-change {no_change}: {report}"
    );
}
