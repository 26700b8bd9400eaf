//! Engines: one module per database engine behind one pair of traits.
//! [`Engine`] is a server (build the declared model of a blueprint, list and
//! open databases, render changes as statements); [`Connection`] is one
//! tenant database (introspect it, migrate it under a lock, read its history).
//! Everything engine-specific — catalog queries, quoting, what ALTER can do
//! in place, locks, transactions — stays inside the engine's module.

pub mod apply;
pub mod lease;
pub mod mongodb;
pub mod mysql;
#[cfg(test)]
mod plan_cases;
pub mod postgres;
pub mod redis;
pub mod sql_history;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::diff::Step;
use crate::model::{EngineKind, Schema};
use crate::repo::{Blueprint, Server};

/// A failure talking to a database, with the context of what was being done.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// A failure of a driver other than sqlx (MongoDB, Redis), with what was
    /// being done, the message safe to print (URLs redacted, the server's own
    /// words) and the driver's error as the source.
    #[error("{context}: {message}")]
    Driver {
        context: String,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A blueprint statement the server rejected while building the declared model.
    #[error("{file}:{line}:{column}: {message}")]
    Blueprint {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("another tenantctl holds the lock on {database}; gave up after {waited:?}")]
    LockTimeout {
        database: String,
        waited: std::time::Duration,
    },
    /// A statement of a step the server refused while applying.
    #[error("{step} failed at `{statement}`: {message}")]
    StatementFailed {
        step: String,
        statement: String,
        message: String,
    },
    /// A failed transactional apply: nothing of it stays.
    #[error("{0} (rolled back: the database is unchanged)")]
    RolledBack(#[source] Box<EngineError>),
    /// A failed per-statement apply: the statements before the failure stay.
    #[error(
        "{source}, after {done} of {total} statements had been applied; those stay applied and a re-run plans the rest from the live schema"
    )]
    PartlyApplied {
        done: usize,
        total: usize,
        source: Box<EngineError>,
    },
    /// Recording progress failed half-way through a per-statement apply.
    #[error(
        "{done} of {total} statements were applied, then recording progress failed (re-run to continue from the live schema): {source}"
    )]
    ProgressLost {
        done: usize,
        total: usize,
        source: Box<EngineError>,
    },
    /// A statement run after the transaction committed failed.
    #[error(
        "the transaction was committed, then `{statement}` failed: {message}; the next run builds it again"
    )]
    AfterCommit { statement: String, message: String },
    /// The server's own words for a failed command (MongoDB, Redis).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Io(String),
    /// A planner bug: what it needed was not there (reported, never expected).
    #[error("internal: {0}")]
    Internal(String),
    /// A server's settings cannot be used (no or unexpandable `url`, a URL
    /// the driver does not accept, no `path`); the message names the server
    /// and never shows a password.
    #[error("{0}")]
    ServerConfig(String),
    /// A planner was given a model of another kind than its engine's.
    #[error("{engine} plans {expected} schemas only")]
    WrongModel {
        engine: EngineKind,
        /// The kind of model it plans: `SQL`, `document`, `key-value`.
        expected: &'static str,
    },
    /// A history record could not be encoded for the engine's store.
    #[error("encoding the history record: {source}")]
    EncodeHistory {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// A problem with one statement of `blueprint`, at the statement's position.
    pub fn at_statement(
        blueprint: &Blueprint,
        statement: &crate::sql::SqlStatement,
        message: String,
    ) -> EngineError {
        EngineError::Blueprint {
            file: blueprint.schema_path.display().to_string(),
            line: statement.position.line,
            column: statement.position.column,
            message,
        }
    }

    /// Wraps a driver error with what was being done.
    pub fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Database { context, source }
    }

    /// The server's own words for a failed statement, without the
    /// driver's wrapping or the context.
    pub fn reason(&self) -> String {
        match self {
            EngineError::Database { source, .. } => driver_message(source),
            EngineError::Driver { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// A history record, written in the tenant database by every apply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// RFC 3339 time of the apply.
    pub applied_at: String,
    pub tenantctl_version: String,
    /// Git commit of the repository the plan came from, when known.
    pub git_commit: Option<String>,
    pub blueprint: String,
    pub blueprint_hash: String,
    /// Fingerprint of the schema after the apply.
    pub schema_fingerprint: String,
    pub statements: Vec<String>,
    /// `applied`, or how far a non-transactional apply got.
    pub outcome: String,
    /// The schema after the apply, as JSON of [`Schema`], so drift can show
    /// exactly what changed by hand since. Engines that cannot store it leave `None`.
    #[serde(default)]
    pub schema: Option<String>,
}

/// The first line of a statement (at most 160 characters), for error messages.
pub(crate) fn first_line(statement: &str) -> String {
    let line = statement.lines().next().unwrap_or("").trim();
    let short: String = line.chars().take(160).collect();
    if short.len() < statement.trim().len() {
        format!("{short} …")
    } else {
        short
    }
}

/// The database server's own message, without the driver's wrapping.
pub(crate) fn driver_message(e: &sqlx::Error) -> String {
    e.as_database_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// Why a planner ran nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A rule forbids these steps (destructive change not allowed, schema
    /// changed since a saved plan...): the tenant is `refused`.
    #[error("{0}")]
    Policy(String),
    /// No plan could be made: the tenant `failed`.
    #[error("{0}")]
    PlanFailed(String),
}

/// Decides, from the live schema seen under the lock, what to run — or
/// refuses ([`Refusal`]).
pub type Planner<'a> = &'a (dyn Fn(&Schema) -> Result<Vec<Step>, Refusal> + Send + Sync);

/// What [`Connection::migrate`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrateOutcome {
    /// Nothing to do once the lock was held.
    UpToDate,
    /// Every step ran and was committed; the record was written.
    Applied { statements: usize },
    /// The planner refused; nothing ran.
    Refused(Refusal),
}

/// A database server holding tenant databases.
#[async_trait]
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;

    /// The schema a blueprint declares, normalised by the server itself
    /// (built in a throwaway place that never touches a tenant). Called once
    /// per blueprint per server.
    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError>;

    /// Names of the databases on the server.
    async fn list_databases(&self) -> Result<Vec<String>, EngineError>;

    /// Opens a tenant database; `None` when it does not exist and `create` is false.
    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError>;

    /// Opens (and, with `create`, creates) the database of a tenant for
    /// `blueprint`, so engines can create it with the blueprint's options
    /// (e.g. MySQL's default charset). By default the same as [`Engine::open`].
    async fn open_for(
        &self,
        blueprint: &Blueprint,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        let _ = blueprint;
        self.open(database, create).await
    }

    /// The ordered steps that turn `live` into `declared`.
    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError>;
}

/// One open tenant database.
#[async_trait]
pub trait Connection: Send {
    /// The live schema (tenantctl's own bookkeeping objects excluded).
    async fn introspect(&mut self) -> Result<Schema, EngineError>;

    /// Takes the tenant's lock, introspects again, asks `planner` what to
    /// run, runs it (all or nothing where the engine allows) and records
    /// `record` in the history, then releases the lock.
    async fn migrate(
        &mut self,
        planner: Planner<'_>,
        record: HistoryRecord,
    ) -> Result<MigrateOutcome, EngineError>;

    /// The newest history record, if any apply happened.
    async fn last_applied(&mut self) -> Result<Option<HistoryRecord>, EngineError>;
}

/// Runs a SQL driver's connection attempt for at most `limit` (the server's
/// `connect_timeout`), so an unreachable server fails fast: with the driver's
/// own reason (e.g. "connection refused") when it has one, with a timeout
/// error naming the setting otherwise.
pub(crate) async fn connect_within<T>(
    limit: std::time::Duration,
    attempt: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "no answer within {} (the server's connect_timeout)",
                humantime::format_duration(limit)
            ),
        ))),
    }
}

/// A future returned by a registry function, borrowing its argument.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// How an engine connects to one of its servers.
pub type Connect = for<'a> fn(&'a Server) -> BoxFuture<'a, Result<Arc<dyn Engine>, EngineError>>;

/// What one engine says about itself, once, in its folder's `mod.rs`
/// (`pub const DESCRIPTION`); everything outside `engine/` asks
/// [`describe`] or [`REGISTRY`] instead of matching on engine names.
#[derive(Clone, Copy)]
pub struct EngineDescription {
    pub kind: EngineKind,
    /// Whether its blueprints and statements are SQL (reports end each
    /// statement with `;`).
    pub sql: bool,
    /// The info string reports fence its statements with (`sql`, `js`),
    /// empty for a plain fence.
    pub fence: &'static str,
    /// Checks one `options:` entry of a blueprint of this engine offline.
    pub check_option: fn(&str, &str) -> Result<(), String>,
    /// Checks this engine's own server settings offline, on a server of any
    /// engine (settings of this engine on another engine's server are
    /// refused here too); one message per problem.
    pub check_server: fn(&Server) -> Vec<String>,
    /// Connects to a server of this engine.
    pub connect: Connect,
    /// What loading a repository needs to know of it (schema file, `path`
    /// or `url`, `dev_url`, default naming), handed to `repo/`.
    pub repo: crate::repo::EngineRules,
    /// Checks what can be checked of a blueprint without any server.
    pub check_offline: for<'a> fn(&'a Blueprint) -> BoxFuture<'a, Result<(), EngineError>>,
}

/// For engines without blueprint options.
pub(crate) fn no_option_check(_key: &str, _value: &str) -> Result<(), String> {
    Ok(())
}

/// For engines without server settings of their own.
pub(crate) fn no_server_check(_server: &Server) -> Vec<String> {
    Vec::new()
}

/// For engines whose blueprints need their server to be checked.
pub(crate) fn no_offline_check(_blueprint: &Blueprint) -> BoxFuture<'_, Result<(), EngineError>> {
    Box::pin(async { Ok(()) })
}

/// Every engine tenantctl manages: adding an engine is its folder plus one
/// line here (and its `model::EngineKind` variant).
pub struct Registry(pub &'static [EngineDescription]);

/// The engines, one line each.
pub const REGISTRY: Registry = Registry(&[
    postgres::DESCRIPTION,
    mysql::DESCRIPTION,
    sqlite::DESCRIPTION,
    mongodb::DESCRIPTION,
    redis::DESCRIPTION,
]);

/// The description of `kind`.
pub fn describe(kind: EngineKind) -> &'static EngineDescription {
    REGISTRY
        .0
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("engine {kind} is missing from engine::REGISTRY"))
}

impl crate::repo::EngineChecks for Registry {
    fn check_server(&self, server: &Server) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|d| (d.check_server)(server))
            .collect()
    }

    fn check_blueprint_option(
        &self,
        engine: EngineKind,
        key: &str,
        value: &str,
    ) -> Result<(), String> {
        (describe(engine).check_option)(key, value)
    }

    fn rules(&self, engine: EngineKind) -> crate::repo::EngineRules {
        describe(engine).repo
    }

    fn engines(&self) -> Vec<EngineKind> {
        self.0.iter().map(|d| d.kind).collect()
    }
}

/// The engine serving `server`.
pub async fn connect(server: &Server) -> Result<Arc<dyn Engine>, EngineError> {
    (describe(server.engine).connect)(server).await
}

/// Checks what can be checked of a blueprint without any server (SQLite
/// blueprints are executed in memory; other engines need their server).
pub async fn check_offline(blueprint: &Blueprint) -> Result<(), EngineError> {
    (describe(blueprint.engine).check_offline)(blueprint).await
}

pub use crate::names::{HISTORY_TABLE, RESERVED_PREFIX};

#[cfg(test)]
mod registry_tests {
    use super::*;

    #[test]
    fn every_engine_kind_is_registered_once() {
        for kind in [
            EngineKind::Postgres,
            EngineKind::Mysql,
            EngineKind::Sqlite,
            EngineKind::Mongodb,
            EngineKind::Redis,
        ] {
            assert_eq!(
                REGISTRY.0.iter().filter(|d| d.kind == kind).count(),
                1,
                "{kind}"
            );
        }
        assert_eq!(REGISTRY.0.len(), 5);
    }

    #[test]
    fn typed_errors_keep_their_messages() {
        let wrong = EngineError::WrongModel {
            engine: EngineKind::Sqlite,
            expected: "SQL",
        };
        assert_eq!(wrong.to_string(), "sqlite plans SQL schemas only");
        let source = serde_json::from_str::<u8>("x").unwrap_err();
        let encode = EngineError::EncodeHistory {
            source: Box::new(source),
        };
        assert!(
            encode
                .to_string()
                .starts_with("encoding the history record: ")
        );
        assert!(std::error::Error::source(&encode).is_some());
    }
}
