//! The labels' prior in the served output (`[prior]`), through the daemon's own path (file
//! source, pipeline, RocksDB, loop): where the inputs say nothing about the label it takes
//! over the served output, where they decide it its weight stays near zero, and turned off
//! it has none; with its own tracking (`prior.tracking`, on by default) it learns what a
//! logistic regression learns from the inputs.

mod common;

use std::path::{Path, PathBuf};

use common::Gen;
use relearn::config::Config;
use relearn::metrics::Metrics;

const ROWS: usize = 4_000;

/// `dir/name`: a header `a,b,c,y` and ROWS rows of uniform inputs, the label `label(a, u)`
/// with `u` uniform and independent of the inputs.
fn stream(dir: &Path, name: &str, label: impl Fn(f64, f64) -> String) -> PathBuf {
    let mut g = Gen(7);
    let mut text = String::from("a,b,c,y\n");
    for _ in 0..ROWS {
        let (a, b, c, u) = (g.unit(), g.unit(), g.unit(), g.unit());
        text.push_str(&format!("{a:.4},{b:.4},{c:.4},{}\n", label(a, u)));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the stream");
    path
}

/// Runs the defaults (plus `edit`) over `path` to its end, as `relearn eval` does, and
/// returns the prior's weight in the served output at the end and the records scored.
fn prior_weight(path: &Path, edit: impl Fn(&mut Config)) -> (f64, u64) {
    let mut config = Config::default();
    config.schema.label = Some("y".into());
    config.schema.features.clear();
    config.schema.classes.clear();
    config.schema.categorical.clear();
    relearn::eval::infer_schema(&mut config, path, None).expect("schema inferred");
    config.file.path = Some(path.to_path_buf());
    config.file.exit_at_end = true;
    config.kafka.brokers = None;
    config.store.path = None;
    config.http.listen = "127.0.0.1:0".into();
    edit(&mut config);
    let metrics = Metrics::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let summary = runtime
        .block_on(relearn::app::run_with(
            config,
            tokio_util::sync::CancellationToken::new(),
            metrics.clone(),
        ))
        .expect("the run ends at the end of the file");
    let weight = metrics.learn.prior_weight.get();
    eprintln!("{}: prior weight {weight}", path.display());
    (weight, summary.records)
}

#[test]
fn the_prior_serves_where_the_inputs_say_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 80% `p`, whatever the inputs.
    let noise = stream(dir.path(), "noise.csv", |_, u| {
        if u < 0.8 { "p" } else { "q" }.to_string()
    });
    let on = |c: &mut Config| c.prior.blend = Some(0.3);
    let (weight, records) = prior_weight(&noise, on);
    assert_eq!(records, ROWS as u64);
    // It started at 0.01; the networks and the neighbours, fitting noise, do no better.
    // (0.55 when written.)
    assert!(
        weight > 0.25,
        "prior's weight {weight} on labels the inputs do not predict"
    );
    // A numeric target that is noise around 10.
    let values = stream(dir.path(), "values.csv", |_, u| {
        format!("{:.4}", 10.0 + 6.0 * u)
    });
    let (weight, _) = prior_weight(&values, |_| {});
    // (0.52 when written.)
    assert!(
        weight > 0.25,
        "prior's weight {weight} on a target the inputs do not predict"
    );
    // A classifier's default is on; off, or at blend 0, no weight at all.
    let (weight, _) = prior_weight(&noise, |_| {});
    assert!(weight > 0.25, "default prior's weight {weight}");
    let (weight, _) = prior_weight(&noise, |c| {
        on(c);
        c.prior.enabled = false;
    });
    assert_eq!(weight, 0.0);
    let (weight, _) = prior_weight(&noise, |c| c.prior.blend = Some(0.0));
    assert_eq!(weight, 0.0);
    let (weight, _) = prior_weight(&values, |c| c.prior.enabled = false);
    assert_eq!(weight, 0.0);
}

#[test]
fn the_prior_fades_where_the_inputs_decide_the_label() {
    let dir = tempfile::tempdir().expect("temp dir");
    let learnable = stream(dir.path(), "learnable.csv", |a, _| {
        if a < 0.5 { "p" } else { "q" }.to_string()
    });
    // The frequencies alone (`prior.tracking = false`) fade where `a` decides the label.
    let (weight, records) = prior_weight(&learnable, |c| c.prior.tracking = false);
    assert_eq!(records, ROWS as u64);
    assert!(
        weight < 0.05,
        "prior's weight {weight} where `a` decides the label"
    );
    // With its tracking the member is an online logistic regression on the inputs, which
    // learns this boundary as well as the rest, so it keeps a share of the served output.
    let (tracked, _) = prior_weight(&learnable, |_| {});
    assert!(
        tracked > 2.0 * weight && tracked > 0.05,
        "tracked member's weight {tracked}, the frequencies' {weight}"
    );
}
