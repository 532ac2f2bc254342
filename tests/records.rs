//! Production-shaped records through the real binary: a string field that carries the
//! concept and a numeric field with gaps (`NA`, empty). With `schema.categorical` the daemon
//! takes every record (no dead letters), counts the missing values per field exactly, and
//! learns the concept from the string field; with `schema.missing = "reject"` the gaps are
//! dead letters as before.

mod common;

use common::{relearn, Gen};

use std::path::{Path, PathBuf};

const N: usize = 4_000;
/// Cities and whether they are labeled `yes`; their FNV-1a buckets (mod 32) are distinct:
/// Lisbon 18, Oslo 10, Quito 27, Lima 16, Hanoi 8, Turin 15, Dakar 0, Riga 24.
const CITIES: [(&str, bool); 8] = [
    ("Lisbon", true),
    ("Oslo", false),
    ("Quito", true),
    ("Lima", false),
    ("Hanoi", true),
    ("Turin", false),
    ("Dakar", true),
    ("Riga", false),
];

/// What the stream holds, counted while writing it.
struct Stream {
    path: PathBuf,
    missing_x: u64,
    missing_city: u64,
    /// Per row: whether its city appears for the first time.
    new_city: Vec<bool>,
}

/// `N` rows `x,city,noise,y`: y follows the city (5% of labels flipped); x is noise with a
/// quarter of its values missing; one row in 50 has no city.
fn write_stream(dir: &Path) -> Stream {
    let mut g = Gen(7);
    let mut out = String::from("x,city,noise,y\n");
    let (mut missing_x, mut missing_city) = (0, 0);
    let (mut seen, mut new_city) = (std::collections::HashSet::new(), Vec::new());
    for i in 0..N {
        let (city, yes) = CITIES[(g.next() % 8) as usize];
        let yes = if g.unit() < 0.05 { !yes } else { yes };
        let x = match g.next() % 8 {
            0 => "NA".to_string(),
            1 => String::new(),
            _ => format!("{:.3}", g.unit() * 10.0),
        };
        if x.is_empty() || x == "NA" {
            missing_x += 1;
        }
        let city = if i % 50 == 49 {
            missing_city += 1;
            ""
        } else {
            city
        };
        new_city.push(!city.is_empty() && seen.insert(city));
        let noise = g.unit();
        let y = if yes { "yes" } else { "no" };
        out.push_str(&format!("{x},{city},{noise:.4},{y}\n"));
    }
    let path = dir.join("stream.csv");
    std::fs::write(&path, out).expect("write the stream");
    Stream {
        path,
        missing_x,
        missing_city,
        new_city,
    }
}

fn run_daemon(dir: &Path, stream: &Path, schema: &str) -> relearn::inspect::StoreReport {
    let store = dir.join(common::unique("store"));
    let config = dir.join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[schema]
features = ["x", "noise"]
label = "y"
classes = ["no", "yes"]
{schema}
[file]
path = "{input}"
dead_letter_path = "{dead}"
[store]
path = "{store}"
[http]
listen = "127.0.0.1:0"
"#,
            input = stream.display(),
            dead = dir.join("dead.jsonl").display(),
            store = store.display(),
        ),
    )
    .expect("write the config");
    let out = relearn()
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .expect("run the relearn binary");
    assert!(
        out.status.success(),
        "relearn run failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    relearn::inspect::inspect_path(&store).expect("inspect the store")
}

#[test]
fn strings_and_gaps_are_taken_counted_and_learned() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    assert!(
        s.missing_x > 800 && s.missing_city == 80,
        "the stream has gaps"
    );

    let report = run_daemon(dir.path(), &s.path, r#"categorical = ["city"]"#);
    assert_eq!(report.counters["records"], N as u64);
    assert_eq!(report.counters["labeled"], N as u64);
    assert!(
        !report.counters.keys().any(|k| k.starts_with("malformed/")),
        "no dead letters: {:?}",
        report.counters
    );
    assert_eq!(report.counters["missing/x"], s.missing_x);
    assert_eq!(report.counters["missing/city"], s.missing_city);
    // Every city is new once (the stream holds all eight), however often it recurs.
    assert_eq!(report.counters["new_category/city"], CITIES.len() as u64);
    // The drift diagnosis's new-category rate: the share of records bringing a new city,
    // weighted over about drift.window records, as each record arrived.
    let window = relearn::config::Config::default().drift.window as f64;
    let expected = s
        .new_city
        .iter()
        .fold(0.0, |r, &new| r + (f64::from(u8::from(new)) - r) / window);
    assert_eq!(report.new_category_rates.len(), 1, "one categorical field");
    assert!(
        (report.new_category_rates[0] - expected).abs() < 1e-12 && expected > 0.0,
        "new-category rate {:?}, expected {expected}",
        report.new_category_rates
    );
    assert!(!report.counters.contains_key("missing/noise"));

    // The concept is in the string field only: learned, relearn is far above the majority.
    let out_dir = dir.path().join("eval");
    let out = relearn()
        .arg("eval")
        .arg(&s.path)
        .args(["--label", "y", "--strategies", "default,majority", "--out"])
        .arg(&out_dir)
        .output()
        .expect("run relearn eval");
    assert!(
        out.status.success(),
        "relearn eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("eval.json")).unwrap()).unwrap();
    assert_eq!(report["categorical"], serde_json::json!(["city"]));
    assert_eq!(report["features"], serde_json::json!(["x", "noise"]));
    let accuracy = |strategy: &str| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["strategy"] == strategy)
            .unwrap_or_else(|| panic!("no {strategy} row in {report}"))["accuracy"]
            .as_f64()
            .unwrap()
    };
    // Bayes accuracy is 0.95 (5% flipped labels); the majority class is about half.
    assert!(accuracy("majority") < 0.6, "{report}");
    assert!(accuracy("default") > 0.85, "{report}");
}

#[test]
fn reject_keeps_gaps_as_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let report = run_daemon(
        dir.path(),
        &s.path,
        "categorical = [\"city\"]\nmissing = \"reject\"",
    );
    // A row is refused at its first missing field, in column order: x, then city.
    let text = std::fs::read_to_string(&s.path).unwrap();
    let refused = text
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split(',').collect();
            f[0].is_empty() || f[0] == "NA" || f[1].is_empty()
        })
        .count() as u64;
    assert_eq!(report.counters["malformed/missing_field"], refused);
    assert_eq!(report.counters["records"], N as u64);
    assert_eq!(report.counters["labeled"], N as u64 - refused);
}

/// The served model answers for production-shaped requests: the learned cities, a city never
/// seen, a record with every field missing; an array in a categorical field is refused with
/// its reason.
#[test]
fn predict_takes_unseen_categories_and_missing_fields() {
    predict_answers_by_city("hashing");
}

/// The same with the cities' inputs from the ingest path's vocabulary, which the predict API
/// reads (a city the stream never brought sets no input).
#[test]
fn predict_reads_the_vocabulary_the_stream_built() {
    predict_answers_by_city("vocabulary");
}

fn predict_answers_by_city(encoding: &str) {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let addr = format!("127.0.0.1:{}", common::free_port());
    let child = relearn()
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.path().join("store"))
        .env("RELEARN__FILE__PATH", &s.path)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__SCHEMA__FEATURES", r#"["x", "noise"]"#)
        .env("RELEARN__SCHEMA__CATEGORICAL", r#"["city"]"#)
        .env("RELEARN__SCHEMA__CATEGORICAL_ENCODING", encoding)
        .env("RELEARN__SCHEMA__LABEL", "y")
        .env("RELEARN__SCHEMA__CLASSES", r#"["no", "yes"]"#)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the relearn binary");
    common::wait_for(std::time::Duration::from_secs(60), || {
        let (code, st) = common::try_get_json(&addr, "/v1/status")?;
        (code == 200 && st["records"] == N as u64).then_some(())
    })
    .expect("the stream is consumed");
    let class = |body: &str| {
        let (code, p) = common::post_json(&addr, "/v1/predict", None, body);
        assert_eq!(code, 200, "{body}: {p}");
        p["class"].as_str().unwrap().to_string()
    };
    // The concept: 95% of each city's records carry its label; the model answers by city.
    let right: Vec<&str> = CITIES
        .iter()
        .filter(|(city, yes)| {
            let got = class(&format!(r#"{{"x": 5.0, "city": "{city}", "noise": 0.5}}"#));
            got == if *yes { "yes" } else { "no" }
        })
        .map(|(city, _)| *city)
        .collect();
    assert!(right.len() >= 7, "cities answered right: {right:?}");
    class(r#"{"x": 5.0, "city": "Atlantis", "noise": 0.5}"#);
    class(r#"{"x": null, "noise": "NA"}"#);
    class("{}");
    let (code, e) = common::post_json(
        &addr,
        "/v1/predict",
        None,
        r#"{"x": 1, "city": ["Lisbon"], "noise": 0.5}"#,
    );
    assert_eq!(code, 400, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_category"),
        "{e}"
    );
    common::stop_gracefully(child);
    // What the store keeps per city: its own input (u32, in order of first sight) with a
    // vocabulary, nothing with hashing.
    let store = relearn::store::RocksStore::open_read_only(&dir.path().join("store"))
        .expect("open the store");
    let kept = relearn::store::KvStore::scan_prefix(
        &store,
        relearn::store::Cf::Meta,
        b"ingest/categories/0/",
    )
    .unwrap();
    assert_eq!(kept.len(), CITIES.len());
    let mut inputs: Vec<Vec<u8>> = kept.into_iter().map(|(_, v)| v).collect();
    inputs.sort();
    if encoding == "vocabulary" {
        let want: Vec<Vec<u8>> = (0u32..CITIES.len() as u32)
            .map(|i| i.to_le_bytes().to_vec())
            .collect();
        assert_eq!(inputs, want);
    } else {
        assert!(inputs.iter().all(Vec::is_empty), "{inputs:?}");
    }
}
