//! `relearn eval`'s progress while a strategy runs: a bar with records/s and the time left
//! on a terminal (indicatif), a plain line every [`PLAIN_EVERY`] otherwise (a log, a pipe).
//! It reads the records ingested from the run's metrics on a thread of its own.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// How often the plain progress line is written when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// How often the records ingested are read.
const POLL: Duration = Duration::from_millis(100);

/// A running strategy's progress; [`Progress::finish`] clears it.
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Shows the progress of `strategy` through `total` records (0: unknown) as `metrics`
    /// count them.
    pub fn start(strategy: &str, total: u64, metrics: Metrics) -> Progress {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, strategy) = (stop.clone(), strategy.to_string());
            std::thread::Builder::new()
                .name("relearn-progress".into())
                .spawn(move || {
                    let records = || metrics.ingest.records.get();
                    if std::io::stderr().is_terminal() {
                        bar(&strategy, total, records, &stop);
                    } else {
                        plain(&strategy, total, records, &stop);
                    }
                })
                .ok()
        };
        Progress { stop, thread }
    }

    /// Stops showing the progress (the bar is cleared).
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end();
    }
}

fn bar(strategy: &str, total: u64, records: impl Fn() -> u64, stop: &AtomicBool) {
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>8} [{bar:32}] {human_pos}/{human_len} records, {msg} records/s, {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bar = indicatif::ProgressBar::new(total)
        .with_style(style)
        .with_prefix(strategy.to_string());
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let done = records();
        bar.set_position(done);
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(thousands(rate as u64));
        std::thread::sleep(POLL);
    }
    bar.finish_and_clear();
}

fn plain(strategy: &str, total: u64, records: impl Fn() -> u64, stop: &AtomicBool) {
    let started = Instant::now();
    let mut next = PLAIN_EVERY;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
        if started.elapsed() < next {
            continue;
        }
        next += PLAIN_EVERY;
        eprintln!("{}", line(strategy, records(), total, started.elapsed()));
    }
}

/// `default: 120,000 records of 494,021 (24%), 40,000 records/s, 9 s left`.
pub fn line(strategy: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = done as f64 / secs;
    let mut text = format!("{strategy}: {} records", thousands(done));
    if total > 0 {
        let share = 100.0 * done as f64 / total as f64;
        text.push_str(&format!(" of {} ({share:.0}%)", thousands(total)));
    }
    text.push_str(&format!(", {} records/s", thousands(rate as u64)));
    if total > done && rate > 0.0 {
        text.push_str(&format!(", {:.0} s left", (total - done) as f64 / rate));
    }
    text
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_says_how_far_how_fast_and_how_long() {
        assert_eq!(
            line("default", 120_000, 494_021, Duration::from_secs(3)),
            "default: 120,000 records of 494,021 (24%), 40,000 records/s, 9 s left"
        );
        assert_eq!(
            line("full", 1_500, 0, Duration::from_secs(1)),
            "full: 1,500 records, 1,500 records/s"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }

    #[test]
    fn progress_stops_when_finished() {
        let metrics = Metrics::new();
        metrics.ingest.records.inc_by(7);
        let p = Progress::start("default", 10, metrics);
        p.finish();
    }
}
