//! The `relearn` binary: parses flags, sets up logging, loads the config and runs the daemon.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "relearn", version, about = "A continual-learning daemon")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default). Without a config file it streams the embedded Elec2 data
    /// through the pipeline into a temporary store.
    Run {
        /// TOML config file; every key has a default (see config/relearn.toml).
        #[arg(long, short, env = "RELEARN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config (with environment overrides) and print the effective values.
    CheckConfig {
        #[arg(long, short, env = "RELEARN_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print a store's offsets, counters and replay-buffer state as JSON (read-only; safe
    /// while the daemon runs).
    Inspect {
        /// The store directory (`store.path`).
        #[arg(long)]
        store: PathBuf,
        /// Print every retrain's whole report instead (trigger, alarms, drifted features,
        /// layer choice, validation, cost, outcome), oldest first.
        #[arg(long)]
        retrains: bool,
    },
    /// List the model versions kept in a store (read-only), or re-activate one (rollback;
    /// needs the daemon stopped, since RocksDB allows one writer).
    Models {
        /// The store directory (`store.path`).
        #[arg(long)]
        store: PathBuf,
        /// Make this version the serving one.
        #[arg(long)]
        activate: Option<u64>,
    },
    /// Runs a CSV stream (a path or a .gz) through the daemon's own path once per strategy
    /// and prints prequential accuracy, kappa, kappa-temporal, promotions, training FLOPs and
    /// wall time (markdown; eval.md and eval.json in --out; `relearn-bench plot eval.json`
    /// draws the scores over the stream).
    Eval(Box<EvalArgs>),
}

#[derive(clap::Args)]
struct EvalArgs {
    /// The stream: a CSV file with a header (or --columns), JSON lines or ARFF, optionally
    /// gzip-compressed; `-` reads standard input.
    file: PathBuf,
    /// A config whose schema and settings to use (default: the defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The label column (schema.label).
    #[arg(long)]
    label: Option<String>,
    /// Column names of a CSV file without a header line (schema.columns, file.header =
    /// false): its first line is then a record.
    #[arg(long, value_delimiter = ',')]
    columns: Vec<String>,
    /// Feature columns (schema.features); default: every numeric column but the label. Named
    /// without --categorical and --time, those that hold strings are categorical inputs and
    /// those that hold dates or times time fields.
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Class names (schema.classes); default: the label's distinct values, sorted.
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// `classification` or `regression` (schema.task); default: regression when the label
    /// column holds only numbers with more than 32 distinct values.
    #[arg(long)]
    task: Option<String>,
    /// String columns (schema.categorical); default, when --features is not given either:
    /// every other non-numeric column but the label, dates and times, and identifiers (more
    /// than 32 distinct values and than half the rows in the first 1,000).
    #[arg(long, value_delimiter = ',')]
    categorical: Vec<String>,
    /// Date or time columns (schema.time), each giving inputs for the time of day, the day of
    /// the week and the time of year; default, when --features and --categorical are not
    /// given: every column of dates or times, with the parts that vary and that no numeric
    /// input holds already (an hour, weekday or month column).
    #[arg(long, value_delimiter = ',')]
    time: Vec<String>,
    /// The key column (schema.key).
    #[arg(long)]
    key: Option<String>,
    /// Labels arrive later (labels.enabled, needs --key): a row with the key and the label and
    /// no feature is a label record that joins the earlier row with that key.
    #[arg(long)]
    delayed_labels: bool,
    /// Strategies: default, full, none, no-change, majority.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default,full,none,no-change,majority"
    )]
    strategies: Vec<String>,
    /// Where eval.md and eval.json go.
    #[arg(long, default_value = "eval-out")]
    out: PathBuf,
}

fn load(config: Option<&std::path::Path>) -> anyhow::Result<relearn::config::Config> {
    Ok(relearn::config::Config::load(config, std::env::vars())?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // An evaluation prints its own progress; the daemon's info lines would drown it.
    let default_filter = if matches!(cli.command, Some(Command::Eval(_))) {
        "warn,rdkafka=warn"
    } else {
        "info,rdkafka=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELEARN_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command.unwrap_or(Command::Run { config: None }) {
        Command::Run { config } => {
            let config = load(config.as_deref())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the tokio runtime")?;
            let summary = runtime.block_on(async {
                let shutdown = CancellationToken::new();
                let grace = config.shutdown.grace;
                tokio::spawn(signal_shutdown(shutdown.clone(), grace));
                relearn::app::run(config, shutdown).await
            })?;
            println!("relearn: {summary}");
        }
        Command::CheckConfig { config } => {
            let config = load(config.as_deref())?;
            print!(
                "{}",
                toml::to_string(&config).context("cannot print the config")?
            );
        }
        Command::Inspect { store, retrains } => {
            let json = if retrains {
                serde_json::to_string_pretty(&relearn::inspect::retrain_log_path(&store)?)?
            } else {
                serde_json::to_string_pretty(&relearn::inspect::inspect_path(&store)?)?
            };
            println!("{json}");
        }
        Command::Models { store, activate } => {
            use relearn::store::versions::ModelVersions;
            use relearn::store::RocksStore;
            if let Some(version) = activate {
                let db = RocksStore::open(&store, true)
                    .context("activating a version needs the daemon stopped")?;
                ModelVersions::new(&db).activate(version)?;
                println!("relearn: version {version} is now active");
            } else {
                let db = RocksStore::open_read_only(&store)?;
                let listing = relearn::serve::api::ModelsResponse::read(&db)?;
                println!("{}", serde_json::to_string_pretty(&listing)?);
            }
        }
        Command::Eval(args) => eval(*args)?,
    }
    Ok(())
}

/// `relearn eval`: the schema from the flags (inferred from the file where they are silent),
/// every strategy run on the file, the table printed and the report written.
fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let mut config = load(args.config.as_deref())?;
    if let Some(label) = args.label {
        config.schema.label = Some(label);
        if args.config.is_none() {
            // The defaults' schema is the embedded Elec2 stream's.
            config.schema.features.clear();
            config.schema.classes.clear();
            config.schema.categorical.clear();
            config.schema.time.clear();
        }
    }
    if !args.columns.is_empty() {
        config.schema.columns = args.columns;
        config.file.header = false;
    }
    if !args.features.is_empty() {
        config.schema.features = args.features;
    }
    if !args.categorical.is_empty() {
        config.schema.categorical = args.categorical;
    }
    if !args.classes.is_empty() {
        config.schema.classes = args.classes;
    }
    if !args.time.is_empty() {
        config.schema.time = args
            .time
            .into_iter()
            .map(relearn::ingest::time::TimeField::new)
            .collect();
    }
    if let Some(key) = args.key {
        config.schema.key = Some(key);
    }
    if args.delayed_labels {
        config.labels.enabled = true;
    }
    let task = match args.task.as_deref() {
        None => None,
        Some(t) => Some(
            relearn::config::Task::ALL
                .into_iter()
                .find(|k| k.as_str() == t)
                .with_context(|| format!("--task {t:?}: expected classification or regression"))?,
        ),
    };
    // Standard input is read twice (the schema, then each strategy): kept in a file.
    let stdin_dir;
    let file = if args.file.as_os_str() == "-" {
        stdin_dir = tempfile::tempdir().context("cannot create a directory for standard input")?;
        relearn::eval::stdin_file(stdin_dir.path())?
    } else {
        args.file.clone()
    };
    let delimiter = config.schema.delimiter.clone();
    let left_out = relearn::eval::infer_schema(&mut config, &file, task)?;
    if config.schema.delimiter != delimiter {
        eprintln!(
            "relearn: the header has no comma: columns separated by {:?} (schema.delimiter)",
            config.schema.delimiter
        );
    }
    for c in left_out {
        let flag = match c.reason {
            relearn::eval::LeftOutReason::TimeStamp => "--time",
            relearn::eval::LeftOutReason::Identifier => "--categorical",
        };
        eprintln!(
            "relearn: column `{}` is not an input: {} ({} distinct values in its first {}); {flag} {} uses it",
            c.column,
            c.reason.as_str(),
            c.distinct,
            c.rows,
            c.column
        );
    }
    for t in &config.schema.time {
        let parts: Vec<&str> = t.parts.iter().map(|p| p.as_str()).collect();
        eprintln!(
            "relearn: column `{}` is read as a time: inputs for its {} (schema.time)",
            t.field,
            parts.join(", ")
        );
    }
    config.validate()?;
    let strategies = args
        .strategies
        .iter()
        .map(|s| relearn::eval::Strategy::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let started = std::time::Instant::now();
    let report = relearn::eval::run(&config, &file, &strategies, |step| {
        eprintln!("[{:>7.1} s] {step}", started.elapsed().as_secs_f64());
    })?;
    print!("{}", relearn::eval::markdown(&report));
    let (md, json) = relearn::eval::write(&report, &args.out)?;
    eprintln!(
        "relearn: wrote {} and {} (`relearn-bench plot {}` draws the scores over the stream)",
        md.display(),
        json.display(),
        json.display()
    );
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM, then holds the shutdown budget: a daemon still
/// running `grace` later exits with status 1, so a supervisor never waits on a stuck stop.
async fn signal_shutdown(token: CancellationToken, grace: std::time::Duration) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%e, "cannot watch SIGTERM; only SIGINT stops the daemon");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "shutdown requested: cancelling a running retrain, finishing the open batch"
    );
    token.cancel();
    let spawned = std::thread::Builder::new()
        .name("relearn-shutdown-budget".into())
        .spawn(move || {
            std::thread::sleep(grace);
            tracing::error!(
                grace_seconds = grace.as_secs(),
                "shutdown did not finish within shutdown.grace_seconds; exiting with status 1"
            );
            eprintln!(
                "relearn: shutdown exceeded shutdown.grace_seconds ({} s)",
                grace.as_secs()
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(%e, "cannot start the shutdown budget thread");
    }
}
