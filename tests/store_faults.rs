//! A store whose disk fills up: RocksDB (real, in a temporary directory) behind a wrapper that
//! refuses writes while the "disk" is full, with the daemon's own file source, pipeline and
//! learning loop on top. A refused batch stops ingest with an error that names the store
//! (never a silent stall, nothing half-written); once space is back, a restart resumes from
//! the stored offsets and every record is counted exactly once.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use relearn::config::Config;
use relearn::ingest::file::FileSource;
use relearn::ingest::pipeline::Pipeline;
use relearn::ingest::{Decoder, FileDeadLetters, IngestError};
use relearn::learner::{Learner, LoopHandle};
use relearn::metrics::Metrics;
use relearn::store::{Cf, KvStore, RocksStore, StoreError, WriteBatch};
use tokio_util::sync::CancellationToken;

const N: usize = 20_000;

/// RocksDB that answers "no space left on device" to writes once `full` is set, after
/// `writes_before_full` successful writes.
struct FillingStore {
    inner: RocksStore,
    writes: AtomicU64,
    writes_before_full: u64,
    full: AtomicBool,
}

impl KvStore for FillingStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(cf, key)
    }

    fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.writes_before_full {
            self.full.store(true, Ordering::SeqCst);
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(StoreError::Write(
                "IO error: No space left on device (os error 28)".into(),
            ));
        }
        self.inner.write(batch)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<relearn::store::Pairs, StoreError> {
        self.inner.scan_prefix(cf, prefix)
    }
}

fn config(dir: &std::path::Path) -> Config {
    let input = dir.join("stream.csv");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, "a,b,y").unwrap();
    for i in 0..N {
        // One record in 100 is malformed: its dead letter must not be lost or doubled either.
        if i % 100 == 42 {
            writeln!(f, "{i},oops,1").unwrap();
        } else {
            writeln!(f, "{},{},{}", (i % 17) as f32 * 0.5, (i % 5) as f32, i % 2).unwrap();
        }
    }
    let mut c = Config::default();
    c.schema.features = vec!["a".into(), "b".into()];
    c.schema.label = Some("y".into());
    c.schema.classes = vec!["0".into(), "1".into()];
    c.file.path = Some(input.to_path_buf());
    c.file.dead_letter_path = Some(dir.join("dead.jsonl"));
    c.ingest.batch_max_records = 1_000;
    c.validate().expect("a valid config");
    c
}

/// What `relearn run` does with a file source, on `store`.
fn run(config: &Config, store: Arc<dyn KvStore>, metrics: &Metrics) -> Result<(), IngestError> {
    let decoder = Decoder::new(&config.schema).expect("decoder");
    let dead = Box::new(FileDeadLetters::open(
        config
            .file
            .dead_letter_path
            .clone()
            .expect("the test sets a dead-letter file"),
    )?);
    let mut pipeline = Pipeline::open(
        &config.pipeline(),
        store.clone(),
        decoder,
        dead,
        metrics.clone(),
    )?;
    let learner = Learner::open(
        &config.learner(),
        store,
        metrics.clone(),
        LoopHandle::default(),
        relearn::learner::Pace::Replay,
    )
    .expect("the learning loop opens");
    pipeline.set_observer(Box::new(learner));
    let pipeline = Arc::new(Mutex::new(pipeline));
    FileSource::open(&config.file, &config.schema, &config.ingest)?
        .run(&pipeline, &CancellationToken::new())
        .map(|_| ())
}

#[test]
fn a_full_disk_stops_ingest_and_a_restart_resumes_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let store = Arc::new(FillingStore {
        inner: RocksStore::open(&dir.path().join("store"), false).unwrap(),
        writes: AtomicU64::new(0),
        writes_before_full: 7,
        full: AtomicBool::new(false),
    });
    let metrics = Metrics::new();
    let err = run(&c, store.clone(), &metrics).expect_err("a full disk stops ingest");
    // The error says what failed and, through its sources, why.
    let text = relearn::error::Chain(&err).to_string();
    assert!(
        text.contains("store write failed") && text.contains("No space left on device"),
        "{text}"
    );
    assert_eq!(
        metrics.store.write_errors.get(),
        1,
        "one refused batch, then stop"
    );
    let stored = relearn::inspect::report(store.as_ref()).unwrap();
    let before = stored.counters.get("records").copied().unwrap_or(0);
    assert!(
        before > 0 && before < N as u64,
        "stopped part way: {before} records durable"
    );
    assert_eq!(
        before % 1_000,
        0,
        "only whole batches are durable: {before}"
    );

    // Space is back: a restart resumes from the stored offsets.
    store.full.store(false, Ordering::SeqCst);
    let store = Arc::new(FillingStore {
        writes_before_full: u64::MAX,
        writes: AtomicU64::new(0),
        full: AtomicBool::new(false),
        inner: Arc::try_unwrap(store)
            .ok()
            .expect("no other owner of the store")
            .inner,
    });
    run(&c, store.clone(), &Metrics::new()).expect("the restart reads to the end");
    let report = relearn::inspect::report(store.as_ref()).unwrap();
    let bad = (0..N).filter(|i| i % 100 == 42).count() as u64;
    assert_eq!(report.counters["records"], N as u64);
    assert_eq!(report.counters["malformed/non_numeric"], bad);
    assert_eq!(report.counters["labeled"], N as u64 - bad);
    let letters = std::fs::read_to_string(c.file.dead_letter_path.as_ref().unwrap()).unwrap();
    let mut offsets: Vec<i64> = letters
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["offset"]
                .as_i64()
                .unwrap()
        })
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    // Dead letters are delivered at least once: the batch refused by the full disk may have
    // written its letters before the store refused it, so count distinct source positions.
    assert_eq!(
        offsets.len() as u64,
        bad,
        "every malformed record dead-lettered"
    );
    assert!(report.active_version.is_some(), "the loop learned on");
}
