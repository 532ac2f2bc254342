//! The dashboards and alert rules against real data: the daemon consumes Elec2 from the real
//! broker, Debian's Prometheus scrapes it every second, and every PromQL expression of every
//! Grafana dashboard and alert rule is run through Prometheus' HTTP API and must return data.
//! Also `promtool check config`, `check rules` and `test rules`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: scripts/deps.sh installs Debian's prometheus package"
    );
    Command::new(name)
}

fn run_ok(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every PromQL expression of the dashboards and the alert rules, with where it comes from.
fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((
                    format!("{name}: {}", p["title"]),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
        for a in d["annotations"]["list"].as_array().into_iter().flatten() {
            out.push((
                format!("{name}: annotation {}", a["name"]),
                a["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let rules = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    let mut alert = String::new();
    for line in rules.lines() {
        let l = line.trim();
        if let Some(a) = l.strip_prefix("- alert: ") {
            alert = a.to_string();
        } else if let Some(e) = l.strip_prefix("expr: ") {
            out.push((format!("alerts.yml: {alert}"), e.to_string()));
        }
    }
    out
}

/// An alert or annotation expression without its final threshold comparison, so that it
/// returns the series it compares (a healthy daemon fires no alert).
fn without_threshold(expr: &str) -> String {
    for op in [" >= ", " <= ", " == ", " != ", " > ", " < "] {
        if let Some((lhs, rhs)) = expr.rsplit_once(op) {
            if rhs.trim().parse::<f64>().is_ok() {
                return lhs.trim().to_string();
            }
        }
    }
    expr.to_string()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = tool("promtool");
    c.args(["check", "config"])
        .arg(repo("deploy/prometheus/prometheus.yml"));
    run_ok(c, "promtool check config");
    let mut c = tool("promtool");
    c.args(["check", "rules"])
        .arg(repo("deploy/prometheus/alerts.yml"));
    run_ok(c, "promtool check rules");
    let mut c = tool("promtool");
    c.args(["test", "rules"])
        .arg(repo("deploy/prometheus/alerts_test.yml"))
        .current_dir(dir.path());
    run_ok(c, "promtool test rules");
}

#[test]
fn every_dashboard_and_alert_expression_returns_data_from_a_live_daemon() {
    let brokers = broker();
    let topic = unique("obs");
    let dlq = unique("obs-dead");
    create_topic(&brokers, &topic, 1);
    create_topic(&brokers, &dlq, 1);
    let mut text = String::new();
    flate2::read::GzDecoder::new(relearn::ingest::file::EMBEDDED_ELEC2)
        .read_to_string(&mut text)
        .unwrap();
    let mut lines: Vec<Vec<u8>> = text
        .lines()
        .skip(1)
        .take(24_000)
        .map(|l| l.as_bytes().to_vec())
        .collect();
    lines.push(b"not,a,record".to_vec());
    let n = lines.len();
    produce(&brokers, &topic, 1, &lines);

    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.path().join("relearn.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[kafka]
brokers = "{brokers}"
topics = ["{topic}"]
group_id = "{group}"
dead_letter_topic = "{dlq}"
[schema]
format = "csv"
columns = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class"]
[store]
path = "{store}"
[http]
listen = "{addr}"
"#,
            group = unique("obs-group"),
            store = dir.path().join("store").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let daemon = Kill(
        Command::new(env!("CARGO_BIN_EXE_relearn"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RELEARN_LOG", "info,rdkafka=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start relearn"),
    );

    // Prometheus scraping the daemon every second, with the project's alert rules.
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    std::fs::copy(
        repo("deploy/prometheus/alerts.yml"),
        prom_dir.join("alerts.yml"),
    )
    .unwrap();
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n  - job_name: relearn\n    static_configs:\n      - targets: [\"{addr}\"]\n"
        ),
    )
    .unwrap();
    let prom_log = dir.path().join("prometheus.log");
    let _prometheus = Kill(
        tool("prometheus")
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&prom_log).unwrap()))
            .spawn()
            .expect("start prometheus"),
    );
    wait_for(Duration::from_secs(60), || {
        http_get(&prom_addr, "/-/ready").filter(|(c, _)| *c == 200)
    })
    .unwrap_or_else(|| {
        panic!(
            "prometheus did not become ready:\n{}",
            std::fs::read_to_string(&prom_log).unwrap_or_default()
        )
    });

    wait_for(Duration::from_secs(180), || {
        let (_, body) = http_get(&addr, "/metrics")?;
        (metric(&body, "relearn_ingest_records_total")? as usize == n
            && metric_with(&body, "relearn_retrain_runs_total", "outcome", "promoted")? >= 2.0)
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the daemon did not process the stream; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    // Predictions (and one bad request) so the serving panels have data, over a few scrapes.
    let record = r#"{"day": 2, "period": 0.5, "nswprice": 0.05, "nswdemand": 0.4, "vicprice": 0.003, "vicdemand": 0.4, "transfer": 0.4}"#;
    for i in 0..50 {
        let (code, p) = post_json(&addr, "/v1/predict", None, record);
        assert_eq!(code, 200, "{p}");
        if i % 10 == 0 {
            post_json(&addr, "/v1/predict", None, "{");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));

    let exprs = expressions();
    assert!(exprs.len() > 30, "{} expressions", exprs.len());
    let mut empty = Vec::new();
    for (origin, expr) in &exprs {
        let q = without_threshold(expr);
        let (code, body) = http_request(
            &prom_addr,
            "GET",
            &format!("/api/v1/query?query={}", url_encode(&q)),
            &[],
            b"",
        )
        .expect("prometheus answers");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(code, 200, "{origin}: `{q}` is not valid PromQL: {v}");
        let results = v["data"]["result"].as_array().map_or(0, |r| r.len());
        if results == 0 {
            empty.push(format!("{origin}: `{q}`"));
        }
    }
    eprintln!("{} expressions queried, {} empty", exprs.len(), empty.len());
    assert!(
        empty.is_empty(),
        "expressions without data:\n{}",
        empty.join("\n")
    );
    drop(daemon);
}
