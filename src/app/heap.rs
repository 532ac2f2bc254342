//! The process's memory: the allocator's free heap handed back to the system on a timer
//! (`memory.trim_seconds`), and the resident set and heap figures read at each scrape.
//!
//! Why: glibc keeps what a thread frees in that thread's arena for later allocations. RocksDB
//! allocates each memtable in blocks and frees them all when it is flushed; training and
//! batch scoring free large tensors; so an hour of steady traffic grew the daemon's resident
//! set by 7-10% over its 10-minute value (README, "Soak") while the memory it used did not
//! grow. `malloc_trim(0)` returns every free page of every arena to the kernel
//! (`madvise(MADV_DONTNEED)`; the heap's address space stays mapped): in the hour's soak the
//! resident set stayed about 20 MB lower. It takes the arenas' locks one at a time for the
//! 0.1-0.4 ms it walks them (measured in the daemon), so it runs on the blocking pool, and
//! at most once a second (the key is in whole seconds). On other allocators and C libraries (musl, macOS)
//! trimming is off and the heap gauges stay at zero.

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
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_usage() -> Option<HeapUsage> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct by value; it takes
    // each arena's lock while it sums.
    let info = unsafe { libc::mallinfo2() };
    Some(HeapUsage {
        in_use: (info.uordblks + info.hblkhd) as u64,
        free: info.fordblks as u64,
    })
}

/// The allocator's figures (glibc's `mallinfo2`), None elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_usage() -> Option<HeapUsage> {
    None
}

/// Returns the allocator's free pages to the system; true when it could (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    // SAFETY: malloc_trim takes the arenas' locks itself; 0 keeps no padding.
    unsafe { libc::malloc_trim(0) };
    true
}

/// Returns the allocator's free pages to the system; true when it could (glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() -> bool {
    false
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
    let Some(every) = every.filter(|_| cfg!(all(target_os = "linux", target_env = "gnu"))) else {
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

    /// Memory freed by a thread stays in the allocator (counted as free) until a trim hands
    /// it back: the trimmed resident set is smaller than with the freed blocks kept.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn trim_returns_freed_blocks_to_the_system() {
        // Blocks under the mmap threshold (128 KiB at start) come from an arena, as RocksDB's
        // memtable blocks do; touching each page makes it resident.
        // Every 50th block is kept, so that the freed ones are holes the arena cannot give
        // back by shrinking its top (which `free` does by itself).
        let mut held: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8 | 1; 64 << 10]).collect();
        let keep: Vec<Vec<u8>> = held.iter_mut().step_by(50).map(std::mem::take).collect();
        let free_before = heap_usage().expect("glibc").free;
        drop(held);
        let freed = heap_usage().expect("glibc").free;
        assert!(
            freed >= free_before + (100 << 20),
            "dropping 125 MB of small blocks left free {freed} (was {free_before})"
        );
        let before = resident_bytes().expect("statm");
        assert!(trim());
        let after = resident_bytes().expect("statm");
        assert!(
            before.saturating_sub(after) >= 32 << 20,
            "trim released {} bytes of {} freed",
            before.saturating_sub(after),
            freed - free_before
        );
        assert_eq!(keep.len(), 40);
    }
}
