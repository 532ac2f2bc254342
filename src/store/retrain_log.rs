//! The retrain log in `Cf::Meta`: one JSON report per retrain (or challenger trip through the
//! gate) under `loop/retrains/<seq, 20 digits>`, so the log reads back in order. This module
//! owns the keys; the report's type belongs to the learning loop (`learner::RetrainReport`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Cf, KvStore, StoreError, WriteBatch};

const PREFIX: &str = "loop/retrains/";

/// Reads and stages retrain reports.
pub struct RetrainLog<'a> {
    store: &'a dyn KvStore,
}

fn key(seq: u64) -> Vec<u8> {
    format!("{PREFIX}{seq:020}").into_bytes()
}

impl<'a> RetrainLog<'a> {
    pub fn new(store: &'a dyn KvStore) -> RetrainLog<'a> {
        RetrainLog { store }
    }

    /// Stages report `seq` into `batch` (written with the state it describes).
    pub fn stage<T: Serialize>(
        batch: &mut WriteBatch,
        seq: u64,
        report: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(report)
            .map_err(|e| StoreError::codec(String::from_utf8_lossy(&key(seq)).into_owned(), e))?;
        batch.put(Cf::Meta, key(seq), bytes);
        Ok(())
    }

    /// Every report, oldest first.
    pub fn all<T: DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.store
            .scan_prefix(Cf::Meta, PREFIX.as_bytes())?
            .into_iter()
            .map(|(k, v)| decode(&k, &v))
            .collect()
    }

    /// Reports in the log.
    pub fn count(&self) -> Result<usize, StoreError> {
        Ok(self.store.scan_prefix(Cf::Meta, PREFIX.as_bytes())?.len())
    }

    /// The newest report.
    pub fn last<T: DeserializeOwned>(&self) -> Result<Option<T>, StoreError> {
        match self.store.scan_prefix(Cf::Meta, PREFIX.as_bytes())?.last() {
            Some((k, v)) => decode(k, v).map(Some),
            None => Ok(None),
        }
    }
}

fn decode<T: DeserializeOwned>(k: &[u8], v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v)
        .map_err(|e| StoreError::codec(String::from_utf8_lossy(k).into_owned(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn reports_read_back_in_order_and_a_corrupt_one_names_its_key() {
        let store = MemoryStore::new();
        let mut batch = WriteBatch::new();
        for seq in [10u64, 2, 1] {
            RetrainLog::stage(&mut batch, seq, &serde_json::json!({ "retrain": seq })).unwrap();
        }
        store.write(batch).unwrap();
        let log = RetrainLog::new(&store);
        let all: Vec<serde_json::Value> = log.all().unwrap();
        let seqs: Vec<u64> = all.iter().map(|r| r["retrain"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![1, 2, 10]);
        let last: Option<serde_json::Value> = log.last().unwrap();
        assert_eq!(last.unwrap()["retrain"], 10);
        assert_eq!(log.count().unwrap(), 3);
        let mut batch = WriteBatch::new();
        batch.put(Cf::Meta, key(11), b"not json".to_vec());
        store.write(batch).unwrap();
        let e = log.last::<serde_json::Value>().unwrap_err().to_string();
        assert!(e.contains("loop/retrains/00000000000000000011"), "{e}");
    }
}
