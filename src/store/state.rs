//! Ingest state: the next offset of every source partition and the durable counters.
//!
//! Both are written in the same batch as the replay-buffer changes the records produced; the
//! offset of a partition is the offset of the next record to process there.

use std::collections::BTreeMap;

use super::{Cf, KvStore, StoreError, WriteBatch};

const OFFSET_PREFIX: &str = "offset/";
const COUNTER_PREFIX: &str = "counter/";

/// Counter names (suffixes of `counter/` keys).
pub mod counter {
    /// Every record consumed and durably processed, good or malformed.
    pub const RECORDS: &str = "records";
    /// Decoded records with a label.
    pub const LABELED: &str = "labeled";
    /// Decoded records without a label.
    pub const UNLABELED: &str = "unlabeled";
    /// Prefix of per-reason malformed counters: `malformed/<reason>`.
    pub const MALFORMED_PREFIX: &str = "malformed/";
    /// Prefix of per-field missing-value counters: `missing/<field>`.
    pub const MISSING_PREFIX: &str = "missing/";
    /// Prefix of per-field new-category counters: `new_category/<field>`.
    pub const NEW_CATEGORY_PREFIX: &str = "new_category/";
    /// Label records (delayed labels: a key and a label, no feature).
    pub const LABEL_RECORDS: &str = "label_records";
    /// `labels/<outcome>`: what label records and expiries did (`join::JoinOutcome`).
    pub const JOIN_PREFIX: &str = "labels/";
}

/// Offsets and counters, in memory, with what changed since the last `stage`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IngestState {
    /// topic -> partition -> (next offset, changed since the last stage). Nested by topic so
    /// the per-record update needs no allocation.
    offsets: BTreeMap<String, BTreeMap<i32, (i64, bool)>>,
    counters: BTreeMap<String, u64>,
    dirty_counters: Vec<String>,
}

fn corrupt(key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: reason.into(),
    }
}

impl IngestState {
    /// Reads every offset and counter from the store.
    pub fn load(store: &dyn KvStore) -> Result<IngestState, StoreError> {
        let mut state = IngestState::default();
        for (k, v) in store.scan_prefix(Cf::Meta, OFFSET_PREFIX.as_bytes())? {
            let text = std::str::from_utf8(&k[OFFSET_PREFIX.len()..])
                .map_err(|_| corrupt(&k, "key is not UTF-8"))?;
            let (topic, partition) = text
                .rsplit_once('/')
                .ok_or_else(|| corrupt(&k, "no partition in key"))?;
            let partition: i32 = partition
                .parse()
                .map_err(|_| corrupt(&k, "partition is not a number"))?;
            let bytes: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(&k, "offset is not 8 bytes"))?;
            state
                .offsets
                .entry(topic.to_string())
                .or_default()
                .insert(partition, (i64::from_le_bytes(bytes), false));
        }
        for (k, v) in store.scan_prefix(Cf::Meta, COUNTER_PREFIX.as_bytes())? {
            let name = std::str::from_utf8(&k[COUNTER_PREFIX.len()..])
                .map_err(|_| corrupt(&k, "key is not UTF-8"))?;
            let bytes: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(&k, "counter is not 8 bytes"))?;
            state
                .counters
                .insert(name.to_string(), u64::from_le_bytes(bytes));
        }
        Ok(state)
    }

    /// The next offset to process in `topic`/`partition`, if one was stored.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.offsets.get(topic)?.get(&partition).map(|(o, _)| *o)
    }

    /// Records that everything before `next` was processed in `topic`/`partition`.
    pub fn set_next_offset(&mut self, topic: &str, partition: i32, next: i64) {
        let parts = match self.offsets.get_mut(topic) {
            Some(p) => p,
            None => self.offsets.entry(topic.to_string()).or_default(),
        };
        let slot = parts.entry(partition).or_insert((next, true));
        if slot.0 != next {
            *slot = (next, true);
        }
    }

    /// Adds `n` to a counter.
    pub fn add(&mut self, name: &str, n: u64) {
        match self.counters.get_mut(name) {
            Some(c) => *c += n,
            None => {
                self.counters.insert(name.to_string(), n);
            }
        }
        self.dirty_counters.push(name.to_string());
    }

    /// A counter's value (0 when never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Every counter.
    pub fn counters(&self) -> &BTreeMap<String, u64> {
        &self.counters
    }

    /// Every stored next offset, as `(topic, partition, next)`.
    pub fn offsets(&self) -> Vec<(String, i32, i64)> {
        self.offsets
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, (o, _))| (t.clone(), *p, *o)))
            .collect()
    }

    /// Moves the changed offsets and counters into `batch`; returns the offsets it wrote.
    pub fn stage(&mut self, batch: &mut WriteBatch) -> Vec<(String, i32, i64)> {
        let mut written = Vec::new();
        for (topic, parts) in &mut self.offsets {
            for (p, (next, dirty)) in parts.iter_mut() {
                if std::mem::take(dirty) {
                    batch.put(
                        Cf::Meta,
                        format!("{OFFSET_PREFIX}{topic}/{p}").into_bytes(),
                        next.to_le_bytes().to_vec(),
                    );
                    written.push((topic.clone(), *p, *next));
                }
            }
        }
        self.dirty_counters.sort();
        self.dirty_counters.dedup();
        for name in std::mem::take(&mut self.dirty_counters) {
            let value = self.counters[&name];
            batch.put(
                Cf::Meta,
                format!("{COUNTER_PREFIX}{name}").into_bytes(),
                value.to_le_bytes().to_vec(),
            );
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn round_trip_through_the_store() {
        let store = MemoryStore::new();
        let mut s = IngestState::load(&store).unwrap();
        s.set_next_offset("t.x", 0, 10);
        s.set_next_offset("file:/a/b.csv", 3, 101);
        s.add(counter::RECORDS, 5);
        s.add(counter::RECORDS, 2);
        let mut b = WriteBatch::new();
        let written = s.stage(&mut b);
        assert_eq!(b.len(), 3);
        assert_eq!(written.len(), 2);
        store.write(b).unwrap();
        let back = IngestState::load(&store).unwrap();
        assert_eq!(back.next_offset("t.x", 0), Some(10));
        assert_eq!(back.next_offset("file:/a/b.csv", 3), Some(101));
        assert_eq!(back.counter(counter::RECORDS), 7);
        let mut b = WriteBatch::new();
        let mut s = back;
        s.stage(&mut b);
        assert!(b.is_empty(), "nothing changed, nothing staged");
    }
}
