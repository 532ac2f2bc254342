//! The continual-learning loop on the ingest path: scores every record with the serving model
//! before anything learns from it (prequential), feeds the drift detectors, keeps the recent
//! window, evaluates the retrain triggers and hands retrains to the worker (`worker.rs`), off
//! the ingest thread. Its state is staged into the ingest batch, next to the offsets.

pub mod config;
pub mod report;
pub mod state;
pub mod status;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use self::config::LearnerConfig;
use crate::challenger::{self, Challenger, Verdict};
use crate::drift::layers::layer_shift;
use crate::drift::monitor::grouped_drift;
use crate::drift::trigger::{self, Firing, Observation, TriggerKind};
use crate::drift::Detector;
use crate::ingest::join::Made;
use crate::ingest::{BatchObserver, IngestError};
use crate::ingest::{Join, Observed};
use crate::learn::diagnostics::ActivationCache;
use crate::learn::model::argmax;
use crate::learn::neighbours::Neighbours;
use crate::learn::online::Replay;
use crate::learn::prior::PriorMember;
use crate::learn::tracking::{self, Shift, Tracker};
use crate::learn::{Dataset, Ewc, LearnError, Model, Targets, Task};
use crate::metrics::Metrics;
use crate::record::{Label, Output, Prediction, Record};
use crate::retrain::{Reference, WaitPolicy};
use crate::store::versions::VersionRecord;
use crate::store::{KvStore, RetrainLog, StoreError, WriteBatch};
use crate::totals::{ResetReason, Scored, Total};

pub use report::{RetrainReport, RunOutcome, VersionMeta};
pub use state::LoopState;
pub use status::LoopStatus;
pub use worker::{load_version, Job, JobOutcome};

/// The labeled records among `records` as a dataset for a `task` model of `width` inputs
/// (records of another width or label kind are left out).
pub(crate) fn labeled_dataset<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    width: usize,
    task: Task,
) -> Result<Dataset, LearnError> {
    let (data, _) = labeled_rows(records.into_iter().map(|r| (r, true)), width, task)?;
    Ok(data)
}

/// [`labeled_dataset`] of records paired with a mark, and the marks of the records it took,
/// in its rows' order.
fn labeled_rows<'a>(
    records: impl IntoIterator<Item = (&'a Record, bool)>,
    width: usize,
    task: Task,
) -> Result<(Dataset, Vec<bool>), LearnError> {
    let mut x = Vec::new();
    let mut marks = Vec::new();
    let mut y = match task {
        Task::Classification => Targets::Classes(Vec::new()),
        Task::Regression => Targets::Values(Vec::new()),
    };
    for (r, mark) in records {
        if r.features.len() != width {
            continue;
        }
        match (r.label, &mut y) {
            (Some(Label::Class(c)), Targets::Classes(v)) => v.push(c),
            (Some(Label::Value(t)), Targets::Values(v)) => v.push(t),
            _ => continue,
        }
        x.extend_from_slice(&r.features);
        marks.push(mark);
    }
    Ok((Dataset::with_targets(x, y, width)?, marks))
}

/// A model's prediction for one labeled record, before it learns from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Assessment {
    /// The predicted class, or value.
    pub predicted: Label,
    /// Right: the predicted class, or for regression an absolute error within
    /// [`REGRESSION_HIT_WITHIN`] target standard deviations.
    pub hit: bool,
    /// Cross-entropy, or for regression the absolute error in target standard deviations.
    pub loss: f32,
    /// What the error-stream detectors see, in [0, 1]: 1 for a wrong class, 0 for a right one;
    /// for regression the absolute error in target standard deviations, capped at 1.
    pub error: f64,
}

/// A regression prediction counts as right (accuracy window, accuracy triggers, DDM) when
/// its absolute error is within this many standard deviations of the target.
pub const REGRESSION_HIT_WITHIN: f32 = 0.5;

/// One record's model output, borrowed: class probabilities, or the predicted value.
#[derive(Debug, Clone, Copy)]
enum Row<'a> {
    Class(&'a [f32]),
    Value(f32),
}

impl<'a> From<&'a Output> for Row<'a> {
    fn from(o: &'a Output) -> Row<'a> {
        match o {
            Output::Class { probabilities, .. } => Row::Class(probabilities),
            Output::Value(v) => Row::Value(*v),
        }
    }
}

/// The assessment of a model output for `label`; `target_sd` scales a regression error. None
/// when the label is of the other task's kind.
fn assess_row(row: Row<'_>, label: Label, target_sd: f32) -> Option<Assessment> {
    match (row, label) {
        (Row::Class(p), Label::Class(label)) => {
            let best = argmax(p) as u32;
            let hit = best == label;
            Some(Assessment {
                predicted: Label::Class(best),
                hit,
                loss: -(p.get(label as usize).copied().unwrap_or(0.0).max(1e-7)).ln(),
                error: if hit { 0.0 } else { 1.0 },
            })
        }
        (Row::Value(p), Label::Value(y)) => {
            let z = (y - p).abs() / target_sd.max(f32::MIN_POSITIVE);
            let z = if z.is_finite() { z } else { f32::MAX };
            Some(Assessment {
                predicted: Label::Value(p),
                hit: z <= REGRESSION_HIT_WITHIN,
                loss: z,
                error: f64::from(z).min(1.0),
            })
        }
        _ => None,
    }
}

/// The loss of each labeled record's prediction (in order, the records `assess_row` scores),
/// before output tracking: a regression's challenger verdicts pair them
/// (`Paired::push_raw`), and the challenger's are compared with `challenger.fitted_loss`.
/// The callers compute them only where they are used (the hot path of a classifier's
/// champion does not pay for them).
fn raw_losses(predictions: &[Prediction], records: &[&Record], sd: f32) -> Vec<f32> {
    records
        .iter()
        .zip(predictions)
        .filter_map(|(r, p)| {
            r.label
                .and_then(|l| assess_row(Row::from(&p.output), l, sd))
        })
        .map(|a| a.loss)
        .collect()
}

/// Applies output tracking to a chunk's predictions in record order: each record gets the
/// offset learned from the labeled records before it, then the tracker learns from the
/// model's own output for it and its label (see [`crate::learn::tracking`]). `sd` is the
/// regression target's standard deviation.
pub(crate) fn track(
    tracker: &mut Tracker,
    predictions: &mut [Prediction],
    x: &[f32],
    labels: impl IntoIterator<Item = Option<Label>>,
    sd: f32,
) {
    let inputs = tracker.inputs();
    // Inputs of another width (none given) leave the linear corrections out.
    let whole = inputs > 0 && x.len() == inputs * predictions.len();
    for (i, (p, label)) in predictions.iter_mut().zip(labels).enumerate() {
        let row = if whole {
            &x[i * inputs..(i + 1) * inputs]
        } else {
            &[][..]
        };
        tracker.track_output(&mut p.output, row, label, sd);
    }
}

/// The outputs a tracker of `model` corrects.
fn tracker_width(model: &Model) -> usize {
    match model.spec.task {
        Task::Classification => model.spec.classes,
        Task::Regression => 1,
    }
}

/// A new tracker for `model`'s outputs, when `model.output_tracking` is on.
fn new_tracker(config: &LearnerConfig, model: &Model) -> Option<Tracker> {
    config
        .model
        .output_tracking
        .then(|| Tracker::new(tracker_width(model), model.spec.input))
}

/// The prediction of `model` (serving as `version`) for each of the records whose inputs
/// are `x`.
pub(crate) fn predict(
    model: &Model,
    version: u64,
    x: &[f32],
) -> Result<Vec<Prediction>, LearnError> {
    Ok(match model.spec.task {
        Task::Classification => model
            .predict_proba(x)?
            .chunks_exact(model.spec.classes.max(1))
            .map(|row| Prediction {
                version,
                output: Output::Class {
                    class: argmax(row) as u32,
                    probabilities: row.to_vec(),
                },
            })
            .collect(),
        Task::Regression => model
            .predict_values(x)?
            .into_iter()
            .map(|v| Prediction {
                version,
                output: Output::Value(v),
            })
            .collect(),
    })
}

/// Whether a model predicted a labeled record right, and its loss.
/// A scored labeled record: whether the served output was right, its loss, and the loss of
/// the model's own output before output tracking.
type Hit = (bool, f32, f32);

/// Pairs the challenger's assessment of each labeled record of a chunk with the champion's
/// (`hits`, in the same order), counts it, and returns the labeled records (what the
/// challenger then learns from).
fn pair_chunk<'a>(
    challenger: &mut Challenger,
    state: &mut LoopState,
    config: &LearnerConfig,
    records: &[&'a Record],
    predictions: &[Prediction],
    raw: &[f32],
    hits: &[Hit],
) -> Vec<&'a Record> {
    let cfg = &config.challenger;
    let sd = challenger.model.target.std;
    let mut labeled = Vec::with_capacity(hits.len());
    let mut i = 0;
    for (r, p) in records.iter().zip(predictions) {
        let Some(a) = r
            .label
            .and_then(|l| assess_row(Row::from(&p.output), l, sd))
        else {
            continue;
        };
        let Some(&(champion_hit, champion_loss, champion_raw)) = hits.get(i) else {
            break;
        };
        let challenger_raw = raw.get(i).copied().unwrap_or(a.loss);
        if let (Some(Label::Value(y)), Label::Value(p)) = (r.label, a.predicted) {
            state.scores.challenger_regression.record(y, p);
        }
        let (champion_hit, challenger_hit) = match config.task() {
            Task::Classification => (champion_hit, a.hit),
            // Paired on which model came closer (a sign test; ties count for both).
            Task::Regression => (champion_loss <= a.loss, a.loss <= champion_loss),
        };
        let class = match r.label {
            Some(Label::Class(c)) => Some(c),
            _ => None,
        };
        challenger.paired.push(
            champion_hit,
            challenger_hit,
            champion_loss,
            a.loss,
            class,
            cfg.window,
        );
        if config.task() == Task::Regression {
            challenger
                .paired
                .push_raw(champion_raw, challenger_raw, cfg.window);
        }
        state.add_total(Total::Challenger(Scored::of(a.hit)), 1);
        labeled.push(*r);
        i += 1;
    }
    labeled
}

/// Which prediction a record was served with (what the prequential scores count).
#[derive(Debug, Clone)]
enum Served {
    /// The one the serving model makes now.
    Now,
    /// One made when a delayed label's features arrived (None: no model served then).
    Stored(Option<Prediction>),
    /// The one made now for the record at this index of the chunk (a delayed label whose
    /// features are in the same chunk).
    InChunk(usize),
}

/// What stops the loop.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error("model version {version}: {reason}")]
    Version { version: u64, reason: String },
}

impl From<LoopError> for IngestError {
    fn from(e: LoopError) -> IngestError {
        IngestError::Loop(Box::new(e))
    }
}

/// The serving model version with what was stored with it.
#[derive(Debug)]
pub struct Serving {
    pub version: u64,
    pub model: Model,
    pub ewc: Option<Ewc>,
    pub reference: Reference,
    pub record: VersionRecord<VersionMeta>,
}

/// The hot-swappable serving model: readers clone the `Arc` and never wait for a retrain.
pub type ServingSlot = Arc<RwLock<Option<Arc<Serving>>>>;

/// Reads the serving model (None before the first version).
pub fn current(slot: &ServingSlot) -> Option<Arc<Serving>> {
    slot.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Handles shared with HTTP: the serving slot, the manual-retrain request, and a status
/// snapshot the loop refreshes after every batch.
#[derive(Clone, Default)]
pub struct LoopHandle {
    pub serving: ServingSlot,
    pub manual: Arc<AtomicBool>,
    /// Layers a manual retrain should train (None: `retrain.layers`).
    pub manual_layers: Arc<std::sync::Mutex<Option<Vec<String>>>>,
    pub running: Arc<AtomicBool>,
    pub status: Arc<RwLock<LoopStatus>>,
    /// The challenger as of the last durable batch (shadow predictions).
    pub challenger: Arc<RwLock<Option<Arc<ChallengerSnapshot>>>>,
    /// Whole-stream prequential scores as of the last durable batch.
    pub scores: Arc<RwLock<state::Scoreboard>>,
    /// The same scores sampled over the stream (what `relearn eval` plots).
    pub curve: Arc<RwLock<state::Curve>>,
    /// The serving model's output tracking offset as of the last durable batch.
    pub shift: Arc<RwLock<Option<Shift>>>,
    /// The neighbours and their weight in the served output, copied after a durable batch at
    /// most once a second.
    pub neighbours: Arc<RwLock<Option<Arc<NeighboursSnapshot>>>>,
    /// The labels' recent distribution and its weight in the served output, as of the last
    /// durable batch (None: `prior.enabled` off, or no label yet).
    pub prior: Arc<RwLock<Option<PriorSnapshot>>>,
    /// Set at shutdown: a running retrain (inline or on the worker) stops before its next
    /// training step.
    pub cancel: Arc<AtomicBool>,
}

/// A copy of the challenger for `/v1/predict?model=challenger`.
#[derive(Debug)]
pub struct ChallengerSnapshot {
    pub model: Model,
    /// The champion version it was copied from.
    pub parent: Option<u64>,
    /// Its output tracking offset (None: `model.output_tracking` off).
    pub shift: Option<Shift>,
    /// Its weight in the served output (`challenger.blend`; 0: the champion alone serves).
    pub weight: f32,
}

/// A copy of the neighbours for `/v1/predict`.
#[derive(Debug)]
pub struct NeighboursSnapshot {
    pub neighbours: Neighbours,
    /// Their weight in the served output (`neighbours.blend`).
    pub weight: f32,
}

/// The labels' recent distribution for `/v1/predict`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorSnapshot {
    /// What it predicts (class probabilities or a value).
    pub output: Output,
    /// Its weight in the served output (`prior.blend`).
    pub weight: f32,
    /// The correction its own output tracking serves (`prior.tracking`), applied to
    /// `output` for each request's inputs.
    pub shift: Option<tracking::Shift>,
}

impl LoopHandle {
    /// The labels' recent distribution as of the last durable batch.
    pub fn prior(&self) -> Option<PriorSnapshot> {
        self.prior.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The neighbours as of the last durable batch (None: `neighbours.enabled` off).
    pub fn neighbours(&self) -> Option<Arc<NeighboursSnapshot>> {
        self.neighbours
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The serving model's output tracking offset as of the last durable batch.
    pub fn shift(&self) -> Option<Shift> {
        self.shift.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Cancels a running retrain and every later one (shutdown).
    pub fn cancel_training(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Asks for a retrain at the next loop tick, optionally of named layers.
    pub fn request_retrain(&self, layers: Option<Vec<String>>) {
        *self.manual_layers.lock().unwrap_or_else(|p| p.into_inner()) = layers;
        self.manual.store(true, Ordering::SeqCst);
    }

    /// Makes `serving` the serving model (an activation); the loop notices at its next batch.
    pub fn swap(&self, serving: Serving) {
        *self.serving.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(serving));
    }

    /// The challenger as of the last durable batch, if one learns.
    pub fn challenger(&self) -> Option<Arc<ChallengerSnapshot>> {
        self.challenger
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The last status snapshot.
    pub fn status(&self) -> LoopStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How records reach the loop, which decides what it may wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// A file replayed as fast as the loop goes: a triggered retrain runs inline
    /// (`retrain.wait = "auto"`) and the challenger learns from every chunk, so a replay is
    /// reproducible.
    Replay,
    /// Records arrive on their own time (Kafka): retrains run on the worker thread and the
    /// challenger keeps to `challenger.max_train_share` of the loop's time.
    Live,
}

/// The loop's part of the ingest thread.
pub struct Learner {
    config: LearnerConfig,
    store: Arc<dyn KvStore>,
    metrics: Metrics,
    handle: LoopHandle,
    state: LoopState,
    /// The recent window, `state.ring_pushed % window` is the next slot.
    ring: Vec<Record>,
    jobs: Option<worker::Worker>,
    results: mpsc::Receiver<JobOutcome>,
    results_tx: mpsc::Sender<JobOutcome>,
    records_total: u64,
    /// Learns from every labeled chunk beside the serving model (`[challenger]`); not stored:
    /// after a restart it starts again from the serving version.
    challenger: Option<Challenger>,
    /// The replay buffer as the challenger's replay and old-knowledge data.
    replay_cache: ReplayCache,
    /// `challenger.max_train_share` on Kafka (None: every chunk is learned from).
    train_budget: Option<challenger::TrainBudget>,
    /// What input drift is measured on (`LearnerConfig::drift_groups`), split once: the names of
    /// `state.features`' entries and their input groups.
    drift_names: Vec<String>,
    drift_groups: Vec<crate::drift::monitor::InputGroup>,
    /// The ring's hidden activations under the serving version, for the drift check.
    activations: ActivationCache,
    /// The champion's and the challenger's recent losses, which weigh them in the served
    /// output (`challenger.blend`).
    blend: challenger::Blend,
    /// The most recent labeled records, whose vote is blended into the served output
    /// (`[neighbours]`); rebuilt from the recent window at a start.
    neighbours: Option<Neighbours>,
    /// The networks' output's and the neighbours' recent losses (`neighbours.blend`).
    neighbours_blend: challenger::Blend,
    /// `neighbours.max_share` on Kafka (None: every chunk is voted on).
    neighbours_budget: Option<challenger::TrainBudget>,
    /// The labels' recent distribution, blended into the served output last (`[prior]`);
    /// rebuilt from the recent window at a start.
    prior: PriorMember,
    /// The rest of the served output's and the prior's recent losses (`prior.blend`).
    prior_blend: challenger::Blend,
    /// Labeled records scored at the last challenger promotion this process made after the
    /// warm-up: the challenger learns from every record for `challenger.window` records
    /// after it.
    challenger_promoted_at: Option<u64>,
    /// When the neighbours were last published on the handle.
    neighbours_published: Option<std::time::Instant>,
}

/// The shortest interval between two copies of the neighbours for `/v1/predict`.
const NEIGHBOURS_PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The replay buffer as a dataset, reloaded from the store every `REPLAY_RELOAD` labeled
/// records (not per chunk: a reload reads every slot).
#[derive(Debug, Default)]
struct ReplayCache {
    data: Option<Dataset>,
    loaded_at: u64,
}

impl ReplayCache {
    /// The buffer as of at most `REPLAY_RELOAD` labeled records ago (`labeled`: scored so
    /// far), or sooner while it is small: a copy taken when the buffer held `n` rows is
    /// reloaded after `n` (at least `REPLAY_RELOAD_MIN`) more, so a short stream's challenger
    /// replays what the stream has shown, not the empty buffer of its first chunk.
    fn get(
        &mut self,
        store: &dyn KvStore,
        width: usize,
        task: Task,
        labeled: u64,
    ) -> Result<&Dataset, LoopError> {
        let every = self
            .data
            .as_ref()
            .map_or(0, |d| d.len() as u64)
            .clamp(REPLAY_RELOAD_MIN, REPLAY_RELOAD);
        if self.data.is_none() || labeled >= self.loaded_at + every {
            self.data = Some(worker::replay_dataset(store, width, task)?);
            self.loaded_at = labeled;
        }
        Ok(self.data.as_ref().expect("loaded above"))
    }
}

/// Labeled records between two reloads of the replay buffer for the challenger.
const REPLAY_RELOAD: u64 = 5_000;

/// The shortest interval between two reloads of the replay buffer, in labeled records.
const REPLAY_RELOAD_MIN: u64 = 256;

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("serving", &self.state.serving_version)
            .finish()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Learner {
    /// Loads the serving version, the loop state and the recent window; starts the retrain
    /// worker thread unless `retrain.wait` is set.
    pub fn open(
        config: &LearnerConfig,
        store: Arc<dyn KvStore>,
        metrics: Metrics,
        handle: LoopHandle,
        pace: Pace,
    ) -> Result<Learner, LoopError> {
        let records_total = crate::store::IngestState::load(store.as_ref())?
            .counter(crate::store::state::counter::RECORDS);
        let serving = worker::load_active(store.as_ref(), config)?;
        let mut state = state::load(store.as_ref(), config)?;
        if !config.model.output_tracking {
            // Turned off since the state was written: serve the model's own output.
            state.tracker = None;
        }
        let ring = state::load_ring(store.as_ref(), config.drift.window)?;
        let active = serving.as_ref().map(|s| s.version);
        if state.serving_version != active {
            // A version was promoted (or activated by hand) after the last batch: the
            // detectors start over against it, as after any promotion.
            tracing::info!(from = ?state.serving_version, to = ?active, "serving version changed while stopped");
            state.on_new_version(config, active, now_ms());
        }
        let sd = serving.as_ref().map_or(1.0, |s| s.model.target.std);
        *handle.serving.write().unwrap_or_else(|p| p.into_inner()) = serving.map(Arc::new);
        state.restore_metrics(&metrics, config);
        metrics.learn.model_version.set(active.unwrap_or(0) as i64);
        let mut config = config.clone();
        config.train.cancel = crate::learn::train::CancelFlag::new(handle.cancel.clone());
        let config = &config;
        let (results_tx, results) = mpsc::channel();
        let wait = match config.retrain.wait {
            WaitPolicy::Always => true,
            WaitPolicy::Never => false,
            WaitPolicy::Auto => pace == Pace::Replay,
        };
        let jobs = if wait {
            None
        } else {
            Some(worker::spawn(
                config.clone(),
                store.clone(),
                handle.clone(),
                metrics.clone(),
                results_tx.clone(),
            ))
        };
        let (drift_names, drift_groups) = config.drift_groups.clone().into_iter().unzip();
        let neighbours = config
            .neighbours
            .enabled
            .then(|| rebuild_neighbours(config, &ring, state.ring_pushed));
        let prior = rebuild_prior(config, &ring, state.ring_pushed, sd);
        Ok(Learner {
            config: config.clone(),
            store,
            metrics,
            handle,
            state,
            ring,
            jobs,
            results,
            results_tx,
            records_total,
            challenger: None,
            replay_cache: ReplayCache::default(),
            train_budget: (pace == Pace::Live && config.challenger.max_train_share < 1.0)
                .then(|| challenger::TrainBudget::new(config.challenger.max_train_share)),
            drift_names,
            drift_groups,
            activations: ActivationCache::default(),
            blend: challenger::Blend::default(),
            neighbours,
            neighbours_blend: challenger::Blend::default(),
            prior,
            prior_blend: prior_blend(config),
            challenger_promoted_at: None,
            neighbours_budget: (pace == Pace::Live && config.neighbours.max_share < 1.0)
                .then(|| challenger::TrainBudget::new(config.neighbours.max_share)),
            neighbours_published: None,
        })
    }

    /// Names of the input groups whose last check drifted.
    fn drifted_features(&self) -> Vec<String> {
        self.drift_names
            .iter()
            .zip(&self.state.features)
            .filter(|(_, d)| d.drifted)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn status(&self) -> LoopStatus {
        let st = &self.state;
        LoopStatus {
            serving_version: st.serving_version,
            window_accuracy: st.window_accuracy(),
            window_loss: st.window_loss(),
            labeled_since_retrain: st.labeled_since_retrain,
            retrains_started: st.retrains,
            retrain_running: self.handle.running.load(Ordering::SeqCst),
            alarms: st.alarms.clone(),
            detectors: st.errors.readings().collect(),
            drifted_features: self.drifted_features(),
            new_category_rates: st.new_category_rates(&self.config),
            layer_shifts: st.layer_shifts.clone(),
            triggers: status::TriggerStatus {
                config: self.config.triggers.clone(),
                last_retrain_ms: st.trigger.last_retrain_ms,
            },
            totals: st.totals.clone(),
            challenger: self.challenger.as_ref().map(|c| {
                let acc = c.paired.accuracies();
                status::ChallengerStatus {
                    parent: c.parent,
                    layers: c.layers(),
                    paired_records: c.paired.len(),
                    champion_accuracy: acc.map(|a| a.0),
                    challenger_accuracy: acc.map(|a| a.1),
                    mcnemar_p: c.paired.mcnemar_p(),
                }
            }),
            output_tracking: st.tracker.as_ref().map(|t| status::TrackingStatus {
                rate: t.leader_rate().0,
                linear: t.leader_rate().1,
                persistence_weight: t.persistence_weight(),
                offsets: t.shift().offsets,
            }),
        }
    }

    /// The loop state (tests, status).
    pub fn state(&self) -> &LoopState {
        &self.state
    }

    fn labeled_window(&self) -> Result<Dataset, LearnError> {
        // Oldest first: slots from the next write position around.
        let n = self.ring.len();
        let start = if n < self.config.drift.window {
            0
        } else {
            (self.state.ring_pushed % n as u64) as usize
        };
        labeled_dataset(
            (0..n).map(|i| &self.ring[(start + i) % n]),
            self.config.input_width(),
            self.config.task(),
        )
    }

    /// Starts the serving model's output tracking over for a new serving version, warmed on
    /// the recent window (oldest first): the offsets and losses it would have now had this
    /// version served those records. Offsets learned on another model's outputs would carry
    /// that model's errors into this one's. On an error the tracker is kept as it is.
    fn rebase_tracker(&mut self) {
        let Some(serving) = current(&self.handle.serving) else {
            return;
        };
        let Some(mut tracker) = new_tracker(&self.config, &serving.model) else {
            return;
        };
        let warmed = self.labeled_window().and_then(|w| {
            let mut p = predict(&serving.model, serving.version, &w.x)?;
            let labels: Vec<Option<Label>> = match &w.y {
                Targets::Classes(c) => c.iter().map(|&c| Some(Label::Class(c))).collect(),
                Targets::Values(v) => v.iter().map(|&v| Some(Label::Value(v))).collect(),
            };
            track(&mut tracker, &mut p, &w.x, labels, serving.model.target.std);
            Ok(())
        });
        match warmed {
            Ok(()) => self.state.tracker = Some(tracker),
            Err(e) => {
                tracing::warn!(error = %e, "output tracking kept as it was: warming it on the recent window failed")
            }
        }
    }

    /// Scores the chunk's records with the serving model. Returns its prediction for every
    /// record and, for each labeled record in order, whether it predicts it right now and its
    /// loss (see [`assess_row`]): the input of the error detectors, the accuracy window and the
    /// paired test. The prequential scores count the prediction each record was served with
    /// (`served`).
    fn score(
        &mut self,
        serving: &Serving,
        x: &[f32],
        records: &[&Record],
        served: &[Served],
        challenger: Option<&[Prediction]>,
    ) -> Result<(Vec<Prediction>, Vec<Hit>), LoopError> {
        let mut hits = Vec::with_capacity(records.len());
        if records.is_empty() {
            return Ok((Vec::new(), hits));
        }
        let mut fresh = predict(&serving.model, serving.version, x)?;
        let k = serving.model.spec.classes;
        let sd = serving.model.target.std;
        // The raw losses pair a regression head's champion with its challenger.
        let raw = if self.config.task() == Task::Regression && self.config.challenger.enabled {
            raw_losses(&fresh, records, sd)
        } else {
            Vec::new()
        };
        let fits = |t: &Tracker| t.fits(tracker_width(&serving.model), serving.model.spec.input);
        if !self.state.tracker.as_ref().is_some_and(fits) {
            // None yet, or one stored for another shape (or before linear corrections).
            self.state.tracker = new_tracker(&self.config, &serving.model);
        }
        if let Some(t) = self.state.tracker.as_mut() {
            track(t, &mut fresh, x, records.iter().map(|r| r.label), sd);
        }
        // The champion's own predictions (the detectors and the paired test judge it), and
        // what is served: blended with the challenger's (`challenger.blend`).
        let eta = self.config.challenger.blend(self.config.task());
        let mut own = match challenger {
            Some(q) if eta > 0.0 && q.len() == fresh.len() => {
                let own = fresh.clone();
                blend(&mut self.blend, eta, &mut fresh, q, records, sd);
                Some(own)
            }
            _ => None,
        };
        // Then the neighbours' vote, weighed against that (`neighbours.blend`); they learn
        // from each labeled record once it is scored. On Kafka a backlog's chunks beyond
        // `neighbours.max_share` of the loop's time are served without the vote.
        let eta = self.config.neighbours.eta(self.config.task());
        let vote = eta > 0.0
            && self
                .neighbours_budget
                .as_mut()
                .is_none_or(|b| b.allows(std::time::Instant::now()));
        if let Some(nb) = self.neighbours.as_mut() {
            if vote {
                if own.is_none() {
                    own = Some(fresh.clone());
                }
                let started = std::time::Instant::now();
                let blend = &mut self.neighbours_blend;
                vote_and_learn(nb, blend, eta, &mut fresh, x, records, sd);
                if let Some(b) = self.neighbours_budget.as_mut() {
                    b.spend(started.elapsed().as_secs_f64());
                }
            } else {
                for r in records {
                    learn_neighbour(nb, r);
                }
                if eta > 0.0 {
                    self.metrics
                        .learn
                        .neighbours_skipped
                        .inc_by(records.len() as u64);
                }
            }
        }
        // Last, the labels' recent distribution (`prior.blend`); it counts each labeled
        // record once it is scored.
        let eta = self.config.prior.eta(self.config.task());
        if eta > 0.0 {
            if own.is_none() {
                own = Some(fresh.clone());
            }
            let inputs = self.config.input_width();
            for (i, (p, r)) in fresh.iter_mut().zip(records).enumerate() {
                let row = x.get(i * inputs..(i + 1) * inputs).unwrap_or(&[]);
                if let Some(output) = self.prior.step(row, r.label, sd) {
                    let vote = Prediction {
                        version: p.version,
                        output,
                    };
                    blend(
                        &mut self.prior_blend,
                        eta,
                        std::slice::from_mut(p),
                        std::slice::from_ref(&vote),
                        std::slice::from_ref(r),
                        sd,
                    );
                }
            }
        }
        for (i, (r, served)) in records.iter().zip(served).enumerate() {
            let p = &fresh[i];
            let champion = own.as_ref().map_or(p, |o| &o[i]);
            let Some(now) = r
                .label
                .and_then(|l| assess_row(Row::from(&champion.output), l, sd))
            else {
                self.state
                    .add_total(Total::Prediction(Scored::Unlabeled), 1);
                continue;
            };
            hits.push((
                now.hit,
                now.loss,
                raw.get(hits.len()).copied().unwrap_or(now.loss),
            ));
            self.state
                .push_prediction(now.hit, now.loss, self.config.drift.accuracy_window);
            for d in self.state.errors.update(now.error) {
                self.state.alarm(d);
            }
            let served = match served {
                Served::Now => Some(p),
                Served::Stored(stored) => stored.as_ref(),
                Served::InChunk(j) => fresh.get(*j),
            };
            let Some(label) = r.label else { continue };
            let realised = served
                .and_then(|p| assess_row(Row::from(&p.output), label, sd).map(|a| (p.version, a)));
            let Some((version, a)) = realised else {
                self.unscored(label);
                continue;
            };
            match (label, a.predicted) {
                (Label::Class(c), Label::Class(p)) => self.state.scores.record(c, p, k),
                (Label::Value(y), Label::Value(p)) => self.state.scores.regression.record(y, p),
                _ => {}
            }
            self.state.count_realised(version, a.hit);
            self.state
                .add_total(Total::Prediction(Scored::of(a.hit)), 1);
        }
        Ok((fresh, hits))
    }

    /// A labeled record no model scored (before the first model, or a delayed label whose
    /// features arrived then): the baselines see it.
    fn unscored(&mut self, label: Label) {
        let classes = self.config.classes.len();
        self.state.add_total(Total::Prediction(Scored::Unscored), 1);
        match label {
            Label::Class(c) => self.state.scores.observe(c, classes),
            Label::Value(y) => self.state.scores.regression.observe(y),
        }
    }

    /// The challenger's predictions for a chunk (each record before it learns from it; its
    /// output tracking learns as it goes); None while there is no challenger (the first
    /// chunk after a start: it is copied from the champion once the champion has scored
    /// the chunk, see `challenge`).
    fn challenger_outputs(
        &mut self,
        x: &[f32],
        records: &[&Record],
    ) -> Result<Option<ChallengerOutputs>, LoopError> {
        let cfg = &self.config.challenger;
        let Some(challenger) = self.challenger.as_mut() else {
            return Ok(None);
        };
        let mut predictions = predict(&challenger.model, 0, x)?;
        let sd = challenger.model.target.std;
        // Its raw losses: paired with the champion's for a regression head, and what
        // `challenger.fitted_loss` is compared with.
        let task = self.config.task();
        let raw = if task == Task::Regression || cfg.fitted_loss(task) > 0.0 {
            raw_losses(&predictions, records, sd)
        } else {
            Vec::new()
        };
        if let Some(t) = challenger.tracker.as_mut() {
            track(t, &mut predictions, x, records.iter().map(|r| r.label), sd);
        }
        Ok(Some(ChallengerOutputs { predictions, raw }))
    }

    /// The challenger's turn on a chunk the champion just scored: its predictions
    /// (`outputs`) are paired with the champion's `hits`, then it learns from the chunk's
    /// labeled records.
    fn challenge(
        &mut self,
        serving: &Serving,
        x: &[f32],
        records: &[&Record],
        hits: &[Hit],
        outputs: Option<ChallengerOutputs>,
    ) -> Result<(), LoopError> {
        // A young stream: rows replayed from the recent window (see
        // `ChallengerConfig::recent_replay_ratio`).
        let recent_ratio = self
            .config
            .challenger
            .recent_replay_ratio(self.config.task());
        let recent = if recent_ratio > 0.0 && self.state.scored() < self.config.drift.window as u64
        {
            Some(self.labeled_window()?)
        } else {
            None
        };
        let outputs = match outputs {
            Some(o) => o,
            None => {
                let cfg = &self.config.challenger;
                let seed = self.config.train.seed ^ self.state.ring_pushed;
                let tracker = self.state.tracker.as_ref();
                self.challenger = Some(Challenger::from_champion(
                    &serving.model,
                    tracker,
                    Some(serving.version),
                    cfg,
                    seed,
                ));
                self.blend.second_reset();
                match self.challenger_outputs(x, records)? {
                    Some(o) => o,
                    None => return Ok(()),
                }
            }
        };
        let cfg = &self.config.challenger;
        let seed = self.config.train.seed ^ self.state.ring_pushed;
        let Some(challenger) = self.challenger.as_mut() else {
            return Ok(());
        };
        let width = self.config.input_width();
        let ChallengerOutputs { predictions, raw } = outputs;
        // What it fits already is not learned from (`challenger.fitted_loss`), once the
        // warm-up is over and a window of records has passed since the last challenger
        // promotion after it: a young model, and one that follows a moving concept, learns
        // from every record.
        let skip = skips_fitted(cfg, self.state.scored(), self.challenger_promoted_at);
        let fitted = if skip {
            cfg.fitted_loss(self.config.task()) as f32
        } else {
            0.0
        };
        let labeled = pair_chunk(
            challenger,
            &mut self.state,
            &self.config,
            records,
            &predictions,
            &raw,
            hits,
        );
        // Every labeled record of the chunk, and whether the challenger learns from it.
        let marked = labeled.iter().enumerate().map(|(i, r)| {
            let learn = fitted <= 0.0 || raw.get(i).is_none_or(|&l| l >= fitted);
            (*r, learn)
        });
        let (learn, keep) = labeled_rows(marked, width, self.config.task())?;
        let skipped = keep.iter().filter(|&&k| !k).count() as u64;
        if skipped > 0 {
            self.state.add_total(Total::SkippedFitted, skipped);
        }
        let (lx, ly) = (learn.x, learn.y);
        if ly.is_empty() {
            return Ok(());
        }
        if let Some(b) = self.train_budget.as_mut() {
            if !b.allows(std::time::Instant::now()) {
                let unfitted = ly.len() as u64 - skipped;
                self.state.add_total(Total::SkippedForBudget, unfitted);
                return Ok(());
            }
        }
        let labeled = self.state.scored();
        let replay = match &recent {
            Some(rows) => Some(Replay {
                rows,
                ratio: recent_ratio,
            }),
            None if cfg.replay_ratio > 0.0 => Some(Replay {
                rows: self.replay_cache.get(
                    self.store.as_ref(),
                    width,
                    self.config.task(),
                    labeled,
                )?,
                ratio: cfg.replay_ratio,
            }),
            None => None,
        };
        let started = std::time::Instant::now();
        let keep = (skipped > 0).then_some(keep.as_slice());
        let learned = challenger.learn(&lx, &ly, keep, replay);
        if let Some(b) = self.train_budget.as_mut() {
            b.spend(started.elapsed().as_secs_f64());
        }
        match learned {
            Ok(_) => {}
            Err(LearnError::Diverged(loss, _)) => {
                tracing::warn!(
                    loss,
                    "challenger training diverged; reset from the champion"
                );
                let tracker = self.state.tracker.as_ref();
                challenger.reset(&serving.model, tracker, Some(serving.version), cfg, seed);
                self.blend.second_reset();
                self.state.add_total(Total::Reset(ResetReason::Diverged), 1);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// At a chunk boundary: promotes the challenger when the paired test says it is better
    /// and the old-knowledge gate agrees, resets it when the test says it is worse.
    fn judge_challenger(&mut self) -> Result<(), LoopError> {
        if self.handle.running.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(serving) = current(&self.handle.serving) else {
            return Ok(());
        };
        let Some(ch) = self.challenger.as_mut() else {
            return Ok(());
        };
        let cfg = &self.config.challenger;
        let scored = self.state.scored();
        if scored < cfg.warmup_labeled && ch.warmup_verdict(cfg, cfg.chunk) == Verdict::Better {
            return self.promote_challenger(&serving, true);
        }
        match ch.verdict(cfg) {
            Verdict::Undecided => Ok(()),
            Verdict::Worse => {
                let seed = self.config.train.seed ^ self.state.ring_pushed;
                tracing::debug!(
                    p = ch.paired.mcnemar_p(),
                    champion_only = ch.paired.champion_only,
                    challenger_only = ch.paired.challenger_only,
                    "challenger behind the champion; reset from it"
                );
                let tracker = self.state.tracker.as_ref();
                ch.reset(&serving.model, tracker, Some(serving.version), cfg, seed);
                self.blend.second_reset();
                self.state.add_total(Total::Reset(ResetReason::Behind), 1);
                Ok(())
            }
            Verdict::Better => self.promote_challenger(&serving, false),
        }
    }

    /// The gate and, when it passes, the new version: written in its own batch (checkpoint,
    /// metadata, active pointer, report), then swapped in.
    fn promote_challenger(
        &mut self,
        serving: &Arc<Serving>,
        warmup: bool,
    ) -> Result<(), LoopError> {
        let width = self.config.input_width();
        let labeled = self.state.scored();
        self.replay_cache
            .get(self.store.as_ref(), width, self.config.task(), labeled)?;
        let recent = self.labeled_window()?;
        let Some(ch) = self.challenger.as_mut() else {
            return Ok(());
        };
        let replay = self.replay_cache.data.as_ref().expect("loaded above");
        let (validation, allowed) = challenger_validation(serving, ch, replay, &self.config)?;
        let crate::retrain::Validation {
            new_current,
            new_candidate,
            forgetting,
            ..
        } = validation;
        let reason = format!(
            "challenger better on the last {} paired records: {:.4} vs {:.4}, McNemar p = {:.2e}{}",
            ch.paired.len(),
            new_candidate,
            new_current,
            ch.paired.mcnemar_p(),
            if warmup {
                " (warm-up: challenger.warmup_labeled)"
            } else {
                ""
            }
        );
        self.state.retrains += 1;
        let seq = self.state.retrains;
        self.state
            .add_total(Total::Trigger(TriggerKind::Challenger), 1);
        let promote = forgetting <= allowed && !recent.is_empty();
        let (outcome, detail) = if promote {
            (RunOutcome::Promoted, String::new())
        } else {
            (
                RunOutcome::Rejected,
                format!(
                    "forgetting {forgetting:.4} on {} replay records exceeds {allowed:.4} (retrain.max_forgetting plus the champion's drop from replay to recent records)",
                    validation.old_records
                ),
            )
        };
        let mut report = challenger_report(ch, seq, serving.version, self.records_total);
        report.reason.clone_from(&reason);
        report.outcome = outcome;
        report.detail.clone_from(&detail);
        report.validation = Some(validation);
        report.forgetting_allowed = Some(allowed);
        let mut batch = WriteBatch::new();
        let promoted = if promote {
            let staged = stage_challenger_version(
                &self.config,
                self.store.as_ref(),
                serving,
                ch,
                (&recent, seq),
                &mut batch,
                &mut report,
            )?;
            Some(staged)
        } else {
            None
        };
        RetrainLog::stage(&mut batch, seq, &report)?;
        self.store.write(batch)?;
        self.state.add_total(Total::Run(outcome), 1);
        ch.paired.clear();
        match promoted {
            Some(s) => self.serve_promoted_challenger(s, serving.version, &reason),
            None => tracing::info!(%detail, "challenger rejected by the old-knowledge gate"),
        }
        Ok(())
    }

    /// The challenger's new version `s` serves from now on: the loop's detectors and output
    /// tracking start over for it, and the challenger (the same model) takes its offsets.
    fn serve_promoted_challenger(&mut self, s: Serving, parent: u64, reason: &str) {
        let version = s.version;
        tracing::info!(version, parent, %reason, "challenger promoted");
        *self
            .handle
            .serving
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(s));
        self.state
            .add_total(Total::Promotion(TriggerKind::Challenger), 1);
        // Promotions in the warm-up are a young model's; after it, one that keeps being
        // promoted follows a moving concept.
        if self.state.scored() >= self.config.challenger.warmup_labeled {
            self.challenger_promoted_at = Some(self.state.scored());
        }
        self.metrics.learn.model_version.set(version as i64);
        self.state
            .on_new_version(&self.config, Some(version), now_ms());
        self.rebase_tracker();
        if let Some(ch) = self.challenger.as_mut() {
            ch.parent = Some(version);
            // The same model as the new champion now: the same offsets.
            ch.tracker = self.state.tracker.clone();
        }
        // The champion is the challenger's model now: its record is the challenger's.
        self.blend.first_replaced();
    }

    fn check_inputs(&mut self, serving: &Serving) -> Result<(), LoopError> {
        let width = self.config.input_width();
        if self.ring.len() < 100 || serving.reference.features.is_empty() {
            return Ok(());
        }
        let x: Vec<f32> = self
            .ring
            .iter()
            .flat_map(|r| r.features.iter().copied())
            .collect();
        let features = grouped_drift(
            &serving.reference.features,
            &x,
            width,
            &self.drift_groups,
            &self.config.drift,
        );
        if features.iter().any(|f| f.drifted) {
            self.state.alarm(Detector::FeatureKs);
        }
        self.state.features = features;
        let now = self
            .activations
            .stats(serving.version, &serving.model, &x)?;
        self.state.layer_shifts = now
            .iter()
            .map(|s| {
                let shift = serving
                    .reference
                    .activations
                    .iter()
                    .find(|r| r.layer == s.layer)
                    .map_or(0.0, |r| layer_shift(r, s));
                (s.layer.clone(), shift)
            })
            .collect();
        if self
            .state
            .layer_shifts
            .iter()
            .any(|(_, s)| *s >= self.config.drift.layer_shift_threshold)
        {
            self.state.alarm(Detector::LayerShift);
        }
        Ok(())
    }

    /// Folds a finished retrain into the loop state (the worker already moved the metrics).
    fn handle_result(&mut self, r: JobOutcome) {
        let now = now_ms();
        trigger::record_retrain(&mut self.state.trigger, now);
        self.state.labeled_since_retrain = 0;
        self.state.add_total(Total::Run(r.outcome), 1);
        self.state.mark_published(Total::Run(r.outcome));
        if let Some(v) = r.promoted_version {
            self.state.add_total(Total::Promotion(r.trigger.kind), 1);
            self.state.on_new_version(&self.config, Some(v), now);
            self.rebase_tracker();
            if let Some(ch) = self.challenger.as_mut() {
                // The paired record was against the previous champion.
                ch.paired.clear();
            }
            self.blend.first_replaced();
        } else {
            self.state.alarms.clear();
            if r.outcome == RunOutcome::Rejected {
                self.state.rejected_in_row = self.state.rejected_in_row.saturating_add(1);
            }
        }
    }

    fn poll_results(&mut self) {
        let mut any = false;
        while let Ok(r) = self.results.try_recv() {
            self.handle_result(r);
            any = true;
        }
        if any {
            self.state.publish_metrics(&self.metrics, &self.config);
        }
    }

    fn dispatch(&mut self, firing: Firing) {
        let recent = match self.labeled_window() {
            Ok(d) if d.len() >= 10 => d,
            Ok(_) | Err(_) => {
                tracing::warn!(
                    trigger = firing.kind.as_str(),
                    "too few labeled records in the recent window; retrain skipped"
                );
                return;
            }
        };
        // The report names what drifted in the window this retrain learns from, not what the
        // last periodic check (up to `drift.check_every` records ago) saw.
        let serving = current(&self.handle.serving);
        if let Some(s) = &serving {
            if let Err(e) = self.check_inputs(s) {
                tracing::warn!(%e, "drift diagnosis before the retrain failed; using the last check");
            }
        }
        self.state.retrains += 1;
        self.state.add_total(Total::Trigger(firing.kind), 1);
        self.metrics.retrain.running.set(1);
        self.handle.running.store(true, Ordering::SeqCst);
        self.state.publish_metrics(&self.metrics, &self.config);
        tracing::info!(trigger = firing.kind.as_str(), reason = %firing.reason, records = recent.len(), "retrain started");
        let manual_layers = if firing.kind == trigger::TriggerKind::Manual {
            self.handle
                .manual_layers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        } else {
            None
        };
        let job = Job {
            seq: self.state.retrains,
            firing,
            current: serving,
            recent,
            records_total: self.records_total,
            layers: manual_layers,
            alarms: self.state.alarms.iter().cloned().collect(),
            drifted_features: self.drifted_features(),
            new_category_rates: self.state.new_category_rates(&self.config),
            layer_shifts: self.state.layer_shifts.clone(),
        };
        match &self.jobs {
            Some(w) => {
                if !w.send(job) {
                    tracing::error!("retrain worker is gone");
                }
            }
            None => {
                let out = worker::execute(
                    &self.config,
                    self.store.as_ref(),
                    &self.handle,
                    &self.metrics,
                    job,
                );
                let _ = self.results_tx.send(out);
                self.poll_results();
            }
        }
    }

    fn evaluate_triggers(&mut self, now: u64) -> Option<Firing> {
        // At shutdown training is cancelled: starting another retrain (the bootstrap would
        // fire again at every record of the open batch) only delays the exit.
        if self.handle.running.load(Ordering::SeqCst) || self.handle.cancel.load(Ordering::SeqCst) {
            return None;
        }
        let serving = current(&self.handle.serving);
        if serving.is_none() {
            let labeled = self.ring.iter().filter(|r| r.label.is_some()).count();
            return (labeled >= self.config.bootstrap_labeled).then(|| Firing::bootstrap(labeled));
        }
        let manual = self.handle.manual.swap(false, Ordering::SeqCst);
        let obs = Observation {
            now_ms: now,
            labeled_since_retrain: self.state.labeled_since_retrain,
            window_accuracy: self.state.window_accuracy(),
            reference_accuracy: serving.as_ref().and_then(|s| s.reference.accuracy),
            drift_alarms: self.state.alarms.iter().cloned().collect(),
            manual,
            rejected_in_row: self.state.rejected_in_row,
        };
        trigger::evaluate(&self.config.triggers, &mut self.state.trigger, &obs)
    }
}

/// The challenger's predictions for a chunk, made before the champion's are scored.
struct ChallengerOutputs {
    /// With its output tracking, in record order.
    predictions: Vec<Prediction>,
    /// Its losses before output tracking on the labeled records (see `raw_losses`; empty
    /// where nothing uses them).
    raw: Vec<f32>,
}

/// Whether the challenger leaves out what it fits (`challenger.fitted_loss`) now that
/// `scored` labeled records were scored, its last promotion after the warm-up at
/// `promoted_at` (none yet: `None`): once the warm-up is over and a paired window has
/// passed since that promotion.
fn skips_fitted(cfg: &challenger::ChallengerConfig, scored: u64, promoted_at: Option<u64>) -> bool {
    scored >= cfg.warmup_labeled && promoted_at.is_none_or(|p| scored >= p + cfg.window as u64)
}

/// The cross-entropy that weighs a classifier's output in the blends is capped here (a
/// probability of e^-3, about 0.05, given the label): an output that gave the label less is
/// charged as if it gave it that much, so a few confident errors of an accurate output do not
/// hand the served weight to a calibrated but less accurate one (the labels' prior, whose
/// recent loss is never high). Measured with `relearn eval` (defaults, model seeds 1-4,
/// 2026-12-07), mean accuracy over 24 classification streams with the cap at 16 (a
/// probability of 1e-7, before) -> 3: 0.8909 -> 0.8918; moving squares (scikit-multiflow's,
/// 200,000 records, not a development stream) 0.8458 -> 0.8604, the 20-class RandomRBF
/// +0.33 points, ImageSegments +0.21, RandomTree +0.13, Elec2 +0.11, chess -0.20 (one record
/// of 503), none other below by more than 0.08. A cap of 5 gained less (moving squares
/// +1.30, the mean 0.8916), 2 too (0.8915, solar flares -0.30); the Brier score instead of
/// the cross-entropy (twice it) 0.8919 with ImageSegments -0.19 and Phishing -0.16 on
/// seeds 2-4.
pub const BLEND_CROSS_ENTROPY_CAP: f64 = 3.0;

/// The loss of one model's output for a label that weighs it in the blend: the
/// cross-entropy (capped at [`BLEND_CROSS_ENTROPY_CAP`]), or the absolute error in target
/// standard deviations `sd` (capped at 3, as output tracking's).
fn blend_loss(output: &Output, label: Label, sd: f32) -> Option<f64> {
    match (output, label) {
        (Output::Class { probabilities, .. }, Label::Class(y)) => {
            let p = probabilities.get(y as usize).copied()?;
            Some((-f64::from(p.max(1e-7)).ln()).min(BLEND_CROSS_ENTROPY_CAP))
        }
        (Output::Value(v), Label::Value(y)) => {
            let sd = if sd.is_finite() && sd > 0.0 { sd } else { 1.0 };
            let e = f64::from(((y - v) / sd).abs());
            e.is_finite()
                .then_some(e.min(f64::from(tracking::RESIDUAL_CLIP)))
        }
        _ => None,
    }
}

/// Blends the champion's predictions (`served`, in place) with the challenger's by their
/// recent losses, record by record in order (each weighed by the records before it; see
/// `challenger.blend`), and charges each model its loss on each labeled record.
fn blend(
    state: &mut challenger::Blend,
    eta: f64,
    served: &mut [Prediction],
    challenger: &[Prediction],
    records: &[&Record],
    sd: f32,
) {
    for ((p, q), r) in served.iter_mut().zip(challenger).zip(records) {
        let w = state.weight(eta);
        let losses = r
            .label
            .and_then(|l| Some((blend_loss(&p.output, l, sd)?, blend_loss(&q.output, l, sd)?)));
        match (&mut p.output, &q.output) {
            (
                Output::Class {
                    class,
                    probabilities,
                },
                Output::Class {
                    probabilities: theirs,
                    ..
                },
            ) if probabilities.len() == theirs.len() => {
                for (a, &b) in probabilities.iter_mut().zip(theirs) {
                    *a = (1.0 - w) * *a + w * b;
                }
                *class = argmax(probabilities) as u32;
            }
            (Output::Value(v), Output::Value(theirs)) if theirs.is_finite() => {
                *v = (1.0 - w) * *v + w * theirs;
            }
            _ => continue,
        }
        if let Some((champion, challenger)) = losses {
            state.observe(champion, challenger);
        }
    }
}

/// The neighbours of the labeled records in the recent window (`ring`, `pushed` records put
/// in it so far), oldest first.
fn rebuild_neighbours(config: &LearnerConfig, ring: &[Record], pushed: u64) -> Neighbours {
    let mut nb = Neighbours::new(
        config.spec.classes,
        config.input_width(),
        &config.neighbours,
    );
    for r in ring_in_order(ring, pushed) {
        learn_neighbour(&mut nb, r);
    }
    nb
}

/// The records of the recent window (`ring`, `pushed` records put in it so far), oldest
/// first.
fn ring_in_order(ring: &[Record], pushed: u64) -> impl Iterator<Item = &Record> {
    let start = if ring.is_empty() {
        0
    } else {
        (pushed % ring.len() as u64) as usize
    };
    ring[start..].iter().chain(&ring[..start])
}

/// The prior over the task's labels (with its output tracking), learned from the labeled
/// records of the recent window (`ring`, `pushed` records put) in arrival order, test then
/// train as the loop does; `sd` is the serving model's target standard deviation.
fn rebuild_prior(config: &LearnerConfig, ring: &[Record], pushed: u64, sd: f32) -> PriorMember {
    let classes = match config.task() {
        Task::Classification => config.classes.len(),
        Task::Regression => 0,
    };
    let mut prior = PriorMember::new(classes, config.input_width(), config.prior.tracking);
    for r in ring_in_order(ring, pushed) {
        if r.label.is_some() {
            prior.step(&r.features, r.label, sd);
        }
    }
    prior
}

/// The blend of the rest of the served output and the prior, the prior's weight starting
/// at `prior::START_WEIGHT` (see `[prior]`).
fn prior_blend(config: &LearnerConfig) -> challenger::Blend {
    let eta = config.prior.eta(config.task());
    if eta <= 0.0 {
        return challenger::Blend::default();
    }
    let start = crate::learn::prior::START_WEIGHT;
    challenger::Blend::handicapped(((1.0 - start) / start).ln() / eta)
}

/// Keeps a labeled record among the neighbours.
fn learn_neighbour(nb: &mut Neighbours, r: &Record) {
    match r.label {
        Some(Label::Class(c)) => nb.learn(&r.features, c as f32),
        Some(Label::Value(y)) => nb.learn(&r.features, y),
        None => {}
    }
}

/// The neighbours' vote for raw inputs `x`, in the shape of `like` (None: no vote yet).
fn neighbours_vote(nb: &Neighbours, x: &[f32], like: &Output) -> Option<Output> {
    match like {
        Output::Class { probabilities, .. } => {
            let mut p = vec![0.0; probabilities.len()];
            nb.predict_class(x, &mut p).then(|| Output::Class {
                class: argmax(&p) as u32,
                probabilities: p,
            })
        }
        Output::Value(_) => nb.predict_value(x).map(Output::Value),
    }
}

/// Blends the neighbours' vote into each served prediction (`served`, in place; the
/// records' inputs `x`) by the recent losses in `state`, record by record, each record
/// learned from once it is served.
fn vote_and_learn(
    nb: &mut Neighbours,
    state: &mut challenger::Blend,
    eta: f64,
    served: &mut [Prediction],
    x: &[f32],
    records: &[&Record],
    sd: f32,
) {
    let inputs = nb.inputs();
    let whole = x.len() == inputs * served.len();
    for (i, (p, r)) in served.iter_mut().zip(records).enumerate() {
        let row = if whole {
            &x[i * inputs..(i + 1) * inputs]
        } else {
            &r.features[..]
        };
        if let Some(output) = neighbours_vote(nb, row, &p.output) {
            let vote = Prediction {
                version: p.version,
                output,
            };
            blend(
                state,
                eta,
                std::slice::from_mut(p),
                std::slice::from_ref(&vote),
                std::slice::from_ref(r),
                sd,
            );
        }
        learn_neighbour(nb, r);
    }
}

impl Learner {
    /// A version activated by an operator (a rollback) while no retrain runs: the detectors
    /// start over against it.
    fn follow_operator_activation(&mut self) {
        let active = current(&self.handle.serving).map(|s| s.version);
        if active == self.state.serving_version || self.handle.running.load(Ordering::SeqCst) {
            return;
        }
        tracing::info!(from = ?self.state.serving_version, to = ?active, "serving version changed");
        self.state.on_new_version(&self.config, active, now_ms());
        self.rebase_tracker();
        if let Some(v) = active {
            self.metrics.learn.model_version.set(v as i64);
        }
    }

    /// Scores one chunk with the serving model (a joined label counts the prediction made
    /// when its features arrived: stored, or earlier in this batch, `before`), lets the
    /// challenger learn from it, and keeps each record's fresh prediction.
    fn score_chunk(
        &mut self,
        serving: &Serving,
        before: &[Observed],
        observed: &mut [Observed],
    ) -> Result<(), IngestError> {
        let chunk: Vec<&Record> = observed.iter().map(|o| &o.record).collect();
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|r| r.features.iter().copied())
            .collect();
        let base = before.len();
        let served: Vec<Served> = observed
            .iter()
            .map(|o| match &o.join {
                Join::Joined(Made::Stored(p)) => Served::Stored(p.clone()),
                Join::Joined(Made::InBatch(i)) if *i < base => {
                    Served::Stored(before.get(*i).and_then(|b| b.prediction.clone()))
                }
                Join::Joined(Made::InBatch(i)) => Served::InChunk(i - base),
                Join::None | Join::Waiting => Served::Now,
            })
            .collect();
        let challenger = if self.config.challenger.enabled {
            self.challenger_outputs(&x, &chunk)?
        } else {
            None
        };
        let (fresh, hits) = self.score(
            serving,
            &x,
            &chunk,
            &served,
            challenger.as_ref().map(|c| c.predictions.as_slice()),
        )?;
        if self.config.challenger.enabled {
            self.challenge(serving, &x, &chunk, &hits, challenger)?;
        }
        for (o, p) in observed.iter_mut().zip(fresh) {
            o.prediction = Some(p);
        }
        Ok(())
    }

    /// Counts new categories and puts the chunk's records in the recent window (the ring,
    /// staged into `batch`).
    fn remember(&mut self, observed: &[Observed], batch: &mut WriteBatch) {
        let window = self.config.drift.window;
        let fields = self.config.categorical.len();
        if fields > 0 {
            // Each record once, when it arrives (a joined label brings it a second time).
            for o in observed
                .iter()
                .filter(|o| !matches!(o.join, Join::Joined(_)))
            {
                self.state
                    .observe_new_categories(fields, o.new_categories, window);
            }
        }
        for r in observed.iter().map(|o| &o.record) {
            let slot = (self.state.ring_pushed % window as u64) as usize;
            state::stage_ring_slot(batch, slot, r);
            if slot < self.ring.len() {
                self.ring[slot] = r.clone();
                self.activations.forget(slot);
            } else {
                self.ring.push(r.clone());
            }
            self.state.ring_pushed += 1;
            if r.label.is_some() {
                self.state.labeled_since_retrain += 1;
            }
        }
    }
}

impl BatchObserver for Learner {
    fn stage(
        &mut self,
        records: &mut [Observed],
        batch: &mut WriteBatch,
    ) -> Result<(), IngestError> {
        self.poll_results();
        self.follow_operator_activation();
        let timed =
            self.config.triggers.interval.is_some() || self.handle.manual.load(Ordering::SeqCst);
        if records.is_empty() && timed && current(&self.handle.serving).is_some() {
            // A tick: manual and scheduled triggers fire without records. Record-driven ones
            // wait for records, so a file replay retrains at the same records run to run.
            if let Some(f) = self.evaluate_triggers(now_ms()) {
                self.dispatch(f);
            }
        }
        let mut start = 0;
        while start < records.len() {
            // Chunks end at multiples of `challenger.chunk` records of the whole stream, so where triggers
            // are evaluated does not depend on how the source cut its batches. Before the first
            // model every record is a boundary: it is trained as soon as
            // `model.bootstrap_labeled` labeled records are in, and scores the very next record.
            // Test, then train: the chunk is scored by the model serving before any retrain
            // that it triggers.
            let serving = current(&self.handle.serving);
            let chunk_len = if serving.is_some() {
                self.config.challenger.chunk
            } else {
                1
            };
            let to_boundary = chunk_len - (self.state.ring_pushed % chunk_len as u64) as usize;
            let end = start + to_boundary.min(records.len() - start);
            let at_boundary = end - start == to_boundary;
            let (before, rest) = records.split_at_mut(start);
            let observed = &mut rest[..end - start];
            start = end;
            if let Some(s) = &serving {
                self.score_chunk(s, before, observed)?;
            } else {
                for o in observed.iter() {
                    if let Some(label) = o.record.label {
                        self.unscored(label);
                    }
                    if let Some(nb) = self.neighbours.as_mut() {
                        learn_neighbour(nb, &o.record);
                    }
                }
            }
            self.remember(observed, batch);
            self.records_total += observed.len() as u64;
            self.handle
                .curve
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .observe(self.records_total, &self.state.scores);
            self.state.records_since_check += observed.len() as u64;
            if let Some(s) = &serving {
                if self.state.records_since_check >= self.config.drift.check_every {
                    self.state.records_since_check = 0;
                    self.check_inputs(s)?;
                }
            }
            if at_boundary {
                if let Some(f) = self.evaluate_triggers(now_ms()) {
                    self.dispatch(f);
                }
                if self.config.challenger.enabled {
                    self.judge_challenger()?;
                }
            }
        }
        state::stage(batch, &self.state)?;
        Ok(())
    }

    fn committed(&mut self, records_total: u64) {
        self.records_total = records_total;
        self.state.publish_metrics(&self.metrics, &self.config);
        if let Some(ch) = &self.challenger {
            let m = &self.metrics;
            if let Some((champion, challenger)) = ch.paired.accuracies() {
                m.learn
                    .paired_accuracy
                    .with_label_values(&["champion"])
                    .set(champion);
                m.learn
                    .paired_accuracy
                    .with_label_values(&["challenger"])
                    .set(challenger);
                m.learn.paired_difference.set(challenger - champion);
            }
            let cost = ch.cost();
            m.learn
                .online_flops
                .with_label_values(&["executed"])
                .set(cost.flops);
            m.learn
                .online_flops
                .with_label_values(&["full_estimate"])
                .set(cost.flops_full);
            let weight = self
                .blend
                .weight(self.config.challenger.blend(self.config.task()));
            m.learn.challenger_weight.set(f64::from(weight));
            *self
                .handle
                .challenger
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(ChallengerSnapshot {
                model: ch.model.clone(),
                parent: ch.parent,
                shift: ch.tracker.as_ref().map(Tracker::shift),
                weight,
            }));
        }
        if let Some(t) = &self.state.tracker {
            self.metrics
                .learn
                .output_tracking_rate
                .set(f64::from(t.leader_rate().0));
            self.metrics
                .learn
                .output_tracking_persistence
                .set(f64::from(t.persistence_weight()));
        }
        *self.handle.shift.write().unwrap_or_else(|p| p.into_inner()) =
            self.state.tracker.as_ref().map(Tracker::shift);
        // The neighbours' copy for `/v1/predict` (window x inputs floats) is taken at most
        // every `NEIGHBOURS_PUBLISH_EVERY`, not at every batch.
        let due = self
            .neighbours_published
            .is_none_or(|t| t.elapsed() >= NEIGHBOURS_PUBLISH_EVERY);
        if let Some(nb) = self.neighbours.as_ref().filter(|_| due) {
            self.neighbours_published = Some(std::time::Instant::now());
            let weight = self
                .neighbours_blend
                .weight(self.config.neighbours.eta(self.config.task()));
            self.metrics.learn.neighbours_weight.set(f64::from(weight));
            *self
                .handle
                .neighbours
                .write()
                .unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(NeighboursSnapshot {
                neighbours: nb.clone(),
                weight,
            }));
        }
        let eta = self.config.prior.eta(self.config.task());
        let prior = self
            .prior
            .output()
            .filter(|_| eta > 0.0)
            .map(|output| PriorSnapshot {
                output,
                weight: self.prior_blend.weight(eta),
                shift: self.prior.shift(),
            });
        self.metrics
            .learn
            .prior_weight
            .set(prior.as_ref().map_or(0.0, |p| f64::from(p.weight)));
        *self.handle.prior.write().unwrap_or_else(|p| p.into_inner()) = prior;
        *self
            .handle
            .scores
            .write()
            .unwrap_or_else(|p| p.into_inner()) = self.state.scores.clone();
        let status = self.status();
        *self
            .handle
            .status
            .write()
            .unwrap_or_else(|p| p.into_inner()) = status;
    }
}

/// The gate's view of a promotion: both models on the first `retrain.validation_replay`
/// replay records and on the recent paired window, and the forgetting allowed
/// ([`challenger::forgetting_allowed`]).
fn challenger_validation(
    serving: &Serving,
    ch: &Challenger,
    replay: &Dataset,
    config: &LearnerConfig,
) -> Result<(crate::retrain::Validation, f64), LoopError> {
    let n_old = replay.len().min(config.retrain.validation_replay);
    let old = replay.subset(&(0..n_old).collect::<Vec<_>>());
    let (old_current, old_candidate) = if old.is_empty() {
        (0.0, 0.0)
    } else {
        (serving.model.score(&old)?, ch.model.score(&old)?)
    };
    let (new_current, new_candidate) = recent_scores(&ch.paired, config.task());
    let allowed =
        challenger::forgetting_allowed(config.retrain.max_forgetting, old_current, new_current);
    let validation = crate::retrain::Validation::of(
        (new_current, new_candidate, ch.paired.len()),
        (old_current, old_candidate, old.len()),
    );
    Ok((validation, allowed))
}

/// Stages the promoted challenger as a new version (its EWC anchor consolidated on the
/// `recent` records) into `batch`; `seq` is the run's number.
fn stage_challenger_version(
    config: &LearnerConfig,
    store: &dyn KvStore,
    serving: &Serving,
    ch: &Challenger,
    (recent, seq): (&Dataset, u64),
    batch: &mut WriteBatch,
    report: &mut RetrainReport,
) -> Result<Serving, LoopError> {
    let mut candidate = ch.model.clone();
    candidate.reset_require_grad();
    let ewc = match &serving.ewc {
        Some(e) if config.ewc.lambda > 0.0 => {
            let mut e = e.clone();
            e.consolidate(&candidate, recent, config.ewc.fisher_examples)?;
            Some(e)
        }
        _ => None,
    };
    let (_, accuracy) = recent_scores(&ch.paired, config.task());
    let seed = config.train.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    worker::stage_version(
        config,
        store,
        batch,
        worker::NewVersion {
            candidate: &candidate,
            ewc: ewc.as_ref(),
            trained_on: recent,
            accuracy: Some(accuracy),
            seed,
            parent: Some(serving.version),
        },
        report,
    )
}

/// The gate's scores on the recent paired records, champion's then challenger's: accuracy,
/// or for regression minus the mean absolute error in target standard deviations (as
/// `Model::score` on the replay).
fn recent_scores(paired: &challenger::Paired, task: Task) -> (f64, f64) {
    match task {
        Task::Classification => paired.accuracies().unwrap_or((0.0, 0.0)),
        Task::Regression => paired
            .mean_losses()
            .map(|(a, b)| (-a, -b))
            .unwrap_or((0.0, 0.0)),
    }
}

/// The report of the challenger's trip `seq` through the gate against version `parent`,
/// its verdict (reason, outcome, validation) still to be filled in.
fn challenger_report(ch: &Challenger, seq: u64, parent: u64, records_total: u64) -> RetrainReport {
    let cost = ch.cost();
    RetrainReport {
        retrain: seq,
        trigger: TriggerKind::Challenger,
        reason: String::new(),
        outcome: RunOutcome::Rejected,
        detail: String::new(),
        parent: Some(parent),
        version: None,
        layers: ch.layers(),
        layer_choice: Vec::new(),
        validation: None,
        train: None,
        cost: None,
        online_cost: Some(report::OnlineCostReport {
            steps: cost.steps,
            examples: cost.examples,
            flops: cost.flops,
            full_flops: cost.flops_full,
        }),
        forgetting_allowed: None,
        records_total,
        alarms: Vec::new(),
        drifted_features: Vec::new(),
        new_category_rates: std::collections::BTreeMap::new(),
        layer_shifts: Vec::new(),
        recent_records: None,
        finished_ms: now_ms(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fitted_skip_waits_for_the_warm_up_and_a_window_after_a_promotion() {
        let cfg = challenger::ChallengerConfig {
            warmup_labeled: 1000,
            window: 200,
            ..Default::default()
        };
        // In the warm-up: every record is learned from.
        assert!(!skips_fitted(&cfg, 999, None));
        // After it, with no promotion since: records it fits are left out.
        assert!(skips_fitted(&cfg, 1000, None));
        // A promotion at 1,500: every record for the next 200, then the skip again.
        assert!(!skips_fitted(&cfg, 1500, Some(1500)));
        assert!(!skips_fitted(&cfg, 1699, Some(1500)));
        assert!(skips_fitted(&cfg, 1700, Some(1500)));
        // A warm-up shorter than the window: the skip starts when the warm-up ends.
        let short = challenger::ChallengerConfig {
            warmup_labeled: 50,
            ..cfg
        };
        assert!(skips_fitted(&short, 50, None));
    }

    fn class(p: [f32; 2]) -> Prediction {
        Prediction {
            version: 3,
            output: Output::Class {
                class: argmax(&p) as u32,
                probabilities: p.to_vec(),
            },
        }
    }

    fn labeled(y: u32) -> Record {
        Record {
            features: vec![0.0],
            label: Some(Label::Class(y)),
            key: None,
            timestamp_ms: None,
        }
    }

    #[test]
    fn the_neighbours_vote_is_blended_in_after_they_learn_each_record() {
        // Two records of class 1, both served [0.8, 0.2] by the networks. The first finds
        // no neighbour and is served as it is; the second has the first as its one
        // neighbour, whose vote is [0.025, 0.975] (5% spread evenly), weighed at 0.5 (no
        // losses yet): [0.4125, 0.5875].
        let config = crate::learn::neighbours::NeighboursConfig {
            window: 10,
            k: 1,
            ..Default::default()
        };
        let mut nb = Neighbours::new(2, 1, &config);
        let mut state = challenger::Blend::default();
        let mut served = vec![class([0.8, 0.2]), class([0.8, 0.2])];
        let (mut a, mut b) = (labeled(1), labeled(1));
        a.features = vec![0.0];
        b.features = vec![0.1];
        vote_and_learn(
            &mut nb,
            &mut state,
            0.3,
            &mut served,
            &[0.0, 0.1],
            &[&a, &b],
            1.0,
        );
        assert_eq!(probabilities(&served[0]), vec![0.8, 0.2]);
        let p = probabilities(&served[1]);
        assert!(
            (p[0] - 0.4125).abs() < 1e-6 && (p[1] - 0.5875).abs() < 1e-6,
            "{p:?}"
        );
        assert_eq!(nb.len(), 2);
        // The vote's loss (-ln 0.975) was lower than the networks' (-ln 0.2): it weighs more.
        assert!(state.weight(0.3) > 0.5, "{state:?}");
    }

    #[test]
    fn neighbours_are_rebuilt_from_the_ring_in_arrival_order() {
        // A ring of 4 after 6 records: slot i % 4 holds record i, so the slots hold records
        // 4, 5, 2, 3; in arrival order 2 (class 0 at 7), 3 (class 1 at 10), 4 (class 0 at
        // 20), 5 (unlabeled, at 30). A window of 2 keeps the last two labeled, 3 and 4 (sd
        // 5): the nearest to 8 is 3 (class 1, 0.4 sd away; 4 is 2.4). Read in slot order it
        // would keep 2 and 3 (sd 1.5), and the nearest to 8 would be 2 (class 0).
        let mut config = crate::config::Config::default().learner();
        config.neighbours.window = 2;
        config.neighbours.k = 1;
        let inputs = config.input_width();
        let record = |at: f32, label: Option<u32>| {
            let mut features = vec![0.0; inputs];
            features[0] = at;
            Record {
                features,
                label: label.map(Label::Class),
                key: None,
                timestamp_ms: None,
            }
        };
        let ring = [
            record(20.0, Some(0)),
            record(30.0, None),
            record(7.0, Some(0)),
            record(10.0, Some(1)),
        ];
        let nb = rebuild_neighbours(&config, &ring, 6);
        assert_eq!(nb.len(), 2);
        let mut query = vec![0.0; inputs];
        query[0] = 8.0;
        let mut p = [0.0f32; 2];
        assert!(nb.predict_class(&query, &mut p));
        assert!(p[1] > 0.9, "{p:?}");
        query[0] = 25.0;
        assert!(nb.predict_class(&query, &mut p));
        assert!(p[0] > 0.9, "{p:?}");
        // A ring not yet full is read from its first slot.
        let nb = rebuild_neighbours(&config, &ring[..2], 2);
        assert_eq!(nb.len(), 1);
        // The prior learns from the labeled ones in arrival order: record 2 (class 0), 3
        // (class 1), 0 (class 0).
        let mut want = PriorMember::new(config.classes.len(), inputs, true);
        for r in [&ring[2], &ring[3], &ring[0]] {
            want.step(&r.features, r.label, 1.0);
        }
        assert_eq!(rebuild_prior(&config, &ring, 6, 1.0), want);
        assert_ne!(
            rebuild_prior(&config, &ring, 4, 1.0),
            want,
            "slot order differs"
        );
    }

    fn probabilities(p: &Prediction) -> Vec<f32> {
        match &p.output {
            Output::Class { probabilities, .. } => probabilities.clone(),
            Output::Value(_) => panic!("a class prediction"),
        }
    }

    #[test]
    fn the_blend_weighs_each_record_by_the_losses_before_it() {
        let mut state = challenger::Blend::default();
        let mut served = vec![class([0.9, 0.1]), class([0.9, 0.1]), class([0.9, 0.1])];
        let theirs = vec![class([0.1, 0.9]); 3];
        let unlabeled = Record {
            label: None,
            ..labeled(1)
        };
        let (a, b) = (labeled(1), labeled(1));
        let records = [&a, &unlabeled, &b];
        blend(&mut state, 0.3, &mut served, &theirs, &records, 1.0);
        // First record: no history, equal weights (and the first class on the tie).
        let p = probabilities(&served[0]);
        assert!(
            (p[0] - 0.5).abs() < 1e-6 && (p[1] - 0.5).abs() < 1e-6,
            "{p:?}"
        );
        // After it, the champion was charged -ln 0.1 = 2.302585 and the challenger
        // -ln 0.9 = 0.105361: the challenger's weight is 1 / (1 + e^(0.3 (0.105361 -
        // 2.302585))) = 0.659073, for the unlabeled record and the next labeled one alike.
        for p in [&served[1], &served[2]] {
            let q = probabilities(p);
            assert!((q[0] - 0.372_741).abs() < 1e-5, "{q:?}");
            assert!((q[1] - 0.627_259).abs() < 1e-5, "{q:?}");
            assert_eq!(p.label(), Label::Class(1));
            assert_eq!(p.version, 3, "the champion's version serves");
        }
        // Off: the champion alone.
        let mut alone = vec![class([0.9, 0.1])];
        blend(
            &mut challenger::Blend::default(),
            0.0,
            &mut alone,
            &theirs[..1],
            &records[..1],
            1.0,
        );
        assert_eq!(probabilities(&alone[0]), vec![0.9, 0.1]);
    }

    #[test]
    fn a_regression_blend_weighs_by_the_error_in_standard_deviations() {
        let mut state = challenger::Blend::default();
        let value = |v: f32| Prediction {
            version: 1,
            output: Output::Value(v),
        };
        let r = Record {
            label: Some(Label::Value(10.0)),
            ..labeled(0)
        };
        let mut served = vec![value(14.0), value(14.0)];
        let theirs = vec![value(11.0), value(11.0)];
        blend(&mut state, 0.3, &mut served, &theirs, &[&r, &r], 2.0);
        // 0.5 * 14 + 0.5 * 11, then errors of 2 and 0.5 sd: weight 1 / (1 + e^(0.3 (0.5 -
        // 2))) = 0.610639, 14 - 0.610639 * 3 = 12.168083.
        let v: Vec<f32> = served
            .iter()
            .map(|p| match p.output {
                Output::Value(v) => v,
                Output::Class { .. } => f32::NAN,
            })
            .collect();
        assert!((v[0] - 12.5).abs() < 1e-5, "{v:?}");
        assert!((v[1] - 12.168_083).abs() < 1e-4, "{v:?}");
    }
}
