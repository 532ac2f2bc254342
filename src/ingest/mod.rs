//! Ingestion: sources (Kafka, file), record decoding, the dead-letter sinks and the pipeline
//! that turns batches of records into one atomic store write.

pub mod arff;
pub mod categories;
pub mod decode;
pub mod dlq;
pub mod file;
pub mod join;
mod json;
pub mod kafka;
pub mod lags;
pub mod lines;
pub mod pipeline;
pub mod predictions;
pub mod rows;
pub mod time;

pub use decode::{DecodeError, Decoder, Reason};
pub use dlq::{DeadLetter, DeadLetterSink, FileDeadLetters, KafkaDeadLetters};
pub use pipeline::{Pipeline, SourcePos};

use crate::error::BoxError;
use crate::error::ConfigError;
use crate::store::replay::ReplayError;
use crate::store::StoreError;

/// What stops an ingest source. State stays consistent: a failed batch is not written, and its
/// records are processed again after a restart.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("dead-letter sink {sink} failed")]
    DeadLetter {
        /// The topic or file.
        sink: String,
        #[source]
        source: BoxError,
    },
    #[error("prediction sink {sink} failed")]
    Predictions {
        /// The topic or file.
        sink: String,
        #[source]
        source: BoxError,
    },
    #[error("kafka: {context}")]
    Kafka {
        /// What the client was doing.
        context: String,
        #[source]
        source: BoxError,
    },
    #[error("input {path}: {source}")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("ingest stopped after a batch could not be made durable; restart to resume from the stored offsets")]
    Stopped,
    #[error("schema does not fit the input: {}{what}", source.detail)]
    Schema {
        /// Where the schema met the input (a file's header, the predict decoder...).
        what: String,
        source: crate::ingest::decode::DecodeError,
    },
    #[error("learning loop failed")]
    Loop(#[source] BoxError),
    #[error(transparent)]
    Vocabulary(#[from] categories::VocabularyError),
}

impl IngestError {
    /// The dead-letter sink `sink` failed with `source`.
    pub fn dead_letter(sink: impl std::fmt::Display, source: impl Into<BoxError>) -> IngestError {
        IngestError::DeadLetter {
            sink: sink.to_string(),
            source: source.into(),
        }
    }

    /// The prediction sink `sink` failed with `source`.
    pub fn predictions(sink: impl std::fmt::Display, source: impl Into<BoxError>) -> IngestError {
        IngestError::Predictions {
            sink: sink.to_string(),
            source: source.into(),
        }
    }

    /// The Kafka client failed at `context` with `source`.
    pub fn kafka(context: impl std::fmt::Display, source: impl Into<BoxError>) -> IngestError {
        IngestError::Kafka {
            context: context.to_string(),
            source: source.into(),
        }
    }
}

/// How a record the loop sees relates to delayed labels (`labels.enabled`).
#[derive(Debug, Clone, PartialEq)]
pub enum Join {
    /// Learned as it is: it carries its label, or it is unlabeled and waits for none.
    None,
    /// It waits for its label: the prediction the loop makes now is kept with it.
    Waiting,
    /// Its label arrived: the prequential scores count the prediction made when its features
    /// arrived (`join::Made`), not a new one.
    Joined(join::Made),
}

/// One record of the open batch as the learning loop sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub record: crate::record::Record,
    pub join: Join,
    /// Set by the loop: the serving model's prediction for this record now (None before a
    /// first model).
    pub prediction: Option<crate::record::Prediction>,
    /// The categorical fields (bit `k`: `schema.categorical[k]`, the first 64) whose value in
    /// this record had never been seen before (`ingest::categories`); 0 for a joined label.
    pub new_categories: u64,
}

impl Observed {
    /// A record outside any join.
    pub fn plain(record: crate::record::Record) -> Observed {
        Observed {
            record,
            join: Join::None,
            prediction: None,
            new_categories: 0,
        }
    }
}

/// A stage that sees each batch's decoded records before the batch is written (the
/// continual-learning loop). What it stages lands in the same write batch as the offsets.
pub trait BatchObserver: Send {
    /// Sees the decoded records of the open batch, in stream order, sets their predictions
    /// and stages its own state into `batch`.
    fn stage(
        &mut self,
        records: &mut [Observed],
        batch: &mut crate::store::WriteBatch,
    ) -> Result<(), IngestError>;
    /// Called once the batch is written, or handed to the store's writer
    /// (`Pipeline::flush_behind`); `records_total` counts every record processed so far.
    fn committed(&mut self, records_total: u64);
}

/// Batching on the ingest path.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Most records in one batch (one RocksDB write batch, one offset commit).
    pub batch_max_records: usize,
    /// Longest a record waits in an open batch before the batch is written, in milliseconds
    /// (Kafka, standard input, a FIFO; a regular file is cut by count only, so a replay is
    /// reproducible).
    #[serde(rename = "batch_max_wait_ms", with = "crate::units::millis")]
    pub batch_max_wait: std::time::Duration,
    /// Added to the ingest thread's nice value (Linux; 0 to 19): the thread that consumes,
    /// decodes, scores, learns from and writes each batch. Above 0, a `/v1/predict` request
    /// (whose threads keep the process's priority) preempts it at once instead of waiting
    /// for the end of its time slice, which is milliseconds while a batch is scored; ingest
    /// still gets every core that nothing of higher priority wants. The Kafka client's own
    /// threads, started by the ingest thread, inherit its priority. 0 (the default): the
    /// API's priority. Measured in the soak (2 cores shared with a broker, a producer and
    /// the predict client, 2026-12-06): at 10 the client's p99 per 10-s window fell from a
    /// median of 2.95 ms to 2.27, but through a broker on the same cores
    /// (`scripts/kafka-load.sh`) ingest without learning fell from 61,900 to 50,900
    /// records/s: a choice for a machine whose cores the daemon has to itself.
    pub nice: i32,
}

/// The default `ingest.nice`.
pub const DEFAULT_INGEST_NICE: i32 = 0;

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_max_records: 4096,
            batch_max_wait: std::time::Duration::from_millis(100),
            nice: DEFAULT_INGEST_NICE,
        }
    }
}

impl IngestConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.batch_max_records == 0 {
            return Err(ConfigError::key("ingest.batch_max_records", "must be > 0"));
        }
        if self.batch_max_wait.is_zero() {
            return Err(ConfigError::key("ingest.batch_max_wait_ms", "must be > 0"));
        }
        if !(0..=19).contains(&self.nice) {
            return Err(ConfigError::key(
                "ingest.nice",
                format!("{} is not in 0..=19", self.nice),
            ));
        }
        Ok(())
    }
}
