//! The process's memory: the allocator (jemalloc with the default feature `jemalloc`,
//! else the C library's), its free heap handed back to the system on a timer
//! (`memory.trim_seconds`), and the resident set and heap figures read at each scrape.
//!
//! Why: glibc keeps what a thread frees in that thread's arena for later allocations. RocksDB
//! allocates each memtable in blocks and frees them all when it is flushed; training and
//! batch scoring free large tensors; so an hour of steady traffic grew the daemon's resident
//! set by 7-10% over its 10-minute value (README, "Soak") while the memory it used did not
//! grow, and returning every free page each 30 s (`malloc_trim(0)`) lowered it by about 20 MB
//! but did not stop the rise (free memory in partly used pages stays). jemalloc groups
//! allocations by size class in extents and returns the pages of freed ones as they age (its
//! background threads), so memory freed by one stage does not pin pages that another keeps.
//! It is linked unprefixed: its `malloc` is the process's, RocksDB's, librdkafka's and
//! libtorch's too, and runs with two arenas (`MALLOC_CONF` below): over the soak's hour the
//! resident set rose 3.2% with two and 7.6% with its default eight on two cores. With it the
//! timer purges every arena's dirty pages (`arena.<all>.purge`); with glibc it calls
//! `malloc_trim(0)`, which takes the arenas' locks one at a time for the 0.1-0.4 ms it walks
//! them (measured in the daemon). Either runs on the blocking pool, at most once a second
//! (the key is in whole seconds). Elsewhere (musl, macOS without the feature) trimming is
//! off and the heap gauges stay at zero.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// What the allocator holds, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Allocated and not yet freed (small chunks in the arenas and large mmapped ones).
    pub in_use: u64,
    /// Freed and kept by the allocator for later allocations (counted in the resident set
    /// until it is trimmed or reused).
    pub free: u64,
}

/// The process's resident set in bytes (`/proc/self/statm`), None where it cannot be read.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn page_size() -> u64 {
    4096
}

/// The allocator's figures (glibc's `mallinfo2`), None elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "jemalloc")))]
pub fn heap_usage() -> Option<HeapUsage> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value; it takes
    // each arena's lock while it sums.
    let info = unsafe { libc::mallinfo2() };
    Some(HeapUsage {
        in_use: (info.uordblks + info.hblkhd) as u64,
        free: info.fordblks as u64,
    })
}

/// The allocator's figures (jemalloc's `stats.allocated` and `stats.resident`, refreshed by
/// advancing its epoch).
#[cfg(feature = "jemalloc")]
pub fn heap_usage() -> Option<HeapUsage> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let in_use = stats::allocated::read().ok()? as u64;
    let resident = stats::resident::read().ok()? as u64;
    Some(HeapUsage {
        in_use,
        // Resident pages the allocator holds beyond what is allocated: dirty pages not yet
        // purged, partly used runs and its own metadata.
        free: resident.saturating_sub(in_use),
    })
}

/// The allocator's figures, None where neither glibc nor jemalloc is in use.
#[cfg(not(any(feature = "jemalloc", all(target_os = "linux", target_env = "gnu"))))]
pub fn heap_usage() -> Option<HeapUsage> {
    None
}

/// Returns the allocator's free pages to the system; true when it could (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "jemalloc")))]
pub fn trim() -> bool {
    // SAFETY: malloc_trim takes the arenas' locks itself; 0 keeps no padding.
    unsafe { libc::malloc_trim(0) };
    true
}

/// Returns the allocator's dirty pages in every arena to the system
/// (`arena.<MALLCTL_ARENAS_ALL>.purge`); true when it could.
#[cfg(feature = "jemalloc")]
pub fn trim() -> bool {
    // "arena.4096.purge": 4096 is MALLCTL_ARENAS_ALL, every arena.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated; purge reads and writes no value, so both value
    // pointers are null with length 0, as jemalloc's manual says for void controls.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr().cast(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0
}

/// Returns the allocator's free pages to the system; true when it could (glibc, jemalloc).
#[cfg(not(any(feature = "jemalloc", all(target_os = "linux", target_env = "gnu"))))]
pub fn trim() -> bool {
    false
}

/// True when [`trim`] can return memory with the allocator this binary was built with.
const TRIMMABLE: bool = cfg!(any(
    feature = "jemalloc",
    all(target_os = "linux", target_env = "gnu")
));

/// The allocator this binary was built with, for the startup log.
pub const ALLOCATOR: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(all(target_os = "linux", target_env = "gnu")) {
    "glibc"
} else {
    "system"
};

/// jemalloc for the whole process (feature `jemalloc`): the daemon's Rust allocations and,
/// through the unprefixed `malloc`, RocksDB's, librdkafka's and libtorch's too.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start after those it was built with
/// (`background_thread:true`) and before the `MALLOC_CONF` environment variable, which
/// overrides them. Two arenas instead of four per core: fewer partly used runs kept
/// resident, which is what grew over the soak's hour (README, "Soak").
#[cfg(feature = "jemalloc")]
#[export_name = "malloc_conf"]
pub static MALLOC_CONF: &[u8; 10] = b"narenas:2\0";

/// The number of jemalloc's arenas (`opt.narenas`), None without the `jemalloc` feature.
pub fn arenas() -> Option<u32> {
    #[cfg(feature = "jemalloc")]
    {
        tikv_jemalloc_ctl::opt::narenas::read().ok()
    }
    #[cfg(not(feature = "jemalloc"))]
    {
        None
    }
}

/// Publishes `relearn_process_resident_memory_bytes` and `relearn_process_heap_bytes`
/// whenever the metrics are rendered.
pub fn publish(metrics: &Metrics) {
    metrics.on_render(Box::new(|m: &Metrics| {
        if let Some(rss) = resident_bytes() {
            m.process.resident.set(saturating_i64(rss));
        }
        if let Some(heap) = heap_usage() {
            m.process
                .heap
                .with_label_values(&["in_use"])
                .set(saturating_i64(heap.in_use));
            m.process
                .heap
                .with_label_values(&["free"])
                .set(saturating_i64(heap.free));
        }
    }));
}

/// Trims the heap every `every` until `stop`, counting what the resident set lost in
/// `relearn_process_heap_released_bytes_total`. Returns at once when `every` is None (off)
/// or the allocator cannot be trimmed.
pub async fn trim_every(every: Option<Duration>, metrics: Metrics, stop: CancellationToken) {
    tracing::debug!(allocator = ALLOCATOR, trim = ?every, "heap");
    let Some(every) = every.filter(|_| TRIMMABLE) else {
        return;
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let released = tokio::task::spawn_blocking(|| {
            let (before, started) = (resident_bytes(), std::time::Instant::now());
            trim();
            let released = before
                .zip(resident_bytes())
                .map(|(b, a)| b.saturating_sub(a));
            tracing::debug!(
                released = released.unwrap_or(0),
                micros = started.elapsed().as_micros() as u64,
                "heap trimmed"
            );
            released
        })
        .await;
        match released {
            Ok(Some(bytes)) => metrics.process.released.inc_by(bytes),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "heap trim task failed"),
        }
    }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_set_is_read() {
        let rss = resident_bytes().expect("/proc/self/statm is readable on Linux");
        // A test binary maps at least its own code; no process holds a petabyte.
        assert!(rss > 1 << 20 && rss < 1 << 50, "rss {rss}");
    }
}
