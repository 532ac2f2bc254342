//! The RocksDB `KvStore`: one database, one column family per `Cf`, atomic write batches.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, Direction, IteratorMode, Options,
    WriteOptions, DB,
};

use super::{Cf, KvStore, Op, Pairs, StoreConfig, StoreError, StoreMemory, WriteBatch};

/// A RocksDB database holding every column family of `Cf`.
pub struct RocksStore {
    db: DB,
    sync: bool,
    /// The block cache every column family shares (none when opened read-only).
    cache: Option<Cache>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .field("sync", &self.sync)
            .finish()
    }
}

impl RocksStore {
    /// Opens (creating if needed) the database at `path`. With `sync`, every batch fsyncs the
    /// write-ahead log before `write` returns. The write-ahead log, the memtables and the
    /// block cache are bounded at their defaults ([`StoreConfig`]).
    pub fn open(path: &Path, sync: bool) -> Result<RocksStore, StoreError> {
        RocksStore::open_with(
            path,
            &StoreConfig {
                sync,
                ..StoreConfig::default()
            },
        )
    }

    /// [`RocksStore::open`] with `[store]`'s bounds: the write-ahead log at
    /// `max_wal_bytes` (past it the column families holding the oldest log file are
    /// flushed so that it can be deleted), the memtables of every column family together at
    /// `write_buffer_bytes`, and one block cache of `block_cache_bytes` for every column
    /// family, index and filter blocks included (`path` and `sync` as in `open`).
    pub fn open_with(path: &Path, config: &StoreConfig) -> Result<RocksStore, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(config.max_wal_bytes);
        opts.set_db_write_buffer_size(config.write_buffer_bytes as usize);
        let cache = Cache::new_lru_cache(config.block_cache_bytes as usize).map_err(|e| {
            StoreError::Open {
                path: path.display().to_string(),
                source: Box::new(e),
            }
        })?;
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        let cf_options = || {
            let mut o = Options::default();
            o.set_write_buffer_size((config.write_buffer_bytes / 2) as usize);
            o.set_block_based_table_factory(&table);
            o
        };
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), cf_options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(RocksStore {
            db,
            sync: config.sync,
            cache: Some(cache),
        })
    }

    /// Opens an existing database without taking its lock, for inspection while the daemon
    /// runs. The view is the state at open time.
    pub fn open_read_only(path: &Path) -> Result<RocksStore, StoreError> {
        let names = Cf::ALL.iter().map(|cf| cf.name());
        let db =
            DB::open_cf_for_read_only(&Options::default(), path, names, false).map_err(|e| {
                StoreError::Open {
                    path: path.display().to_string(),
                    source: Box::new(e),
                }
            })?;
        Ok(RocksStore {
            db,
            sync: false,
            cache: None,
        })
    }

    fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(cf.name())
            .expect("every Cf is created when the database opens")
    }
}

impl KvStore for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(cf), key)
            .map_err(|e| StoreError::Read(Box::new(e)))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut wb = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put { cf, key, value } => wb.put_cf(self.cf(cf), key, value),
                Op::Delete { cf, key } => wb.delete_cf(self.cf(cf), key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.sync);
        self.db
            .write_opt(wb, &wo)
            .map_err(|e| StoreError::Write(Box::new(e)))
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf), IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item.map_err(|e| StoreError::Read(Box::new(e)))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    fn memory(&self) -> Result<StoreMemory, StoreError> {
        let caches: Vec<&Cache> = self.cache.iter().collect();
        let stats = rocksdb::perf::get_memory_usage_stats(Some(&[&self.db]), Some(&caches))
            .map_err(|e| StoreError::Read(Box::new(e)))?;
        Ok(StoreMemory {
            memtables: stats.mem_table_total,
            block_cache: stats.cache_total,
            table_readers: stats.mem_table_readers_total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance::run(&RocksStore::open(dir.path(), false).unwrap());
    }

    #[test]
    fn survives_reopen_and_read_only_view() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(dir.path(), true).unwrap();
            let mut b = WriteBatch::new();
            b.put(Cf::Meta, b"k".to_vec(), b"v".to_vec());
            s.write(b).unwrap();
            let ro = RocksStore::open_read_only(dir.path()).unwrap();
            assert_eq!(ro.get(Cf::Meta, b"k").unwrap(), Some(b"v".to_vec()));
        }
        let s = RocksStore::open(dir.path(), false).unwrap();
        assert_eq!(s.get(Cf::Meta, b"k").unwrap(), Some(b"v".to_vec()));
    }

    /// Sum of the write-ahead log files' sizes in `dir`.
    fn wal_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    }

    /// One write to a rarely written family, then 24 MB to another: bounded, the log is
    /// flushed away; unbounded (RocksDB's default), all of it stays in the log, since no
    /// memtable fills its 128 MB.
    #[test]
    fn the_write_ahead_log_stays_within_its_bound() {
        let write = |s: &RocksStore| {
            let mut b = WriteBatch::new();
            b.put(Cf::Models, b"active".to_vec(), b"1".to_vec());
            s.write(b).unwrap();
            for i in 0..3000u32 {
                let mut b = WriteBatch::new();
                b.put(
                    Cf::Meta,
                    (i % 64).to_be_bytes().to_vec(),
                    vec![i as u8; 8192],
                );
                s.write(b).unwrap();
            }
        };
        let bounded = tempfile::tempdir().unwrap();
        let config = |max_wal_bytes: u64, write_buffer_bytes: u64| StoreConfig {
            max_wal_bytes,
            write_buffer_bytes,
            ..StoreConfig::default()
        };
        let s = RocksStore::open_with(bounded.path(), &config(1 << 20, 256 << 20)).unwrap();
        write(&s);
        // Flushes run in the background, and RocksDB checks the bound on a write: while the
        // flush of the oldest file is pending (a loaded machine), writes go on into the
        // current file, which only the next write past the bound switches. So keep writing a
        // little, as the daemon does, until the old files are gone.
        let mut size = wal_bytes(bounded.path());
        for i in 0..200u32 {
            if size <= 4 << 20 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut b = WriteBatch::new();
            b.put(Cf::Meta, b"nudge".to_vec(), i.to_be_bytes().to_vec());
            s.write(b).unwrap();
            size = wal_bytes(bounded.path());
        }
        assert!(
            size <= 4 << 20,
            "bounded at 1 MiB, the log holds {size} bytes"
        );
        let unbounded = tempfile::tempdir().unwrap();
        let s = RocksStore::open_with(unbounded.path(), &config(0, 256 << 20)).unwrap();
        write(&s);
        assert!(
            wal_bytes(unbounded.path()) >= 20 << 20,
            "RocksDB's default keeps it all"
        );
    }

    /// Bytes in the memtables of every column family.
    fn memtable_bytes(s: &RocksStore) -> u64 {
        Cf::ALL
            .iter()
            .map(|&cf| {
                s.db.property_int_value_cf(s.cf(cf), "rocksdb.cur-size-all-mem-tables")
                    .unwrap()
                    .unwrap_or(0)
            })
            .sum()
    }

    /// 24 MB written to two families: with `write_buffer_bytes` at 4 MiB the memtables are
    /// flushed as they pass it (in the background: a family holds at most two memtables of
    /// half the bound while one flushes, so up to twice the bound, plus arena slack); with
    /// 256 MiB they hold it all.
    #[test]
    fn the_memtables_stay_within_their_bound() {
        let run = |write_buffer_bytes: u64| {
            let dir = tempfile::tempdir().unwrap();
            let s = RocksStore::open_with(
                dir.path(),
                &StoreConfig {
                    write_buffer_bytes,
                    ..StoreConfig::default()
                },
            )
            .unwrap();
            let mut most = 0;
            for i in 0..3000u32 {
                let mut b = WriteBatch::new();
                let cf = if i % 2 == 0 { Cf::Meta } else { Cf::Replay };
                b.put(cf, i.to_be_bytes().to_vec(), vec![i as u8; 8192]);
                s.write(b).unwrap();
                most = most.max(memtable_bytes(&s));
            }
            most
        };
        let bounded = run(4 << 20);
        eprintln!("memtables at most {bounded} bytes bounded at 4 MiB");
        assert!(
            bounded <= 12 << 20,
            "bounded at 4 MiB, the memtables held {bounded} bytes"
        );
        let unbounded = run(256 << 20);
        assert!(
            unbounded >= 20 << 20,
            "at 256 MiB they hold what was written: {unbounded} bytes"
        );
    }

    /// `memory` reports what was written and read: 24 MB in memtables that hold it all, then,
    /// reopened (nothing in memtables) with a 1 MiB block cache, every value read back fills
    /// the cache to its bound and no further.
    #[test]
    fn memory_reports_the_memtables_and_the_block_cache() {
        let dir = tempfile::tempdir().unwrap();
        let config = |block_cache_bytes| StoreConfig {
            write_buffer_bytes: 256 << 20,
            block_cache_bytes,
            ..StoreConfig::default()
        };
        let s = RocksStore::open_with(dir.path(), &config(1 << 20)).unwrap();
        for i in 0..3000u32 {
            let mut b = WriteBatch::new();
            b.put(Cf::Replay, i.to_be_bytes().to_vec(), vec![i as u8; 8192]);
            s.write(b).unwrap();
        }
        let written = s.memory().unwrap();
        assert!(written.memtables >= 24 << 20, "{written:?}");
        drop(s);
        let s = RocksStore::open_with(dir.path(), &config(1 << 20)).unwrap();
        let opened = s.memory().unwrap();
        assert!(opened.memtables < 1 << 20, "{opened:?}");
        for i in 0..3000u32 {
            assert_eq!(
                s.get(Cf::Replay, &i.to_be_bytes()).unwrap(),
                Some(vec![i as u8; 8192])
            );
        }
        let read = s.memory().unwrap();
        eprintln!("{read:?}");
        assert!(
            read.block_cache >= 1 << 19 && read.block_cache <= (1 << 20) + (64 << 10),
            "{read:?}"
        );
    }

    #[test]
    fn second_open_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let _s = RocksStore::open(dir.path(), false).unwrap();
        let e = RocksStore::open(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
