//! The `relearn-bench` binary: parses flags, runs a benchmark scenario or redraws a report's
//! plots.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use relearn_bench::bench::{self, BenchOptions, Scenario, Source};
use relearn_bench::output;

#[derive(Parser)]
#[command(
    name = "relearn-bench",
    version,
    about = "relearn's continual-learning benchmarks: a markdown table, a JSON report and PNG plots per run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The real Elec2 stream in time order through the daemon's own path (config/elec2.toml),
    /// once per strategy: prequential accuracy over the stream, retrains and their cost.
    Elec2(BenchArgs),
    /// Task t: every image rotated by t x --angle-step degrees (input-level shift).
    RotatedMnist(BenchArgs),
    /// Task t: a fixed random pixel permutation (task 0: none), the classic EWC benchmark.
    PermutedMnist(BenchArgs),
    /// Task t: only digits 2t and 2t+1 (class-incremental, 5 tasks).
    SplitMnist(BenchArgs),
    /// Task t: the same images, labels through a fixed random permutation of the classes.
    RemappedMnist(BenchArgs),
    /// Redraw the PNG plots of a report next to it: a `bench-<scenario>.json` of this
    /// command, an `eval.json` of `relearn eval` (its `eval.png`), or a `soak.csv` of
    /// `scripts/soak.sh` (its `soak.png`).
    Plot {
        /// The JSON report.
        report: PathBuf,
    },
}

/// A scenario's flags.
#[derive(clap::Args)]
struct BenchArgs {
    /// Directory of the MNIST IDX files; without it the embedded 8x8 digits are used.
    #[arg(long)]
    mnist: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    tasks: usize,
    #[arg(long, default_value_t = 10_000)]
    train_per_task: usize,
    #[arg(long, default_value_t = 2_000)]
    test_per_task: usize,
    /// Hidden layer widths, comma-separated.
    #[arg(long, default_value = "256,256", value_delimiter = ',')]
    hidden: Vec<usize>,
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 500.0)]
    ewc_lambda: f64,
    /// Online EWC decay of the accumulated Fisher (1 = keep every task's).
    #[arg(long, default_value_t = 1.0)]
    ewc_gamma: f64,
    /// Adam learning rate of every training run.
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Replayed images kept from earlier tasks (equal share per task).
    #[arg(long, default_value_t = 2_000)]
    replay_records: usize,
    /// Fraction of each batch drawn from the replayed images.
    #[arg(long, default_value_t = 0.25)]
    replay_ratio: f64,
    /// `retrain.max_cost` of the partial strategies: most a partial retrain may cost, as a
    /// fraction of a full one (1 = no limit). Several, comma-separated, run each partial
    /// strategy once per budget (a cost/accuracy frontier).
    #[arg(long, default_value = "1", value_delimiter = ',')]
    max_cost: Vec<f64>,
    /// Strategies to run, comma-separated (default: all six).
    #[arg(long, value_delimiter = ',')]
    strategies: Vec<String>,
    /// Degrees between consecutive rotated tasks.
    #[arg(long, default_value_t = 30.0)]
    angle_step: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// burn backend (flex, ndarray, tch).
    #[arg(long, default_value = "flex")]
    backend: String,
    /// Where the report files go.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
}

impl BenchArgs {
    fn options(&self, scenario: Scenario) -> BenchOptions {
        BenchOptions {
            scenario,
            source: self.mnist.clone().map_or(Source::Digits, Source::Mnist),
            tasks: self.tasks,
            train_per_task: self.train_per_task,
            test_per_task: self.test_per_task,
            hidden: self.hidden.clone(),
            epochs: self.epochs,
            ewc_lambda: self.ewc_lambda,
            ewc_gamma: self.ewc_gamma,
            learning_rate: self.learning_rate,
            replay_records: self.replay_records,
            replay_ratio: self.replay_ratio,
            max_cost: self.max_cost.clone(),
            strategies: self.strategies.clone(),
            angle_step: self.angle_step,
            seed: self.seed,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The daemon's info lines (the Elec2 scenario runs it) would drown the progress lines.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELEARN_LOG")
                .unwrap_or_else(|_| "warn,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (scenario, args) = match cli.command {
        Command::Plot { report } => {
            for png in output::replot(&report)? {
                eprintln!("relearn-bench: wrote {}", png.display());
            }
            return Ok(());
        }
        Command::Elec2(a) => (Scenario::Elec2, a),
        Command::RotatedMnist(a) => (Scenario::RotatedMnist, a),
        Command::PermutedMnist(a) => (Scenario::PermutedMnist, a),
        Command::SplitMnist(a) => (Scenario::SplitMnist, a),
        Command::RemappedMnist(a) => (Scenario::RemappedMnist, a),
    };
    let backend = relearn::learn::BackendKind::from_name(&args.backend)
        .with_context(|| format!("unknown backend `{}`", args.backend))?;
    let opts = args.options(scenario);
    let started = std::time::Instant::now();
    let progress = |step: &str| {
        eprintln!("[{:>7.1} s] {step}", started.elapsed().as_secs_f64());
    };
    let (md, json) = if scenario == Scenario::Elec2 {
        let results = bench::elec2(&opts, progress)?;
        print!("{}", bench::elec2_markdown(&results));
        output::write_elec2(&results, &args.out)?
    } else {
        let report = bench::run(&opts, backend, progress)?;
        print!("{}", bench::markdown(&report));
        output::write(&report, &args.out)?
    };
    eprintln!(
        "relearn-bench: wrote {} and {}",
        md.display(),
        json.display()
    );
    Ok(())
}
