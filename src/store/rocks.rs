//! The RocksDB `KvStore`: one database, one column family per `Cf`, atomic write batches.

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteOptions, DB};

use super::{Cf, KvStore, Op, Pairs, StoreError, WriteBatch};

/// A RocksDB database holding every column family of `Cf`.
pub struct RocksStore {
    db: DB,
    sync: bool,
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
    /// write-ahead log before `write` returns. The write-ahead log is bounded at
    /// [`super::DEFAULT_MAX_WAL_BYTES`].
    pub fn open(path: &Path, sync: bool) -> Result<RocksStore, StoreError> {
        RocksStore::open_with(path, sync, super::DEFAULT_MAX_WAL_BYTES)
    }

    /// [`RocksStore::open`] with the write-ahead log bounded at `max_wal_bytes`
    /// (`store.max_wal_bytes`): past it the column families holding the oldest log file are
    /// flushed so that it can be deleted.
    pub fn open_with(
        path: &Path,
        sync: bool,
        max_wal_bytes: u64,
    ) -> Result<RocksStore, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
        opts.set_max_total_wal_size(max_wal_bytes);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| ColumnFamilyDescriptor::new(cf.name(), Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        Ok(RocksStore { db, sync })
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
        Ok(RocksStore { db, sync: false })
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
    /// memtable fills its 64 MB.
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
        let s = RocksStore::open_with(bounded.path(), false, 1 << 20).unwrap();
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
        let s = RocksStore::open_with(unbounded.path(), false, 0).unwrap();
        write(&s);
        assert!(
            wal_bytes(unbounded.path()) >= 20 << 20,
            "RocksDB's default keeps it all"
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
