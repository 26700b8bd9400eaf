//! The history table of the SQL engines, written once over sqlx for every
//! dialect: each engine folder only describes its dialect ([`SqlDialect`]:
//! placeholders, column types, how to find the newest row and whether the
//! table exists).

use async_trait::async_trait;

use super::apply::{FINISHED_SQL, HistoryStore};
use super::{EngineError, HistoryRecord};

/// How a dialect spells bind parameters.
#[derive(Debug, Clone, Copy)]
pub enum Placeholders {
    /// `?` (SQLite, MySQL).
    Question,
    /// `$1`, `$2`… (PostgreSQL).
    Dollar,
}

impl Placeholders {
    fn nth(self, n: usize) -> String {
        match self {
            Placeholders::Question => "?".into(),
            Placeholders::Dollar => format!("${n}"),
        }
    }

    fn list(self, count: usize) -> String {
        (1..=count)
            .map(|n| self.nth(n))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one SQL engine's history table looks like; a constant in its folder.
#[derive(Debug)]
pub struct SqlDialect {
    pub placeholders: Placeholders,
    /// The column list of `CREATE TABLE IF NOT EXISTS {table} (...)`, with
    /// an increasing `id` and the [`HISTORY_COLUMNS`].
    pub columns: &'static str,
    /// What follows the column list (MySQL's ` ENGINE=InnoDB`).
    pub table_options: &'static str,
    /// What follows `UPDATE t SET ...` to pick the newest row, `{table}`
    /// standing for the table (MySQL cannot select from the table it updates).
    pub newest: &'static str,
    /// Whether the table has a `completed` column counting statements run.
    pub counts_completed: bool,
    /// A query returning a row (any) when the table exists; its parameters
    /// are the `exists_binds` of [`SqlHistory`].
    pub exists: &'static str,
}

/// The columns of a SQL history table, in the order [`history_from_row`] reads them.
pub const HISTORY_COLUMNS: &str = "applied_at, tenantctl_version, git_commit, blueprint, blueprint_hash, schema_fingerprint, statements, outcome, schema_json";

/// The columns an update rewrites, in the order it binds them.
const UPDATE_COLUMNS: [&str; 4] = ["statements", "outcome", "schema_fingerprint", "schema_json"];

/// The history table of one tenant database, on its connection.
pub struct SqlHistory<'c, C> {
    pub conn: &'c mut C,
    pub dialect: &'static SqlDialect,
    /// The table, quoted (and qualified) for the dialect.
    pub table: String,
    /// The parameters of [`SqlDialect::exists`].
    pub exists_binds: Vec<String>,
    /// Whether the table exists, when the caller just read it from the
    /// catalog (so [`HistoryStore::last_finished`] skips its own check).
    pub known_to_exist: Option<bool>,
}

impl<C> SqlHistory<'_, C> {
    fn insert_sql(&self) -> String {
        format!(
            "INSERT INTO {} ({HISTORY_COLUMNS}) VALUES ({})",
            self.table,
            self.dialect.placeholders.list(9)
        )
    }

    fn update_sql(&self) -> String {
        let ph = self.dialect.placeholders;
        let mut set: Vec<String> = UPDATE_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = {}", ph.nth(i + 1)))
            .collect();
        if self.dialect.counts_completed {
            set.push(format!("completed = {}", ph.nth(UPDATE_COLUMNS.len() + 1)));
        }
        format!(
            "UPDATE {} SET {} {}",
            self.table,
            set.join(", "),
            self.dialect.newest.replace("{table}", &self.table)
        )
    }
}

#[async_trait]
impl<C, DB> HistoryStore for SqlHistory<'_, C>
where
    C: sqlx::Connection<Database = DB> + Send,
    DB: sqlx::Database,
    for<'e> &'e mut C: sqlx::Executor<'e, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Decode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    async fn append(&mut self, record: &HistoryRecord) -> Result<(), EngineError> {
        let create = format!(
            "CREATE TABLE IF NOT EXISTS {} ({}){}",
            self.table, self.dialect.columns, self.dialect.table_options
        );
        sqlx::query(&create)
            .execute(&mut *self.conn)
            .await
            .map_err(EngineError::db("creating the history table"))?;
        let insert = self.insert_sql();
        sqlx::query(&insert)
            .bind(record.applied_at.clone())
            .bind(record.tenantctl_version.clone())
            .bind(record.git_commit.clone())
            .bind(record.blueprint.clone())
            .bind(record.blueprint_hash.clone())
            .bind(record.schema_fingerprint.clone())
            .bind(serde_json::to_string(&record.statements).unwrap_or_default())
            .bind(record.outcome.clone())
            .bind(record.schema.clone())
            .execute(&mut *self.conn)
            .await
            .map_err(EngineError::db("writing the history record"))?;
        Ok(())
    }

    async fn update(
        &mut self,
        record: &HistoryRecord,
        completed: usize,
    ) -> Result<(), EngineError> {
        let update = self.update_sql();
        let mut query = sqlx::query(&update)
            .bind(serde_json::to_string(&record.statements).unwrap_or_default())
            .bind(record.outcome.clone())
            .bind(record.schema_fingerprint.clone())
            .bind(record.schema.clone());
        if self.dialect.counts_completed {
            query = query.bind(completed as i64);
        }
        query
            .execute(&mut *self.conn)
            .await
            .map_err(EngineError::db("recording progress in the history"))?;
        Ok(())
    }

    async fn last_finished(&mut self) -> Result<Option<HistoryRecord>, EngineError> {
        let found = match self.known_to_exist {
            Some(known) => known,
            None => {
                let mut exists = sqlx::query(self.dialect.exists);
                for bind in &self.exists_binds {
                    exists = exists.bind(bind.clone());
                }
                exists
                    .fetch_optional(&mut *self.conn)
                    .await
                    .map_err(EngineError::db("reading history"))?
                    .is_some()
            }
        };
        if !found {
            return Ok(None);
        }
        let select = format!(
            "SELECT {HISTORY_COLUMNS} FROM {} WHERE {FINISHED_SQL} ORDER BY id DESC LIMIT 1",
            self.table
        );
        let row = sqlx::query(&select)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(EngineError::db("reading history"))?;
        row.as_ref()
            .map(history_from_row)
            .transpose()
            .map_err(EngineError::db("reading history"))
    }
}

/// A history record from a row of `SELECT {HISTORY_COLUMNS}`, whatever the SQL engine.
fn history_from_row<R>(row: &R) -> Result<HistoryRecord, sqlx::Error>
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

impl<'c, C> SqlHistory<'c, C> {
    /// The history `table` of `dialect` on `conn`.
    pub fn new(
        conn: &'c mut C,
        dialect: &'static SqlDialect,
        table: String,
        exists_binds: Vec<String>,
    ) -> Box<Self> {
        Box::new(Self {
            conn,
            dialect,
            table,
            exists_binds,
            known_to_exist: None,
        })
    }

    /// Tells the store whether its table exists (read from the catalog a
    /// moment ago), saving [`HistoryStore::last_finished`] a query.
    pub fn known_to_exist(mut self: Box<Self>, exists: Option<bool>) -> Box<Self> {
        self.known_to_exist = exists;
        self
    }
}

/// Runs one statement on a SQL engine's connection.
pub async fn run<C, DB>(conn: &mut C, statement: &str) -> Result<(), EngineError>
where
    C: sqlx::Connection<Database = DB>,
    DB: sqlx::Database,
    for<'e> &'e mut C: sqlx::Executor<'e, Database = DB>,
{
    use sqlx::Executor as _;
    conn.execute(statement)
        .await
        .map(|_| ())
        .map_err(EngineError::db("running a statement"))
}

/// Commits or rolls back the transaction of a SQL engine's connection.
pub async fn end_transaction<C, DB>(conn: &mut C, commit: bool) -> Result<(), EngineError>
where
    C: sqlx::Connection<Database = DB>,
    DB: sqlx::Database,
    for<'e> &'e mut C: sqlx::Executor<'e, Database = DB>,
{
    use sqlx::Executor as _;
    let end = if commit { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end)
        .await
        .map(|_| ())
        .map_err(EngineError::db(end))
}
