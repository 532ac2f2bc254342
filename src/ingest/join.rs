//! Delayed labels: a record whose label is not known yet waits under its key (`schema.key`)
//! with the prediction the serving model made when its features arrived; a later label record
//! with the same key (same topic, or `kafka.label_topics`) joins it.
//!
//! Invariant: the pending store and what the joins produced (replay offers, counters) are
//! staged into the ingest batch next to the offsets of every consumed topic, so a crash at any
//! instant neither loses nor doubles a join. First label wins: a second label for a joined key
//! is a duplicate; a label for a key whose record expired is late; one for a key never seen
//! (or resolved longer ago than the delay bound) is an orphan. None of them is an error.
//!
//! Store layout (`Cf::Meta`): `labels/pending/<key>` -> version 1, seq u64, arrival time u64
//! (ms), prediction flag and prediction, the record's binary form; `labels/resolved/<key>` ->
//! seq u64, time u64, outcome u8 (joined or expired), kept as long as a pending record would
//! be, so duplicate and late labels are told from orphans.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::record::{Label, Prediction, Record};
use crate::store::{Cf, KvStore, StoreError, WriteBatch};

/// The prefix of the records waiting for their label (`relearn inspect` counts them).
pub const PENDING: &str = "labels/pending/";
const RESOLVED: &str = "labels/resolved/";
const VERSION: u8 = 1;

/// `[labels]`: labels that arrive after their features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabelsConfig {
    /// Join labels that arrive later, by `schema.key`. A record without a label waits (with the
    /// prediction made when it arrived) for a label record: a record with the key, the label
    /// and no feature field, on the same topics or on `kafka.label_topics`. A record that
    /// carries its label is learned at once, as without joins.
    pub enabled: bool,
    /// A waiting record expires once this many further records were consumed (all topics).
    /// 0 = no bound in records (then `max_delay_seconds` must be set). Also bounds memory:
    /// pending records are held in memory as well as in the store.
    pub max_delay_records: u64,
    /// A waiting record expires this many seconds (wall clock at ingest) after it arrived.
    /// 0 = no bound in time.
    #[serde(rename = "max_delay_seconds", with = "crate::units::opt_seconds")]
    pub max_delay: Option<std::time::Duration>,
    /// CSV columns of a label topic's records; empty = `[schema.key, schema.label]`.
    pub label_columns: Vec<String>,
}

impl Default for LabelsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_delay_records: 100_000,
            max_delay: None,
            label_columns: Vec::new(),
        }
    }
}

impl LabelsConfig {
    /// Why this section cannot work with `key` (the schema's key field), naming the key.
    pub fn problem(&self, key: Option<&str>) -> Option<(&'static str, String)> {
        if !self.enabled {
            return None;
        }
        if key.is_none_or(|k| k.trim().is_empty()) {
            return Some((
                "schema.key",
                "labels.enabled joins labels by key: name the key field".into(),
            ));
        }
        if self.max_delay_records == 0 && self.max_delay.is_none() {
            return Some((
                "labels.max_delay_records",
                "set max_delay_records or max_delay_seconds: a record may not wait forever".into(),
            ));
        }
        None
    }
}

pub use crate::totals::JoinOutcome;

/// Where the prediction of a joined record is.
#[derive(Debug, Clone, PartialEq)]
pub enum Made {
    /// Stored when its features arrived (None: no model was serving then).
    Stored(Option<Prediction>),
    /// Its features are in the open batch, at this index of the records the loop sees: the
    /// loop scores them before it reaches the joined record.
    InBatch(usize),
}

/// A label that met its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The record's features with the label.
    pub record: Record,
    pub made: Made,
    /// Records consumed between the features and the label.
    pub delay_records: u64,
    /// Milliseconds (wall clock at ingest) between the features and the label.
    pub delay_ms: u64,
}

/// A record waiting for its label.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    seq: u64,
    time_ms: u64,
    record: Record,
    prediction: Option<Prediction>,
    /// Set while its features are in the open batch (not yet scored).
    in_batch: Option<usize>,
}

impl Pending {
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION];
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        match &self.prediction {
            Some(p) => {
                out.push(1);
                p.encode_into(&mut out);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.record.encode());
        out
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Pending, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            key: format!("{PENDING}{key}"),
            reason: reason.to_string(),
        };
        if bytes.len() < 18 || bytes[0] != VERSION {
            return Err(corrupt("too short or unknown version"));
        }
        let seq = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let time_ms = u64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
        let (prediction, rest) = match bytes[17] {
            0 => (None, &bytes[18..]),
            1 => {
                let (p, rest) =
                    Prediction::decode_prefix(&bytes[18..]).map_err(|e| corrupt(e.0))?;
                (Some(p), rest)
            }
            _ => return Err(corrupt("bad prediction flag")),
        };
        let mut record = Record::decode(rest).map_err(|e| corrupt(e.0))?;
        record.key = Some(key.to_string());
        Ok(Pending {
            seq,
            time_ms,
            record,
            prediction,
            in_batch: None,
        })
    }
}

/// A key joined or expired recently.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Resolved {
    seq: u64,
    time_ms: u64,
    joined: bool,
}

/// The pending store: in memory, every change staged into the caller's batch.
#[derive(Debug, Default)]
pub struct Joiner {
    max_records: u64,
    max_ms: u64,
    pending: HashMap<String, Pending>,
    /// Pending keys by arrival (seq).
    pending_order: BTreeMap<u64, String>,
    resolved: HashMap<String, Resolved>,
    /// Resolved keys by resolution (seq, key): several expire at the same seq.
    resolved_order: BTreeSet<(u64, String)>,
    /// Keys whose entries changed since the last `stage`.
    dirty_pending: HashSet<String>,
    dirty_resolved: HashSet<String>,
    /// Keys that entered in the open batch (their prediction comes from the loop).
    fresh: Vec<String>,
}

impl Joiner {
    /// Loads the pending store.
    pub fn load(store: &dyn KvStore, config: &LabelsConfig) -> Result<Joiner, StoreError> {
        let mut j = Joiner {
            max_records: config.max_delay_records,
            max_ms: config
                .max_delay
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            ..Joiner::default()
        };
        for (k, v) in store.scan_prefix(Cf::Meta, PENDING.as_bytes())? {
            let key = key_text(&k, PENDING)?;
            let p = Pending::decode(&key, &v)?;
            j.pending_order.insert(p.seq, key.clone());
            j.pending.insert(key, p);
        }
        for (k, v) in store.scan_prefix(Cf::Meta, RESOLVED.as_bytes())? {
            let key = key_text(&k, RESOLVED)?;
            if v.len() != 17 {
                return Err(StoreError::Corrupt {
                    key: format!("{RESOLVED}{key}"),
                    reason: format!("{} bytes, expected 17", v.len()),
                });
            }
            let r = Resolved {
                seq: u64::from_le_bytes(v[0..8].try_into().expect("8 bytes")),
                time_ms: u64::from_le_bytes(v[8..16].try_into().expect("8 bytes")),
                joined: v[16] == 1,
            };
            j.resolved_order.insert((r.seq, key.clone()));
            j.resolved.insert(key, r);
        }
        Ok(j)
    }

    /// Records waiting for a label.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A record without its label arrived (`seq`: its position among all consumed records;
    /// `in_batch`: its index among the records the loop sees in the open batch). Returns
    /// `Superseded` when a record with the same key was still waiting.
    pub fn wait(
        &mut self,
        key: &str,
        record: &Record,
        seq: u64,
        now_ms: u64,
        in_batch: usize,
    ) -> Option<JoinOutcome> {
        if let Some(r) = self.resolved.remove(key) {
            self.resolved_order.remove(&(r.seq, key.to_string()));
            self.dirty_resolved.insert(key.to_string());
        }
        let mut stored = record.clone();
        stored.key = None;
        let old = self.pending.insert(
            key.to_string(),
            Pending {
                seq,
                time_ms: now_ms,
                record: stored,
                prediction: None,
                in_batch: Some(in_batch),
            },
        );
        self.pending_order.insert(seq, key.to_string());
        self.dirty_pending.insert(key.to_string());
        self.fresh.push(key.to_string());
        old.map(|o| {
            self.pending_order.remove(&o.seq);
            JoinOutcome::Superseded
        })
    }

    /// A label for `key` arrived.
    pub fn label(
        &mut self,
        key: &str,
        label: Label,
        seq: u64,
        now_ms: u64,
    ) -> Result<Joined, JoinOutcome> {
        if let Some(p) = self.pending.remove(key) {
            self.pending_order.remove(&p.seq);
            self.dirty_pending.insert(key.to_string());
            self.resolve(key, seq, now_ms, true);
            let mut record = p.record;
            record.label = Some(label);
            record.key = Some(key.to_string());
            return Ok(Joined {
                record,
                made: match p.in_batch {
                    Some(i) => Made::InBatch(i),
                    None => Made::Stored(p.prediction),
                },
                delay_records: seq.saturating_sub(p.seq),
                delay_ms: now_ms.saturating_sub(p.time_ms),
            });
        }
        match self.resolved.get(key) {
            Some(r) if r.joined => Err(JoinOutcome::Duplicate),
            Some(_) => Err(JoinOutcome::Late),
            None => Err(JoinOutcome::Orphan),
        }
    }

    fn resolve(&mut self, key: &str, seq: u64, now_ms: u64, joined: bool) {
        let r = Resolved {
            seq,
            time_ms: now_ms,
            joined,
        };
        if let Some(old) = self.resolved.insert(key.to_string(), r) {
            self.resolved_order.remove(&(old.seq, key.to_string()));
        }
        self.resolved_order.insert((seq, key.to_string()));
        self.dirty_resolved.insert(key.to_string());
    }

    fn past(&self, seq: u64, time_ms: u64, now_seq: u64, now_ms: u64) -> bool {
        (self.max_records > 0 && now_seq.saturating_sub(seq) >= self.max_records)
            || (self.max_ms > 0 && now_ms.saturating_sub(time_ms) >= self.max_ms)
    }

    /// Drops the records whose delay bound passed at `now_seq`/`now_ms` and forgets keys
    /// resolved longer ago than the bound; returns how many records expired.
    pub fn expire(&mut self, now_seq: u64, now_ms: u64) -> u64 {
        let mut expired = 0;
        while let Some((&seq, key)) = self.pending_order.first_key_value() {
            let Some(p) = self.pending.get(key) else {
                self.pending_order.remove(&seq);
                continue;
            };
            if !self.past(p.seq, p.time_ms, now_seq, now_ms) {
                break;
            }
            let key = key.clone();
            self.pending_order.remove(&seq);
            self.pending.remove(&key);
            self.dirty_pending.insert(key.clone());
            self.resolve(&key, now_seq, now_ms, false);
            expired += 1;
        }
        while let Some(first) = self.resolved_order.first().cloned() {
            let Some(r) = self.resolved.get(&first.1).copied() else {
                self.resolved_order.remove(&first);
                continue;
            };
            if !self.past(r.seq, r.time_ms, now_seq, now_ms) {
                break;
            }
            self.resolved_order.remove(&first);
            self.resolved.remove(&first.1);
            self.dirty_resolved.insert(first.1);
        }
        expired
    }

    /// Gives the records that entered in the open batch the predictions the loop made for
    /// them (`prediction(i)`: of the loop's record `i`).
    pub fn scored(&mut self, prediction: impl Fn(usize) -> Option<Prediction>) {
        for key in std::mem::take(&mut self.fresh) {
            if let Some(p) = self.pending.get_mut(&key) {
                if let Some(i) = p.in_batch.take() {
                    p.prediction = prediction(i);
                }
            }
        }
    }

    /// Stages every change since the last call.
    pub fn stage(&mut self, batch: &mut WriteBatch) {
        for key in std::mem::take(&mut self.dirty_pending) {
            let k = format!("{PENDING}{key}");
            match self.pending.get(&key) {
                Some(p) => batch.put(Cf::Meta, k, p.encode()),
                None => batch.delete(Cf::Meta, k),
            }
        }
        for key in std::mem::take(&mut self.dirty_resolved) {
            let k = format!("{RESOLVED}{key}");
            match self.resolved.get(&key) {
                Some(r) => {
                    let mut v = Vec::with_capacity(17);
                    v.extend_from_slice(&r.seq.to_le_bytes());
                    v.extend_from_slice(&r.time_ms.to_le_bytes());
                    v.push(u8::from(r.joined));
                    batch.put(Cf::Meta, k, v);
                }
                None => batch.delete(Cf::Meta, k),
            }
        }
    }
}

fn key_text(k: &[u8], prefix: &str) -> Result<String, StoreError> {
    std::str::from_utf8(&k[prefix.len()..])
        .map(str::to_string)
        .map_err(|_| StoreError::Corrupt {
            key: String::from_utf8_lossy(k).into_owned(),
            reason: "key is not UTF-8".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Output;
    use crate::store::MemoryStore;

    fn config(records: u64) -> LabelsConfig {
        LabelsConfig {
            enabled: true,
            max_delay_records: records,
            ..LabelsConfig::default()
        }
    }

    fn rec(x: f32) -> Record {
        Record {
            features: vec![x, -x],
            label: None,
            key: None,
            timestamp_ms: Some(5),
        }
    }

    fn prediction(v: u64) -> Prediction {
        Prediction {
            version: v,
            output: Output::Class {
                class: 1,
                probabilities: vec![0.3, 0.7],
            },
        }
    }

    fn flush(j: &mut Joiner, store: &MemoryStore) {
        let mut b = WriteBatch::new();
        j.stage(&mut b);
        store.write(b).unwrap();
    }

    #[test]
    fn joins_first_label_and_tells_duplicates_late_and_orphans() {
        let store = MemoryStore::new();
        let mut j = Joiner::load(&store, &config(10)).unwrap();
        assert_eq!(j.wait("a", &rec(1.0), 0, 0, 0), None);
        assert_eq!(j.wait("b", &rec(2.0), 1, 0, 1), None);
        // "a" is joined inside the batch it arrived in: the loop's prediction is used.
        let a = j.label("a", Label::Class(0), 2, 40).unwrap();
        assert_eq!(a.made, Made::InBatch(0));
        assert_eq!((a.delay_records, a.delay_ms), (2, 40));
        assert_eq!(a.record.features, vec![1.0, -1.0]);
        assert_eq!(a.record.label, Some(Label::Class(0)));
        j.scored(|i| Some(prediction(i as u64)));
        flush(&mut j, &store);

        // After a restart "b" waits with its stored prediction.
        let mut j = Joiner::load(&store, &config(10)).unwrap();
        assert_eq!(j.pending(), 1);
        let b = j.label("b", Label::Class(1), 3, 0).unwrap();
        assert_eq!(b.made, Made::Stored(Some(prediction(1))));
        assert_eq!(b.record.timestamp_ms, Some(5));
        assert_eq!(
            j.label("b", Label::Class(0), 4, 0).unwrap_err(),
            JoinOutcome::Duplicate
        );
        assert_eq!(
            j.label("zz", Label::Class(0), 4, 0).unwrap_err(),
            JoinOutcome::Orphan
        );
        // A record that waits past the bound expires; its label is then late.
        j.wait("c", &rec(3.0), 5, 0, 0);
        assert_eq!(
            j.wait("c", &rec(4.0), 6, 0, 1),
            Some(JoinOutcome::Superseded)
        );
        assert_eq!(j.expire(15, 0), 0);
        assert_eq!(j.expire(16, 0), 1);
        assert_eq!(j.pending(), 0);
        flush(&mut j, &store);
        let mut j = Joiner::load(&store, &config(10)).unwrap();
        assert_eq!(
            j.label("c", Label::Class(0), 17, 0).unwrap_err(),
            JoinOutcome::Late
        );
        // Resolved keys are forgotten after the bound: then an orphan.
        j.expire(40, 0);
        assert_eq!(
            j.label("b", Label::Class(0), 41, 0).unwrap_err(),
            JoinOutcome::Orphan
        );
        flush(&mut j, &store);
        assert!(store.scan_prefix(Cf::Meta, b"labels/").unwrap().is_empty());
    }

    #[test]
    fn expires_by_time_too() {
        let store = MemoryStore::new();
        let c = LabelsConfig {
            max_delay_records: 0,
            max_delay: Some(std::time::Duration::from_secs(2)),
            ..config(0)
        };
        let mut j = Joiner::load(&store, &c).unwrap();
        j.wait("a", &rec(1.0), 0, 1_000, 0);
        assert_eq!(j.expire(1_000_000, 2_999), 0);
        assert_eq!(j.expire(1_000_000, 3_000), 1);
        assert!(c.problem(Some("id")).is_none());
        assert_eq!(
            LabelsConfig {
                max_delay: None,
                ..c.clone()
            }
            .problem(Some("id"))
            .unwrap()
            .0,
            "labels.max_delay_records"
        );
        assert_eq!(c.problem(None).unwrap().0, "schema.key");
    }
}
