//! Saved plans: `reconcile --plan --out plan.json` records, per tenant
//! database, the steps and the fingerprint of the live schema they were
//! planned against; `reconcile --apply --plan-file plan.json` applies exactly
//! those steps and refuses a database whose live schema changed since.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Report, Status, Step};

/// The version tag of the saved-plan format.
pub const SAVED_PLAN_FORMAT: &str = "tenantctl-plan/1";

/// A reviewed plan, to be applied exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always [`SAVED_PLAN_FORMAT`].
    pub format: String,
    pub created_at: String,
    /// The commit the declared state came from, when known.
    pub git_commit: Option<String>,
    /// Only the databases with something to do.
    pub targets: Vec<SavedTarget>,
}

/// The plan of one tenant database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedTarget {
    pub tenant: String,
    pub blueprint: String,
    pub server: String,
    pub database: String,
    /// Fingerprint of the live schema planned against; `None`: the database did not exist.
    pub fingerprint: Option<String>,
    pub steps: Vec<Step>,
}

impl SavedPlan {
    /// The saved form of a plan report: every database with changes.
    pub fn from_report(report: &Report, git_commit: Option<String>) -> Self {
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
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            git_commit,
            targets,
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).expect("plan serialises");
        // Write then rename, so a crash never leaves half a plan behind.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json + "\n")?;
        std::fs::rename(tmp, path)
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan: SavedPlan = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: not a saved plan: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if plan.format != SAVED_PLAN_FORMAT {
            return Err(format!(
                "{}: plan format {:?} is not supported by this tenantctl (expects {SAVED_PLAN_FORMAT:?})",
                path.display(),
                plan.format
            ));
        }
        Ok(plan)
    }

    /// The saved plan of one tenant database, if the plan has one.
    pub fn target(&self, tenant: &str, blueprint: &str) -> Option<&SavedTarget> {
        self.targets
            .iter()
            .find(|t| t.tenant == tenant && t.blueprint == blueprint)
    }
}
