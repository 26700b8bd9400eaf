//! The repository a user keeps in git: `tenantctl.yaml` (servers, defaults,
//! environments), `blueprints/NAME/` (engine, default server, schema) and
//! `tenants/*.yaml`. Loading checks everything it can offline and returns
//! every problem as a `file:line:col` diagnostic.

pub mod compare;
pub mod env;
mod files;
pub mod git;
pub mod identity;
pub mod source;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Diagnostics, Position};
use crate::model::EngineKind;
use crate::names::check_name;
use crate::sql::{SqlDialect, SqlStatement, parse_blueprint};
pub use source::{RepoSource, Worktree};

/// The configuration file at the root of a repository.
pub const CONFIG_FILE: &str = "tenantctl.yaml";
/// How long a connection attempt waits for the server unless `connect_timeout:` says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default name of a tenant database.
pub const DEFAULT_NAMING: &str = "{blueprint}__{tenant}";
/// The default name of a Redis tenant "database": its key prefix is `{tenant}:`.
pub const DEFAULT_KEYVALUE_NAMING: &str = "{tenant}";

/// A loaded, validated repository: the declared state.
#[derive(Debug, Clone)]
pub struct Repo {
    pub root: PathBuf,
    pub servers: BTreeMap<String, Server>,
    pub blueprints: BTreeMap<String, Blueprint>,
    pub tenants: Vec<Tenant>,
    /// Default number of tenant databases reconciled at once.
    pub concurrency: usize,
    /// `rollout.waves` of tenantctl.yaml: the order `--apply` goes through the fleet.
    pub waves: Vec<WaveRule>,
}

/// One wave of `rollout.waves` in tenantctl.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveRule {
    /// The tenant databases not yet in a wave whose tenant has this label value.
    Selector(String, String),
    /// This percentage of the selected tenant databases (rounded up), from those not yet in a wave.
    Percent(u32),
    /// Every tenant database not yet in a wave.
    Rest,
}

/// A server group: where tenant databases live.
#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub engine: EngineKind,
    /// Connection URL template, with `${VAR}` still unexpanded so secrets
    /// are only resolved when connecting.
    pub url: Option<String>,
    /// A separate server of the same engine where declared models are
    /// built instead (Atlas's "dev database"), `${VAR}` unexpanded: with it,
    /// planning needs no write rights on `url`.
    pub dev_url: Option<String>,
    /// SQLite: the directory holding one `NAME.db` file per database.
    pub path: Option<PathBuf>,
    /// Most tenant databases of this server worked on at once.
    pub max_connections: usize,
    /// How long to wait for a tenant's lock before giving up.
    pub lock_timeout: Duration,
    /// Longest a single statement may run (engines that support it).
    pub statement_timeout: Option<Duration>,
    /// How long to wait for the server to answer a new connection before
    /// failing with the driver's reason (`connect_timeout:`, default 10 s).
    pub connect_timeout: Duration,
    /// PostgreSQL: build new indexes on existing tables with `CREATE INDEX
    /// CONCURRENTLY`, after the apply's transaction commits (`None`: not set).
    pub concurrent_indexes: Option<bool>,
    /// PostgreSQL schema-per-tenant placement: every tenant database of this
    /// server is a schema of this one database instead of a database of its own.
    pub tenant_schemas_in: Option<String>,
}

impl Server {
    /// The connection URL with `${VAR}` expanded from the environment.
    pub fn resolved_url(&self) -> Result<String, String> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| format!("server {}: no url configured", self.name))?;
        env::expand_env(url).map_err(|e| format!("server {}: {e}", self.name))
    }

    /// The server declared models are built on: this one, or a copy
    /// pointing at `dev_url` (named `NAME (dev_url)` in messages).
    pub fn build_server(&self) -> std::borrow::Cow<'_, Server> {
        match &self.dev_url {
            None => std::borrow::Cow::Borrowed(self),
            Some(dev) => std::borrow::Cow::Owned(Server {
                name: format!("{} (dev_url)", self.name),
                url: Some(dev.clone()),
                dev_url: None,
                ..self.clone()
            }),
        }
    }

    /// Where the server is, safe to print (passwords redacted).
    pub fn location(&self) -> String {
        match (&self.path, &self.url) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(url)) => env::redact(&env::expand_env(url).unwrap_or_else(|_| url.clone())),
            (None, None) => String::new(),
        }
    }
}

/// A declared schema and where its databases go by default.
#[derive(Debug, Clone)]
pub struct Blueprint {
    pub name: String,
    pub engine: EngineKind,
    /// Default server for tenants that do not name one.
    pub server: String,
    pub description: Option<String>,
    /// Tenant database name pattern, e.g. `{blueprint}__{tenant}`.
    pub naming: String,
    /// Blueprint policy: apply destructive changes without `--allow-destructive`.
    pub allow_destructive: bool,
    /// Engine-specific options from `blueprint.yaml` (`options:`), e.g.
    /// MySQL's `charset` and `collation`; each engine checks its own.
    pub options: BTreeMap<String, String>,
    /// Path of the schema file, relative to the repository root.
    pub schema_path: PathBuf,
    /// The schema file's contents.
    pub source: String,
    /// The contents of `blueprint.yaml`.
    pub meta_source: String,
    /// SQL engines: the statements of the schema file, checked.
    pub statements: Vec<SqlStatement>,
    /// Hash of the blueprint's files, recorded in history.
    pub hash: String,
}

impl Blueprint {
    /// The database name of `tenant` for this blueprint.
    pub fn database_name(&self, tenant: &str) -> String {
        self.naming
            .replace("{blueprint}", &self.name)
            .replace("{tenant}", tenant)
    }
}

/// A tenant and the databases it owns.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub databases: Vec<TenantDatabase>,
    /// Marks the tenant's databases as never to be dropped. tenantctl does not drop
    /// databases of removed tenants today (they are reported as orphans); this
    /// guards them against a future `--prune`.
    pub deletion_protection: bool,
    /// The file that declares it, relative to the repository root.
    pub file: PathBuf,
    pub position: Position,
}

/// One database of a tenant, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDatabase {
    pub blueprint: String,
    pub server: String,
    /// The database name on that server.
    pub database: String,
    pub isolation: Isolation,
}

/// Whether a tenant database shares its server with others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    Pooled,
    Dedicated,
}

/// How a blueprint's schema file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSource {
    /// `schema.sql`, split into statements of this dialect.
    Sql(SqlDialect),
    /// `schema.json`, parsed by the engine's model (`model::parse_json_schema`).
    Json,
}

/// What loading needs to know of one engine, which `repo/` does not: each
/// engine's registry entry holds its rules and the caller passes them in
/// (through [`EngineChecks`]).
#[derive(Debug, Clone, Copy)]
pub struct EngineRules {
    /// How its blueprint's schema file is read.
    pub schema: SchemaSource,
    /// Its servers keep databases in a directory (`path:`), not at a `url:`.
    pub needs_path: bool,
    /// Its declared model is built on a server, so `dev_url` applies.
    pub dev_url: bool,
    /// Its default `naming:` pattern ([`DEFAULT_NAMING`] or [`DEFAULT_KEYVALUE_NAMING`]).
    pub default_naming: &'static str,
}

/// The engine-specific checks run while loading, which `repo/` does not know
/// (it never imports `engine`): the caller passes the engine registry
/// (`engine::REGISTRY`), so each message keeps the `file:line:col` of the
/// setting it is about.
pub trait EngineChecks {
    /// One message per problem with a server's engine-specific settings.
    fn check_server(&self, server: &Server) -> Vec<String>;

    /// Checks one `options:` entry of a blueprint of `engine`; the error
    /// says what is wrong.
    fn check_blueprint_option(
        &self,
        engine: EngineKind,
        key: &str,
        value: &str,
    ) -> Result<(), String>;

    /// The loading rules of `engine`.
    fn rules(&self, engine: EngineKind) -> EngineRules;

    /// Every engine, in the registry's order.
    fn engines(&self) -> Vec<EngineKind>;
}

impl Repo {
    /// Loads the repository in the worktree at `root`, with the overrides of
    /// environment `env` applied.
    /// `checks` are the engines' own checks of server settings and
    /// blueprint options (the engine registry's, passed in by the caller).
    pub fn load(
        root: &Path,
        env: Option<&str>,
        checks: &dyn EngineChecks,
    ) -> Result<Repo, Diagnostics> {
        let source = Worktree {
            root: root.to_path_buf(),
        };
        Self::load_from(&source, root, env, checks)
    }

    /// Loads a repository from any source (worktree or git revision).
    pub fn load_from(
        source: &dyn RepoSource,
        root: &Path,
        env: Option<&str>,
        checks: &dyn EngineChecks,
    ) -> Result<Repo, Diagnostics> {
        let mut diags = Vec::new();
        let config = files::load_config(source, root, env, checks, &mut diags);
        let servers = config.parsed.then_some(&config.servers);
        let blueprints = files::load_blueprints(source, servers, checks, &mut diags);
        let tenants = files::load_tenants(source, servers, &blueprints, &mut diags);
        identity::check(&config.servers, &tenants, &mut diags);
        if !diags.is_empty() {
            diags.sort();
            diags.dedup();
            return Err(Diagnostics(diags));
        }
        Ok(Repo {
            root: root.to_path_buf(),
            servers: config.servers,
            blueprints,
            tenants,
            concurrency: config.concurrency,
            waves: config.waves,
        })
    }

    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }
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

/// Splits and checks a blueprint's schema source for its engine.
pub(crate) fn check_schema_source(
    file: &Path,
    engine: EngineKind,
    schema: SchemaSource,
    source: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<SqlStatement> {
    let dialect = match schema {
        SchemaSource::Sql(dialect) => dialect,
        SchemaSource::Json => {
            if let Some(Err(e)) = crate::model::parse_json_schema(engine, source) {
                diags.push(Diagnostic::new(file, e.line, e.column, e.message));
            }
            return Vec::new();
        }
    };
    let (statements, errors) = parse_blueprint(source, dialect);
    for (pos, message) in errors {
        diags.push(Diagnostic::new(file, pos.line, pos.column, message));
    }
    if statements.is_empty() && diags.is_empty() {
        diags.push(Diagnostic::new(
            file,
            1,
            1,
            "the schema declares nothing: add CREATE statements",
        ));
    }
    statements
}

/// Hash of a blueprint's files.
pub(crate) fn hash_blueprint(meta: &str, schema: &str) -> String {
    let mut h = Sha256::new();
    h.update(meta.as_bytes());
    h.update([0]);
    h.update(schema.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// Checks that a naming pattern yields valid database names.
pub(crate) fn check_naming(pattern: &str) -> Result<(), String> {
    if !pattern.contains("{tenant}") {
        return Err(format!(
            "naming {pattern:?} must contain {{tenant}}, or every tenant would share one database"
        ));
    }
    let sample = pattern.replace("{blueprint}", "b").replace("{tenant}", "t");
    check_name(&sample).map_err(|_| {
        format!("naming {pattern:?} must use only {{blueprint}}, {{tenant}}, lowercase letters, digits and '_'")
    })
}

/// First declaration of each key, to report duplicates with both places.
pub(crate) type Seen = HashMap<String, (PathBuf, Position)>;
