//! Wires the stages: opens the store, starts the HTTP server and the ingest source, and shuts
//! them down in order (stop consuming, write the last batch, stop HTTP, close the store).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod heap;
pub mod source;

pub use source::{Ended, Source};

use crate::config::Config;
use crate::ingest::pipeline::LagsSnapshot;
use crate::ingest::{Decoder, IngestError, Pipeline};
use crate::learner::{Learner, LoopError, LoopHandle, RunOutcome};
use crate::metrics::Metrics;
use crate::serve;
use crate::store::state::counter;
use crate::store::{KvStore, RocksStore, StoreError, WriteBehind};
use crate::totals::Scored;

/// What stopped the daemon.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Loop(#[from] LoopError),
    #[error("config key `http.listen`: cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("config key `http.admin_token_file`: cannot read {}: {source}", path.display())]
    AdminToken {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config key `http.admin_token_file`: {} is empty", path.display())]
    AdminTokenEmpty { path: PathBuf },
    #[error("cannot create a temporary store directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot start the ingest thread")]
    SpawnIngest(#[source] std::io::Error),
    #[error("the ingest thread ended without a result (it panicked)")]
    IngestThread,
}

/// The admin token: `http.admin_token_file`, else `RELEARN_ADMIN_TOKEN`; None disables the
/// admin endpoints.
fn admin_token(config: &Config) -> Result<Option<String>, AppError> {
    if let Some(path) = &config.http.admin_token_file {
        let token = std::fs::read_to_string(path)
            .map_err(|source| AppError::AdminToken {
                path: path.clone(),
                source,
            })?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(AppError::AdminTokenEmpty { path: path.clone() });
        }
        return Ok(Some(token));
    }
    Ok(std::env::var("RELEARN_ADMIN_TOKEN")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Totals at shutdown, for the operator's terminal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub records: u64,
    pub labeled: u64,
    pub unlabeled: u64,
    pub malformed: u64,
    pub replay_records: u64,
    pub store_path: PathBuf,
    pub http: String,
    /// Serving model version at shutdown (0: none).
    pub model_version: u64,
    /// Windowed prequential accuracy at shutdown.
    pub accuracy: f64,
    /// Labeled records scored (correct + incorrect) over the whole run.
    pub scored: u64,
    pub correct: u64,
    pub promoted: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Whole-stream prequential scores (kappa, no-change and majority baselines).
    pub scores: crate::learner::state::Scoreboard,
    /// Challenger promotions, and estimated FLOPs of all training (retrains and online
    /// steps) with what the same work would cost training every layer.
    pub challenger_promotions: u64,
    /// The challenger's prequential accuracy on the records it scored (0: none).
    pub challenger_accuracy: f64,
    pub train_flops: f64,
    pub train_flops_full: f64,
    /// Seconds spent in triggered retrains.
    pub retrain_seconds: f64,
    /// The scores sampled over the stream, closed at the last record.
    pub curve: crate::learner::state::Curve,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records {} (labeled {}, unlabeled {}, malformed {}), replay buffer {} records, store {}",
            self.records,
            self.labeled,
            self.unlabeled,
            self.malformed,
            self.replay_records,
            self.store_path.display()
        )?;
        if let (Some(mae), Some(rmse)) =
            (self.scores.regression.mae(), self.scores.regression.rmse())
        {
            write!(
                f,
                "\nmodel version {}, prequential MAE {:.4}, RMSE {:.4}, R^2 {} over {} labeled records, retrains: {} promoted, {} rejected, {} failed",
                self.model_version,
                mae,
                rmse,
                self.scores
                    .regression
                    .r2()
                    .map_or("-".to_string(), |r| format!("{r:.4}")),
                self.scores.regression.scored,
                self.promoted,
                self.rejected,
                self.failed
            )?;
        } else if self.scored > 0 {
            write!(
                f,
                "\nmodel version {}, prequential accuracy {:.4} over {} labeled records (last window {:.4}), retrains: {} promoted, {} rejected, {} failed",
                self.model_version,
                self.correct as f64 / self.scored as f64,
                self.scored,
                self.accuracy,
                self.promoted,
                self.rejected,
                self.failed
            )?;
            if let (Some(k), Some(kt)) = (self.scores.kappa(), self.scores.kappa_temporal()) {
                write!(
                    f,
                    "\nkappa {k:.4}, kappa-temporal {kt:.4} (no-change {:.4}, majority {:.4} on the same records), challenger promotions {}, training FLOPs {:.3e} ({:.2}x of training every layer)",
                    self.scores.nochange_accuracy().unwrap_or(0.0),
                    self.scores.majority_accuracy().unwrap_or(0.0),
                    self.challenger_promotions,
                    self.train_flops,
                    if self.train_flops_full > 0.0 { self.train_flops / self.train_flops_full } else { 1.0 }
                )?;
            }
        }
        Ok(())
    }
}

/// The daemon's store: where it is, and the temporary directory that holds it when
/// `store.path` is empty (removed when this drops).
struct OpenStore {
    _temp: Option<tempfile::TempDir>,
    path: PathBuf,
    store: Arc<dyn KvStore>,
}

/// `relearn_store_memory_bytes`, read from the engine whenever the metrics are rendered (a
/// failed read leaves the last values and is logged at debug level).
fn publish_store_memory(metrics: &Metrics, store: Arc<dyn KvStore>) {
    metrics.on_render(Box::new(move |m: &Metrics| match store.memory() {
        Ok(mem) => {
            let parts = [
                ("memtables", mem.memtables),
                ("block_cache", mem.block_cache),
                ("table_readers", mem.table_readers),
            ];
            for (part, bytes) in parts {
                m.store
                    .memory
                    .with_label_values(&[part])
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot read the store's memory"),
    }));
}

/// Opens `store.path`, or a temporary store when it is empty.
fn open_store(config: &Config) -> Result<OpenStore, AppError> {
    let (temp, path) = match &config.store.path {
        Some(path) => (None, path.clone()),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("relearn-store-")
                .tempdir()
                .map_err(AppError::TempDir)?;
            let path = dir.path().to_path_buf();
            tracing::info!(path = %path.display(), "store.path is empty: using a temporary store");
            (Some(dir), path)
        }
    };
    // The ingest path's batches are written behind (`store::WriteBehind`): the next batch is
    // processed while RocksDB applies the last one.
    let rocks: Arc<dyn KvStore> = Arc::new(RocksStore::open_with(&path, &config.store)?);
    let store: Arc<dyn KvStore> = Arc::new(WriteBehind::new(rocks)?);
    Ok(OpenStore {
        _temp: temp,
        path,
        store,
    })
}

/// The pipeline with its sinks and, when learning is on, the learning loop; returns the API
/// state for `/v1` too (None with learning off).
fn build_pipeline(
    config: &Config,
    source: &dyn Source,
    store: &Arc<dyn KvStore>,
    store_path: &std::path::Path,
    metrics: &Metrics,
    handle: &LoopHandle,
) -> Result<(Pipeline, Option<serve::api::ApiState>), AppError> {
    let decoder = Decoder::new(&config.schema).map_err(|source| IngestError::Schema {
        what: " (check schema.columns and schema.features)".into(),
        source,
    })?;
    let mut pipeline = Pipeline::open(
        &config.pipeline(),
        store.clone(),
        decoder,
        source.dead_letters(config, store_path)?,
        metrics.clone(),
    )?;
    if let Some(sink) = source.predictions(config)? {
        pipeline.set_predictions(sink);
    }
    if !config.learning_enabled() {
        tracing::warn!(
            "learning loop off: schema.label (and schema.classes for a classifier) are needed to train a model"
        );
        return Ok((pipeline, None));
    }
    let learner = Learner::open(
        &config.learner(),
        store.clone(),
        metrics.clone(),
        handle.clone(),
        source.pace(),
    )?;
    pipeline.set_observer(Box::new(learner));
    let lags = (config.schema.lag_records > 0 || config.lag_labels() > 0).then(|| {
        let snap: LagsSnapshot = Default::default();
        pipeline.share_lags(snap.clone());
        snap
    });
    let api = serve::api::ApiState::new(
        config.api(),
        store.clone(),
        handle.clone(),
        metrics.clone(),
        lags,
        admin_token(config)?,
    )
    .map_err(|source| IngestError::Schema {
        what: " (the predict decoder)".into(),
        source,
    })?
    .with_vocabulary(pipeline.vocabulary());
    Ok((pipeline, Some(api)))
}

/// Runs the daemon until `shutdown` is cancelled, the file source reaches its end (with
/// `file.exit_at_end`), or an error stops ingest.
///
/// Tasks: ingest stops on `shutdown` (a child token); the background tasks (progress log,
/// loop tick, HTTP) stop on one `background` token once ingest has ended, so the last batch
/// is written while `/metrics` still answers.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<Summary, AppError> {
    run_with(config, shutdown, Metrics::new()).await
}

/// [`run`] with the caller's `metrics`, which it can read while the daemon runs
/// (`relearn eval`'s progress reads the records ingested).
pub async fn run_with(
    config: Config,
    shutdown: CancellationToken,
    metrics: Metrics,
) -> Result<Summary, AppError> {
    let opened = open_store(&config)?;
    let (store_path, store) = (opened.path.clone(), opened.store.clone());
    publish_store_memory(&metrics, store.clone());
    heap::publish(&metrics);
    let source = source::of(&config);

    let (listener, http_addr) = bind(&config.http.listen).await?;

    let handle = LoopHandle::default();
    let (pipeline, api) = build_pipeline(
        &config,
        source.as_ref(),
        &store,
        &store_path,
        &metrics,
        &handle,
    )?;
    let pipeline = Arc::new(Mutex::new(pipeline));

    // Two roots: `shutdown` (the caller's: SIGTERM, Ctrl-C, a test) asks ingest to stop;
    // `background` stops the log, the tick and HTTP once ingest has ended, so /healthz,
    // /readyz and /metrics answer until the last batch is written. Every task below watches
    // one of them and is awaited before `run` returns.
    let background = CancellationToken::new();
    let cancel_forwarder = tokio::spawn(forward_cancel(
        handle.clone(),
        shutdown.clone(),
        background.child_token(),
    ));
    let summary_task = tokio::spawn(progress_log(
        metrics.clone(),
        handle.clone(),
        source.summary_every(),
        background.child_token(),
    ));
    let ticker = tokio::spawn(loop_tick(
        pipeline.clone(),
        config.learning_enabled(),
        background.child_token(),
    ));

    let trimmer = tokio::spawn(heap::trim_every(
        config.memory.trim,
        metrics.clone(),
        background.child_token(),
    ));

    let (ready, live) = source.probes();
    let http = tokio::spawn(serve::serve(
        listener,
        serve::router(metrics.clone(), ready, live, api),
        background.child_token(),
    ));

    let ingest_stop = shutdown.child_token();
    let ingest = {
        let config = config.clone();
        let pipeline = pipeline.clone();
        let metrics = metrics.clone();
        let stop = ingest_stop.clone();
        spawn_ingest(config.ingest.nice, move || {
            source.run(&config, pipeline, metrics, &stop)
        })?
    };
    let outcome = ingest.await.map_err(|_| AppError::IngestThread)?;
    let result = match outcome {
        Ok(Ended::EndOfInput) if !config.file.exit_at_end => {
            tracing::info!("end of input; serving until shutdown");
            shutdown.cancelled().await;
            Ok(())
        }
        Ok(Ended::EndOfInput) => {
            tracing::info!("end of input");
            Ok(())
        }
        Ok(Ended::Stopped) => Ok(()),
        Err(e) => Err(AppError::from(e)),
    };
    background.cancel();
    let _ = cancel_forwarder.await;
    let _ = ticker.await;
    let _ = summary_task.await;
    let _ = trimmer.await;
    match http.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(%e, "http server ended with an error"),
        Err(e) => tracing::warn!(%e, "http task failed"),
    }

    let summary = summarize(&pipeline, &metrics, &handle, store_path.clone(), http_addr);
    // Dropping the pipeline waits for the retrain thread (at most `shutdown.grace_seconds`)
    // and closing the store flushes RocksDB: both block, so neither runs on an async worker.
    let closed = tokio::task::spawn_blocking(move || {
        drop(pipeline);
        drop(store);
        drop(opened);
    })
    .await;
    if let Err(e) = closed {
        tracing::error!(error = %crate::error::Chain(&e), "closing the pipeline and the store failed");
    }
    result.map(|()| summary)
}

/// Runs `ingest` on a thread of its own (`relearn-ingest`) at `nice` below the process's
/// priority (`ingest.nice`), not on tokio's blocking pool, whose threads are reused for the
/// API's forward passes and must keep their priority. The receiver gets its result; it is
/// closed without one if the thread panicked.
fn spawn_ingest<T: Send + 'static>(
    nice: i32,
    ingest: impl FnOnce() -> T + Send + 'static,
) -> Result<tokio::sync::oneshot::Receiver<T>, AppError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("relearn-ingest".into())
        .spawn(move || {
            if let Err(e) = crate::learner::worker::lower_priority(nice) {
                tracing::warn!(nice, error = %e, "cannot lower the ingest thread's priority; it runs at the API's");
            }
            let _ = tx.send(ingest());
        })
        .map_err(AppError::SpawnIngest)?;
    Ok(rx)
}

/// Binds the HTTP listener; returns it with the address it got (a port 0 resolved).
async fn bind(listen: &str) -> Result<(TcpListener, String), AppError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| AppError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    tracing::info!(addr = %addr, "http listening (/metrics, /healthz, /readyz)");
    Ok((listener, addr))
}

/// SIGTERM (`shutdown`) cancels a running retrain between two training steps, inline or on
/// the worker, so the open batch is written inside `shutdown.grace_seconds`; ends at `done`.
async fn forward_cancel(handle: LoopHandle, shutdown: CancellationToken, done: CancellationToken) {
    // Biased: when SIGTERM came and ingest has ended too (this task polled late, on a loaded
    // machine), training must still be cancelled.
    tokio::select! {
        biased;
        () = shutdown.cancelled() => handle.cancel_training(),
        () = done.cancelled() => {}
    }
}

/// A live one-line summary in the log, `every` while records arrive, until `stop`.
async fn progress_log(
    metrics: Metrics,
    handle: LoopHandle,
    every: std::time::Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last = u64::MAX;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let records = metrics.ingest.records.get();
        if records == last {
            continue;
        }
        last = records;
        let runs = |o: RunOutcome| metrics.retrain.runs.with_label_values(&[o.as_str()]).get();
        let alarms = serde_json::to_string(&handle.status().alarms).unwrap_or_default();
        tracing::info!(
            records,
            accuracy = format!("{:.4}", metrics.learn.accuracy.get()),
            version = metrics.learn.model_version.get(),
            alarms = %alarms,
            promoted = runs(RunOutcome::Promoted),
            rejected = runs(RunOutcome::Rejected),
            failed = runs(RunOutcome::Failed),
            "progress"
        );
    }
}

/// The loop's tick, every second until `stop` (when learning is on): manual and scheduled
/// triggers and finished retrains are handled even when no record arrives.
async fn loop_tick(pipeline: Arc<Mutex<Pipeline>>, enabled: bool, stop: CancellationToken) {
    if !enabled {
        return;
    }
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = every.tick() => {}
        }
        let p = pipeline.clone();
        let r =
            tokio::task::spawn_blocking(move || p.lock().unwrap_or_else(|e| e.into_inner()).tick())
                .await;
        if let Ok(Err(e)) = r {
            tracing::debug!(error = %crate::error::Chain(&e), "loop tick skipped");
        }
    }
}

/// What the run did, read from the pipeline's state and the metrics once ingest ended.
fn summarize(
    pipeline: &Mutex<Pipeline>,
    metrics: &Metrics,
    handle: &LoopHandle,
    store_path: PathBuf,
    http_addr: String,
) -> Summary {
    let scored = |o: Scored| {
        metrics
            .learn
            .predictions
            .with_label_values(&[o.as_str()])
            .get()
    };
    let (correct, incorrect) = (scored(Scored::Correct), scored(Scored::Incorrect));
    let runs = |o: RunOutcome| metrics.retrain.runs.with_label_values(&[o.as_str()]).get();
    {
        let p = pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let s = p.state();
        let scores = handle
            .scores
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut curve = handle
            .curve
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        curve.close(s.counter(counter::RECORDS), &scores);
        Summary {
            records: s.counter(counter::RECORDS),
            labeled: s.counter(counter::LABELED),
            unlabeled: s.counter(counter::UNLABELED),
            malformed: s
                .counters()
                .iter()
                .filter(|(k, _)| k.starts_with(counter::MALFORMED_PREFIX))
                .map(|(_, v)| v)
                .sum(),
            replay_records: p.replay().len(),
            store_path,
            http: http_addr,
            model_version: metrics.learn.model_version.get().max(0) as u64,
            accuracy: metrics.learn.accuracy.get(),
            scored: correct + incorrect,
            correct,
            promoted: runs(RunOutcome::Promoted),
            rejected: runs(RunOutcome::Rejected),
            failed: runs(RunOutcome::Failed),
            scores,
            curve,
            retrain_seconds: metrics
                .retrain
                .seconds
                .with_label_values(&["executed"])
                .get(),
            challenger_accuracy: {
                let c = |o: &str| {
                    metrics
                        .learn
                        .challenger_predictions
                        .with_label_values(&[o])
                        .get()
                };
                let (right, wrong) = (c("correct"), c("incorrect"));
                if right + wrong > 0 {
                    right as f64 / (right + wrong) as f64
                } else {
                    0.0
                }
            },
            challenger_promotions: metrics
                .learn
                .promotions
                .with_label_values(&["challenger"])
                .get(),
            train_flops: metrics.retrain.flops.with_label_values(&["executed"]).get()
                + metrics
                    .learn
                    .online_flops
                    .with_label_values(&["executed"])
                    .get(),
            train_flops_full: metrics
                .retrain
                .flops
                .with_label_values(&["full_estimate"])
                .get()
                + metrics
                    .learn
                    .online_flops
                    .with_label_values(&["full_estimate"])
                    .get(),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::spawn_ingest;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: `getpriority` reads only its integer arguments (`who = 0`: this thread).
        unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
    }

    #[test]
    fn ingest_runs_on_its_own_thread_below_the_callers_priority() {
        let before = nice_of_this_thread();
        let rx = spawn_ingest(4, || {
            (
                std::thread::current().name().map(str::to_string),
                nice_of_this_thread(),
            )
        })
        .expect("the thread starts");
        let (name, nice) = rx.blocking_recv().expect("a result");
        assert_eq!(name.as_deref(), Some("relearn-ingest"));
        assert_eq!(nice, (before + 4).min(19));
        assert_eq!(
            nice_of_this_thread(),
            before,
            "the caller keeps its priority"
        );
        // A panic on the thread closes the channel without a result.
        let rx = spawn_ingest(0, || -> u8 { panic!("a panicking ingest") }).expect("starts");
        assert!(rx.blocking_recv().is_err());
    }
}
