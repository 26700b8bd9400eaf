//! Reading a MySQL/MariaDB database into the SQL model through
//! information_schema: one query per kind of object for the whole database
//! (tables, columns, index columns, foreign keys, checks, views, triggers,
//! partitions), never one per table. Values are normalised so that every
//! spelling the server accepts for the same thing compares equal, and so
//! that MariaDB and MySQL 8 differences (quoted defaults, display widths,
//! `current_timestamp()`) do not show up as changes.
//!
//! The declared side additionally reads `SHOW CREATE TABLE` of each table of
//! the scratch database: the server's own DDL, used to render statements.

use std::collections::BTreeMap;

use sqlx::{MySqlConnection, Row};

use super::quote_ident;
use crate::engine::{EngineError, RESERVED_PREFIX};
use crate::model::sql::{
    CheckConstraint, Column, ForeignKey, Generated, Index, IndexPart, PrimaryKey, SqlSchema, Table,
    Trigger, View,
};
use crate::sql::{SqlDialect, collapse_whitespace, normalize_expr};

/// Which server family answers: the catalogs differ in a few places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flavor {
    MariaDb,
    Mysql,
}

impl Flavor {
    /// Detects the flavour from `SELECT VERSION()`.
    pub(super) async fn detect(conn: &mut MySqlConnection) -> Result<Flavor, EngineError> {
        let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
            .fetch_one(&mut *conn)
            .await
            .map_err(EngineError::db("reading the server version"))?;
        Ok(if version.to_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::Mysql
        })
    }
}

/// Whether a table or view is tenantctl's own and never managed.
fn is_own(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

/// The schema of database `db`; with `with_ddl`, each table's `SHOW CREATE TABLE`
/// text too (the declared side, which renders statements from it).
pub(super) async fn inspect(
    conn: &mut MySqlConnection,
    db: &str,
    flavor: Flavor,
    with_ddl: bool,
) -> Result<SqlSchema, EngineError> {
    let mut schema = SqlSchema::default();
    read_tables(conn, db, &mut schema).await?;
    read_columns(conn, db, flavor, &mut schema.tables).await?;
    read_indexes(conn, db, flavor, &mut schema.tables).await?;
    read_foreign_keys(conn, db, &mut schema.tables).await?;
    read_checks(conn, db, flavor, &mut schema.tables).await?;
    read_partitions(conn, db, &mut schema.tables).await?;
    read_views(conn, db, &mut schema).await?;
    read_triggers(conn, db, &mut schema).await?;
    if with_ddl {
        for table in schema.tables.values_mut() {
            let row = sqlx::query(&format!(
                "SHOW CREATE TABLE {}.{}",
                quote_ident(db),
                quote_ident(&table.name)
            ))
            .fetch_one(&mut *conn)
            .await
            .map_err(EngineError::db(format!(
                "reading the DDL of {}",
                table.name
            )))?;
            let ddl: String = text(&row, 1)?;
            // Kept as the server prints it: the scratch tables are empty, so an
            // `AUTO_INCREMENT=N` here is the blueprint's declared first value.
            for index in &mut table.indexes {
                index.definition = index_line(&ddl, &index.name);
            }
            table.definition = Some(ddl);
        }
    }
    Ok(schema)
}

/// A text column, whatever string-like type the catalog uses for it.
fn text(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<String, EngineError> {
    opt_text(row, i).map(Option::unwrap_or_default)
}

fn opt_text(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Option<String>, EngineError> {
    match row.try_get::<Option<String>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => row
            .try_get::<Option<Vec<u8>>, _>(i)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .map_err(EngineError::db("decoding a catalog value")),
    }
}

async fn read_tables(
    conn: &mut MySqlConnection,
    db: &str,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(ENGINE AS CHAR), CAST(TABLE_COLLATION AS CHAR), \
         CAST(TABLE_COMMENT AS CHAR), CAST(CREATE_OPTIONS AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' \
         ORDER BY TABLE_NAME",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.TABLES"))?;
    for row in rows {
        let name = text(&row, 0)?;
        if is_own(&name) {
            continue;
        }
        let engine = opt_text(&row, 1)?;
        let collation = opt_text(&row, 2)?;
        let comment = text(&row, 3)?;
        let create_options = text(&row, 4)?;
        let mut options = Vec::new();
        if let Some(engine) = engine {
            options.push(format!("ENGINE={engine}"));
        }
        if let Some(collation) = collation {
            options.push(format!("COLLATE={collation}"));
        }
        for option in create_options.split_whitespace() {
            // Partitioning is read in detail from PARTITIONS.
            if !option.eq_ignore_ascii_case("partitioned") {
                options.push(option.to_uppercase());
            }
        }
        schema.tables.insert(
            name.clone(),
            Table {
                name,
                options,
                comment: (!comment.is_empty()).then_some(comment),
                ..Default::default()
            },
        );
    }
    Ok(())
}

/// The table's default collation, from its options.
pub(super) fn table_collation(table: &Table) -> Option<&str> {
    table
        .options
        .iter()
        .find_map(|o| o.strip_prefix("COLLATE="))
}

/// The character set a collation belongs to (`utf8mb4_general_ci` → `utf8mb4`).
pub(super) fn charset_of(collation: &str) -> &str {
    collation.split('_').next().unwrap_or(collation)
}

async fn read_columns(
    conn: &mut MySqlConnection,
    db: &str,
    flavor: Flavor,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_DEFAULT AS CHAR), \
         CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(EXTRA AS CHAR), \
         CAST(GENERATION_EXPRESSION AS CHAR), CAST(COLLATION_NAME AS CHAR), CAST(COLUMN_COMMENT AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.COLUMNS"))?;
    for row in rows {
        let table = text(&row, 0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue; // a view's columns
        };
        let extra = text(&row, 5)?;
        let extra_lower = extra.to_lowercase();
        let data_type = normalize_type(&text(&row, 4)?);
        let generated =
            if extra_lower.contains("generated") && !extra_lower.contains("default_generated") {
                opt_text(&row, 6)?
                    .filter(|e| !e.is_empty())
                    .map(|e| Generated {
                        expression: normalize_expr(&e, SqlDialect::Mysql),
                        stored: extra_lower.contains("stored"),
                    })
            } else {
                None
            };
        let default = if generated.is_some() {
            None
        } else {
            normalize_default(opt_text(&row, 2)?, &extra_lower, flavor, &data_type)
        };
        let on_update = extra_lower
            .find("on update ")
            .map(|i| canonical_expr(extra[i + "on update ".len()..].trim()));
        let collation = opt_text(&row, 7)?.filter(|c| Some(c.as_str()) != table_collation(t));
        let comment = text(&row, 8)?;
        t.columns.push(Column {
            name: text(&row, 1)?,
            data_type,
            nullable: text(&row, 3)? == "YES",
            default,
            auto_increment: extra_lower.contains("auto_increment"),
            generated,
            collation,
            comment: (!comment.is_empty()).then_some(comment),
            on_update,
            ..Default::default()
        });
    }
    Ok(())
}

const INTEGER_TYPES: &[&str] = &["tinyint", "smallint", "mediumint", "int", "bigint"];
const NUMERIC_TYPES: &[&str] = &[
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "bigint",
    "decimal",
    "float",
    "double",
    "bit",
    "year",
];

/// Canonical column type: lower case, integer display widths dropped
/// (MariaDB and MySQL < 8.0.19 show `int(11)`, MySQL 8.0.19+ shows `int`),
/// except `tinyint(1)` (what `BOOL` means, shown by both) and with ZEROFILL,
/// where the width matters.
pub(super) fn normalize_type(column_type: &str) -> String {
    let t = collapse_whitespace(&column_type.to_lowercase());
    let Some((base, rest)) = t.split_once('(') else {
        return t;
    };
    if !INTEGER_TYPES.contains(&base) || t.contains("zerofill") {
        return t;
    }
    let Some((width, after)) = rest.split_once(')') else {
        return t;
    };
    if base == "tinyint" && width == "1" {
        return t;
    }
    format!("{base}{after}")
}

/// Canonical default: MariaDB quotes string literals and reports `NULL` as
/// text; MySQL 8 reports literals bare and expressions with `DEFAULT_GENERATED`.
/// Both become a quoted literal, a number, or a canonical expression.
pub(super) fn normalize_default(
    raw: Option<String>,
    extra_lower: &str,
    flavor: Flavor,
    data_type: &str,
) -> Option<String> {
    let raw = raw?;
    match flavor {
        Flavor::MariaDb => {
            if raw == "NULL" {
                None
            } else if raw.starts_with('\'') {
                Some(raw)
            } else {
                Some(canonical_expr(&raw))
            }
        }
        Flavor::Mysql => {
            if extra_lower.contains("default_generated") {
                Some(canonical_expr(&raw))
            } else {
                let base = data_type.split(['(', ' ']).next().unwrap_or("");
                if NUMERIC_TYPES.contains(&base) && !base.starts_with("bit") {
                    Some(raw)
                } else {
                    // MariaDB's spelling of a literal, so both flavours compare alike.
                    Some(format!(
                        "'{}'",
                        raw.replace('\\', "\\\\").replace('\'', "''")
                    ))
                }
            }
        }
    }
}

/// `current_timestamp()`, `CURRENT_TIMESTAMP`, `now()` → `CURRENT_TIMESTAMP`
/// (with the precision when given); other expressions printed by sqlparser.
pub(super) fn canonical_expr(raw: &str) -> String {
    let lower = raw.trim().to_lowercase();
    for name in ["current_timestamp", "now", "localtimestamp", "localtime"] {
        if let Some(rest) = lower.strip_prefix(name) {
            let args = rest
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim();
            if rest.is_empty() || rest.trim().starts_with('(') && rest.trim().ends_with(')') {
                return if args.is_empty() {
                    "CURRENT_TIMESTAMP".into()
                } else {
                    format!("CURRENT_TIMESTAMP({args})")
                };
            }
        }
    }
    normalize_expr(raw, SqlDialect::Mysql)
}

async fn read_indexes(
    conn: &mut MySqlConnection,
    db: &str,
    flavor: Flavor,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    // MySQL 8.0.13+ has functional key parts in EXPRESSION; MariaDB has no such column.
    let expression = match flavor {
        Flavor::Mysql => "CAST(EXPRESSION AS CHAR)",
        Flavor::MariaDb => "NULL",
    };
    let rows = sqlx::query(&format!(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(INDEX_NAME AS CHAR), CAST(NON_UNIQUE AS SIGNED), \
         CAST(COLUMN_NAME AS CHAR), CAST(SUB_PART AS SIGNED), CAST(COLLATION AS CHAR), \
         CAST(INDEX_TYPE AS CHAR), {expression} \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? \
         ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    ))
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.STATISTICS"))?;
    for row in rows {
        let table = text(&row, 0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let name = text(&row, 1)?;
        let non_unique: i64 = row
            .try_get(2)
            .map_err(EngineError::db("decoding NON_UNIQUE"))?;
        let sub_part: Option<i64> = row
            .try_get(4)
            .map_err(EngineError::db("decoding SUB_PART"))?;
        let column = match opt_text(&row, 3)? {
            Some(c) => c,
            None => format!("({})", opt_text(&row, 7)?.unwrap_or_default()),
        };
        let expression = match sub_part {
            Some(n) => format!("{column}({n})"),
            None => column,
        };
        let part = IndexPart {
            expression,
            descending: opt_text(&row, 5)?.as_deref() == Some("D"),
        };
        if name == "PRIMARY" {
            t.primary_key
                .get_or_insert_with(PrimaryKey::default)
                .columns
                .push(part.expression);
            continue;
        }
        let method = match text(&row, 6)?.to_uppercase().as_str() {
            "BTREE" => None,
            other => Some(other.to_string()),
        };
        match t.indexes.iter_mut().find(|i| i.name == name) {
            Some(index) => index.parts.push(part),
            None => t.indexes.push(Index {
                name,
                table: table.clone(),
                unique: non_unique == 0,
                parts: vec![part],
                method,
                ..Default::default()
            }),
        }
    }
    Ok(())
}

async fn read_foreign_keys(
    conn: &mut MySqlConnection,
    db: &str,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(k.TABLE_NAME AS CHAR), CAST(k.CONSTRAINT_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
         CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR), \
         CAST(r.UPDATE_RULE AS CHAR), CAST(r.DELETE_RULE AS CHAR) \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.REFERENTIAL_CONSTRAINTS r \
           ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
          AND r.TABLE_NAME = k.TABLE_NAME \
         WHERE k.TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading foreign keys"))?;
    for row in rows {
        let table = text(&row, 0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let name = text(&row, 1)?;
        let column = text(&row, 2)?;
        let referenced_column = text(&row, 4)?;
        match t
            .foreign_keys
            .iter_mut()
            .find(|f| f.name.as_deref() == Some(name.as_str()))
        {
            Some(fk) => {
                fk.columns.push(column);
                fk.referenced_columns.push(referenced_column);
            }
            None => t.foreign_keys.push(ForeignKey {
                name: Some(name),
                columns: vec![column],
                referenced_table: text(&row, 3)?,
                referenced_columns: vec![referenced_column],
                on_update: text(&row, 5)?,
                on_delete: text(&row, 6)?,
                ..Default::default()
            }),
        }
    }
    Ok(())
}

async fn read_checks(
    conn: &mut MySqlConnection,
    db: &str,
    flavor: Flavor,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    // MariaDB names checks per table (CHECK_CONSTRAINTS has TABLE_NAME and
    // LEVEL); MySQL 8 names them per schema, has the table only in
    // TABLE_CONSTRAINTS, and makes every check a table-level one.
    let sql = match flavor {
        Flavor::MariaDb => {
            "SELECT CAST(TABLE_NAME AS CHAR), CAST(CONSTRAINT_NAME AS CHAR), CAST(CHECK_CLAUSE AS CHAR), \
             CAST(LEVEL AS CHAR) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? \
             ORDER BY TABLE_NAME, CONSTRAINT_NAME"
        }
        Flavor::Mysql => {
            "SELECT CAST(tc.TABLE_NAME AS CHAR), CAST(cc.CONSTRAINT_NAME AS CHAR), CAST(cc.CHECK_CLAUSE AS CHAR), \
             'Table' \
             FROM information_schema.TABLE_CONSTRAINTS tc \
             JOIN information_schema.CHECK_CONSTRAINTS cc \
               ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
             WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.TABLE_SCHEMA = ? \
             ORDER BY tc.TABLE_NAME, cc.CONSTRAINT_NAME"
        }
    };
    let rows = sqlx::query(sql)
        .bind(db)
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading CHECK constraints"))?;
    for row in rows {
        let table = text(&row, 0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let name = text(&row, 1)?;
        // MariaDB keeps a column's own check (and the json_valid() check of a
        // JSON column) with the column: it can only change with the column.
        let column = (text(&row, 3)? == "Column").then(|| name.clone());
        t.checks.push(CheckConstraint {
            name: Some(name),
            expression: normalize_check(&text(&row, 2)?),
            column,
        });
    }
    Ok(())
}

/// MySQL 8 wraps check clauses in parentheses, MariaDB does not.
fn normalize_check(clause: &str) -> String {
    let e = normalize_expr(clause, SqlDialect::Mysql);
    let parses = |text: &str| {
        sqlparser::parser::Parser::new(&sqlparser::dialect::MySqlDialect {})
            .try_with_sql(text)
            .and_then(|mut p| {
                let expr = p.parse_expr()?;
                p.expect_token(&sqlparser::tokenizer::Token::EOF)?;
                Ok(expr)
            })
            .is_ok()
    };
    match e.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        Some(inner) if parses(inner) => normalize_expr(inner, SqlDialect::Mysql),
        _ => e,
    }
}

async fn read_partitions(
    conn: &mut MySqlConnection,
    db: &str,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(PARTITION_METHOD AS CHAR), \
         CAST(PARTITION_EXPRESSION AS CHAR), CAST(COUNT(*) AS SIGNED) \
         FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = ? AND PARTITION_NAME IS NOT NULL \
         GROUP BY TABLE_NAME, PARTITION_METHOD, PARTITION_EXPRESSION",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.PARTITIONS"))?;
    for row in rows {
        let table = text(&row, 0)?;
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let count: i64 = row
            .try_get(3)
            .map_err(EngineError::db("decoding a partition count"))?;
        t.options.push(format!(
            "{PARTITION_PREFIX}{} ({}) PARTITIONS {count}",
            text(&row, 1)?,
            collapse_whitespace(&text(&row, 2)?)
        ));
    }
    Ok(())
}

/// How partitioning shows among a table's options.
pub(super) const PARTITION_PREFIX: &str = "PARTITION BY ";

async fn read_views(
    conn: &mut MySqlConnection,
    db: &str,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(VIEW_DEFINITION AS CHAR), CAST(CHECK_OPTION AS CHAR) \
         FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.VIEWS"))?;
    let qualifier = format!("{}.", quote_ident(db));
    for row in rows {
        let name = text(&row, 0)?;
        if is_own(&name) {
            continue;
        }
        // The server qualifies every name with the database: drop it, so the
        // scratch database and each tenant's print the same definition.
        let mut definition = text(&row, 1)?.replace(&qualifier, "");
        match text(&row, 2)?.to_uppercase().as_str() {
            "CASCADED" => definition.push_str(" WITH CASCADED CHECK OPTION"),
            "LOCAL" => definition.push_str(" WITH LOCAL CHECK OPTION"),
            _ => {}
        }
        let ddl = format!("CREATE VIEW {} AS {definition}", quote_ident(&name));
        schema.views.insert(
            name.clone(),
            View {
                name,
                definition,
                materialized: false,
                ddl: Some(ddl),
            },
        );
    }
    Ok(())
}

async fn read_triggers(
    conn: &mut MySqlConnection,
    db: &str,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT CAST(TRIGGER_NAME AS CHAR), CAST(EVENT_OBJECT_TABLE AS CHAR), CAST(ACTION_TIMING AS CHAR), \
         CAST(EVENT_MANIPULATION AS CHAR), CAST(ACTION_STATEMENT AS CHAR) \
         FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY TRIGGER_NAME",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading information_schema.TRIGGERS"))?;
    for row in rows {
        let name = text(&row, 0)?;
        let table = text(&row, 1)?;
        if is_own(&name) || is_own(&table) {
            continue;
        }
        let body = format!(
            "{} {} ON {} FOR EACH ROW {}",
            text(&row, 2)?.to_uppercase(),
            text(&row, 3)?.to_uppercase(),
            quote_ident(&table),
            text(&row, 4)?.trim()
        );
        schema.triggers.insert(
            name.clone(),
            Trigger {
                ddl: Some(format!("CREATE TRIGGER {} {body}", quote_ident(&name))),
                name,
                table,
                definition: collapse_whitespace(&body),
            },
        );
    }
    Ok(())
}

/// The element lines of a `SHOW CREATE TABLE` body (columns, keys,
/// constraints), without indentation or trailing comma.
pub(super) fn elements(ddl: &str) -> impl Iterator<Item = &str> {
    ddl.lines()
        .skip(1)
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim().trim_end_matches(','))
}

/// The first backquoted identifier in `s`, unescaped, and the text after it.
pub(super) fn first_ident(s: &str) -> Option<(String, &str)> {
    let start = s.find('`')?;
    let mut name = String::new();
    let mut chars = s[start + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().map(|(_, c)| *c) == Some('`') {
                chars.next();
                name.push('`');
            } else {
                return Some((name, &s[start + 1 + i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// The definition of column `name` in a `SHOW CREATE TABLE` text.
pub(super) fn column_line(ddl: &str, name: &str) -> Option<String> {
    elements(ddl)
        .find(|l| l.starts_with('`') && first_ident(l).is_some_and(|(n, _)| n == name))
        .map(str::to_string)
}

/// The `[UNIQUE|FULLTEXT|SPATIAL] KEY` line of index `name`.
pub(super) fn index_line(ddl: &str, name: &str) -> Option<String> {
    elements(ddl)
        .find(|l| {
            let keyword = l.split('`').next().unwrap_or("").trim();
            matches!(
                keyword,
                "KEY" | "UNIQUE KEY" | "FULLTEXT KEY" | "SPATIAL KEY" | "INDEX" | "UNIQUE INDEX"
            ) && first_ident(l).is_some_and(|(n, _)| n == name)
        })
        .map(str::to_string)
}

/// The `PRIMARY KEY (...)` line.
pub(super) fn primary_key_line(ddl: &str) -> Option<String> {
    elements(ddl)
        .find(|l| l.starts_with("PRIMARY KEY"))
        .map(str::to_string)
}

/// The `CONSTRAINT `name` ...` line (foreign key or table-level check).
pub(super) fn constraint_line(ddl: &str, name: &str) -> Option<String> {
    elements(ddl)
        .find(|l| l.starts_with("CONSTRAINT ") && first_ident(l).is_some_and(|(n, _)| n == name))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_normalise_across_versions() {
        assert_eq!(normalize_type("int(11)"), "int");
        assert_eq!(normalize_type("INT"), "int");
        assert_eq!(normalize_type("int(10) unsigned"), "int unsigned");
        assert_eq!(normalize_type("tinyint(1)"), "tinyint(1)");
        assert_eq!(normalize_type("tinyint(4)"), "tinyint");
        assert_eq!(
            normalize_type("int(5) unsigned zerofill"),
            "int(5) unsigned zerofill"
        );
        assert_eq!(normalize_type("varchar(20)"), "varchar(20)");
        assert_eq!(normalize_type("decimal(10,2)"), "decimal(10,2)");
    }

    #[test]
    fn defaults_normalise_across_flavours() {
        let m = Flavor::MariaDb;
        let my = Flavor::Mysql;
        assert_eq!(
            normalize_default(Some("'x'".into()), "", m, "varchar(3)"),
            Some("'x'".into())
        );
        assert_eq!(
            normalize_default(Some("x".into()), "", my, "varchar(3)"),
            Some("'x'".into())
        );
        assert_eq!(normalize_default(Some("NULL".into()), "", m, "int"), None);
        assert_eq!(
            normalize_default(Some("0".into()), "", my, "int"),
            Some("0".into())
        );
        assert_eq!(
            normalize_default(Some("current_timestamp()".into()), "", m, "timestamp"),
            normalize_default(
                Some("CURRENT_TIMESTAMP".into()),
                "default_generated",
                my,
                "timestamp"
            ),
        );
        assert_eq!(
            canonical_expr("current_timestamp(3)"),
            "CURRENT_TIMESTAMP(3)"
        );
        assert_eq!(canonical_expr("now()"), "CURRENT_TIMESTAMP");
    }

    #[test]
    fn checks_normalise_across_flavours() {
        assert_eq!(normalize_check("(`b` > 0)"), normalize_check("`b` > 0"));
        assert_eq!(
            normalize_check("(a > 0) and (b > 0)"),
            normalize_check("((a > 0) and (b > 0))")
        );
        assert!(normalize_check("(a > 0) and (b > 0)").starts_with("(a > 0)"));
    }

    #[test]
    fn finds_lines_of_show_create_table() {
        let ddl = "CREATE TABLE `p` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `a``b` varchar(10) DEFAULT 'x,',\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `a` (`a``b`(3)),\n  CONSTRAINT `ck` CHECK (`id` < 100)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4";
        assert_eq!(
            column_line(ddl, "a`b").unwrap(),
            "`a``b` varchar(10) DEFAULT 'x,'"
        );
        assert_eq!(index_line(ddl, "a").unwrap(), "UNIQUE KEY `a` (`a``b`(3))");
        assert_eq!(primary_key_line(ddl).unwrap(), "PRIMARY KEY (`id`)");
        assert_eq!(
            constraint_line(ddl, "ck").unwrap(),
            "CONSTRAINT `ck` CHECK (`id` < 100)"
        );
    }
}
