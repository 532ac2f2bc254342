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
    /// write-ahead log before `write` returns.
    pub fn open(path: &Path, sync: bool) -> Result<RocksStore, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_keep_log_file_num(4);
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

    #[test]
    fn second_open_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let _s = RocksStore::open(dir.path(), false).unwrap();
        let e = RocksStore::open(dir.path(), false).unwrap_err().to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
