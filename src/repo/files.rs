//! The on-disk formats (serde types that mirror the YAML) and their loading
//! into the resolved types of [`super`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use marked_yaml::Spanned;
use serde::Deserialize;

use super::yaml::{self, position};
use super::{
    Blueprint, CONFIG_FILE, EngineChecks, Isolation, RepoSource, Seen, Server, Tenant,
    TenantDatabase, WaveRule, check_naming, check_schema_source, hash_blueprint,
};
use crate::diagnostic::{Diagnostic, Position};
use crate::model::EngineKind;
use crate::names::check_name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    servers: HashMap<Spanned<String>, ServerFile>,
    #[serde(default)]
    defaults: DefaultsFile,
    #[serde(default)]
    environments: HashMap<Spanned<String>, EnvironmentFile>,
    rollout: Option<RolloutFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutFile {
    waves: Vec<Spanned<WaveFile>>,
}

/// One wave: exactly one of the three keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaveFile {
    selector: Option<Spanned<String>>,
    percent: Option<Spanned<u32>>,
    rest: Option<Spanned<bool>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    engine: Spanned<EngineKind>,
    url: Option<Spanned<String>>,
    dev_url: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    max_connections: Option<usize>,
    lock_timeout: Option<Spanned<String>>,
    statement_timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    concurrent_indexes: Option<bool>,
    tenant_schemas_in: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    concurrency: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentFile {
    #[serde(default)]
    servers: HashMap<Spanned<String>, ServerOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerOverride {
    url: Option<Spanned<String>>,
    dev_url: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    max_connections: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlueprintFile {
    engine: Spanned<EngineKind>,
    server: Spanned<String>,
    description: Option<String>,
    naming: Option<Spanned<String>>,
    #[serde(default)]
    policy: PolicyFile,
    #[serde(default)]
    options: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow_destructive: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    tenants: Vec<TenantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    name: Spanned<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    databases: Vec<DatabaseEntry>,
    #[serde(default)]
    deletion_protection: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatabaseEntry {
    blueprint: Spanned<String>,
    server: Option<Spanned<String>>,
    isolation: Option<Isolation>,
}

/// What `tenantctl.yaml` resolves to.
pub(super) struct LoadedConfig {
    pub servers: BTreeMap<String, Server>,
    pub concurrency: usize,
    pub waves: Vec<WaveRule>,
    /// Whether the file parsed: when it did not (its one problem is already
    /// reported), the servers are unknown and references to them are not checked.
    pub parsed: bool,
}

fn diag(file: &Path, pos: Position, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(file, pos.line, pos.column, message)
}

fn read(source: &dyn RepoSource, path: &Path, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match source.read(path) {
        // A UTF-8 byte-order mark is not part of the text.
        Ok(text) => text.map(|t| match t.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => t,
        }),
        Err(e) => {
            diags.push(Diagnostic::file(path, format!("cannot read: {e}")));
            None
        }
    }
}

/// A string server setting with `${VAR}` / `${VAR:-default}` expanded from
/// the environment; a malformed reference or an unset variable is a problem
/// located at the setting.
fn expand_setting(
    value: &Spanned<String>,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match super::env::expand_env(value) {
        Ok(expanded) => Some(expanded),
        Err(e) => {
            diags.push(diag(file, position(value), e));
            None
        }
    }
}

/// Checks the `${VAR}` syntax of a URL without resolving it: URLs carry
/// secrets, so their variables are only read when connecting.
fn check_url_template(value: &Spanned<String>, file: &Path, diags: &mut Vec<Diagnostic>) {
    if let Err(e) = super::env::expand(value, |_| Some(String::from("x"))) {
        diags.push(diag(file, position(value), e));
    }
}

fn parse_duration(
    value: &Spanned<String>,
    file: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    let expanded = expand_setting(value, file, diags)?;
    match humantime::parse_duration(&expanded) {
        Ok(d) => Some(d),
        Err(e) => {
            diags.push(diag(
                file,
                position(value),
                format!("invalid duration {expanded:?}: {e} (e.g. 30s, 5m)"),
            ));
            None
        }
    }
}

pub(super) fn load_config(
    source: &dyn RepoSource,
    root: &Path,
    env: Option<&str>,
    checks: &dyn EngineChecks,
    diags: &mut Vec<Diagnostic>,
) -> LoadedConfig {
    let file = Path::new(CONFIG_FILE);
    let mut loaded = LoadedConfig {
        servers: BTreeMap::new(),
        concurrency: 8,
        waves: Vec::new(),
        parsed: false,
    };
    let Some(text) = read(source, file, diags) else {
        if diags.is_empty() {
            diags.push(Diagnostic::file(
                file,
                format!(
                    "not found in {}: is --repo pointing at a tenantctl repository?",
                    root.display()
                ),
            ));
        }
        return loaded;
    };
    let config: ConfigFile = match yaml::from_str(CONFIG_FILE, &text) {
        Ok(c) => c,
        Err(d) => {
            diags.push(d);
            return loaded;
        }
    };
    loaded.parsed = true;
    if let Some(n) = config.defaults.concurrency {
        loaded.concurrency = n.max(1);
    }
    if let Some(rollout) = &config.rollout {
        loaded.waves = load_waves(rollout, file, diags);
    }
    let mut overrides: HashMap<String, ServerOverride> = HashMap::new();
    if let Some(env) = env {
        match config
            .environments
            .into_iter()
            .find(|(name, _)| name.as_str() == env)
        {
            Some((_, environment)) => {
                for (name, o) in environment.servers {
                    if !config.servers.contains_key(name.as_str()) {
                        diags.push(diag(
                            file,
                            position(&name),
                            format!("environment {env}: unknown server {:?}", name.as_str()),
                        ));
                    }
                    overrides.insert(name.to_string(), o);
                }
            }
            None => diags.push(Diagnostic::file(
                file,
                format!("environment {env:?} is not declared under environments:"),
            )),
        }
    }
    for (name, server) in config.servers {
        let pos = position(&name);
        // A bad name is reported, and the entry still checked and kept, so
        // its other problems are reported too and references to it resolve.
        if let Err(e) = check_name(&name) {
            diags.push(diag(file, pos, format!("server {e}")));
        }
        let mut s = server.clone();
        if let Some(o) = overrides.remove(name.as_str()) {
            s.url = o.url.or(s.url);
            s.dev_url = o.dev_url.or(s.dev_url);
            s.path = o.path.or(s.path);
            s.max_connections = o.max_connections.or(s.max_connections);
        }
        let engine = *s.engine;
        let rules = checks.rules(engine);
        match rules.needs_path {
            true if s.path.is_none() => {
                diags.push(diag(file, pos, format!("server {}: engine {engine} needs `path:` (a directory for the database files)", name.as_str())));
            }
            true => {}
            false if s.url.is_none() => {
                diags.push(diag(
                    file,
                    pos,
                    format!(
                        "server {}: engine {engine} needs `url:` (use ${{VAR}} for credentials)",
                        name.as_str()
                    ),
                ));
            }
            _ => {}
        }
        if s.dev_url.is_some() && !rules.dev_url {
            let built_on_server: Vec<String> = checks
                .engines()
                .into_iter()
                .filter(|&e| checks.rules(e).dev_url)
                .map(|e| e.to_string())
                .collect();
            diags.push(diag(
                file,
                pos,
                format!(
                    "server {}: `dev_url` is for engines {} (a {engine} declared model is not built on the server)",
                    name.as_str(),
                    built_on_server.join(" and ")
                ),
            ));
        }
        let lock_timeout = s
            .lock_timeout
            .as_ref()
            .and_then(|v| parse_duration(v, file, diags));
        let statement_timeout = s
            .statement_timeout
            .as_ref()
            .and_then(|v| parse_duration(v, file, diags));
        let connect_timeout = s
            .connect_timeout
            .as_ref()
            .and_then(|v| parse_duration(v, file, diags));
        if let (Some(value), Some(d)) = (&s.connect_timeout, connect_timeout)
            && d.is_zero()
        {
            diags.push(diag(
                file,
                position(value),
                "connect_timeout must be more than 0s: it bounds every connection attempt",
            ));
        }
        for url in [&s.url, &s.dev_url].into_iter().flatten() {
            check_url_template(url, file, diags);
        }
        let path = s.path.as_ref().and_then(|p| expand_setting(p, file, diags));
        let tenant_schemas_in = s
            .tenant_schemas_in
            .as_ref()
            .and_then(|v| expand_setting(v, file, diags));
        loaded.servers.insert(
            name.to_string(),
            Server {
                name: name.to_string(),
                engine,
                url: s.url.map(|u| u.to_string()),
                dev_url: s.dev_url.map(|u| u.to_string()),
                path: path.map(|p| root.join(p)),
                max_connections: s.max_connections.unwrap_or(16).max(1),
                lock_timeout: lock_timeout.unwrap_or(Duration::from_secs(30)),
                statement_timeout,
                connect_timeout: connect_timeout.unwrap_or(super::DEFAULT_CONNECT_TIMEOUT),
                concurrent_indexes: s.concurrent_indexes,
                tenant_schemas_in,
            },
        );
        for problem in checks.check_server(&loaded.servers[name.as_str()]) {
            diags.push(diag(
                file,
                pos,
                format!("server {}: {problem}", name.as_str()),
            ));
        }
    }
    loaded
}

/// `rollout.waves`: each wave has exactly one of `selector: KEY=VALUE`,
/// `percent: 1..100` or `rest: true`, and `rest` can only be the last wave.
fn load_waves(rollout: &RolloutFile, file: &Path, diags: &mut Vec<Diagnostic>) -> Vec<WaveRule> {
    let mut waves = Vec::new();
    let count = rollout.waves.len();
    for (i, wave) in rollout.waves.iter().enumerate() {
        let n = i + 1;
        let set = [
            wave.selector.is_some(),
            wave.percent.is_some(),
            wave.rest.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if set != 1 {
            diags.push(diag(
                file,
                position(wave),
                format!(
                    "rollout wave {n}: give exactly one of `selector: KEY=VALUE`, `percent: P` or `rest: true` (found {set})"
                ),
            ));
            continue;
        }
        if let Some(selector) = &wave.selector {
            match super::parse_selector(selector) {
                Ok((k, v)) => waves.push(WaveRule::Selector(k, v)),
                Err(e) => diags.push(diag(
                    file,
                    position(selector),
                    format!("rollout wave {n}: selector: {e}"),
                )),
            }
        } else if let Some(percent) = &wave.percent {
            if (1..=100).contains(&**percent) {
                waves.push(WaveRule::Percent(**percent));
            } else {
                diags.push(diag(
                    file,
                    position(percent),
                    format!(
                        "rollout wave {n}: percent must be 1 to 100, got {}",
                        **percent
                    ),
                ));
            }
        } else if let Some(rest) = &wave.rest {
            if !**rest {
                diags.push(diag(
                    file,
                    position(rest),
                    format!("rollout wave {n}: `rest: false` means nothing; write `rest: true` or remove the wave"),
                ));
            } else if n != count {
                diags.push(diag(
                    file,
                    position(rest),
                    format!("rollout wave {n}: `rest: true` takes every tenant database left, so it must be the last wave"),
                ));
            } else {
                waves.push(WaveRule::Rest);
            }
        }
    }
    if count == 0 {
        diags.push(Diagnostic::file(
            file,
            "rollout: `waves:` is empty; list at least one wave or remove `rollout:`",
        ));
    }
    waves
}

/// `servers` is `None` when `tenantctl.yaml` could not be read: references
/// to servers are then not checked, since that file's problem is the cause.
pub(super) fn load_blueprints(
    source: &dyn RepoSource,
    servers: Option<&BTreeMap<String, Server>>,
    checks: &dyn EngineChecks,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Blueprint> {
    let mut blueprints = BTreeMap::new();
    let dir = Path::new("blueprints");
    let names = match source.list(dir) {
        Ok(n) => n,
        Err(e) => {
            diags.push(Diagnostic::file(dir, format!("cannot list: {e}")));
            return blueprints;
        }
    };
    for name in names {
        let bp_dir = dir.join(&name);
        if !source.is_dir(&bp_dir) {
            continue;
        }
        let meta_path = bp_dir.join("blueprint.yaml");
        // Reported, and the blueprint still checked and kept (see servers).
        if let Err(e) = check_name(&name) {
            diags.push(Diagnostic::file(&bp_dir, format!("blueprint {e}")));
        }
        let Some(meta_text) = read(source, &meta_path, diags) else {
            diags.push(Diagnostic::file(&meta_path, "missing: every blueprint directory needs a blueprint.yaml with engine: and server:"));
            continue;
        };
        let meta: BlueprintFile = match yaml::from_str(&meta_path.to_string_lossy(), &meta_text) {
            Ok(m) => m,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        let engine = *meta.engine;
        match servers.map(|all| (all, all.get(meta.server.as_str()))) {
            None => {}
            Some((servers, None)) => diags.push(diag(
                &meta_path,
                position(&meta.server),
                unknown_server(&meta.server, servers),
            )),
            Some((_, Some(s))) if s.engine != engine => diags.push(diag(
                &meta_path,
                position(&meta.server),
                format!(
                    "server {:?} is a {} server but this blueprint's engine is {engine}",
                    meta.server.as_str(),
                    s.engine
                ),
            )),
            Some(_) => {}
        }
        let naming = match &meta.naming {
            Some(n) => {
                if let Err(e) = check_naming(n) {
                    diags.push(diag(&meta_path, position(n), e));
                }
                n.to_string()
            }
            None => checks.rules(engine).default_naming.to_string(),
        };
        for (key, value) in &meta.options {
            if let Err(e) = checks.check_blueprint_option(engine, key, value) {
                diags.push(diag(&meta_path, position(value), e));
            }
        }
        let schema_path = bp_dir.join(engine.schema_file());
        let Some(schema) = read(source, &schema_path, diags) else {
            diags.push(Diagnostic::file(
                &schema_path,
                format!(
                    "missing: a {engine} blueprint keeps its schema in {}",
                    engine.schema_file()
                ),
            ));
            continue;
        };
        let statements = check_schema_source(
            &schema_path,
            engine,
            checks.rules(engine).schema,
            &schema,
            diags,
        );
        blueprints.insert(
            name.clone(),
            Blueprint {
                hash: hash_blueprint(&meta_text, &schema),
                name,
                engine,
                server: meta.server.to_string(),
                description: meta.description,
                naming,
                allow_destructive: meta.policy.allow_destructive,
                options: meta
                    .options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                schema_path,
                source: schema,
                meta_source: meta_text,
                statements,
            },
        );
    }
    blueprints
}

fn unknown_server(name: &str, servers: &BTreeMap<String, Server>) -> String {
    let known: Vec<&str> = servers.keys().map(String::as_str).collect();
    format!(
        "unknown server {name:?}; tenantctl.yaml declares: {}",
        known.join(", ")
    )
}

/// `servers` is `None` when `tenantctl.yaml` could not be read (see
/// [`load_blueprints`]); a blueprint whose directory exists but did not load
/// is not reported again by the tenants that use it.
pub(super) fn load_tenants(
    source: &dyn RepoSource,
    servers: Option<&BTreeMap<String, Server>>,
    blueprints: &BTreeMap<String, Blueprint>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Tenant> {
    let mut tenants = Vec::new();
    let dir = Path::new("tenants");
    let files = match source.list(dir) {
        Ok(f) => f,
        Err(e) => {
            diags.push(Diagnostic::file(dir, format!("cannot list: {e}")));
            return tenants;
        }
    };
    let mut seen_tenants: Seen = HashMap::new();
    let mut seen_databases: Seen = HashMap::new();
    for name in files
        .iter()
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
    {
        let file = dir.join(name);
        let Some(text) = read(source, &file, diags) else {
            continue;
        };
        let parsed: TenantsFile = match yaml::from_str(&file.to_string_lossy(), &text) {
            Ok(p) => p,
            Err(d) => {
                diags.push(d);
                continue;
            }
        };
        for entry in parsed.tenants {
            if let Some(t) = resolve_tenant(
                source,
                &file,
                entry,
                servers,
                blueprints,
                &mut seen_tenants,
                &mut seen_databases,
                diags,
            ) {
                tenants.push(t);
            }
        }
    }
    tenants.sort_by(|a, b| a.name.cmp(&b.name));
    tenants
}

// The loader's context is passed piece by piece, as by its callers.
#[allow(clippy::ptr_arg, clippy::too_many_arguments)]
fn resolve_tenant(
    source: &dyn RepoSource,
    file: &Path,
    entry: TenantEntry,
    servers: Option<&BTreeMap<String, Server>>,
    blueprints: &BTreeMap<String, Blueprint>,
    seen_tenants: &mut Seen,
    seen_databases: &mut Seen,
    diags: &mut Vec<Diagnostic>,
) -> Option<Tenant> {
    let pos = position(&entry.name);
    let name = entry.name.to_string();
    // Reported, and the entry still checked, so each of its problems shows.
    if let Err(e) = check_name(&name) {
        diags.push(diag(file, pos, format!("tenant {e}")));
    }
    if let Some((first_file, first)) = seen_tenants.get(&name) {
        diags.push(diag(
            file,
            pos,
            format!(
                "duplicate tenant {name:?}: first declared at {}:{}:{}",
                first_file.display(),
                first.line,
                first.column
            ),
        ));
        return None;
    }
    seen_tenants.insert(name.clone(), (file.to_path_buf(), pos));
    if entry.databases.is_empty() {
        diags.push(diag(
            file,
            pos,
            format!("tenant {name:?} has no databases: list at least one blueprint"),
        ));
    }
    let mut databases = Vec::new();
    for db in entry.databases {
        let bpos = position(&db.blueprint);
        let Some(blueprint) = blueprints.get(db.blueprint.as_str()) else {
            if check_name(&db.blueprint).is_ok()
                && source.is_dir(&Path::new("blueprints").join(db.blueprint.as_str()))
            {
                // The blueprint exists but did not load: its own problem is reported.
                continue;
            }
            let known: Vec<&str> = blueprints.keys().map(String::as_str).collect();
            diags.push(diag(
                file,
                bpos,
                format!(
                    "tenant {name:?}: unknown blueprint {:?}; blueprints/ has: {}",
                    db.blueprint.as_str(),
                    known.join(", ")
                ),
            ));
            continue;
        };
        let server = match (&db.server, servers) {
            (Some(s), None) => s.to_string(),
            (Some(s), Some(servers)) => match servers.get(s.as_str()) {
                None => {
                    diags.push(diag(
                        file,
                        position(s),
                        format!("tenant {name:?}: {}", unknown_server(s, servers)),
                    ));
                    continue;
                }
                Some(srv) if srv.engine != blueprint.engine => {
                    diags.push(diag(
                        file,
                        position(s),
                        format!(
                            "tenant {name:?}: server {:?} is {} but blueprint {} is {}",
                            s.as_str(),
                            srv.engine,
                            blueprint.name,
                            blueprint.engine
                        ),
                    ));
                    continue;
                }
                Some(_) => s.to_string(),
            },
            (None, _) => blueprint.server.clone(),
        };
        let database = blueprint.database_name(&name);
        let key = format!("{server}/{database}");
        if let Some((first_file, first)) = seen_databases.get(&key) {
            diags.push(diag(
                file,
                bpos,
                format!(
                    "tenant {name:?}: database {database:?} on server {server:?} is already declared at {}:{}:{}",
                    first_file.display(),
                    first.line,
                    first.column
                ),
            ));
            continue;
        }
        seen_databases.insert(key, (file.to_path_buf(), bpos));
        databases.push(TenantDatabase {
            blueprint: blueprint.name.clone(),
            server,
            database,
            isolation: db.isolation.unwrap_or(Isolation::Pooled),
        });
    }
    Some(Tenant {
        name,
        labels: entry.labels,
        databases,
        deletion_protection: entry.deletion_protection,
        file: file.to_path_buf(),
        position: pos,
    })
}
