//! Progress of a fleet run on stderr: a bar on a terminal (done, failed,
//! left, rate, ETA), plain lines in CI logs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Nothing.
    Off,
    /// An indicatif bar (stderr is a terminal).
    Bar,
    /// A plain line every [`LINE_EVERY`] or every 10% (stderr is a log);
    /// only for runs of [`LINES_FROM`] tenant databases or more.
    Lines,
}

/// Longest time between two plain progress lines.
pub const LINE_EVERY: Duration = Duration::from_secs(10);
/// Smallest run that prints plain progress lines.
pub const LINES_FROM: usize = 50;

/// Counts finished tenant databases and shows it.
pub struct Progress {
    mode: ProgressMode,
    bar: ProgressBar,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    start: Instant,
    /// (time, tenths done) of the last plain line.
    last_line: Mutex<(Instant, usize)>,
}

impl Progress {
    /// Progress of `total` tenant databases.
    pub fn new(mode: ProgressMode, total: usize) -> Self {
        let mode = match mode {
            ProgressMode::Bar if total >= 2 => ProgressMode::Bar,
            ProgressMode::Lines if total >= LINES_FROM => ProgressMode::Lines,
            _ => ProgressMode::Off,
        };
        let bar = if mode == ProgressMode::Bar {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {pos}/{len} done, {msg} [{bar:30}] {per_sec} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(format!("0 failed, {total} left"));
            bar
        } else {
            ProgressBar::hidden()
        };
        let start = Instant::now();
        Progress {
            mode,
            bar,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            start,
            last_line: Mutex::new((start, 0)),
        }
    }

    /// Counts `n` finished tenant databases (`failed` of them failed).
    pub fn finished(&self, n: usize, failed: usize) {
        let done = self.done.fetch_add(n, Ordering::SeqCst) + n;
        let failed = self.failed.fetch_add(failed, Ordering::SeqCst) + failed;
        let left = self.total.saturating_sub(done);
        match self.mode {
            ProgressMode::Off => {}
            ProgressMode::Bar => {
                self.bar
                    .set_message(format!("{failed} failed, {left} left"));
                self.bar.inc(n as u64);
            }
            ProgressMode::Lines => {
                let now = Instant::now();
                let tenths = done * 10 / self.total.max(1);
                let mut last = self.last_line.lock().expect("progress line");
                if tenths > last.1 || now.duration_since(last.0) >= LINE_EVERY {
                    *last = (now, tenths);
                    eprintln!("{}", self.line(done, failed, now));
                }
            }
        }
    }

    fn line(&self, done: usize, failed: usize, now: Instant) -> String {
        let elapsed = now.duration_since(self.start).as_secs_f64();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            humantime::format_duration(Duration::from_secs((left as f64 / rate).ceil() as u64))
                .to_string()
        } else {
            "unknown".to_string()
        };
        format!(
            "progress: {done}/{} done, {failed} failed, {left} left, {rate:.1}/s, ETA {eta}",
            self.total
        )
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
