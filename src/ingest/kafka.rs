//! The Kafka source: a consumer-group member whose offsets live in RocksDB with its state.
//!
//! Records are consumed on a dedicated thread (never a tokio worker). On partition
//! assignment the consumer starts each partition at the offset stored in the store; Kafka's
//! committed offsets are only a fallback for partitions this store has never seen, and are
//! written after each durable batch so that standard tools show the group's lag. On
//! revocation the open batch is made durable before the partitions are released.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::pipeline::FlushReport;
use super::{IngestError, Pipeline, SourcePos};
use crate::config::{Config, IngestConfig, KafkaConfig};
use crate::metrics::Metrics;

/// Which client a librdkafka configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRole {
    Consumer,
    Producer,
}

/// The librdkafka configuration of one client: brokers, the shared pass-through properties,
/// then the role's own pass-through properties.
pub fn client_config(k: &KafkaConfig, role: ClientRole) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers);
    let own = match role {
        ClientRole::Consumer => &k.consumer_properties,
        ClientRole::Producer => &k.producer_properties,
    };
    for (key, value) in k.properties.iter().chain(own) {
        c.set(key, value);
    }
    c
}

/// Consumer properties relearn sets unless `kafka.properties` overrides them.
///
/// `fetch.queue.backoff.ms`: librdkafka waits this long before fetching again once its local
/// queue is over `queued.min.messages`; its default (1000 ms) starves a consumer that drains
/// the queue in a few milliseconds. Measured on one broker, 3 partitions: 155k records/s
/// durable ingest with the default, above 1M records/s with 10 ms (benches/ingest_throughput).
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("statistics.interval.ms", "5000"),
    ("fetch.queue.backoff.ms", "10"),
];

/// Whether the consumer holds partitions (readiness).
#[derive(Debug, Default)]
pub struct Assignment {
    partitions: AtomicI64,
}

impl Assignment {
    pub fn count(&self) -> i64 {
        self.partitions.load(Ordering::Relaxed)
    }
}

/// Consumer callbacks: seek to stored offsets on assignment, flush on revocation, lag.
struct IngestContext {
    pipeline: Arc<Mutex<Pipeline>>,
    metrics: Metrics,
    assignment: Arc<Assignment>,
    failed: AtomicBool,
}

impl IngestContext {
    fn lock(&self) -> MutexGuard<'_, Pipeline> {
        // A panic while holding the lock would already have stopped ingest; the pipeline's
        // own `failed` flag guards consistency, so a poisoned lock is still usable to stop.
        self.pipeline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for IngestContext {
    fn stats(&self, stats: Statistics) {
        let pipeline = self.lock();
        for (name, topic) in &stats.topics {
            for (p, part) in &topic.partitions {
                if *p < 0 || !part.desired || part.hi_offset < 0 {
                    continue;
                }
                let next = pipeline
                    .next_offset(name, *p)
                    .unwrap_or(part.lo_offset.max(0));
                self.metrics
                    .ingest_lag
                    .with_label_values(&[&format!("{name}/{p}")])
                    .set((part.hi_offset - next).max(0));
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut seeks = Vec::new();
                {
                    let pipeline = self.lock();
                    for e in tpl.elements() {
                        if let Some(o) = pipeline.next_offset(e.topic(), e.partition()) {
                            seeks.push((e.topic().to_string(), e.partition(), o));
                        }
                    }
                }
                for (topic, partition, offset) in &seeks {
                    if let Err(e) =
                        tpl.set_partition_offset(topic, *partition, Offset::Offset(*offset))
                    {
                        tracing::error!(%e, topic, partition, "cannot set start offset");
                        self.failed.store(true, Ordering::SeqCst);
                    }
                }
                let n = tpl.count() as i64;
                let result = if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                };
                match result {
                    Ok(()) => {
                        if cooperative {
                            self.assignment.partitions.fetch_add(n, Ordering::Relaxed);
                        } else {
                            self.assignment.partitions.store(n, Ordering::Relaxed);
                        }
                        self.metrics.ingest_assigned.set(self.assignment.count());
                        self.metrics
                            .ingest_rebalances
                            .with_label_values(&["assign"])
                            .inc();
                        tracing::info!(
                            partitions = n,
                            from_store = seeks.len(),
                            "partitions assigned; starting at stored offsets where known"
                        );
                    }
                    Err(e) => {
                        tracing::error!(%e, "assign failed");
                        self.failed.store(true, Ordering::SeqCst);
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let report = self.lock().flush();
                match report {
                    Ok(report) => commit(consumer, &report, CommitMode::Sync),
                    Err(e) => {
                        tracing::error!(%e, "could not make the open batch durable on revoke");
                        self.failed.store(true, Ordering::SeqCst);
                    }
                }
                let n = tpl.count() as i64;
                let result = if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                };
                if let Err(e) = result {
                    tracing::error!(%e, "unassign failed");
                }
                if cooperative {
                    self.assignment.partitions.fetch_sub(n, Ordering::Relaxed);
                } else {
                    self.assignment.partitions.store(0, Ordering::Relaxed);
                }
                self.metrics.ingest_assigned.set(self.assignment.count());
                self.metrics
                    .ingest_rebalances
                    .with_label_values(&["revoke"])
                    .inc();
                tracing::info!(partitions = n, "partitions revoked");
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; releasing the assignment");
                self.metrics
                    .ingest_rebalances
                    .with_label_values(&["error"])
                    .inc();
                let _ = consumer.unassign();
                self.assignment.partitions.store(0, Ordering::Relaxed);
                self.metrics.ingest_assigned.set(0);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // Kafka's committed offsets are informational (lag); RocksDB holds the real ones.
            tracing::debug!(%e, "offset commit to kafka failed");
        }
    }
}

/// Commits the offsets a durable batch reached to Kafka (for lag visibility only).
fn commit(consumer: &BaseConsumer<IngestContext>, report: &FlushReport, mode: CommitMode) {
    if report.offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in &report.offsets {
        if tpl
            .add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .is_err()
        {
            return;
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::debug!(%e, "offset commit to kafka failed");
    }
}

/// A running Kafka source.
pub struct KafkaSource {
    consumer: BaseConsumer<IngestContext>,
    batch: IngestConfig,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics.
    pub fn new(
        config: &Config,
        pipeline: Arc<Mutex<Pipeline>>,
        metrics: Metrics,
        assignment: Arc<Assignment>,
    ) -> Result<KafkaSource, IngestError> {
        let k = &config.kafka;
        let mut cc = client_config(k, ClientRole::Consumer);
        cc.set("group.id", &k.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &k.auto_offset_reset)
            .set("enable.partition.eof", "false");
        for (key, value) in CONSUMER_DEFAULTS {
            if !k.properties.contains_key(*key) && !k.consumer_properties.contains_key(*key) {
                cc.set(*key, *value);
            }
        }
        let context = IngestContext {
            pipeline,
            metrics,
            assignment,
            failed: AtomicBool::new(false),
        };
        let consumer: BaseConsumer<IngestContext> = cc
            .create_with_context(context)
            .map_err(|e| IngestError::Kafka(format!("cannot create consumer: {e}")))?;
        let topics: Vec<&str> = k.topics.iter().map(|s| s.as_str()).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| IngestError::Kafka(format!("cannot subscribe to {topics:?}: {e}")))?;
        Ok(KafkaSource {
            consumer,
            batch: config.ingest.clone(),
        })
    }

    /// Consumes until `shutdown` is cancelled or an error stops ingest. On shutdown the open
    /// batch is made durable and its offsets committed before returning.
    pub fn run(self, shutdown: &CancellationToken) -> Result<(), IngestError> {
        let max_wait = Duration::from_millis(self.batch.batch_max_wait_ms);
        let max_records = self.batch.batch_max_records as u64;
        let ctx = self.consumer.context().clone();
        // When the open batch began; checked on idle polls and every 256 records, so the
        // clock is not read per record.
        let mut opened: Option<Instant> = None;
        let result = loop {
            if shutdown.is_cancelled() {
                break Ok(());
            }
            if ctx.failed.load(Ordering::SeqCst) {
                break Err(IngestError::Stopped);
            }
            let poll_timeout = if opened.is_some() {
                Duration::from_millis(10).min(max_wait)
            } else {
                Duration::from_millis(100)
            };
            let (open, idle) = match self.consumer.poll(poll_timeout) {
                None => (ctx.lock().open_records(), true),
                Some(Err(e)) => {
                    // Transient broker errors surface here; librdkafka retries by itself.
                    tracing::warn!(%e, "consumer error");
                    (ctx.lock().open_records(), true)
                }
                Some(Ok(msg)) => {
                    let pos = SourcePos {
                        topic: msg.topic(),
                        partition: msg.partition(),
                        offset: msg.offset(),
                        next: msg.offset() + 1,
                    };
                    let res = ctx
                        .lock()
                        .process(pos, msg.key(), msg.payload().unwrap_or(&[]));
                    drop(msg);
                    match res {
                        Ok(open) => (open, false),
                        Err(e) => break Err(e),
                    }
                }
            };
            if open == 0 {
                opened = None;
                continue;
            }
            let started = *opened.get_or_insert_with(Instant::now);
            let check_clock = idle || open % 256 == 0;
            if open >= max_records || (check_clock && started.elapsed() >= max_wait) {
                let report = ctx.lock().flush();
                match report {
                    Ok(report) => commit(&self.consumer, &report, CommitMode::Async),
                    Err(e) => break Err(e),
                }
                opened = None;
            }
        };
        let last = ctx.lock().flush();
        match (&result, last) {
            (Ok(()), Ok(report)) => commit(&self.consumer, &report, CommitMode::Sync),
            (Ok(()), Err(e)) => return Err(e),
            _ => {}
        }
        self.consumer.unsubscribe();
        result
    }
}
