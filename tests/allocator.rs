//! The process's allocator (`app::heap`): with the `jemalloc` feature it is jemalloc for the
//! whole process, RocksDB's memtables included (RocksDB is a shared C++ library that calls
//! `malloc`), so its memory is in the heap figures and returned by the trim.

#[cfg(feature = "jemalloc")]
#[test]
fn rocksdb_allocates_from_jemalloc() {
    use relearn::app::heap;
    use relearn::store::{Cf, KvStore, RocksStore, WriteBatch};

    assert_eq!(heap::ALLOCATOR, "jemalloc");
    // The compiled-in options are read (`heap::MALLOC_CONF`), unless the environment
    // overrides them.
    if std::env::var_os("MALLOC_CONF").is_none() {
        assert_eq!(heap::arenas(), Some(2));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RocksStore::open(&dir.path().join("store"), false).expect("store opens");
    let before = heap::heap_usage().expect("jemalloc's stats").in_use;
    // 8 MiB of values in 4 KiB records: under the memtable's flush size, so RocksDB holds
    // them in its memtable arena until the store is dropped. The batches' own buffers are
    // freed once written.
    for b in 0..32u32 {
        let mut batch = WriteBatch::new();
        for i in 0..64u32 {
            batch.put(
                Cf::Replay,
                (b * 64 + i).to_be_bytes().to_vec(),
                vec![(i % 251) as u8; 4096],
            );
        }
        store.write(batch).expect("batch written");
    }
    let after = heap::heap_usage().expect("jemalloc's stats").in_use;
    // Were RocksDB's allocations glibc's, jemalloc would see only the freed batches.
    assert!(
        after >= before + (6 << 20),
        "jemalloc's allocated bytes rose by {} while RocksDB held 8 MiB of memtable",
        after.saturating_sub(before)
    );
    assert_eq!(
        store.get(Cf::Replay, &7u32.to_be_bytes()).expect("read"),
        Some(vec![7u8; 4096])
    );
}

#[cfg(not(feature = "jemalloc"))]
#[test]
fn without_jemalloc_the_c_library_allocates() {
    assert_ne!(relearn::app::heap::ALLOCATOR, "jemalloc");
}
