//! Reading a PostgreSQL database into the SQL model from the system
//! catalogs, in a fixed handful of queries whatever the number of tables
//! (columns, constraints, indexes, views, triggers, other objects). The
//! server prints every type, default, expression and definition itself
//! (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`,
//! `pg_get_viewdef`, `pg_get_triggerdef`, `pg_get_functiondef`), so two
//! spellings of one schema read back identically.
//!
//! Objects in `public` are named bare (`orders`); objects in other schemas
//! are qualified (`billing.invoices`). Objects that belong to an extension,
//! the system schemas and tenantctl's own `_tenantctl_*` objects are skipped.

use std::collections::BTreeMap;

use sqlx::{PgConnection, Row};

use crate::engine::EngineError;
use crate::model::sql::{
    CheckConstraint, Column, ExclusionConstraint, ForeignKey, Generated, Index, IndexPart,
    PrimaryKey, SqlObject, SqlSchema, Table, Trigger, UniqueConstraint, View,
};

use super::names::quote_name;
use crate::sql::{quote_ident, quote_literal};

/// Namespaces tenantctl manages: not the system's, not an extension's.
const MANAGED_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_namespace'::regclass \
         AND dx.objid = n.oid AND dx.deptype = 'e')";

/// `c` (a pg_class row) is not an extension member nor tenantctl's own.
const OWN_REL: &str = "c.relname NOT LIKE '\\_tenantctl\\_%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_class'::regclass \
         AND dx.objid = c.oid AND dx.deptype = 'e')";

/// The display name of a relation `c` in namespace `n`.
const QUAL: &str = "CASE WHEN n.nspname = 'public' THEN c.relname::text \
     ELSE n.nspname || '.' || c.relname END";

/// What one tenant database is: a whole database (objects in `public` are
/// named bare, other schemas qualified), or one schema of a shared database
/// (schema-per-tenant: only that schema is read, its objects named bare and
/// its name removed from the server's definitions, so every tenant's model
/// reads the same).
#[derive(Debug, Clone)]
pub(super) struct Scope {
    pub home: String,
    pub schema_only: bool,
}

impl Scope {
    pub fn database() -> Scope {
        Scope {
            home: "public".into(),
            schema_only: false,
        }
    }

    /// Adapts a catalog query written for a whole database.
    fn sql(&self, query: String) -> String {
        let home = quote_literal(&self.home);
        let query = if self.schema_only {
            query.replace(MANAGED_NS, &format!("n.nspname = {home}"))
        } else {
            query
        };
        query.replace("'public'", &home)
    }

    /// Drops the home schema's qualification from a server-printed definition.
    pub fn relative(&self, text: String) -> String {
        if self.schema_only {
            text.replace(&format!("{}.", self.home), "")
        } else {
            text
        }
    }
}

/// Reads the whole schema of the tenant database `conn` is connected to.
pub(super) async fn inspect(
    conn: &mut PgConnection,
    scope: &Scope,
) -> Result<SqlSchema, EngineError> {
    let mut schema = SqlSchema::default();
    read_columns(conn, scope, &mut schema.tables).await?;
    read_constraints(conn, scope, &mut schema.tables).await?;
    read_indexes(conn, scope, &mut schema.tables).await?;
    read_views(conn, scope, &mut schema).await?;
    read_triggers(conn, scope, &mut schema).await?;
    read_objects(conn, scope, &mut schema).await?;
    Ok(schema)
}

async fn read_columns(
    conn: &mut PgConnection,
    scope: &Scope,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT {QUAL} AS tbl, obj_description(c.oid, 'pg_class') AS tcomment, \
           a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
           pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text, \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname::text END, \
           col_description(c.oid, a.attnum), \
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                   WHERE d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'a') AS serial, \
           c.relpersistence = 'u', c.relkind = 'p' OR c.relispartition \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum \
         LEFT JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE c.relkind IN ('r', 'p') AND {MANAGED_NS} AND {OWN_REL} \
         ORDER BY 1, a.attnum"
    );
    let rows = sqlx::query(&scope.sql(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading tables and columns"))?;
    for row in rows {
        let name: String = row.get(0);
        let table = tables.entry(name.clone()).or_insert_with(|| Table {
            name,
            comment: row.get(1),
            options: [
                (row.get::<bool, _>(11), "UNLOGGED"),
                (row.get::<bool, _>(12), "PARTITIONED"),
            ]
            .into_iter()
            .filter(|(on, _)| *on)
            .map(|(_, option)| option.to_string())
            .collect(),
            ..Default::default()
        });
        let Some(column) = row.get::<Option<String>, _>(2) else {
            continue; // a table without columns
        };
        let default: Option<String> = row
            .get::<Option<String>, _>(5)
            .map(|d| normalize_default(scope.relative(d)));
        let identity: String = row.get(6);
        let generated: String = row.get(7);
        let serial: bool = row.get(10);
        let (default, generated) = if generated == "s" {
            (
                None,
                default.map(|expression| Generated {
                    expression,
                    stored: true,
                }),
            )
        } else {
            (default, None)
        };
        table.columns.push(Column {
            name: column,
            data_type: scope.relative(row.get(3)),
            nullable: !row.get::<bool, _>(4),
            auto_increment: serial
                && default
                    .as_deref()
                    .is_some_and(|d| d.starts_with("nextval(")),
            default,
            generated,
            collation: row.get(8),
            comment: row.get(9),
            identity: match identity.as_str() {
                "a" => Some("ALWAYS".into()),
                "d" => Some("BY DEFAULT".into()),
                _ => None,
            },
            ..Default::default()
        });
    }
    Ok(())
}

/// Spellings the server keeps apart but that mean the same default:
/// `CURRENT_TIMESTAMP` and `now()` are both the transaction's start time.
fn normalize_default(default: String) -> String {
    match default.as_str() {
        "CURRENT_TIMESTAMP" | "transaction_timestamp()" => "now()".to_string(),
        _ => default,
    }
}

fn action(code: &str) -> String {
    match code {
        "r" => "RESTRICT",
        "c" => "CASCADE",
        "n" => "SET NULL",
        "d" => "SET DEFAULT",
        _ => "NO ACTION",
    }
    .to_string()
}

async fn read_constraints(
    conn: &mut PgConnection,
    scope: &Scope,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT {QUAL} AS tbl, k.conname::text, k.contype::text, pg_get_constraintdef(k.oid, true), \
           ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(num, i) \
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i), \
           (SELECT CASE WHEN rn.nspname = 'public' THEN rc.relname::text ELSE rn.nspname || '.' || rc.relname END \
              FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = k.confrelid), \
           ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(num, i) \
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i), \
           k.confdeltype::text, k.confupdtype::text, k.condeferrable, k.condeferred \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype IN ('p', 'u', 'c', 'f', 'x') AND c.relkind IN ('r', 'p') \
           AND {MANAGED_NS} AND {OWN_REL} \
         ORDER BY 1, 2"
    );
    let rows = sqlx::query(&scope.sql(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading constraints"))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let name: String = row.get(1);
        let kind: String = row.get(2);
        let definition = scope.relative(row.get(3));
        let columns: Vec<String> = row.get(4);
        match kind.as_str() {
            "p" => {
                t.primary_key = Some(PrimaryKey {
                    name: Some(name),
                    columns,
                })
            }
            "u" => t.uniques.push(UniqueConstraint {
                name: Some(name),
                columns,
            }),
            "c" => t.checks.push(CheckConstraint {
                name: Some(name),
                expression: definition
                    .strip_prefix("CHECK ")
                    .unwrap_or(&definition)
                    .to_string(),
                ..Default::default()
            }),
            "f" => t.foreign_keys.push(ForeignKey {
                name: Some(name),
                columns,
                referenced_table: row.get::<Option<String>, _>(5).unwrap_or_default(),
                referenced_columns: row.get(6),
                on_delete: action(&row.get::<String, _>(7)),
                on_update: action(&row.get::<String, _>(8)),
                deferrable: row.get(9),
                initially_deferred: row.get(10),
            }),
            "x" => t.exclusions.push(ExclusionConstraint { name, definition }),
            _ => {}
        }
    }
    Ok(())
}

async fn read_indexes(
    conn: &mut PgConnection,
    scope: &Scope,
    tables: &mut BTreeMap<String, Table>,
) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT {QUAL} AS tbl, \
           CASE WHEN n.nspname = 'public' THEN ic.relname::text ELSE n.nspname || '.' || ic.relname END, \
           pg_get_indexdef(i.indexrelid), i.indisunique, am.amname::text, pg_get_expr(i.indpred, i.indrelid), \
           i.indisvalid \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_am am ON am.oid = ic.relam \
         WHERE c.relkind IN ('r', 'p') AND {MANAGED_NS} AND {OWN_REL} \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid \
                           AND k.contype IN ('p', 'u', 'x')) \
         ORDER BY 1, 2"
    );
    let rows = sqlx::query(&scope.sql(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading indexes"))?;
    for row in rows {
        let table: String = row.get(0);
        let Some(t) = tables.get_mut(&table) else {
            continue;
        };
        let definition = scope.relative(row.get(2));
        let method: String = row.get(4);
        let (parts, include) = index_columns(&definition, &method);
        // An index left INVALID by a failed concurrent build differs from
        // any declared one, so the plan drops and builds it again.
        let valid: bool = row.get(6);
        t.indexes.push(Index {
            name: row.get(1),
            table,
            unique: row.get(3),
            parts,
            predicate: row.get(5),
            method: Some(if valid {
                method
            } else {
                format!("{method} (invalid)")
            }),
            include,
            definition: Some(definition),
        });
    }
    Ok(())
}

/// Splits `pg_get_indexdef` text into its key parts (each as the server
/// prints it, opclass, collation and NULLS order included; `DESC` moved to
/// the flag) and its INCLUDE columns.
pub(super) fn index_columns(definition: &str, method: &str) -> (Vec<IndexPart>, Vec<String>) {
    let marker = format!(" USING {method} ");
    let Some(start) = definition.find(&marker) else {
        return (Vec::new(), Vec::new());
    };
    let rest = &definition[start + marker.len()..];
    let (keys, after) = parenthesised(rest);
    let parts = split_top_level(keys)
        .into_iter()
        .map(|p| match p.strip_suffix(" DESC") {
            Some(e) => IndexPart {
                expression: e.to_string(),
                descending: true,
            },
            None => match p.split_once(" DESC NULLS ") {
                Some((e, nulls)) => IndexPart {
                    expression: format!("{e} NULLS {nulls}"),
                    descending: true,
                },
                None => IndexPart {
                    expression: p,
                    descending: false,
                },
            },
        })
        .collect();
    let include = after
        .trim_start()
        .strip_prefix("INCLUDE ")
        .map(|r| split_top_level(parenthesised(r).0))
        .unwrap_or_default();
    (parts, include)
}

/// The text inside the parenthesised group `text` starts with, and what follows it.
fn parenthesised(text: &str) -> (&str, &str) {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, ch) in text.char_indices() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return (&text[1.min(text.len())..i], &text[i + 1..]);
                    }
                }
                _ => {}
            },
        }
    }
    (text, "")
}

fn split_top_level(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for ch in text.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => {}
            None => match ch {
                '\'' | '"' => quote = Some(ch),
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    parts.push(current.trim().to_string());
                    current.clear();
                    continue;
                }
                _ => {}
            },
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_string());
    }
    parts
}

async fn read_views(
    conn: &mut PgConnection,
    scope: &Scope,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT {QUAL}, c.relkind = 'm', pg_get_viewdef(c.oid, true) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') AND {MANAGED_NS} AND {OWN_REL} ORDER BY 1"
    );
    let rows = sqlx::query(&scope.sql(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading views"))?;
    for row in rows {
        let name: String = row.get(0);
        let materialized: bool = row.get(1);
        let body = scope.relative(row.get(2));
        let body = body.trim().trim_end_matches(';').to_string();
        let ddl = format!(
            "CREATE {}VIEW {} AS\n{body}",
            if materialized { "MATERIALIZED " } else { "" },
            quote_name(&name)
        );
        schema.views.insert(
            name.clone(),
            View {
                name,
                definition: body,
                materialized,
                ddl: Some(ddl),
            },
        );
    }
    Ok(())
}

async fn read_triggers(
    conn: &mut PgConnection,
    scope: &Scope,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT {QUAL}, tg.tgname::text, pg_get_triggerdef(tg.oid, true) \
         FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT tg.tgisinternal AND {MANAGED_NS} AND {OWN_REL} ORDER BY 1, 2"
    );
    let rows = sqlx::query(&scope.sql(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(EngineError::db("reading triggers"))?;
    for row in rows {
        let table: String = row.get(0);
        let trigger: String = row.get(1);
        let definition = scope.relative(row.get(2));
        // Trigger names are per table in PostgreSQL.
        let name = trigger_key(&table, &trigger);
        schema.triggers.insert(
            name.clone(),
            Trigger {
                name,
                table,
                definition: definition.clone(),
                ddl: Some(definition),
            },
        );
    }
    Ok(())
}

/// The model's name of trigger `trigger` on `table`.
pub(super) fn trigger_key(table: &str, trigger: &str) -> String {
    format!("{table}.{trigger}")
}

/// Object kinds in creation order; drops go in reverse.
pub(super) const OBJECT_ORDER: &[&str] = &[
    "schema",
    "extension",
    "enum",
    "domain",
    "sequence",
    "function",
    "procedure",
];

fn object(kind: &str, name: String, definition: String, ddl: Vec<String>) -> (String, SqlObject) {
    (
        format!("{kind} {name}"),
        SqlObject {
            kind: kind.to_string(),
            name,
            definition,
            items: Vec::new(),
            ddl,
        },
    )
}

/// Every server-printed object (schemas, extensions, enums, domains,
/// sequences, functions), one catalog query per kind.
async fn read_objects(
    conn: &mut PgConnection,
    scope: &Scope,
    schema: &mut SqlSchema,
) -> Result<(), EngineError> {
    let objects = &mut schema.objects;
    read_schemas(conn, scope, objects).await?;
    read_extensions(conn, objects).await?;
    read_enums(conn, scope, objects).await?;
    read_domains(conn, scope, objects).await?;
    read_sequences(conn, scope, objects).await?;
    read_functions(conn, scope, objects).await?;
    if scope.schema_only {
        // Schemas and extensions belong to the shared database, not to a tenant.
        objects.retain(|_, o| o.kind != "extension" && o.kind != "schema");
    }
    Ok(())
}

/// Types that no extension created.
const OWN_TYPE: &str = "NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_type'::regclass \
                    AND dx.objid = t.oid AND dx.deptype = 'e')";
/// A type's name, qualified unless in `public`.
const TYPE_NAME: &str =
    "CASE WHEN n.nspname = 'public' THEN t.typname::text ELSE n.nspname || '.' || t.typname END";

/// The schemas besides `public`.
async fn read_schemas(
    conn: &mut PgConnection,
    scope: &Scope,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&scope.sql(format!(
        "SELECT n.nspname::text FROM pg_namespace n WHERE {MANAGED_NS} AND n.nspname <> 'public' ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading schemas"))?;
    for row in rows {
        let name: String = row.get(0);
        let ddl = vec![format!("CREATE SCHEMA {}", quote_ident(&name))];
        objects.extend([object(
            "schema",
            name.clone(),
            format!("SCHEMA {name}"),
            ddl,
        )]);
    }
    Ok(())
}

/// The extensions (but `plpgsql`).
async fn read_extensions(
    conn: &mut PgConnection,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
         JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading extensions"))?;
    for row in rows {
        let name: String = row.get(0);
        let ns: String = row.get(1);
        let ddl = vec![format!(
            "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}",
            quote_ident(&name),
            quote_ident(&ns)
        )];
        objects.extend([object(
            "extension",
            name.clone(),
            format!("EXTENSION {name} SCHEMA {ns}"),
            ddl,
        )]);
    }
    Ok(())
}

/// The enum types, with their labels and comment.
async fn read_enums(
    conn: &mut PgConnection,
    scope: &Scope,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&scope.sql(format!(
        "SELECT {TYPE_NAME}, ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid \
                                   ORDER BY e.enumsortorder), obj_description(t.oid, 'pg_type') \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'e' AND {MANAGED_NS} AND {OWN_TYPE} ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading enum types"))?;
    for row in rows {
        let name: String = row.get(0);
        let labels: Vec<String> = row.get(1);
        let comment: Option<String> = row.get(2);
        let list: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
        let mut definition = format!(
            "CREATE TYPE {} AS ENUM ({})",
            quote_name(&name),
            list.join(", ")
        );
        let mut ddl = vec![definition.clone()];
        if let Some(c) = &comment {
            let stmt = format!(
                "COMMENT ON TYPE {} IS {}",
                quote_name(&name),
                quote_literal(c)
            );
            definition.push_str(&format!("; {stmt}"));
            ddl.push(stmt);
        }
        let (key, mut obj) = object("enum", name, definition, ddl);
        obj.items = labels;
        objects.insert(key, obj);
    }
    Ok(())
}

/// The domains, with collation, default, NOT NULL and checks.
async fn read_domains(
    conn: &mut PgConnection,
    scope: &Scope,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&scope.sql(format!(
        "SELECT {TYPE_NAME}, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault, \
           CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN co.collname::text END, \
           ARRAY(SELECT 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true) \
                 FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.conname) \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_collation co ON co.oid = t.typcollation \
         WHERE t.typtype = 'd' AND {MANAGED_NS} AND {OWN_TYPE} ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading domains"))?;
    for row in rows {
        let name: String = row.get(0);
        let mut definition = format!(
            "CREATE DOMAIN {} AS {}",
            quote_name(&name),
            row.get::<String, _>(1)
        );
        if let Some(coll) = row.get::<Option<String>, _>(4) {
            definition.push_str(&format!(" COLLATE {}", quote_ident(&coll)));
        }
        if let Some(default) = row.get::<Option<String>, _>(3) {
            definition.push_str(&format!(" DEFAULT {default}"));
        }
        if row.get::<bool, _>(2) {
            definition.push_str(" NOT NULL");
        }
        for check in row.get::<Vec<String>, _>(5) {
            definition.push_str(&format!(" {check}"));
        }
        let definition = scope.relative(definition);
        let ddl = vec![definition.clone()];
        objects.extend([object("domain", name, definition, ddl)]);
    }
    Ok(())
}

/// The sequences no column owns.
async fn read_sequences(
    conn: &mut PgConnection,
    scope: &Scope,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(&scope.sql(format!(
        "SELECT {QUAL}, format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, \
           s.seqcache, s.seqcycle \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {MANAGED_NS} AND {OWN_REL} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype IN ('a', 'i')) ORDER BY 1"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading sequences"))?;
    for row in rows {
        let name: String = row.get(0);
        let options = format!(
            "AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}",
            row.get::<String, _>(1),
            row.get::<i64, _>(2),
            row.get::<i64, _>(3),
            row.get::<i64, _>(4),
            row.get::<i64, _>(5),
            row.get::<i64, _>(6),
            if row.get::<bool, _>(7) {
                "CYCLE"
            } else {
                "NO CYCLE"
            }
        );
        let ddl = vec![format!("CREATE SEQUENCE {} {options}", quote_name(&name))];
        objects.extend([object("sequence", name, options, ddl)]);
    }
    Ok(())
}

/// The functions and procedures not from an extension.
async fn read_functions(
    conn: &mut PgConnection,
    scope: &Scope,
    objects: &mut BTreeMap<String, SqlObject>,
) -> Result<(), EngineError> {
    let rows = sqlx::query(
        &scope.sql(format!(
            "SELECT CASE WHEN n.nspname = 'public' THEN p.proname::text ELSE n.nspname || '.' || p.proname END, \
               pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid), p.prokind::text \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prokind IN ('f', 'p') AND {MANAGED_NS} \
               AND NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_proc'::regclass \
                               AND dx.objid = p.oid AND dx.deptype = 'e') ORDER BY 1, 2"
        )),
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(EngineError::db("reading functions"))?;
    for row in rows {
        let name: String = row.get(0);
        let args: String = row.get(1);
        let definition = scope.relative(row.get(2));
        let kind: String = row.get(3);
        let signature = format!("{name}({args})");
        let ddl = vec![definition.trim_end().to_string()];
        let kind = if kind == "p" { "procedure" } else { "function" };
        objects.extend([object(
            kind,
            signature,
            definition.trim_end().to_string(),
            ddl,
        )]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_definitions_split_into_parts() {
        let (parts, include) = index_columns(
            "CREATE INDEX i ON public.t USING btree (lower((a)::text) text_pattern_ops, b DESC, c DESC NULLS LAST) INCLUDE (d, e) WHERE (a > 0)",
            "btree",
        );
        let shown: Vec<(String, bool)> = parts
            .into_iter()
            .map(|p| (p.expression, p.descending))
            .collect();
        assert_eq!(
            shown,
            [
                ("lower((a)::text) text_pattern_ops".to_string(), false),
                ("b".to_string(), true),
                ("c NULLS LAST".to_string(), true)
            ]
        );
        assert_eq!(include, ["d", "e"]);
    }
}
