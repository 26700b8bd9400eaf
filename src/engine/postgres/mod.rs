//! PostgreSQL: one database per tenant database (`{blueprint}__{tenant}`)
//! on a server reached through its URL; the URL's own database (usually
//! `postgres`) is only used to list and create databases.
//!
//! The declared model is built in the scratch database
//! `_tenantctl_scratch`: the blueprint runs inside a transaction that is
//! always rolled back, and is introspected before the rollback, so no
//! tenant is touched and the server normalises both sides of the diff. The
//! transaction runs as [`BUILDER_ROLE`] (`SET LOCAL ROLE`), so what the
//! blueprint can do is bounded by the server, not only by `validate`.
//!
//! Apply runs in one transaction per tenant database that first takes a
//! transaction-level advisory lock (waiting at most the server's
//! `lock_timeout`, which also bounds every lock the DDL waits for), then
//! re-introspects, plans, runs the statements and writes the history
//! record: an interrupted apply leaves the database as it was.

mod inspect;
mod migrate;
mod names;

use inspect::Scope;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgErrorPosition, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection as _, Executor, PgConnection};

use super::apply::{Applier, Atomicity, HistoryStore};
use super::sql_history::{Placeholders, SqlDialect, SqlHistory, end_transaction, run};
use super::{Connection, Engine, EngineError, RESERVED_PREFIX};
use crate::diff::Step;
use crate::model::{EngineKind, Schema};
use crate::repo::{Blueprint, Server};
use crate::sql::quote_ident;

/// The database where blueprints are executed (and rolled back) to build the declared model.
pub const SCRATCH_DATABASE: &str = "_tenantctl_scratch";

/// The role the blueprint runs as while the declared model is built:
/// `NOLOGIN`, no superuser, owning only the scratch database, so untrusted
/// extensions (dblink, postgres_fdw), untrusted languages, server files and
/// other databases are out of its reach, whatever the blueprint says.
pub const BUILDER_ROLE: &str = "_tenantctl_builder";

/// The advisory lock key tenantctl takes in a tenant database while
/// migrating it (advisory locks are per database, so one key suffices).
const LOCK_KEY: i64 = 0x7465_6e61_6e74; // "tenant"

/// A PostgreSQL server holding tenant databases.
pub struct PostgresEngine {
    server: String,
    options: PgConnectOptions,
    /// Connections to the maintenance database, for listing and creating databases.
    maintenance: PgPool,
    connect_timeout: Duration,
    lock_timeout: Duration,
    statement_timeout: Option<Duration>,
    concurrent_indexes: bool,
    /// Schema-per-tenant: the database holding every tenant schema.
    schemas_in: Option<String>,
}

/// The schema the blueprint runs in when building the declared model for
/// schema-per-tenant placement.
const SCRATCH_HOME: &str = "_tenantctl_home";

/// The advisory lock class of a tenant (two-key form; key 2 is the hash of its name).
const LOCK_CLASS: i32 = 0x746e_6e74;

/// The problems of a server's PostgreSQL settings (`concurrent_indexes`,
/// `tenant_schemas_in`), which are refused on servers of other engines.
pub fn check_server_options(server: &Server) -> Vec<String> {
    let mut problems = Vec::new();
    if server.engine != EngineKind::Postgres
        && (server.concurrent_indexes.is_some() || server.tenant_schemas_in.is_some())
    {
        problems.push(format!(
            "`concurrent_indexes` and `tenant_schemas_in` are options of engine postgres, not {}",
            server.engine
        ));
    }
    if let Some(Err(e)) = server
        .tenant_schemas_in
        .as_deref()
        .map(crate::names::check_name)
    {
        problems.push(format!("tenant_schemas_in: {e}"));
    }
    problems
}

impl PostgresEngine {
    /// Reads the server's settings; connects lazily.
    pub fn new(server: &Server) -> Result<Self, EngineError> {
        let url = server.resolved_url().map_err(EngineError::ServerConfig)?;
        // The driver's message may quote the URL: never show it.
        let options = PgConnectOptions::from_str(&url).map_err(|_| {
            EngineError::ServerConfig(format!(
                "server {}: the url is not a valid postgres:// connection URL",
                server.name
            ))
        })?;
        let options = options.disable_statement_logging();
        Ok(Self {
            server: server.name.clone(),
            maintenance: PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(server.connect_timeout)
                .connect_lazy_with(options.clone()),
            options,
            connect_timeout: server.connect_timeout,
            lock_timeout: server.lock_timeout,
            statement_timeout: server.statement_timeout,
            concurrent_indexes: server.concurrent_indexes.unwrap_or(false),
            schemas_in: server.tenant_schemas_in.clone(),
        })
    }

    async fn connect_to(&self, database: &str) -> Result<PgConnection, EngineError> {
        let options = self.options.clone().database(database);
        super::connect_within(self.connect_timeout, options.connect())
            .await
            .map_err(|e| self.connect_error(database, e))
    }

    /// A failed connection to `database`, naming the server.
    fn connect_error(&self, database: &str, e: sqlx::Error) -> EngineError {
        EngineError::db(format!(
            "connecting to {database} on server {}",
            self.server
        ))(e)
    }

    /// A connection to `database` (searching schema `home` first, then
    /// `public`, when given), or `None` when the server says the database
    /// does not exist (SQLSTATE 3D000): no statement is sent either way.
    async fn connect_existing(
        &self,
        database: &str,
        home: Option<&str>,
    ) -> Result<Option<PgConnection>, EngineError> {
        let mut options = self.options.clone().database(database);
        if let Some(home) = home {
            options = options.options([(
                "search_path",
                startup_value(&format!("{},public", quote_ident(home))),
            )]);
        }
        match super::connect_within(self.connect_timeout, options.connect()).await {
            Ok(conn) => Ok(Some(conn)),
            Err(e) if sql_state(&e).as_deref() == Some("3D000") => Ok(None),
            Err(e) => Err(self.connect_error(database, e)),
        }
    }

    /// An open tenant database on `conn`.
    fn database(&self, conn: PgConnection, name: &str, scope: Scope) -> PostgresDatabase {
        PostgresDatabase {
            conn,
            name: name.to_string(),
            scope,
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            history_exists: None,
        }
    }

    /// The maintenance pool, once one direct connection proved the server
    /// answers: the pool retries a refused connection until its acquire
    /// timeout and then only says "pool timed out", losing the reason.
    async fn maintenance(&self) -> Result<&PgPool, EngineError> {
        if self.maintenance.size() == 0 {
            let conn = super::connect_within(self.connect_timeout, self.options.connect())
                .await
                .map_err(EngineError::db(format!(
                    "connecting to server {}",
                    self.server
                )))?;
            conn.close().await.ok();
        }
        Ok(&self.maintenance)
    }

    /// Whether `database` exists; creates it when asked.
    async fn ensure_database(&self, database: &str, create: bool) -> Result<bool, EngineError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(database)
                .fetch_one(self.maintenance().await?)
                .await
                .map_err(EngineError::db(format!(
                    "listing databases on server {}",
                    self.server
                )))?;
        if exists || !create {
            return Ok(exists);
        }
        let created = self
            .maintenance
            .execute(format!("CREATE DATABASE {}", quote_ident(database)).as_str())
            .await;
        match created {
            Ok(_) => Ok(true),
            // Another tenantctl created it in the meantime.
            Err(e) if sql_state(&e).is_some_and(|c| c == "42P04" || c == "23505") => Ok(true),
            Err(e) => Err(EngineError::db(format!("creating database {database}"))(e)),
        }
    }
}

impl PostgresEngine {
    /// Makes sure the builder role exists, the connecting role may `SET
    /// ROLE` to it, and it owns the scratch database (so it may create
    /// schemas and trusted extensions there, and nothing anywhere else).
    async fn ensure_builder(&self) -> Result<(), EngineError> {
        let role = quote_ident(BUILDER_ROLE);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(BUILDER_ROLE)
                .fetch_one(self.maintenance().await?)
                .await
                .map_err(EngineError::db(format!(
                    "listing roles on server {}",
                    self.server
                )))?;
        if !exists {
            let created = self
                .maintenance
                .execute(
                    format!(
                        "CREATE ROLE {role} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
                    )
                    .as_str(),
                )
                .await;
            match created {
                Ok(_) => {}
                // Another tenantctl created it in the meantime.
                Err(e) if sql_state(&e).is_some_and(|c| c == "42710" || c == "23505") => {}
                Err(e) => return Err(self.builder_error("creating", &e)),
            }
        }
        let member: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
            .bind(BUILDER_ROLE)
            .fetch_one(&self.maintenance)
            .await
            .map_err(EngineError::db("checking the builder role"))?;
        if !member {
            // A role created with CREATEROLE may be granted by its creator;
            // if this fails, `SET ROLE` reports what is missing.
            let _ = self
                .maintenance
                .execute(format!("GRANT {role} TO CURRENT_USER").as_str())
                .await;
        }
        self.ensure_database(SCRATCH_DATABASE, true).await?;
        let owned: bool = sqlx::query_scalar(
            "SELECT pg_get_userbyid(datdba) = $2 FROM pg_database WHERE datname = $1",
        )
        .bind(SCRATCH_DATABASE)
        .bind(BUILDER_ROLE)
        .fetch_one(&self.maintenance)
        .await
        .map_err(EngineError::db("reading the scratch database's owner"))?;
        if !owned {
            self.maintenance
                .execute(
                    format!(
                        "ALTER DATABASE {} OWNER TO {role}",
                        quote_ident(SCRATCH_DATABASE)
                    )
                    .as_str(),
                )
                .await
                .map_err(|e| self.builder_error("handing the scratch database to", &e))?;
        }
        Ok(())
    }

    /// What the connecting role lacks for the least-privilege build, and how
    /// to grant it (docs/engines/postgres.md, "Roles").
    fn builder_error(&self, doing: &str, e: &sqlx::Error) -> EngineError {
        let reason = e
            .as_database_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string());
        EngineError::Other(format!(
            "server {}: {doing} the build role {BUILDER_ROLE} failed: {reason}. \
             Declared models are built as {BUILDER_ROLE}, a NOLOGIN role owning only {SCRATCH_DATABASE}: \
             the connecting role needs CREATEROLE and CREATEDB (or superuser), or an administrator runs once: \
             CREATE ROLE {BUILDER_ROLE} NOLOGIN; GRANT {BUILDER_ROLE} TO <connecting role>; \
             CREATE DATABASE {SCRATCH_DATABASE} OWNER {BUILDER_ROLE}; or set dev_url to a server where it may",
            self.server
        ))
    }
}

/// `value` escaped for the `options` startup parameter, where unescaped
/// spaces separate arguments and a backslash escapes the next character.
fn startup_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for ch in value.chars() {
        if ch == '\\' || ch.is_whitespace() {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped
}

/// The SQLSTATE of a server error.
fn sql_state(e: &sqlx::Error) -> Option<String> {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.to_string())
}

/// Line and column, in the blueprint file, of character `offset` (1-based)
/// of a statement starting at `line`:`column`.
fn position_in(text: &str, line: usize, column: usize, offset: usize) -> (usize, usize) {
    let (mut l, mut c) = (line, column);
    for ch in text.chars().take(offset.saturating_sub(1)) {
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    (l, c)
}

#[async_trait]
impl Engine for PostgresEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Postgres
    }

    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError> {
        self.ensure_builder().await?;
        let mut conn = self.connect_to(SCRATCH_DATABASE).await?;
        let mut escaped = false;
        let result = async {
            conn.execute("BEGIN")
                .await
                .map_err(EngineError::db("starting the scratch transaction"))?;
            // One blueprint at a time: concurrent builds would see each other's
            // uncommitted names (a serial's sequence would become `t_id_seq1`).
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(LOCK_KEY)
                .execute(&mut conn)
                .await
                .map_err(EngineError::db("locking the scratch database"))?;
            // Everything the blueprint does runs as the builder role; the
            // rollback below ends it with the transaction.
            conn.execute(format!("SET LOCAL ROLE {}", quote_ident(BUILDER_ROLE)).as_str())
                .await
                .map_err(|e| self.builder_error("switching to", &e))?;
            let scope = if self.schemas_in.is_some() {
                let home = quote_ident(SCRATCH_HOME);
                for s in [
                    format!("CREATE SCHEMA {home}"),
                    format!("SET LOCAL search_path = {home}, public"),
                ] {
                    conn.execute(s.as_str())
                        .await
                        .map_err(EngineError::db("preparing the scratch schema"))?;
                }
                Scope {
                    home: SCRATCH_HOME.into(),
                    schema_only: true,
                }
            } else {
                Scope::database()
            };
            for statement in &blueprint.statements {
                // One statement per round trip (a prepared statement cannot
                // hold two), then a check that it did not leave the builder
                // role: RESET ROLE, SET SESSION AUTHORIZATION and COMMIT
                // (which ends `SET LOCAL`) are refused by `validate`, and are
                // caught here too before another statement runs.
                let ran = conn
                    .execute(sqlx::query(statement.text.as_str()).persistent(false))
                    .await;
                if ran.is_ok() {
                    let role: String = sqlx::query_scalar("SELECT current_user::text")
                        .fetch_one(&mut conn)
                        .await
                        .map_err(EngineError::db("checking the build role"))?;
                    if role != BUILDER_ROLE {
                        escaped = true;
                        return Err(EngineError::at_statement(blueprint, statement, format!(
                                "this {} left the build role {BUILDER_ROLE} (now {role}, or the build's transaction ended): the build stops here",
                                statement.kind
                            )));
                    }
                }
                if let Err(e) = ran {
                    let (mut line, mut column) =
                        (statement.position.line, statement.position.column);
                    let db = e.as_database_error();
                    if let Some(PgErrorPosition::Original(offset)) = db
                        .and_then(|d| d.try_downcast_ref::<PgDatabaseError>())
                        .and_then(|d| d.position())
                    {
                        (line, column) = position_in(&statement.text, line, column, offset);
                    }
                    return Err(EngineError::Blueprint {
                        file: blueprint.schema_path.display().to_string(),
                        line,
                        column,
                        message: format!(
                            "PostgreSQL rejected this {}: {}",
                            statement.kind,
                            db.map_or_else(|| e.to_string(), |d| d.message().to_string())
                        ),
                    });
                }
            }
            inspect::inspect(&mut conn, &scope).await.map(|i| i.schema)
        }
        .await;
        // Never keep anything: the scratch database stays empty.
        conn.execute("ROLLBACK").await.ok();
        if escaped {
            // A COMMIT kept what was built so far: only the builder's own
            // objects in the scratch database, dropped here.
            let drop = format!("DROP OWNED BY {}", quote_ident(BUILDER_ROLE));
            conn.execute(drop.as_str()).await.ok();
        }
        conn.close().await.ok();
        Ok(Schema::Sql(result?))
    }

    async fn list_databases(&self) -> Result<Vec<String>, EngineError> {
        if let Some(db) = &self.schemas_in {
            if !self.ensure_database(db, false).await? {
                return Ok(Vec::new());
            }
            let mut conn = self.connect_to(db).await?;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT nspname::text FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') \
                 AND nspname NOT LIKE 'pg\\_%' AND left(nspname, length($1)) <> $1 ORDER BY 1",
            )
            .bind(RESERVED_PREFIX)
            .fetch_all(&mut conn)
            .await
            .map_err(EngineError::db(format!("listing tenant schemas in {db}")))?;
            conn.close().await.ok();
            return Ok(names);
        }
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE NOT datistemplate \
             AND datname <> current_database() AND left(datname, length($1)) <> $1 ORDER BY 1",
        )
        .bind(RESERVED_PREFIX)
        .fetch_all(self.maintenance().await?)
        .await
        .map_err(EngineError::db(format!(
            "listing databases on server {}",
            self.server
        )))?;
        Ok(names)
    }

    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        let Some(shared) = &self.schemas_in else {
            // Only creating asks the maintenance database; otherwise the
            // connection itself says whether the database exists.
            if create {
                self.ensure_database(database, true).await?;
            }
            let Some(conn) = self.connect_existing(database, None).await? else {
                return Ok(None);
            };
            return Ok(Some(Box::new(self.database(
                conn,
                database,
                Scope::database(),
            ))));
        };
        if create {
            self.ensure_database(shared, true).await?;
        }
        // The search path is a startup parameter of the connection, not a statement.
        let Some(mut conn) = self.connect_existing(shared, Some(database)).await? else {
            return Ok(None);
        };
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(database)
                .fetch_one(&mut conn)
                .await
                .map_err(EngineError::db(format!("looking for schema {database}")))?;
        if !exists && !create {
            conn.close().await.ok();
            return Ok(None);
        }
        if !exists {
            let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(database));
            // Two runs creating the schema at once: the loser's error is harmless.
            if let Err(e) = conn.execute(create.as_str()).await {
                if !matches!(sql_state(&e).as_deref(), Some("23505" | "42P06")) {
                    return Err(EngineError::db(format!("preparing schema {database}"))(e));
                }
            }
        }
        let scope = Scope {
            home: database.to_string(),
            schema_only: true,
        };
        Ok(Some(Box::new(self.database(conn, database, scope))))
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::Sql(live), Schema::Sql(declared)) => {
                migrate::plan(live, declared, self.concurrent_indexes)
            }
            _ => Err(EngineError::WrongModel {
                engine: EngineKind::Postgres,
                expected: "SQL",
            }),
        }
    }
}

/// PostgreSQL's history table.
const HISTORY: SqlDialect = SqlDialect {
    placeholders: Placeholders::Dollar,
    columns: "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, applied_at text NOT NULL, \
              tenantctl_version text NOT NULL, git_commit text, blueprint text NOT NULL, \
              blueprint_hash text NOT NULL, schema_fingerprint text NOT NULL, \
              statements text NOT NULL, outcome text NOT NULL, schema_json text",
    table_options: "",
    newest: "WHERE id = (SELECT max(id) FROM {table})",
    counts_completed: false,
    exists: "SELECT 1 WHERE to_regclass($1) IS NOT NULL",
};

/// One open tenant database.
struct PostgresDatabase {
    conn: PgConnection,
    name: String,
    scope: Scope,
    lock_timeout: Duration,
    statement_timeout: Option<Duration>,
    /// Whether the history table existed at the last catalog read (taken
    /// by the next history access).
    history_exists: Option<bool>,
}

impl PostgresDatabase {
    /// `_tenantctl_history` in the tenant's schema (`public` for a whole database).
    fn history_table(&self) -> String {
        self.scope.history_table()
    }
}

#[async_trait]
impl Applier for PostgresDatabase {
    const ATOMICITY: Atomicity = Atomicity::Transaction;

    /// Takes the tenant's advisory lock for this session, waiting at most
    /// `lock_timeout` (also released if the session ends).
    async fn lock(&mut self) -> Result<(), EngineError> {
        self.conn
            .execute(
                format!(
                    "SET lock_timeout = {}",
                    self.lock_timeout.as_millis().max(1)
                )
                .as_str(),
            )
            .await
            .map_err(EngineError::db("preparing the session"))?;
        match sqlx::query("SELECT pg_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(&self.name)
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if sql_state(&e).as_deref() == Some("55P03") => Err(EngineError::LockTimeout {
                database: self.name.clone(),
                waited: self.lock_timeout,
            }),
            Err(e) => Err(EngineError::db(format!("locking {}", self.name))(e)),
        }
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(&self.name)
            .execute(&mut self.conn)
            .await
            .map_err(EngineError::db(format!("unlocking {}", self.name)))?;
        Ok(())
    }

    async fn begin(&mut self) -> Result<(), EngineError> {
        let mut settings = vec![
            "BEGIN".to_string(),
            format!(
                "SET LOCAL lock_timeout = {}",
                self.lock_timeout.as_millis().max(1)
            ),
            // Bodies were checked when the declared model was built; functions
            // may name tables created later in the same plan.
            "SET LOCAL check_function_bodies = off".to_string(),
        ];
        if let Some(t) = self.statement_timeout {
            settings.push(format!(
                "SET LOCAL statement_timeout = {}",
                t.as_millis().max(1)
            ));
        }
        for s in &settings {
            self.conn
                .execute(s.as_str())
                .await
                .map_err(EngineError::db(format!(
                    "starting a transaction on {}",
                    self.name
                )))?;
        }
        Ok(())
    }

    async fn end(&mut self, commit: bool) -> Result<(), EngineError> {
        end_transaction(&mut self.conn, commit).await
    }

    fn after_commit(&self, statement: &str) -> bool {
        migrate::is_concurrent(statement)
    }

    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        let inspected = inspect::inspect(&mut self.conn, &self.scope).await?;
        self.history_exists = Some(inspected.history_exists);
        Ok(Schema::Sql(inspected.schema))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), EngineError> {
        run(&mut self.conn, statement).await
    }

    fn history(&mut self) -> Box<dyn HistoryStore + '_> {
        let table = self.history_table();
        // An apply may create the table: what the last catalog read said
        // holds only until the next write, so it is used once.
        let known = self.history_exists.take();
        SqlHistory::new(&mut self.conn, &HISTORY, table.clone(), vec![table]).known_to_exist(known)
    }
}

/// This engine, as the registry (`engine::REGISTRY`) lists it.
pub const DESCRIPTION: super::EngineDescription = super::EngineDescription {
    kind: EngineKind::Postgres,
    sql: true,
    fence: "sql",
    check_option: super::no_option_check,
    check_server: check_server_options,
    connect,
    repo: crate::repo::EngineRules {
        schema: crate::repo::SchemaSource::Sql(crate::sql::SqlDialect::Postgres),
        needs_path: false,
        dev_url: true,
        default_naming: crate::repo::DEFAULT_NAMING,
    },
    check_offline: super::no_offline_check,
};

fn connect(
    server: &Server,
) -> super::BoxFuture<'_, Result<std::sync::Arc<dyn Engine>, EngineError>> {
    Box::pin(async move {
        Ok(std::sync::Arc::new(PostgresEngine::new(server)?) as std::sync::Arc<dyn Engine>)
    })
}

#[cfg(test)]
mod tests {
    use super::position_in;

    #[test]
    fn error_offsets_map_to_file_positions() {
        assert_eq!(
            position_in("CREATE TABLE t (\n  a nope\n)", 3, 1, 22),
            (4, 5)
        );
        assert_eq!(position_in("CREATE x", 2, 5, 8), (2, 12));
    }
}
