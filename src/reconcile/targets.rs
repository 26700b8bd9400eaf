//! Choosing the tenant databases a command works on.

use std::collections::BTreeSet;

use anyhow::bail;

use crate::repo::{Blueprint, Repo, Server, Tenant, TenantDatabase};

/// Which tenant databases to work on; empty lists mean all.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub tenants: Vec<String>,
    pub blueprints: Vec<String>,
    /// `key=value` label selectors; all must match.
    pub selectors: Vec<(String, String)>,
    /// Only these (tenant, blueprint) pairs, e.g. those a pull request affects.
    pub only: Option<BTreeSet<(String, String)>>,
}

/// One tenant database with everything needed to reconcile it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub tenant: &'a Tenant,
    pub database: &'a TenantDatabase,
    pub blueprint: &'a Blueprint,
    pub server: &'a Server,
}

/// The targets of `repo` that pass `filters`. Naming a tenant or blueprint
/// that does not exist is an error, so a typo never silently selects nothing.
pub fn select<'a>(repo: &'a Repo, filters: &Filters) -> anyhow::Result<Vec<Target<'a>>> {
    for t in &filters.tenants {
        if repo.tenant(t).is_none() {
            bail!(
                "--tenant {t}: no such tenant in {}",
                repo.root.join("tenants").display()
            );
        }
    }
    for b in &filters.blueprints {
        if !repo.blueprints.contains_key(b) {
            bail!(
                "--blueprint {b}: no such blueprint in {}",
                repo.root.join("blueprints").display()
            );
        }
    }
    for (key, _) in &filters.selectors {
        if !repo.tenants.iter().any(|t| t.labels.contains_key(key)) {
            let known: BTreeSet<&str> = repo
                .tenants
                .iter()
                .flat_map(|t| t.labels.keys().map(String::as_str))
                .collect();
            let known = if known.is_empty() {
                "no tenant has labels".to_string()
            } else {
                format!(
                    "the tenants' label keys are: {}",
                    known.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            bail!("--selector {key}=…: no tenant has a label {key:?}; {known}");
        }
    }
    let mut targets = Vec::new();
    for tenant in &repo.tenants {
        if !filters.tenants.is_empty() && !filters.tenants.contains(&tenant.name) {
            continue;
        }
        if !filters
            .selectors
            .iter()
            .all(|(k, v)| tenant.labels.get(k) == Some(v))
        {
            continue;
        }
        for database in &tenant.databases {
            if !filters.blueprints.is_empty() && !filters.blueprints.contains(&database.blueprint) {
                continue;
            }
            if let Some(only) = &filters.only
                && !only.contains(&(tenant.name.clone(), database.blueprint.clone()))
            {
                continue;
            }
            targets.push(Target {
                tenant,
                database,
                blueprint: &repo.blueprints[&database.blueprint],
                server: &repo.servers[&database.server],
            });
        }
    }
    Ok(targets)
}

/// Parses a `key=value` selector; the key must be non-empty.
pub fn parse_selector(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!(
            "expected KEY=VALUE (e.g. tier=enterprise), got {s:?}"
        )),
    }
}
