//! Reading a SQLite database into the SQL model: four catalog queries (the
//! schema table, then columns, foreign keys and unique constraints through
//! the pragma table-valued functions, joined over every table), plus
//! sqlparser for what no pragma reports (CHECK, AUTOINCREMENT, collations,
//! generated expressions, table options, index expressions).

use std::collections::BTreeMap;

use sqlparser::ast::{ColumnOption, CreateTable, Expr, Statement, TableConstraint};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;
use sqlx::{Row, SqliteConnection};

use crate::engine::EngineError;
use crate::model::sql::{
    CheckConstraint, Column, ForeignKey, Generated, Index, IndexPart, PrimaryKey, SqlSchema, Table,
    Trigger, UniqueConstraint, View,
};
use crate::sql::{SqlDialect, collapse_whitespace, normalize_expr, normalize_statement};

/// Objects tenantctl must never manage: SQLite's own and tenantctl's.
const OWN_OBJECTS: &str =
    "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_tenantctl\\_%' ESCAPE '\\'";

pub(super) async fn inspect(conn: &mut SqliteConnection) -> Result<SqlSchema, EngineError> {
    let mut schema = SqlSchema::default();
    let objects = sqlx::query(&format!(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE {OWN_OBJECTS} ORDER BY type, name"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading sqlite_schema"))?;

    // Tables a virtual table keeps for itself (FTS5's `_data`, `_idx`...) are
    // created and dropped with it.
    let shadow: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("listing shadow tables"))?;
    let mut index_sql: Vec<(String, String, String)> = Vec::new();
    for row in &objects {
        let kind: String = row.get(0);
        let name: String = row.get(1);
        let table: String = row.get(2);
        let sql: Option<String> = row.get(3);
        let Some(sql) = sql else { continue }; // automatic indexes of constraints
        if shadow.contains(&name) {
            continue;
        }
        match kind.as_str() {
            "table" => {
                let mut t = Table {
                    name: name.clone(),
                    definition: Some(sql.clone()),
                    ..Default::default()
                };
                match virtual_module(&sql) {
                    Some(module) => t.options = vec![format!("VIRTUAL {module}")],
                    None => apply_table_sql(&mut t, &sql),
                }
                schema.tables.insert(name, t);
            }
            "index" => index_sql.push((name, table, sql)),
            "view" => {
                schema.views.insert(
                    name.clone(),
                    View {
                        name,
                        definition: normalize_statement(&sql, SqlDialect::Sqlite),
                        materialized: false,
                        ddl: Some(sql),
                    },
                );
            }
            "trigger" => {
                schema.triggers.insert(
                    name.clone(),
                    Trigger {
                        name,
                        table,
                        definition: normalize_statement(&sql, SqlDialect::Sqlite),
                        ddl: Some(sql),
                    },
                );
            }
            _ => {}
        }
    }

    read_columns(conn, &mut schema.tables).await?;
    read_foreign_keys(conn, &mut schema.tables).await?;
    read_uniques(conn, &mut schema.tables).await?;
    // SQLite keeps a trigger's `ON` name as written; identifiers are
    // case-insensitive, so point it at the table or view it names.
    for trigger in schema.triggers.values_mut() {
        if let Some(name) = schema
            .tables
            .keys()
            .chain(schema.views.keys())
            .find(|n| n.eq_ignore_ascii_case(&trigger.table))
        {
            trigger.table = name.clone();
        }
    }
    for (name, table, sql) in index_sql {
        if let Some(t) = schema.tables.get_mut(&table) {
            t.indexes.push(parse_index(&name, &table, &sql));
        }
    }
    Ok(schema)
}

async fn read_columns(
    conn: &mut SqliteConnection,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&format!(
        "SELECT m.name, c.name, c.type, c.\"notnull\", c.dflt_value, c.pk, c.hidden \
         FROM sqlite_schema m, pragma_table_xinfo(m.name) c \
         WHERE m.type = 'table' AND {} ORDER BY m.name, c.cid",
        OWN_OBJECTS.replace("name", "m.name")
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading columns"))?;
    let mut pks: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let name: String = row.get(1);
        let pk: i64 = row.get(5);
        let hidden: i64 = row.get(6);
        if hidden == 1 {
            continue; // a virtual table's hidden column (e.g. FTS5 `rank`)
        }
        if pk > 0 {
            pks.entry(table.clone())
                .or_default()
                .push((pk, name.clone()));
        }
        let default: Option<String> = row.get(4);
        // Facts only the table's SQL holds were parsed into placeholder columns.
        let parsed = t
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(&name));
        let mut column = parsed.map(|i| t.columns.remove(i)).unwrap_or_default();
        column.name = name;
        column.data_type = normalize_type(row.get::<String, _>(2).as_str());
        column.nullable = row.get::<i64, _>(3) == 0;
        column.default = default.map(|d| normalize_expr(&d, SqlDialect::Sqlite));
        if hidden != 2 && hidden != 3 {
            column.generated = None;
        }
        t.columns.push(column);
    }
    for (table, mut cols) in pks {
        cols.sort();
        if let Some(t) = tables.get_mut(&table) {
            t.primary_key = Some(PrimaryKey {
                name: None,
                columns: cols.into_iter().map(|(_, c)| c).collect(),
            });
        }
    }
    Ok(())
}

async fn read_foreign_keys(
    conn: &mut SqliteConnection,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&format!(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete \
         FROM sqlite_schema m, pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND {} ORDER BY m.name, f.id, f.seq",
        OWN_OBJECTS.replace("name", "m.name")
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading foreign keys"))?;
    let mut fks: BTreeMap<(String, i64), ForeignKey> = BTreeMap::new();
    for row in rows {
        let table: String = row.get(0);
        let fk = fks
            .entry((table, row.get(1)))
            .or_insert_with(|| ForeignKey {
                referenced_table: row.get(2),
                on_update: row.get(5),
                on_delete: row.get(6),
                ..Default::default()
            });
        fk.columns.push(row.get(3));
        // `to` is NULL when the reference names no column (the referenced primary key).
        if let Some(to) = row.get::<Option<String>, _>(4) {
            fk.referenced_columns.push(to);
        }
    }
    for ((table, _), fk) in fks {
        if let Some(t) = tables.get_mut(&table) {
            t.foreign_keys.push(fk);
        }
    }
    for t in tables.values_mut() {
        t.foreign_keys.sort_by(|a, b| {
            (&a.columns, &a.referenced_table).cmp(&(&b.columns, &b.referenced_table))
        });
    }
    Ok(())
}

async fn read_uniques(
    conn: &mut SqliteConnection,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&format!(
        "SELECT m.name, il.name, ii.name FROM sqlite_schema m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii \
         WHERE m.type = 'table' AND il.origin = 'u' AND {} ORDER BY m.name, il.name, ii.seqno",
        OWN_OBJECTS.replace("name", "m.name")
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading unique constraints"))?;
    let mut uniques: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for row in rows {
        uniques
            .entry((row.get(0), row.get(1)))
            .or_default()
            .push(row.get(2));
    }
    for ((table, _), columns) in uniques {
        if let Some(t) = tables.get_mut(&table) {
            t.uniques.push(UniqueConstraint {
                name: None,
                columns,
            });
        }
    }
    for t in tables.values_mut() {
        t.uniques.sort_by(|a, b| a.columns.cmp(&b.columns));
    }
    Ok(())
}

/// The `USING module(args)` clause of a `CREATE VIRTUAL TABLE`, whitespace collapsed.
fn virtual_module(sql: &str) -> Option<String> {
    let upper = sql.to_uppercase();
    if !upper.trim_start().starts_with("CREATE VIRTUAL TABLE") {
        return None;
    }
    let using = upper.find(" USING ")?;
    Some(collapse_whitespace(&sql[using + " USING ".len()..]))
}

/// `varchar (20)` → `VARCHAR(20)`.
fn normalize_type(t: &str) -> String {
    collapse_whitespace(t)
        .to_uppercase()
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(", ", ",")
}

fn parse_create_table(sql: &str) -> Option<CreateTable> {
    match Parser::parse_sql(&SQLiteDialect {}, sql)
        .ok()?
        .into_iter()
        .next()?
    {
        Statement::CreateTable(ct) => Some(ct),
        _ => None,
    }
}

/// Fills in what only the table's SQL says: CHECK constraints, table
/// options, and per column AUTOINCREMENT, collation and generated expression
/// (as placeholder columns that `read_columns` completes).
fn apply_table_sql(table: &mut Table, sql: &str) {
    let Some(ct) = parse_create_table(sql) else {
        return;
    };
    let d = SqlDialect::Sqlite;
    table.options = ct
        .sqlite_table_options
        .options
        .iter()
        .map(|o| o.to_string().to_uppercase())
        .collect();
    for col in &ct.columns {
        let mut c = Column {
            name: col.name.value.clone(),
            ..Default::default()
        };
        for opt in &col.options {
            match &opt.option {
                ColumnOption::Check(check) => table.checks.push(CheckConstraint {
                    name: opt.name.as_ref().map(|n| n.value.clone()),
                    expression: normalize_expr(&check.expr.to_string(), d),
                    ..Default::default()
                }),
                ColumnOption::Collation(name) => {
                    c.collation = Some(name.to_string().to_uppercase())
                }
                ColumnOption::Generated {
                    generation_expr: Some(expr),
                    generation_expr_mode,
                    ..
                } => {
                    c.generated = Some(Generated {
                        expression: normalize_expr(&expr.to_string(), d),
                        stored: generation_expr_mode
                            .as_ref()
                            .is_some_and(|m| format!("{m:?}").eq_ignore_ascii_case("stored")),
                    })
                }
                other if other.to_string().to_uppercase().contains("AUTOINCREMENT") => {
                    c.auto_increment = true
                }
                ColumnOption::PrimaryKey(pk)
                    if pk.to_string().to_uppercase().contains("AUTOINCREMENT") =>
                {
                    c.auto_increment = true
                }
                _ => {}
            }
        }
        table.columns.push(c);
    }
    for constraint in &ct.constraints {
        if let TableConstraint::Check(check) = constraint {
            table.checks.push(CheckConstraint {
                name: check.name.as_ref().map(|n| n.value.clone()),
                expression: normalize_expr(&check.expr.to_string(), d),
                ..Default::default()
            });
        }
    }
    table.checks.sort_by(|a, b| a.expression.cmp(&b.expression));
}

/// The column definition of `column` in a CREATE TABLE statement, as
/// sqlparser prints it (for `ALTER TABLE ... ADD COLUMN`).
pub(super) fn column_definition(create_table: &str, column: &str) -> Option<String> {
    parse_create_table(create_table)?
        .columns
        .into_iter()
        .find(|c| c.name.value.eq_ignore_ascii_case(column))
        .map(|c| c.to_string())
}

fn parse_index(name: &str, table: &str, sql: &str) -> Index {
    let mut index = Index {
        name: name.to_string(),
        table: table.to_string(),
        definition: Some(sql.to_string()),
        ..Default::default()
    };
    let parsed = Parser::parse_sql(&SQLiteDialect {}, sql)
        .ok()
        .and_then(|s| s.into_iter().next());
    match parsed {
        Some(Statement::CreateIndex(ci)) => {
            index.unique = ci.unique;
            index.parts = ci
                .columns
                .iter()
                .map(|c| IndexPart {
                    expression: match &c.column.expr {
                        Expr::Identifier(ident) => ident.value.clone(),
                        other => normalize_expr(&other.to_string(), SqlDialect::Sqlite),
                    },
                    descending: c.column.options.to_string().to_uppercase().contains("DESC"),
                })
                .collect();
            index.predicate = ci
                .predicate
                .map(|p| normalize_expr(&p.to_string(), SqlDialect::Sqlite));
        }
        _ => {
            index.unique = sql.to_uppercase().starts_with("CREATE UNIQUE");
            index.parts = vec![IndexPart {
                expression: normalize_statement(sql, SqlDialect::Sqlite),
                descending: false,
            }];
        }
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_normalise() {
        assert_eq!(normalize_type("varchar ( 20 )"), "VARCHAR(20)");
        assert_eq!(normalize_type("decimal(10, 2)"), "DECIMAL(10,2)");
    }

    #[test]
    fn column_definitions_come_from_the_table_sql() {
        let sql = "CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT DEFAULT 'x' CHECK (length(note) < 10))";
        assert_eq!(
            column_definition(sql, "NOTE").unwrap(),
            "note TEXT DEFAULT 'x' CHECK (length(note) < 10)"
        );
    }
}
