//! Ingestion from a real Kafka broker: 100k records with 1k malformed of each kind. The store's
//! counters, offsets and replay buffer, the metrics and the dead-letter topic must all match
//! what was produced, exactly.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::*;
use relearn::config::{Config, Format};
use relearn::ingest::dlq::header as dlq;
use relearn::ingest::Reason;
use relearn::record::{Label, Record};
use relearn::store::{KvStore, MemoryStore, ReplayBuffer, RocksStore, WriteBatch};
use tokio_util::sync::CancellationToken;

const N: usize = 100_000;

/// What record `i` of the stream is: good (with or without a label) or malformed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Good { label: Option<u32> },
    Bad(Reason),
}

/// Malformed kinds per format; `i % 100 == k` makes record i the k-th kind (1,000 each).
fn bad_kinds(format: Format) -> Vec<(Reason, &'static str)> {
    match format {
        Format::Json => vec![
            (Reason::InvalidJson, "truncated"),
            (Reason::MissingField, "missing"),
            (Reason::NonNumeric, "text"),
            (Reason::NonFinite, "nan"),
            (Reason::NonFinite, "inf"),
            (Reason::UnknownLabel, "label"),
            (Reason::TooLarge, "large"),
        ],
        Format::Csv => vec![
            (Reason::InvalidCsv, "quote"),
            (Reason::MissingField, "missing"),
            (Reason::NonNumeric, "text"),
            (Reason::NonFinite, "nan"),
            (Reason::NonFinite, "inf"),
            (Reason::WrongFieldCount, "count"),
            (Reason::UnknownLabel, "label"),
            (Reason::TooLarge, "large"),
        ],
    }
}

fn record(format: Format, i: usize) -> (Kind, Vec<u8>) {
    let kinds = bad_kinds(format);
    let pad = "x".repeat(300);
    if let Some((reason, how)) = kinds.get(i % 100) {
        let p = match (format, *how) {
            (Format::Json, "truncated") => format!("{{\"a\": {i}, \"b\": "),
            (Format::Json, "missing") => format!("{{\"a\":{i},\"c\":1,\"y\":\"pos\"}}"),
            (Format::Json, "text") => format!("{{\"a\":{i},\"b\":\"abc\",\"c\":1,\"y\":\"pos\"}}"),
            (Format::Json, "nan") => format!("{{\"a\":{i},\"b\":\"NaN\",\"c\":1,\"y\":\"pos\"}}"),
            (Format::Json, "inf") => {
                format!("{{\"a\":{i},\"b\":\"-Infinity\",\"c\":1,\"y\":\"pos\"}}")
            }
            (Format::Json, "label") => format!("{{\"a\":{i},\"b\":1,\"c\":1,\"y\":\"maybe\"}}"),
            (Format::Json, "large") => {
                format!("{{\"a\":{i},\"b\":1,\"c\":1,\"y\":\"pos\",\"pad\":\"{pad}\"}}")
            }
            (Format::Csv, "quote") => format!("{i},\"1,2,pos"),
            (Format::Csv, "missing") => format!("{i},,2,pos"),
            (Format::Csv, "text") => format!("{i},abc,2,pos"),
            (Format::Csv, "nan") => format!("{i},NaN,2,pos"),
            (Format::Csv, "inf") => format!("{i},inf,2,pos"),
            (Format::Csv, "count") => format!("{i},1,pos"),
            (Format::Csv, "label") => format!("{i},1,2,maybe"),
            (Format::Csv, "large") => format!("{i},1,2,pos,{pad}"),
            other => unreachable!("{other:?}"),
        };
        return (Kind::Bad(*reason), p.into_bytes());
    }
    let label = if i % 7 == 0 {
        None
    } else {
        Some((i % 2) as u32)
    };
    let y = match label {
        None => "",
        Some(0) => "neg",
        Some(_) => "pos",
    };
    let b = i as f64 * 0.5;
    let p = match (format, label) {
        (Format::Json, None) => format!("{{\"a\":{i},\"b\":{b},\"c\":\"1.25\"}}"),
        (Format::Json, Some(_)) => format!("{{\"a\":{i},\"b\":{b},\"c\":\"1.25\",\"y\":\"{y}\"}}"),
        (Format::Csv, _) => format!("{i},{b},1.25,{y}"),
    };
    (Kind::Good { label }, p.into_bytes())
}

fn good_record(i: usize, label: Option<u32>) -> Record {
    Record {
        features: vec![i as f32, (i as f64 * 0.5) as f32, 1.25],
        label: label.map(Label::Class),
        key: None,
        timestamp_ms: None,
    }
}

fn config(format: Format, brokers: &str, topic: &str, dlq_topic: &str, store: &str) -> Config {
    let mut c = Config::default();
    c.kafka.brokers = Some(brokers.into());
    c.kafka.topics = vec![topic.into()];
    c.kafka.group_id = unique("group");
    c.kafka.dead_letter_topic = dlq_topic.into();
    c.schema.format = format;
    c.schema.features = vec!["a".into(), "b".into(), "c".into()];
    c.schema.label = Some("y".into());
    c.schema.classes = vec!["neg".into(), "pos".into()];
    c.schema.max_record_bytes = 256;
    // Today's strict decoding: gaps and `NaN` are dead letters.
    c.schema.missing = relearn::config::MissingPolicy::Reject;
    c.schema.missing_tokens.clear();
    c.store.path = Some(store.into());
    c.replay.capacity = 5_000;
    c.replay.seed = 7;
    c.http.listen = format!("127.0.0.1:{}", free_port());
    c.validate().expect("test config is valid");
    c
}

fn run_case(format: Format, partitions: i32) {
    let brokers = broker();
    let topic = unique("ingest");
    let dlq_topic = unique("dead");
    create_topic(&brokers, &topic, partitions);
    create_topic(&brokers, &dlq_topic, 1);

    let stream: Vec<(Kind, Vec<u8>)> = (0..N).map(|i| record(format, i)).collect();
    let payloads: Vec<Vec<u8>> = stream.iter().map(|(_, p)| p.clone()).collect();
    let placed = produce(&brokers, &topic, partitions, &payloads);
    let by_pos: HashMap<(i32, i64), usize> = placed
        .iter()
        .enumerate()
        .map(|(i, &pos)| (pos, i))
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let config = config(
        format,
        &brokers,
        &topic,
        &dlq_topic,
        dir.path().to_str().unwrap(),
    );
    let addr = config.http.listen.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shutdown = CancellationToken::new();
    let daemon = rt.spawn(relearn::app::run(config.clone(), shutdown.clone()));

    let done = wait_for(Duration::from_secs(180), || {
        let (_, body) = http_get(&addr, "/metrics")?;
        (metric(&body, "relearn_ingest_records_total")? as usize == N).then_some(body)
    });
    let (status, _) = http_get(&addr, "/readyz").expect("readyz answers");
    assert_eq!(status, 200, "ready while partitions are assigned");
    shutdown.cancel();
    let summary = rt.block_on(daemon).unwrap().expect("daemon ran cleanly");
    let body =
        done.unwrap_or_else(|| panic!("daemon did not process {N} records; summary {summary}"));

    // Expected totals.
    let mut expect_bad: BTreeMap<Reason, u64> = BTreeMap::new();
    let (mut labeled, mut unlabeled) = (0u64, 0u64);
    for (k, _) in &stream {
        match k {
            Kind::Bad(r) => *expect_bad.entry(*r).or_default() += 1,
            Kind::Good { label: Some(_) } => labeled += 1,
            Kind::Good { label: None } => unlabeled += 1,
        }
    }
    let bad_total: u64 = expect_bad.values().sum();
    assert_eq!(labeled + unlabeled + bad_total, N as u64);
    for (r, n) in &expect_bad {
        assert!(*n >= 1_000, "{r}: every listed kind has 1,000 records");
    }

    // Metrics.
    assert_eq!(
        metric_with(
            &body,
            "relearn_ingest_decoded_records_total",
            "kind",
            "labeled"
        ),
        Some(labeled as f64)
    );
    assert_eq!(
        metric_with(
            &body,
            "relearn_ingest_decoded_records_total",
            "kind",
            "unlabeled"
        ),
        Some(unlabeled as f64)
    );
    for r in Reason::ALL {
        let want = expect_bad.get(&r).copied().unwrap_or(0) as f64;
        assert_eq!(
            metric_with(
                &body,
                "relearn_ingest_malformed_records_total",
                "reason",
                r.as_str()
            ),
            Some(want),
            "metric for {r}"
        );
    }

    // Store: counters and offsets.
    let report = relearn::inspect::inspect_path(dir.path()).unwrap();
    assert_eq!(report.counters["records"], N as u64);
    assert_eq!(report.counters["labeled"], labeled);
    assert_eq!(report.counters["unlabeled"], unlabeled);
    for (r, n) in &expect_bad {
        assert_eq!(
            report.counters[&format!("malformed/{}", r.as_str())],
            *n,
            "{r}"
        );
    }
    let ends = end_offsets(&brokers, &topic, partitions);
    for (p, end) in ends.iter().enumerate() {
        assert_eq!(
            report.offsets[&format!("{topic}/{p}")],
            *end,
            "stored offset of partition {p}"
        );
    }

    // Replay buffer: sampled from good labeled records only, seen = labeled.
    let store = RocksStore::open_read_only(dir.path()).unwrap();
    let stored = ReplayBuffer::all(&store).unwrap();
    let state = report.replay.clone().expect("replay state stored");
    assert_eq!(state.reservoirs[0].seen, labeled);
    assert_eq!(stored.len(), 5_000);
    for r in &stored {
        let i = r.features[0] as usize;
        assert_eq!(
            stream[i].0,
            Kind::Good {
                label: r.label.and_then(Label::class)
            },
            "replay holds record {i}"
        );
        assert_eq!(*r, good_record(i, r.label.and_then(Label::class)));
    }
    if partitions == 1 {
        // One partition has one order: the buffer must equal the reservoir computed here.
        let mem = MemoryStore::new();
        let mut expect = ReplayBuffer::load(&mem, &config.replay, 2).unwrap();
        for (i, (k, _)) in stream.iter().enumerate() {
            if let Kind::Good { label: Some(l) } = k {
                expect.offer(&good_record(i, Some(*l)));
            }
        }
        let mut wb = WriteBatch::new();
        expect.stage(&mut wb);
        mem.write(wb).unwrap();
        assert_eq!(
            ReplayBuffer::all(&mem).unwrap(),
            stored,
            "replay buffer matches exactly"
        );
        assert_eq!(expect.state(), &state);
    }

    // Dead-letter topic: each malformed record once, with its reason and source position.
    let letters = read_all(
        &brokers,
        &dlq_topic,
        1,
        bad_total as usize,
        Duration::from_secs(60),
    );
    assert_eq!(letters.len() as u64, bad_total, "dead letters");
    let mut seen = std::collections::HashSet::new();
    let mut by_reason: BTreeMap<Reason, u64> = BTreeMap::new();
    for m in &letters {
        use rdkafka::Message;
        let src_topic = header(m, dlq::TOPIC).expect("topic header");
        assert_eq!(src_topic, topic);
        let p: i32 = header(m, dlq::PARTITION).unwrap().parse().unwrap();
        let o: i64 = header(m, dlq::OFFSET).unwrap().parse().unwrap();
        assert!(seen.insert((p, o)), "dead letter for {p}/{o} twice");
        let i = by_pos[&(p, o)];
        let reason = Reason::parse(&header(m, dlq::REASON).unwrap()).expect("known reason");
        assert_eq!(stream[i].0, Kind::Bad(reason), "reason of record {i}");
        assert!(!header(m, dlq::DETAIL).unwrap().is_empty());
        assert_eq!(
            m.payload().unwrap(),
            stream[i].1.as_slice(),
            "payload of record {i}"
        );
        *by_reason.entry(reason).or_default() += 1;
    }
    assert_eq!(by_reason, expect_bad);
}

#[test]
fn json_stream_on_one_partition_matches_exactly() {
    run_case(Format::Json, 1);
}

#[test]
fn csv_stream_on_three_partitions_matches_exactly() {
    run_case(Format::Csv, 3);
}
