//! Prediction sinks: the serving model's prediction for every record it scored on the ingest
//! path, out to a Kafka topic (`kafka.predictions_topic`) or a JSON-lines file
//! (`file.predictions_path`).
//!
//! Contract (as for dead letters): `send` queues; `flush` returns only when every queued
//! prediction is durable in the sink, and the batch that stores the records' offsets is
//! written only after that (on the ingest path the wait is the batch's gate, `seal`, run by
//! the store's writer thread before it writes the batch). A prediction is therefore never lost; after a crash between
//! the two it may be produced again, by the same model version for the same source position,
//! so consumers deduplicate on the source headers (or fields). A delivery that fails after
//! librdkafka's retries stops ingest (the daemon exits non-zero and resumes from the stored
//! offsets); a full local queue waits: back-pressure, never a drop.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use super::IngestError;
use crate::error::BoxError;
use crate::store::Gate;

/// Header names on prediction records (the source position, for deduplication).
pub mod header {
    pub const KEY: &str = "relearn.key";
    pub const TOPIC: &str = "relearn.source.topic";
    pub const PARTITION: &str = "relearn.source.partition";
    pub const OFFSET: &str = "relearn.source.offset";
    pub const VERSION: &str = "relearn.model.version";
}

/// One prediction as produced: a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictionMessage {
    /// The record's `schema.key`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    /// Where the record came from (a file source: the path, partition 0, the line's byte
    /// offset).
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The model version that made the prediction.
    pub version: u64,
    /// Classification: the predicted class (a `schema.classes` name) and every class's
    /// probability, in `schema.classes` order.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub probabilities: Option<Vec<f32>>,
    /// Regression: the predicted value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<f32>,
    /// When it was made, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A destination for predictions.
pub trait PredictionSink: Send {
    /// Queues one prediction.
    fn send(&mut self, p: &PredictionMessage) -> Result<(), IngestError>;
    /// Returns when every queued prediction is durable in the sink.
    fn flush(&mut self) -> Result<(), IngestError>;
    /// What `flush` waits for, as a gate to be waited for later on another thread (the
    /// store's writer, before it writes the batch: `store::WriteBehind`), so that the ingest
    /// thread goes on meanwhile. A sink that has nothing to wait for later flushes now.
    fn seal(&mut self) -> Result<Option<Gate>, IngestError> {
        self.flush().map(|()| None)
    }
}

/// Predictions produced to a Kafka topic (idempotent producer, acks=all), keyed by the
/// record's key, with the source position in headers.
pub struct KafkaPredictions {
    producer: FutureProducer,
    topic: String,
    pending: Vec<DeliveryFuture>,
}

impl KafkaPredictions {
    /// A producer for `topic` with the given base client config (brokers, pass-through).
    pub fn new(mut config: ClientConfig, topic: &str) -> Result<KafkaPredictions, IngestError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        let producer: FutureProducer = config
            .create()
            .map_err(|e| IngestError::kafka("cannot create the predictions producer", e))?;
        Ok(KafkaPredictions {
            producer,
            topic: topic.to_string(),
            pending: Vec::new(),
        })
    }
}

impl PredictionSink for KafkaPredictions {
    fn send(&mut self, p: &PredictionMessage) -> Result<(), IngestError> {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        let payload =
            serde_json::to_vec(p).map_err(|e| IngestError::predictions(&self.topic, e))?;
        let (partition, offset, version) = (
            p.partition.to_string(),
            p.offset.to_string(),
            p.version.to_string(),
        );
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: header::TOPIC,
                value: Some(p.topic.as_str()),
            })
            .insert(Header {
                key: header::PARTITION,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: header::OFFSET,
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: header::VERSION,
                value: Some(version.as_str()),
            });
        if let Some(k) = &p.key {
            headers = headers.insert(Header {
                key: header::KEY,
                value: Some(k.as_str()),
            });
        }
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic)
            .payload(payload.as_slice())
            .headers(headers);
        if let Some(k) = &p.key {
            record = record.key(k.as_str());
        }
        loop {
            match self.producer.send_result(record) {
                Ok(fut) => {
                    self.pending.push(fut);
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: let deliveries complete, then retry.
                    self.producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => return Err(IngestError::predictions(&self.topic, e)),
            }
        }
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        delivered(std::mem::take(&mut self.pending), &self.topic)
    }

    fn seal(&mut self) -> Result<Option<Gate>, IngestError> {
        let (pending, topic) = (std::mem::take(&mut self.pending), self.topic.clone());
        Ok(Some(Box::new(move || {
            delivered(pending, &topic).map_err(BoxError::from)
        })))
    }
}

/// Waits for every delivery report; the first failure.
fn delivered(pending: Vec<DeliveryFuture>, topic: &str) -> Result<(), IngestError> {
    for d in pending {
        match futures::executor::block_on(d) {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(IngestError::predictions(topic, e)),
            Err(_) => {
                return Err(IngestError::predictions(
                    topic,
                    "delivery report channel closed",
                ))
            }
        }
    }
    Ok(())
}

/// Predictions appended as JSON lines to a file, fsynced on `flush`.
pub struct FilePredictions {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    dirty: bool,
}

impl FilePredictions {
    /// Opens `path` for appending (creating it; a torn last line is dropped).
    pub fn open(path: PathBuf) -> Result<FilePredictions, IngestError> {
        let file = super::lines::open_append(&path)
            .map_err(|e| IngestError::predictions(path.display(), e))?;
        Ok(FilePredictions {
            path,
            file: std::io::BufWriter::new(file),
            dirty: false,
        })
    }
}

impl PredictionSink for FilePredictions {
    fn send(&mut self, p: &PredictionMessage) -> Result<(), IngestError> {
        let path = self.path.display().to_string();
        serde_json::to_writer(&mut self.file, p).map_err(|e| IngestError::predictions(&path, e))?;
        self.file
            .write_all(b"\n")
            .map_err(|e| IngestError::predictions(&path, e))?;
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if !self.dirty {
            return Ok(());
        }
        self.file
            .flush()
            .and_then(|_| self.file.get_ref().sync_data())
            .map_err(|e| IngestError::predictions(self.path.display(), e))?;
        self.dirty = false;
        Ok(())
    }
}
