//! Property tests (proptest, stable Rust): the decoder on arbitrary bytes and on arbitrary JSON
//! objects, for CSV and JSON schemas with every option (categorical fields, time fields, each
//! missing policy, tokens, delimiters, size limits), the time parser on arbitrary text, and
//! the config loader with arbitrary environment overrides. They never panic; a refusal always
//! carries one of the stable reasons; a decoded record always has the decoder's width, finite
//! values (NaN only for an imputed gap or an absent part of a time), at most one input set per
//! categorical block and per weekday block; a parsed time is a real date and clock. `cargo test` runs a short pass (256 cases
//! each); `scripts/fuzz.sh` runs each for minutes (`PROPTEST_CASES`).

use proptest::prelude::*;
use relearn::config::{Config, Format, MissingPolicy, SchemaConfig};
use relearn::ingest::decode::decoded_width;
use relearn::ingest::time::TimeField;
use relearn::ingest::{Decoder, Reason};

fn schema_strategy() -> impl Strategy<Value = SchemaConfig> {
    (
        prop_oneof![Just(Format::Csv), Just(Format::Json)],
        prop_oneof![
            Just(MissingPolicy::Impute),
            Just(MissingPolicy::Indicate),
            Just(MissingPolicy::Reject)
        ],
        prop_oneof![Just(","), Just(";"), Just("\t")],
        1usize..6,
        any::<bool>(),
        16usize..512,
        any::<bool>(),
    )
        .prop_map(
            |(format, missing, delimiter, buckets, with_city, max, with_time)| {
                let mut s = SchemaConfig {
                    format,
                    features: vec!["a".into(), "b".into()],
                    label: Some("y".into()),
                    classes: vec!["no".into(), "yes".into()],
                    delimiter: delimiter.into(),
                    missing,
                    categorical_buckets: buckets,
                    max_record_bytes: max,
                    ..SchemaConfig::default()
                };
                if with_city {
                    s.categorical = vec!["city".into()];
                }
                if with_time {
                    s.time = vec![TimeField::new("when")];
                }
                s
            },
        )
}

/// The invariants of one decode.
fn check(d: &Decoder, s: &SchemaConfig, payload: &[u8]) -> Result<(), TestCaseError> {
    match d.decode(payload) {
        Ok(r) => {
            prop_assert_eq!(r.features.len(), d.width());
            prop_assert_eq!(r.features.len(), decoded_width(s));
            let n = s.features.len();
            let time_start = decoded_width(s) - s.time.iter().map(TimeField::width).sum::<usize>();
            for (i, v) in r.features.iter().enumerate() {
                if i >= time_start {
                    prop_assert!(
                        v.is_nan() || (-1.0..=1.0).contains(v),
                        "time input {} is {}",
                        i,
                        v
                    );
                } else if i < n && v.is_nan() {
                    prop_assert!(s.missing != MissingPolicy::Reject, "NaN under reject");
                } else {
                    prop_assert!(v.is_finite(), "input {} is {}", i, v);
                }
            }
            for k in 0..s.categorical.len() {
                let start = n + k * s.categorical_buckets;
                let block = &r.features[start..start + s.categorical_buckets];
                prop_assert!(block.iter().all(|&v| v == 0.0 || v == 1.0));
                prop_assert!(block.iter().filter(|&&v| v == 1.0).count() <= 1);
            }
            if !s.time.is_empty() {
                // day (2), week (7), year (2)
                let week = &r.features[time_start + 2..time_start + 9];
                prop_assert!(week.iter().all(|&v| v == 0.0 || v == 1.0));
                prop_assert!(week.iter().filter(|&&v| v == 1.0).count() <= 1);
            }
            if let Some(l) = r.label {
                prop_assert!(l.class().is_some_and(|c| (c as usize) < s.classes.len()));
            }
        }
        Err(e) => {
            prop_assert!(Reason::ALL.contains(&e.reason));
            prop_assert!(!e.detail.is_empty());
            if payload.len() > s.max_record_bytes {
                prop_assert_eq!(e.reason, Reason::TooLarge);
            }
        }
    }
    Ok(())
}

/// A JSON value of any kind, shallow.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{json, Value};
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>().prop_map(|x| json!(x)),
        any::<i64>().prop_map(|x| json!(x)),
        prop_oneof![
            Just("NA".to_string()),
            Just(String::new()),
            Just("?".to_string()),
            Just("1e39".to_string()),
            Just("no".to_string()),
            Just("yes".to_string()),
            "[ -~]{0,12}",
            "\\PC{0,6}",
        ]
        .prop_map(Value::String),
        prop::collection::vec(any::<i32>(), 0..3).prop_map(|v| json!(v)),
        Just(json!({"nested": 1})),
    ]
}

/// 256 cases, or `PROPTEST_CASES` (scripts/fuzz.sh).
fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig::with_cases(n)
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        s in schema_strategy(),
        payload in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let d = Decoder::new(&s).expect("a decoder for a valid schema");
        check(&d, &s, &payload)?;
    }

    #[test]
    fn decoding_csv_like_lines_never_panics(
        s in schema_strategy(),
        fields in prop::collection::vec(
            prop_oneof![
                Just(String::new()),
                Just("NA".to_string()),
                Just("\"q,\"\"uoted\"".to_string()),
                Just("yes".to_string()),
                Just("2013-01-01 09:00:00".to_string()),
                "[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}( [0-9]{1,2}:[0-9]{1,2})?",
                "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
                "[ -~]{0,8}",
            ],
            0..6,
        ),
    ) {
        let d = Decoder::new(&s).expect("a decoder for a valid schema");
        let line = fields.join(&s.delimiter);
        check(&d, &s, line.as_bytes())?;
    }

    #[test]
    fn parsing_arbitrary_times_never_panics(
        text in prop_oneof![
            "\\PC{0,30}",
            "[0-9]{1,4}[-/.][0-9]{1,2}([-/.][0-9]{1,4})?([ T][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\\.[0-9]{0,4})?)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
        ],
    ) {
        if let Some(t) = relearn::ingest::time::parse(&text) {
            prop_assert!(t.date.is_some() || t.hours.is_some());
            if let Some(h) = t.hours {
                prop_assert!((0.0..24.0).contains(&h), "{} hours from {:?}", h, text);
            }
            if let Some((_, m, d)) = t.date {
                prop_assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{:?}", text);
                prop_assert!(t.weekday().is_some_and(|w| w < 7));
                prop_assert!(t.year_fraction().is_some_and(|f| (0.0..1.01).contains(&f)));
            }
        }
    }

    #[test]
    fn decoding_arbitrary_json_objects_never_panics(
        s in schema_strategy(),
        a in json_value(),
        b in json_value(),
        city in json_value(),
        when in json_value(),
        y in json_value(),
        drop in prop::collection::vec(any::<bool>(), 5),
    ) {
        let mut o = serde_json::Map::new();
        let fields = [("a", a), ("b", b), ("city", city), ("when", when), ("y", y)];
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if !drop[i] {
                o.insert(k.to_string(), v);
            }
        }
        let json_schema = SchemaConfig { format: Format::Json, ..s };
        let d = Decoder::new(&json_schema).expect("a decoder for a valid schema");
        check(&d, &json_schema, serde_json::Value::Object(o).to_string().as_bytes())?;
    }

    #[test]
    fn config_with_arbitrary_env_overrides_never_panics(
        overrides in prop::collection::vec(
            (
                prop_oneof![
                    Just("RELEARN__SCHEMA__CATEGORICAL"),
                    Just("RELEARN__SCHEMA__CATEGORICAL_BUCKETS"),
                    Just("RELEARN__SCHEMA__MISSING"),
                    Just("RELEARN__SCHEMA__FEATURES"),
                    Just("RELEARN__SHUTDOWN__GRACE_SECONDS"),
                    Just("RELEARN__REPLAY__CAPACITY"),
                    Just("RELEARN__CHALLENGER__SIGNIFICANCE"),
                    Just("RELEARN__MODEL__HIDDEN"),
                    Just("RELEARN__NOPE__KEY"),
                    Just("RELEARN__SCHEMA"),
                ],
                prop_oneof![
                    Just("[\"day\"]".to_string()),
                    Just("0".to_string()),
                    Just("-1".to_string()),
                    Just("impute".to_string()),
                    Just("drop".to_string()),
                    Just("[]".to_string()),
                    Just("1e400".to_string()),
                    "[ -~]{0,12}",
                ],
            ),
            0..4,
        ),
    ) {
        let env = overrides.iter().map(|(k, v)| (k.to_string(), v.clone()));
        match Config::from_toml_with_env("", env) {
            Ok(c) => prop_assert!(c.validate().is_ok(), "loaded configs are validated"),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
