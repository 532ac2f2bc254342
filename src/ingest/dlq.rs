//! Dead-letter sinks: where malformed records go, with their reason, before their offsets are
//! stored. A Kafka topic (headers carry the reason) or a JSON-lines file for the file source.
//!
//! Contract: `send` queues; `flush` returns only when everything sent is durable in the sink.
//! The pipeline flushes the sink before it writes the batch that stores the records' offsets,
//! so a malformed record is never lost; after a crash between the two it may be sent twice
//! (consumers deduplicate on the source topic/partition/offset headers).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use super::{IngestError, Reason};

/// One malformed record and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    pub reason: Reason,
    pub detail: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
}

/// Header names on dead-letter Kafka records.
pub mod header {
    pub const REASON: &str = "relearn.reason";
    pub const DETAIL: &str = "relearn.detail";
    pub const TOPIC: &str = "relearn.source.topic";
    pub const PARTITION: &str = "relearn.source.partition";
    pub const OFFSET: &str = "relearn.source.offset";
}

/// A destination for malformed records.
pub trait DeadLetterSink: Send {
    /// Queues one dead letter.
    fn send(&mut self, letter: DeadLetter<'_>) -> Result<(), IngestError>;
    /// Returns when every queued letter is durable in the sink.
    fn flush(&mut self) -> Result<(), IngestError>;
}

/// Dead letters produced to a Kafka topic (idempotent producer, acks=all).
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
    pending: Vec<DeliveryFuture>,
}

impl KafkaDeadLetters {
    /// A producer for `topic` with the given base client config (brokers, pass-through).
    pub fn new(mut config: ClientConfig, topic: &str) -> Result<KafkaDeadLetters, IngestError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        let producer: FutureProducer = config
            .create()
            .map_err(|e| IngestError::Kafka(format!("cannot create dead-letter producer: {e}")))?;
        Ok(KafkaDeadLetters {
            producer,
            topic: topic.to_string(),
            pending: Vec::new(),
        })
    }
}

impl DeadLetterSink for KafkaDeadLetters {
    fn send(&mut self, l: DeadLetter<'_>) -> Result<(), IngestError> {
        let partition = l.partition.to_string();
        let offset = l.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: header::REASON,
                value: Some(l.reason.as_str()),
            })
            .insert(Header {
                key: header::DETAIL,
                value: Some(l.detail),
            })
            .insert(Header {
                key: header::TOPIC,
                value: Some(l.topic),
            })
            .insert(Header {
                key: header::PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: header::OFFSET,
                value: Some(&offset),
            });
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic)
            .payload(l.payload)
            .headers(headers);
        if let Some(k) = l.key {
            record = record.key(k);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(fut) => {
                    self.pending.push(fut);
                    return Ok(());
                }
                Err((e, back)) => {
                    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
                    if let KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) = e {
                        // The local queue is full: let deliveries complete, then retry.
                        self.producer.poll(Duration::from_millis(10));
                        record = back;
                        continue;
                    }
                    return Err(IngestError::DeadLetter(e.to_string()));
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        for fut in self.pending.drain(..) {
            match futures::executor::block_on(fut) {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(IngestError::DeadLetter(e.to_string())),
                Err(_) => {
                    return Err(IngestError::DeadLetter(
                        "delivery report channel closed".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// Dead letters appended as JSON lines to a file, fsynced on `flush`.
pub struct FileDeadLetters {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    dirty: bool,
}

impl FileDeadLetters {
    /// Opens `path` for appending (creating it).
    pub fn open(path: PathBuf) -> Result<FileDeadLetters, IngestError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| IngestError::DeadLetter(format!("cannot open {}: {e}", path.display())))?;
        Ok(FileDeadLetters {
            path,
            file: std::io::BufWriter::new(file),
            dirty: false,
        })
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn send(&mut self, l: DeadLetter<'_>) -> Result<(), IngestError> {
        use base64::Engine as _;
        let line = serde_json::json!({
            "reason": l.reason.as_str(),
            "detail": l.detail,
            "topic": l.topic,
            "partition": l.partition,
            "offset": l.offset,
            "payload_base64": base64::engine::general_purpose::STANDARD.encode(l.payload),
        });
        serde_json::to_writer(&mut self.file, &line)
            .map_err(|e| IngestError::DeadLetter(format!("{}: {e}", self.path.display())))?;
        self.file
            .write_all(b"\n")
            .map_err(|e| IngestError::DeadLetter(format!("{}: {e}", self.path.display())))?;
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
            .map_err(|e| IngestError::DeadLetter(format!("{}: {e}", self.path.display())))?;
        self.dirty = false;
        Ok(())
    }
}
