//! The ingest pipeline: decode each record, stage its effects, and make a batch durable in one
//! store write together with the offsets of the records that produced it.
//!
//! Invariant: the offsets stored for a partition cover exactly the records whose effects
//! (replay slots, counters, dead letters) are stored. A batch is made durable in this order:
//! dead letters acknowledged by their sink, then one atomic store write of replay changes,
//! counters and offsets. Metrics move only after that write, so they never run ahead of state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::decode::SchemaConfig;
use super::join::{JoinOutcome, Joiner, LabelsConfig};
use super::predictions::{PredictionMessage, PredictionSink};
use super::{
    BatchObserver, DeadLetter, DeadLetterSink, Decoder, IngestError, Join, Observed, Reason,
};
use crate::metrics::Metrics;
use crate::record::{Output, Record};
use crate::store::replay::ReplayConfig;
use crate::store::state::counter;
use crate::store::{Gate, IngestState, KvStore, ReplayBuffer, StoreError, WriteBatch};

/// The lag history shared with the HTTP server.
pub type LagsSnapshot = Arc<std::sync::RwLock<super::lags::Lags>>;

/// Where a record came from: a Kafka topic/partition/offset, or a file and a byte offset.
#[derive(Debug, Clone, Copy)]
pub struct SourcePos<'a> {
    pub topic: &'a str,
    pub partition: i32,
    /// The record's own offset (reported in dead letters).
    pub offset: i64,
    /// Where to resume after this record: `offset + 1` in Kafka, the next line's byte
    /// position in a file.
    pub next: i64,
}

/// What the pipeline reads of the configuration (`Config::pipeline` builds it).
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub schema: SchemaConfig,
    pub replay: ReplayConfig,
    /// `[labels]` when label records are joined (`labels.enabled`), else `None`.
    pub labels: Option<LabelsConfig>,
    /// The topics label records come from (`kafka.label_topics`, when labels are joined).
    pub label_topics: Vec<String>,
    /// How many earlier labels each record carries (`schema.lag_labels` resolved by task).
    pub lag_labels: usize,
}

/// Tallies of the open batch, applied to metrics after the batch is durable.
#[derive(Debug, Default)]
struct BatchTally {
    records: u64,
    labeled: u64,
    unlabeled: u64,
    malformed: BTreeMap<Reason, u64>,
    /// Missing values by schema field index (`Decoder::field_names`).
    missing: BTreeMap<usize, u64>,
    /// New categorical values by categorical field index.
    new_categories: BTreeMap<usize, u64>,
    /// Label records (delayed labels) and what they, and expiries, did.
    label_records: u64,
    joins: BTreeMap<JoinOutcome, u64>,
    /// Seconds from features to label of each join.
    join_delays: Vec<f64>,
}

/// What one durable batch contained.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FlushReport {
    pub records: u64,
    pub malformed: u64,
    /// Next offsets of the partitions this batch advanced.
    pub offsets: Vec<(String, i32, i64)>,
}

impl FlushReport {
    /// Adds a later batch's report: its offsets replace this one's for the same partition.
    pub fn absorb(&mut self, later: FlushReport) {
        self.records += later.records;
        self.malformed += later.malformed;
        for (topic, partition, next) in later.offsets {
            match self
                .offsets
                .iter_mut()
                .find(|(t, p, _)| *t == topic && *p == partition)
            {
                Some(o) => o.2 = next,
                None => self.offsets.push((topic, partition, next)),
            }
        }
    }
}

/// Decodes records and writes their effects durably in batches.
pub struct Pipeline {
    store: Arc<dyn KvStore>,
    decoder: Decoder,
    replay: ReplayBuffer,
    state: IngestState,
    dead_letters: Box<dyn DeadLetterSink>,
    metrics: Metrics,
    tally: BatchTally,
    /// The learning loop, when attached, and the decoded records of the open batch it sees.
    observer: Option<Box<dyn BatchObserver>>,
    /// Temporal augmentation history (`schema.lag_*`).
    lags: super::lags::Lags,
    lags_snapshot: Option<LagsSnapshot>,
    /// Categorical values seen so far (new-category counting), and the fields' names.
    categories: super::categories::CategoryTracker,
    categorical: Vec<String>,
    /// Delayed labels (`labels.enabled`): the pending store, and the decoder of label topics.
    joiner: Option<Joiner>,
    label_decoder: Option<Decoder>,
    label_topics: Vec<String>,
    records: Vec<Observed>,
    /// Where the predictions go (`kafka.predictions_topic`, `file.predictions_path`), and
    /// the source position of each record of `records` (kept only with a sink).
    predictions: Option<Box<dyn PredictionSink>>,
    positions: Vec<(Arc<str>, i32, i64)>,
    classes: Vec<String>,
    /// Set when a batch could not be made durable: staged state is then ahead of the store and
    /// the pipeline refuses further work; a restart resumes from the stored offsets.
    failed: bool,
    /// The batch handed to the store's writer by `flush_behind`, not known durable yet.
    in_flight: Option<FlushReport>,
    /// Categorical values take inputs from a vocabulary (`schema.categorical_encoding`).
    vocabulary_assigns: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("open_records", &self.tally.records)
            .finish()
    }
}

/// Sets the ingest totals' metrics from the stored counters, after a restart.
fn restore_totals(
    state: &IngestState,
    metrics: &Metrics,
    decoder: &Decoder,
    categorical: &[String],
) {
    metrics
        .ingest
        .records
        .inc_by(state.counter(counter::RECORDS));
    metrics
        .ingest
        .decoded
        .with_label_values(&["labeled"])
        .inc_by(state.counter(counter::LABELED));
    metrics
        .ingest
        .decoded
        .with_label_values(&["unlabeled"])
        .inc_by(state.counter(counter::UNLABELED));
    for r in Reason::ALL {
        let n = state.counter(&format!("{}{}", counter::MALFORMED_PREFIX, r.as_str()));
        metrics
            .ingest
            .malformed
            .with_label_values(&[r.as_str()])
            .inc_by(n);
    }
    for field in decoder.field_names() {
        let n = state.counter(&format!("{}{field}", counter::MISSING_PREFIX));
        metrics.ingest.missing.with_label_values(&[field]).inc_by(n);
    }
    for field in categorical {
        let n = state.counter(&format!("{}{field}", counter::NEW_CATEGORY_PREFIX));
        metrics
            .ingest
            .new_categories
            .with_label_values(&[field])
            .inc_by(n);
    }
}

/// Sets the delayed-label totals' metrics from the stored counters and the open joins.
fn restore_label_totals(state: &IngestState, metrics: &Metrics, joiner: &Joiner) {
    metrics.ingest.labels_pending.set(joiner.pending() as i64);
    metrics
        .ingest
        .decoded
        .with_label_values(&["label"])
        .inc_by(state.counter(counter::LABEL_RECORDS));
    for o in JoinOutcome::ALL {
        let n = state.counter(&format!("{}{}", counter::JOIN_PREFIX, o.as_str()));
        metrics
            .ingest
            .label_joins
            .with_label_values(&[o.as_str()])
            .inc_by(n);
    }
}

impl Pipeline {
    /// The categorical fields' vocabulary, for the predict API's decoders.
    pub fn vocabulary(&self) -> std::sync::Arc<super::categories::Vocabulary> {
        self.categories.vocabulary()
    }

    /// Loads ingest state and the replay buffer from `store` and restores the metric totals.
    pub fn open(
        config: &PipelineConfig,
        store: Arc<dyn KvStore>,
        decoder: Decoder,
        dead_letters: Box<dyn DeadLetterSink>,
        metrics: Metrics,
    ) -> Result<Pipeline, IngestError> {
        let state = IngestState::load(store.as_ref())?;
        let store_for_lags = store.clone();
        let replay =
            ReplayBuffer::load(store.as_ref(), &config.replay, config.schema.classes.len())?;
        restore_totals(&state, &metrics, &decoder, &config.schema.categorical);
        let categories = super::categories::CategoryTracker::load(
            store.as_ref(),
            &config.schema.categorical,
            config.schema.categorical_buckets,
            config.schema.categorical_encoding,
        )?;
        let decoder = decoder.with_vocabulary(categories.vocabulary());
        metrics.store.replay_records.set(replay.len() as i64);
        metrics.store.replay_seen.set(replay.seen() as i64);
        let (joiner, label_decoder) = if let Some(labels) = &config.labels {
            let joiner = Joiner::load(store.as_ref(), labels)?;
            let label_decoder = Decoder::for_labels(&config.schema, &labels.label_columns)
                .map_err(|source| IngestError::Schema {
                    what: " (the label records' decoder)".into(),
                    source,
                })?;
            restore_label_totals(&state, &metrics, &joiner);
            (Some(joiner), Some(label_decoder))
        } else {
            (None, None)
        };
        let decoder = if joiner.is_some() {
            decoder.with_label_records()
        } else {
            decoder
        };
        Ok(Pipeline {
            store,
            decoder,
            replay,
            state,
            dead_letters,
            metrics,
            tally: BatchTally::default(),
            observer: None,
            lags: super::lags::Lags::load(
                store_for_lags.as_ref(),
                &config.schema,
                config.lag_labels,
                config.schema.lag_labels.is_none(),
            )?,
            categories,
            categorical: config.schema.categorical.clone(),
            joiner,
            label_decoder,
            label_topics: config.label_topics.clone(),
            lags_snapshot: None,
            records: Vec::new(),
            predictions: None,
            positions: Vec::new(),
            classes: config.schema.classes.clone(),
            failed: false,
            in_flight: None,
            vocabulary_assigns: config.schema.categorical_encoding
                == super::categories::CategoricalEncoding::Vocabulary,
        })
    }

    /// Attaches the learning loop: it sees every batch's records before the batch is written
    /// and stages its state into the same write.
    pub fn set_observer(&mut self, observer: Box<dyn BatchObserver>) {
        self.observer = Some(observer);
    }

    /// Sends the serving model's prediction for every record it scores to `sink`, flushed
    /// before each batch is written.
    pub fn set_predictions(&mut self, sink: Box<dyn PredictionSink>) {
        self.predictions = Some(sink);
    }

    /// Replaces the decoder (the file source learns its CSV columns from a header).
    pub fn set_decoder(&mut self, decoder: Decoder) {
        self.decoder = if self.joiner.is_some() {
            decoder.with_label_records()
        } else {
            decoder
        };
    }

    /// Records waiting for their label (delayed labels), including the open batch.
    pub fn pending_labels(&self) -> usize {
        self.joiner.as_ref().map_or(0, Joiner::pending)
    }

    /// The next offset to process in a partition, as stored.
    pub fn next_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        self.state.next_offset(topic, partition)
    }

    /// Durable ingest state (offsets, counters), including the open batch.
    pub fn state(&self) -> &IngestState {
        &self.state
    }

    /// The replay buffer, including the open batch.
    pub fn replay(&self) -> &ReplayBuffer {
        &self.replay
    }

    /// Records in the open batch.
    pub fn open_records(&self) -> u64 {
        self.tally.records
    }

    /// Decodes one record and stages its effects. A malformed record goes to the dead-letter
    /// sink; either way its offset is part of the open batch. Returns the open batch's size.
    pub fn process(
        &mut self,
        pos: SourcePos<'_>,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<u64, IngestError> {
        self.check_usable()?;
        let seq = self.state.counter(counter::RECORDS) + self.tally.records;
        let now = now_ms();
        let decoded = match &self.label_decoder {
            Some(d) if self.label_topics.iter().any(|t| t == pos.topic) => {
                d.decode_with_categories(payload)
            }
            _ => self.decoder.decode_with_categories(payload),
        };
        let decoded = match decoded {
            Ok((record, _)) if self.joiner.is_some() && record.features.is_empty() => {
                self.label_record(pos, record, seq, now)
            }
            other => other.map(Some),
        };
        match decoded {
            Ok(None) => {}
            Ok(Some((mut record, cats))) => {
                if self.vocabulary_assigns {
                    self.assign_inputs(&mut record, &cats);
                }
                let tally = &mut self.tally.new_categories;
                let mut new_categories = 0u64;
                self.categories.observe(&cats, |k| {
                    *tally.entry(k).or_default() += 1;
                    if k < 64 {
                        new_categories |= 1 << k;
                    }
                });
                for k in self.decoder.missing_fields(&record) {
                    *self.tally.missing.entry(k).or_default() += 1;
                }
                self.lags.apply(&mut record);
                let mut join = Join::None;
                if record.label.is_some() {
                    self.tally.labeled += 1;
                    self.replay.offer(&record);
                } else {
                    self.tally.unlabeled += 1;
                    if let (Some(j), Some(key)) = (self.joiner.as_mut(), record.key.as_deref()) {
                        let at = self.records.len();
                        if let Some(o) = j.wait(key, &record, seq, now, at) {
                            *self.tally.joins.entry(o).or_default() += 1;
                        }
                        join = Join::Waiting;
                    }
                }
                if self.observer.is_some() {
                    self.records.push(Observed {
                        record,
                        join,
                        prediction: None,
                        new_categories,
                    });
                    self.position(pos);
                }
            }
            Err(e) => {
                self.dead_letters.send(DeadLetter {
                    reason: e.reason,
                    detail: &e.detail,
                    topic: pos.topic,
                    partition: pos.partition,
                    offset: pos.offset,
                    key,
                    payload,
                })?;
                *self.tally.malformed.entry(e.reason).or_default() += 1;
            }
        }
        self.tally.records += 1;
        if let Some(j) = self.joiner.as_mut() {
            let expired = j.expire(seq + 1, now);
            if expired > 0 {
                *self.tally.joins.entry(JoinOutcome::Expired).or_default() += expired;
            }
        }
        self.state
            .set_next_offset(pos.topic, pos.partition, pos.next);
        Ok(self.tally.records)
    }

    /// A label record (delayed labels): joins its waiting record, which is then learned like
    /// a labeled record (returned with no categorical hashes: they were counted on arrival),
    /// or counts why it joined nothing. Without a key or a label it is malformed.
    fn label_record(
        &mut self,
        pos: SourcePos<'_>,
        record: Record,
        seq: u64,
        now: u64,
    ) -> Result<Option<(Record, super::decode::CategoryHashes)>, super::DecodeError> {
        let (Some(key), Some(label)) = (record.key.as_deref(), record.label) else {
            let (reason, what) = match record.key {
                None => (Reason::MissingKey, "a label record without `schema.key`"),
                Some(_) => (Reason::MissingLabel, "a label-topic record without a label"),
            };
            return Err(super::DecodeError {
                reason,
                detail: what.to_string(),
            });
        };
        self.tally.label_records += 1;
        let Some(j) = self.joiner.as_mut() else {
            return Ok(None);
        };
        match j.label(key, label, seq, now) {
            Ok(joined) => {
                *self.tally.joins.entry(JoinOutcome::Joined).or_default() += 1;
                self.tally.join_delays.push(joined.delay_ms as f64 / 1000.0);
                self.tally.labeled += 1;
                self.replay.offer(&joined.record);
                if self.observer.is_some() {
                    self.records.push(Observed {
                        record: joined.record,
                        join: Join::Joined(joined.made),
                        prediction: None,
                        new_categories: 0,
                    });
                    self.position(pos);
                }
            }
            Err(outcome) => *self.tally.joins.entry(outcome).or_default() += 1,
        }
        Ok(None)
    }

    /// Remembers where the record just pushed to `records` came from (for the predictions).
    fn position(&mut self, pos: SourcePos<'_>) {
        if self.predictions.is_none() {
            return;
        }
        let topic = match self.positions.last() {
            Some((t, _, _)) if &**t == pos.topic => t.clone(),
            _ => Arc::from(pos.topic),
        };
        self.positions.push((topic, pos.partition, pos.offset));
    }

    /// Produces the predictions of the open batch's records (not those of joined labels:
    /// theirs went out when their features arrived) and waits until the sink has them all.
    fn send_predictions(
        sink: Option<&mut Box<dyn PredictionSink>>,
        records: &[Observed],
        positions: &[(Arc<str>, i32, i64)],
        classes: &[String],
    ) -> Result<Option<Gate>, IngestError> {
        let Some(sink) = sink else {
            return Ok(None);
        };
        let time_ms = now_ms();
        for (o, (topic, partition, offset)) in records.iter().zip(positions) {
            let (Some(p), false) = (&o.prediction, matches!(o.join, Join::Joined(_))) else {
                continue;
            };
            let (class, probabilities, value) = match &p.output {
                Output::Class {
                    class,
                    probabilities,
                } => (
                    classes.get(*class as usize).cloned(),
                    Some(probabilities.clone()),
                    None,
                ),
                Output::Value(v) => (None, None, Some(*v)),
            };
            sink.send(&PredictionMessage {
                key: o.record.key.clone(),
                topic: topic.to_string(),
                partition: *partition,
                offset: *offset,
                version: p.version,
                class,
                probabilities,
                value,
                time_ms,
            })?;
        }
        sink.seal()
    }

    /// A value the vocabulary did not know when the record was decoded takes its input now,
    /// after the record decoded: a dead-lettered record assigns none.
    fn assign_inputs(&self, record: &mut Record, cats: &[Option<u64>]) {
        let vocabulary = self.categories.vocabulary();
        for (k, h) in cats.iter().enumerate() {
            let input = h.and_then(|h| vocabulary.input(k, h, true));
            if let Some(at) = input.map(|i| self.decoder.categorical_input(k, i)) {
                if let Some(x) = record.features.get_mut(at) {
                    *x = 1.0;
                }
            }
        }
    }

    fn check_usable(&self) -> Result<(), IngestError> {
        if self.failed {
            return Err(IngestError::Stopped);
        }
        Ok(())
    }

    /// Lets the learning loop act without new records (manual and scheduled triggers, finished
    /// retrains): writes its state alone when no batch is open.
    pub fn tick(&mut self) -> Result<(), IngestError> {
        self.check_usable()?;
        if self.tally.records > 0 {
            // The source writes its open batch soon; the loop acts then.
            return Ok(());
        }
        let Some(o) = self.observer.as_mut() else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        if let Err(e) = o.stage(&mut [], &mut batch) {
            self.failed = true;
            return Err(e);
        }
        if let Err(e) = self.store.write(batch) {
            self.failed = true;
            self.metrics.store.write_errors.inc();
            return Err(e.into());
        }
        o.committed(self.state.counter(counter::RECORDS));
        Ok(())
    }

    /// Publishes the temporal-augmentation history into `snapshot` after every durable batch
    /// (predict requests are augmented with it).
    pub fn share_lags(&mut self, snapshot: LagsSnapshot) {
        *snapshot.write().unwrap_or_else(|p| p.into_inner()) = self.lags.clone();
        self.lags_snapshot = Some(snapshot);
    }

    /// Adds a batch's tally to the stored counters (staged with the batch).
    fn count(&mut self, t: &BatchTally) {
        self.state.add(counter::RECORDS, t.records);
        if t.labeled > 0 {
            self.state.add(counter::LABELED, t.labeled);
        }
        if t.unlabeled > 0 {
            self.state.add(counter::UNLABELED, t.unlabeled);
        }
        for (reason, n) in &t.malformed {
            self.state.add(
                &format!("{}{}", counter::MALFORMED_PREFIX, reason.as_str()),
                *n,
            );
        }
        let fields: Vec<&str> = self.decoder.field_names().collect();
        for (k, n) in &t.missing {
            if let Some(field) = fields.get(*k) {
                self.state
                    .add(&format!("{}{field}", counter::MISSING_PREFIX), *n);
            }
        }
        for (k, n) in &t.new_categories {
            if let Some(field) = self.categorical.get(*k) {
                self.state
                    .add(&format!("{}{field}", counter::NEW_CATEGORY_PREFIX), *n);
            }
        }
        if t.label_records > 0 {
            self.state.add(counter::LABEL_RECORDS, t.label_records);
        }
        for (o, n) in &t.joins {
            self.state
                .add(&format!("{}{}", counter::JOIN_PREFIX, o.as_str()), *n);
        }
    }

    /// Moves the metrics by a written batch's tally (it took `secs`); returns its malformed
    /// records. `relearn_ingest_records_total` moves last, so that a scrape that sees it
    /// include a batch sees that batch in every other counter too (the exact-count tests
    /// wait on it, then read the rest).
    fn publish(&self, t: &BatchTally, secs: f64) -> u64 {
        let m = &self.metrics;
        m.ingest.batches.inc();
        m.ingest.batch_seconds.observe(secs);
        m.ingest.batch_records.observe(t.records as f64);
        m.ingest
            .decoded
            .with_label_values(&["labeled"])
            .inc_by(t.labeled);
        m.ingest
            .decoded
            .with_label_values(&["unlabeled"])
            .inc_by(t.unlabeled);
        let mut malformed = 0;
        for (reason, n) in &t.malformed {
            m.ingest
                .malformed
                .with_label_values(&[reason.as_str()])
                .inc_by(*n);
            malformed += n;
        }
        let fields: Vec<&str> = self.decoder.field_names().collect();
        for (k, n) in &t.missing {
            if let Some(field) = fields.get(*k) {
                m.ingest.missing.with_label_values(&[field]).inc_by(*n);
            }
        }
        for (k, n) in &t.new_categories {
            if let Some(field) = self.categorical.get(*k) {
                m.ingest
                    .new_categories
                    .with_label_values(&[field])
                    .inc_by(*n);
            }
        }
        if malformed > 0 {
            tracing::warn!(
                malformed,
                by_reason = ?t.malformed.iter().map(|(r, n)| (r.as_str(), *n)).collect::<Vec<_>>(),
                "malformed records sent to the dead-letter sink"
            );
        }
        m.store.replay_records.set(self.replay.len() as i64);
        m.store.replay_seen.set(self.replay.seen() as i64);
        if let Some(j) = &self.joiner {
            m.ingest
                .decoded
                .with_label_values(&["label"])
                .inc_by(t.label_records);
            for (o, n) in &t.joins {
                m.ingest
                    .label_joins
                    .with_label_values(&[o.as_str()])
                    .inc_by(*n);
            }
            for d in &t.join_delays {
                m.ingest.label_delay_seconds.observe(*d);
            }
            m.ingest.labels_pending.set(j.pending() as i64);
        }
        m.ingest.records.inc_by(t.records);
        malformed
    }

    /// Writes the open batch durably (with every batch handed to the store's writer before
    /// it) and reports all of them.
    pub fn flush(&mut self) -> Result<FlushReport, IngestError> {
        let mut report = self.settle()?;
        if let Some(batch) = self.stage_batch()? {
            let written = self
                .store
                .write_behind(batch.writes, batch.gate)
                .and_then(|()| self.store.settle());
            if let Err(e) = written {
                return Err(self.write_failed(e));
            }
            report.absorb(self.written(batch.report, batch.tally, batch.started));
        }
        Ok(report)
    }

    /// Hands the open batch to the store's writer (`store::WriteBehind`) and goes on: the
    /// next batch's records are decoded, scored and learned while it is written. Reports the
    /// batch handed over before, which is durable now; [`Pipeline::flush`] and
    /// [`Pipeline::settle`] report the last one.
    pub fn flush_behind(&mut self) -> Result<FlushReport, IngestError> {
        let Some(batch) = self.stage_batch()? else {
            return self.settle();
        };
        if let Err(e) = self.store.write_behind(batch.writes, batch.gate) {
            self.in_flight = None;
            return Err(self.write_failed(e));
        }
        let report = self.written(batch.report, batch.tally, batch.started);
        Ok(self.in_flight.replace(report).unwrap_or_default())
    }

    /// Waits for the batch handed to the store's writer, if any, and reports it.
    pub fn settle(&mut self) -> Result<FlushReport, IngestError> {
        let Some(report) = self.in_flight.take() else {
            return Ok(FlushReport::default());
        };
        if let Err(e) = self.store.settle() {
            return Err(self.write_failed(e));
        }
        Ok(report)
    }

    fn write_failed(&mut self, e: StoreError) -> IngestError {
        self.failed = true;
        if matches!(e, StoreError::Gate(_)) {
            tracing::error!(error = %crate::error::Chain(&e), "predictions not delivered; batch not written");
        } else {
            self.metrics.store.write_errors.inc();
            tracing::error!(error = %crate::error::Chain(&e), "ingest batch not written");
        }
        e.into()
    }

    /// The open batch's effects, staged: dead letters acknowledged, records scored and learned,
    /// predictions delivered, state and offsets in one write batch. `None` when it is empty.
    fn stage_batch(&mut self) -> Result<Option<Staged>, IngestError> {
        self.check_usable()?;
        if self.tally.records == 0 {
            return Ok(None);
        }
        let started = Instant::now();
        if let Err(e) = self.dead_letters.flush() {
            self.failed = true;
            self.metrics.ingest.dead_letter_errors.inc();
            tracing::error!(error = %crate::error::Chain(&e), "dead letters not acknowledged; batch not written");
            return Err(e);
        }
        let t = std::mem::take(&mut self.tally);
        self.count(&t);
        let mut batch = WriteBatch::new();
        self.categories.stage(&mut batch);
        if let Some(o) = self.observer.as_mut() {
            let staged = o.stage(&mut self.records, &mut batch);
            if let Err(e) = staged {
                self.records.clear();
                self.positions.clear();
                self.failed = true;
                tracing::error!(error = %crate::error::Chain(&e), "learning loop failed; batch not written");
                return Err(e);
            }
        }
        if let Some(j) = self.joiner.as_mut() {
            let records = &self.records;
            j.scored(|i| records.get(i).and_then(|o| o.prediction.clone()));
            j.stage(&mut batch);
        }
        let sent = Self::send_predictions(
            self.predictions.as_mut(),
            &self.records,
            &self.positions,
            &self.classes,
        );
        self.records.clear();
        self.positions.clear();
        let gate = match sent {
            Ok(gate) => gate,
            Err(e) => {
                self.failed = true;
                tracing::error!(error = %crate::error::Chain(&e), "predictions not delivered; batch not written");
                return Err(e);
            }
        };
        self.replay.stage(&mut batch);
        self.lags.stage(&mut batch);
        let offsets = self.state.stage(&mut batch);
        Ok(Some(Staged {
            writes: batch,
            gate,
            report: FlushReport {
                records: t.records,
                malformed: 0,
                offsets,
            },
            tally: t,
            started,
        }))
    }

    /// What follows a batch's write (or its hand-over to the store's writer): metrics, the
    /// observer's `committed`, the lag snapshot.
    fn written(&mut self, mut report: FlushReport, t: BatchTally, started: Instant) -> FlushReport {
        report.malformed = self.publish(&t, started.elapsed().as_secs_f64());
        let total = self.state.counter(counter::RECORDS);
        if let Some(o) = self.observer.as_mut() {
            o.committed(total);
        }
        if let (Some(snap), true) = (&self.lags_snapshot, self.lags.enabled()) {
            *snap.write().unwrap_or_else(|p| p.into_inner()) = self.lags.clone();
        }
        report
    }
}

/// A batch staged by [`Pipeline::stage_batch`], not written yet.
struct Staged {
    writes: WriteBatch,
    /// The predictions' acknowledgement, waited for before `writes` are written.
    gate: Option<Gate>,
    report: FlushReport,
    tally: BatchTally,
    started: Instant,
}

/// Wall-clock milliseconds since the Unix epoch (delayed labels' arrival times).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ingest::decode::Format;
    use crate::store::MemoryStore;
    use std::sync::Mutex;

    type Letters = Arc<Mutex<Vec<(Reason, i64, Vec<u8>)>>>;

    /// Collects dead letters; its flush fails while the flag is set.
    #[derive(Clone, Default)]
    struct Collect(Letters, Arc<Mutex<bool>>);

    impl DeadLetterSink for Collect {
        fn send(&mut self, l: DeadLetter<'_>) -> Result<(), IngestError> {
            self.0
                .lock()
                .unwrap()
                .push((l.reason, l.offset, l.payload.to_vec()));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), IngestError> {
            if *self.1.lock().unwrap() {
                Err(IngestError::dead_letter("test", "sink down"))
            } else {
                Ok(())
            }
        }
    }

    fn config() -> Config {
        let mut c = Config::default();
        c.schema.format = Format::Csv;
        c.schema.features = vec!["a".into()];
        c.schema.label = Some("y".into());
        c.schema.classes = vec!["n".into(), "y".into()];
        c
    }

    fn open(
        c: &Config,
        store: Arc<dyn KvStore>,
        sink: Box<dyn DeadLetterSink>,
        metrics: Metrics,
    ) -> Pipeline {
        Pipeline::open(
            &c.pipeline(),
            store,
            Decoder::new(&c.schema).unwrap(),
            sink,
            metrics,
        )
        .unwrap()
    }

    /// Partition 0 of topic `t` at `offset`.
    fn pos(offset: i64) -> SourcePos<'static> {
        SourcePos {
            topic: "t",
            partition: 0,
            offset,
            next: offset + 1,
        }
    }

    #[test]
    fn batch_lands_with_offsets_and_dead_letters() {
        let c = config();
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let sink = Collect::default();
        let metrics = Metrics::new();
        let mut p = open(&c, store.clone(), Box::new(sink.clone()), metrics.clone());
        p.process(pos(0), None, b"1.0,y").unwrap();
        p.process(pos(1), None, b"x,y").unwrap();
        p.process(pos(2), None, b"2.0,").unwrap();
        assert_eq!(
            IngestState::load(store.as_ref())
                .unwrap()
                .next_offset("t", 0),
            None
        );
        let report = p.flush().unwrap();
        assert_eq!(report.records, 3);
        assert_eq!(report.malformed, 1);
        assert_eq!(report.offsets, vec![("t".to_string(), 0, 3)]);
        let s = IngestState::load(store.as_ref()).unwrap();
        assert_eq!(s.next_offset("t", 0), Some(3));
        assert_eq!(s.counter(counter::RECORDS), 3);
        assert_eq!(s.counter(counter::LABELED), 1);
        assert_eq!(s.counter(counter::UNLABELED), 1);
        assert_eq!(s.counter("malformed/non_numeric"), 1);
        assert_eq!(ReplayBuffer::all(store.as_ref()).unwrap().len(), 1);
        assert_eq!(sink.0.lock().unwrap()[0].0, Reason::NonNumeric);
        assert_eq!(metrics.ingest.records.get(), 3);

        // A sink failure leaves the store untouched.
        *sink.1.lock().unwrap() = true;
        p.process(pos(3), None, b"bad,y").unwrap();
        assert!(p.flush().is_err());
        assert!(matches!(
            p.process(pos(4), None, b"1,y"),
            Err(IngestError::Stopped)
        ));
        let s = IngestState::load(store.as_ref()).unwrap();
        assert_eq!(s.next_offset("t", 0), Some(3));
        assert_eq!(metrics.ingest.records.get(), 3);
    }

    #[test]
    fn a_batch_written_behind_is_reported_by_the_next_hand_over_or_a_settle() {
        let c = config();
        let store: Arc<dyn KvStore> =
            Arc::new(crate::store::WriteBehind::new(Arc::new(MemoryStore::new())).unwrap());
        let mut p = open(
            &c,
            store.clone(),
            Box::new(Collect::default()),
            Metrics::new(),
        );
        p.process(pos(0), None, b"1.0,y").unwrap();
        p.process(pos(1), None, b"2.0,n").unwrap();
        assert_eq!(p.flush_behind().unwrap(), FlushReport::default());
        // Whoever reads sees the batch written.
        let s = IngestState::load(store.as_ref()).unwrap();
        assert_eq!(s.next_offset("t", 0), Some(2));
        p.process(pos(2), None, b"x,y").unwrap();
        let first = p.flush_behind().unwrap();
        assert_eq!(
            first,
            FlushReport {
                records: 2,
                malformed: 0,
                offsets: vec![("t".to_string(), 0, 2)],
            }
        );
        let second = p.settle().unwrap();
        assert_eq!(
            second,
            FlushReport {
                records: 1,
                malformed: 1,
                offsets: vec![("t".to_string(), 0, 3)],
            }
        );
        assert_eq!(p.settle().unwrap(), FlushReport::default());
        // `flush` reports the batch in flight together with the open one.
        p.process(pos(3), None, b"3.0,y").unwrap();
        p.flush_behind().unwrap();
        p.process(pos(4), None, b"4.0,y").unwrap();
        let both = p.flush().unwrap();
        assert_eq!(both.records, 2);
        assert_eq!(both.offsets, vec![("t".to_string(), 0, 5)]);
        let s = IngestState::load(store.as_ref()).unwrap();
        assert_eq!(s.counter(counter::RECORDS), 5);
        assert_eq!(s.counter(counter::LABELED), 4);
    }

    /// With `schema.categorical_encoding = "vocabulary"` values take their field's inputs in
    /// order of first sight, a dead-lettered record takes none, and a reopened pipeline reads
    /// the inputs stored with the batch.
    #[test]
    fn a_vocabulary_assigns_inputs_in_order_of_first_sight_and_keeps_them() {
        let mut c = config();
        c.schema.format = Format::Json;
        c.schema.categorical = vec!["contact".into()];
        c.schema.categorical_buckets = 4;
        c.schema.categorical_encoding = crate::ingest::categories::CategoricalEncoding::Vocabulary;
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        let inputs = |store: &Arc<dyn KvStore>| -> Vec<Vec<f32>> {
            ReplayBuffer::all(store.as_ref())
                .unwrap()
                .into_iter()
                .map(|r| r.features[1..].to_vec())
                .collect()
        };
        let mut p = open(
            &c,
            store.clone(),
            Box::new(Collect::default()),
            Metrics::new(),
        );
        let bodies: [&[u8]; 4] = [
            br#"{"a": 1, "contact": "telephone", "y": "y"}"#,
            // Dead-lettered (a non-numeric feature): "fax" takes no input.
            br#"{"a": "x", "contact": "fax", "y": "y"}"#,
            br#"{"a": 2, "contact": "cellular", "y": "n"}"#,
            br#"{"a": 3, "contact": "telephone", "y": "n"}"#,
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            p.process(pos(i as i64), None, body).unwrap();
        }
        p.flush().unwrap();
        let mut got = inputs(&store);
        got.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert_eq!(
            got,
            vec![
                vec![0.0, 1.0, 0.0, 0.0],
                vec![1.0, 0.0, 0.0, 0.0],
                vec![1.0, 0.0, 0.0, 0.0],
            ]
        );
        drop(p);
        let mut p = open(
            &c,
            store.clone(),
            Box::new(Collect::default()),
            Metrics::new(),
        );
        let vocabulary = p.vocabulary();
        let fax = crate::ingest::decode::category_hash("fax");
        assert_eq!(vocabulary.input(0, fax, false), None);
        let bodies: [&[u8]; 2] = [
            br#"{"a": 4, "contact": "fax", "y": "y"}"#,
            br#"{"a": 5, "contact": "cellular", "y": "y"}"#,
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            p.process(pos(4 + i as i64), None, body).unwrap();
        }
        p.flush().unwrap();
        assert_eq!(vocabulary.input(0, fax, false), Some(2));
        assert_eq!(vocabulary.len(0), 3);
        assert_eq!(inputs(&store).len(), 5);
        assert!(inputs(&store).contains(&vec![0.0, 0.0, 1.0, 0.0]));
    }
}
