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

/// One malformed record and where it came from. Serialized, it is a line of the
/// dead-letter file: the reason, the detail, the source position and the payload in base64
/// (`payload_base64`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct DeadLetter<'a> {
    pub reason: Reason,
    pub detail: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    #[serde(skip)]
    pub key: Option<&'a [u8]>,
    #[serde(rename = "payload_base64", serialize_with = "base64_bytes")]
    pub payload: &'a [u8],
}

fn base64_bytes<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Header names on dead-letter Kafka records.
pub mod header {
    pub const REASON: &str = "relearn.reason";
    pub const DETAIL: &str = "relearn.detail";
    pub const TOPIC: &str = "relearn.source.topic";
    pub const PARTITION: &str = "relearn.source.partition";
    pub const OFFSET: &str = "relearn.source.offset";
    /// Set on a letter whose payload was truncated to fit: the original payload's length.
    pub const ORIGINAL_SIZE: &str = "relearn.original.size";
    /// Set with `ORIGINAL_SIZE`: the original payload's SHA-256, lowercase hex.
    pub const ORIGINAL_SHA256: &str = "relearn.original.sha256";
}

/// A destination for malformed records.
pub trait DeadLetterSink: Send {
    /// Queues one dead letter.
    fn send(&mut self, letter: DeadLetter<'_>) -> Result<(), IngestError>;
    /// Returns when every queued letter is durable in the sink.
    fn flush(&mut self) -> Result<(), IngestError>;
}

/// Bytes kept of a payload when the broker refuses even the truncated letter as too large.
const LAST_RESORT_PREFIX: usize = 1024;

/// Room left for record overhead (lengths, attributes, timestamps) beyond key, payload and
/// header bytes.
const RECORD_OVERHEAD: usize = 512;

/// The headers of one dead letter, owned so that a letter can be rebuilt and resent.
#[derive(Debug, Clone)]
struct LetterHeaders(Vec<(&'static str, String)>);

impl LetterHeaders {
    fn of(l: &DeadLetter<'_>) -> LetterHeaders {
        LetterHeaders(vec![
            (header::REASON, l.reason.as_str().to_string()),
            (header::DETAIL, l.detail.to_string()),
            (header::TOPIC, l.topic.to_string()),
            (header::PARTITION, l.partition.to_string()),
            (header::OFFSET, l.offset.to_string()),
        ])
    }

    fn bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len() + 8).sum()
    }

    /// Marks the letter as truncated: the original payload's size and SHA-256.
    fn truncated(&mut self, original: &[u8]) {
        use sha2::Digest as _;
        let sha: String = sha2::Sha256::digest(original)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.0
            .push((header::ORIGINAL_SIZE, original.len().to_string()));
        self.0.push((header::ORIGINAL_SHA256, sha));
    }

    fn owned(&self) -> OwnedHeaders {
        self.0.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
            h.insert(Header {
                key: k,
                value: Some(v.as_str()),
            })
        })
    }
}

/// A letter produced and not yet acknowledged: what is needed to resend it shorter.
struct Pending {
    delivery: DeliveryFuture,
    headers: LetterHeaders,
    key: Option<Vec<u8>>,
    /// The payload's first `LAST_RESORT_PREFIX` bytes, resent when the broker refuses the
    /// letter as too large.
    prefix: Vec<u8>,
    /// Whether the headers already describe a truncated original.
    truncated: bool,
}

/// Dead letters produced to a Kafka topic (idempotent producer, acks=all). A letter larger
/// than `max_bytes` is produced with its payload truncated to fit, and headers give the
/// original size and SHA-256, so one oversized poison record never blocks its partition.
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
    max_bytes: usize,
    pending: Vec<Pending>,
}

impl KafkaDeadLetters {
    /// A producer for `topic` with the given base client config (brokers, pass-through);
    /// letters are kept within `max_bytes`.
    pub fn new(
        mut config: ClientConfig,
        topic: &str,
        max_bytes: usize,
    ) -> Result<KafkaDeadLetters, IngestError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        if config.get("message.max.bytes").is_none() {
            // librdkafka's own limit (1,000,000 by default) must admit the largest letter.
            let limit = (max_bytes + 64 * 1024).max(1_000_000);
            config.set("message.max.bytes", limit.to_string());
        }
        let producer: FutureProducer = config
            .create()
            .map_err(|e| IngestError::kafka("cannot create the dead-letter producer", e))?;
        Ok(KafkaDeadLetters {
            producer,
            topic: topic.to_string(),
            max_bytes,
            pending: Vec::new(),
        })
    }

    /// Enqueues one letter, waiting while librdkafka's local queue is full.
    fn enqueue(
        &self,
        headers: &LetterHeaders,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<DeliveryFuture, IngestError> {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic)
            .payload(payload)
            .headers(headers.owned());
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(fut) => return Ok(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: let deliveries complete, then retry.
                    self.producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => return Err(IngestError::dead_letter(&self.topic, e)),
            }
        }
    }
}

/// Whether a delivery failed because the letter is larger than the broker takes.
fn too_large(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode;
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    )
}

impl DeadLetterSink for KafkaDeadLetters {
    fn send(&mut self, l: DeadLetter<'_>) -> Result<(), IngestError> {
        let mut headers = LetterHeaders::of(&l);
        let key_len = l.key.map_or(0, <[u8]>::len);
        let fixed = headers.bytes() + key_len + RECORD_OVERHEAD + 128;
        let room = self.max_bytes.saturating_sub(fixed);
        let truncated = l.payload.len() > room;
        let payload = if truncated {
            headers.truncated(l.payload);
            tracing::warn!(
                topic = l.topic,
                partition = l.partition,
                offset = l.offset,
                size = l.payload.len(),
                kept = room,
                "dead letter larger than kafka.dead_letter_max_bytes: payload truncated"
            );
            &l.payload[..room]
        } else {
            l.payload
        };
        let delivery = self.enqueue(&headers, l.key, payload)?;
        self.pending.push(Pending {
            delivery,
            headers,
            key: l.key.map(<[u8]>::to_vec),
            prefix: l.payload[..l.payload.len().min(LAST_RESORT_PREFIX)].to_vec(),
            truncated,
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        let closed = || IngestError::dead_letter(&self.topic, "delivery report channel closed");
        for p in std::mem::take(&mut self.pending) {
            match futures::executor::block_on(p.delivery) {
                Ok(Ok(_)) => {}
                Ok(Err((e, msg))) if too_large(&e) => {
                    // The topic takes less than `dead_letter_max_bytes`: resend a short
                    // prefix, still naming the original's size and hash.
                    let mut headers = p.headers;
                    if !p.truncated {
                        use rdkafka::Message as _;
                        headers.truncated(msg.payload().unwrap_or(&[]));
                    }
                    tracing::warn!(error = %crate::error::Chain(&e), topic = %self.topic, "dead letter refused as too large; resending a 1 KiB prefix");
                    let retry = self.enqueue(&headers, p.key.as_deref(), &p.prefix)?;
                    match futures::executor::block_on(retry) {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, _))) => {
                            return Err(IngestError::dead_letter(
                                format!("{} (a truncated dead letter)", self.topic),
                                e,
                            ))
                        }
                        Err(_) => return Err(closed()),
                    }
                }
                Ok(Err((e, _))) => return Err(IngestError::dead_letter(&self.topic, e)),
                Err(_) => return Err(closed()),
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
    /// Opens `path` for appending (creating it; a torn last line is dropped).
    pub fn open(path: PathBuf) -> Result<FileDeadLetters, IngestError> {
        let file = super::lines::open_append(&path)
            .map_err(|e| IngestError::dead_letter(path.display(), e))?;
        Ok(FileDeadLetters {
            path,
            file: std::io::BufWriter::new(file),
            dirty: false,
        })
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn send(&mut self, l: DeadLetter<'_>) -> Result<(), IngestError> {
        serde_json::to_writer(&mut self.file, &l)
            .map_err(|e| IngestError::dead_letter(self.path.display(), e))?;
        self.file
            .write_all(b"\n")
            .map_err(|e| IngestError::dead_letter(self.path.display(), e))?;
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
            .map_err(|e| IngestError::dead_letter(self.path.display(), e))?;
        self.dirty = false;
        Ok(())
    }
}
