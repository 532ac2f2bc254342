//! The heap trim (`app::heap::trim`) gives freed blocks back to the system. Alone in its own
//! test binary: it reads the whole process's heap figures, which tests running beside it on
//! other threads move (a library unit test once saw 101.9 MB of 125 freed when they did).

/// Memory freed by a thread stays in the allocator (counted as free) until a trim hands
/// it back: the trimmed resident set is smaller than with the freed blocks kept (glibc's
/// arenas and jemalloc's dirty pages alike).
#[cfg(any(feature = "jemalloc", all(target_os = "linux", target_env = "gnu")))]
#[test]
fn trim_returns_freed_blocks_to_the_system() {
    use relearn::app::heap::{heap_usage, resident_bytes, trim};
    // Blocks under the mmap threshold (128 KiB at start) come from an arena, as RocksDB's
    // memtable blocks do; touching each page makes it resident.
    // Every 50th block is kept, so that the freed ones are holes the arena cannot give
    // back by shrinking its top (which `free` does by itself).
    let mut held: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8 | 1; 64 << 10]).collect();
    let keep: Vec<Vec<u8>> = held.iter_mut().step_by(50).map(std::mem::take).collect();
    let free_before = heap_usage().expect("glibc or jemalloc").free;
    drop(held);
    let freed = heap_usage().expect("glibc or jemalloc").free;
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
