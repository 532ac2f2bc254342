//! The replay buffer: reservoir sampling (Algorithm R) of the labeled stream, kept in RocksDB.
//!
//! Uniform mode keeps one reservoir of `capacity` slots over the whole labeled stream;
//! class-balanced mode keeps one reservoir per class with an equal share of the capacity, so a
//! rare class keeps its quota. Every decision comes from a seeded `Rng` whose state is stored
//! with the slots in the same write batch, so a restart continues the same sample.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Cf, KvStore, StoreError, WriteBatch};
use crate::error::ConfigError;
use crate::record::{Label, Record};
use crate::rng::Rng;

/// The key of the sampler's stored state (`relearn inspect` reads it).
pub const STATE_NAME: &str = "replay/state";
const STATE_KEY: &[u8] = STATE_NAME.as_bytes();

/// Counts of one reservoir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservoir {
    /// Slots of this reservoir.
    pub capacity: u32,
    /// Records offered to it so far.
    pub seen: u64,
    /// Slots holding a record (`min(seen, capacity)`).
    pub filled: u32,
}

/// Everything needed to continue sampling: stored as JSON in `Cf::Meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayState {
    pub class_balanced: bool,
    pub rng: Rng,
    pub reservoirs: Vec<Reservoir>,
}

/// The replay buffer's in-memory index and staged changes. The records live in the store.
#[derive(Debug)]
pub struct ReplayBuffer {
    state: ReplayState,
    staged: BTreeMap<(u32, u32), Vec<u8>>,
}

/// Where an offered record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub reservoir: u32,
    pub index: u32,
}

fn slot_key(reservoir: u32, index: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&reservoir.to_be_bytes());
    k[4..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The replay configuration differs from what the store holds.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("config key `{key}`: {reason}")]
    Mismatch { key: &'static str, reason: String },
}

impl ReplayBuffer {
    /// A fresh state for `config` and `num_classes` classes.
    pub fn new_state(config: &ReplayConfig, num_classes: usize) -> ReplayState {
        let reservoirs = if config.class_balanced {
            let k = num_classes.max(1) as u32;
            (0..k)
                .map(|i| Reservoir {
                    capacity: config.capacity / k + u32::from(i < config.capacity % k),
                    seen: 0,
                    filled: 0,
                })
                .collect()
        } else {
            vec![Reservoir {
                capacity: config.capacity,
                seen: 0,
                filled: 0,
            }]
        };
        ReplayState {
            class_balanced: config.class_balanced,
            rng: Rng::seeded(config.seed),
            reservoirs,
        }
    }

    /// Loads the buffer from `store`, or starts an empty one. Refuses a stored buffer whose
    /// shape differs from `config` (capacity, mode, classes) rather than silently mixing them.
    pub fn load(
        store: &dyn KvStore,
        config: &ReplayConfig,
        num_classes: usize,
    ) -> Result<ReplayBuffer, ReplayError> {
        let fresh = Self::new_state(config, num_classes);
        let state = match store.get(Cf::Meta, STATE_KEY)? {
            None => fresh,
            Some(bytes) => {
                let stored: ReplayState =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::codec(STATE_NAME, e))?;
                if stored.class_balanced != fresh.class_balanced {
                    return Err(ReplayError::Mismatch {
                        key: "replay.class_balanced",
                        reason: format!(
                            "the store holds a buffer with class_balanced = {}; use a new store \
                             path to change it",
                            stored.class_balanced
                        ),
                    });
                }
                let caps: Vec<u32> = stored.reservoirs.iter().map(|r| r.capacity).collect();
                let want: Vec<u32> = fresh.reservoirs.iter().map(|r| r.capacity).collect();
                if caps != want {
                    return Err(ReplayError::Mismatch {
                        key: "replay.capacity",
                        reason: format!(
                            "the store holds reservoirs of {caps:?} slots but the config asks for \
                             {want:?}; use a new store path to change it"
                        ),
                    });
                }
                stored
            }
        };
        Ok(ReplayBuffer {
            state,
            staged: BTreeMap::new(),
        })
    }

    /// Offers a labeled record (unlabeled ones are ignored). Returns the slot it took, if any.
    pub fn offer(&mut self, record: &Record) -> Option<Slot> {
        let label = record.label?;
        let reservoir = match label {
            Label::Class(c) if self.state.class_balanced => c,
            _ => 0,
        };
        let r = self.state.reservoirs.get_mut(reservoir as usize)?;
        r.seen += 1;
        let index = if r.filled < r.capacity {
            r.filled += 1;
            r.filled - 1
        } else {
            let j = self.state.rng.below(r.seen);
            if j >= r.capacity as u64 {
                return None;
            }
            j as u32
        };
        self.staged.insert((reservoir, index), record.encode());
        Some(Slot { reservoir, index })
    }

    /// Moves the staged slot writes and the sampler state into `batch`.
    pub fn stage(&mut self, batch: &mut WriteBatch) {
        for ((reservoir, index), value) in std::mem::take(&mut self.staged) {
            batch.put(Cf::Replay, slot_key(reservoir, index).to_vec(), value);
        }
        batch.put(
            Cf::Meta,
            STATE_KEY.to_vec(),
            serde_json::to_vec(&self.state).expect("replay state serialises"),
        );
    }

    /// The sampler state (counts per reservoir).
    pub fn state(&self) -> &ReplayState {
        &self.state
    }

    /// Records held.
    pub fn len(&self) -> u64 {
        self.state.reservoirs.iter().map(|r| r.filled as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Labeled records offered so far.
    pub fn seen(&self) -> u64 {
        self.state.reservoirs.iter().map(|r| r.seen).sum()
    }

    /// A uniform sample without replacement of `n` stored records (all when fewer), drawn with
    /// `rng`. Reads the durable state: call it between batches.
    pub fn sample(
        &self,
        store: &dyn KvStore,
        n: usize,
        rng: &mut Rng,
    ) -> Result<Vec<Record>, StoreError> {
        let slots: Vec<(u32, u32)> = self
            .state
            .reservoirs
            .iter()
            .enumerate()
            .flat_map(|(r, res)| (0..res.filled).map(move |i| (r as u32, i)))
            .collect();
        let take = n.min(slots.len());
        let mut idx: Vec<usize> = (0..slots.len()).collect();
        for i in 0..take {
            let j = i + rng.below((idx.len() - i) as u64) as usize;
            idx.swap(i, j);
        }
        let mut out = Vec::with_capacity(take);
        for &i in &idx[..take] {
            let (r, s) = slots[i];
            let key = slot_key(r, s);
            let bytes = store
                .get(Cf::Replay, &key)?
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("replay slot {r}/{s}"),
                    reason: "slot counted as filled but absent".into(),
                })?;
            out.push(
                Record::decode(&bytes)
                    .map_err(|e| StoreError::codec(format!("replay slot {r}/{s}"), e))?,
            );
        }
        Ok(out)
    }

    /// Every stored record, in slot order.
    pub fn all(store: &dyn KvStore) -> Result<Vec<Record>, StoreError> {
        store
            .scan_prefix(Cf::Replay, b"")?
            .into_iter()
            .map(|(k, v)| {
                Record::decode(&v).map_err(|e| StoreError::codec(format!("replay slot {k:?}"), e))
            })
            .collect()
    }
}

/// The replay buffer: a reservoir sample of the labeled stream kept in RocksDB.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Most records kept.
    pub capacity: u32,
    /// Keep one reservoir per class with an equal share of the capacity (class-balanced), or
    /// one reservoir over the whole stream.
    pub class_balanced: bool,
    /// Seed of the sampling; the same stream and seed give the same buffer.
    pub seed: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            class_balanced: false,
            seed: 42,
        }
    }
}

impl ReplayConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::key("replay.capacity", "must be > 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn rec(id: u32, label: u32) -> Record {
        Record {
            features: vec![id as f32],
            label: Some(Label::Class(label)),
            key: None,
            timestamp_ms: None,
        }
    }

    fn cfg(capacity: u32, class_balanced: bool, seed: u64) -> ReplayConfig {
        ReplayConfig {
            capacity,
            class_balanced,
            seed,
        }
    }

    /// Algorithm R keeps every item of the stream with probability capacity/n: a chi-square
    /// test of inclusion counts over many seeded runs.
    #[test]
    fn reservoir_is_uniform() {
        let (n, cap, trials) = (500u32, 50u32, 2_000u32);
        let mut included = vec![0u32; n as usize];
        let mut master = Rng::seeded(2024);
        for _ in 0..trials {
            let store = MemoryStore::new();
            let mut buf =
                ReplayBuffer::load(&store, &cfg(cap, false, master.next_u64()), 2).unwrap();
            let mut slots = vec![u32::MAX; cap as usize];
            for id in 0..n {
                if let Some(s) = buf.offer(&rec(id, id % 2)) {
                    slots[s.index as usize] = id;
                }
            }
            assert_eq!(buf.len(), cap as u64);
            for id in slots {
                included[id as usize] += 1;
            }
        }
        let expected = trials as f64 * cap as f64 / n as f64;
        let chi2: f64 = included
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        // df = 499: mean 499, sd ~31.6. A fixed seed makes this deterministic; the bounds are
        // +-4 sd, and a biased sampler (e.g. keeping the first items) lands far outside.
        let df = (n - 1) as f64;
        let sd = (2.0 * df).sqrt();
        assert!(
            (df - 4.0 * sd..df + 4.0 * sd).contains(&chi2),
            "chi2 = {chi2:.1}, df = {df}"
        );
        // Early and late halves of the stream are kept equally often.
        let early: u32 = included[..(n / 2) as usize].iter().sum();
        let late: u32 = included[(n / 2) as usize..].iter().sum();
        let ratio = early as f64 / late as f64;
        assert!((0.97..1.03).contains(&ratio), "early/late = {ratio}");
    }

    #[test]
    fn class_balanced_keeps_quotas() {
        let store = MemoryStore::new();
        let mut buf = ReplayBuffer::load(&store, &cfg(100, true, 1), 3).unwrap();
        // 90% class 0, 9% class 1, 1% class 2.
        for id in 0..10_000u32 {
            let label = match id % 100 {
                0 => 2,
                1..=9 => 1,
                _ => 0,
            };
            buf.offer(&rec(id, label));
        }
        let caps: Vec<(u32, u32)> = buf
            .state()
            .reservoirs
            .iter()
            .map(|r| (r.capacity, r.filled))
            .collect();
        assert_eq!(caps, vec![(34, 34), (33, 33), (33, 33)]);
        let mut b = WriteBatch::new();
        buf.stage(&mut b);
        store.write(b).unwrap();
        let all = ReplayBuffer::all(&store).unwrap();
        let mut per_class = [0; 3];
        for r in &all {
            per_class[r.label.and_then(Label::class).unwrap() as usize] += 1;
        }
        assert_eq!(per_class, [34, 33, 33]);
        // A uniform buffer over the same stream would keep ~1 record of class 2.
        let mut uni = ReplayBuffer::load(&MemoryStore::new(), &cfg(100, false, 1), 3).unwrap();
        for id in 0..10_000u32 {
            uni.offer(&rec(id, if id % 100 == 0 { 2 } else { 0 }));
        }
        assert_eq!(uni.len(), 100);
    }

    #[test]
    fn state_persists_and_continues_identically() {
        let config = cfg(20, false, 9);
        let a = MemoryStore::new();
        let mut one = ReplayBuffer::load(&a, &config, 2).unwrap();
        let b = MemoryStore::new();
        let mut two = ReplayBuffer::load(&b, &config, 2).unwrap();
        for id in 0..300 {
            one.offer(&rec(id, 0));
            two.offer(&rec(id, 0));
            if id % 37 == 0 {
                // `two` is written and reloaded from the store mid-stream, like a restart.
                let mut wb = WriteBatch::new();
                two.stage(&mut wb);
                b.write(wb).unwrap();
                two = ReplayBuffer::load(&b, &config, 2).unwrap();
            }
        }
        let mut wb = WriteBatch::new();
        one.stage(&mut wb);
        a.write(wb).unwrap();
        let mut wb = WriteBatch::new();
        two.stage(&mut wb);
        b.write(wb).unwrap();
        assert_eq!(
            ReplayBuffer::all(&a).unwrap(),
            ReplayBuffer::all(&b).unwrap()
        );
        assert_eq!(one.state(), two.state());
    }

    #[test]
    fn sample_is_distinct_and_bounded() {
        let store = MemoryStore::new();
        let mut buf = ReplayBuffer::load(&store, &cfg(50, false, 3), 2).unwrap();
        for id in 0..40 {
            buf.offer(&rec(id, 1));
        }
        let mut wb = WriteBatch::new();
        buf.stage(&mut wb);
        store.write(wb).unwrap();
        let mut rng = Rng::seeded(5);
        let s = buf.sample(&store, 10, &mut rng).unwrap();
        assert_eq!(s.len(), 10);
        let mut ids: Vec<u32> = s.iter().map(|r| r.features[0] as u32).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 10);
        assert_eq!(buf.sample(&store, 100, &mut rng).unwrap().len(), 40);
    }

    #[test]
    fn changed_capacity_is_refused_with_the_key() {
        let store = MemoryStore::new();
        let mut buf = ReplayBuffer::load(&store, &cfg(10, false, 1), 2).unwrap();
        buf.offer(&rec(1, 0));
        let mut wb = WriteBatch::new();
        buf.stage(&mut wb);
        store.write(wb).unwrap();
        let e = ReplayBuffer::load(&store, &cfg(11, false, 1), 2).unwrap_err();
        assert!(e.to_string().contains("replay.capacity"), "{e}");
        let e = ReplayBuffer::load(&store, &cfg(10, true, 1), 2).unwrap_err();
        assert!(e.to_string().contains("replay.class_balanced"), "{e}");
    }

    #[test]
    fn unlabeled_records_are_not_kept() {
        let mut buf = ReplayBuffer::load(&MemoryStore::new(), &cfg(10, false, 1), 2).unwrap();
        let mut r = rec(1, 0);
        r.label = None;
        assert_eq!(buf.offer(&r), None);
        assert_eq!(buf.seen(), 0);
    }
}
