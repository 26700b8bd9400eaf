//! Engines: one module per database engine behind one pair of traits.
//! [`Engine`] is a server (build the declared model of a blueprint, list and
//! open databases, render changes as statements); [`Connection`] is one
//! tenant database (introspect it, migrate it under a lock, read its history).
//! Everything engine-specific — catalog queries, quoting, what ALTER can do
//! in place, locks, transactions — stays inside the engine's module.

pub mod mongodb;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::model::{EngineKind, Schema};
use crate::plan::Step;
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
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Other(String),
}

impl EngineError {
    /// Wraps a driver error with what was being done.
    pub fn db(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Database { context, source }
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

/// The columns of a SQL history table, in the order [`history_from_row`] reads them.
pub(crate) const HISTORY_COLUMNS: &str = "applied_at, tenantctl_version, git_commit, blueprint, blueprint_hash, schema_fingerprint, statements, outcome, schema_json";

/// Binds `record` to the placeholders of `INSERT ... ({HISTORY_COLUMNS}) VALUES (...)`,
/// in that order, whatever the SQL engine.
pub(crate) fn bind_history<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    record: &HistoryRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(record.applied_at.clone())
        .bind(record.tenantctl_version.clone())
        .bind(record.git_commit.clone())
        .bind(record.blueprint.clone())
        .bind(record.blueprint_hash.clone())
        .bind(record.schema_fingerprint.clone())
        .bind(serde_json::to_string(&record.statements).unwrap_or_default())
        .bind(record.outcome.clone())
        .bind(record.schema.clone())
}

/// A history record from a row of `SELECT {HISTORY_COLUMNS}`, whatever the SQL engine.
pub(crate) fn history_from_row<R>(row: &R) -> Result<HistoryRecord, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let statements: String = row.try_get(6)?;
    Ok(HistoryRecord {
        applied_at: row.try_get(0)?,
        tenantctl_version: row.try_get(1)?,
        git_commit: row.try_get(2)?,
        blueprint: row.try_get(3)?,
        blueprint_hash: row.try_get(4)?,
        schema_fingerprint: row.try_get(5)?,
        statements: serde_json::from_str(&statements).unwrap_or_default(),
        outcome: row.try_get(7)?,
        schema: row.try_get(8)?,
    })
}

/// Decides, from the live schema seen under the lock, what to run — or
/// refuses with a reason (destructive change not allowed, schema changed
/// since a saved plan...).
pub type Planner<'a> = &'a (dyn Fn(&Schema) -> Result<Vec<Step>, String> + Send + Sync);

/// What [`Connection::migrate`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum MigrateOutcome {
    /// Nothing to do once the lock was held.
    UpToDate,
    /// Every step ran and was committed; the record was written.
    Applied { statements: usize },
    /// The planner refused; nothing ran.
    Refused(String),
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

/// Checks one `options:` entry of a blueprint of `engine` offline (for
/// `tenantctl validate`); the error says what is wrong.
pub fn check_blueprint_option(engine: EngineKind, key: &str, value: &str) -> Result<(), String> {
    match engine {
        EngineKind::Mysql => mysql::check_option(key, value),
        _ => Ok(()),
    }
}

/// Checks a server's engine-specific settings offline (for `validate`);
/// one message per problem. Only PostgreSQL has such settings today, and it
/// also refuses them on servers of other engines.
pub fn check_server(server: &Server) -> Vec<String> {
    postgres::check_server_options(server)
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

/// The engine serving `server`.
pub async fn connect(server: &Server) -> Result<Arc<dyn Engine>, EngineError> {
    match server.engine {
        EngineKind::Sqlite => Ok(Arc::new(sqlite::SqliteEngine::new(server)?)),
        EngineKind::Mysql => Ok(Arc::new(mysql::MysqlEngine::new(server)?)),
        EngineKind::Postgres => Ok(Arc::new(postgres::PostgresEngine::new(server)?)),
        EngineKind::Mongodb => Ok(Arc::new(mongodb::MongoEngine::new(server).await?)),
        EngineKind::Redis => Ok(Arc::new(redis::RedisEngine::new(server)?)),
    }
}

/// Checks what can be checked of a blueprint without any server: SQLite
/// blueprints are executed in memory; other engines need their server.
pub async fn check_offline(blueprint: &Blueprint) -> Result<(), EngineError> {
    match blueprint.engine {
        EngineKind::Sqlite => sqlite::declared_schema(blueprint).await.map(|_| ()),
        _ => Ok(()),
    }
}

/// The prefix of tenantctl's own objects in tenant databases; introspection skips them.
pub const RESERVED_PREFIX: &str = "_tenantctl_";
/// The history table/collection.
pub const HISTORY_TABLE: &str = "_tenantctl_history";
