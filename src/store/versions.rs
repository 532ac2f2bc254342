//! Model versions in `Cf::Models`: each version's checkpoint bytes and metadata, and the
//! active (serving) version in `Cf::Meta`. A new version and the switch to it are staged into
//! the caller's write batch, so they land atomically with whatever else the caller writes
//! (detector state, trigger state). Retention (`stage_new`'s `keep_last`) prunes old versions
//! in the same batch, except the first version, every version that was ever activated by hand
//! (a rollback) or pinned, and the active one.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Cf, KvStore, StoreError, WriteBatch};

const ACTIVE_KEY: &[u8] = b"models/active";
const NEXT_KEY: &[u8] = b"models/next";
/// The lowest version retention has not looked at yet.
const PRUNE_FROM_KEY: &[u8] = b"models/prune_from";
/// Versions pruned so far.
const PRUNED_KEY: &[u8] = b"models/pruned";
/// `models/pinned/<v>`: a version kept whatever the retention (activated by hand or pinned).
const PINNED_PREFIX: &str = "models/pinned/";

/// What is known of a version besides its checkpoint bytes. `M` is what its writer stores
/// with it (the learner's `VersionMeta`: the retrain report and drift reference); the store
/// keeps it as the writer's serde type without reading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord<M> {
    /// 1, 2, ... in creation order.
    pub version: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The version it was trained from.
    pub parent: Option<u64>,
    /// Size of the checkpoint in bytes.
    pub checkpoint_bytes: usize,
    /// The writer's metadata (reports: validation, cost, trigger reason...).
    pub metadata: M,
}

/// A version's record and its checkpoint bytes.
pub type Stored<M> = (VersionRecord<M>, Vec<u8>);

fn meta_key(v: u64) -> Vec<u8> {
    format!("v/{v:020}/meta").into_bytes()
}

fn checkpoint_key(v: u64) -> Vec<u8> {
    format!("v/{v:020}/checkpoint").into_bytes()
}

fn pinned_key(v: u64) -> Vec<u8> {
    format!("{PINNED_PREFIX}{v:020}").into_bytes()
}

fn read_u64(store: &dyn KvStore, key: &[u8]) -> Result<Option<u64>, StoreError> {
    match store.get(Cf::Meta, key)? {
        None => Ok(None),
        Some(b) => {
            let bytes: [u8; 8] = b.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: "not 8 bytes".into(),
            })?;
            Ok(Some(u64::from_le_bytes(bytes)))
        }
    }
}

/// The version registry over a store.
pub struct ModelVersions<'a> {
    store: &'a dyn KvStore,
}

impl<'a> ModelVersions<'a> {
    pub fn new(store: &'a dyn KvStore) -> Self {
        ModelVersions { store }
    }

    /// The serving version, if any was activated.
    pub fn active(&self) -> Result<Option<u64>, StoreError> {
        read_u64(self.store, ACTIVE_KEY)
    }

    /// Versions pruned by retention since the store was created.
    pub fn pruned(&self) -> Result<u64, StoreError> {
        Ok(read_u64(self.store, PRUNED_KEY)?.unwrap_or(0))
    }

    /// Whether a version is kept whatever the retention.
    pub fn is_pinned(&self, version: u64) -> Result<bool, StoreError> {
        Ok(self.store.get(Cf::Meta, &pinned_key(version))?.is_some())
    }

    /// Keeps `version` whatever the retention.
    pub fn pin(&self, version: u64) -> Result<(), StoreError> {
        if self.store.get(Cf::Models, &meta_key(version))?.is_none() {
            return Err(StoreError::NoSuchVersion(version));
        }
        let mut batch = WriteBatch::new();
        batch.put(Cf::Meta, pinned_key(version), Vec::new());
        self.store.write(batch)
    }

    /// Stages a new version (and, with `activate`, the switch to it) into `batch`; returns its
    /// number. With `keep_last > 0`, versions older than the last `keep_last` are deleted in
    /// the same batch unless pinned or active. Nothing is visible until the batch is written.
    /// One writer at a time.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_new<M: Serialize>(
        &self,
        batch: &mut WriteBatch,
        checkpoint: &[u8],
        parent: Option<u64>,
        created_ms: u64,
        metadata: &M,
        activate: bool,
        keep_last: usize,
    ) -> Result<u64, StoreError> {
        let version = read_u64(self.store, NEXT_KEY)?.unwrap_or(1);
        if keep_last > 0 && version > keep_last as u64 {
            // Versions up to `upto` fall out of the last `keep_last` once `version` exists.
            let upto = version - keep_last as u64;
            let from = read_u64(self.store, PRUNE_FROM_KEY)?.unwrap_or(1);
            let active = self.active()?;
            let mut pruned = read_u64(self.store, PRUNED_KEY)?.unwrap_or(0);
            for v in from..=upto {
                if Some(v) == active || self.is_pinned(v)? {
                    continue;
                }
                if self.store.get(Cf::Models, &meta_key(v))?.is_some() {
                    batch.delete(Cf::Models, meta_key(v));
                    batch.delete(Cf::Models, checkpoint_key(v));
                    pruned += 1;
                }
            }
            batch.put(
                Cf::Meta,
                PRUNE_FROM_KEY.to_vec(),
                (upto + 1).to_le_bytes().to_vec(),
            );
            batch.put(Cf::Meta, PRUNED_KEY.to_vec(), pruned.to_le_bytes().to_vec());
        }
        let record = VersionRecord {
            version,
            created_ms,
            parent,
            checkpoint_bytes: checkpoint.len(),
            metadata,
        };
        let meta = serde_json::to_vec(&record).map_err(|e| StoreError::Write(Box::new(e)))?;
        batch.put(Cf::Models, meta_key(version), meta);
        batch.put(Cf::Models, checkpoint_key(version), checkpoint.to_vec());
        if version == 1 {
            // The first version is the root of every lineage: kept as a known fallback.
            batch.put(Cf::Meta, pinned_key(version), Vec::new());
        }
        batch.put(
            Cf::Meta,
            NEXT_KEY.to_vec(),
            (version + 1).to_le_bytes().to_vec(),
        );
        if activate {
            batch.put(
                Cf::Meta,
                ACTIVE_KEY.to_vec(),
                version.to_le_bytes().to_vec(),
            );
        }
        Ok(version)
    }

    /// A version's record and checkpoint bytes.
    pub fn get<M: DeserializeOwned>(&self, version: u64) -> Result<Option<Stored<M>>, StoreError> {
        let Some(meta) = self.store.get(Cf::Models, &meta_key(version))? else {
            return Ok(None);
        };
        let record: VersionRecord<M> = serde_json::from_slice(&meta)
            .map_err(|e| StoreError::codec(format!("version {version} meta"), e))?;
        let bytes = self
            .store
            .get(Cf::Models, &checkpoint_key(version))?
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("version {version} checkpoint"),
                reason: "metadata without checkpoint".into(),
            })?;
        Ok(Some((record, bytes)))
    }

    /// Every kept version's record, oldest first. Reads the metadata only, never a
    /// checkpoint.
    pub fn list<M: DeserializeOwned>(&self) -> Result<Vec<VersionRecord<M>>, StoreError> {
        let next = read_u64(self.store, NEXT_KEY)?.unwrap_or(1);
        let mut out = Vec::new();
        for v in 1..next {
            if let Some(meta) = self.store.get(Cf::Models, &meta_key(v))? {
                out.push(
                    serde_json::from_slice(&meta)
                        .map_err(|e| StoreError::codec(format!("version {v} meta"), e))?,
                );
            }
        }
        Ok(out)
    }

    /// How many versions are kept (reads no record).
    pub fn count(&self) -> Result<usize, StoreError> {
        let next = read_u64(self.store, NEXT_KEY)?.unwrap_or(1);
        let mut n = 0;
        for v in 1..next {
            n += usize::from(self.store.get(Cf::Models, &meta_key(v))?.is_some());
        }
        Ok(n)
    }

    /// Makes an existing version the serving one (rollback or roll forward); it is pinned:
    /// retention keeps every version that was ever activated by hand.
    pub fn activate(&self, version: u64) -> Result<(), StoreError> {
        if self.store.get(Cf::Models, &meta_key(version))?.is_none() {
            return Err(StoreError::NoSuchVersion(version));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Meta,
            ACTIVE_KEY.to_vec(),
            version.to_le_bytes().to_vec(),
        );
        batch.put(Cf::Meta, pinned_key(version), Vec::new());
        self.store.write(batch)
    }
}

/// `[models]`: how many versions the store keeps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Versions kept besides the first version, every version that was ever activated by
    /// hand (a rollback) or pinned, and the active one; older ones are deleted when a new one is written. 0 = all.
    pub keep_last: usize,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { keep_last: 50 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, RocksStore};

    /// A writer's metadata.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Meta {
        outcome: String,
    }

    fn meta(outcome: &str) -> Meta {
        Meta {
            outcome: outcome.into(),
        }
    }

    fn exercise(store: &dyn KvStore) {
        let versions = ModelVersions::new(store);
        assert_eq!(versions.active().unwrap(), None);
        let mut b = WriteBatch::new();
        let v1 = versions
            .stage_new(&mut b, b"one", None, 10, &meta("initial"), true, 0)
            .unwrap();
        assert_eq!(
            versions.get::<Meta>(v1).unwrap(),
            None,
            "invisible until the batch is written"
        );
        store.write(b).unwrap();
        let mut b = WriteBatch::new();
        let v2 = versions
            .stage_new(&mut b, b"two!", Some(v1), 20, &meta("rejected"), false, 0)
            .unwrap();
        store.write(b).unwrap();
        assert_eq!((v1, v2), (1, 2));
        assert_eq!(
            versions.active().unwrap(),
            Some(1),
            "a rejected candidate is kept, not served"
        );
        let (rec, bytes) = versions.get::<Meta>(2).unwrap().unwrap();
        assert_eq!(bytes, b"two!");
        assert_eq!(rec.parent, Some(1));
        assert_eq!(rec.checkpoint_bytes, 4);
        assert_eq!(rec.metadata, meta("rejected"));
        assert_eq!(
            versions
                .list::<Meta>()
                .unwrap()
                .iter()
                .map(|r| r.version)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        versions.activate(2).unwrap();
        assert_eq!(versions.active().unwrap(), Some(2));
        versions.activate(1).unwrap();
        assert_eq!(versions.active().unwrap(), Some(1), "rollback");
        let e = versions.activate(9).unwrap_err().to_string();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn retention_keeps_the_last_the_active_and_the_pinned() {
        let store = MemoryStore::new();
        let versions = ModelVersions::new(&store);
        let add = |keep: usize| {
            let mut b = WriteBatch::new();
            let v = versions
                .stage_new(&mut b, b"w", None, 0, &meta(""), true, keep)
                .unwrap();
            store.write(b).unwrap();
            v
        };
        for _ in 0..3 {
            add(3);
        }
        // Version 2 was rolled back to once: pinned.
        versions.activate(2).unwrap();
        versions.activate(3).unwrap();
        for _ in 0..5 {
            add(3);
        }
        let kept: Vec<u64> = versions
            .list::<Meta>()
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        // 8 versions, the last 3 (6, 7, 8) kept, plus 1 (the first), 2 (rolled back to) and 3
        // (activated by hand); 4 and 5 pruned.
        assert_eq!(kept, vec![1, 2, 3, 6, 7, 8]);
        assert_eq!(versions.pruned().unwrap(), 2);
        assert_eq!(versions.count().unwrap(), 6);
        assert!(versions.get::<Meta>(5).unwrap().is_none());
        assert!(versions.get::<Meta>(4).unwrap().is_none());
        assert_eq!(versions.active().unwrap(), Some(8));
    }

    #[test]
    fn versions_on_memory() {
        exercise(&MemoryStore::new());
    }

    #[test]
    fn versions_on_rocksdb_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&RocksStore::open(dir.path(), false).unwrap());
        let store = RocksStore::open(dir.path(), false).unwrap();
        let versions = ModelVersions::new(&store);
        assert_eq!(versions.active().unwrap(), Some(1));
        assert_eq!(versions.count().unwrap(), 2);
    }
}
