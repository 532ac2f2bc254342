//! Kafka faults through the real binary: a broker stopped and restarted mid-stream (with and
//! without static membership) is waited out and the counts are exact afterwards; records of
//! 2 MB and 10 MB are dead-lettered with their payload truncated to fit, and ingest goes on;
//! a broker that requires SASL/PLAIN is consumed with the right credentials (exact counts)
//! and a wrong password stops the daemon at once with an error that names the keys (port
//! 19292); a TLS broker likewise, with its certificate trusted and not (port 19492); SASL/PLAIN
//! over TLS (SASL_SSL) with the right and a wrong password (port 19692); a static member
//! fenced by another consumer with its instance id recreates its consumer (exact counts);
//! SIGTERM while the broker shuts down under a running producer ends within the grace time
//! with status 0 and loses nothing.
//!
//! The restart tests run against a broker of their own (`PrivateBroker`, port 19192), so the
//! shared test broker that other tests use is never stopped.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use relearn::ingest::dlq::header as dlq;

/// The private broker's port (the shared test broker is on 19092).
const FAULT_BROKER_PORT: u16 = 19192;
/// The SASL/PLAIN broker's port (stopped by scripts/test.sh at exit too).
const SASL_BROKER_PORT: u16 = 19292;
/// The TLS broker's port (stopped by scripts/test.sh at exit too).
const TLS_BROKER_PORT: u16 = 19492;
/// The SASL_SSL broker's port (stopped by scripts/test.sh at exit too).
const SASL_SSL_BROKER_PORT: u16 = 19692;
const PARTITIONS: i32 = 3;

/// One restart test at a time: they stop and start the same private broker.
static PRIVATE: Mutex<()> = Mutex::new(());

/// The private broker the restart tests stop and start (plaintext, port 19192).
fn fault_broker() -> PrivateBroker {
    PrivateBroker {
        port: FAULT_BROKER_PORT,
        sasl: None,
        tls: false,
    }
}

fn payloads(from: usize, to: usize) -> Vec<Vec<u8>> {
    (from..to)
        .map(|i| {
            if i % 100 == 7 {
                format!("{i},oops,1").into_bytes()
            } else {
                format!("{i},{},{}", (i % 13) as f32 * 0.5, i % 2).into_bytes()
            }
        })
        .collect()
}

/// Writes the daemon's config and returns its consumer group id.
fn write_config(
    path: &Path,
    brokers: &str,
    topic: &str,
    store: &Path,
    addr: &str,
    extra: &str,
) -> String {
    let group = unique("fault-group");
    std::fs::write(
        path,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
topics = ["{topic}"]
group_id = "{group}"
dead_letter_topic = "{topic}-dead"
[kafka.consumer_properties]
"session.timeout.ms" = "6000"
{extra}
[schema]
format = "csv"
features = ["a", "b"]
label = "y"
classes = ["0", "1"]
[ingest]
batch_max_records = 500
batch_max_wait_ms = 20
[store]
path = "{store}"
[http]
listen = "{addr}"
"#,
            store = store.display()
        ),
    )
    .expect("write the config");
    group
}

fn processed(addr: &str) -> Option<usize> {
    let (_, body) = http_get(addr, "/metrics")?;
    metric(&body, "relearn_ingest_records_total").map(|v| v as usize)
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A daemon run's files: its store, log, config and HTTP address in a temp dir.
struct Run {
    _dir: tempfile::TempDir,
    store: std::path::PathBuf,
    log: std::path::PathBuf,
    config: std::path::PathBuf,
    addr: String,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        Run {
            store: dir.path().join("store"),
            log: dir.path().join("daemon.log"),
            config: dir.path().join("relearn.toml"),
            addr: format!("127.0.0.1:{}", free_port()),
            _dir: dir,
        }
    }

    /// Writes the config (see [`write_config`]) and returns the consumer group id.
    fn configure(&self, brokers: &str, topic: &str, extra: &str) -> String {
        write_config(&self.config, brokers, topic, &self.store, &self.addr, extra)
    }

    /// Starts the daemon and waits until it processed `n` records.
    fn start_and_process(&self, n: usize) -> std::process::Child {
        let child = spawn_daemon(&self.config, &self.log);
        if wait_for(Duration::from_secs(120), || {
            processed(&self.addr).filter(|&m| m >= n)
        })
        .is_none()
        {
            give_up(
                child,
                &self.log,
                format!("daemon did not process {n} records"),
            );
        }
        child
    }
}

/// Fails the test with `what`, saying whether the daemon was still running (or how it had
/// exited), then its stdout and log: a stall and a crash read differently.
fn give_up(mut child: std::process::Child, log: &Path, what: String) -> ! {
    let state = match child.try_wait() {
        Ok(None) => "still running (killed now)".to_string(),
        Ok(Some(status)) => format!("had exited: {status:?}"),
        Err(e) => format!("state unknown: {e}"),
    };
    let _ = child.kill();
    let stdout = child
        .wait_with_output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    panic!(
        "{what}; the daemon {state}; stdout:\n{stdout}\nlog:\n{}",
        log_of(log)
    );
}

/// Produces 20,000 records, waits until the daemon has them, stops the broker for 20 s,
/// starts it again, produces 20,000 more and expects exactly 40,000 processed, the right
/// malformed count, offsets at the partitions' ends, and a healthy daemon.
fn survives_broker_restart(static_membership: bool) {
    let _one = PRIVATE.lock().unwrap_or_else(|p| p.into_inner());
    let broker = fault_broker();
    let brokers = broker.start();
    let topic = unique(if static_membership {
        "restart-static"
    } else {
        "restart-dynamic"
    });
    create_topic(&brokers, &topic, PARTITIONS);
    create_topic(&brokers, &format!("{topic}-dead"), 1);

    let run = Run::new();
    let extra = if static_membership {
        "\"group.instance.id\" = \"fault-test-0\""
    } else {
        ""
    };
    run.configure(&brokers, &topic, extra);
    let Run {
        log, store, addr, ..
    } = &run;

    const HALF: usize = 20_000;
    produce(&brokers, &topic, PARTITIONS, &payloads(0, HALF));
    let child = run.start_and_process(HALF);

    broker.stop();
    std::thread::sleep(Duration::from_secs(20));
    let (code, _) = http_get(addr, "/healthz").expect("the daemon answers during the outage");
    assert_eq!(code, 200, "a 20 s outage is waited out, not a stall");
    broker.start();
    produce(&brokers, &topic, PARTITIONS, &payloads(HALF, 2 * HALF));

    let reached = wait_for(Duration::from_secs(180), || {
        processed(addr).filter(|&n| n >= 2 * HALF)
    });
    if reached.is_none() {
        let at = processed(addr);
        give_up(
            child,
            log,
            format!(
                "ingest stalled after the broker restart at {at:?} of {} records",
                2 * HALF
            ),
        );
    }
    let (code, _) = http_get(addr, "/healthz").expect("healthz");
    assert_eq!(code, 200, "healthy after the restart");
    let restarts = consumer_restarts(addr);
    eprintln!("static membership {static_membership}: consumer restarts {restarts}");
    assert_exactly_once(child, log, store, &brokers, &topic, 2 * HALF);
}

fn consumer_restarts(addr: &str) -> f64 {
    http_get(addr, "/metrics")
        .and_then(|(_, body)| metric(&body, "relearn_ingest_consumer_restarts_total"))
        .unwrap_or(-1.0)
}

/// Stops the daemon gracefully and checks that each of the `n` records of `payloads(0, n)`
/// was processed exactly once: the totals, the malformed count and the stored offsets at
/// the partitions' ends.
fn assert_exactly_once(
    child: std::process::Child,
    log: &Path,
    store: &Path,
    brokers: &str,
    topic: &str,
    n: usize,
) {
    let out = stop_gracefully(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("records {n} ")),
        "{stdout}\nlog:\n{}",
        log_of(log)
    );
    let report = relearn::inspect::inspect_path(store).expect("inspect the store");
    let bad = (0..n).filter(|i| i % 100 == 7).count() as u64;
    assert_eq!(
        report.counters["records"], n as u64,
        "nothing lost or doubled"
    );
    assert_eq!(report.counters["malformed/non_numeric"], bad);
    assert_eq!(report.counters["labeled"], n as u64 - bad);
    for (p, end) in end_offsets(brokers, topic, PARTITIONS).iter().enumerate() {
        assert_eq!(
            report.offsets[&format!("{topic}/{p}")],
            *end,
            "partition {p}"
        );
    }
}

/// SIGTERM 0.7 s after the broker began to stop, while a producer was writing: the consumer's
/// close cannot reach the broker and would block for `session.timeout.ms` (45 s here, the
/// librdkafka default, beyond the 20 s grace); the daemon leaves it behind after 5 s and
/// exits 0. Restarted with the broker back, it takes every record the broker kept, once.
#[test]
fn sigterm_while_the_broker_stops_ends_within_the_grace() {
    let _one = PRIVATE.lock().unwrap_or_else(|p| p.into_inner());
    let broker = fault_broker();
    let brokers = broker.start();
    let topic = unique("stop-at-outage");
    create_topic(&brokers, &topic, PARTITIONS);
    create_topic(&brokers, &format!("{topic}-dead"), 1);
    let run = Run::new();
    run.configure(&brokers, &topic, "");
    let config = std::fs::read_to_string(&run.config).expect("config");
    let config = config.replace(
        r#""session.timeout.ms" = "6000""#,
        r#""session.timeout.ms" = "45000""#,
    );
    std::fs::write(&run.config, config).expect("config");
    produce(&brokers, &topic, PARTITIONS, &payloads(0, 5_000));
    let child = run.start_and_process(5_000);

    // A producer writing about 2,000 records/s through the outage, as a service would.
    let mut kcat = std::process::Command::new("kcat")
        .args(["-b", &brokers, "-q", "-P", "-t", &topic])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run kcat");
    let mut stdin = kcat.stdin.take().expect("kcat's stdin");
    let writer = std::thread::spawn(move || {
        for chunk in (5_000..).step_by(200) {
            let lines: Vec<u8> = payloads(chunk, chunk + 200)
                .into_iter()
                .flat_map(|mut p| {
                    p.push(b'\n');
                    p
                })
                .collect();
            if stdin
                .write_all(&lines)
                .and_then(|()| stdin.flush())
                .is_err()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let stopping = std::thread::spawn(move || {
        broker.stop();
        broker
    });
    std::thread::sleep(Duration::from_millis(700));
    let signalled = Instant::now();
    sigterm(&child);
    let out = child.wait_with_output().expect("wait for the daemon");
    let took = signalled.elapsed();
    let _ = kcat.kill();
    let _ = kcat.wait();
    let _ = writer.join();
    let broker = stopping.join().expect("the broker stopped");
    assert!(
        out.status.success() && took < Duration::from_secs(15),
        "SIGTERM during the outage: {:?} after {took:?} (grace 20 s)\nlog:\n{}",
        out.status,
        log_of(&run.log)
    );
    eprintln!("stopped in {took:?} with the broker going away");

    // Everything the broker kept is taken exactly once after a restart.
    broker.start();
    // A hundred more, once the partitions have their leader again.
    produce(&brokers, &topic, PARTITIONS, &payloads(0, 100));
    // In a group of its own: the old member never left its group, whose next rebalance
    // would wait out its 45 s session. Where a partition starts is the store's offset.
    run.configure(&brokers, &topic, "");
    let n: i64 = end_offsets(&brokers, &topic, PARTITIONS).iter().sum();
    let n = n as usize;
    assert!(n > 5_000, "the producer's records reached the broker ({n})");
    let child = run.start_and_process(n);
    let out = stop_gracefully(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("records {n} ")), "{stdout}");
    let report = relearn::inspect::inspect_path(&run.store).expect("inspect the store");
    assert_eq!(
        report.counters["records"], n as u64,
        "nothing lost or doubled"
    );
    let malformed = report.counters["malformed/non_numeric"];
    assert_eq!(report.counters["labeled"] + malformed, n as u64);
    for (p, end) in end_offsets(&brokers, &topic, PARTITIONS).iter().enumerate() {
        assert_eq!(
            report.offsets[&format!("{topic}/{p}")],
            *end,
            "partition {p}"
        );
    }
}

#[test]
fn broker_restart_with_static_membership_is_waited_out() {
    survives_broker_restart(true);
}

#[test]
fn broker_restart_without_static_membership_is_waited_out() {
    survives_broker_restart(false);
}

/// A second consumer that joins with the daemon's `group.instance.id` fences the daemon's
/// consumer (a fatal error in librdkafka, what a broker restart can also cause): the daemon
/// recreates its consumer, which resumes from the stored offsets, and every record is
/// processed exactly once.
#[test]
fn a_fenced_static_member_recreates_its_consumer_and_resumes_exactly() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let brokers = broker();
    let topic = unique("fenced");
    create_topic(&brokers, &topic, PARTITIONS);
    create_topic(&brokers, &format!("{topic}-dead"), 1);
    let run = Run::new();
    let instance = unique("fenced-instance");
    let group = run.configure(
        &brokers,
        &topic,
        &format!("\"group.instance.id\" = \"{instance}\""),
    );
    let Run {
        log, store, addr, ..
    } = &run;
    const HALF: usize = 10_000;
    produce(&brokers, &topic, PARTITIONS, &payloads(0, HALF));
    let child = run.start_and_process(HALF);

    // The intruder takes the daemon's place in the group, then closes (a static member
    // does not leave the group on close).
    {
        let intruder: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .set("group.instance.id", &instance)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .create()
            .expect("create the intruding consumer");
        intruder.subscribe(&[&topic]).expect("subscribe");
        let joined = wait_for(Duration::from_secs(60), || {
            let _ = intruder.poll(Duration::from_millis(100));
            intruder
                .assignment()
                .ok()
                .filter(|a| a.count() > 0)
                .map(|_| ())
        });
        assert!(joined.is_some(), "the intruder joined the daemon's group");
    }
    if wait_for(Duration::from_secs(60), || {
        (consumer_restarts(addr) >= 1.0).then_some(())
    })
    .is_none()
    {
        let restarts = consumer_restarts(addr);
        give_up(
            child,
            log,
            format!("the fenced consumer was not recreated (restarts {restarts})"),
        );
    }
    produce(&brokers, &topic, PARTITIONS, &payloads(HALF, 2 * HALF));
    if wait_for(Duration::from_secs(120), || {
        processed(addr).filter(|&n| n >= 2 * HALF)
    })
    .is_none()
    {
        let at = processed(addr);
        give_up(
            child,
            log,
            format!(
                "ingest stalled after the consumer was recreated, at {at:?} of {}",
                2 * HALF
            ),
        );
    }
    let (code, _) = http_get(addr, "/healthz").expect("healthz");
    assert_eq!(code, 200, "healthy after the consumer was recreated");
    assert_exactly_once(child, log, store, &brokers, &topic, 2 * HALF);
}

/// One 2 MB and one 10 MB record among 3,000: both are dead letters of at most
/// `kafka.dead_letter_max_bytes` with the original size and SHA-256 in headers; every
/// record is processed once and the daemon keeps running.
#[test]
fn oversized_records_are_dead_lettered_truncated() {
    use sha2::Digest as _;
    let brokers = broker();
    let topic = unique("oversized");
    let dlq_topic = format!("{topic}-dead");
    create_topic(&brokers, &topic, 1);
    create_topic(&brokers, &dlq_topic, 1);
    let mut records = payloads(0, 3_000);
    let big = |n: usize, fill: u8| -> Vec<u8> {
        let mut v = format!("{n},1,").into_bytes();
        v.resize(n, fill);
        v
    };
    records[1_500] = big(2_000_000, b'a');
    records[2_200] = big(10_000_000, b'b');
    let originals = [records[1_500].clone(), records[2_200].clone()];
    produce(&brokers, &topic, 1, &records);

    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("store");
    let log = dir.path().join("daemon.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("relearn.toml");
    write_config(&config, &brokers, &topic, &store, &addr, "");
    let mut child = spawn_daemon(&config, &log);
    if wait_for(Duration::from_secs(120), || {
        processed(&addr).filter(|&n| n >= records.len())
    })
    .is_none()
    {
        let at = processed(&addr);
        give_up(
            child,
            &log,
            format!("daemon did not pass the oversized records (at {at:?})"),
        );
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the daemon keeps running"
    );
    let out = stop_gracefully(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("records 3000 "), "{stdout}");

    let report = relearn::inspect::inspect_path(&store).expect("inspect the store");
    assert_eq!(report.counters["malformed/too_large"], 2);
    let letters = read_all(&brokers, &dlq_topic, 1, 32, Duration::from_secs(30));
    use rdkafka::Message as _;
    let truncated: Vec<_> = letters
        .iter()
        .filter(|m| header(m, dlq::REASON).as_deref() == Some("too_large"))
        .collect();
    assert_eq!(
        truncated.len(),
        2,
        "both oversized records dead-lettered once"
    );
    for (m, original) in truncated.iter().zip(&originals) {
        let size: usize = header(m, dlq::ORIGINAL_SIZE)
            .expect("original size header")
            .parse()
            .expect("a number");
        assert_eq!(size, original.len());
        let sha: String = sha2::Sha256::digest(original)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            header(m, dlq::ORIGINAL_SHA256).as_deref(),
            Some(sha.as_str())
        );
        let payload = m.payload().expect("a payload prefix");
        assert!(payload.len() <= 1_000_000, "letter fits: {}", payload.len());
        assert!(
            payload.len() > 900_000,
            "most of the payload kept: {}",
            payload.len()
        );
        assert_eq!(
            payload,
            &original[..payload.len()],
            "a prefix of the original"
        );
    }
}

/// Writes `n` records (`payloads`) to `topic` through kcat with the client settings `auth`
/// (`-X key=value` pairs), which also creates the topic.
fn produce_kcat(brokers: &str, topic: &str, n: usize, auth: &[String], dir: &Path) {
    let lines: Vec<String> = payloads(0, n)
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap())
        .collect();
    let file = dir.join(format!("{topic}.csv"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let mut kcat = std::process::Command::new("kcat");
    kcat.args(["-b", brokers]);
    for a in auth {
        kcat.args(["-X", a]);
    }
    let out = kcat
        .args(["-P", "-t", topic, "-l"])
        .arg(&file)
        .output()
        .expect("run kcat");
    assert!(
        out.status.success(),
        "kcat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the daemon with `extra` config against a secured broker and expects it to exit
/// non-zero within 60 s; returns its log.
fn fails_at_once(dir: &Path, name: &str, brokers: &str, topic: &str, extra: &str) -> String {
    let config = dir.join(format!("{name}.toml"));
    let store = dir.join(format!("store-{name}"));
    write_config(&config, brokers, topic, &store, "127.0.0.1:0", extra);
    let log = dir.join(format!("{name}.log"));
    let mut child = spawn_daemon(&config, &log);
    let status = wait_for(Duration::from_secs(60), || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("{name}: the daemon did not stop; log:\n{}", log_of(&log));
    };
    assert!(!status.success(), "{name}: exit {status:?}");
    log_of(&log)
}

/// Runs the daemon with `extra` config until it consumed the `n` records of `topic`, stops
/// it and checks the stored counts: every record exactly once.
fn consumes_exactly_once(dir: &Path, brokers: &str, topic: &str, extra: &str, n: usize) {
    let config = dir.join("right.toml");
    let store = dir.join("store");
    let addr = format!("127.0.0.1:{}", free_port());
    write_config(&config, brokers, topic, &store, &addr, extra);
    let log = dir.join("right.log");
    let child = spawn_daemon(&config, &log);
    if wait_for(Duration::from_secs(120), || {
        processed(&addr).filter(|&got| got >= n)
    })
    .is_none()
    {
        give_up(child, &log, format!("the daemon did not consume {topic}"));
    }
    stop_gracefully(child);
    let report = relearn::inspect::inspect_path(&store).expect("inspect the store");
    assert_eq!(report.counters["records"], n as u64);
    let bad = (0..n).filter(|i| i % 100 == 7).count() as u64;
    assert_eq!(report.counters["malformed/non_numeric"], bad);
}

/// A `[kafka.properties]` section with these keys and values.
fn kafka_properties(pairs: &[(&str, &str)]) -> String {
    let mut toml = String::from("[kafka.properties]\n");
    for (key, value) in pairs {
        toml.push_str(&format!("{key:?} = {value:?}\n"));
    }
    toml
}

/// Starts a TLS broker and returns its address and the certificate its clients trust.
fn start_with_certificate(broker: &PrivateBroker) -> (String, std::path::PathBuf) {
    let brokers = broker.start();
    let ca = broker.ca();
    assert!(
        ca.exists(),
        "scripts/kafka.sh wrote no certificate at {}",
        ca.display()
    );
    (brokers, ca)
}

/// A broker that requires SASL/PLAIN (`scripts/kafka.sh` with RELEARN_KAFKA_SASL_*): with the
/// right credentials in `kafka.properties` the daemon consumes every record exactly once;
/// with a wrong password it exits non-zero at once, naming the keys to check.
#[test]
fn sasl_plain_authenticates_and_a_wrong_password_fails_clearly() {
    const USER: &str = "relearn";
    const PASSWORD: &str = "relearn-secret";
    const N: usize = 5_000;
    let broker = PrivateBroker {
        port: SASL_BROKER_PORT,
        sasl: Some((USER, PASSWORD)),
        tls: false,
    };
    let brokers = broker.start();
    let topic = unique("sasl");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = [
        "security.protocol=SASL_PLAINTEXT".to_string(),
        "sasl.mechanisms=PLAIN".to_string(),
        format!("sasl.username={USER}"),
        format!("sasl.password={PASSWORD}"),
    ];
    produce_kcat(&brokers, &topic, N, &client, dir.path());
    let auth = |password: &str| {
        kafka_properties(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", USER),
            ("sasl.password", password),
        ])
    };
    // A wrong password: a clear error and a non-zero exit, not a silent retry loop.
    let text = fails_at_once(dir.path(), "wrong", &brokers, &topic, &auth("wrong"));
    assert!(
        text.contains("refused the credentials") && text.contains("sasl.password"),
        "{text}"
    );
    // The right password: every record, exactly once.
    consumes_exactly_once(dir.path(), &brokers, &topic, &auth(PASSWORD), N);
}

/// A broker with a TLS listener (`scripts/kafka.sh` with RELEARN_KAFKA_TLS, a self-signed
/// certificate): trusting its certificate (`ssl.ca.location`) the daemon consumes every
/// record exactly once; trusting only the system's CAs it exits non-zero at once, naming the
/// keys to check.
#[test]
fn tls_to_the_broker_works_and_an_untrusted_certificate_fails_clearly() {
    const N: usize = 3_000;
    let broker = PrivateBroker {
        port: TLS_BROKER_PORT,
        sasl: None,
        tls: true,
    };
    let (brokers, ca) = start_with_certificate(&broker);
    let topic = unique("tls");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = [
        "security.protocol=SSL".to_string(),
        format!("ssl.ca.location={}", ca.display()),
    ];
    produce_kcat(&brokers, &topic, N, &client, dir.path());
    let trust = |ca: &Path| {
        kafka_properties(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", &ca.display().to_string()),
        ])
    };
    // The system's CAs do not include the broker's self-signed certificate.
    let system = Path::new("/etc/ssl/certs/ca-certificates.crt");
    assert!(
        system.exists(),
        "the system CA bundle {} is missing",
        system.display()
    );
    let text = fails_at_once(dir.path(), "untrusted", &brokers, &topic, &trust(system));
    assert!(
        text.contains("certificate is not trusted") && text.contains("ssl.ca.location"),
        "{text}"
    );
    // Its own certificate trusted: every record, exactly once.
    consumes_exactly_once(dir.path(), &brokers, &topic, &trust(&ca), N);
}

/// SASL/PLAIN over TLS (`security.protocol = SASL_SSL`, the config template's own example):
/// with the broker's certificate trusted and the right password the daemon consumes every
/// record exactly once; with a wrong password it exits non-zero at once, naming the keys.
#[test]
fn sasl_over_tls_authenticates_and_a_wrong_password_fails_clearly() {
    const USER: &str = "relearn";
    const PASSWORD: &str = "relearn-secret-tls";
    const N: usize = 3_000;
    let broker = PrivateBroker {
        port: SASL_SSL_BROKER_PORT,
        sasl: Some((USER, PASSWORD)),
        tls: true,
    };
    let (brokers, ca) = start_with_certificate(&broker);
    let topic = unique("sasl-ssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = [
        "security.protocol=SASL_SSL".to_string(),
        "sasl.mechanisms=PLAIN".to_string(),
        format!("sasl.username={USER}"),
        format!("sasl.password={PASSWORD}"),
        format!("ssl.ca.location={}", ca.display()),
    ];
    produce_kcat(&brokers, &topic, N, &client, dir.path());
    let ca_path = ca.display().to_string();
    let auth = |password: &str| {
        kafka_properties(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", USER),
            ("sasl.password", password),
            ("ssl.ca.location", &ca_path),
        ])
    };
    let text = fails_at_once(dir.path(), "wrong", &brokers, &topic, &auth("wrong"));
    assert!(
        text.contains("refused the credentials") && text.contains("sasl.password"),
        "{text}"
    );
    consumes_exactly_once(dir.path(), &brokers, &topic, &auth(PASSWORD), N);
}
