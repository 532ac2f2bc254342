//! The continual-learning loop on the ingest path: scores every record with the serving model
//! before anything learns from it (prequential), feeds the drift detectors, keeps the recent
//! window, evaluates the retrain triggers and hands retrains to the worker (`worker.rs`), off
//! the ingest thread. Its state is staged into the ingest batch, next to the offsets.

pub mod state;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::drift::layers::layer_shift;
use crate::drift::monitor::feature_drift;
use crate::drift::trigger::{self, Firing, Observation};
use crate::ingest::{BatchObserver, IngestError};
use crate::learn::diagnostics::activation_stats;
use crate::learn::{Dataset, Ewc, LearnError, Model};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::retrain::{Reference, WaitPolicy};
use crate::store::versions::VersionRecord;
use crate::store::{KvStore, StoreError, WriteBatch};

pub use state::LoopState;
pub use worker::{Job, JobOutcome};

/// What stops the loop.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error("stored loop state is corrupt: {0}")]
    Corrupt(String),
    #[error("model version {version}: {reason}")]
    Version { version: u64, reason: String },
}

impl From<LoopError> for IngestError {
    fn from(e: LoopError) -> IngestError {
        IngestError::Loop(e.to_string())
    }
}

/// The serving model version with what was stored with it.
#[derive(Debug)]
pub struct Serving {
    pub version: u64,
    pub model: Model,
    pub ewc: Option<Ewc>,
    pub reference: Reference,
    pub record: VersionRecord,
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
    pub status: Arc<RwLock<serde_json::Value>>,
}

impl LoopHandle {
    /// Asks for a retrain at the next loop tick, optionally of named layers.
    pub fn request_retrain(&self, layers: Option<Vec<String>>) {
        *self.manual_layers.lock().unwrap_or_else(|p| p.into_inner()) = layers;
        self.manual.store(true, Ordering::SeqCst);
    }

    /// Makes `serving` the serving model (an activation); the loop notices at its next batch.
    pub fn swap(&self, serving: Serving) {
        *self.serving.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(serving));
    }

    /// The last status snapshot.
    pub fn status(&self) -> serde_json::Value {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The loop's part of the ingest thread.
pub struct Learner {
    config: Config,
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
}

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
        config: &Config,
        store: Arc<dyn KvStore>,
        metrics: Metrics,
        handle: LoopHandle,
    ) -> Result<Learner, LoopError> {
        let records_total = crate::store::IngestState::load(store.as_ref())?
            .counter(crate::store::state::counter::RECORDS);
        let serving = worker::load_active(store.as_ref(), config)?;
        let mut state = state::load(store.as_ref(), config)?;
        let ring = state::load_ring(store.as_ref(), config.drift.window)?;
        let active = serving.as_ref().map(|s| s.version);
        if state.serving_version != active {
            // A version was promoted (or activated by hand) after the last batch: the
            // detectors start over against it, as after any promotion.
            tracing::info!(from = ?state.serving_version, to = ?active, "serving version changed while stopped");
            state.on_new_version(config, active, now_ms());
        }
        *handle.serving.write().unwrap_or_else(|p| p.into_inner()) = serving.map(Arc::new);
        state.restore_metrics(&metrics, config);
        metrics.learn_model_version.set(active.unwrap_or(0) as i64);
        let (results_tx, results) = mpsc::channel();
        let wait = match config.retrain.wait {
            WaitPolicy::Always => true,
            WaitPolicy::Never => false,
            WaitPolicy::Auto => !config.uses_kafka(),
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
        })
    }

    fn status_json(&self) -> serde_json::Value {
        let names = self.config.input_names();
        let st = &self.state;
        serde_json::json!({
            "serving_version": st.serving_version,
            "window_accuracy": st.window_accuracy(),
            "window_loss": st.window_loss(),
            "labeled_since_retrain": st.labeled_since_retrain,
            "retrains_started": st.retrains,
            "retrain_running": self.handle.running.load(Ordering::SeqCst),
            "alarms": st.alarms,
            "detectors": st.errors.readings().map(|(n, r)| (n.to_string(), serde_json::json!(r))).collect::<serde_json::Map<_, _>>(),
            "drifted_features": names.iter().zip(&st.features).filter(|(_, d)| d.drifted).map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            "layer_shifts": st.layer_shifts,
            "triggers": {
                "config": self.config.triggers,
                "last_retrain_ms": st.trigger.last_retrain_ms,
            },
            "totals": st.totals,
        })
    }

    /// The loop state (tests, status).
    pub fn state(&self) -> &LoopState {
        &self.state
    }

    fn labeled_window(&self) -> Result<Dataset, LearnError> {
        let width = self.config.input_width();
        let mut x = Vec::new();
        let mut y = Vec::new();
        // Oldest first: slots from the next write position around.
        let n = self.ring.len();
        let start = if n < self.config.drift.window {
            0
        } else {
            (self.state.ring_pushed % n as u64) as usize
        };
        for i in 0..n {
            let r = &self.ring[(start + i) % n];
            if let Some(l) = r.label {
                x.extend_from_slice(&r.features);
                y.push(l);
            }
        }
        Dataset::new(x, y, width)
    }

    fn score(&mut self, serving: &Serving, records: &[Record]) -> Result<(), LoopError> {
        if records.is_empty() {
            return Ok(());
        }
        let x: Vec<f32> = records
            .iter()
            .flat_map(|r| r.features.iter().copied())
            .collect();
        let p = serving.model.predict_proba(&x)?;
        let k = serving.model.spec.classes;
        for (r, row) in records.iter().zip(p.chunks_exact(k)) {
            let Some(label) = r.label else {
                self.state.add_total("predictions/unlabeled", 1);
                continue;
            };
            let best = row
                .iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |b, (i, &v)| {
                    if v > b.1 {
                        (i, v)
                    } else {
                        b
                    }
                })
                .0;
            let hit = best as u32 == label;
            let loss = -(row.get(label as usize).copied().unwrap_or(0.0).max(1e-7)).ln();
            self.state
                .push_prediction(hit, loss, self.config.drift.accuracy_window);
            self.state.add_total(
                if hit {
                    "predictions/correct"
                } else {
                    "predictions/incorrect"
                },
                1,
            );
            for d in self.state.errors.update(if hit { 0.0 } else { 1.0 }) {
                self.state.alarm(d);
            }
        }
        Ok(())
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
        let features = feature_drift(&serving.reference.features, &x, width, &self.config.drift);
        if features.iter().any(|f| f.drifted) {
            self.state.alarm("feature_ks");
        }
        self.state.features = features;
        let now = activation_stats(&serving.model, &x)?;
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
            self.state.alarm("layer_shift");
        }
        Ok(())
    }

    /// Folds a finished retrain into the loop state (the worker already moved the metrics).
    fn handle_result(&mut self, r: JobOutcome) {
        let now = now_ms();
        trigger::record_retrain(&mut self.state.trigger, now);
        self.state.labeled_since_retrain = 0;
        self.state.add_total(&format!("runs/{}", r.outcome), 1);
        self.state.mark_published(&format!("runs/{}", r.outcome));
        if let Some(v) = r.promoted_version {
            self.state.on_new_version(&self.config, Some(v), now);
        } else {
            self.state.alarms.clear();
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
        self.state
            .add_total(&format!("triggers/{}", firing.kind.as_str()), 1);
        self.metrics.retrain_running.set(1);
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
            drifted_features: self
                .config
                .input_names()
                .iter()
                .zip(&self.state.features)
                .filter(|(_, d)| d.drifted)
                .map(|(f, _)| f.clone())
                .collect(),
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
        if self.handle.running.load(Ordering::SeqCst) {
            return None;
        }
        let serving = current(&self.handle.serving);
        if serving.is_none() {
            let labeled = self.ring.iter().filter(|r| r.label.is_some()).count();
            return (labeled >= self.config.model.bootstrap_labeled)
                .then(|| Firing::bootstrap(labeled));
        }
        let manual = self.handle.manual.swap(false, Ordering::SeqCst);
        let obs = Observation {
            now_ms: now,
            labeled_since_retrain: self.state.labeled_since_retrain,
            window_accuracy: self.state.window_accuracy(),
            reference_accuracy: serving.as_ref().and_then(|s| s.reference.accuracy),
            drift_alarms: self.state.alarms.iter().cloned().collect(),
            manual,
        };
        trigger::evaluate(&self.config.triggers, &mut self.state.trigger, &obs)
    }
}

/// Records scored, pushed and checked between two trigger evaluations.
const CHUNK: usize = 128;

impl BatchObserver for Learner {
    fn stage(&mut self, records: &[Record], batch: &mut WriteBatch) -> Result<(), IngestError> {
        self.poll_results();
        let active = current(&self.handle.serving).map(|s| s.version);
        if active != self.state.serving_version && !self.handle.running.load(Ordering::SeqCst) {
            // Activated by an operator (rollback): the detectors start over against it.
            tracing::info!(from = ?self.state.serving_version, to = ?active, "serving version changed");
            self.state.on_new_version(&self.config, active, now_ms());
            if let Some(v) = active {
                self.metrics.learn_model_version.set(v as i64);
            }
        }
        let timed =
            self.config.triggers.interval_seconds > 0 || self.handle.manual.load(Ordering::SeqCst);
        if records.is_empty() && timed && current(&self.handle.serving).is_some() {
            // A tick: manual and scheduled triggers fire without records. Record-driven ones
            // wait for records, so a file replay retrains at the same records run to run.
            if let Some(f) = self.evaluate_triggers(now_ms()) {
                self.dispatch(f);
            }
        }
        let window = self.config.drift.window;
        let mut rest = records;
        while !rest.is_empty() {
            // Chunks end at multiples of CHUNK records of the whole stream, so where triggers
            // are evaluated does not depend on how the source cut its batches.
            let to_boundary = CHUNK - (self.state.ring_pushed % CHUNK as u64) as usize;
            let (chunk, tail) = rest.split_at(to_boundary.min(rest.len()));
            rest = tail;
            let at_boundary = chunk.len() == to_boundary;
            // Test, then train: the chunk is scored by the model serving before any retrain
            // that it triggers.
            let serving = current(&self.handle.serving);
            if let Some(s) = &serving {
                self.score(s, chunk)?;
            }
            for r in chunk {
                let slot = (self.state.ring_pushed % window as u64) as usize;
                state::stage_ring_slot(batch, slot, r);
                if slot < self.ring.len() {
                    self.ring[slot] = r.clone();
                } else {
                    self.ring.push(r.clone());
                }
                self.state.ring_pushed += 1;
                if r.label.is_some() {
                    self.state.labeled_since_retrain += 1;
                }
            }
            self.records_total += chunk.len() as u64;
            self.state.records_since_check += chunk.len() as u64;
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
            }
        }
        state::stage(batch, &self.state)?;
        Ok(())
    }

    fn committed(&mut self, records_total: u64) {
        self.records_total = records_total;
        self.state.publish_metrics(&self.metrics, &self.config);
        let status = self.status_json();
        *self
            .handle
            .status
            .write()
            .unwrap_or_else(|p| p.into_inner()) = status;
    }
}
