//! The `/v1` API against the running daemon binary (embedded Elec2 stream, real RocksDB):
//! predict (one record, a batch, bad input), status, versions and their weights, admin
//! endpoints refusing a missing or wrong token, activation (rollback) while predictions keep
//! succeeding, a manual retrain of named layers, and the OpenAPI document.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const TOKEN: &str = "test-admin-token-7f3a";
const RECORD: &str = r#"{"day": 2, "period": 0.5, "nswprice": 0.05, "nswdemand": 0.4, "vicprice": 0.003, "vicdemand": 0.4, "transfer": 0.4}"#;

#[test]
fn api_predicts_reports_and_guards_admin_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("daemon.log");
    let child = Command::new(env!("CARGO_BIN_EXE_relearn"))
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.path().join("store"))
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("start the relearn binary");
    let status = wait_for(Duration::from_secs(120), || {
        let (code, s) = try_get_json(&addr, "/v1/status")?;
        (code == 200 && s["records"] == 45_312 && s["serving_version"].as_u64()? >= 2).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the daemon did not finish Elec2; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let latest = status["serving_version"].as_u64().unwrap();
    assert!(status["last_retrain"]["outcome"].is_string(), "{status}");
    assert!(
        status["detectors"]["adwin"]["threshold"].is_number(),
        "{status}"
    );
    assert_eq!(status["replay_records"], 10_000);
    // Output tracking is on by default: the offset that serves, one per class.
    let tracking = &status["output_tracking"];
    assert!(tracking["rate"].as_f64().is_some(), "{status}");
    assert_eq!(
        tracking["offsets"].as_array().map(Vec::len),
        Some(2),
        "{status}"
    );

    // Predict: one record, a batch mixing an object and a CSV line.
    let (code, p) = post_json(&addr, "/v1/predict", None, RECORD);
    assert_eq!(code, 200, "{p}");
    assert!(p["class"] == "UP" || p["class"] == "DOWN", "{p}");
    assert_eq!(p["version"], latest);
    let sum: f64 = ["UP", "DOWN"]
        .iter()
        .map(|c| p["probabilities"][c].as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-4, "{p}");
    let batch = format!(r#"[{RECORD}, "2,0.5,0.05,0.4,0.003,0.4,0.4,"]"#);
    let (code, p) = post_json(&addr, "/v1/predict", None, &batch);
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["predictions"].as_array().unwrap().len(), 2);
    assert_eq!(
        p["predictions"][0]["class"], p["predictions"][1]["class"],
        "same record, same answer"
    );
    // One record runs on the tokio worker that read it, a batch of 1,000 (about 4e7 FLOPs)
    // on the blocking pool: the same record gets the same probabilities either way.
    let (_, one) = post_json(&addr, "/v1/predict", None, RECORD);
    let many = format!("[{}]", vec![RECORD; 1_000].join(","));
    let (code, p) = post_json(&addr, "/v1/predict", None, &many);
    assert_eq!(code, 200, "{p}");
    let answers = p["predictions"].as_array().unwrap();
    assert_eq!(answers.len(), 1_000);
    for answer in [&answers[0], &answers[999]] {
        for c in ["UP", "DOWN"] {
            let (a, b) = (
                answer["probabilities"][c].as_f64().unwrap(),
                one["probabilities"][c].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-6, "{c}: batch {a}, alone {b}");
        }
    }

    // Bad input: clear 400s with stable codes.
    let (code, e) = post_json(&addr, "/v1/predict", None, "{not json");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("bad_json")),
        "{e}"
    );
    let (code, e) = post_json(&addr, "/v1/predict", None, r#"{"day": "x"}"#);
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("bad_record")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("record 0"),
        "{e}"
    );
    // Shadow traffic: the challenger answers when asked, naming itself; a bad role is refused.
    let (code, p) = post_json(&addr, "/v1/predict?model=challenger", None, RECORD);
    assert_eq!(code, 200, "{p}");
    assert_eq!(p["model"], "challenger", "{p}");
    assert!(p["class"] == "UP" || p["class"] == "DOWN", "{p}");
    let (code, e) = post_json(&addr, "/v1/predict?model=oracle", None, RECORD);
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("bad_query")),
        "{e}"
    );
    let (code, e) = post_json(&addr, "/v1/predict", None, "[]");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("empty_batch")),
        "{e}"
    );

    // Versions, metadata, weights.
    let (code, m) = get_json(&addr, "/v1/models");
    assert_eq!(code, 200);
    assert_eq!(m["active"], latest);
    // Retention (models.keep_last = 50): the last 50 and the first (pinned) version are
    // listed, and every listed version exists; a pruned one answers 404.
    let listed: Vec<u64> = m["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = (latest.saturating_sub(49).max(1)..=latest).collect();
    if expected[0] != 1 {
        expected.insert(0, 1);
    }
    assert_eq!(listed, expected);
    for v in &listed {
        assert_eq!(
            get_json(&addr, &format!("/v1/models/{v}")).0,
            200,
            "version {v}"
        );
    }
    if latest > 51 {
        let (code, _) = get_json(&addr, &format!("/v1/models/{}", latest - 50));
        assert_eq!(code, 404, "a pruned version is gone");
    }
    let (code, v1) = get_json(&addr, "/v1/models/1");
    assert_eq!(code, 200);
    assert_eq!(v1["metadata"]["trigger"], "bootstrap");
    assert!(
        v1["metadata"]["validation"]["new_candidate"].is_number(),
        "{v1}"
    );
    assert!(v1["metadata"]["cost"]["flops"].is_number(), "{v1}");
    // A version's own answer has its drift reference; the listing leaves it out.
    assert!(v1["metadata"]["reference"].is_object(), "{v1}");
    assert!(
        m["versions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["metadata"]["trigger"].is_string() && v["metadata"]["reference"].is_null()),
        "{m}"
    );
    let (code, e) = get_json(&addr, "/v1/models/999");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (404, Some("no_such_version"))
    );
    let (code, w) = http_request(&addr, "GET", "/v1/models/1/weights", &[], b"").unwrap();
    assert_eq!(code, 200);
    let n = u64::from_le_bytes(w[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&w[8..8 + n]).unwrap();
    assert_eq!(
        header["head.weight"]["shape"],
        serde_json::json!([2, 64]),
        "PyTorch layout"
    );

    // Admin endpoints refuse a missing or a wrong token.
    let (code, e) = post_json(&addr, "/v1/models/1/activate", None, "");
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (code, _) = post_json(&addr, "/v1/models/1/activate", Some("wrong"), "");
    assert_eq!(code, 401);
    let (code, _) = post_json(&addr, "/v1/retrain", Some("test-admin-token-7f3b"), "");
    assert_eq!(code, 401);

    // Rollback and roll forward while predictions keep coming: none fails.
    let hammer = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut versions = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let (code, p) = post_json(&addr, "/v1/predict", None, RECORD);
                assert_eq!(code, 200, "a prediction failed during swaps: {p}");
                versions.insert(p["version"].as_u64().unwrap());
            }
            versions
        })
    };
    for i in 0..20 {
        let v = if i % 2 == 0 { 1 } else { latest };
        let (code, a) = post_json(&addr, &format!("/v1/models/{v}/activate"), Some(TOKEN), "");
        assert_eq!(code, 200, "{a}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = hammer.join().expect("no failed prediction");
    eprintln!("versions answering during swaps: {seen:?}");
    let (_, m) = get_json(&addr, "/v1/models");
    assert_eq!(m["active"], latest);

    // Roll back to version 1, then a manual retrain of the head only starts from it.
    let (code, _) = post_json(&addr, "/v1/models/1/activate", Some(TOKEN), "");
    assert_eq!(code, 200);
    let (_, p) = post_json(&addr, "/v1/predict", None, RECORD);
    assert_eq!(p["version"], 1);
    let (code, e) = post_json(&addr, "/v1/retrain", Some(TOKEN), r#"{"layers": ["neck"]}"#);
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("unknown_layer")),
        "{e}"
    );
    let (code, r) = post_json(&addr, "/v1/retrain", Some(TOKEN), r#"{"layers": ["head"]}"#);
    assert_eq!(code, 202, "{r}");
    let last = wait_for(Duration::from_secs(60), || {
        let (_, s) = get_json(&addr, "/v1/status");
        (s["last_retrain"]["trigger"] == "manual").then(|| s["last_retrain"].clone())
    })
    .unwrap_or_else(|| {
        panic!(
            "the manual retrain did not run; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    eprintln!("manual retrain: {last}");
    assert_eq!(last["layers"], serde_json::json!(["head"]));
    assert_eq!(last["parent"], 1);
    assert!(last["outcome"] == "promoted" || last["outcome"] == "rejected");

    let (code, doc) = get_json(&addr, "/openapi.json");
    assert_eq!(code, 200);
    for path in [
        "/v1/predict",
        "/v1/status",
        "/v1/models/{version}/activate",
        "/v1/retrain",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let (_, metrics) = http_get(&addr, "/metrics").unwrap();
    assert!(metric(&metrics, "relearn_serve_predictions_total").unwrap() >= 400.0);
    assert!(metric_with(&metrics, "relearn_serve_requests_total", "code", "401").unwrap() >= 3.0);
    stop_gracefully(child);
}

/// `/v1/predict` serves the champion's output with the loop's tracking offset applied, and
/// the challenger's with its own: the router in-process, a model with known probabilities,
/// offsets set on the handle (the challenger's a linear correction), the expected
/// probabilities computed here from the softmax formula (p_j e^{a_j} / sum_k p_k e^{a_k}).
#[test]
fn predict_applies_the_tracking_offset_of_the_model_that_answers() {
    use std::sync::Arc;

    use relearn::config::Config;
    use relearn::learn::tracking::Shift;
    use relearn::learn::{BackendKind, Model, ModelSpec, Normalizer};
    use relearn::learner::{ChallengerSnapshot, LoopHandle, Serving};
    use relearn::store::versions::VersionRecord;

    let config = Config::default();
    let spec = ModelSpec::classifier(config.input_width(), vec![8], 2);
    let model = Model::new(
        spec,
        Normalizer::identity(config.input_width()),
        BackendKind::Flex,
        3,
    )
    .unwrap();
    let x = [2.0f32, 0.5, 0.05, 0.4, 0.003, 0.4, 0.4];
    let raw = model.predict_proba(&x).unwrap();
    let handle = LoopHandle::default();
    handle.swap(Serving {
        version: 7,
        model: model.clone(),
        ewc: None,
        reference: Default::default(),
        record: VersionRecord {
            version: 7,
            created_ms: 0,
            parent: None,
            checkpoint_bytes: 0,
            metadata: serde_json::from_value(serde_json::json!({
                "retrain": 1, "trigger": "bootstrap", "reason": "test", "outcome": "promoted",
                "records_total": 0
            }))
            .unwrap(),
        },
    });
    *handle.shift.write().unwrap() = Some(Shift {
        offsets: vec![-1.0, 1.0],
        weights: Vec::new(),
        mean: Vec::new(),
        std: Vec::new(),
        persist: None,
    });
    // The challenger's is a linear correction on the first input alone (sd 0 leaves the
    // others out): x[0] = 2.0 standardises to (2.0 - 1.0) / 0.5 = 2, so the adjustments are
    // 2 + 0.5 * 2 = 3 and -2 - 0.5 * 2 = -3.
    let d = config.input_width();
    let mut weights = vec![0.0f32; 2 * d];
    weights[0] = 0.5;
    weights[d] = -0.5;
    let (mut mean, mut std) = (vec![0.0f32; d], vec![0.0f32; d]);
    mean[0] = 1.0;
    std[0] = 0.5;
    *handle.challenger.write().unwrap() = Some(Arc::new(ChallengerSnapshot {
        model,
        parent: Some(7),
        shift: Some(Shift {
            offsets: vec![2.0, -2.0],
            weights,
            mean,
            std,
            persist: None,
        }),
        weight: 0.25,
    }));
    let expected = |b: [f32; 2]| {
        let w = [raw[0] * b[0].exp(), raw[1] * b[1].exp()];
        [w[0] / (w[0] + w[1]), w[1] / (w[0] + w[1])]
    };
    // The served answer blends the two as the loop does: a quarter of the challenger's.
    let (champion, challenger) = (expected([-1.0, 1.0]), expected([3.0, -3.0]));
    let served = [
        0.75 * champion[0] + 0.25 * challenger[0],
        0.75 * champion[1] + 0.25 * challenger[1],
    ];
    let metrics = relearn::metrics::Metrics::new();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn relearn::store::KvStore> =
        Arc::new(relearn::store::RocksStore::open(dir.path(), false).unwrap());
    let api = relearn::serve::api::ApiState::new(
        config.api(),
        store,
        handle.clone(),
        metrics.clone(),
        None,
        None,
    )
    .expect("the predict decoders build from the schema");
    let yes: relearn::serve::Probe = Arc::new(|| true);
    let router = relearn::serve::router(metrics, yes.clone(), yes, Some(api));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shutdown = tokio_util::sync::CancellationToken::new();
    runtime.spawn(relearn::serve::serve(listener, router, shutdown.clone()));
    for (path, want, weight) in [
        ("/v1/predict", served, Some(0.25)),
        ("/v1/predict?model=served", served, Some(0.25)),
        ("/v1/predict?model=champion", champion, None),
        ("/v1/predict?model=challenger", challenger, None),
    ] {
        let (code, p) = post_json(&addr, path, None, RECORD);
        assert_eq!(code, 200, "{p}");
        assert_eq!(p["challenger_weight"].as_f64(), weight, "{path}: {p}");
        let got = [
            p["probabilities"]["DOWN"].as_f64().unwrap() as f32,
            p["probabilities"]["UP"].as_f64().unwrap() as f32,
        ];
        eprintln!("{path}: model {raw:?}, served {got:?}, expected {want:?}");
        assert!(
            (got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5,
            "{path}: served {got:?}, expected {want:?} (model {raw:?})"
        );
        let best = if want[1] > want[0] { "UP" } else { "DOWN" };
        assert_eq!(p["class"], best, "{p}");
        assert!(p.get("neighbours_weight").is_none(), "{path}: {p}");
    }
    // The nearest neighbours vote in a served answer: the record itself, kept with class UP
    // (the one nearest, k = 1), beside another of class DOWN. Their vote is UP 0.975 and
    // DOWN 0.025 (5% spread evenly), weighed at 0.4 against the blend above.
    use relearn::learn::neighbours::{Neighbours, NeighboursConfig};
    use relearn::learner::NeighboursSnapshot;
    let mut nb = Neighbours::new(
        2,
        d,
        &NeighboursConfig {
            window: 10,
            k: 1,
            ..NeighboursConfig::default()
        },
    );
    nb.learn(&x, 1.0);
    nb.learn(&x.map(|v| v + 1.0), 0.0);
    *handle.neighbours.write().unwrap() = Some(Arc::new(NeighboursSnapshot {
        neighbours: nb,
        weight: 0.4,
    }));
    let with_neighbours = [0.6 * served[0] + 0.4 * 0.025, 0.6 * served[1] + 0.4 * 0.975];
    // Each path's answer: its probabilities, its class, `member`'s weight, and no `absent`.
    let answers =
        |cases: [(&str, [f32; 2], Option<f32>); 2], member: &str, absent: Option<&str>| {
            for (path, want, weight) in cases {
                let (code, p) = post_json(&addr, path, None, RECORD);
                assert_eq!(code, 200, "{p}");
                assert_eq!(p[member].as_f64().map(|w| w as f32), weight, "{path}: {p}");
                let got = [
                    p["probabilities"]["DOWN"].as_f64().unwrap() as f32,
                    p["probabilities"]["UP"].as_f64().unwrap() as f32,
                ];
                assert!(
                    (got[0] - want[0]).abs() < 1e-5 && (got[1] - want[1]).abs() < 1e-5,
                    "{path}: served {got:?}, expected {want:?}"
                );
                let best = if want[1] > want[0] { "UP" } else { "DOWN" };
                assert_eq!(p["class"], best, "{p}");
                assert!(absent.is_none_or(|a| p.get(a).is_none()), "{path}: {p}");
            }
        };
    answers(
        [
            ("/v1/predict", with_neighbours, Some(0.4)),
            ("/v1/predict?model=champion", champion, None),
        ],
        "neighbours_weight",
        Some("prior_weight"),
    );
    // Last, the labels' prior: DOWN 0.9, UP 0.1 weighed at 0.5 against all of the above; the
    // champion alone is unchanged.
    use relearn::learner::PriorSnapshot;
    use relearn::record::Output;
    *handle.prior.write().unwrap() = Some(PriorSnapshot {
        output: Output::Class {
            class: 0,
            probabilities: vec![0.9, 0.1],
        },
        weight: 0.5,
        shift: None,
    });
    let with_prior = [
        0.5 * with_neighbours[0] + 0.5 * 0.9,
        0.5 * with_neighbours[1] + 0.5 * 0.1,
    ];
    answers(
        [
            ("/v1/predict", with_prior, Some(0.5)),
            ("/v1/predict?model=champion", champion, None),
        ],
        "prior_weight",
        None,
    );
    // With the prior's own tracking (`prior.tracking`): an offset of ln 9 on UP takes its
    // 0.9 / 0.1 to 0.5 / 0.5 before the blend.
    *handle.prior.write().unwrap() = Some(PriorSnapshot {
        output: Output::Class {
            class: 0,
            probabilities: vec![0.9, 0.1],
        },
        weight: 0.5,
        shift: Some(relearn::learn::tracking::Shift {
            offsets: vec![0.0, 9f32.ln()],
            weights: Vec::new(),
            mean: Vec::new(),
            std: Vec::new(),
            persist: None,
        }),
    });
    let with_tracked_prior = [
        0.5 * with_neighbours[0] + 0.25,
        0.5 * with_neighbours[1] + 0.25,
    ];
    answers(
        [
            ("/v1/predict", with_tracked_prior, Some(0.5)),
            ("/v1/predict?model=champion", champion, None),
        ],
        "prior_weight",
        None,
    );
    shutdown.cancel();
}
