//! Shared helpers of the integration tests: a real Kafka broker started by scripts/kafka.sh,
//! topic creation, producing, reading back, and a tiny HTTP client for the daemon.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Port of the test broker (distinct from a developer's broker on 9092).
pub const BROKER_PORT: u16 = 19092;

/// Starts (once per test binary) the real Kafka broker through `scripts/kafka.sh start` and
/// returns its bootstrap address. Panics with the script's output when it cannot start: no
/// Kafka test passes without a broker.
pub fn broker() -> String {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = std::process::Command::new("bash")
                .arg(root.join("scripts/kafka.sh"))
                .arg("start")
                .env("RELEARN_KAFKA_PORT", BROKER_PORT.to_string())
                .output()
                .expect("cannot run scripts/kafka.sh");
            assert!(
                out.status.success(),
                "the Kafka broker could not start (scripts/kafka.sh start):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            format!("127.0.0.1:{BROKER_PORT}")
        })
        .clone()
}

/// A topic name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a topic with `partitions` partitions and waits until its metadata shows them.
pub fn create_topic(brokers: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let res = futures::executor::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create_topics request");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("metadata consumer");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(md) = consumer.fetch_metadata(Some(name), Duration::from_secs(5)) {
            if md
                .topics()
                .first()
                .is_some_and(|t| t.error().is_none() && t.partitions().len() == partitions as usize)
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "topic {name} did not appear");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces `payloads` (payload i to partition i % partitions) and returns where each landed.
pub fn produce(
    brokers: &str,
    topic: &str,
    partitions: i32,
    payloads: &[Vec<u8>],
) -> Vec<(i32, i64)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.max.bytes", "20000000")
        .create()
        .expect("producer");
    let mut futures = Vec::with_capacity(payloads.len());
    for (i, p) in payloads.iter().enumerate() {
        let rec: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic)
            .payload(p.as_slice())
            .partition(i as i32 % partitions);
        let fut = producer
            .send_result(rec)
            .unwrap_or_else(|(e, _)| panic!("enqueue failed: {e}"));
        futures.push(fut);
    }
    futures
        .into_iter()
        .map(|f| {
            let d = futures::executor::block_on(f)
                .expect("delivery channel")
                .unwrap_or_else(|(e, _)| panic!("delivery failed: {e}"));
            (d.partition, d.offset)
        })
        .collect()
}

/// Reads every partition of `topic` from the beginning until `expected` messages arrived (or
/// `timeout`), without a consumer group.
pub fn read_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.expect("read").detach());
        }
    }
    // Give a moment for unexpected extra messages (duplicates) to show up.
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.expect("read").detach());
        }
    }
    out
}

/// The high watermark (end offset) of each partition.
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("watermark consumer");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// A header value of a message as a string.
pub fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let h = m.headers()?;
    h.iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET `path` on `addr`; returns the status code and body, or None if nothing answers.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The sum of every sample of metric `name` (all label sets) in a Prometheus text body.
pub fn metric(body: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let metric_name = series.split('{').next().unwrap_or("");
        if metric_name == name {
            let v: f64 = value.parse().ok()?;
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The value of `name{label="value"}`.
pub fn metric_with(body: &str, name: &str, label: &str, value: &str) -> Option<f64> {
    let needle = format!("{name}{{{label}=\"{value}\"}}");
    body.lines()
        .find(|l| l.starts_with(&needle))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

/// Sends SIGTERM to a running daemon, waits, and asserts that it exited cleanly; returns
/// its output (stdout holds the shutdown summary when it was piped).
pub fn stop_gracefully(child: std::process::Child) -> std::process::Output {
    sigterm(&child);
    let out = child.wait_with_output().expect("wait for the daemon");
    assert!(
        out.status.success(),
        "graceful stop exits 0: {:?}",
        out.status
    );
    out
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request; returns the status code and the raw body bytes.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, buf[split + 4..].to_vec()))
}

/// POST JSON; returns the status and the parsed JSON answer.
pub fn post_json(
    addr: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (code, bytes) = http_request(addr, "POST", path, &headers, body.as_bytes())
        .unwrap_or_else(|| panic!("POST {path}: no answer"));
    let v = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (code, v)
}

/// GET JSON, or None when nothing answers (yet).
pub fn try_get_json(addr: &str, path: &str) -> Option<(u16, serde_json::Value)> {
    let (code, bytes) = http_request(addr, "GET", path, &[], b"")?;
    Some((
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}

/// GET JSON.
pub fn get_json(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let (code, bytes) = http_request(addr, "GET", path, &[], b"")
        .unwrap_or_else(|| panic!("GET {path}: no answer"));
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The daemon binary as a command, logging warnings only (for `relearn eval`, `inspect`,
/// `run` to the end of a file).
pub fn relearn() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_relearn"));
    c.env("RELEARN_LOG", "warn");
    c
}

/// Runs `relearn eval FILE ARGS --out OUT` and returns its `eval.json`; fails the test with
/// the command's standard error when it fails.
pub fn eval_report(file: &Path, args: &[&str], out: &Path) -> serde_json::Value {
    let run = relearn()
        .arg("eval")
        .arg(file)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run relearn eval");
    assert!(
        run.status.success(),
        "relearn eval failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json = std::fs::read(out.join("eval.json")).expect("eval.json written");
    serde_json::from_slice(&json).expect("eval.json is JSON")
}

/// The row of `strategy` in an eval report.
pub fn eval_row(report: &serde_json::Value, strategy: &str) -> serde_json::Value {
    report["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["strategy"] == strategy))
        .unwrap_or_else(|| panic!("no {strategy} row in {report}"))
        .clone()
}

/// Starts the daemon binary with `config`, stdout piped, stderr appended to `log`.
pub fn spawn_daemon(config: &Path, log: &Path) -> std::process::Child {
    spawn_daemon_with(config, log, &[])
}

/// [`spawn_daemon`] with extra environment variables (config overrides such as
/// `RELEARN__TRAIN__EPOCHS`).
pub fn spawn_daemon_with(config: &Path, log: &Path, env: &[(&str, &str)]) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the daemon log");
    std::process::Command::new(env!("CARGO_BIN_EXE_relearn"))
        .args(["run", "--config"])
        .arg(config)
        .env("RELEARN_LOG", "info,rdkafka=warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(log))
        .spawn()
        .expect("start the relearn binary")
}

/// A broker of its own on `port` (stopped and started by fault tests, so that the shared
/// test broker is never disturbed), through `scripts/kafka.sh`.
pub struct PrivateBroker {
    pub port: u16,
    /// User and password: the client listener is SASL_PLAINTEXT with PLAIN.
    pub sasl: Option<(&'static str, &'static str)>,
    /// The client listener is SSL, its self-signed certificate in [`PrivateBroker::ca`].
    pub tls: bool,
}

impl PrivateBroker {
    fn script(&self, action: &str) -> std::process::Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut c = std::process::Command::new("bash");
        c.arg(root.join("scripts/kafka.sh"))
            .arg(action)
            .env("RELEARN_KAFKA_PORT", self.port.to_string());
        if let Some((user, password)) = self.sasl {
            c.env("RELEARN_KAFKA_SASL_USER", user)
                .env("RELEARN_KAFKA_SASL_PASSWORD", password);
        }
        if self.tls {
            c.env("RELEARN_KAFKA_TLS", "1");
        }
        c.output().expect("cannot run scripts/kafka.sh")
    }

    /// The certificate a TLS broker's clients trust (written by `scripts/kafka.sh start`).
    pub fn ca(&self) -> std::path::PathBuf {
        let home = std::env::var_os("RELEARN_KAFKA_HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                    .join(".cache/relearn/kafka")
            });
        home.join(format!("tls-{}/ca.pem", self.port))
    }

    /// Starts it (idempotent) and returns its bootstrap address; panics with the script's
    /// output when it cannot start.
    pub fn start(&self) -> String {
        let out = self.script("start");
        assert!(
            out.status.success(),
            "the private Kafka broker on port {} could not start:\n{}\n{}",
            self.port,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGTERM, then SIGKILL after 30 s); its data stays for the next start.
    pub fn stop(&self) {
        let out = self.script("stop");
        assert!(
            out.status.success(),
            "scripts/kafka.sh stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

/// A small deterministic generator (SplitMix64), independent of the code under test.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
