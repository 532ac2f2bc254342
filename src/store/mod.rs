//! Durable state behind a narrow trait: column families, atomic write batches, prefix scans.
//!
//! Only `store::rocks` knows RocksDB. Everything above the trait (replay buffer, ingest state,
//! model versions) writes through `WriteBatch`es, so the state a batch of records produced and
//! the offsets of those records land together or not at all.

use crate::error::BoxError;

pub mod behind;
pub mod memory;
pub mod replay;
pub mod retrain_log;
pub mod rocks;
pub mod state;
pub mod versions;

/// The RocksDB state directory.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the RocksDB database. Empty: a temporary directory removed at exit (the
    /// demo); set it for any state that must survive a restart.
    #[serde(with = "crate::units::opt_path")]
    pub path: Option<std::path::PathBuf>,
    /// fsync the write-ahead log on every batch. Off, state survives a process crash (the WAL
    /// is in the page cache); on, it also survives power loss, at a lower batch rate.
    pub sync: bool,
    /// Most bytes of write-ahead log kept: past it RocksDB flushes the column families that
    /// hold the oldest log file so that it can be deleted (RocksDB's `max_total_wal_size`).
    /// Unbounded, a rarely written family keeps every log since its last flush: a soak at
    /// 2,000 records/s grew the log by 0.9 MB/s.
    pub max_wal_bytes: u64,
    /// Most bytes of memtables (writes not yet flushed to a table file) across every column
    /// family, RocksDB's `db_write_buffer_size`: past it the largest is flushed. Each column
    /// family's memtable is at most half of it.
    pub write_buffer_bytes: u64,
    /// Bytes of the one block cache every column family shares, which holds the tables'
    /// index and filter blocks too, so that the store's memory does not grow with its files.
    pub block_cache_bytes: u64,
}

/// Default `store.max_wal_bytes`: 128 MiB.
pub const DEFAULT_MAX_WAL_BYTES: u64 = 128 << 20;

/// Default `store.write_buffer_bytes`: 32 MiB.
pub const DEFAULT_WRITE_BUFFER_BYTES: u64 = 32 << 20;

/// Default `store.block_cache_bytes`: 16 MiB.
pub const DEFAULT_BLOCK_CACHE_BYTES: u64 = 16 << 20;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: None,
            sync: false,
            max_wal_bytes: DEFAULT_MAX_WAL_BYTES,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES,
        }
    }
}

impl StoreConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), crate::error::ConfigError> {
        for (key, value) in [
            ("store.max_wal_bytes", self.max_wal_bytes),
            ("store.write_buffer_bytes", self.write_buffer_bytes),
            ("store.block_cache_bytes", self.block_cache_bytes),
        ] {
            if value < 1 << 20 {
                return Err(crate::error::ConfigError::key(
                    key,
                    format!("must be at least 1048576 (1 MiB), got {value}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod conformance;

pub use behind::WriteBehind;
pub use memory::MemoryStore;
pub use replay::{ReplayBuffer, ReplayState};
pub use retrain_log::RetrainLog;
pub use rocks::RocksStore;
pub use state::IngestState;

/// The column families: one keyspace each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// Replay buffer slots: `reservoir u32 BE | slot u32 BE` -> encoded record.
    Replay,
    /// Offsets, counters, sampler state and other small metadata.
    Meta,
    /// Model versions (written by the learning stages).
    Models,
}

impl Cf {
    /// Every column family.
    pub const ALL: [Cf; 3] = [Cf::Replay, Cf::Meta, Cf::Models];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Replay => "replay",
            Cf::Meta => "meta",
            Cf::Models => "models",
        }
    }
}

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store at {path}")]
    Open {
        path: String,
        #[source]
        source: BoxError,
    },
    #[error("store read failed")]
    Read(#[source] BoxError),
    #[error("store write failed")]
    Write(#[source] BoxError),
    /// A batch's gate failed (`KvStore::write_behind`): the batch was not written.
    #[error("the batch's gate did not pass; the batch was not written")]
    Gate(#[source] BoxError),
    #[error("model version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("the in-memory store's lock is poisoned (a writer panicked)")]
    Poisoned,
    #[error("corrupt value under {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// A stored value (or one to store) the codec refused; the codec's error is the source.
    #[error("cannot encode or decode the value under {key}")]
    Codec {
        key: String,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// The value under `key` could not be encoded or decoded, because of `source`.
    pub fn codec(key: impl Into<String>, source: impl Into<BoxError>) -> StoreError {
        StoreError::Codec {
            key: key.into(),
            source: source.into(),
        }
    }
}

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
}

/// Operations applied atomically and in order by `KvStore::write`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    ops: Vec<Op>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put {
            cf,
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete {
            cf,
            key: key.into(),
        });
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}

/// What must hold before a batch handed to [`KvStore::write_behind`] is written (the ingest
/// path's: the predictions of its records are acknowledged); its error leaves the batch
/// unwritten.
pub type Gate = Box<dyn FnOnce() -> Result<(), BoxError> + Send>;

/// Key-value pairs returned by a scan, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// The narrow capability every engine provides. Implementations are thread-safe.
pub trait KvStore: Send + Sync + 'static {
    /// The value under `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies every operation of `batch` atomically: after a crash either all are visible or
    /// none is.
    fn write(&self, batch: WriteBatch) -> Result<(), StoreError>;
    /// Every key-value pair whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Pairs, StoreError>;
    /// What the engine holds in memory now (zero where it keeps no such part).
    fn memory(&self) -> Result<StoreMemory, StoreError> {
        Ok(StoreMemory::default())
    }
    /// Hands `batch` to be written while the caller goes on (`WriteBehind`), once `gate`
    /// passes (a failed gate leaves it unwritten, `StoreError::Gate`); an engine without a
    /// writer thread does both now. An error may be the batch handed over before this one.
    fn write_behind(&self, batch: WriteBatch, gate: Option<Gate>) -> Result<(), StoreError> {
        if let Some(gate) = gate {
            gate().map_err(StoreError::Gate)?;
        }
        self.write(batch)
    }
    /// Waits until every batch handed to `write_behind` is written; the error of one that
    /// failed.
    fn settle(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The store's memory by part, in bytes (the engine's own estimates): what
/// `write_buffer_bytes` and `block_cache_bytes` bound, and what they do not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Memtables of every column family, the ones being flushed included.
    pub memtables: u64,
    /// The shared block cache (data, index and filter blocks).
    pub block_cache: u64,
    /// Table readers outside the block cache.
    pub table_readers: u64,
}
