//! Ingest throughput against a real broker: records/s of a consumer that only reads, and
//! records/s of the daemon's Kafka source into durable RocksDB state, measured on the same
//! broker and topic in one run, with the process's resident memory while ingesting.
//!
//! `cargo bench --bench ingest_throughput` (N = 1,000,000 records; RELEARN_BENCH_RECORDS
//! overrides). Under `cargo test` it runs a small smoke pass that checks the counts only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use relearn::config::Config;
use relearn::ingest::kafka::{Assignment, KafkaSource, Liveness};
use relearn::ingest::{Decoder, FileDeadLetters, Pipeline};
use relearn::metrics::Metrics;
use relearn::store::{KvStore, RocksStore};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// A client config with the daemon's consumer defaults, so every reader fetches alike.
fn reader_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (k, v) in relearn::ingest::kafka::CONSUMER_DEFAULTS {
        c.set(*k, *v);
    }
    c
}

/// Assigned partitions, read from the beginning; the clock starts at the first record.
fn raw_read(brokers: &str, topic: &str, n: usize) -> Duration {
    let consumer: BaseConsumer = reader_config(brokers, &common::unique("raw"))
        .create()
        .expect("raw consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let (mut count, mut bytes) = (0usize, 0usize);
    let mut start = None;
    while count < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            start.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, |p| p.len());
            count += 1;
        }
    }
    assert!(bytes > 0);
    start.map(|s| s.elapsed()).unwrap_or_default()
}

/// A consumer-group member (subscribe) that only reads, like the daemon's consumer.
fn group_read(brokers: &str, topic: &str, n: usize) -> Duration {
    let consumer: BaseConsumer = reader_config(brokers, &common::unique("group-raw"))
        .create()
        .expect("group consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut count = 0usize;
    let mut start = None;
    while count < n {
        if let Some(Ok(_m)) = consumer.poll(Duration::from_millis(100)) {
            start.get_or_insert_with(Instant::now);
            count += 1;
        }
    }
    start.map(|s| s.elapsed()).unwrap_or_default()
}

fn durable_ingest(brokers: &str, topic: &str, n: usize) -> (Duration, Vec<f64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Config::default();
    c.kafka.brokers = Some(brokers.into());
    c.kafka.topics = vec![topic.into()];
    c.kafka.group_id = common::unique("bench");
    c.kafka.dead_letter_topic = common::unique("bench-dead");
    c.store.path = Some(dir.path().to_path_buf());
    // RELEARN_BENCH_PROPS="key=value,key=value": librdkafka pass-through properties to try.
    for kv in std::env::var("RELEARN_BENCH_PROPS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = kv.split_once('=') {
            c.kafka.properties.insert(k.trim().into(), v.trim().into());
        }
    }
    let store: Arc<dyn KvStore> = Arc::new(RocksStore::open(dir.path(), false).expect("store"));
    let metrics = Metrics::new();
    let pipeline = Arc::new(Mutex::new(
        Pipeline::open(
            &c.pipeline(),
            store,
            Decoder::new(&c.schema).expect("decoder"),
            Box::new(FileDeadLetters::open(dir.path().join("dead.jsonl")).expect("dlq")),
            metrics.clone(),
        )
        .expect("pipeline"),
    ));
    let source = KafkaSource::new(
        &c.kafka_source(),
        pipeline,
        metrics.clone(),
        Arc::new(Assignment::default()),
        Arc::new(Liveness::new(None)),
    )
    .expect("source");
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    let worker = std::thread::spawn(move || source.run(&stop2));
    // The clock starts at the first durable record, so group join time is not counted.
    while metrics.ingest.records.get() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    let first = metrics.ingest.records.get();
    let mut rss = Vec::new();
    let mut next_quarter = 1;
    while (metrics.ingest.records.get() as usize) < n {
        let done = metrics.ingest.records.get() as usize;
        if done * 4 >= next_quarter * n {
            rss.push(rss_mib());
            next_quarter += 1;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let t = start.elapsed();
    rss.push(rss_mib());
    stop.cancel();
    worker.join().expect("worker").expect("source ran cleanly");
    let counted = metrics.ingest.records.get() - first;
    (t.mul_f64(n as f64 / counted.max(1) as f64), rss)
}

/// The pipeline alone (decode, replay, RocksDB batches), fed from memory: no Kafka.
fn pipeline_only(payloads: &[Vec<u8>]) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = Config::default();
    let store: Arc<dyn KvStore> = Arc::new(RocksStore::open(dir.path(), false).expect("store"));
    let mut p = Pipeline::open(
        &c.pipeline(),
        store,
        Decoder::new(&c.schema).expect("decoder"),
        Box::new(FileDeadLetters::open(dir.path().join("dead.jsonl")).expect("dlq")),
        Metrics::new(),
    )
    .expect("pipeline");
    let start = Instant::now();
    for (i, payload) in payloads.iter().enumerate() {
        let pos = relearn::ingest::SourcePos {
            topic: "mem",
            partition: 0,
            offset: i as i64,
            next: i as i64 + 1,
        };
        if p.process(pos, None, payload).expect("process") >= 4096 {
            p.flush().expect("flush");
        }
    }
    p.flush().expect("flush");
    start.elapsed()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        std::env::var("RELEARN_BENCH_RECORDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    } else {
        5_000
    };
    let brokers = common::broker();
    let topic = common::unique("bench-ingest");
    common::create_topic(&brokers, &topic, PARTITIONS);
    // Elec2-shaped CSV lines (8 fields, ~60 bytes).
    let payloads: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let x = (i % 1000) as f64 / 1000.0;
            format!(
                "{},{},{x:.6},{:.6},0.003467,0.422915,0.414912,{}",
                i % 7 + 1,
                x,
                1.0 - x,
                if i % 3 == 0 { "UP" } else { "DOWN" }
            )
            .into_bytes()
        })
        .collect();
    let memory = pipeline_only(&payloads);
    let produce_start = Instant::now();
    common::produce(&brokers, &topic, PARTITIONS, &payloads);
    let produced = produce_start.elapsed();
    drop(payloads);

    let raw = raw_read(&brokers, &topic, n);
    let group = group_read(&brokers, &topic, n);
    let (durable, rss) = durable_ingest(&brokers, &topic, n);
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("| measure | records | seconds | records/s |");
    println!("|---|---|---|---|");
    println!(
        "| produce (setup) | {n} | {:.2} | {:.0} |",
        produced.as_secs_f64(),
        rate(produced)
    );
    println!(
        "| raw read (consumer only) | {n} | {:.2} | {:.0} |",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "| group read (subscribe, consumer only) | {n} | {:.2} | {:.0} |",
        group.as_secs_f64(),
        rate(group)
    );
    println!(
        "| pipeline only, from memory (decode + replay + RocksDB batches) | {n} | {:.2} | {:.0} |",
        memory.as_secs_f64(),
        rate(memory)
    );
    println!(
        "| durable ingest (decode + replay + RocksDB batch + offsets) | {n} | {:.2} | {:.0} |",
        durable.as_secs_f64(),
        rate(durable)
    );
    println!(
        "durable/raw = {:.2}, durable/group = {:.2}; RSS MiB at 25/50/75/100% of ingest: {:?}",
        rate(durable) / rate(raw),
        rate(durable) / rate(group),
        rss.iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
}
