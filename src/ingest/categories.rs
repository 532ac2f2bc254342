//! Categorical inputs: each `schema.categorical` field's vocabulary (which of its one-hot
//! inputs a value sets), and new categories (the first time each value is seen).
//!
//! **Hashing** (`schema.categorical_encoding = "hashing"`, the default): every value sets the
//! input of its hash (FNV-1a modulo `schema.categorical_buckets`), no state kept; two values
//! share an input when their hashes collide (bank marketing's `contact` values `telephone`
//! and `cellular` do at 32 and at 64 inputs).
//!
//! **Vocabulary** (`"vocabulary"`): a value takes
//! the next free input of its field the first time it is seen, in stream order, until the
//! field's `schema.categorical_buckets` inputs are taken; a later new value shares an input by
//! its hash (FNV-1a modulo the inputs), as feature hashing would. Append-only: a value keeps
//! its input for good, so every model version reads the inputs the same way, and up to
//! `categorical_buckets` values per field never share one. Hashing stays the default: over
//! model seeds 1-4 (2026-12-06) the vocabulary scored 0.12 points lower on bank marketing
//! (0.9096 against 0.9108, lower with every seed), 1.3% more MAE on metro traffic and 0.2%
//! on Beijing PM2.5, equal on KDD Cup 99.
//!
//! **New categories**: feature hashing has no out-of-vocabulary bucket, so a value never seen
//! before is counted here (`new_category/<field>` in the store,
//! `relearn_ingest_new_categories_total`): a burst of new values is a drift signal the input
//! frequencies alone may hide.
//!
//! Each value's 64-bit hash is kept under `ingest/categories/<k>/<hash>` in `Cf::Meta`, its
//! input (u32, little-endian) as the value when it has one of its own (empty: it shares one),
//! staged into the same batch as the offsets of the record that brought it, so a crash never
//! counts or indexes a value twice or loses one. At most [`MAX_TRACKED`] values per field are
//! kept; past that new values are no longer counted (the README says so). A store written
//! before vocabularies holds only empty values: its fields go on hashing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use crate::store::{Cf, KvStore, StoreError, WriteBatch};

/// Distinct values remembered per categorical field.
pub const MAX_TRACKED: usize = 100_000;

const PREFIX: &str = "ingest/categories/";

/// How a categorical value becomes an input (`schema.categorical_encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoricalEncoding {
    /// A learned, append-only vocabulary of the first `categorical_buckets` values of each
    /// field, then hashing for the rest.
    Vocabulary,
    /// Feature hashing only (FNV-1a modulo `categorical_buckets`), no state.
    #[default]
    Hashing,
}

/// One field's vocabulary.
#[derive(Debug, Clone, Default)]
struct FieldVocabulary {
    /// Every value hashes (`"hashing"`, or a store written before vocabularies).
    hashing: bool,
    /// The values with an input of their own, by hash.
    index: HashMap<u64, u32>,
}

/// Every categorical field's vocabulary, shared by the ingest path (which assigns inputs) and
/// the predict API (which reads them: a value not seen yet by the stream sets no input).
#[derive(Debug)]
pub struct Vocabulary {
    inputs: usize,
    fields: RwLock<Vec<FieldVocabulary>>,
}

impl Vocabulary {
    /// Empty vocabularies for `fields` fields of `inputs` inputs each.
    pub fn new(fields: usize, inputs: usize) -> Vocabulary {
        Vocabulary {
            inputs: inputs.max(1),
            fields: RwLock::new(vec![FieldVocabulary::default(); fields]),
        }
    }

    /// The input of field `k`'s value with hash `hash`, among the field's inputs; with
    /// `assign`, a value not seen yet takes the next free one. `None`: not seen yet and not
    /// assigned.
    pub fn input(&self, k: usize, hash: u64, assign: bool) -> Option<usize> {
        let hashed = (hash % self.inputs as u64) as usize;
        {
            let fields = self.fields.read().unwrap_or_else(|p| p.into_inner());
            let f = fields.get(k)?;
            if f.hashing || f.index.len() >= self.inputs {
                return Some(f.index.get(&hash).map_or(hashed, |&i| i as usize));
            }
            if let Some(&i) = f.index.get(&hash) {
                return Some(i as usize);
            }
            if !assign {
                return None;
            }
        }
        let mut fields = self.fields.write().unwrap_or_else(|p| p.into_inner());
        let f = fields.get_mut(k)?;
        if let Some(&i) = f.index.get(&hash) {
            return Some(i as usize);
        }
        if f.index.len() >= self.inputs {
            return Some(hashed);
        }
        let i = f.index.len() as u32;
        f.index.insert(hash, i);
        Some(i as usize)
    }

    /// The input that field `k`'s value `hash` has of its own, if any.
    fn own(&self, k: usize, hash: u64) -> Option<u32> {
        let fields = self.fields.read().unwrap_or_else(|p| p.into_inner());
        fields.get(k).and_then(|f| f.index.get(&hash).copied())
    }

    /// How many values of field `k` have an input of their own.
    pub fn len(&self, k: usize) -> usize {
        let fields = self.fields.read().unwrap_or_else(|p| p.into_inner());
        fields.get(k).map_or(0, |f| f.index.len())
    }
}

/// The values seen so far, per categorical field (schema order), and the vocabulary.
#[derive(Debug)]
pub struct CategoryTracker {
    seen: Vec<HashSet<u64>>,
    vocabulary: Arc<Vocabulary>,
    /// New values of the open batch, to stage: (field index, hash).
    staged: Vec<(usize, u64)>,
}

/// A store's vocabulary does not fit `schema.categorical_encoding`.
#[derive(Debug, thiserror::Error)]
pub enum VocabularyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "schema.categorical_encoding = \"hashing\", but the store holds a vocabulary of {values} values for `{field}`: the models in it read that field's inputs by vocabulary; set \"vocabulary\" or use a new store.path"
    )]
    HashingOverVocabulary { field: String, values: usize },
}

fn key(field: usize, hash: u64) -> Vec<u8> {
    format!("{PREFIX}{field}/{hash:016x}").into_bytes()
}

impl CategoryTracker {
    /// The values stored for the categorical fields `names`, each with `inputs` inputs.
    pub fn load(
        store: &dyn KvStore,
        names: &[String],
        inputs: usize,
        encoding: CategoricalEncoding,
    ) -> Result<CategoryTracker, VocabularyError> {
        let mut seen = vec![HashSet::new(); names.len()];
        let mut fields = vec![FieldVocabulary::default(); names.len()];
        for (k, (set, field)) in seen.iter_mut().zip(&mut fields).enumerate() {
            let prefix = format!("{PREFIX}{k}/");
            for (key, value) in store.scan_prefix(Cf::Meta, prefix.as_bytes())? {
                let corrupt = |reason: &str| StoreError::Corrupt {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    reason: reason.into(),
                };
                let hex = &key[prefix.len()..];
                let h = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|t| u64::from_str_radix(t, 16).ok())
                    .ok_or_else(|| corrupt("not a category hash"))?;
                set.insert(h);
                match value.len() {
                    0 => {}
                    4 => {
                        let mut b = [0u8; 4];
                        b.copy_from_slice(&value);
                        field.index.insert(h, u32::from_le_bytes(b));
                    }
                    _ => return Err(corrupt("not a category input").into()),
                }
            }
            match encoding {
                CategoricalEncoding::Hashing if !field.index.is_empty() => {
                    return Err(VocabularyError::HashingOverVocabulary {
                        field: names[k].clone(),
                        values: field.index.len(),
                    });
                }
                CategoricalEncoding::Hashing => field.hashing = true,
                CategoricalEncoding::Vocabulary if field.index.is_empty() && !set.is_empty() => {
                    tracing::info!(
                        field = %names[k],
                        values = set.len(),
                        "the store's values of this categorical field were hashed before vocabularies: it goes on hashing"
                    );
                    field.hashing = true;
                }
                CategoricalEncoding::Vocabulary => {}
            }
        }
        Ok(CategoryTracker {
            seen,
            vocabulary: Arc::new(Vocabulary {
                inputs: inputs.max(1),
                fields: RwLock::new(fields),
            }),
            staged: Vec::new(),
        })
    }

    /// The vocabulary, for the decoders.
    pub fn vocabulary(&self) -> Arc<Vocabulary> {
        self.vocabulary.clone()
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
            let value = self
                .vocabulary
                .own(k, h)
                .map_or_else(Vec::new, |i| i.to_le_bytes().to_vec());
            batch.put(Cf::Meta, key(k, h), value);
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
        let names = ["city".to_string(), "channel".to_string()];
        let load =
            || CategoryTracker::load(&store, &names, 8, CategoricalEncoding::Vocabulary).unwrap();
        let mut t = load();
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
        let mut t = load();
        let mut new = Vec::new();
        t.observe(&[h("Oslo"), h("web")], |k| new.push(k));
        t.observe(&[h("Quito"), h("app")], |k| new.push(k));
        assert_eq!(new, vec![0]);
    }

    /// Inputs in order of first sight, kept across a restart; past the field's inputs new
    /// values share one by hash; a reader never assigns.
    #[test]
    fn the_vocabulary_gives_each_value_its_own_input_until_they_are_taken() {
        let store = MemoryStore::new();
        let names = ["contact".to_string()];
        let load =
            || CategoryTracker::load(&store, &names, 3, CategoricalEncoding::Vocabulary).unwrap();
        let mut t = load();
        let v = t.vocabulary();
        let values = ["telephone", "cellular", "fax", "mail", "pigeon"];
        let hashes: Vec<u64> = values.iter().map(|s| category_hash(s)).collect();
        assert_eq!(
            v.input(0, hashes[0], false),
            None,
            "a reader does not assign"
        );
        let got: Vec<usize> = hashes
            .iter()
            .map(|&h| {
                let i = v.input(0, h, true).unwrap();
                t.observe(&[Some(h)], |_| {});
                i
            })
            .collect();
        assert_eq!(&got[..3], &[0, 1, 2]);
        assert_eq!(got[3], (hashes[3] % 3) as usize, "full: by hash");
        assert_eq!(got[4], (hashes[4] % 3) as usize);
        assert_eq!(v.input(0, hashes[1], false), Some(1));
        assert_eq!(v.len(0), 3);
        let mut b = WriteBatch::new();
        t.stage(&mut b);
        assert_eq!(b.len(), 5);
        store.write(b).unwrap();
        let again = load().vocabulary();
        for (h, want) in hashes.iter().zip(&got) {
            assert_eq!(again.input(0, *h, false), Some(*want));
        }
        // `"hashing"` over a vocabulary would change what the inputs mean: refused.
        let err =
            CategoryTracker::load(&store, &names, 3, CategoricalEncoding::Hashing).unwrap_err();
        assert!(err.to_string().contains("`contact`"), "{err}");
    }

    /// A store written before vocabularies (empty values) goes on hashing, and so does
    /// `"hashing"`.
    #[test]
    fn a_store_of_hashed_values_goes_on_hashing() {
        let store = MemoryStore::new();
        let names = ["city".to_string()];
        let h = category_hash("Lisbon");
        let mut b = WriteBatch::new();
        b.put(Cf::Meta, key(0, h), Vec::new());
        store.write(b).unwrap();
        for encoding in [
            CategoricalEncoding::Vocabulary,
            CategoricalEncoding::Hashing,
        ] {
            let v = CategoryTracker::load(&store, &names, 8, encoding)
                .unwrap()
                .vocabulary();
            let q = category_hash("Quito");
            assert_eq!(v.input(0, q, false), Some((q % 8) as usize));
            assert_eq!(v.input(0, h, true), Some((h % 8) as usize));
            assert_eq!(v.len(0), 0);
        }
    }
}
