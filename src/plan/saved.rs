//! Saved plans: `reconcile --plan --out plan.json` records, per tenant
//! database, the steps and the fingerprint of the live schema they were
//! planned against, with where the declared state came from (commit, a hash
//! of the declared state, the tenantctl version). A saved plan is a review
//! record, not a script: `reconcile --apply --plan-file plan.json` re-plans
//! each of its databases under the database's lock, from the repository at the
//! plan's commit and the live schema, and runs those freshly planned steps only
//! when they equal the saved ones; otherwise the database is refused.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Report, Status, Step};
use crate::repo::Repo;

/// The version tag of the saved-plan format.
pub const SAVED_PLAN_FORMAT: &str = "tenantctl-plan/2";

/// The format of tenantctl releases that applied the statements of the file as written.
const LEGACY_FORMAT: &str = "tenantctl-plan/1";

/// The version of this tenantctl, recorded in plans it makes.
const TENANTCTL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A reviewed plan: what `--apply --plan-file` may do, re-planned and compared.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always [`SAVED_PLAN_FORMAT`].
    pub format: String,
    /// The tenantctl that made the plan; only the same version applies it.
    pub tenantctl_version: String,
    /// RFC 3339 time the plan was made.
    pub created_at: String,
    /// The commit the declared state came from; `None`: not a git repository.
    pub git_commit: Option<String>,
    /// The worktree had uncommitted changes when the plan was made.
    pub dirty: bool,
    /// The tenantctl repository's directory inside its git worktree (`""` at
    /// its root), so a plan of one repository of a monorepo is not applied to another.
    pub repository_path: Option<String>,
    /// [`declared_hash`] of the declared state the plan was made from.
    pub declared_hash: String,
    /// Only the databases with something to do.
    pub targets: Vec<SavedTarget>,
}

/// The plan of one tenant database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedTarget {
    pub tenant: String,
    pub blueprint: String,
    pub server: String,
    pub database: String,
    /// Fingerprint of the live schema planned against; `None`: the database did not exist.
    pub fingerprint: Option<String>,
    pub steps: Vec<Step>,
}

/// Where the declared state of a plan came from.
#[derive(Debug, Clone, Default)]
pub struct PlanOrigin {
    /// The commit of the declared state, when in git.
    pub git_commit: Option<String>,
    /// Whether the worktree had uncommitted changes.
    pub dirty: bool,
    /// The tenantctl repository's directory inside the git worktree.
    pub repository_path: Option<String>,
}

impl SavedPlan {
    /// The saved form of a plan report of `repo`: every database with changes.
    pub fn from_report(report: &Report, repo: &Repo, origin: PlanOrigin) -> Self {
        let targets = report
            .targets
            .iter()
            .filter(|t| matches!(t.status, Status::Changes | Status::Create))
            .map(|t| SavedTarget {
                tenant: t.tenant.clone(),
                blueprint: t.blueprint.clone(),
                server: t.server.clone(),
                database: t.database.clone(),
                fingerprint: t.fingerprint.clone(),
                steps: t.steps.as_ref().clone(),
            })
            .collect();
        Self {
            format: SAVED_PLAN_FORMAT.into(),
            tenantctl_version: TENANTCTL_VERSION.into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            git_commit: origin.git_commit,
            dirty: origin.dirty,
            repository_path: origin.repository_path,
            declared_hash: declared_hash(repo),
            targets,
        }
    }

    /// Writes the plan as pretty JSON (atomically: write, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).expect("plan serialises");
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json + "\n")?;
        std::fs::rename(tmp, path)
    }

    /// Reads a plan file; refuses other formats and other tenantctl versions.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let located = |e: serde_json::Error| {
            format!(
                "{}:{}:{}: not a saved plan: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(located)?;
        match value.get("format").and_then(serde_json::Value::as_str) {
            Some(SAVED_PLAN_FORMAT) => {}
            Some(LEGACY_FORMAT) => {
                return Err(format!(
                    "{}: refused: plan format {LEGACY_FORMAT:?} was made by an older tenantctl, whose plans were run as written; \
                     this tenantctl re-plans and compares, and applies only {SAVED_PLAN_FORMAT:?} plans: make a new plan with \
                     `tenantctl reconcile --plan --out FILE`",
                    path.display()
                ));
            }
            other => {
                return Err(format!(
                    "{}: refused: plan format {} is not supported by this tenantctl (expects {SAVED_PLAN_FORMAT:?})",
                    path.display(),
                    other.map_or("(none)".to_string(), |f| format!("{f:?}")),
                ));
            }
        }
        let plan: SavedPlan = serde_json::from_str(&text).map_err(located)?;
        if plan.tenantctl_version != TENANTCTL_VERSION {
            return Err(format!(
                "{}: refused: the plan was made by tenantctl {}, this is tenantctl {TENANTCTL_VERSION}; a plan is applied only by \
                 the version that made it (another version may plan other steps): make a new plan with this version",
                path.display(),
                plan.tenantctl_version
            ));
        }
        Ok(plan)
    }

    /// Where to describe the plan's declared state in messages.
    pub fn at(&self) -> String {
        match &self.git_commit {
            Some(c) => format!("commit {}", c.chars().take(12).collect::<String>()),
            None => "the worktree (no git)".into(),
        }
    }

    /// Refuses `repo` unless its declared state is the one the plan was made from.
    pub fn check_declared(&self, repo: &Repo, loaded_from: &str) -> Result<(), String> {
        let now = declared_hash(repo);
        if now == self.declared_hash {
            return Ok(());
        }
        if self.dirty {
            return Err(format!(
                "refused: the plan was made from a worktree with uncommitted changes on top of {}; \
                 that declared state is not in git, and {loaded_from} declares another (declared state {}, now {now}): \
                 commit the changes and make a new plan",
                self.at(),
                self.declared_hash
            ));
        }
        Err(format!(
            "refused: {loaded_from} does not declare the state the plan was made from (declared state {}, now {now}): \
             the plan was edited, or made with another --env or for another repository; make a new plan",
            self.declared_hash
        ))
    }

    /// Refuses a plan that names a tenant database `repo` does not declare,
    /// or declares elsewhere: the plan only selects declared databases.
    pub fn check_targets(&self, repo: &Repo) -> Result<(), String> {
        let mut wrong = Vec::new();
        for saved in &self.targets {
            let declared = repo
                .tenant(&saved.tenant)
                .and_then(|t| t.databases.iter().find(|d| d.blueprint == saved.blueprint));
            match declared {
                None => wrong.push(format!(
                    "{}/{} (not declared)",
                    saved.tenant, saved.blueprint
                )),
                Some(d) if d.server != saved.server || d.database != saved.database => {
                    wrong.push(format!(
                        "{}/{} (plan: database {} on {}, declared: {} on {})",
                        saved.tenant,
                        saved.blueprint,
                        saved.database,
                        saved.server,
                        d.database,
                        d.server
                    ))
                }
                Some(_) => {}
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refused: the saved plan names tenant databases that the repository at {} does not declare: {}; \
             nothing was applied: make a new plan",
            self.at(),
            wrong.join(", ")
        ))
    }

    /// The saved plan of one tenant database, if the plan has one.
    pub fn target(&self, tenant: &str, blueprint: &str) -> Option<&SavedTarget> {
        self.targets
            .iter()
            .find(|t| t.tenant == tenant && t.blueprint == blueprint)
    }
}

/// Refuses unless the steps tenantctl planned now (`planned`) are exactly the
/// saved ones: same count, and each with the same description, statements and
/// hazards. The message says where they first differ.
pub fn check_steps(saved: &[Step], planned: &[Step]) -> Result<(), String> {
    if saved == planned {
        return Ok(());
    }
    let difference = if saved.len() != planned.len() {
        format!(
            "the plan file has {} step(s), tenantctl plans {}",
            saved.len(),
            planned.len()
        )
    } else {
        let (i, (s, p)) = saved
            .iter()
            .zip(planned)
            .enumerate()
            .find(|(_, (s, p))| s != p)
            .expect("unequal lists of equal length differ somewhere");
        let what = if s.description != p.description {
            format!(
                "the plan file says {:?}, tenantctl plans {:?}",
                s.description, p.description
            )
        } else if s.statements != p.statements {
            "its statements differ".to_string()
        } else {
            "its hazards differ".to_string()
        };
        format!("step {} ({}): {what}", i + 1, p.description)
    };
    Err(format!(
        "refused: the saved plan does not match what tenantctl plans now from the plan's commit and the live schema \
         ({difference}); nothing was run: make a new plan"
    ))
}

/// A hash of the declared state planning depends on: each server's engine and
/// placement options, each blueprint's files and settings, each tenant's
/// databases and labels. Not the server locations (they may differ between
/// the machine that plans and the one that applies).
pub fn declared_hash(repo: &Repo) -> String {
    let mut h = Sha256::new();
    let mut line = |parts: &[&str]| {
        for part in parts {
            h.update(serde_json::to_string(part).expect("strings serialise"));
            h.update(b" ");
        }
        h.update(b"\n");
    };
    for server in repo.servers.values() {
        let tenant_schemas_in = server.tenant_schemas_in.as_deref().unwrap_or("");
        let concurrent = format!("{:?}", server.concurrent_indexes);
        line(&[
            "server",
            &server.name,
            server.engine.as_str(),
            tenant_schemas_in,
            &concurrent,
        ]);
    }
    for blueprint in repo.blueprints.values() {
        let allow = blueprint.allow_destructive.to_string();
        line(&[
            "blueprint",
            &blueprint.name,
            blueprint.engine.as_str(),
            &blueprint.server,
            &blueprint.naming,
            &allow,
            &blueprint.hash,
        ]);
        for (key, value) in &blueprint.options {
            line(&["option", key, value]);
        }
    }
    for tenant in &repo.tenants {
        let protection = tenant.deletion_protection.to_string();
        line(&["tenant", &tenant.name, &protection]);
        for (key, value) in &tenant.labels {
            line(&["label", key, value]);
        }
        for d in &tenant.databases {
            let isolation = format!("{:?}", d.isolation);
            line(&["database", &d.blueprint, &d.server, &d.database, &isolation]);
        }
    }
    format!("sha256:{}", hex::encode(&h.finalize()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{Hazard, HazardKind};

    fn step(description: &str, statements: &[&str]) -> Step {
        Step {
            description: description.into(),
            hazards: Vec::new(),
            statements: statements.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn steps_must_match_exactly() {
        let planned = vec![
            step(
                "add column items.note TEXT",
                &["ALTER TABLE items ADD COLUMN note TEXT"],
            ),
            step("create index i", &["CREATE INDEX i ON items (note)"]),
        ];
        assert_eq!(check_steps(&planned, &planned), Ok(()));

        let mut edited = planned.clone();
        edited[0].statements = vec!["TRUNCATE items".into()];
        let e = check_steps(&edited, &planned).unwrap_err();
        assert!(
            e.contains("step 1") && e.contains("statements differ"),
            "{e}"
        );

        let mut added = planned.clone();
        added.push(step("drop table items", &["DROP TABLE items"]));
        let e = check_steps(&added, &planned).unwrap_err();
        assert!(e.contains("has 3 step(s), tenantctl plans 2"), "{e}");

        let e = check_steps(&planned[..1], &planned).unwrap_err();
        assert!(e.contains("has 1 step(s), tenantctl plans 2"), "{e}");

        let mut hazard_removed = planned.clone();
        hazard_removed[1].hazards.clear();
        let mut with_hazard = planned.clone();
        with_hazard[1].hazards.push(Hazard::new(
            HazardKind::Destructive,
            "drop-table",
            "drops data",
        ));
        let e = check_steps(&hazard_removed, &with_hazard).unwrap_err();
        assert!(e.contains("step 2") && e.contains("hazards differ"), "{e}");

        let mut renamed = planned.clone();
        renamed[1].description = "create index j".into();
        let e = check_steps(&renamed, &planned).unwrap_err();
        assert!(e.contains("the plan file says \"create index j\""), "{e}");
    }
}
