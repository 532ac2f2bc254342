//! An in-memory `KvStore` for unit tests; same semantics as RocksDB, no durability.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Cf, KvStore, Op, Pairs, StoreError, WriteBatch};

/// Every entry, keyed by column family then key.
type Entries = BTreeMap<(Cf, Vec<u8>), Vec<u8>>;

/// A `KvStore` in ordered maps behind one mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    maps: Mutex<Entries>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl KvStore for MemoryStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let maps = self.maps.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(maps.get(&(cf, key.to_vec())).cloned())
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut maps = self.maps.lock().map_err(|_| StoreError::Poisoned)?;
        for op in batch.ops {
            match op {
                Op::Put { cf, key, value } => {
                    maps.insert((cf, key), value);
                }
                Op::Delete { cf, key } => {
                    maps.remove(&(cf, key));
                }
            }
        }
        Ok(())
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Pairs, StoreError> {
        let maps = self.maps.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(maps
            .range((cf, prefix.to_vec())..)
            .take_while(|((c, k), _)| *c == cf && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance::run(&super::MemoryStore::new());
    }
}
