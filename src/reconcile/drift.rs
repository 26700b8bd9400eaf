//! The drift check: for every declared tenant database, whether it is
//! in sync, pending (git moved; live is still what was last applied),
//! drifted (live changed outside tenantctl), or missing; and which
//! databases on the servers look like tenant databases nobody declares
//! (orphans).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Filters, Shared, Target};
use crate::diff;
use crate::engine::{Engine, HistoryRecord};
use crate::model::{Schema, fingerprint};
use crate::names::check_name;
use crate::plan::{Status, Step, TargetReport};
use crate::repo::{Blueprint, Repo};

/// Fills `report` with the drift state of one declared tenant database.
pub(super) async fn check_target(
    target: &Target<'_>,
    shared: &Shared,
    engine: &dyn Engine,
    report: &mut TargetReport,
) -> Result<(), String> {
    let Some(mut conn) = engine
        .open(&target.database.database, false)
        .await
        .map_err(|e| e.to_string())?
    else {
        report.status = Status::Missing;
        report.message = Some(
            "declared, but the database does not exist: `reconcile --apply` creates it".into(),
        );
        return Ok(());
    };
    let live = conn.introspect().await.map_err(|e| e.to_string())?;
    let fingerprint = live.fingerprint();
    let to_blueprint = shared.plan(target, engine, &live, &fingerprint)?;
    report.fingerprint = Some(fingerprint.clone());
    if to_blueprint.is_empty() {
        report.status = Status::InSync;
        return Ok(());
    }
    let last = conn.last_applied().await.map_err(|e| e.to_string())?;
    let recorded = last.as_ref().and_then(recorded_fingerprint);
    match last {
        Some(record) if recorded.as_deref() == Some(fingerprint.as_str()) => {
            report.status = Status::Pending;
            report.message = Some(format!(
                "the blueprint changed since the last apply ({}); the database is still as applied. `reconcile --apply` runs these steps",
                applied(&record)
            ));
            report.steps = to_blueprint;
        }
        Some(record) if recorded.is_none() => {
            report.status = Status::Drifted;
            report.message = Some(format!(
                "differs from the blueprint; the last apply ({}) was recorded by an older tenantctl (fingerprint {}) without a schema snapshot, so whether it changed by hand since cannot be told: the steps below make it match",
                applied(&record),
                fingerprint::version_of(&record.schema_fingerprint)
            ));
            report.steps = to_blueprint;
        }
        Some(record) => {
            report.status = Status::Drifted;
            let by_hand = record
                .schema
                .as_deref()
                .and_then(|json| serde_json::from_str::<Schema>(json).ok())
                .and_then(|before| changes_since(engine, &before, &live))
                .filter(|steps| !steps.is_empty());
            match by_hand {
                Some(mut steps) => {
                    // These describe what happened, not what will run: no hazards.
                    steps.iter_mut().for_each(|s| s.hazards.clear());
                    report.message = Some(format!(
                        "changed outside tenantctl since the last apply ({}): the steps below are what was done by hand; `reconcile --apply` reverts them",
                        applied(&record)
                    ));
                    report.steps = Arc::new(steps);
                }
                None => {
                    report.message = Some(format!(
                        "differs from what tenantctl last applied ({}): the steps below restore the blueprint",
                        applied(&record)
                    ));
                    report.steps = to_blueprint;
                }
            }
        }
        None => {
            report.status = Status::Drifted;
            report.message = Some(
                "differs from the blueprint and was never applied by tenantctl (no history): the steps below make it match".into(),
            );
            report.steps = to_blueprint;
        }
    }
    Ok(())
}

/// The fingerprint, in the running version, of the schema the last apply
/// left: the recorded one when it is of this version, else re-derived from
/// the recorded schema snapshot (so an upgrade of tenantctl does not make the
/// fleet look changed); `None` when it is of another version and there is no
/// snapshot this version can read.
fn recorded_fingerprint(record: &HistoryRecord) -> Option<String> {
    if fingerprint::is_current(&record.schema_fingerprint) {
        return Some(record.schema_fingerprint.clone());
    }
    let json = record.schema.as_deref()?;
    serde_json::from_str::<Schema>(json)
        .ok()
        .map(|schema| schema.fingerprint())
}

/// What turned `before` (the schema tenantctl last applied) into `live`: the
/// engine's own plan where it can render one, else the changes the shared
/// SQL diff finds, described without statements.
fn changes_since(engine: &dyn Engine, before: &Schema, live: &Schema) -> Option<Vec<Step>> {
    if let Ok(steps) = engine.plan(before, live) {
        return Some(steps);
    }
    let (Schema::Sql(before), Schema::Sql(live)) = (before, live) else {
        return None;
    };
    Some(
        diff::diff(before, live)
            .iter()
            .map(|change| Step {
                description: change.describe(),
                hazards: Vec::new(),
                statements: Vec::new(),
            })
            .collect(),
    )
}

fn applied(record: &HistoryRecord) -> String {
    match &record.git_commit {
        Some(commit) => format!(
            "{} from commit {}",
            record.applied_at,
            &commit[..commit.len().min(12)]
        ),
        None => record.applied_at.clone(),
    }
}

/// Databases on the servers in use whose name follows a blueprint's naming
/// pattern but that no tenant declares.
pub(super) async fn orphans(repo: &Repo, shared: &Shared, filters: &Filters) -> Vec<TargetReport> {
    let declared: BTreeSet<(&str, &str)> = repo
        .tenants
        .iter()
        .flat_map(|t| {
            t.databases
                .iter()
                .map(|d| (d.server.as_str(), d.database.as_str()))
        })
        .collect();
    let mut found = Vec::new();
    for (server_name, engine) in &shared.engines {
        let Ok(engine) = engine else { continue };
        let Ok(databases) = engine.list_databases().await else {
            continue;
        };
        let server = &repo.servers[server_name];
        let shown = crate::engine::describe(server.engine);
        for blueprint in repo.blueprints.values() {
            if blueprint.engine != server.engine
                || (!filters.blueprints.is_empty() && !filters.blueprints.contains(&blueprint.name))
            {
                continue;
            }
            for database in &databases {
                let Some(tenant) = tenant_of(blueprint, database) else {
                    continue;
                };
                if declared.contains(&(server_name.as_str(), database.as_str())) {
                    continue;
                }
                found.push(TargetReport {
                    tenant,
                    blueprint: blueprint.name.clone(),
                    engine: server.engine,
                    sql: shown.sql,
                    fence: shown.fence,
                    server: server_name.clone(),
                    database: database.clone(),
                    status: Status::Orphan,
                    fingerprint: None,
                    steps: Arc::new(Vec::new()),
                    message: Some("no tenant in tenants/ declares this database".into()),
                    wave: None,
                });
            }
        }
    }
    found
}

/// The tenant a database name belongs to under `blueprint`'s naming pattern.
fn tenant_of(blueprint: &Blueprint, database: &str) -> Option<String> {
    let pattern = blueprint.naming.replace("{blueprint}", &blueprint.name);
    let (prefix, suffix) = pattern.split_once("{tenant}")?;
    let tenant = database.strip_prefix(prefix)?.strip_suffix(suffix)?;
    check_name(tenant).ok().map(|_| tenant.to_string())
}
