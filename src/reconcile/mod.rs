//! Reconcile: pick the target tenant databases, then plan or apply each one
//! concurrently (bounded overall and per server). The declared model is
//! built once per blueprint per server, and tenants whose live schema has
//! the same fingerprint share one diff.

mod drift;
pub mod progress;
pub mod rollout;
pub mod targets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::Semaphore;

pub use progress::{Progress, ProgressMode};
pub use rollout::{Budget, WaveReport, WaveSource, WaveStatus};
pub use targets::{Filters, Shard, Target, select};

use crate::diff::HazardKind;
use crate::engine::{
    self, Connection, Engine, EngineError, HistoryRecord, MigrateOutcome, Refusal,
};
use crate::model::Schema;
use crate::plan::{Member, Mode, Report, SavedPlan, Status, Step, TargetReport, check_steps};
use crate::repo::Repo;

/// How to run a reconcile.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub filters: Filters,
    /// Tenant databases worked on at once (default: the repository's `defaults.concurrency`).
    pub concurrency: Option<usize>,
    /// Apply destructive steps (otherwise a tenant with one is refused).
    pub allow_destructive: bool,
    /// Stop starting new tenants after this many failures.
    pub max_failures: Option<usize>,
    /// Git commit recorded in history, when known.
    pub git_commit: Option<String>,
    /// How to show progress on stderr.
    pub progress: ProgressMode,
    /// Stop starting tenant databases of a wave once more than this
    /// percentage of its finished ones failed (after [`rollout::MIN_SAMPLE`]).
    pub max_failure_rate: Option<f64>,
    /// `--wave-by LABEL`: one wave per value of the label, instead of `rollout.waves`.
    pub wave_by: Option<String>,
    /// Shell command run after each converged wave but the last; non-zero stops the rollout.
    pub between_waves: Option<String>,
    /// Wait for Enter on the terminal after each converged wave but the last.
    pub pause: bool,
    /// Apply only this reviewed plan's databases, and each only when what is
    /// planned now (under its lock) equals the plan's steps.
    pub saved: Option<Arc<SavedPlan>>,
}

impl Options {
    /// Options of a plain run in `mode`: every target, no waves, no budgets, no progress.
    pub fn new(mode: Mode) -> Self {
        Options {
            mode,
            filters: Filters::default(),
            concurrency: None,
            allow_destructive: false,
            max_failures: None,
            git_commit: None,
            progress: ProgressMode::Off,
            max_failure_rate: None,
            wave_by: None,
            between_waves: None,
            pause: false,
            saved: None,
        }
    }
}

/// The declared schema of a blueprint on a server, or why it could not be built.
type Declared = Result<Arc<Schema>, String>;
/// Steps for one distinct live state, or why they could not be planned.
type Planned = Result<Arc<Vec<Step>>, String>;
/// (blueprint, server, live fingerprint).
type StateKey = (String, String, String);

/// What is shared by every target of one run.
struct Shared {
    engines: HashMap<String, Result<Arc<dyn Engine>, String>>,
    declared: HashMap<(String, String), Declared>,
    limits: HashMap<String, Arc<Semaphore>>,
    /// (blueprint, server, live fingerprint) → steps: one diff per distinct state.
    plans: Mutex<HashMap<StateKey, Planned>>,
    failures: AtomicUsize,
    /// The repository's `defaults.concurrency`.
    concurrency: usize,
}

impl Shared {
    /// The declared schema of the target's blueprint on its server.
    fn declared_for(&self, target: &Target) -> Declared {
        self.declared[&(target.blueprint.name.clone(), target.server.name.clone())].clone()
    }

    /// The steps for a target whose live schema is `live` (with its
    /// `fingerprint`, which callers need too), computed once per distinct state.
    fn plan(
        &self,
        target: &Target,
        engine: &dyn Engine,
        live: &Schema,
        fingerprint: &str,
    ) -> Planned {
        let declared = self.declared_for(target)?;
        let key = (
            target.blueprint.name.clone(),
            target.server.name.clone(),
            fingerprint.to_string(),
        );
        if let Some(hit) = self.plans.lock().expect("plan cache").get(&key) {
            return hit.clone();
        }
        let steps = engine
            .plan(live, &declared)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        self.plans
            .lock()
            .expect("plan cache")
            .insert(key, steps.clone());
        steps
    }
}

/// Plans, applies or drift-checks every selected tenant database of `repo`.
/// An apply goes wave by wave (see [`rollout`]); a plan reports the waves.
pub async fn run(repo: &Repo, options: &Options) -> anyhow::Result<Report> {
    if let Some(label) = &options.wave_by {
        targets::check_label(repo, &format!("--wave-by {label}"), label)?;
    }
    let mut targets = select(repo, &options.filters)?;
    if let Some(saved) = &options.saved {
        saved.check_targets(repo).map_err(anyhow::Error::msg)?;
        targets.retain(|t| saved.target(&t.tenant.name, &t.blueprint.name).is_some());
    }
    let shared = Arc::new(prepare(&targets, repo.concurrency).await);
    let progress = Progress::new(options.progress, targets.len());
    let source = match &options.wave_by {
        Some(label) => WaveSource::Label(label.clone()),
        None => WaveSource::Config(repo.waves.clone()),
    };
    let staged = options.mode != Mode::Drift && source != WaveSource::Config(Vec::new());
    let split = rollout::split(&targets, &source);
    let mut reports = Vec::new();
    let mut waves = Vec::new();
    let mut stopped: Option<String> = None;
    if options.mode == Mode::Apply {
        for (i, members) in split.waves.iter().enumerate() {
            let number = staged.then_some(i + 1);
            let batch: Vec<Target> = members.iter().map(|&m| targets[m]).collect();
            let mut wave = wave_report(i + 1, &split.rules[i], &batch);
            if let Some(reason) = &stopped {
                wave.status = WaveStatus::NotStarted;
                progress.finished(batch.len(), 0);
                reports.extend(batch.iter().map(|t| skipped(t, number, reason)));
                waves.push(wave);
                continue;
            }
            let budget = Budget::default();
            let done = run_batch(&batch, number, &shared, options, &budget, &progress).await;
            let not_ok = done.iter().filter(|r| !r.status.is_ok()).count();
            reports.extend(done);
            let label = match number {
                Some(n) => format!("wave {n} ({})", split.rules[i]),
                None => "the rollout".to_string(),
            };
            wave.status = WaveStatus::Stopped;
            if let Some(reason) = budget.stopped.lock().expect("budget").take() {
                stopped = Some(format!(
                    "{label}: {reason}; its remaining tenant databases were not started"
                ));
            } else if not_ok > 0 && staged {
                stopped = Some(format!(
                    "{label} did not converge ({not_ok} of {} tenant databases not applied or in sync)",
                    batch.len()
                ));
            } else {
                wave.status = WaveStatus::Converged;
                if i + 1 < split.waves.len()
                    && let Err(reason) =
                        after_wave(repo, options, i + 1, &split, &reports, &waves, &wave).await
                {
                    stopped = Some(reason);
                }
            }
            waves.push(wave);
        }
        let reason =
            "in no wave of `rollout.waves` (end the waves with `rest: true` to include it)";
        progress.finished(split.unassigned.len(), 0);
        reports.extend(
            split
                .unassigned
                .iter()
                .map(|&m| target_report(&targets[m], Status::Skipped, Some(reason.into()))),
        );
    } else {
        let mut wave_of: Vec<Option<usize>> = vec![None; targets.len()];
        for (i, members) in split.waves.iter().enumerate() {
            for &m in members {
                wave_of[m] = staged.then_some(i + 1);
            }
            if staged {
                let batch: Vec<Target> = members.iter().map(|&m| targets[m]).collect();
                waves.push(wave_report(i + 1, &split.rules[i], &batch));
            }
        }
        let numbered: Vec<(Target, Option<usize>)> = targets.iter().copied().zip(wave_of).collect();
        let budget = Budget::default();
        reports = run_numbered(&numbered, &shared, options, &budget, &progress).await;
    }
    progress.finish();
    if options.mode == Mode::Drift
        && options.filters.tenants.is_empty()
        && options.filters.selectors.is_empty()
        && options.filters.shard.is_none()
    {
        reports.extend(drift::orphans(repo, &shared, &options.filters).await);
    }
    let mut report = Report::new(options.mode, repo.root.display().to_string(), reports);
    if staged {
        report.waves = waves;
        report.unassigned = split
            .unassigned
            .iter()
            .map(|&m| member(&targets[m]))
            .collect();
    }
    report.stopped = stopped;
    Ok(report)
}

/// A target as a report's member.
fn member(target: &Target<'_>) -> Member {
    Member {
        tenant: target.tenant.name.clone(),
        database: target.database.database.clone(),
        server: target.server.name.clone(),
    }
}

fn wave_report(number: usize, rule: &str, batch: &[Target<'_>]) -> WaveReport {
    WaveReport {
        number,
        rule: rule.to_string(),
        members: batch.iter().map(member).collect(),
        status: WaveStatus::Planned,
    }
}

/// The entry of `target` with `status` and `message`, no steps yet; how
/// its statements are shown comes from the engine registry.
pub(crate) fn target_report(
    target: &Target<'_>,
    status: Status,
    message: Option<String>,
) -> TargetReport {
    let engine = engine::describe(target.server.engine);
    TargetReport {
        tenant: target.tenant.name.clone(),
        blueprint: target.blueprint.name.clone(),
        engine: target.server.engine,
        sql: engine.sql,
        fence: engine.fence,
        server: target.server.name.clone(),
        database: target.database.database.clone(),
        status,
        fingerprint: None,
        steps: Arc::new(Vec::new()),
        message,
        wave: None,
    }
}

/// The report of a target that was not started, and why.
fn skipped(target: &Target<'_>, wave: Option<usize>, reason: &str) -> TargetReport {
    let mut report = target_report(
        target,
        Status::Skipped,
        Some(format!("not started: {reason}")),
    );
    report.wave = wave;
    report
}

/// Between two waves: the `--between-waves` command, then `--pause`.
async fn after_wave(
    repo: &Repo,
    options: &Options,
    wave: usize,
    split: &rollout::Waves,
    reports: &[TargetReport],
    waves: &[WaveReport],
    current: &WaveReport,
) -> Result<(), String> {
    let count = split.waves.len();
    if let Some(command) = &options.between_waves {
        let mut so_far = Report::new(
            options.mode,
            repo.root.display().to_string(),
            reports.to_vec(),
        );
        so_far.waves = waves.to_vec();
        so_far.waves.push(current.clone());
        let file = tempfile::Builder::new()
            .prefix("tenantctl-wave-")
            .suffix(".json")
            .tempfile()
            .map_err(|e| format!("--between-waves: creating the report file: {e}"))?;
        serde_json::to_writer_pretty(file.as_file(), &so_far)
            .map_err(|e| format!("--between-waves: writing the report file: {e}"))?;
        rollout::between_waves(command, wave, count, file.path()).await?;
    }
    if options.pause {
        rollout::pause(wave, count).await?;
    }
    Ok(())
}

/// Runs one batch of targets, all in wave `wave`.
async fn run_batch(
    batch: &[Target<'_>],
    wave: Option<usize>,
    shared: &Arc<Shared>,
    options: &Options,
    budget: &Budget,
    progress: &Progress,
) -> Vec<TargetReport> {
    let numbered: Vec<(Target, Option<usize>)> = batch.iter().map(|t| (*t, wave)).collect();
    run_numbered(&numbered, shared, options, budget, progress).await
}

/// Runs targets concurrently (bounded overall and per server), each with its wave number.
async fn run_numbered(
    targets: &[(Target<'_>, Option<usize>)],
    shared: &Arc<Shared>,
    options: &Options,
    budget: &Budget,
    progress: &Progress,
) -> Vec<TargetReport> {
    let concurrency = options.concurrency.unwrap_or(shared.concurrency).max(1);
    futures::stream::iter(targets)
        .map(|(target, wave)| {
            let shared = shared.clone();
            async move {
                let _permit = shared.limits[&target.server.name]
                    .clone()
                    .acquire_owned()
                    .await;
                let mut report = run_target(target, &shared, options, budget).await;
                report.wave = *wave;
                let failed = report.status == Status::Failed;
                if failed {
                    shared.failures.fetch_add(1, Ordering::SeqCst);
                }
                if report.status != Status::Skipped {
                    budget.record(failed);
                }
                progress.finished(1, failed as usize);
                report
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Connects each server once and builds each blueprint's declared model once per server.
async fn prepare(targets: &[Target<'_>], concurrency: usize) -> Shared {
    let mut engines: HashMap<String, Result<Arc<dyn Engine>, String>> = HashMap::new();
    let mut limits = HashMap::new();
    for t in targets {
        if !engines.contains_key(&t.server.name) {
            let engine = engine::connect(t.server).await.map_err(|e| e.to_string());
            engines.insert(t.server.name.clone(), engine);
            limits.insert(
                t.server.name.clone(),
                Arc::new(Semaphore::new(t.server.max_connections)),
            );
        }
    }
    // Servers with a `dev_url` build their declared models there.
    let mut builders: HashMap<String, Result<Arc<dyn Engine>, String>> = HashMap::new();
    for t in targets {
        if t.server.dev_url.is_some() && !builders.contains_key(&t.server.name) {
            let engine = engine::connect(&t.server.build_server())
                .await
                .map_err(|e| e.to_string());
            builders.insert(t.server.name.clone(), engine);
        }
    }
    let mut declared = HashMap::new();
    for t in targets {
        let key = (t.blueprint.name.clone(), t.server.name.clone());
        if declared.contains_key(&key) {
            continue;
        }
        let builder = builders
            .get(&t.server.name)
            .unwrap_or(&engines[&t.server.name]);
        let schema = match builder {
            Ok(engine) => engine
                .declared_schema(t.blueprint)
                .await
                .map(Arc::new)
                .map_err(|e| format!("blueprint {}: {e}", t.blueprint.name)),
            Err(e) => Err(e.clone()),
        };
        declared.insert(key, schema);
    }
    Shared {
        engines,
        declared,
        limits,
        plans: Mutex::new(HashMap::new()),
        failures: AtomicUsize::new(0),
        concurrency,
    }
}

async fn run_target(
    target: &Target<'_>,
    shared: &Shared,
    options: &Options,
    budget: &Budget,
) -> TargetReport {
    if let Some(max) = options.max_failures
        && shared.failures.load(Ordering::SeqCst) >= max
    {
        return skipped(target, None, &format!("--max-failures {max} reached"));
    }
    if let Some(rate) = options.max_failure_rate
        && let Some(reason) = budget.exceeded(rate)
    {
        return skipped(target, None, &reason);
    }
    let mut report = target_report(target, Status::Failed, None);
    let engine = match &shared.engines[&target.server.name] {
        Ok(e) => e.clone(),
        Err(e) => {
            report.message = Some(crate::repo::env::redact_text(e));
            return report;
        }
    };
    let result = match options.mode {
        Mode::Plan => plan_target(target, shared, engine.as_ref(), &mut report).await,
        Mode::Apply => apply_target(target, shared, engine.as_ref(), options, &mut report).await,
        Mode::Drift => drift::check_target(target, shared, engine.as_ref(), &mut report).await,
    };
    if let Err(message) = result {
        report.status = Status::Failed;
        report.message = Some(message);
    }
    // Driver errors may quote a URL: no report shows a secret.
    report.message = report.message.map(|m| crate::repo::env::redact_text(&m));
    report
}

/// The empty schema of the declared schema's kind: what a new database holds.
fn empty_like(declared: &Schema) -> Schema {
    match declared {
        Schema::Sql(_) => Schema::Sql(Default::default()),
        Schema::Document(_) => Schema::Document(Default::default()),
        Schema::KeyValue(_) => Schema::KeyValue(Default::default()),
    }
}

async fn plan_target(
    target: &Target<'_>,
    shared: &Shared,
    engine: &dyn Engine,
    report: &mut TargetReport,
) -> Result<(), String> {
    let declared = shared.declared_for(target)?;
    let conn = engine
        .open(&target.database.database, false)
        .await
        .map_err(|e| e.to_string())?;
    let (live, exists) = match conn {
        Some(mut c) => (c.introspect().await.map_err(|e| e.to_string())?, true),
        None => (empty_like(&declared), false),
    };
    let fingerprint = live.fingerprint();
    report.steps = shared.plan(target, engine, &live, &fingerprint)?;
    report.fingerprint = exists.then_some(fingerprint);
    report.status = match (exists, report.steps.is_empty()) {
        (false, _) => Status::Create,
        (true, true) => Status::InSync,
        (true, false) => Status::Changes,
    };
    Ok(())
}

async fn apply_target(
    target: &Target<'_>,
    shared: &Shared,
    engine: &dyn Engine,
    options: &Options,
    report: &mut TargetReport,
) -> Result<(), String> {
    let allow_destructive = options.allow_destructive || target.blueprint.allow_destructive;
    // No declared model, nothing to do: do not create the database either.
    shared.declared_for(target)?;
    let mut conn: Box<dyn Connection> = engine
        .open_for(target.blueprint, &target.database.database, true)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the database could not be created")?;
    let planned: Mutex<Arc<Vec<Step>>> = Mutex::new(Arc::new(Vec::new()));
    let saved = options
        .saved
        .as_ref()
        .and_then(|s| s.target(&target.tenant.name, &target.blueprint.name));
    // A planner error is a failure; only the refusal rules below are refusals.
    let planner = |live: &Schema| -> Result<Vec<Step>, Refusal> {
        let fingerprint = live.fingerprint();
        let replanned = shared
            .plan(target, engine, live, &fingerprint)
            .map_err(Refusal::PlanFailed)?;
        *planned.lock().expect("planned steps") = replanned.clone();
        if let Some(saved) = saved {
            // A saved plan only authorises: what runs is always what was just planned.
            let unchanged = match &saved.fingerprint {
                Some(planned_against) => *planned_against == fingerprint,
                None => live.is_empty(),
            };
            if !unchanged {
                return Err(Refusal::Policy(format!(
                    "refused: the live schema changed since the plan was made (planned against {}, now {fingerprint}); make a new plan",
                    saved.fingerprint.as_deref().unwrap_or("a missing database"),
                )));
            }
            check_steps(&saved.steps, &replanned).map_err(Refusal::Policy)?;
        }
        let steps = replanned;
        let destructive: Vec<&str> = steps
            .iter()
            .filter(|s| s.has(HazardKind::Destructive))
            .map(|s| s.description.as_str())
            .collect();
        if !allow_destructive && !destructive.is_empty() {
            return Err(Refusal::Policy(format!(
                "refused: destructive step(s) not applied without --allow-destructive: {}",
                destructive.join("; ")
            )));
        }
        Ok(steps.as_ref().clone())
    };
    let record = HistoryRecord {
        applied_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tenantctl_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: options.git_commit.clone(),
        blueprint: target.blueprint.name.clone(),
        blueprint_hash: target.blueprint.hash.clone(),
        ..Default::default()
    };
    let outcome = conn.migrate(&planner, record).await;
    report.steps = planned.lock().expect("planned steps").clone();
    match outcome.map_err(|e: EngineError| e.to_string())? {
        MigrateOutcome::UpToDate => {
            report.status = Status::InSync;
            return Ok(());
        }
        MigrateOutcome::Refused(refusal) => {
            report.status = match refusal {
                Refusal::Policy(_) => Status::Refused,
                Refusal::PlanFailed(_) => Status::Failed,
            };
            report.message = Some(refusal.to_string());
            return Ok(());
        }
        MigrateOutcome::Applied { .. } => {}
    }
    // Converged only if a fresh plan is empty.
    let live = conn
        .introspect()
        .await
        .map_err(|e| format!("re-reading after apply: {e}"))?;
    let fingerprint = live.fingerprint();
    let remaining = shared.plan(target, engine, &live, &fingerprint)?;
    report.fingerprint = Some(fingerprint);
    if remaining.is_empty() {
        report.status = Status::Applied;
    } else {
        report.status = Status::NotConverged;
        let left: Vec<&str> = remaining.iter().map(|s| s.description.as_str()).collect();
        report.message = Some(format!(
            "still differs from the blueprint after apply: {}",
            left.join("; ")
        ));
    }
    Ok(())
}
