//! Store metrics: the replay buffer's size and intake, failed writes, the engine's memory.

use prometheus::{IntCounter, IntGauge, IntGaugeVec};

use super::Registrar;

/// The store's metrics (`relearn_store_*`).
#[derive(Clone)]
pub struct StoreMetrics {
    /// Records held by the replay buffer.
    pub replay_records: IntGauge,
    /// Labeled records offered to the replay buffer since the store was created.
    pub replay_seen: IntGauge,
    /// Failed store writes.
    pub write_errors: IntCounter,
    /// The engine's memory by part (`memtables`, `block_cache`, `table_readers`), read when
    /// the metrics are rendered.
    pub memory: IntGaugeVec,
}

/// The parts of `relearn_store_memory_bytes`.
const MEMORY_PARTS: [&str; 3] = ["memtables", "block_cache", "table_readers"];

impl StoreMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> StoreMetrics {
        StoreMetrics {
            replay_records: r.int_gauge(
                "relearn_store_replay_records",
                "Records held by the replay buffer.",
            ),
            replay_seen: r.int_gauge(
                "relearn_store_replay_seen_records",
                "Labeled records offered to the replay buffer since the store was created.",
            ),
            write_errors: r.counter("relearn_store_write_errors_total", "Failed store writes."),
            memory: r.int_gauges(
                "relearn_store_memory_bytes",
                "The store engine's memory by part: memtables (bounded by store.write_buffer_bytes), block_cache (bounded by store.block_cache_bytes), table_readers.",
                "part",
                &MEMORY_PARTS,
            ),
        }
    }
}
