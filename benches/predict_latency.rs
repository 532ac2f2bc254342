//! Predict latency at a fixed request rate (open loop): the daemon binary serves the model it
//! learned from the embedded Elec2 stream; keep-alive connections send `POST /v1/predict` on a
//! schedule, and each latency is measured from the request's scheduled time (no coordinated
//! omission). `cargo bench --bench predict_latency [-- RATE SECONDS CONNECTIONS]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BODY: &str = r#"{"day": 2, "period": 0.5, "nswprice": 0.05, "nswdemand": 0.4, "vicprice": 0.003, "vicdemand": 0.4, "transfer": 0.4}"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One request on a keep-alive connection; returns the status code.
fn request(r: &mut BufReader<TcpStream>, addr: &str) -> u16 {
    let req = format!(
        "POST /v1/predict HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    r.get_mut().write_all(req.as_bytes()).expect("send");
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("body");
    code
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rate: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000.0);
    let seconds: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10.0);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_relearn"))
        .arg("run")
        .env("RELEARN__STORE__PATH", dir.path())
        .env("RELEARN__HTTP__LISTEN", &addr)
        .env("RELEARN__FILE__EXIT_AT_END", "false")
        .env("RELEARN_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start relearn");
    // Wait until the stream is learned and a model serves.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemon did not start serving"
        );
        if let Ok(s) = TcpStream::connect(&addr) {
            let mut r = BufReader::new(s);
            if request(&mut r, &addr) == 200 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));

    let per_conn = rate / conns as f64;
    let n = (per_conn * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(TcpStream::connect(&addr).expect("connect"));
                r.get_ref().set_nodelay(true).ok();
                let offset = Duration::from_secs_f64(c as f64 / rate);
                let mut lat = Vec::with_capacity(n);
                let mut failed = 0;
                for i in 0..n {
                    let due = start + offset + Duration::from_secs_f64(i as f64 / per_conn);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if request(&mut r, &addr) != 200 {
                        failed += 1;
                    }
                    lat.push(due.elapsed().as_secs_f64());
                }
                (lat, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for h in handles {
        let (l, f) = h.join().expect("load thread");
        all.extend(l);
        failed += f;
    }
    let took = start.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)] * 1e3;
    println!(
        "predict: {} requests in {took:.1} s ({:.0}/s target {rate:.0}/s, {conns} connections), {failed} failed",
        all.len(),
        all.len() as f64 / took
    );
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        all[all.len() - 1] * 1e3
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
