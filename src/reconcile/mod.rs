//! Reconcile: pick the target tenant databases, then plan or apply each one
//! concurrently (bounded overall and per server). The declared model is
//! built once per blueprint per server, and tenants whose live schema has
//! the same fingerprint share one diff.

mod drift;
pub mod targets;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;

pub use targets::{Filters, Target, select};

use crate::diff::HazardKind;
use crate::engine::{
    self, Connection, Engine, EngineError, HistoryRecord, MigrateOutcome, Refusal,
};
use crate::model::Schema;
use crate::plan::{Mode, Report, SavedPlan, Status, Step, TargetReport, check_steps};
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
    /// Show a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Apply only this reviewed plan's databases, and each only when what is
    /// planned now (under its lock) equals the plan's steps.
    pub saved: Option<Arc<SavedPlan>>,
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
pub async fn run(repo: &Repo, options: &Options) -> anyhow::Result<Report> {
    let mut targets = select(repo, &options.filters)?;
    if let Some(saved) = &options.saved {
        saved.check_targets(repo).map_err(anyhow::Error::msg)?;
        targets.retain(|t| saved.target(&t.tenant.name, &t.blueprint.name).is_some());
    }
    let shared = Arc::new(prepare(&targets).await);
    let concurrency = options.concurrency.unwrap_or(repo.concurrency).max(1);
    let progress = progress_bar(options.progress, targets.len());
    let mut reports: Vec<TargetReport> = futures::stream::iter(targets)
        .map(|target| {
            let shared = shared.clone();
            let progress = progress.clone();
            async move {
                let _permit = shared.limits[&target.server.name]
                    .clone()
                    .acquire_owned()
                    .await;
                let report = run_target(&target, &shared, options).await;
                if report.status == Status::Failed {
                    shared.failures.fetch_add(1, Ordering::SeqCst);
                }
                progress.inc(1);
                report
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    progress.finish_and_clear();
    if options.mode == Mode::Drift
        && options.filters.tenants.is_empty()
        && options.filters.selectors.is_empty()
    {
        reports.extend(drift::orphans(repo, &shared, &options.filters).await);
    }
    Ok(Report::new(
        options.mode,
        repo.root.display().to_string(),
        reports,
    ))
}

/// Connects each server once and builds each blueprint's declared model once per server.
async fn prepare(targets: &[Target<'_>]) -> Shared {
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
    }
}

fn progress_bar(enabled: bool, len: usize) -> ProgressBar {
    if !enabled || len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {pos}/{len} tenant databases [{bar:30}] {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn run_target(target: &Target<'_>, shared: &Shared, options: &Options) -> TargetReport {
    let mut report = TargetReport {
        tenant: target.tenant.name.clone(),
        blueprint: target.blueprint.name.clone(),
        engine: target.server.engine,
        server: target.server.name.clone(),
        database: target.database.database.clone(),
        status: Status::Failed,
        fingerprint: None,
        steps: Arc::new(Vec::new()),
        message: None,
    };
    if options
        .max_failures
        .is_some_and(|max| shared.failures.load(Ordering::SeqCst) >= max)
    {
        report.status = Status::Skipped;
        return report;
    }
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
