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
    /// Only this shard of the targets (`--shard i/n`).
    pub shard: Option<Shard>,
}

/// `--shard i/n`: the i-th of n disjoint parts of the targets (1-based), by
/// a hash of each tenant database's identity (engine, server, database
/// name), so the split does not depend on the order tenants are listed in
/// and a tenant stays in its shard when others are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1..=count.
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Whether the target belongs to this shard.
    pub fn contains(&self, target: &Target<'_>) -> bool {
        identity_hash(target) % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || format!("expected i/n with 1 <= i <= n (e.g. 1/3), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let index: u64 = i.trim().parse().map_err(|_| usage())?;
        let count: u64 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 || index == 0 || index > count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }
}

/// A stable 64-bit hash of a tenant database's identity: the first 8 bytes
/// of SHA-256 over engine, server and database name (the same on every
/// machine and every tenantctl version, unlike `std`'s hasher).
pub fn identity_hash(target: &Target<'_>) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        target.server.engine.as_str(),
        target.server.name.as_str(),
        target.database.database.as_str(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
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
        check_label(repo, &format!("--selector {key}=…"), key)?;
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
            let target = Target {
                tenant,
                database,
                blueprint: &repo.blueprints[&database.blueprint],
                server: &repo.servers[&database.server],
            };
            if filters.shard.is_none_or(|s| s.contains(&target)) {
                targets.push(target);
            }
        }
    }
    Ok(targets)
}

/// Fails unless some tenant has the label `key` (so a typo never silently
/// selects nothing); the error starts with `what` and names the known keys.
pub fn check_label(repo: &Repo, what: &str, key: &str) -> anyhow::Result<()> {
    if repo.tenants.iter().any(|t| t.labels.contains_key(key)) {
        return Ok(());
    }
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
    bail!("{what}: no tenant has a label {key:?}; {known}");
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shard_values() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "1/0", "x", "1/", "/3", "-1/3", "1/3/4", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} accepted");
        }
    }
}
