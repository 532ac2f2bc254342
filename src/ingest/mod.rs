//! Ingestion: sources (Kafka, file), record decoding, the dead-letter sinks and the pipeline
//! that turns batches of records into one atomic store write.

pub mod categories;
pub mod decode;
pub mod dlq;
pub mod file;
pub mod join;
pub mod kafka;
pub mod lags;
pub mod lines;
pub mod pipeline;
pub mod predictions;

pub use decode::{DecodeError, Decoder, Reason};
pub use dlq::{DeadLetter, DeadLetterSink, FileDeadLetters, KafkaDeadLetters};
pub use pipeline::{Pipeline, SourcePos};

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
    #[error("dead-letter sink failed: {0}")]
    DeadLetter(String),
    #[error("prediction sink failed: {0}")]
    Predictions(String),
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("input {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("ingest stopped after a batch could not be made durable; restart to resume from the stored offsets")]
    Stopped,
    #[error("schema does not fit the input: {0}")]
    Schema(String),
    #[error("learning loop: {0}")]
    Loop(String),
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
}

impl Observed {
    /// A record outside any join.
    pub fn plain(record: crate::record::Record) -> Observed {
        Observed {
            record,
            join: Join::None,
            prediction: None,
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
    /// Called once the batch is durable; `records_total` counts every record processed so far.
    fn committed(&mut self, records_total: u64);
}
