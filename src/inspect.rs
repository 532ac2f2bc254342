//! A read-only view of a store for operators and tests: offsets, counters, replay buffer,
//! model versions and the retrain log.

use std::path::Path;

use serde::Serialize;

use crate::drift::trigger::TriggerKind;
use crate::ingest::join;
use crate::learner::state as loop_state;
use crate::learner::{RetrainReport, RunOutcome};
use crate::store::replay;
use crate::store::state::IngestState;
use crate::store::versions::ModelVersions;
use crate::store::{Cf, KvStore, ReplayState, RetrainLog, RocksStore, StoreError};
use crate::totals::Total;

/// What a store holds, as JSON-friendly values.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreReport {
    /// `topic/partition` -> next offset to process.
    pub offsets: std::collections::BTreeMap<String, i64>,
    /// Durable counters (`records`, `labeled`, `unlabeled`, `malformed/<reason>`,
    /// `missing/<field>`).
    pub counters: std::collections::BTreeMap<String, u64>,
    /// Replay buffer sampler state, if any record was offered.
    pub replay: Option<ReplayState>,
    /// Records stored in the replay column family.
    pub replay_records: usize,
    /// The serving model version and how many versions are kept.
    pub active_version: Option<u64>,
    pub versions: usize,
    /// One line per retrain: number, trigger, outcome, records processed when it fired,
    /// layers trained, version written.
    pub retrains: Vec<RetrainLine>,
    /// Records waiting for a delayed label.
    pub pending_labels: usize,
    /// The loop's totals (`predictions/correct`, `promotions/challenger`...).
    pub loop_totals: std::collections::BTreeMap<Total, u64>,
    /// Labeled predictions by the model version that made them: (right, all).
    pub realised: std::collections::BTreeMap<u64, (u64, u64)>,
    /// Per categorical field (schema order): the share of recent records whose value was
    /// never seen before.
    pub new_category_rates: Vec<f64>,
}

/// The parts of the loop's stored state (`loop/state`) a report shows.
#[derive(Debug, Default, serde::Deserialize)]
struct LoopTotals {
    #[serde(default, deserialize_with = "crate::totals::deserialize_totals")]
    totals: std::collections::BTreeMap<Total, u64>,
    #[serde(default)]
    realised: std::collections::BTreeMap<u64, (u64, u64)>,
    #[serde(default)]
    new_category_rates: Vec<f64>,
}

/// A retrain in one line (`relearn inspect`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RetrainLine {
    pub retrain: u64,
    pub trigger: TriggerKind,
    pub outcome: RunOutcome,
    pub records_total: u64,
    pub layers: Vec<String>,
    pub version: Option<u64>,
}

/// Reads a report from any store.
pub fn report(store: &dyn KvStore) -> Result<StoreReport, StoreError> {
    let state = IngestState::load(store)?;
    let replay = match store.get(Cf::Meta, replay::STATE_NAME.as_bytes())? {
        Some(bytes) => Some(
            serde_json::from_slice(&bytes).map_err(|e| StoreError::codec(replay::STATE_NAME, e))?,
        ),
        None => None,
    };
    let totals: LoopTotals = match store.get(Cf::Meta, loop_state::STATE_NAME.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::codec(loop_state::STATE_NAME, e))?,
        None => LoopTotals::default(),
    };
    Ok(StoreReport {
        pending_labels: store.scan_prefix(Cf::Meta, join::PENDING.as_bytes())?.len(),
        loop_totals: totals.totals,
        realised: totals.realised,
        new_category_rates: totals.new_category_rates,
        offsets: state
            .offsets()
            .into_iter()
            .map(|(t, p, o)| (format!("{t}/{p}"), o))
            .collect(),
        counters: state.counters().clone(),
        replay,
        replay_records: store.scan_prefix(Cf::Replay, b"")?.len(),
        active_version: ModelVersions::new(store).active()?,
        versions: ModelVersions::new(store).count()?,
        retrains: RetrainLog::new(store)
            .all::<RetrainReport>()?
            .into_iter()
            .map(|r| RetrainLine {
                retrain: r.retrain,
                trigger: r.trigger,
                outcome: r.outcome,
                records_total: r.records_total,
                layers: r.layers,
                version: r.version,
            })
            .collect(),
    })
}

/// Every retrain's whole report, oldest first: trigger and reason, alarms, drifted features,
/// layer choice, validation, cost, outcome.
pub fn retrain_log(store: &dyn KvStore) -> Result<Vec<RetrainReport>, StoreError> {
    RetrainLog::new(store).all()
}

/// Opens the RocksDB store at `path` read-only (safe while the daemon runs) and reports.
pub fn inspect_path(path: &Path) -> Result<StoreReport, StoreError> {
    report(&RocksStore::open_read_only(path)?)
}

/// [`retrain_log`] of the RocksDB store at `path`, opened read-only.
pub fn retrain_log_path(path: &Path) -> Result<Vec<RetrainReport>, StoreError> {
    retrain_log(&RocksStore::open_read_only(path)?)
}
