//! Process metrics: the resident set and the allocator's heap, read when the metrics are
//! rendered, and what trimming the heap gave back (`app::heap`).

use prometheus::{IntCounter, IntGauge, IntGaugeVec};

use super::Registrar;

/// The process's metrics (`relearn_process_*`).
#[derive(Clone)]
pub struct ProcessMetrics {
    /// Resident set size.
    pub resident: IntGauge,
    /// The allocator's heap by part (`in_use`, `free`).
    pub heap: IntGaugeVec,
    /// What the resident set lost at each heap trim, summed.
    pub released: IntCounter,
}

/// The parts of `relearn_process_heap_bytes`.
const HEAP_PARTS: [&str; 2] = ["in_use", "free"];

impl ProcessMetrics {
    pub(super) fn register(r: &mut Registrar<'_>) -> ProcessMetrics {
        ProcessMetrics {
            resident: r.int_gauge(
                "relearn_process_resident_memory_bytes",
                "Resident set size of the daemon, read when the metrics are rendered.",
            ),
            heap: r.int_gauges(
                "relearn_process_heap_bytes",
                "The allocator's heap by part: in_use (allocated), free (resident and not allocated: freed and kept by the allocator until reused or trimmed); jemalloc or glibc.",
                "part",
                &HEAP_PARTS,
            ),
            released: r.counter(
                "relearn_process_heap_released_bytes_total",
                "Bytes of resident set the periodic heap trim (memory.trim_seconds) returned to the system.",
            ),
        }
    }
}
