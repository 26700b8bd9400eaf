//! Plans and reports: what will happen (plan) or happened (apply) to each
//! tenant database, grouped so that a fleet in a handful of states reads as
//! a handful of entries, rendered as text, JSON or Markdown.

mod render;
mod saved;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

pub use crate::diff::Step;
pub use render::{Format, render};
pub use saved::{PlanOrigin, SavedPlan, SavedTarget, check_steps, declared_hash};

use crate::diff::HazardKind;
use crate::model::EngineKind;
use crate::repo::compare::DeclaredChanges;

/// Whether a report describes a plan, an apply or a drift check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Plan,
    Apply,
    Drift,
}

/// The state of one tenant database in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Plan: matches the blueprint. Apply: nothing needed doing.
    InSync,
    /// Plan: the database exists and needs the steps.
    Changes,
    /// Plan: the database does not exist yet; it is created, then the steps run.
    Create,
    /// Apply: the steps ran and the database now matches.
    Applied,
    /// Apply: not applied on purpose (destructive change without consent, ...).
    Refused,
    /// An error: could not connect, a statement failed (and was rolled back).
    Failed,
    /// Apply: ran, but the database still differs from the blueprint.
    NotConverged,
    /// Apply: not started (a failure budget, a wave that did not converge,
    /// a `--between-waves` check that failed, or in no wave); a re-run picks it up.
    Skipped,
    /// Drift: git moved since the last apply; the live schema is still what was last applied.
    Pending,
    /// Drift: the live schema differs from what tenantctl last applied (changed by hand).
    Drifted,
    /// Drift: declared, but the database does not exist.
    Missing,
    /// Drift: a database named like a tenant database that no tenant declares.
    Orphan,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InSync => "in-sync",
            Status::Changes => "changes",
            Status::Create => "create",
            Status::Applied => "applied",
            Status::Refused => "refused",
            Status::Failed => "failed",
            Status::NotConverged => "not-converged",
            Status::Skipped => "skipped",
            Status::Pending => "pending",
            Status::Drifted => "drifted",
            Status::Missing => "missing",
            Status::Orphan => "orphan",
        }
    }

    /// Whether this outcome counts as success for the exit code.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            Status::InSync | Status::Changes | Status::Create | Status::Applied
        )
    }
}

/// One tenant database's entry in a report.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub tenant: String,
    pub blueprint: String,
    pub engine: EngineKind,
    /// Whether the engine's statements are SQL (reports end each with `;`),
    /// as the engine registry says.
    pub sql: bool,
    /// The info string reports fence the statements with (`sql`, `js`, or
    /// empty), as the engine registry says.
    pub fence: &'static str,
    pub server: String,
    pub database: String,
    pub status: Status,
    /// Fingerprint of the live schema the plan was made against.
    pub fingerprint: Option<String>,
    /// Plan: the steps to run. Apply: the steps that ran (or would have).
    pub steps: Arc<Vec<Step>>,
    /// Why it failed, was refused or was not started.
    pub message: Option<String>,
    /// The rollout wave it belongs to (1-based), when the run has waves.
    pub wave: Option<usize>,
}

impl TargetReport {
    pub fn has(&self, kind: HazardKind) -> bool {
        self.steps.iter().any(|s| s.has(kind))
    }
}

/// One wave of a rollout as reported.
#[derive(Debug, Clone, Serialize)]
pub struct WaveReport {
    /// 1-based.
    pub number: usize,
    /// What puts a database in this wave, e.g. `wave=canary`, `10%`, `rest`.
    pub rule: String,
    /// Every member, in the order they are started.
    pub members: Vec<Member>,
    /// `planned` (plan), `converged`, `stopped` (did not converge, or the
    /// failure budget stopped it), `not-started`.
    pub status: WaveStatus,
}

/// Where a wave got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaveStatus {
    Planned,
    Converged,
    Stopped,
    NotStarted,
}

/// Tenant databases of one blueprint in the same state with the same steps.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub blueprint: String,
    pub engine: EngineKind,
    /// Whether the engine's statements are SQL (reports end each with `;`),
    /// as the engine registry says.
    pub sql: bool,
    /// The info string reports fence the statements with (`sql`, `js`, or
    /// empty), as the engine registry says.
    pub fence: &'static str,
    pub status: Status,
    pub steps: Arc<Vec<Step>>,
    pub message: Option<String>,
    /// `tenant (database)` of each member.
    pub members: Vec<Member>,
    /// Hazard kinds present in the steps, e.g. `destructive`.
    pub hazards: Vec<HazardKind>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Member {
    pub tenant: String,
    pub database: String,
    pub server: String,
}

/// Counts per status, and what was held back.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub total: usize,
    pub by_status: BTreeMap<&'static str, usize>,
    /// Databases whose plan has a destructive step.
    pub destructive: usize,
    /// Whether every database ended well (exit code 0 for apply).
    pub ok: bool,
    /// Whether any database has something to do (exit 2 with --detailed-exitcode).
    pub has_changes: bool,
}

/// A whole plan or apply run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    pub repo: String,
    pub targets: Vec<TargetReport>,
    pub groups: Vec<Group>,
    pub summary: Summary,
    /// PR mode (`--base`): what the change does to the declared state.
    pub declared: Option<DeclaredChanges>,
    /// The rollout waves (plan: which databases go in which wave; apply: how far it got).
    pub waves: Vec<WaveReport>,
    /// Databases in no wave of `rollout.waves` (apply skips them).
    pub unassigned: Vec<Member>,
    /// Why the rollout stopped starting tenant databases, when it did.
    pub stopped: Option<String>,
}

impl Report {
    /// Builds the report: sorts targets, groups them, counts.
    pub fn new(mode: Mode, repo: String, mut targets: Vec<TargetReport>) -> Self {
        targets.sort_by(|a, b| {
            (&a.blueprint, &a.tenant, &a.database).cmp(&(&b.blueprint, &b.tenant, &b.database))
        });
        let groups = group(&targets);
        let mut summary = Summary {
            total: targets.len(),
            ok: true,
            ..Default::default()
        };
        for t in &targets {
            *summary.by_status.entry(t.status.as_str()).or_default() += 1;
            summary.ok &= t.status.is_ok();
            if t.has(HazardKind::Destructive)
                && matches!(t.status, Status::Changes | Status::Create | Status::Refused)
            {
                summary.destructive += 1;
            }
            summary.has_changes |= match mode {
                Mode::Plan => matches!(t.status, Status::Changes | Status::Create),
                Mode::Apply | Mode::Drift => t.status != Status::InSync,
            };
        }
        Report {
            mode,
            repo,
            targets,
            groups,
            summary,
            declared: None,
            waves: Vec::new(),
            unassigned: Vec::new(),
            stopped: None,
        }
    }
}

fn group(targets: &[TargetReport]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: BTreeMap<(String, Status, Option<String>, u64), usize> = BTreeMap::new();
    for t in targets {
        let key = (
            t.blueprint.clone(),
            t.status,
            t.message.clone(),
            steps_key(&t.steps),
        );
        let member = Member {
            tenant: t.tenant.clone(),
            database: t.database.clone(),
            server: t.server.clone(),
        };
        match index.get(&key) {
            Some(&i) => groups[i].members.push(member),
            None => {
                index.insert(key, groups.len());
                let mut hazards: Vec<HazardKind> = t
                    .steps
                    .iter()
                    .flat_map(|s| s.hazards.iter().map(|h| h.kind))
                    .collect();
                hazards.sort();
                hazards.dedup();
                groups.push(Group {
                    blueprint: t.blueprint.clone(),
                    engine: t.engine,
                    sql: t.sql,
                    fence: t.fence,
                    status: t.status,
                    steps: t.steps.clone(),
                    message: t.message.clone(),
                    members: vec![member],
                    hazards,
                });
            }
        }
    }
    groups.sort_by(|a, b| (&a.blueprint, a.status).cmp(&(&b.blueprint, b.status)));
    groups
}

fn steps_key(steps: &[Step]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    steps.hash(&mut h);
    h.finish()
}
