//! `relearn-bench` on a small slice of every scenario (the embedded digits), so the command
//! cannot rot: the report has every strategy, a full accuracy matrix, metrics that follow their
//! definitions, costs that order as expected, and the files (markdown, JSON, PNG plots) are
//! written. The Elec2 scenario runs whole (45,312 records per strategy, about 20 s). A
//! `relearn eval` report is plotted too.

use std::process::Command;

use relearn::learn::BackendKind;
use relearn_bench::bench::{run, BenchOptions, Scenario, Source};

fn small(scenario: Scenario) -> BenchOptions {
    BenchOptions {
        scenario,
        source: Source::Digits,
        tasks: 3,
        hidden: vec![32, 32],
        epochs: 5,
        ..BenchOptions::default()
    }
}

#[test]
fn every_scenario_runs_on_a_small_slice() {
    for scenario in [
        Scenario::RotatedMnist,
        Scenario::PermutedMnist,
        Scenario::SplitMnist,
        Scenario::RemappedMnist,
    ] {
        let opts = small(scenario);
        let mut steps = 0;
        let report = run(&opts, BackendKind::from_env(), |_| steps += 1).unwrap();
        assert_eq!(steps, 1 + 6 * 2, "{scenario:?}: one progress line per step");
        let names: Vec<&str> = report.results.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(
            names,
            [
                "none",
                "full",
                "partial",
                "partial+ewc",
                "partial+ewc+replay",
                "full+ewc+replay"
            ]
        );
        for r in &report.results {
            assert_eq!(r.matrix.len(), 3);
            assert!(r.matrix.iter().all(|row| row.len() == 3));
            assert!(r.matrix.iter().flatten().all(|a| (0.0..=1.0).contains(a)));
            let last = &r.matrix[2];
            assert!((r.acc - last.iter().sum::<f64>() / 3.0).abs() < 1e-12);
            // The best earlier accuracy is at least the just-learned one.
            assert!(r.forgetting >= -r.bwt - 1e-12, "{r:?}");
        }
        let by = |n: &str| report.results.iter().find(|r| r.strategy == n).unwrap();
        assert_eq!(by("none").flops, 0.0);
        assert_eq!(by("full").cost_ratio, 1.0);
        assert!(by("partial").flops <= by("full").flops, "{scenario:?}");
        assert!(
            by("full+ewc+replay").flops > by("full").flops,
            "replay adds examples"
        );
        // Learning the new task works at all: retrained strategies beat no retraining on it.
        assert!(
            by("full").new_task_acc > by("none").new_task_acc,
            "{scenario:?}: {} vs {}",
            by("full").new_task_acc,
            by("none").new_task_acc
        );
    }
}

/// A cost budget holds partial retraining to its share of a full retrain's FLOPs, task by task.
#[test]
fn a_cost_budget_holds_partial_retraining_to_it() {
    for scenario in [Scenario::RotatedMnist, Scenario::SplitMnist] {
        let opts = BenchOptions {
            max_cost: vec![0.3],
            strategies: vec!["full".into(), "partial".into()],
            ..small(scenario)
        };
        let report = run(&opts, BackendKind::from_env(), |_| {}).unwrap();
        let names: Vec<&str> = report.results.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(names, ["full", "partial"], "only the strategies asked for");
        let partial = &report.results[1];
        assert!(partial.cost_ratio > 0.0, "{partial:?}");
        assert!(
            partial.cost_ratio <= 0.3 + 1e-9,
            "{scenario:?}: {}",
            partial.cost_ratio
        );
        // Within 0.3 of a full retrain, only the top layers fit: never the first layer.
        assert!(
            partial.layers.iter().flatten().all(|l| l != "hidden.0"),
            "{:?}",
            partial.layers
        );
    }
    let bad = BenchOptions {
        strategies: vec!["partial+magic".into()],
        ..small(Scenario::SplitMnist)
    };
    let err = run(&bad, BackendKind::from_env(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("unknown strategy `partial+magic`"),
        "{err}"
    );
    let bad = BenchOptions {
        max_cost: vec![0.5, 0.0],
        ..small(Scenario::SplitMnist)
    };
    let err = run(&bad, BackendKind::from_env(), |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("max_cost must be in (0, 1]"),
        "{err}"
    );
}

/// Several budgets run each partial strategy once per budget: a frontier, with each layer's
/// estimated cost alone in the report.
#[test]
fn several_budgets_trace_a_cost_frontier() {
    let opts = BenchOptions {
        max_cost: vec![0.3, 1.0],
        strategies: vec!["full".into(), "partial".into()],
        ..small(Scenario::RotatedMnist)
    };
    let mut lines = Vec::new();
    let report = run(&opts, BackendKind::from_env(), |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    let names: Vec<&str> = report.results.iter().map(|r| r.strategy.as_str()).collect();
    assert_eq!(names, ["full", "partial@0.3", "partial@1"]);
    assert!(
        lines.iter().any(|l| l.starts_with("partial@0.3: task 1")),
        "{lines:?}"
    );
    let (tight, open) = (&report.results[1], &report.results[2]);
    assert!(
        tight.cost_ratio > 0.0 && tight.cost_ratio <= 0.3 + 1e-9,
        "{tight:?}"
    );
    assert!(open.cost_ratio >= tight.cost_ratio, "{open:?}");
    assert!(
        report.results[0].layer_costs.is_empty(),
        "full does not choose"
    );
    // Each layer's cost alone: the first layer costs most, the head least.
    let cost = |l: &str| {
        tight
            .layer_costs
            .iter()
            .find(|(n, _)| n == l)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no cost for {l}: {:?}", tight.layer_costs))
    };
    assert!(
        cost("hidden.0") > cost("hidden.1"),
        "{:?}",
        tight.layer_costs
    );
    assert!(cost("hidden.1") > cost("head"), "{:?}", tight.layer_costs);
    assert!(cost("hidden.0") < 1.0, "{:?}", tight.layer_costs);
    let md = relearn_bench::bench::markdown(&report);
    assert!(md.contains("partial max_cost 0.3, 1,"), "{md}");
    assert!(
        md.contains("Estimated cost of training one layer alone"),
        "{md}"
    );
    // A report with a single number for max_cost (older reports) still reads back.
    let mut json = serde_json::to_value(&report).unwrap();
    json["options"]["max_cost"] = serde_json::json!(0.5);
    let back: relearn_bench::bench::BenchReport = serde_json::from_value(json).unwrap();
    assert_eq!(back.options.max_cost, vec![0.5]);
}

/// The Elec2 scenario runs the daemon's own path once per strategy and plots the stream.
#[test]
fn elec2_scenario_compares_strategies_on_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let results = relearn_bench::bench::elec2(&BenchOptions::default(), |_| {}).unwrap();
    assert_eq!(results.len(), 6);
    let by = |n: &str| results.iter().find(|r| r.strategy == n).unwrap();
    assert_eq!(by("none").promoted, 1, "only the first model");
    assert!(by("full").promoted > 1);
    assert!(
        by("partial").prequential > by("none").prequential,
        "retraining beats keeping the first model: {} vs {}",
        by("partial").prequential,
        by("none").prequential
    );
    assert!(results.iter().all(|r| r.over_time.len() >= 10));
    relearn_bench::output::write_elec2(&results, dir.path()).unwrap();
    let png = std::fs::read(dir.path().join("bench-elec2.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[test]
fn the_command_writes_markdown_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relearn-bench"))
        .args([
            "split-mnist",
            "--tasks",
            "2",
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| partial+ewc+replay |"), "{stdout}");
    let md = std::fs::read_to_string(dir.path().join("bench-split-mnist.md")).unwrap();
    assert_eq!(md, stdout);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("bench-split-mnist.json")).unwrap())
            .unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), 6);
    for plot in ["acc", "matrix", "cost", "frontier"] {
        let png = std::fs::read(dir.path().join(format!("bench-split-mnist-{plot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{plot} is a PNG");
        assert!(png.len() > 10_000, "{plot} has content");
    }
    // `relearn-bench plot` redraws the plots from the JSON report alone.
    let matrix = dir.path().join("bench-split-mnist-matrix.png");
    std::fs::remove_file(&matrix).unwrap();
    let replot = Command::new(env!("CARGO_BIN_EXE_relearn-bench"))
        .arg("plot")
        .arg(dir.path().join("bench-split-mnist.json"))
        .output()
        .unwrap();
    assert!(
        replot.status.success(),
        "{}",
        String::from_utf8_lossy(&replot.stderr)
    );
    assert!(std::fs::read(&matrix).unwrap().starts_with(b"\x89PNG"));
    let not_a_report = Command::new(env!("CARGO_BIN_EXE_relearn-bench"))
        .arg("plot")
        .arg(dir.path().join("bench-split-mnist.md"))
        .output()
        .unwrap();
    assert!(!not_a_report.status.success());
    assert!(String::from_utf8_lossy(&not_a_report.stderr).contains("is not a relearn-bench report"));
    let bad = Command::new(env!("CARGO_BIN_EXE_relearn-bench"))
        .args(["split-mnist", "--tasks", "7"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("at most 5 tasks"));
}

/// `relearn-bench plot eval.json` draws a `relearn eval` report's scores over the stream.
#[test]
fn an_eval_report_is_plotted_over_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elec2.csv.gz");
    std::fs::write(&file, relearn::ingest::file::EMBEDDED_ELEC2).unwrap();
    let mut config = relearn::config::Config::default();
    relearn::eval::infer_schema(&mut config, &file, None).unwrap();
    use relearn::eval::Strategy;
    let report = relearn::eval::run(
        &config,
        &file,
        &[Strategy::None, Strategy::NoChange],
        |_| {},
    )
    .unwrap();
    let curve = report.rows[0].curve.as_ref().expect("the run's curve");
    assert_eq!(curve.points.last().unwrap().records, 45_312);
    assert!(curve.points.len() > 100, "{} points", curve.points.len());
    assert!(report.rows[1].curve.is_none(), "no curve for a baseline");
    let (_, json) = relearn::eval::write(&report, dir.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relearn-bench"))
        .arg("plot")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(dir.path().join("eval.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}

/// `relearn-bench plot soak.csv` draws `scripts/soak.sh`'s samples, one panel per measure,
/// and names the line of a malformed file.
#[test]
fn a_soak_sample_file_is_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("soak.csv");
    let mut text = String::from("seconds,rss_mb,open_fds,predict_p99_ms\n");
    for i in 1..=30 {
        text.push_str(&format!("{},{},{},{}\n", i * 10, 40 + i % 3, 57, 0.4));
    }
    std::fs::write(&csv, &text).unwrap();
    let pngs = relearn_bench::output::replot(&csv).unwrap();
    assert_eq!(pngs, vec![dir.path().join("soak.png")]);
    let png = std::fs::read(&pngs[0]).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    std::fs::write(&csv, "seconds,rss_mb\n10,40\n20,x\n").unwrap();
    let err = relearn_bench::output::replot(&csv).unwrap_err().to_string();
    assert!(err.contains("line 3"), "{err}");
}

/// A concept drift at the output (the labels move, the inputs do not): auto selection trains
/// the head alone, for a fraction of a full retrain, and learns the new concept.
#[test]
fn a_concept_drift_at_the_output_retrains_the_head_alone() {
    let opts = BenchOptions {
        strategies: vec!["none".into(), "full".into(), "partial".into()],
        // 5 epochs of about 1,100 images are few steps: at this rate a head moves far enough.
        learning_rate: 0.01,
        ..small(Scenario::RemappedMnist)
    };
    let report = run(&opts, BackendKind::from_env(), |_| {}).unwrap();
    let by = |n: &str| report.results.iter().find(|r| r.strategy == n).unwrap();
    let (none, full, partial) = (by("none"), by("full"), by("partial"));
    assert_eq!(partial.layers, vec![vec!["head".to_string()]; 2]);
    assert!(partial.cost_ratio < 0.25, "{}", partial.cost_ratio);
    assert!(
        none.new_task_acc < 0.3 && partial.new_task_acc > 0.8,
        "none {} partial {} full {}",
        none.new_task_acc,
        partial.new_task_acc,
        full.new_task_acc
    );
}
