//! The retrain worker: runs a retrain (or the first training) on its own thread, writes the
//! retrain's report and, when promoted, the new version and the switch to it in one store
//! batch, then swaps the serving model. A crash before that write leaves the old version
//! serving; nothing is half-written.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

use super::config::LearnerConfig;
use super::report::{RetrainCost, RetrainReport, RunOutcome, VersionMeta};
use super::{LoopError, LoopHandle, Serving};
use crate::drift::trigger::Firing;
use crate::learn::{BackendKind, Checkpoint, Dataset, ModelSpec, Task, TrainReport};
use crate::metrics::Metrics;
use crate::retrain::{self, Outcome, Reference, RetrainInput, Validation};
use crate::store::versions::ModelVersions;
use crate::store::{KvStore, ReplayBuffer, RetrainLog, WriteBatch};

/// One retrain to run.
pub struct Job {
    pub seq: u64,
    pub firing: Firing,
    /// The serving model when the trigger fired (None: the first training).
    pub current: Option<Arc<Serving>>,
    /// The recent labeled window, oldest first.
    pub recent: Dataset,
    /// Records processed when the trigger fired.
    pub records_total: u64,
    /// Layers a manual request named (overrides `retrain.layers`).
    pub layers: Option<Vec<String>>,
    /// Detectors in alarm, features that drifted at the last check and the layer shifts,
    /// when the trigger fired (kept in the retrain's report).
    pub alarms: Vec<crate::drift::Detector>,
    pub drifted_features: Vec<String>,
    /// Per categorical field, the share of recent records with a value never seen before.
    pub new_category_rates: std::collections::BTreeMap<String, f64>,
    pub layer_shifts: Vec<(String, f64)>,
}

/// What a retrain did, sent back to the ingest thread.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub trigger: Firing,
    pub outcome: RunOutcome,
    pub detail: String,
    pub promoted_version: Option<u64>,
    pub validation: Option<Validation>,
    pub train: Option<TrainReport>,
}

/// The retrain thread. Dropping it closes the job queue, cancels a running retrain (training
/// stops before its next step) and waits for the thread to end, at most
/// `shutdown.grace_seconds` (a retrain still running then is abandoned; the old version keeps
/// serving after a restart).
pub struct Worker {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Disconnected when the thread ends: its sender is dropped with the thread's closure.
    done: mpsc::Receiver<()>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    grace: std::time::Duration,
}

impl Worker {
    /// Queues a job; false when the thread is gone.
    pub fn send(&self, job: Job) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.tx.take();
        self.cancel.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The thread never sends: the wait ends when it returns (or panics) and drops its
        // sender, or at the grace deadline.
        if let Err(mpsc::RecvTimeoutError::Timeout) = self.done.recv_timeout(self.grace) {
            tracing::warn!("a retrain is still running at shutdown; abandoned (the serving version is unchanged)");
            return;
        }
        if thread.join().is_err() {
            tracing::error!("the retrain thread panicked");
        }
    }
}

/// Starts the worker thread; it runs jobs one at a time until the `Worker` is dropped.
pub fn spawn(
    config: LearnerConfig,
    store: Arc<dyn KvStore>,
    handle: LoopHandle,
    metrics: Metrics,
    results: mpsc::Sender<JobOutcome>,
) -> Worker {
    let (tx, rx) = mpsc::channel::<Job>();
    let (done_tx, done) = mpsc::channel::<()>();
    let cancel = handle.cancel.clone();
    let grace = config.grace;
    // The retrain thread starts here, at the process's priority; ingest runs `ingest.nice`
    // below it and a retrain `retrain.nice` below ingest.
    let nice = config.ingest_nice + config.retrain.nice;
    let spawned = std::thread::Builder::new()
        .name("relearn-retrain".into())
        .spawn(move || {
            let _done = done_tx;
            if let Err(e) = lower_priority(nice) {
                tracing::warn!(nice, error = %e, "cannot lower the retrain thread's priority; it runs at ingest's");
            }
            for job in rx {
                let out = execute(&config, store.as_ref(), &handle, &metrics, job);
                if results.send(out).is_err() {
                    break;
                }
            }
        });
    let thread = match spawned {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!(error = %crate::error::Chain(&e), "cannot start the retrain thread; retrains will not run");
            None
        }
    };
    Worker {
        tx: Some(tx),
        thread,
        done,
        cancel,
        grace,
    }
}

/// Adds `nice` to the calling thread's nice value, at most 19 (Linux keeps the nice value per
/// thread, and lowering a priority needs no privilege). Elsewhere a no-op.
#[cfg(target_os = "linux")]
pub(crate) fn lower_priority(nice: i32) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    // SAFETY: `getpriority` and `setpriority` read only their integer arguments (`who = 0`
    // is the calling thread) and `__errno_location` points at this thread's errno, cleared
    // first because -1 is a valid nice value as well as `getpriority`'s error return.
    unsafe {
        *libc::__errno_location() = 0;
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        if current == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setpriority(libc::PRIO_PROCESS, 0, (current + nice).min(19)) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn lower_priority(_nice: i32) -> std::io::Result<()> {
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The labeled replay buffer as a dataset.
pub(crate) fn replay_dataset(
    store: &dyn KvStore,
    width: usize,
    task: Task,
) -> Result<Dataset, LoopError> {
    Ok(super::labeled_dataset(
        &ReplayBuffer::all(store)?,
        width,
        task,
    )?)
}

/// Runs one job, records it and moves the retrain metrics; a failed retrain is an outcome
/// (`failed`), never a panic.
pub fn execute(
    config: &LearnerConfig,
    store: &dyn KvStore,
    handle: &LoopHandle,
    metrics: &Metrics,
    job: Job,
) -> JobOutcome {
    let trigger = job.firing.clone();
    let out = match run(config, store, handle, job) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %crate::error::Chain(&e), "retrain failed");
            JobOutcome {
                trigger,
                outcome: RunOutcome::Failed,
                detail: e.to_string(),
                promoted_version: None,
                validation: None,
                train: None,
            }
        }
    };
    record_metrics(metrics, &out);
    handle.running.store(false, Ordering::SeqCst);
    tracing::info!(
        trigger = %out.trigger.kind.as_str(),
        outcome = out.outcome.as_str(),
        detail = %out.detail,
        version = ?out.promoted_version,
        "retrain finished"
    );
    out
}

fn record_metrics(m: &Metrics, r: &JobOutcome) {
    m.retrain
        .runs
        .with_label_values(&[r.outcome.as_str()])
        .inc();
    m.retrain.running.set(0);
    if let Some(v) = r.promoted_version {
        m.learn.model_version.set(v as i64);
    }
    if let Some(v) = &r.validation {
        m.retrain.forgetting.set(v.forgetting);
        m.retrain.gain.set(v.gain);
    }
    if let Some(t) = &r.train {
        let full_seconds = if t.flops > 0.0 {
            t.wall_seconds * t.flops_full / t.flops
        } else {
            0.0
        };
        m.retrain
            .seconds
            .with_label_values(&["executed"])
            .inc_by(t.wall_seconds);
        m.retrain
            .seconds
            .with_label_values(&["full_estimate"])
            .inc_by(full_seconds);
        m.retrain
            .flops
            .with_label_values(&["executed"])
            .inc_by(t.flops);
        m.retrain
            .flops
            .with_label_values(&["full_estimate"])
            .inc_by(t.flops_full);
        if t.flops_full > 0.0 {
            m.retrain.cost_ratio.set(t.flops / t.flops_full);
        }
        for l in &t.layers {
            m.retrain.layers.with_label_values(&[l]).inc();
        }
    }
}

fn run(
    config: &LearnerConfig,
    store: &dyn KvStore,
    handle: &LoopHandle,
    job: Job,
) -> Result<JobOutcome, LoopError> {
    let width = config.input_width();
    let seed = config.train.seed ^ job.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let result = match &job.current {
        None => retrain::bootstrap(
            config.spec.clone(),
            config.model.backend,
            config.model.seed,
            &job.recent,
            &config.retrain,
            &config.train,
            &config.ewc,
        )?,
        Some(s) => {
            let replay = replay_dataset(store, width, config.task())?;
            let mut retrain_config = config.retrain.clone();
            if let Some(layers) = &job.layers {
                retrain_config.layers = retrain::LayerPolicy::Named(layers.clone());
                retrain_config.mode = retrain::RetrainMode::Partial;
            }
            retrain::run(
                &RetrainInput {
                    current: &s.model,
                    ewc: s.ewc.as_ref(),
                    reference: &s.reference.activations,
                    recent: &job.recent,
                    replay: &replay,
                    seed,
                },
                &retrain_config,
                &config.train,
                &config.ewc,
            )?
        }
    };
    let (outcome, detail) = match &result.outcome {
        Outcome::Promoted => (RunOutcome::Promoted, String::new()),
        Outcome::Rejected { reason } => (RunOutcome::Rejected, reason.clone()),
    };
    let mut report = RetrainReport {
        retrain: job.seq,
        trigger: job.firing.kind,
        reason: job.firing.reason.clone(),
        outcome,
        detail: detail.clone(),
        parent: job.current.as_ref().map(|s| s.version),
        version: None,
        layers: result.layers.clone(),
        layer_choice: result.choices.clone(),
        validation: result.validation.clone(),
        train: result.train.clone(),
        cost: result.train.as_ref().map(RetrainCost::of),
        online_cost: None,
        forgetting_allowed: None,
        records_total: job.records_total,
        alarms: job.alarms.clone(),
        drifted_features: job.drifted_features.clone(),
        new_category_rates: job.new_category_rates.clone(),
        layer_shifts: job.layer_shifts.clone(),
        recent_records: Some(job.recent.len()),
        finished_ms: now_ms(),
    };
    let mut batch = WriteBatch::new();
    let mut promoted = None;
    if let (Some(candidate), Some(trained_on)) = (&result.candidate, &result.trained_on) {
        promoted = Some(stage_version(
            config,
            store,
            &mut batch,
            NewVersion {
                candidate,
                ewc: result.ewc.as_ref(),
                trained_on,
                accuracy: result.validation.as_ref().map(|v| v.new_candidate),
                seed,
                parent: job.current.as_ref().map(|s| s.version),
            },
            &mut report,
        )?);
    }
    RetrainLog::stage(&mut batch, job.seq, &report)?;
    store.write(batch)?;
    let promoted_version = promoted.as_ref().map(|s| s.version);
    if let Some(s) = promoted {
        *handle.serving.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(s));
    }
    Ok(JobOutcome {
        trigger: job.firing,
        outcome,
        detail,
        promoted_version,
        validation: result.validation,
        train: result.train,
    })
}

/// A model about to become a version.
pub(crate) struct NewVersion<'a> {
    pub candidate: &'a crate::learn::Model,
    pub ewc: Option<&'a crate::learn::Ewc>,
    /// The records it was trained on (its drift reference is drawn from them).
    pub trained_on: &'a Dataset,
    /// Its held-out accuracy, the reference of the accuracy-drop trigger.
    pub accuracy: Option<f64>,
    pub seed: u64,
    pub parent: Option<u64>,
}

/// Stages `v` as a new active version into `batch` (checkpoint, metadata with the report and
/// the drift reference); sets `report.version` and returns what will serve once the batch
/// is written.
pub(crate) fn stage_version(
    config: &LearnerConfig,
    store: &dyn KvStore,
    batch: &mut WriteBatch,
    v: NewVersion<'_>,
    report: &mut RetrainReport,
) -> Result<Serving, LoopError> {
    let reference = Reference::of(
        v.candidate,
        v.trained_on,
        config.drift.reference_rows,
        v.accuracy,
        v.seed,
    )?;
    let ckpt = Checkpoint::of(v.candidate, v.ewc, Default::default())?;
    let bytes = ckpt.to_bytes()?;
    let versions = ModelVersions::new(store);
    let version = versions.stage_new(
        batch,
        &bytes,
        v.parent,
        now_ms(),
        &VersionMeta {
            report: report.clone(),
            reference: Some(reference.clone()),
        },
        true,
        config.models.keep_last,
    )?;
    report.version = Some(version);
    let record = crate::store::versions::VersionRecord {
        version,
        created_ms: now_ms(),
        parent: v.parent,
        checkpoint_bytes: bytes.len(),
        metadata: VersionMeta {
            report: report.clone(),
            reference: None,
        },
    };
    Ok(Serving {
        version,
        model: v.candidate.clone(),
        ewc: v.ewc.cloned(),
        reference,
        record,
    })
}

/// The active version from the store, rebuilt on the configured backend.
pub fn load_active(
    store: &dyn KvStore,
    config: &LearnerConfig,
) -> Result<Option<Serving>, LoopError> {
    let versions = ModelVersions::new(store);
    let Some(version) = versions.active()? else {
        return Ok(None);
    };
    load_version(store, &config.spec.clone(), config.model.backend, version).map(Some)
}

/// One stored version, rebuilt on `backend`; refused when its inputs, outputs or task are not
/// those of `spec` (the model the schema describes).
pub fn load_version(
    store: &dyn KvStore,
    spec: &ModelSpec,
    backend: BackendKind,
    version: u64,
) -> Result<Serving, LoopError> {
    let versions = ModelVersions::new(store);
    let (mut record, bytes) = versions
        .get::<VersionMeta>(version)?
        .ok_or(LoopError::Version {
            version,
            reason: "no such version".into(),
        })?;
    let ckpt = Checkpoint::from_bytes(&bytes)?;
    if ckpt.spec.input != spec.input
        || ckpt.spec.classes != spec.classes
        || ckpt.spec.task != spec.task
    {
        return Err(LoopError::Version {
            version,
            reason: format!(
                "stored model is a {} model with {} inputs and {} outputs; the schema asks for {} with {} inputs and {} outputs",
                ckpt.spec.task.as_str(),
                ckpt.spec.input,
                ckpt.spec.classes,
                spec.task.as_str(),
                spec.input,
                spec.classes
            ),
        });
    }
    let model = ckpt.to_model(backend)?;
    let reference = record.metadata.reference.take().unwrap_or_default();
    Ok(Serving {
        version,
        model,
        ewc: ckpt.ewc,
        reference,
        record,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::lower_priority;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as in `lower_priority`.
        unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, 0)
        }
    }

    #[test]
    fn lowers_the_calling_thread_only() {
        let before = nice_of_this_thread();
        let inside = std::thread::spawn(move || {
            lower_priority(3).expect("lowering a priority needs no privilege");
            nice_of_this_thread()
        })
        .join()
        .expect("the thread ran");
        assert_eq!(inside, (before + 3).min(19));
        assert_eq!(
            nice_of_this_thread(),
            before,
            "the caller's nice value is unchanged"
        );
        let unchanged = std::thread::spawn(|| {
            lower_priority(0).expect("0 is a no-op");
            nice_of_this_thread()
        })
        .join()
        .expect("the thread ran");
        assert_eq!(unchanged, before);
    }
}
