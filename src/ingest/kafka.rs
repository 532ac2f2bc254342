//! The Kafka source: a consumer-group member whose offsets live in RocksDB with its state.
//!
//! Records are consumed on a dedicated thread (never a tokio worker). On partition
//! assignment the consumer starts each partition at the offset stored in the store; Kafka's
//! committed offsets are only a fallback for partitions this store has never seen, and are
//! written after each durable batch so that standard tools show the group's lag. On
//! revocation the open batch is made durable before the partitions are released.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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
use super::{IngestConfig, IngestError, Pipeline, SourcePos};
use crate::error::ConfigError;
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
    c.set(
        "bootstrap.servers",
        k.brokers.as_deref().unwrap_or_default(),
    );
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
    /// The broker refused the client's credentials, or the client does not trust the
    /// broker's certificate: a configuration error that retrying does not fix, so ingest
    /// stops with this message.
    auth_failed: Mutex<Option<String>>,
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
                    .ingest
                    .lag
                    .with_label_values(&[&format!("{name}/{p}")])
                    .set((part.hi_offset - next).max(0));
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // Broker outages, leader moves and coordinator loads land here; librdkafka retries
        // them itself. Fatal errors also pass by here and are handled by the poll loop.
        let fatal = matches!(
            error.rdkafka_error_code(),
            Some(rdkafka::error::RDKafkaErrorCode::Fatal)
        );
        let kind = if fatal { "fatal" } else { "transient" };
        use rdkafka::error::RDKafkaErrorCode as Code;
        let refused = match error.rdkafka_error_code() {
            Some(Code::Authentication | Code::SaslAuthenticationFailed) => Some(format!(
                "the broker refused the credentials: {error} ({reason}); check kafka.properties \
                 (security.protocol, sasl.mechanisms, sasl.username, sasl.password)"
            )),
            // A certificate the client does not trust never becomes trusted by retrying.
            Some(Code::SSL) if reason.contains("certificate verify failed") => Some(format!(
                "TLS to the broker failed, its certificate is not trusted: {error} ({reason}); \
                 check kafka.properties (ssl.ca.location, ssl.endpoint.identification.algorithm)"
            )),
            _ => None,
        };
        if let Some(message) = refused {
            *self.auth_failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
        }
        self.metrics
            .ingest
            .kafka_errors
            .with_label_values(&[kind])
            .inc();
        tracing::warn!(%error, reason, kind, "kafka client error");
    }
}

impl IngestContext {
    /// Takes newly assigned partitions, each at the offset the store holds for it where it
    /// holds one (Kafka's committed offset or `auto.offset.reset` otherwise).
    fn assign(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
        cooperative: bool,
    ) {
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
            if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(*offset)) {
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
                self.metrics.ingest.assigned.set(self.assignment.count());
                self.metrics
                    .ingest
                    .rebalances
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

    /// Gives up revoked partitions after making the open batch durable and committing it.
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList, cooperative: bool) {
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
        self.metrics.ingest.assigned.set(self.assignment.count());
        self.metrics
            .ingest
            .rebalances
            .with_label_values(&["revoke"])
            .inc();
        tracing::info!(partitions = n, "partitions revoked");
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
                self.assign(consumer, tpl, cooperative)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoke(consumer, tpl, cooperative)
            }
            other => {
                tracing::error!(error = ?other, "rebalance error; releasing the assignment");
                self.metrics
                    .ingest
                    .rebalances
                    .with_label_values(&["error"])
                    .inc();
                let _ = consumer.unassign();
                self.assignment.partitions.store(0, Ordering::Relaxed);
                self.metrics.ingest.assigned.set(0);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            commit_failed(&self.metrics, &e);
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
        commit_failed(&consumer.context().metrics, &e);
    }
}

/// Counts a failed offset commit and warns on the 1st, 2nd, 4th, 8th... (an outage fails
/// every batch's commit). Kafka's committed offsets are informational (lag seen by other
/// tools); ingest resumes from the offsets in RocksDB, so nothing else is done.
fn commit_failed(metrics: &Metrics, error: &rdkafka::error::KafkaError) {
    metrics.ingest.commit_failures.inc();
    let n = metrics.ingest.commit_failures.get();
    if n.is_power_of_two() {
        tracing::warn!(
            %error,
            failures = n,
            "offset commit to kafka failed; ingest resumes from the store's offsets, only the \
             lag other tools read from kafka lags behind"
        );
    }
}

/// When the consumer last made progress (a poll that returned a record or nothing, without
/// a fatal error): `/healthz` fails once that is longer ago than `kafka.stall_timeout_seconds`.
#[derive(Debug)]
pub struct Liveness {
    started: Instant,
    last_ms: AtomicU64,
    stall_after: Option<Duration>,
}

impl Liveness {
    /// Starts alive; without `stall_after` it never reports a stall.
    pub fn new(stall_after: Option<Duration>) -> Liveness {
        Liveness {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            stall_after,
        }
    }

    /// Marks progress now.
    pub fn beat(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the last progress.
    pub fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// False once no progress was made for longer than the stall timeout.
    pub fn healthy(&self) -> bool {
        self.stall_after
            .is_none_or(|limit| self.since_progress() <= limit)
    }
}

/// Fatal consumer errors recovered by recreating the consumer within `FATAL_WINDOW` before
/// the source gives up and exits non-zero (a supervisor restarts it).
const MAX_FATAL_IN_WINDOW: usize = 5;
const FATAL_WINDOW: Duration = Duration::from_secs(300);

/// What the Kafka source reads: the `[kafka]` section, `[ingest]`'s batch bounds and whether
/// `kafka.label_topics` are consumed (`labels.enabled`).
#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    pub kafka: KafkaConfig,
    pub ingest: IngestConfig,
    pub consume_label_topics: bool,
}

/// Creates the consumer with its context and subscribes to the configured topics.
fn subscribe(
    config: &KafkaSourceConfig,
    context: IngestContext,
) -> Result<BaseConsumer<IngestContext>, IngestError> {
    let k = &config.kafka;
    let mut cc = client_config(k, ClientRole::Consumer);
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", k.auto_offset_reset.as_str())
        .set("enable.partition.eof", "false");
    for (key, value) in CONSUMER_DEFAULTS {
        if !k.properties.contains_key(*key) && !k.consumer_properties.contains_key(*key) {
            cc.set(*key, *value);
        }
    }
    let consumer: BaseConsumer<IngestContext> = cc
        .create_with_context(context)
        .map_err(|e| IngestError::kafka("cannot create the consumer", e))?;
    let label_topics = if config.consume_label_topics {
        &k.label_topics[..]
    } else {
        &[]
    };
    let topics: Vec<&str> = k
        .topics
        .iter()
        .chain(label_topics)
        .map(|s| s.as_str())
        .collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| IngestError::kafka(format!("cannot subscribe to {topics:?}"), e))?;
    Ok(consumer)
}

/// A running Kafka source.
pub struct KafkaSource {
    consumer: BaseConsumer<IngestContext>,
    config: KafkaSourceConfig,
    pipeline: Arc<Mutex<Pipeline>>,
    metrics: Metrics,
    assignment: Arc<Assignment>,
    liveness: Arc<Liveness>,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics.
    pub fn new(
        config: &KafkaSourceConfig,
        pipeline: Arc<Mutex<Pipeline>>,
        metrics: Metrics,
        assignment: Arc<Assignment>,
        liveness: Arc<Liveness>,
    ) -> Result<KafkaSource, IngestError> {
        let context = IngestContext {
            pipeline: pipeline.clone(),
            metrics: metrics.clone(),
            assignment: assignment.clone(),
            failed: AtomicBool::new(false),
            auth_failed: Mutex::new(None),
        };
        let consumer = subscribe(config, context)?;
        liveness.beat();
        Ok(KafkaSource {
            consumer,
            config: config.clone(),
            pipeline,
            metrics,
            assignment,
            liveness,
        })
    }

    /// The consumer's fatal error, if it has one (it can then consume nothing more).
    fn fatal_error(&self) -> Option<String> {
        self.consumer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    /// Replaces a consumer that hit a fatal error (a fenced static member, say) by a new one.
    /// The open batch is made durable first; the new consumer's assignment starts at the
    /// stored offsets, so nothing is lost or doubled.
    fn recreate(&mut self, error: &str) -> Result<(), IngestError> {
        self.pipeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flush()?;
        self.metrics.ingest.consumer_restarts.inc();
        tracing::warn!(
            error,
            "fatal consumer error: recreating the consumer; it resumes from the stored offsets"
        );
        self.assignment.partitions.store(0, Ordering::Relaxed);
        self.metrics.ingest.assigned.set(0);
        let context = IngestContext {
            pipeline: self.pipeline.clone(),
            metrics: self.metrics.clone(),
            assignment: self.assignment.clone(),
            failed: AtomicBool::new(false),
            auth_failed: Mutex::new(None),
        };
        // The successor is subscribed first; it joins on its first polls, after the old
        // consumer is dropped here. Closing a fenced consumer fails at once ("consumer queue
        // close error"), and a static member's close does not leave the group: the
        // successor, with the same instance id, takes its place (partitions assigned 60 ms
        // later in tests/kafka_faults.rs).
        let fresh = subscribe(&self.config, context)?;
        let old = std::mem::replace(&mut self.consumer, fresh);
        drop(old);
        Ok(())
    }

    /// Fails on a refused authentication; recreates the consumer after a fatal error
    /// (true: the open batch is gone with the old consumer), and fails after more than
    /// `MAX_FATAL_IN_WINDOW` of them in `FATAL_WINDOW` (`fatal_at`: when they happened).
    fn recover_faults(&mut self, fatal_at: &mut Vec<Instant>) -> Result<bool, IngestError> {
        let auth = self
            .consumer
            .context()
            .auth_failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(message) = auth {
            return Err(IngestError::kafka("the broker refused the client", message));
        }
        let Some(error) = self.fatal_error() else {
            return Ok(false);
        };
        fatal_at.retain(|t| t.elapsed() < FATAL_WINDOW);
        fatal_at.push(Instant::now());
        if fatal_at.len() > MAX_FATAL_IN_WINDOW {
            return Err(IngestError::kafka(
                format!(
                    "{} fatal consumer errors within {} s, the last",
                    fatal_at.len(),
                    FATAL_WINDOW.as_secs()
                ),
                error,
            ));
        }
        self.recreate(&error)?;
        Ok(true)
    }

    /// Consumes until `shutdown` is cancelled or an error stops ingest. On shutdown the open
    /// batch is made durable and its offsets committed before returning. Fatal consumer
    /// errors are recovered by recreating the consumer, up to `MAX_FATAL_IN_WINDOW` times in
    /// `FATAL_WINDOW`; then the source fails, so that the daemon exits non-zero.
    pub fn run(mut self, shutdown: &CancellationToken) -> Result<(), IngestError> {
        let max_wait = self.config.ingest.batch_max_wait;
        let max_records = self.config.ingest.batch_max_records as u64;
        let pipeline = self.pipeline.clone();
        let lock = || pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let mut fatal_at: Vec<Instant> = Vec::new();
        // When the open batch began; checked on idle polls and every 256 records, so the
        // clock is not read per record.
        let mut opened: Option<Instant> = None;
        let mut since_fatal_check = 0u32;
        let result = loop {
            if shutdown.is_cancelled() {
                break Ok(());
            }
            if self.consumer.context().failed.load(Ordering::SeqCst) {
                break Err(IngestError::Stopped);
            }
            since_fatal_check += 1;
            if since_fatal_check >= 1024 {
                since_fatal_check = 0;
                match self.recover_faults(&mut fatal_at) {
                    Ok(false) => {}
                    Ok(true) => {
                        opened = None;
                        continue;
                    }
                    Err(e) => break Err(e),
                }
            }
            let poll_timeout = if opened.is_some() {
                Duration::from_millis(10).min(max_wait)
            } else {
                Duration::from_millis(100)
            };
            let (open, idle) = match self.consumer.poll(poll_timeout) {
                None => {
                    // An idle poll checks for a fatal error at the next turn.
                    since_fatal_check = 1024;
                    self.liveness.beat();
                    (lock().open_records(), true)
                }
                Some(Err(e)) => {
                    // Transient broker errors surface here; librdkafka retries by itself.
                    since_fatal_check = 1024;
                    self.metrics
                        .ingest
                        .kafka_errors
                        .with_label_values(&["transient"])
                        .inc();
                    tracing::warn!(%e, "consumer error");
                    (lock().open_records(), true)
                }
                Some(Ok(msg)) => {
                    let pos = SourcePos {
                        topic: msg.topic(),
                        partition: msg.partition(),
                        offset: msg.offset(),
                        next: msg.offset() + 1,
                    };
                    let res = lock().process(pos, msg.key(), msg.payload().unwrap_or(&[]));
                    drop(msg);
                    match res {
                        Ok(open) => {
                            if open % 256 == 0 {
                                self.liveness.beat();
                            }
                            (open, false)
                        }
                        Err(e) => break Err(e),
                    }
                }
            };
            if open == 0 {
                opened = None;
                if idle {
                    // Nothing open: the batch last handed to the store's writer is waited
                    // for, so that its offsets are committed while the topic is quiet.
                    match lock().settle() {
                        Ok(report) => commit(&self.consumer, &report, CommitMode::Async),
                        Err(e) => break Err(e),
                    }
                }
                continue;
            }
            let started = *opened.get_or_insert_with(Instant::now);
            let check_clock = idle || open % 256 == 0;
            if open >= max_records || (check_clock && started.elapsed() >= max_wait) {
                // Written behind: the next records are processed while this batch is written;
                // the report is of the batch before, durable now.
                let report = lock().flush_behind();
                match report {
                    Ok(report) => commit(&self.consumer, &report, CommitMode::Async),
                    Err(e) => break Err(e),
                }
                opened = None;
            }
        };
        let last = lock().flush();
        let (result, report) = match (result, last) {
            (Ok(()), Ok(report)) => (Ok(()), Some(report)),
            (Ok(()), Err(e)) => (Err(e), None),
            (Err(e), _) => (Err(e), None),
        };
        close(self.consumer, report, CLOSE_TIMEOUT);
        result
    }
}

/// Longest the consumer's close may hold up a stop. Every offset is in the store by then:
/// the commit and the group leave only tell the broker (lag tools, a faster rebalance).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Commits `report`, unsubscribes and closes `consumer` (librdkafka revokes, commits and
/// leaves the group) on a thread of its own, waited for at most `timeout`. With the broker
/// going away the close blocks up to `session.timeout.ms` (45 s by default), beyond
/// `shutdown.grace_seconds`: measured 2026-12-06, SIGTERM 0.3-1 s after the broker's stop
/// while records were arriving, the daemon exited 1 at the grace's end in 4 of 4 tries. A
/// close that does not finish in time is left behind (the process exits without it), with a
/// warning; its consumer's pipeline is then not dropped, as after a kill, which the store's
/// write batches make safe.
fn close(consumer: BaseConsumer<IngestContext>, report: Option<FlushReport>, timeout: Duration) {
    let (done, finished) = std::sync::mpsc::channel();
    let closing = move || {
        if let Some(report) = report {
            commit(&consumer, &report, CommitMode::Sync);
        }
        consumer.unsubscribe();
        drop(consumer);
        let _ = done.send(());
    };
    if let Err(e) = std::thread::Builder::new()
        .name("relearn-kafka-close".into())
        .spawn(closing)
    {
        // The closure (and the consumer) went with the failed spawn: dropped, closed here.
        tracing::warn!(error = %e, "cannot start a thread to close the kafka consumer");
        return;
    }
    if finished.recv_timeout(timeout).is_err() {
        tracing::warn!(
            timeout_seconds = timeout.as_secs(),
            "the kafka consumer did not close in time (broker unreachable?); exiting without \
             it: every offset is in the store"
        );
    }
}

/// Where a partition with no offset stored in RocksDB nor committed in Kafka starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// At the oldest record the broker keeps.
    Earliest,
    /// At the next record produced.
    Latest,
}

impl OffsetReset {
    /// librdkafka's `auto.offset.reset` value.
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
        }
    }
}

/// The Kafka source. When `brokers` is empty the file source runs instead.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`. Empty: use the file source.
    #[serde(with = "crate::units::opt_string")]
    pub brokers: Option<String>,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Topics of label records (delayed labels, `labels.enabled`): each record carries
    /// `schema.key` and `schema.label` only (CSV columns: `labels.label_columns`). Consumed
    /// in the same group, their offsets stored with the joins they produced.
    pub label_topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Topic that receives every record that cannot be decoded, with its reason in headers.
    pub dead_letter_topic: String,
    /// Topic that receives the serving model's prediction for every scored record (JSON:
    /// key, source position, model version, class and probabilities or value, time), keyed
    /// by the record's key, the source position in headers; idempotent producer, delivered
    /// before the batch's offsets are stored (at least once: deduplicate on the headers).
    /// Empty: none.
    #[serde(with = "crate::units::opt_string")]
    pub predictions_topic: Option<String>,
    /// Where to start in a partition with no offset stored in RocksDB nor committed in Kafka:
    /// `earliest` or `latest`.
    pub auto_offset_reset: OffsetReset,
    /// Extra librdkafka properties passed through unchanged to the consumer and the producer
    /// (SASL, TLS...). Keys the daemon manages itself are refused.
    pub properties: std::collections::BTreeMap<String, String>,
    /// librdkafka properties for the consumer only (`session.timeout.ms`,
    /// `group.instance.id`, fetch tuning...); applied after `properties`.
    pub consumer_properties: std::collections::BTreeMap<String, String>,
    /// librdkafka properties for the dead-letter producer only; applied after `properties`.
    pub producer_properties: std::collections::BTreeMap<String, String>,
    /// Largest dead letter produced, in bytes (payload, key and headers). A larger malformed
    /// record is dead-lettered with its payload truncated to fit; headers carry its original
    /// size and SHA-256. Keep it at or below the dead-letter topic's `max.message.bytes`
    /// (a letter the broker still refuses as too large is resent with a 1 KiB prefix).
    pub dead_letter_max_bytes: usize,
    /// `/healthz` answers 503 once the consumer has made no progress (no successful poll)
    /// for this many seconds: a fatal consumer error that could not be recovered, or a
    /// broker outage longer than this, so a supervisor restarts the daemon. 0 = never.
    #[serde(rename = "stall_timeout_seconds", with = "crate::units::opt_seconds")]
    pub stall_timeout: Option<Duration>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: None,
            topics: vec!["relearn.records".into()],
            label_topics: Vec::new(),
            group_id: "relearn".into(),
            dead_letter_topic: "relearn.dead-letter".into(),
            predictions_topic: None,
            auto_offset_reset: OffsetReset::Earliest,
            properties: std::collections::BTreeMap::new(),
            consumer_properties: std::collections::BTreeMap::new(),
            producer_properties: std::collections::BTreeMap::new(),
            dead_letter_max_bytes: 1_000_000,
            stall_timeout: Some(Duration::from_secs(300)),
        }
    }
}

/// The smallest `kafka.dead_letter_max_bytes`: room for the headers and a payload prefix.
pub const MIN_DEAD_LETTER_BYTES: usize = 4096;

/// librdkafka properties the daemon sets itself; a pass-through may not override them, since
/// exactly-once state depends on them.
pub const MANAGED_KAFKA_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
];

impl KafkaConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let k = self;
        if k.topics.is_empty() || k.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ConfigError::key(
                "kafka.topics",
                "at least one non-empty topic is required",
            ));
        }
        if k.group_id.trim().is_empty() {
            return Err(ConfigError::key("kafka.group_id", "must not be empty"));
        }
        if k.dead_letter_topic.trim().is_empty() {
            return Err(ConfigError::key(
                "kafka.dead_letter_topic",
                "must not be empty: malformed records must go somewhere",
            ));
        }
        if k.topics.contains(&k.dead_letter_topic) || k.label_topics.contains(&k.dead_letter_topic)
        {
            return Err(ConfigError::key(
                "kafka.dead_letter_topic",
                "must differ from the consumed topics",
            ));
        }
        if k.predictions_topic
            .as_ref()
            .is_some_and(|p| k.topics.contains(p) || k.label_topics.contains(p))
        {
            return Err(ConfigError::key(
                "kafka.predictions_topic",
                "must differ from the consumed topics",
            ));
        }
        if let Some(t) = k
            .label_topics
            .iter()
            .find(|t| t.trim().is_empty() || k.topics.contains(t))
        {
            return Err(ConfigError::key(
                "kafka.label_topics",
                format!("`{t}` is empty or also in kafka.topics (a label on the record topics needs no label topic)"),
            ));
        }
        if k.dead_letter_max_bytes < MIN_DEAD_LETTER_BYTES {
            return Err(ConfigError::key(
                "kafka.dead_letter_max_bytes",
                format!(
                    "must be at least {} (room for the headers and a payload prefix), got {}",
                    MIN_DEAD_LETTER_BYTES, k.dead_letter_max_bytes
                ),
            ));
        }
        for (section, map) in [
            ("properties", &k.properties),
            ("consumer_properties", &k.consumer_properties),
            ("producer_properties", &k.producer_properties),
        ] {
            for key in map.keys() {
                if MANAGED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                    return Err(ConfigError::key(
                        format!("kafka.{section}.\"{key}\""),
                        "is managed by relearn; use the dedicated key or leave it out",
                    ));
                }
            }
        }
        Ok(())
    }
}
