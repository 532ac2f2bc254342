//! Production-shaped records through the real binary: a string field that carries the
//! concept and a numeric field with gaps (`NA`, empty). With `schema.categorical` the daemon
//! takes every record (no dead letters), counts the missing values per field exactly, and
//! learns the concept from the string field; with `schema.missing = "reject"` the gaps are
//! dead letters as before. A date-and-time field (`schema.time`) is read as the clock and the
//! calendar, by the loop and by `/v1/predict`.

mod common;

use common::{eval_report, eval_row, relearn, Gen};

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

/// `relearn eval` with only the label named, default against majority.
const EVAL_ARGS: &[&str] = &["--label", "y", "--strategies", "default,majority"];

/// A strategy's prequential accuracy in an eval report.
fn accuracy(report: &serde_json::Value, strategy: &str) -> f64 {
    eval_row(report, strategy)["accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("no accuracy for {strategy} in {report}"))
}

/// Runs the daemon over `stream` (`x,city,noise,y`) with `schema` added to its schema.
fn run_daemon(dir: &Path, stream: &Path, schema: &str) -> relearn::inspect::StoreReport {
    run_with_schema(
        dir,
        stream,
        &format!(
            "features = [\"x\", \"noise\"]\nlabel = \"y\"\nclasses = [\"no\", \"yes\"]\n{schema}"
        ),
    )
}

/// Runs the daemon over `stream` to its end with `schema` as the `[schema]` section; the
/// store's report.
fn run_with_schema(dir: &Path, stream: &Path, schema: &str) -> relearn::inspect::StoreReport {
    let store = dir.join(common::unique("store"));
    let config = dir.join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[schema]
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
    let report = eval_report(&s.path, EVAL_ARGS, &dir.path().join("eval"));
    assert_eq!(report["categorical"], serde_json::json!(["city"]));
    assert_eq!(report["features"], serde_json::json!(["x", "noise"]));
    let accuracy = |strategy: &str| accuracy(&report, strategy);
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

/// Starts the daemon serving over `stream` (label `y`, classes no/yes, `schema` as
/// `RELEARN__SCHEMA__<KEY>` overrides), the store in `dir`, and waits until it has all `N`
/// records; the child and its HTTP address.
fn serve(dir: &Path, stream: &Path, schema: &[(&str, &str)]) -> (std::process::Child, String) {
    let addr = format!("127.0.0.1:{}", common::free_port());
    let mut command = relearn();
    command
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.join("store"))
        .env("RELEARN__FILE__PATH", stream)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__SCHEMA__LABEL", "y")
        .env("RELEARN__SCHEMA__CLASSES", r#"["no", "yes"]"#);
    for (key, value) in schema {
        command.env(format!("RELEARN__SCHEMA__{key}"), value);
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the relearn binary");
    common::wait_for(std::time::Duration::from_secs(60), || {
        let (code, st) = common::try_get_json(&addr, "/v1/status")?;
        (code == 200 && st["records"] == N as u64).then_some(())
    })
    .expect("the stream is consumed");
    (child, addr)
}

fn predict_answers_by_city(encoding: &str) {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let (child, addr) = serve(
        dir.path(),
        &s.path,
        &[
            ("FEATURES", r#"["x", "noise"]"#),
            ("CATEGORICAL", r#"["city"]"#),
            ("CATEGORICAL_ENCODING", encoding),
        ],
    );
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

/// `N` hourly rows `when,noise,y` from Monday 2024-01-01: `yes` in working hours (08:00 to
/// 17:59, Monday to Friday), so the label is in the time field only. `bad` rows (every
/// 97th, from row 1,000 on) hold a value that is no date; every 61st has no time at all.
fn write_clock_stream(dir: &Path, bad: bool) -> (PathBuf, u64) {
    let mut g = Gen(11);
    let mut out = String::from("when,noise,y\n");
    let mut refused = 0;
    for i in 0..N {
        // Days since 2024-01-01 (a Monday) and the hour; minutes at random.
        let (day, hour) = (i / 24, i % 24);
        let work = day % 7 < 5 && (8..18).contains(&hour);
        let y = if work { "yes" } else { "no" };
        let when = if bad && i >= 1000 && i % 97 == 0 {
            refused += 1;
            "2024-02-30 10:00".to_string()
        } else if i % 61 == 60 {
            String::new()
        } else {
            // Month and day of 2024 (a leap year) from the day of the year.
            let lengths = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
            let (mut m, mut d) = (0, day);
            while d >= lengths[m] {
                d -= lengths[m];
                m += 1;
            }
            format!(
                "2024-{:02}-{:02} {hour:02}:{:02}:00",
                m + 1,
                d + 1,
                g.next() % 60
            )
        };
        out.push_str(&format!("{when},{:.4},{y}\n", g.unit()));
    }
    let path = dir.join(if bad { "clock-bad.csv" } else { "clock.csv" });
    std::fs::write(&path, out).expect("write the stream");
    (path, refused)
}

/// A date-and-time field (`schema.time`) is read as the inputs of the time of day, the
/// weekday and the time of year: a value that is no date is a dead letter with its reason,
/// a missing one is imputed, and the concept that lives in the clock alone is learned, with
/// the field found by `relearn eval` without being named.
#[test]
fn a_time_field_is_read_as_the_clock_and_the_calendar() {
    let dir = tempfile::tempdir().unwrap();
    let (path, refused) = write_clock_stream(dir.path(), true);
    assert!(refused > 20, "the stream has bad times");
    let schema = "features = [\"noise\"]\nlabel = \"y\"\nclasses = [\"no\", \"yes\"]\n[[schema.time]]\nfield = \"when\"";
    let report = run_with_schema(dir.path(), &path, schema);
    assert_eq!(report.counters["records"], N as u64);
    assert_eq!(report.counters["malformed/invalid_time"], refused);
    assert_eq!(report.counters["labeled"], N as u64 - refused);
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    assert_eq!(dead.lines().count() as u64, refused);
    assert!(
        dead.contains("is not a date or a time"),
        "the reason names the problem: {dead}"
    );

    // `relearn eval` finds the field (nothing named but the label) and learns the concept.
    let (clean, _) = write_clock_stream(dir.path(), false);
    let report = eval_report(&clean, EVAL_ARGS, &dir.path().join("eval"));
    assert_eq!(
        report["time"],
        serde_json::json!([{"field": "when", "parts": ["day", "week", "year"]}])
    );
    assert_eq!(report["features"], serde_json::json!(["noise"]));
    let accuracy = |strategy: &str| accuracy(&report, strategy);
    // 50 working hours of 168: the majority (`no`) is right 70% of the time.
    assert!(accuracy("majority") < 0.72, "{report}");
    assert!(accuracy("default") > 0.9, "{report}");
}

/// The served model reads a time field in a predict request as the stream's records: a
/// working hour and a night, a weekday and a weekend, a Unix time as a JSON number; a
/// request without the field is answered, one that is no date is refused with its reason.
#[test]
fn predict_reads_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_clock_stream(dir.path(), false);
    let schema = [
        ("FEATURES", r#"["noise"]"#),
        ("TIME", r#"[{ field = "when" }]"#),
    ];
    let (child, addr) = serve(dir.path(), &path, &schema);
    let class = |when: &str| {
        let body = format!(r#"{{"when": {when}, "noise": 0.5}}"#);
        let (code, p) = common::post_json(&addr, "/v1/predict", None, &body);
        assert_eq!(code, 200, "{body}: {p}");
        p["class"].as_str().unwrap().to_string()
    };
    // 2024-06-05 was a Wednesday, 2024-06-08 a Saturday; 1717583400 is 2024-06-05 10:30 UTC.
    let cases = [
        (r#""2024-06-05 10:30:00""#, "yes"),
        (r#""2024-06-05T14:10:00Z""#, "yes"),
        ("1717583400", "yes"),
        (r#""2024-06-05 22:30""#, "no"),
        (r#""2024-06-08 10:30:00""#, "no"),
        (r#""2024-06-09 14:10:00""#, "no"),
    ];
    let right: Vec<&str> = cases
        .iter()
        .filter(|(when, want)| class(when) == *want)
        .map(|(when, _)| *when)
        .collect();
    assert!(right.len() >= 5, "answered right: {right:?}");
    class("null");
    let (code, e) = common::post_json(
        &addr,
        "/v1/predict",
        None,
        r#"{"when": "2024-02-30 10:00", "noise": 0.5}"#,
    );
    assert_eq!(code, 400, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("invalid_time"), "{e}");
    common::stop_gracefully(child);
}

/// `relearn eval` on `other`, a copy of the CSV stream `csv` in another format: the same
/// schema, scored records and accuracies as the CSV's. Returns `other`'s report.
fn evaluated_as_the_csv(other: &Path, csv: &Path, dir: &Path) -> serde_json::Value {
    let from_csv = eval_report(csv, EVAL_ARGS, &dir.join("eval-csv"));
    let report = eval_report(other, EVAL_ARGS, &dir.join("eval-other"));
    for key in ["features", "categorical", "classes", "task"] {
        assert_eq!(report[key], from_csv[key], "{key}: {report}");
    }
    for strategy in ["default", "majority"] {
        let (o, c) = (eval_row(&report, strategy), eval_row(&from_csv, strategy));
        assert_eq!(o["scored"], c["scored"], "{strategy}");
        assert_eq!(o["accuracy"], c["accuracy"], "{strategy}: {report}");
    }
    report
}

/// An ARFF file (Weka's and MOA's format) is read as the CSV it holds: the same stream written
/// as ARFF (quoted strings, `?` for the gaps, comments, a nominal class) gives the same
/// schema and the same prequential scores as its CSV, through the daemon's file source.
#[test]
fn an_arff_file_is_read_as_its_csv() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let text = std::fs::read_to_string(&s.path).unwrap();
    let mut arff = String::from(
        "% The records.rs stream as ARFF\n@relation stream\n\n@attribute x numeric\n\
         @attribute 'city' string\n@attribute noise real\n@attribute y {yes,no}\n\n@data\n",
    );
    for (i, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let gap = |v: &str| {
            if v.is_empty() || v == "NA" {
                "?".to_string()
            } else {
                v.to_string()
            }
        };
        let city = if f[1].is_empty() {
            "?".to_string()
        } else if i % 2 == 0 {
            format!("'{}'", f[1])
        } else {
            format!("\"{}\"", f[1])
        };
        arff.push_str(&format!("{}, {city},{},{}\n", gap(f[0]), f[2], f[3]));
        if i % 1_000 == 0 {
            arff.push_str("% a comment between rows\n\n");
        }
    }
    let path = dir.path().join("stream.arff");
    std::fs::write(&path, arff).unwrap();
    let from_arff = evaluated_as_the_csv(&path, &s.path, dir.path());
    assert_eq!(from_arff["categorical"], serde_json::json!(["city"]));
    assert!(accuracy(&from_arff, "default") > 0.85, "{from_arff}");
}

/// JSON lines (numbers, strings, `null`, absent keys) run through `relearn eval` with the
/// daemon's JSON decoder: the same schema and the same prequential scores as the CSV.
#[test]
fn json_lines_are_evaluated_as_their_csv() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let text = std::fs::read_to_string(&s.path).unwrap();
    let mut json = String::new();
    for (i, line) in text.lines().skip(1).enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let x = if f[0].is_empty() || f[0] == "NA" {
            "null".to_string()
        } else {
            f[0].to_string()
        };
        // A missing city: an absent key on even rows, null on odd ones.
        let city = match (f[1].is_empty(), i % 2) {
            (true, 0) => String::new(),
            (true, _) => ", \"city\": null".to_string(),
            (false, _) => format!(", \"city\": \"{}\"", f[1]),
        };
        json.push_str(&format!(
            "{{\"x\": {x}{city}, \"noise\": {}, \"y\": \"{}\"}}\n",
            f[2], f[3]
        ));
    }
    let path = dir.path().join("stream.jsonl");
    std::fs::write(&path, json).unwrap();
    let from_json = evaluated_as_the_csv(&path, &s.path, dir.path());
    assert_eq!(from_json["records"], N, "{from_json}");
}

/// `relearn eval -` reads standard input, gzip-compressed here: the same scores as the file.
#[test]
fn standard_input_is_evaluated_as_its_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let s = write_stream(dir.path());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&std::fs::read(&s.path).unwrap()).unwrap();
    let bytes = gz.finish().unwrap();
    let out = dir.path().join("eval-stdin");
    let mut child = relearn()
        .arg("eval")
        .arg("-")
        .args(EVAL_ARGS)
        .arg("--out")
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run relearn eval");
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let run = child.wait_with_output().expect("relearn eval ends");
    assert!(
        run.status.success(),
        "relearn eval - failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let from_stdin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    let from_file = eval_report(&s.path, EVAL_ARGS, &dir.path().join("eval-file"));
    for key in ["features", "categorical", "classes", "records"] {
        assert_eq!(from_stdin[key], from_file[key], "{key}: {from_stdin}");
    }
    let (i, f) = (
        eval_row(&from_stdin, "default"),
        eval_row(&from_file, "default"),
    );
    assert_eq!(i["accuracy"], f["accuracy"], "{from_stdin}");
}

/// Quoted CSV fields that hold the delimiter or quotes, in the header and in the values
/// (`"city, state"`, `"New York, NY"`, `"Paris, ""FR"""`): the file source splits the header
/// as the inference does, and the string field carries the concept.
#[test]
fn quoted_fields_with_commas_are_one_field() {
    let dir = tempfile::tempdir().unwrap();
    let cities = [
        "\"New York, NY\"",
        "\"Austin, TX\"",
        "Boston",
        "\"Paris, \"\"FR\"\"\"",
    ];
    let mut g = Gen(11);
    let mut text = String::from("x,\"city, state\",y\n");
    for _ in 0..2_000 {
        let c = (g.next() % 4) as usize;
        let yes = (c % 2 == 0) != (g.unit() < 0.05);
        let y = if yes { "yes" } else { "no" };
        text.push_str(&format!("{:.4},{},{y}\n", g.unit(), cities[c]));
    }
    let path = dir.path().join("quoted.csv");
    std::fs::write(&path, text).unwrap();
    let report = eval_report(&path, EVAL_ARGS, &dir.path().join("eval"));
    assert_eq!(report["categorical"], serde_json::json!(["city, state"]));
    assert_eq!(report["records"], 2_000, "{report}");
    // Bayes accuracy 0.95 from the city alone; the majority class is about half.
    assert!(accuracy(&report, "default") > 0.85, "{report}");
    assert!(accuracy(&report, "majority") < 0.6, "{report}");
}

/// `relearn eval --strategies no-change,majority` alone reads and scores the stream (the
/// baselines have no run of their own): labels in runs of ten, so the previous label is
/// wrong only at the start of each run, and `a` and `b` take turns, so the majority is right
/// about half the time.
#[test]
fn baselines_alone_score_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runs.csv");
    let mut g = Gen(3);
    let mut out = String::from("x,y\n");
    for i in 0..2_000 {
        let y = if (i / 10) % 2 == 0 { "a" } else { "b" };
        out.push_str(&format!("{:.4},{y}\n", g.unit()));
    }
    std::fs::write(&path, out).unwrap();
    let args = ["--label", "y", "--strategies", "no-change,majority"];
    let report = eval_report(&path, &args, &dir.path().join("eval"));
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "only the two baselines: {report}");
    let nochange = eval_row(&report, "no-change");
    let scored = nochange["scored"].as_u64().expect("scored");
    assert!(scored >= 1_900, "the stream was scored: {report}");
    // One miss in ten (at each run's first record), give or take the first record scored.
    let acc = accuracy(&report, "no-change");
    assert!((acc - 0.9).abs() < 0.002, "no-change {acc}: {report}");
    let majority = accuracy(&report, "majority");
    assert!(
        (0.4..0.6).contains(&majority),
        "majority {majority}: {report}"
    );
}
