//! Model versions in `Cf::Models`: every version's checkpoint bytes and metadata, kept
//! forever, and the active (serving) version in `Cf::Meta`. A new version and the switch to it
//! are staged into the caller's write batch, so they land atomically with whatever else the
//! caller writes (detector state, trigger state).

use serde::{Deserialize, Serialize};

use super::{Cf, KvStore, StoreError, WriteBatch};

const ACTIVE_KEY: &[u8] = b"models/active";
const NEXT_KEY: &[u8] = b"models/next";

/// What is known of a version besides its checkpoint bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 1, 2, ... in creation order.
    pub version: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The version it was trained from.
    pub parent: Option<u64>,
    /// Size of the checkpoint in bytes.
    pub checkpoint_bytes: usize,
    /// Reports (validation, cost, trigger reason...) as JSON.
    pub metadata: serde_json::Value,
}

fn meta_key(v: u64) -> Vec<u8> {
    format!("v/{v:020}/meta").into_bytes()
}

fn checkpoint_key(v: u64) -> Vec<u8> {
    format!("v/{v:020}/checkpoint").into_bytes()
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

    /// Stages a new version (and, with `activate`, the switch to it) into `batch`; returns its
    /// number. Nothing is visible until the batch is written. One writer at a time.
    pub fn stage_new(
        &self,
        batch: &mut WriteBatch,
        checkpoint: &[u8],
        parent: Option<u64>,
        created_ms: u64,
        metadata: serde_json::Value,
        activate: bool,
    ) -> Result<u64, StoreError> {
        let version = read_u64(self.store, NEXT_KEY)?.unwrap_or(1);
        let record = VersionRecord {
            version,
            created_ms,
            parent,
            checkpoint_bytes: checkpoint.len(),
            metadata,
        };
        let meta = serde_json::to_vec(&record).map_err(|e| StoreError::Write(e.to_string()))?;
        batch.put(Cf::Models, meta_key(version), meta);
        batch.put(Cf::Models, checkpoint_key(version), checkpoint.to_vec());
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
    pub fn get(&self, version: u64) -> Result<Option<(VersionRecord, Vec<u8>)>, StoreError> {
        let Some(meta) = self.store.get(Cf::Models, &meta_key(version))? else {
            return Ok(None);
        };
        let record: VersionRecord =
            serde_json::from_slice(&meta).map_err(|e| StoreError::Corrupt {
                key: format!("version {version} meta"),
                reason: e.to_string(),
            })?;
        let bytes = self
            .store
            .get(Cf::Models, &checkpoint_key(version))?
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("version {version} checkpoint"),
                reason: "metadata without checkpoint".into(),
            })?;
        Ok(Some((record, bytes)))
    }

    /// Every version's record, oldest first.
    pub fn list(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.store
            .scan_prefix(Cf::Models, b"v/")?
            .into_iter()
            .filter(|(k, _)| k.ends_with(b"/meta"))
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Makes an existing version the serving one (rollback or roll forward).
    pub fn activate(&self, version: u64) -> Result<(), StoreError> {
        if self.store.get(Cf::Models, &meta_key(version))?.is_none() {
            return Err(StoreError::Write(format!(
                "model version {version} does not exist"
            )));
        }
        let mut batch = WriteBatch::new();
        batch.put(
            Cf::Meta,
            ACTIVE_KEY.to_vec(),
            version.to_le_bytes().to_vec(),
        );
        self.store.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, RocksStore};

    fn exercise(store: &dyn KvStore) {
        let versions = ModelVersions::new(store);
        assert_eq!(versions.active().unwrap(), None);
        let mut b = WriteBatch::new();
        let v1 = versions
            .stage_new(
                &mut b,
                b"one",
                None,
                10,
                serde_json::json!({"trigger": "initial"}),
                true,
            )
            .unwrap();
        assert_eq!(
            versions.get(v1).unwrap(),
            None,
            "invisible until the batch is written"
        );
        store.write(b).unwrap();
        let mut b = WriteBatch::new();
        let v2 = versions
            .stage_new(
                &mut b,
                b"two!",
                Some(v1),
                20,
                serde_json::json!({"outcome": "rejected"}),
                false,
            )
            .unwrap();
        store.write(b).unwrap();
        assert_eq!((v1, v2), (1, 2));
        assert_eq!(
            versions.active().unwrap(),
            Some(1),
            "a rejected candidate is kept, not served"
        );
        let (rec, bytes) = versions.get(2).unwrap().unwrap();
        assert_eq!(bytes, b"two!");
        assert_eq!(rec.parent, Some(1));
        assert_eq!(rec.checkpoint_bytes, 4);
        assert_eq!(rec.metadata["outcome"], "rejected");
        assert_eq!(
            versions
                .list()
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
        assert_eq!(versions.list().unwrap().len(), 2);
    }
}
