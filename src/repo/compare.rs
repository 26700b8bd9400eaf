//! What a change does to the declared state: blueprints and tenants added,
//! removed or changed between two loaded repositories (PR mode, `--base`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use similar::TextDiff;

use super::{Repo, Tenant};

/// The declared-state difference between a base revision and the head.
#[derive(Debug, Clone, Serialize)]
pub struct DeclaredChanges {
    /// The base commit (full id).
    pub base: String,
    pub blueprints: Vec<BlueprintChange>,
    pub tenants: Vec<TenantChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// A blueprint's change, with a unified diff of its files.
#[derive(Debug, Clone, Serialize)]
pub struct BlueprintChange {
    pub name: String,
    pub change: ChangeKind,
    pub diff: String,
}

/// A tenant's change, with one line per thing that changed.
#[derive(Debug, Clone, Serialize)]
pub struct TenantChange {
    pub name: String,
    pub change: ChangeKind,
    pub details: Vec<String>,
}

impl DeclaredChanges {
    /// Compares the declared state of `base` (at commit `base_commit`) with `head`.
    pub fn between(base: &Repo, head: &Repo, base_commit: &str) -> Self {
        let names: BTreeSet<&String> = base
            .blueprints
            .keys()
            .chain(head.blueprints.keys())
            .collect();
        let mut blueprints = Vec::new();
        for name in names {
            let (old, new) = (base.blueprints.get(name), head.blueprints.get(name));
            let change = match (old, new) {
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(o), Some(n)) if o.hash != n.hash => ChangeKind::Changed,
                _ => continue,
            };
            let mut diff = String::new();
            for (file, o, n) in [
                (
                    "blueprint.yaml",
                    old.map(|b| b.meta_source.as_str()),
                    new.map(|b| b.meta_source.as_str()),
                ),
                (
                    new.or(old)
                        .map(|b| b.engine.schema_file())
                        .unwrap_or("schema"),
                    old.map(|b| b.source.as_str()),
                    new.map(|b| b.source.as_str()),
                ),
            ] {
                let (o, n) = (o.unwrap_or(""), n.unwrap_or(""));
                if o != n {
                    let path = format!("blueprints/{name}/{file}");
                    diff.push_str(
                        &TextDiff::from_lines(o, n)
                            .unified_diff()
                            .context_radius(3)
                            .header(&format!("a/{path}"), &format!("b/{path}"))
                            .to_string(),
                    );
                }
            }
            blueprints.push(BlueprintChange {
                name: name.clone(),
                change,
                diff,
            });
        }
        let old: BTreeMap<&str, &Tenant> =
            base.tenants.iter().map(|t| (t.name.as_str(), t)).collect();
        let new: BTreeMap<&str, &Tenant> =
            head.tenants.iter().map(|t| (t.name.as_str(), t)).collect();
        let mut tenants = Vec::new();
        for name in old.keys().chain(new.keys()).collect::<BTreeSet<_>>() {
            let (change, details) = match (old.get(name), new.get(name)) {
                (None, Some(t)) => (
                    ChangeKind::Added,
                    t.databases
                        .iter()
                        .map(|d| format!("+ {} ({})", d.database, d.server))
                        .collect(),
                ),
                (Some(t), None) => (
                    ChangeKind::Removed,
                    t.databases
                        .iter()
                        .map(|d| {
                            format!(
                                "- {} ({}): its database becomes an orphan (reported by `tenantctl drift`, never dropped automatically)",
                                d.database, d.server
                            )
                        })
                        .collect(),
                ),
                (Some(o), Some(n)) => {
                    let details = tenant_details(o, n);
                    if details.is_empty() {
                        continue;
                    }
                    (ChangeKind::Changed, details)
                }
                (None, None) => continue,
            };
            tenants.push(TenantChange {
                name: name.to_string(),
                change,
                details,
            });
        }
        Self {
            base: base_commit.to_string(),
            blueprints,
            tenants,
        }
    }

    /// The (tenant, blueprint) databases of `head` that the change touches.
    pub fn affected_databases(&self, head: &Repo) -> BTreeSet<(String, String)> {
        head.tenants
            .iter()
            .flat_map(|t| {
                t.databases
                    .iter()
                    .map(move |d| (t.name.clone(), d.blueprint.clone()))
            })
            .filter(|(tenant, blueprint)| self.affects(tenant, blueprint))
            .collect()
    }

    /// Whether the change touches the database of `tenant` for `blueprint`.
    pub fn affects(&self, tenant: &str, blueprint: &str) -> bool {
        self.blueprints
            .iter()
            .any(|b| b.name == blueprint && b.change != ChangeKind::Removed)
            || self
                .tenants
                .iter()
                .any(|t| t.name == tenant && t.change != ChangeKind::Removed)
    }
}

fn tenant_details(old: &Tenant, new: &Tenant) -> Vec<String> {
    let mut details = Vec::new();
    for d in &new.databases {
        match old.databases.iter().find(|o| o.blueprint == d.blueprint) {
            None => details.push(format!("+ {} ({})", d.database, d.server)),
            Some(o) if o != d => details.push(format!(
                "~ {}: {} → {} ({})",
                d.blueprint, o.database, d.database, d.server
            )),
            Some(_) => {}
        }
    }
    for o in &old.databases {
        if !new.databases.iter().any(|d| d.blueprint == o.blueprint) {
            details.push(format!(
                "- {} ({}): its database becomes an orphan (reported by `tenantctl drift`, never dropped automatically)",
                o.database, o.server
            ));
        }
    }
    if old.labels != new.labels {
        details.push(format!("labels: {:?} → {:?}", old.labels, new.labels));
    }
    if old.deletion_protection != new.deletion_protection {
        details.push(format!(
            "deletion_protection: {} → {}",
            old.deletion_protection, new.deletion_protection
        ));
    }
    details
}
