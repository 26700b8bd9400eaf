//! Rollout controls of `reconcile --apply`: waves (from `rollout.waves` in
//! tenantctl.yaml or `--wave-by LABEL`), the per-wave failure budget
//! (`--max-failure-rate`), and what runs between waves (`--between-waves`,
//! `--pause`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::targets::{Target, identity_hash};
pub use crate::plan::{WaveReport, WaveStatus};
use crate::repo::WaveRule;

/// Fewest finished tenant databases of a wave before `--max-failure-rate` is judged.
pub const MIN_SAMPLE: usize = 5;

/// How the targets are split into waves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveSource {
    /// `rollout.waves` of tenantctl.yaml (none: one wave of everything).
    Config(Vec<WaveRule>),
    /// `--wave-by LABEL`: one wave per value of the label, values in byte
    /// order, tenants without the label last.
    Label(String),
}

/// The targets split into waves: `waves[i]` holds indexes into the target
/// list; `unassigned` are the targets no wave takes (a config without `rest: true`).
#[derive(Debug, Default)]
pub struct Waves {
    pub rules: Vec<String>,
    pub waves: Vec<Vec<usize>>,
    pub unassigned: Vec<usize>,
}

/// Splits `targets` into waves. Within a wave, and for `percent` waves,
/// targets are taken in the order of their identity hash, so the split is
/// the same on every run and independent of the order tenants are listed in.
pub fn split(targets: &[Target<'_>], source: &WaveSource) -> Waves {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| (identity_hash(&targets[i]), i));
    let mut out = Waves::default();
    match source {
        WaveSource::Config(rules) if rules.is_empty() => {
            out.rules.push("all".to_string());
            out.waves.push(order);
        }
        WaveSource::Config(rules) => {
            let mut left = order;
            for rule in rules {
                let taken: Vec<usize> = match rule {
                    WaveRule::Selector(k, v) => left
                        .iter()
                        .copied()
                        .filter(|&i| targets[i].tenant.labels.get(k) == Some(v))
                        .collect(),
                    WaveRule::Percent(p) => {
                        let n = (targets.len() * *p as usize).div_ceil(100);
                        left.iter().copied().take(n).collect()
                    }
                    WaveRule::Rest => left.clone(),
                };
                let taken_set: std::collections::HashSet<usize> = taken.iter().copied().collect();
                left.retain(|i| !taken_set.contains(i));
                out.rules.push(match rule {
                    WaveRule::Selector(k, v) => format!("{k}={v}"),
                    WaveRule::Percent(p) => format!("{p}%"),
                    WaveRule::Rest => "rest".to_string(),
                });
                out.waves.push(taken);
            }
            out.unassigned = left;
        }
        WaveSource::Label(label) => {
            let mut by_value: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
            for i in order {
                let value = targets[i].tenant.labels.get(label).map(String::as_str);
                by_value.entry(value).or_default().push(i);
            }
            // `None` sorts first in a BTreeMap; tenants without the label go last.
            let missing = by_value.remove(&None);
            for (value, members) in by_value {
                out.rules
                    .push(format!("{label}={}", value.expect("labelled")));
                out.waves.push(members);
            }
            if let Some(members) = missing {
                out.rules.push(format!("no {label} label"));
                out.waves.push(members);
            }
        }
    }
    out
}

/// The failure budget of one wave (`--max-failure-rate`).
#[derive(Debug, Default)]
pub struct Budget {
    finished: AtomicUsize,
    failed: AtomicUsize,
    /// Why the wave stopped starting tenant databases, once it did.
    pub stopped: std::sync::Mutex<Option<String>>,
}

impl Budget {
    /// Counts a finished tenant database.
    pub fn record(&self, failed: bool) {
        if failed {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// Why no more tenant databases of this wave may start, if the failure
    /// rate of the finished ones exceeds `max_rate` percent (judged from
    /// [`MIN_SAMPLE`] finished databases on).
    /// The first reason is kept in [`Budget::stopped`].
    pub fn exceeded(&self, max_rate: f64) -> Option<String> {
        let mut stopped = self.stopped.lock().expect("budget");
        if stopped.is_none() {
            *stopped = self.rate_exceeded(max_rate);
        }
        stopped.clone()
    }

    fn rate_exceeded(&self, max_rate: f64) -> Option<String> {
        let failed = self.failed.load(Ordering::SeqCst);
        let finished = self.finished.load(Ordering::SeqCst);
        if finished < MIN_SAMPLE || (failed as f64) * 100.0 <= max_rate * finished as f64 {
            return None;
        }
        Some(format!(
            "{failed} of {finished} finished tenant databases failed ({:.0}%), more than --max-failure-rate {max_rate}%",
            failed as f64 * 100.0 / finished as f64
        ))
    }
}

/// Runs the `--between-waves` command through the shell, with
/// `TENANTCTL_WAVE` (the wave that converged), `TENANTCTL_NEXT_WAVE`,
/// `TENANTCTL_WAVES` (their count) and `TENANTCTL_REPORT` (a JSON report of
/// the rollout so far) in its environment. Its output goes to stderr, so
/// stdout stays the report. `Err` says why the rollout stops.
pub async fn between_waves(
    command: &str,
    wave: usize,
    waves: usize,
    report: &Path,
) -> Result<(), String> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("TENANTCTL_WAVE", wave.to_string())
        .env("TENANTCTL_NEXT_WAVE", (wave + 1).to_string())
        .env("TENANTCTL_WAVES", waves.to_string())
        .env("TENANTCTL_REPORT", report)
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .await
        .map_err(|e| format!("--between-waves: could not run `sh -c {command:?}`: {e}"))?;
    if status.success() {
        return Ok(());
    }
    Err(match status.code() {
        Some(code) => format!("--between-waves command exited with {code} after wave {wave}"),
        None => format!("--between-waves command was killed by a signal after wave {wave}"),
    })
}

/// `--pause`: asks on stderr and waits for Enter on stdin (the CLI refuses
/// `--pause` unless stdin is a terminal). End of input stops the rollout.
pub async fn pause(wave: usize, waves: usize) -> Result<(), String> {
    eprint!(
        "Wave {wave} of {waves} converged. Press Enter to start wave {} (Ctrl-D or Ctrl-C stops): ",
        wave + 1
    );
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    })
    .await
    .map_err(|e| format!("--pause: {e}"))?;
    match line {
        Ok((0, _)) => Err(format!("stopped at the --pause after wave {wave}")),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("--pause: reading stdin: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{Budget, MIN_SAMPLE};

    #[test]
    fn the_failure_rate_is_judged_from_the_minimum_sample_and_must_be_exceeded() {
        let budget = Budget::default();
        for _ in 0..MIN_SAMPLE - 1 {
            budget.record(true);
        }
        assert_eq!(budget.exceeded(10.0), None, "judged before the sample");
        budget.record(false);
        // 4 of 5 failed: 80%.
        assert_eq!(budget.exceeded(80.0), None, "80% does not exceed 80%");
        let reason = budget.exceeded(79.0).expect("80% exceeds 79%");
        assert!(
            reason.contains("4 of 5 finished tenant databases failed (80%)"),
            "{reason}"
        );
        // Once stopped, it stays stopped with the first reason.
        for _ in 0..20 {
            budget.record(false);
        }
        assert_eq!(budget.exceeded(79.0), Some(reason));
    }

    #[test]
    fn a_zero_rate_stops_at_the_first_failure_after_the_sample() {
        let budget = Budget::default();
        for _ in 0..MIN_SAMPLE {
            budget.record(false);
        }
        assert_eq!(budget.exceeded(0.0), None);
        budget.record(true);
        assert!(budget.exceeded(0.0).is_some());
    }
}
