//! SQLite: one database file `NAME.db` per tenant database in the server's
//! directory. The declared model is built by running the blueprint in an
//! in-memory database. Apply holds SQLite's write lock (`BEGIN IMMEDIATE`)
//! for the whole migration, which runs in one transaction.

mod inspect;
mod migrate;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection as _, Executor, Row, SqliteConnection};

use super::apply::{Applier, Atomicity, HistoryStore};
use super::sql_history::{self, Placeholders, SqlHistory, end_transaction, run};
use super::{Connection, Engine, EngineError, HISTORY_TABLE, driver_message};
use crate::diff::Step;
use crate::model::{EngineKind, Schema};
use crate::repo::{Blueprint, Server};
use crate::sql::{SqlDialect, parse_blueprint};

/// A directory of SQLite database files.
pub struct SqliteEngine {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl SqliteEngine {
    pub fn new(server: &Server) -> Result<Self, EngineError> {
        let dir = server.path.clone().ok_or_else(|| {
            EngineError::ServerConfig(format!("server {}: sqlite needs a path", server.name))
        })?;
        Ok(Self {
            dir,
            lock_timeout: server.lock_timeout,
        })
    }

    fn file(&self, database: &str) -> PathBuf {
        self.dir.join(format!("{database}.db"))
    }
}

#[async_trait]
impl Engine for SqliteEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Sqlite
    }

    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError> {
        declared_schema(blueprint).await
    }

    async fn list_databases(&self) -> Result<Vec<String>, EngineError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(EngineError::Io(format!(
                    "listing {}: {e}",
                    self.dir.display()
                )));
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".db")
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        Ok(names)
    }

    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        let path = self.file(database);
        if !path.exists() {
            if !create {
                return Ok(None);
            }
            std::fs::create_dir_all(&self.dir)
                .map_err(|e| EngineError::Io(format!("creating {}: {e}", self.dir.display())))?;
        }
        let conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(create)
            .foreign_keys(false)
            .busy_timeout(self.lock_timeout)
            .connect()
            .await
            .map_err(EngineError::db(format!("opening {}", path.display())))?;
        Ok(Some(Box::new(SqliteDatabase {
            conn,
            name: database.to_string(),
            lock_timeout: self.lock_timeout,
        })))
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::Sql(live), Schema::Sql(declared)) => migrate::plan(live, declared),
            _ => Err(EngineError::WrongModel {
                engine: EngineKind::Sqlite,
                expected: "SQL",
            }),
        }
    }
}

/// `validate`'s offline check: the blueprint builds in memory.
fn check_offline(blueprint: &Blueprint) -> super::BoxFuture<'_, Result<(), EngineError>> {
    Box::pin(async move { declared_schema(blueprint).await.map(|_| ()) })
}

/// The schema `blueprint` declares: its statements run in an in-memory
/// database, read back by the same introspection as tenants. Needs no
/// server, so `validate` uses it too.
pub async fn declared_schema(blueprint: &Blueprint) -> Result<Schema, EngineError> {
    let mut conn = open_memory().await?;
    for statement in &blueprint.statements {
        // No server role bounds an in-memory build (an ATTACH would create a
        // file), so each statement is checked again right before it runs:
        // exactly one declaration, by the same rules as `validate`.
        let (again, refused) = parse_blueprint(&statement.text, SqlDialect::Sqlite);
        if again.len() != 1 || !refused.is_empty() {
            return Err(EngineError::at_statement(
                blueprint,
                statement,
                refused.into_iter().next().map_or_else(
                    || "not exactly one declaration: refused".to_string(),
                    |(_, m)| m,
                ),
            ));
        }
        if let Err(e) = conn.execute(statement.text.as_str()).await {
            return Err(EngineError::at_statement(
                blueprint,
                statement,
                format!(
                    "SQLite rejected this {}: {}",
                    statement.kind,
                    driver_message(&e)
                ),
            ));
        }
    }
    let schema = inspect::inspect(&mut conn).await?;
    conn.close().await.ok();
    Ok(Schema::Sql(schema))
}

/// The in-memory database a declared model is built in. sqlx leaves
/// `load_extension()` disabled (it enables it only while loading the
/// extensions its options name, none here).
async fn open_memory() -> Result<SqliteConnection, EngineError> {
    SqliteConnectOptions::from_str("sqlite::memory:")
        .map_err(EngineError::db("opening an in-memory database"))?
        .foreign_keys(false)
        .connect()
        .await
        .map_err(EngineError::db("opening an in-memory database"))
}

/// SQLite's history table.
const HISTORY: sql_history::SqlDialect = sql_history::SqlDialect {
    placeholders: Placeholders::Question,
    columns: "id INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, tenantctl_version TEXT NOT NULL, git_commit TEXT, \
              blueprint TEXT NOT NULL, blueprint_hash TEXT NOT NULL, schema_fingerprint TEXT NOT NULL, \
              statements TEXT NOT NULL, outcome TEXT NOT NULL, schema_json TEXT",
    table_options: "",
    newest: "WHERE id = (SELECT max(id) FROM {table})",
    counts_completed: false,
    exists: "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = ?",
};

/// One open tenant database file.
struct SqliteDatabase {
    conn: SqliteConnection,
    name: String,
    lock_timeout: Duration,
}

#[async_trait]
impl Applier for SqliteDatabase {
    const ATOMICITY: Atomicity = Atomicity::Transaction;

    /// SQLite's write lock is the transaction: `BEGIN IMMEDIATE`.
    async fn lock(&mut self) -> Result<(), EngineError> {
        // Renames in a rebuild must not rewrite references elsewhere in the schema.
        self.conn
            .execute("PRAGMA legacy_alter_table = ON")
            .await
            .map_err(EngineError::db("preparing the connection"))?;
        match self.conn.execute("BEGIN IMMEDIATE").await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "5" || c == "6") =>
            {
                Err(EngineError::LockTimeout {
                    database: self.name.clone(),
                    waited: self.lock_timeout,
                })
            }
            Err(e) => Err(EngineError::db(format!("locking {}", self.name))(e)),
        }
    }

    /// Released with the transaction's end.
    async fn unlock(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    async fn end(&mut self, commit: bool) -> Result<(), EngineError> {
        end_transaction(&mut self.conn, commit).await
    }

    /// Foreign keys are off while migrating (as the rebuild procedure
    /// requires); check them before committing.
    async fn check(&mut self) -> Result<(), EngineError> {
        let rows =
            sqlx::query("SELECT \"table\", rowid, parent FROM pragma_foreign_key_check LIMIT 5")
                .fetch_all(&mut self.conn)
                .await
                .map_err(EngineError::db("checking foreign keys"))?;
        if rows.is_empty() {
            return Ok(());
        }
        let examples: Vec<String> = rows
            .iter()
            .map(|r| {
                let rowid: Option<i64> = r.get(1);
                format!(
                    "{} row {} → {}",
                    r.get::<String, _>(0),
                    rowid.map_or("?".into(), |i| i.to_string()),
                    r.get::<String, _>(2)
                )
            })
            .collect();
        Err(EngineError::Other(format!(
            "the migration leaves rows whose foreign key has no match: {}",
            examples.join(", ")
        )))
    }

    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Ok(Schema::Sql(inspect::inspect(&mut self.conn).await?))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), EngineError> {
        run(&mut self.conn, statement).await
    }

    fn history(&mut self) -> Box<dyn HistoryStore + '_> {
        SqlHistory::new(
            &mut self.conn,
            &HISTORY,
            HISTORY_TABLE.into(),
            vec![HISTORY_TABLE.into()],
        )
    }
}

/// This engine, as the registry (`engine::REGISTRY`) lists it.
pub const DESCRIPTION: super::EngineDescription = super::EngineDescription {
    kind: EngineKind::Sqlite,
    sql: true,
    fence: "sql",
    check_option: super::no_option_check,
    check_server: super::no_server_check,
    connect,
    repo: crate::repo::EngineRules {
        schema: crate::repo::SchemaSource::Sql(crate::sql::SqlDialect::Sqlite),
        needs_path: true,
        dev_url: false,
        default_naming: crate::repo::DEFAULT_NAMING,
    },
    check_offline,
};

fn connect(
    server: &Server,
) -> super::BoxFuture<'_, Result<std::sync::Arc<dyn Engine>, EngineError>> {
    Box::pin(async move {
        Ok(std::sync::Arc::new(SqliteEngine::new(server)?) as std::sync::Arc<dyn Engine>)
    })
}

#[cfg(test)]
mod build_tests {
    use super::*;

    #[tokio::test]
    async fn the_build_database_cannot_load_extensions() {
        let mut conn = open_memory().await.unwrap();
        let err = conn
            .execute("SELECT load_extension('/nonexistent/evil')")
            .await
            .unwrap_err();
        assert!(driver_message(&err).contains("not authorized"), "{err}");
    }
}
