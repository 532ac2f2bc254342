//! `relearn bench`: the seed's experiment on task sequences built from real data (rotated,
//! permuted, split and remapped MNIST, or the embedded digits), run with the daemon's own
//! retrain code (`retrain::bootstrap`, `retrain::run` with the gate open) for each strategy: no
//! retraining, full, partial (auto layers), partial + EWC, partial + EWC + replay, full + EWC +
//! replay. Reports the accuracy matrix, ACC, BWT, forgetting (Chaudhry et al. 2018), new-task
//! accuracy, training FLOPs, wall time and the cost ratio against full retraining.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use relearn::config::EwcConfig;
use relearn::datasets::{self, permutation, permute, DatasetError};
use relearn::learn::{BackendKind, Dataset, Ewc, LearnError, Model, ModelSpec, TrainConfig};
use relearn::retrain::{self, LayerPolicy, Reference, RetrainConfig, RetrainInput, RetrainMode};
use relearn::rng::Rng;
use tokio_util::sync::CancellationToken;

use crate::datasets::{mnist, relabel, rotate, with_classes};

/// Classes of every scenario's images (digits 0-9).
const CLASSES: usize = 10;

/// A task sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The real Elec2 stream in time order through the daemon's own path; prequential accuracy
    /// over time per strategy.
    Elec2,
    /// Task t: every image rotated by t x `angle_step` degrees (input-level shift).
    RotatedMnist,
    /// Task t: a fixed random pixel permutation (task 0: none), the classic EWC benchmark.
    PermutedMnist,
    /// Task t: only digits 2t and 2t+1 (class-incremental, 5 tasks).
    SplitMnist,
    /// Task t: the same images, labels through a fixed random permutation of the classes (task
    /// 0: none). Concept drift at the output: the inputs do not move, so the features learned
    /// on task 0 still serve and the old tasks' concepts conflict with the new one.
    RemappedMnist,
}

/// Where the images come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// MNIST IDX files in this directory (28x28).
    Mnist(PathBuf),
    /// sklearn's digits, embedded (8x8): small, for tests and quick runs.
    Digits,
}

/// Everything a run depends on (a report read back fills keys it lacks with the defaults).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchOptions {
    pub scenario: Scenario,
    pub source: Source,
    pub tasks: usize,
    /// Training images per task (at most).
    pub train_per_task: usize,
    /// Test images per task (at most).
    pub test_per_task: usize,
    pub hidden: Vec<usize>,
    pub epochs: usize,
    pub learning_rate: f64,
    pub ewc_lambda: f64,
    /// Online EWC decay of the accumulated Fisher (`ewc.gamma`; 1 = keep every task's).
    pub ewc_gamma: f64,
    /// Replayed records kept from earlier tasks (equal share per task).
    pub replay_records: usize,
    pub replay_ratio: f64,
    pub angle_step: f64,
    pub seed: u64,
    /// `retrain.max_cost` of the partial strategies (1 = no limit). Several values run each
    /// partial strategy once per budget (`partial@0.25`, ...): a cost/accuracy frontier. A
    /// report may hold one number here.
    #[serde(deserialize_with = "one_or_many")]
    pub max_cost: Vec<f64>,
    /// Strategy names to run (empty: all six). Cost ratios need `full` among them.
    pub strategies: Vec<String>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::RotatedMnist,
            source: Source::Digits,
            tasks: 5,
            train_per_task: 10_000,
            test_per_task: 2_000,
            hidden: vec![256, 256],
            epochs: 3,
            learning_rate: 1e-3,
            ewc_lambda: 500.0,
            ewc_gamma: 1.0,
            replay_records: 2_000,
            replay_ratio: 0.25,
            angle_step: 30.0,
            seed: 1,
            max_cost: vec![1.0],
            strategies: Vec::new(),
        }
    }
}

/// One strategy of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Strategy {
    pub name: &'static str,
    /// None: no retraining after the first task.
    pub mode: Option<RetrainMode>,
    pub ewc: bool,
    pub replay: bool,
}

/// The six strategies, in report order.
pub const STRATEGIES: [Strategy; 6] = [
    Strategy {
        name: "none",
        mode: None,
        ewc: false,
        replay: false,
    },
    Strategy {
        name: "full",
        mode: Some(RetrainMode::Full),
        ewc: false,
        replay: false,
    },
    Strategy {
        name: "partial",
        mode: Some(RetrainMode::Partial),
        ewc: false,
        replay: false,
    },
    Strategy {
        name: "partial+ewc",
        mode: Some(RetrainMode::Partial),
        ewc: true,
        replay: false,
    },
    Strategy {
        name: "partial+ewc+replay",
        mode: Some(RetrainMode::Partial),
        ewc: true,
        replay: true,
    },
    Strategy {
        name: "full+ewc+replay",
        mode: Some(RetrainMode::Full),
        ewc: true,
        replay: true,
    },
];

/// What one strategy did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategyResult {
    pub strategy: String,
    /// `matrix[i][j]`: accuracy on task j's test set after training on task i.
    pub matrix: Vec<Vec<f64>>,
    /// Mean final accuracy over all tasks.
    pub acc: f64,
    /// Backward transfer: mean over earlier tasks of final minus just-learned accuracy.
    pub bwt: f64,
    /// Chaudhry et al. 2018: mean over earlier tasks of best earlier minus final accuracy.
    pub forgetting: f64,
    /// Mean accuracy on each new task right after training on it (tasks 1..).
    pub new_task_acc: f64,
    /// Layers trained for each new task.
    pub layers: Vec<Vec<String>>,
    /// Training FLOPs (estimated) and wall seconds of the retrains (tasks 1..).
    pub flops: f64,
    pub wall_seconds: f64,
    /// FLOPs over those of the `full` strategy on the same data.
    pub cost_ratio: f64,
    /// Estimated cost of training each layer alone on the first new task, as a fraction of a
    /// full retrain (auto selection only; empty for the others).
    #[serde(default)]
    pub layer_costs: Vec<(String, f64)>,
}

/// A finished run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub options: BenchOptions,
    pub results: Vec<StrategyResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error("{0}")]
    Options(String),
    #[error("strategy {strategy}: {source}")]
    Run {
        strategy: String,
        #[source]
        source: relearn::app::AppError,
    },
}

struct Task {
    train: Dataset,
    test: Dataset,
}

fn base(opts: &BenchOptions) -> Result<(Dataset, Dataset, usize), BenchError> {
    match &opts.source {
        Source::Mnist(dir) => Ok((
            mnist(dir, true, opts.train_per_task)?,
            mnist(dir, false, opts.test_per_task)?,
            28,
        )),
        Source::Digits => {
            let d = datasets::digits()?;
            let mut rng = Rng::seeded(opts.seed);
            let (train, test) = d.split(0.8, &mut rng);
            Ok((train, test, 8))
        }
    }
}

fn tasks(opts: &BenchOptions) -> Result<Vec<Task>, BenchError> {
    let (train, test, side) = base(opts)?;
    let take = |d: &Dataset, n: usize| d.subset(&(0..d.len().min(n)).collect::<Vec<_>>());
    let (train, test) = (
        take(&train, opts.train_per_task),
        take(&test, opts.test_per_task),
    );
    Ok(match opts.scenario {
        Scenario::Elec2 => {
            return Err(BenchError::Options(
                "elec2 is a stream, not a task sequence: see bench::elec2".into(),
            ))
        }
        Scenario::RotatedMnist => (0..opts.tasks)
            .map(|t| {
                let a = t as f64 * opts.angle_step;
                Task {
                    train: rotate(&train, side, a),
                    test: rotate(&test, side, a),
                }
            })
            .collect(),
        Scenario::PermutedMnist => changed_after_first(opts.tasks, &train, &test, |t| {
            let p = permutation(train.width, opts.seed.wrapping_add(t as u64));
            move |d: &Dataset| permute(d, &p)
        }),
        Scenario::SplitMnist => {
            if opts.tasks > 5 {
                return Err(BenchError::Options(
                    "split-mnist has at most 5 tasks (2 digits each)".into(),
                ));
            }
            (0..opts.tasks)
                .map(|t| {
                    let c = [2 * t as u32, 2 * t as u32 + 1];
                    Task {
                        train: with_classes(&train, &c),
                        test: with_classes(&test, &c),
                    }
                })
                .collect()
        }
        Scenario::RemappedMnist => changed_after_first(opts.tasks, &train, &test, |t| {
            let map: Vec<u32> = permutation(CLASSES, opts.seed.wrapping_add(t as u64))
                .into_iter()
                .map(|c| c as u32)
                .collect();
            move |d: &Dataset| relabel(d, &map)
        }),
    })
}

/// Task 0 is `train`/`test` as they are; task t is both changed by the function `change(t)`
/// returns.
fn changed_after_first<F, C>(tasks: usize, train: &Dataset, test: &Dataset, change: C) -> Vec<Task>
where
    C: Fn(usize) -> F,
    F: Fn(&Dataset) -> Dataset,
{
    (0..tasks)
        .map(|t| {
            if t == 0 {
                return Task {
                    train: train.clone(),
                    test: test.clone(),
                };
            }
            let f = change(t);
            Task {
                train: f(train),
                test: f(test),
            }
        })
        .collect()
}

/// A number or a list of numbers.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(f64),
        Many(Vec<f64>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    })
}

fn check_max_cost(budgets: &[f64]) -> Result<(), BenchError> {
    if budgets.is_empty() {
        return Err(BenchError::Options(
            "max_cost needs at least one value".into(),
        ));
    }
    match budgets.iter().find(|&&b| !(b > 0.0 && b <= 1.0)) {
        Some(bad) => Err(BenchError::Options(format!(
            "max_cost must be in (0, 1], got {bad}"
        ))),
        None => Ok(()),
    }
}

/// One strategy at one budget: the partial strategies run once per `max_cost` value when there
/// are several (named `partial@0.25`), the others once.
struct Arm {
    name: String,
    strategy: Strategy,
    max_cost: f64,
}

fn arms(selected: &[Strategy], budgets: &[f64]) -> Vec<Arm> {
    let mut out = Vec::new();
    for &s in selected {
        let budgets = if s.mode == Some(RetrainMode::Partial) {
            budgets
        } else {
            &[1.0]
        };
        out.extend(budgets.iter().map(|&b| Arm {
            name: if budgets.len() > 1 {
                format!("{}@{b}", s.name)
            } else {
                s.name.to_string()
            },
            strategy: s,
            max_cost: b,
        }));
    }
    out
}

/// The strategies named in `names`, in report order (all of them when `names` is empty).
pub fn selected(names: &[String]) -> Result<Vec<Strategy>, BenchError> {
    if let Some(bad) = names
        .iter()
        .find(|n| !STRATEGIES.iter().any(|s| s.name == n.as_str()))
    {
        let known: Vec<&str> = STRATEGIES.iter().map(|s| s.name).collect();
        return Err(BenchError::Options(format!(
            "unknown strategy `{bad}`; expected one of {}",
            known.join(", ")
        )));
    }
    Ok(STRATEGIES
        .into_iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect())
}

/// Equal shares of the earlier tasks' training rows, `total` in all.
fn replay_of(tasks: &[Task], upto: usize, total: usize, rng: &mut Rng) -> Dataset {
    let share = (total / upto.max(1)).max(1);
    let mut out = Dataset {
        x: Vec::new(),
        y: relearn::learn::Targets::Classes(Vec::new()),
        width: tasks[0].train.width,
    };
    for t in &tasks[..upto] {
        let idx = Dataset::shuffled_indices(t.train.len(), rng);
        out.extend(&t.train.subset(&idx[..share.min(idx.len())]));
    }
    out
}

fn summary(matrix: &[Vec<f64>]) -> (f64, f64, f64, f64) {
    let t = matrix.len();
    let last = &matrix[t - 1];
    let acc = last.iter().sum::<f64>() / t as f64;
    if t < 2 {
        return (acc, 0.0, 0.0, matrix[0][0]);
    }
    let earlier = (t - 1) as f64;
    let bwt = (0..t - 1).map(|j| last[j] - matrix[j][j]).sum::<f64>() / earlier;
    let forgetting = (0..t - 1)
        .map(|j| {
            let best = (j..t - 1).map(|l| matrix[l][j]).fold(f64::MIN, f64::max);
            best - last[j]
        })
        .sum::<f64>()
        / earlier;
    let new_task = (1..t).map(|i| matrix[i][i]).sum::<f64>() / earlier;
    (acc, bwt, forgetting, new_task)
}

/// The configs the arms share, from the options.
struct Configs<'a>(&'a BenchOptions);

impl Configs<'_> {
    /// A gate that passes every candidate (the bench measures, it does not select).
    fn gate(&self, mode: RetrainMode, max_cost: f64) -> RetrainConfig {
        RetrainConfig {
            layers: LayerPolicy::Keyword("auto".into()),
            mode,
            max_forgetting: 1.0,
            min_gain: -1.0,
            holdout_fraction: 0.1,
            validation_replay: 500,
            max_cost,
            ..RetrainConfig::default()
        }
    }

    fn train(&self, replay: bool) -> TrainConfig {
        let opts = self.0;
        TrainConfig {
            epochs: opts.epochs,
            batch_size: 64,
            learning_rate: opts.learning_rate,
            replay_ratio: if replay { opts.replay_ratio } else { 0.0 },
            prefix_cache: true,
            seed: opts.seed,
            ..TrainConfig::default()
        }
    }

    fn ewc(&self, on: bool) -> EwcConfig {
        EwcConfig {
            lambda: if on { self.0.ewc_lambda } else { 0.0 },
            gamma: self.0.ewc_gamma,
            fisher_examples: 500,
        }
    }
}

/// The model after task 0, which every arm starts from, and its accuracy on each task.
struct First {
    model: Model,
    ewc: Ewc,
    seen: Dataset,
    row: Vec<f64>,
}

/// A model's accuracy on each task's test set.
fn evaluate(tasks: &[Task], m: &Model) -> Result<Vec<f64>, LearnError> {
    tasks.iter().map(|t| m.accuracy(&t.test)).collect()
}

/// One arm through tasks 1.. from the first model: its accuracy matrix, layers and cost.
fn run_arm(
    arm: Arm,
    tasks: &[Task],
    first: &First,
    c: &Configs<'_>,
    progress: &mut impl FnMut(&str),
) -> Result<StrategyResult, BenchError> {
    let (opts, s) = (c.0, arm.strategy);
    let mut model = first.model.clone();
    let mut ewc: Ewc = first.ewc.clone();
    let mut seen = first.seen.clone();
    let mut matrix = vec![first.row.clone()];
    let mut layers = Vec::new();
    let mut layer_costs = Vec::new();
    let (mut flops, mut wall) = (0.0, 0.0);
    let mut rng = Rng::seeded(opts.seed ^ 0xBE4C);
    for t in 1..tasks.len() {
        progress(&format!("{}: task {t}/{}", arm.name, tasks.len() - 1));
        let Some(mode) = s.mode else {
            layers.push(Vec::new());
            matrix.push(evaluate(tasks, &model)?);
            continue;
        };
        let reference = Reference::of(&model, &seen, 500, None, opts.seed)?;
        let replay = replay_of(tasks, t, opts.replay_records, &mut rng);
        let r = retrain::run(
            &RetrainInput {
                current: &model,
                ewc: s.ewc.then_some(&ewc),
                reference: &reference.activations,
                recent: &tasks[t].train,
                replay: &replay,
                seed: opts.seed.wrapping_add(t as u64),
            },
            &c.gate(mode, arm.max_cost),
            &c.train(s.replay),
            &c.ewc(s.ewc),
        )?;
        if t == 1 {
            layer_costs = r
                .choices
                .iter()
                .map(|c| (c.layer.clone(), c.cost))
                .collect();
        }
        if let Some(tr) = &r.train {
            flops += tr.flops;
            wall += tr.wall_seconds;
        }
        layers.push(r.layers.clone());
        if let (Some(c), Some(e), Some(d)) = (r.candidate, r.ewc, r.trained_on) {
            model = c;
            ewc = e;
            seen = d;
        }
        matrix.push(evaluate(tasks, &model)?);
    }
    let (acc, bwt, forgetting, new_task_acc) = summary(&matrix);
    Ok(StrategyResult {
        strategy: arm.name,
        matrix,
        acc,
        bwt,
        forgetting,
        new_task_acc,
        layers,
        flops,
        wall_seconds: wall,
        cost_ratio: 0.0,
        layer_costs,
    })
}

/// Runs every strategy on the same tasks; `progress` gets a line per step.
pub fn run(
    opts: &BenchOptions,
    backend: BackendKind,
    mut progress: impl FnMut(&str),
) -> Result<BenchReport, BenchError> {
    if opts.tasks < 2 {
        return Err(BenchError::Options("at least 2 tasks are needed".into()));
    }
    let selected = selected(&opts.strategies)?;
    check_max_cost(&opts.max_cost)?;
    if !(0.0..=1.0).contains(&opts.ewc_gamma) {
        return Err(BenchError::Options(format!(
            "ewc_gamma must be in [0, 1], got {}",
            opts.ewc_gamma
        )));
    }
    let tasks = tasks(opts)?;
    let width = tasks[0].train.width;
    let spec = ModelSpec::classifier(width, opts.hidden.clone(), CLASSES);
    let c = Configs(opts);
    // Task 0 is learned the same way for every strategy (the daemon's bootstrap).
    progress("task 0: first model (all strategies)");
    let first = retrain::bootstrap(
        spec,
        backend,
        opts.seed,
        &tasks[0].train,
        &c.gate(RetrainMode::Full, 1.0),
        &c.train(false),
        &c.ewc(true),
    )?;
    let (Some(model0), Some(ewc0), Some(seen0)) = (first.candidate, first.ewc, first.trained_on)
    else {
        return Err(BenchError::Options("the first model diverged".into()));
    };
    let first = First {
        row: evaluate(&tasks, &model0)?,
        model: model0,
        ewc: ewc0,
        seen: seen0,
    };
    let mut results = Vec::new();
    for arm in arms(&selected, &opts.max_cost) {
        results.push(run_arm(arm, &tasks, &first, &c, &mut progress)?);
    }
    let full = results
        .iter()
        .find(|r| r.strategy == "full")
        .map_or(0.0, |r| r.flops);
    for r in &mut results {
        r.cost_ratio = if full > 0.0 { r.flops / full } else { 0.0 };
    }
    Ok(BenchReport {
        options: opts.clone(),
        results,
    })
}

/// One strategy on the Elec2 stream, run through the daemon's own path (file source,
/// pipeline, replay buffer in RocksDB, the loop and its retrain worker).
#[derive(Debug, Clone, Serialize)]
pub struct StreamResult {
    pub strategy: String,
    /// Prequential accuracy over every scored record.
    pub prequential: f64,
    pub scored: u64,
    /// `(records processed, accuracy of the records scored since the previous point)`.
    pub over_time: Vec<(u64, f64)>,
    pub promoted: u64,
    pub rejected: u64,
    pub flops: f64,
    pub wall_seconds: f64,
    pub cost_ratio: f64,
}

/// The strategies on Elec2 in time order, starting from `config/elec2.toml`: `none` keeps the
/// first model; the others retrain on the profile's triggers in their mode, with EWC
/// (`ewc.lambda` 100) and replay (`train.replay_ratio` 0.25) where named. `opts` chooses the
/// strategies and the partial strategies' `retrain.max_cost`; the rest comes from the profile.
pub fn elec2(
    opts: &BenchOptions,
    mut progress: impl FnMut(&str),
) -> Result<Vec<StreamResult>, BenchError> {
    let base = relearn::config::Config::from_toml(include_str!("../../../config/elec2.toml"))
        .map_err(|e| BenchError::Options(e.to_string()))?;
    check_max_cost(&opts.max_cost)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BenchError::Options(format!("cannot start the runtime: {e}")))?;
    let mut out = Vec::new();
    for arm in arms(&selected(&opts.strategies)?, &opts.max_cost) {
        let s = arm.strategy;
        progress(&format!("elec2: {}", arm.name));
        let mut c = base.clone();
        c.file.exit_at_end = true;
        c.file.dead_letter_path = None;
        c.store.path = None;
        c.http.listen = "127.0.0.1:0".into();
        // The arms compare triggered-retrain strategies; the challenger (which `relearn eval`
        // measures) would blur them.
        c.challenger.enabled = false;
        match s.mode {
            None => {
                c.triggers.drift_detectors.clear();
                c.triggers.accuracy_drop = 0.0;
                c.triggers.every_labeled = 0;
                c.triggers.interval = None;
            }
            Some(mode) => {
                c.retrain.mode = mode;
                c.retrain.max_cost = arm.max_cost;
            }
        }
        c.ewc.lambda = if s.ewc { 100.0 } else { 0.0 };
        c.train.replay_ratio = if s.replay { 0.25 } else { 0.0 };
        c.retrain.wait = relearn::retrain::WaitPolicy::Always;
        let summary = runtime
            .block_on(relearn::app::run(c, CancellationToken::new()))
            .map_err(|source| BenchError::Run {
                strategy: arm.name.clone(),
                source,
            })?;
        out.push(StreamResult {
            strategy: arm.name,
            prequential: summary.correct as f64 / summary.scored.max(1) as f64,
            scored: summary.scored,
            over_time: summary.curve.windows(2000, false),
            promoted: summary.promoted,
            rejected: summary.rejected,
            flops: summary.train_flops,
            wall_seconds: summary.retrain_seconds,
            cost_ratio: 0.0,
        });
    }
    let full = out
        .iter()
        .find(|r| r.strategy == "full")
        .map_or(0.0, |r| r.flops);
    for r in &mut out {
        r.cost_ratio = if full > 0.0 { r.flops / full } else { 0.0 };
    }
    Ok(out)
}

/// The Elec2 results as a markdown table.
pub fn elec2_markdown(results: &[StreamResult]) -> String {
    let mut out =
        String::from("Elec2 in time order (45,312 records), config/elec2.toml per strategy\n\n");
    out.push_str("| strategy | prequential accuracy | retrains promoted / rejected | GFLOPs | train s | cost vs full |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    for r in results {
        out.push_str(&format!(
            "| {} | {:.4} | {} / {} | {:.2} | {:.2} | {:.2} |\n",
            r.strategy,
            r.prequential,
            r.promoted,
            r.rejected,
            r.flops / 1e9,
            r.wall_seconds,
            r.cost_ratio
        ));
    }
    out
}

/// The report as a markdown table.
pub fn markdown(report: &BenchReport) -> String {
    let mut out = format!(
        "{:?}, {} tasks, {} train / {} test images per task, hidden {:?}, {} epochs, \
         learning rate {}, EWC lambda {} gamma {}, replay {} images at {} of each batch, partial max_cost {}, \
         seed {}\n\n",
        report.options.scenario,
        report.options.tasks,
        report.options.train_per_task,
        report.options.test_per_task,
        report.options.hidden,
        report.options.epochs,
        report.options.learning_rate,
        report.options.ewc_lambda,
        report.options.ewc_gamma,
        report.options.replay_records,
        report.options.replay_ratio,
        report
            .options
            .max_cost
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        report.options.seed
    );
    out.push_str("| strategy | ACC | BWT | forgetting | new-task acc | GFLOPs | train s | cost vs full | layers (task 1) |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for r in &report.results {
        out.push_str(&format!(
            "| {} | {:.4} | {:+.4} | {:.4} | {:.4} | {:.2} | {:.2} | {:.2} | {} |\n",
            r.strategy,
            r.acc,
            r.bwt,
            r.forgetting,
            r.new_task_acc,
            r.flops / 1e9,
            r.wall_seconds,
            r.cost_ratio,
            r.layers.first().map(|l| l.join(", ")).unwrap_or_default()
        ));
    }
    if let Some(r) = report.results.iter().find(|r| !r.layer_costs.is_empty()) {
        let costs: Vec<String> = r
            .layer_costs
            .iter()
            .map(|(l, c)| format!("{l} {c:.2}"))
            .collect();
        out.push_str(&format!(
            "\nEstimated cost of training one layer alone on task 1 (vs full, {} epochs, frozen \
             prefix cached): {}\n",
            report.options.epochs,
            costs.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_follows_the_definitions() {
        // Two tasks: task 0 learned to 0.9, then 0.6 after task 1 (learned to 0.8).
        let m = vec![vec![0.9, 0.1], vec![0.6, 0.8]];
        let (acc, bwt, forgetting, new_task) = summary(&m);
        assert!((acc - 0.7).abs() < 1e-12);
        assert!((bwt + 0.3).abs() < 1e-12);
        assert!((forgetting - 0.3).abs() < 1e-12);
        assert!((new_task - 0.8).abs() < 1e-12);
    }
}
