//! New categories: the first time each value of a `schema.categorical` field is seen. Feature
//! hashing has no out-of-vocabulary bucket, so a value never seen before is counted here
//! instead (`new_category/<field>` in the store, `relearn_ingest_new_categories_total`):
//! a burst of new values is a drift signal the bucket frequencies alone may hide.
//!
//! Each value's 64-bit hash is kept under `ingest/categories/<k>/<hash>` in `Cf::Meta`,
//! staged into the same batch as the offsets of the record that brought it, so a crash never
//! counts a value twice or loses one. At most [`MAX_TRACKED`] values per field are kept;
//! past that new values are no longer counted (the README says so).

use std::collections::HashSet;

use crate::store::{Cf, KvStore, StoreError, WriteBatch};

/// Distinct values remembered per categorical field.
pub const MAX_TRACKED: usize = 100_000;

const PREFIX: &str = "ingest/categories/";

/// The values seen so far, per categorical field (schema order).
#[derive(Debug, Default)]
pub struct CategoryTracker {
    seen: Vec<HashSet<u64>>,
    /// New values of the open batch, to stage: (field index, hash).
    staged: Vec<(usize, u64)>,
}

fn key(field: usize, hash: u64) -> Vec<u8> {
    format!("{PREFIX}{field}/{hash:016x}").into_bytes()
}

impl CategoryTracker {
    /// The values stored for `fields` categorical fields.
    pub fn load(store: &dyn KvStore, fields: usize) -> Result<CategoryTracker, StoreError> {
        let mut seen = vec![HashSet::new(); fields];
        for (k, set) in seen.iter_mut().enumerate() {
            let prefix = format!("{PREFIX}{k}/");
            for (key, _) in store.scan_prefix(Cf::Meta, prefix.as_bytes())? {
                let hex = &key[prefix.len()..];
                let h = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|t| u64::from_str_radix(t, 16).ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        reason: "not a category hash".into(),
                    })?;
                set.insert(h);
            }
        }
        Ok(CategoryTracker {
            seen,
            staged: Vec::new(),
        })
    }

    /// Takes in a record's category hashes; calls `new` with the index of each field whose
    /// value was never seen before.
    pub fn observe(&mut self, hashes: &[Option<u64>], mut new: impl FnMut(usize)) {
        for (k, h) in hashes.iter().enumerate() {
            let (Some(h), Some(set)) = (h, self.seen.get_mut(k)) else {
                continue;
            };
            if set.len() < MAX_TRACKED && set.insert(*h) {
                self.staged.push((k, *h));
                new(k);
            }
        }
    }

    /// Stages the new values of the open batch.
    pub fn stage(&mut self, batch: &mut WriteBatch) {
        for (k, h) in self.staged.drain(..) {
            batch.put(Cf::Meta, key(k, h), Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::category_hash;
    use crate::store::MemoryStore;

    #[test]
    fn each_value_counts_once_across_a_restart() {
        let store = MemoryStore::new();
        let h = |v: &str| Some(category_hash(v));
        let mut t = CategoryTracker::load(&store, 2).unwrap();
        let mut new = Vec::new();
        for r in [
            [h("Lisbon"), h("web")],
            [h("Oslo"), None],
            [h("Lisbon"), h("app")],
        ] {
            t.observe(&r, |k| new.push(k));
        }
        assert_eq!(new, vec![0, 1, 0, 1]);
        let mut b = WriteBatch::new();
        t.stage(&mut b);
        store.write(b).unwrap();
        // A restart: what was stored is known, only Quito is new.
        let mut t = CategoryTracker::load(&store, 2).unwrap();
        let mut new = Vec::new();
        t.observe(&[h("Oslo"), h("web")], |k| new.push(k));
        t.observe(&[h("Quito"), h("app")], |k| new.push(k));
        assert_eq!(new, vec![0]);
    }
}
