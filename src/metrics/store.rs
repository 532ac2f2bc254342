//! Store metrics: the replay buffer's size and intake, failed writes.

use prometheus::{IntCounter, IntGauge};

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
}

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
        }
    }
}
