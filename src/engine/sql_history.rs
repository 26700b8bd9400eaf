//! The history table of the SQL engines: one set of columns, one INSERT
//! binding, one UPDATE of the newest row and one read of the newest finished
//! row, whatever the dialect's placeholders.

use super::apply::FINISHED_SQL;
use super::{EngineError, HistoryRecord};

/// How a dialect spells the n-th (1-based) bind parameter.
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

/// `INSERT INTO {table} ({HISTORY_COLUMNS}) VALUES (...)`, bound by [`bind_history`].
pub fn insert_sql(table: &str, ph: Placeholders) -> String {
    format!(
        "INSERT INTO {table} ({HISTORY_COLUMNS}) VALUES ({})",
        ph.list(9)
    )
}

/// The columns [`update_sql`] rewrites, in the order [`bind_update`] binds them.
const UPDATE_COLUMNS: [&str; 4] = ["statements", "outcome", "schema_fingerprint", "schema_json"];

/// `UPDATE {table} SET ...` of the newest row, bound by [`bind_update`].
/// `newest` selects it (`WHERE id = (SELECT max(id) FROM t)`, or MySQL's
/// `ORDER BY id DESC LIMIT 1`); `extra` assignments are appended verbatim.
pub fn update_sql(table: &str, ph: Placeholders, extra: &str, newest: &str) -> String {
    let set: Vec<String> = UPDATE_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", ph.nth(i + 1)))
        .collect();
    format!("UPDATE {table} SET {}{extra} {newest}", set.join(", "))
}

/// Binds `record` to the placeholders of [`update_sql`].
pub fn bind_update<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    record: &HistoryRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(serde_json::to_string(&record.statements).unwrap_or_default())
        .bind(record.outcome.clone())
        .bind(record.schema_fingerprint.clone())
        .bind(record.schema.clone())
}

/// The newest finished row of `table`, read by [`history_from_row`].
pub fn last_finished_sql(table: &str) -> String {
    format!("SELECT {HISTORY_COLUMNS} FROM {table} WHERE {FINISHED_SQL} ORDER BY id DESC LIMIT 1")
}

/// The columns of a SQL history table, in the order [`history_from_row`] reads them.
pub const HISTORY_COLUMNS: &str = "applied_at, tenantctl_version, git_commit, blueprint, blueprint_hash, schema_fingerprint, statements, outcome, schema_json";

/// Binds `record` to the placeholders of `INSERT ... ({HISTORY_COLUMNS}) VALUES (...)`,
/// in that order, whatever the SQL engine.
pub fn bind_history<'q, DB: sqlx::Database>(
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
pub fn history_from_row<R>(row: &R) -> Result<HistoryRecord, sqlx::Error>
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

/// The newest finished history record in `table` (which must exist).
pub async fn read_last<'c, DB, E>(
    conn: E,
    table: &str,
) -> Result<Option<HistoryRecord>, EngineError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    for<'r> String: sqlx::Decode<'r, DB> + sqlx::Type<DB>,
{
    let sql = last_finished_sql(table);
    let row = sqlx::query(&sql)
        .fetch_optional(conn)
        .await
        .map_err(EngineError::db("reading history"))?;
    row.as_ref()
        .map(history_from_row)
        .transpose()
        .map_err(EngineError::db("reading history"))
}
