//! Temporal augmentation (`schema.lag_records`, `schema.lag_labels`): each decoded record's
//! features are extended with the features of the records before it and the one-hot labels of
//! the records before it, in stream order. In a stream whose labels are autocorrelated (Elec2:
//! the no-change classifier scores 0.853) this is what lets a model use the recent past, as
//! recommended by Zliobaite et al. 2015 ("How good is the Electricity benchmark..."). The
//! history is kept in the store with the batch that produced it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ingest::decode::SchemaConfig;
use crate::learn::Task;
use crate::record::Record;
use crate::store::{Cf, KvStore, StoreError, WriteBatch};

const KEY: &[u8] = b"ingest/lags";

/// The recent past of the stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lags {
    records: usize,
    labels: usize,
    width: usize,
    classes: usize,
    /// A regression target: a past label is one input, its value (missing when unlabeled).
    #[serde(default)]
    regression: bool,
    /// Raw features of the previous records, newest first.
    features: VecDeque<Vec<f32>>,
    /// Labels of the previous records (None: unlabeled), newest first: the class index or the
    /// target value.
    past_labels: VecDeque<Option<f32>>,
    #[serde(skip)]
    dirty: bool,
}

impl Lags {
    /// The stored history (or an empty one) for `schema`.
    pub fn load(store: &dyn KvStore, schema: &SchemaConfig) -> Result<Lags, StoreError> {
        let fresh = Lags {
            records: schema.lag_records,
            labels: schema.lag_labels,
            width: crate::ingest::decode::decoded_width(schema),
            classes: match schema.task {
                Task::Classification => schema.classes.len(),
                Task::Regression => 1,
            },
            regression: schema.task == Task::Regression,
            ..Lags::default()
        };
        let Some(bytes) = store.get(Cf::Meta, KEY)? else {
            return Ok(fresh);
        };
        let stored: Lags =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::codec("ingest/lags", e))?;
        // A changed schema starts the history over.
        if (
            stored.records,
            stored.labels,
            stored.width,
            stored.classes,
            stored.regression,
        ) != (
            fresh.records,
            fresh.labels,
            fresh.width,
            fresh.classes,
            fresh.regression,
        ) {
            return Ok(fresh);
        }
        Ok(stored)
    }

    /// Whether any augmentation is configured.
    pub fn enabled(&self) -> bool {
        self.records > 0 || self.labels > 0
    }

    /// The features `record` would get now, without remembering it (serving).
    pub fn augmented(&self, raw: &[f32]) -> Vec<f32> {
        let mut out =
            Vec::with_capacity(raw.len() + self.records * self.width + self.labels * self.classes);
        out.extend_from_slice(raw);
        for k in 0..self.records {
            match self.features.get(k) {
                Some(f) => out.extend_from_slice(f),
                None => out.extend(std::iter::repeat_n(0.0, self.width)),
            }
        }
        for k in 0..self.labels {
            let past = self.past_labels.get(k).copied().flatten();
            if self.regression {
                out.push(past.unwrap_or(f32::NAN));
                continue;
            }
            let mut onehot = vec![0.0; self.classes];
            if let Some(l) = past {
                if let Some(v) = onehot.get_mut(l as usize) {
                    *v = 1.0;
                }
            }
            out.extend(onehot);
        }
        out
    }

    /// Extends `record` with the past and remembers it as the newest record.
    pub fn apply(&mut self, record: &mut Record) {
        if !self.enabled() {
            return;
        }
        let raw = std::mem::take(&mut record.features);
        record.features = self.augmented(&raw);
        if self.records > 0 {
            self.features.push_front(raw);
            self.features.truncate(self.records);
        }
        if self.labels > 0 {
            self.past_labels
                .push_front(record.label.map(|l| l.as_f32()));
            self.past_labels.truncate(self.labels);
        }
        self.dirty = true;
    }

    /// Stages the history into the ingest batch when it changed.
    pub fn stage(&mut self, batch: &mut WriteBatch) {
        if !self.dirty {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(self) {
            batch.put(Cf::Meta, KEY.to_vec(), bytes);
        }
        self.dirty = false;
    }
}

/// Input names of the model: the decoded inputs (features, categorical buckets, missing
/// indicators), then `<input>@-k` for the previous records, then `label@-k=<class>`.
pub fn input_names(schema: &SchemaConfig) -> Vec<String> {
    let decoded = crate::ingest::decode::decoded_names(schema);
    let mut names = decoded.clone();
    for k in 1..=schema.lag_records {
        names.extend(decoded.iter().map(|f| format!("{f}@-{k}")));
    }
    for k in 1..=schema.lag_labels {
        match schema.task {
            Task::Classification => {
                names.extend(schema.classes.iter().map(|c| format!("label@-{k}={c}")))
            }
            Task::Regression => names.push(format!("label@-{k}")),
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Label;
    use crate::store::MemoryStore;

    fn rec(x: f32, label: Option<u32>) -> Record {
        Record {
            features: vec![x],
            label: label.map(Label::Class),
            key: None,
            timestamp_ms: None,
        }
    }

    #[test]
    fn past_features_and_labels_are_appended_and_survive_the_store() {
        let schema = SchemaConfig {
            features: vec!["x".into()],
            classes: vec!["a".into(), "b".into()],
            lag_records: 1,
            lag_labels: 2,
            ..SchemaConfig::default()
        };
        let store = MemoryStore::new();
        let mut lags = Lags::load(&store, &schema).unwrap();
        let mut r = rec(1.0, Some(1));
        lags.apply(&mut r);
        assert_eq!(r.features, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let mut r = rec(2.0, None);
        lags.apply(&mut r);
        assert_eq!(r.features, vec![2.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let mut batch = WriteBatch::new();
        lags.stage(&mut batch);
        store.write(batch).unwrap();
        let mut back = Lags::load(&store, &schema).unwrap();
        let mut r = rec(3.0, Some(0));
        back.apply(&mut r);
        assert_eq!(r.features, vec![3.0, 2.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(
            input_names(&schema),
            [
                "x",
                "x@-1",
                "label@-1=a",
                "label@-1=b",
                "label@-2=a",
                "label@-2=b"
            ]
        );
        assert_eq!(input_names(&schema).len(), r.features.len());
    }
}
