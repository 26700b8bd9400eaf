//! Reading a PostgreSQL database into the SQL model from the system
//! catalogs in ONE query per tenant database, whatever the number of
//! tables: every kind of catalog row (columns, constraints, indexes, views,
//! triggers, other objects) is a sub-select of one `json_build_object`,
//! which the server returns as one text value decoded with serde into the
//! typed row structs below. The server prints every type, default,
//! expression and definition itself (`format_type`, `pg_get_expr`,
//! `pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_viewdef`,
//! `pg_get_triggerdef`, `pg_get_functiondef`), so two spellings of one
//! schema read back identically.
//!
//! Adding a catalog attribute is one aliased column in a kind's query (its
//! `…_SQL` function) and one field of the same name in its row struct;
//! adding a kind is one entry in [`KINDS`] and one field of [`Catalog`].
//!
//! Objects in `public` are named bare (`orders`); objects in other schemas
//! are qualified (`billing.invoices`). Objects that belong to an extension,
//! the system schemas and tenantctl's own `_tenantctl_*` objects are skipped.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;
use sqlx::{Executor, PgConnection, Row};

use crate::engine::{EngineError, HISTORY_TABLE};
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

/// Types that no extension created.
const OWN_TYPE: &str = "NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_type'::regclass \
                    AND dx.objid = t.oid AND dx.deptype = 'e')";
/// A type's name, qualified unless in `public`.
const TYPE_NAME: &str =
    "CASE WHEN n.nspname = 'public' THEN t.typname::text ELSE n.nspname || '.' || t.typname END";

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
    fn sql(&self, query: &str) -> String {
        let home = quote_literal(&self.home);
        let query = if self.schema_only {
            query.replace(MANAGED_NS, &format!("n.nspname = {home}"))
        } else {
            query.to_string()
        };
        query.replace("'public'", &home)
    }

    /// tenantctl's history table in the home schema, quoted.
    pub fn history_table(&self) -> String {
        format!("{}.{HISTORY_TABLE}", quote_ident(&self.home))
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

/// A kind of catalog row: its key in [`Catalog`] and its query.
type Kind = (&'static str, fn() -> String);

/// Every kind of catalog row: its key in the JSON object [`Catalog`] is
/// decoded from, and its query (aliased columns named like the row
/// struct's fields, rows in the order the model is built in).
const KINDS: &[Kind] = &[
    ("columns", columns_sql),
    ("constraints", constraints_sql),
    ("indexes", indexes_sql),
    ("views", views_sql),
    ("triggers", triggers_sql),
    ("schemas", schemas_sql),
    ("extensions", extensions_sql),
    ("enums", enums_sql),
    ("domains", domains_sql),
    ("sequences", sequences_sql),
    ("functions", functions_sql),
];

/// The one catalog query, written for a whole database ([`Scope::sql`]
/// adapts it): one JSON array per kind (`json_agg` keeps the order of its
/// sorted sub-select), plus whether the history table `$1` exists (the
/// one `$1` of the text, replaced by a literal), so reading the history
/// later needs no query of its own to find out.
static CATALOG_SQL: LazyLock<String> = LazyLock::new(|| {
    let kinds: Vec<String> = KINDS
        .iter()
        .map(|(key, query)| {
            format!(
                "'{key}', (SELECT coalesce(json_agg(q), '[]'::json) FROM ({}) q)",
                query()
            )
        })
        .collect();
    format!(
        "SELECT json_build_object({}, 'history', to_regclass($1) IS NOT NULL)::text",
        kinds.join(", ")
    )
});

/// The whole answer of the catalog query.
#[derive(Debug, Deserialize)]
struct Catalog {
    columns: Vec<ColumnRow>,
    constraints: Vec<ConstraintRow>,
    indexes: Vec<IndexRow>,
    views: Vec<ViewRow>,
    triggers: Vec<TriggerRow>,
    schemas: Vec<SchemaRow>,
    extensions: Vec<ExtensionRow>,
    enums: Vec<EnumRow>,
    domains: Vec<DomainRow>,
    sequences: Vec<SequenceRow>,
    functions: Vec<FunctionRow>,
    /// Whether tenantctl's history table exists in the home schema.
    history: bool,
}

/// What one catalog read found: the schema, and whether the history table exists.
pub(super) struct Inspected {
    pub schema: SqlSchema,
    pub history_exists: bool,
}

/// Reads the whole schema of the tenant database `conn` is connected to,
/// in one statement.
pub(super) async fn inspect(
    conn: &mut PgConnection,
    scope: &Scope,
) -> Result<Inspected, EngineError> {
    // A simple query (no parameters): one round trip, no prepare.
    let sql = scope
        .sql(&CATALOG_SQL)
        .replace("$1", &quote_literal(&scope.history_table()));
    let row = conn
        .fetch_one(sql.as_str())
        .await
        .map_err(EngineError::db("reading the catalog"))?;
    let text: String = row
        .try_get(0)
        .map_err(EngineError::db("reading the catalog"))?;
    let catalog: Catalog = serde_json::from_str(&text).map_err(|e| {
        EngineError::Internal(format!("the catalog query's answer does not decode: {e}"))
    })?;
    let history_exists = catalog.history;
    Ok(Inspected {
        schema: build(catalog, scope),
        history_exists,
    })
}

/// The model of the catalog's rows.
fn build(catalog: Catalog, scope: &Scope) -> SqlSchema {
    let mut schema = SqlSchema::default();
    add_columns(catalog.columns, scope, &mut schema.tables);
    add_constraints(catalog.constraints, scope, &mut schema.tables);
    add_indexes(catalog.indexes, scope, &mut schema.tables);
    add_views(catalog.views, scope, &mut schema);
    add_triggers(catalog.triggers, scope, &mut schema);
    let objects = &mut schema.objects;
    add_schemas(catalog.schemas, objects);
    add_extensions(catalog.extensions, objects);
    add_enums(catalog.enums, objects);
    add_domains(catalog.domains, scope, objects);
    add_sequences(catalog.sequences, objects);
    add_functions(catalog.functions, scope, objects);
    if scope.schema_only {
        // Schemas and extensions belong to the shared database, not to a tenant.
        objects.retain(|_, o| o.kind != "extension" && o.kind != "schema");
    }
    schema
}

/// One column of a table (or a table without columns: `column` is null).
#[derive(Debug, Deserialize)]
struct ColumnRow {
    tbl: String,
    table_comment: Option<String>,
    unlogged: bool,
    partitioned: bool,
    column: Option<String>,
    data_type: Option<String>,
    not_null: Option<bool>,
    default_expr: Option<String>,
    identity: Option<String>,
    generated: Option<String>,
    collation: Option<String>,
    comment: Option<String>,
    serial: bool,
}

fn columns_sql() -> String {
    format!(
        "SELECT {QUAL} AS tbl, obj_description(c.oid, 'pg_class') AS table_comment, \
           c.relpersistence = 'u' AS unlogged, c.relkind = 'p' OR c.relispartition AS partitioned, \
           a.attname::text AS column, format_type(a.atttypid, a.atttypmod) AS data_type, \
           a.attnotnull AS not_null, pg_get_expr(ad.adbin, ad.adrelid) AS default_expr, \
           a.attidentity::text AS identity, a.attgenerated::text AS generated, \
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname::text END \
             AS collation, \
           col_description(c.oid, a.attnum) AS comment, \
           EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                   WHERE d.refobjid = c.oid AND d.refobjsubid = a.attnum AND d.deptype = 'a') AS serial \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum \
         LEFT JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         WHERE c.relkind IN ('r', 'p') AND {MANAGED_NS} AND {OWN_REL} \
         ORDER BY 1, a.attnum"
    )
}

fn add_columns(rows: Vec<ColumnRow>, scope: &Scope, tables: &mut BTreeMap<String, Table>) {
    for row in rows {
        let name = row.tbl;
        let table = tables.entry(name.clone()).or_insert_with(|| Table {
            name,
            comment: row.table_comment,
            options: [(row.unlogged, "UNLOGGED"), (row.partitioned, "PARTITIONED")]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, option)| option.to_string())
                .collect(),
            ..Default::default()
        });
        let Some(column) = row.column else {
            continue; // a table without columns
        };
        let default = row
            .default_expr
            .map(|d| normalize_default(scope.relative(d)));
        let (default, generated) = if row.generated.as_deref() == Some("s") {
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
            data_type: scope.relative(row.data_type.unwrap_or_default()),
            nullable: !row.not_null.unwrap_or(false),
            auto_increment: row.serial
                && default
                    .as_deref()
                    .is_some_and(|d| d.starts_with("nextval(")),
            default,
            generated,
            collation: row.collation,
            comment: row.comment,
            identity: match row.identity.as_deref() {
                Some("a") => Some("ALWAYS".into()),
                Some("d") => Some("BY DEFAULT".into()),
                _ => None,
            },
            ..Default::default()
        });
    }
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

/// One table constraint (primary key, unique, check, foreign key, exclusion).
#[derive(Debug, Deserialize)]
struct ConstraintRow {
    tbl: String,
    name: String,
    kind: String,
    definition: String,
    columns: Vec<String>,
    referenced_table: Option<String>,
    referenced_columns: Vec<String>,
    on_delete: String,
    on_update: String,
    deferrable: bool,
    deferred: bool,
}

fn constraints_sql() -> String {
    format!(
        "SELECT {QUAL} AS tbl, k.conname::text AS name, k.contype::text AS kind, \
           pg_get_constraintdef(k.oid, true) AS definition, \
           ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(num, i) \
                 JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i) \
             AS columns, \
           (SELECT CASE WHEN rn.nspname = 'public' THEN rc.relname::text ELSE rn.nspname || '.' || rc.relname END \
              FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace WHERE rc.oid = k.confrelid) \
             AS referenced_table, \
           ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(num, i) \
                 JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i) \
             AS referenced_columns, \
           k.confdeltype::text AS on_delete, k.confupdtype::text AS on_update, \
           k.condeferrable AS deferrable, k.condeferred AS deferred \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE k.contype IN ('p', 'u', 'c', 'f', 'x') AND c.relkind IN ('r', 'p') \
           AND {MANAGED_NS} AND {OWN_REL} \
         ORDER BY 1, 2"
    )
}

fn add_constraints(rows: Vec<ConstraintRow>, scope: &Scope, tables: &mut BTreeMap<String, Table>) {
    for row in rows {
        let Some(t) = tables.get_mut(&row.tbl) else {
            continue;
        };
        let name = row.name;
        let definition = scope.relative(row.definition);
        let columns = row.columns;
        match row.kind.as_str() {
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
                referenced_table: row.referenced_table.unwrap_or_default(),
                referenced_columns: row.referenced_columns,
                on_delete: action(&row.on_delete),
                on_update: action(&row.on_update),
                deferrable: row.deferrable,
                initially_deferred: row.deferred,
            }),
            "x" => t.exclusions.push(ExclusionConstraint { name, definition }),
            _ => {}
        }
    }
}

/// One index that no constraint owns.
#[derive(Debug, Deserialize)]
struct IndexRow {
    tbl: String,
    name: String,
    definition: String,
    is_unique: bool,
    method: String,
    predicate: Option<String>,
    valid: bool,
}

fn indexes_sql() -> String {
    format!(
        "SELECT {QUAL} AS tbl, \
           CASE WHEN n.nspname = 'public' THEN ic.relname::text ELSE n.nspname || '.' || ic.relname END \
             AS name, \
           pg_get_indexdef(i.indexrelid) AS definition, i.indisunique AS is_unique, \
           am.amname::text AS method, pg_get_expr(i.indpred, i.indrelid) AS predicate, \
           i.indisvalid AS valid \
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
         JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_am am ON am.oid = ic.relam \
         WHERE c.relkind IN ('r', 'p') AND {MANAGED_NS} AND {OWN_REL} \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid \
                           AND k.contype IN ('p', 'u', 'x')) \
         ORDER BY 1, 2"
    )
}

fn add_indexes(rows: Vec<IndexRow>, scope: &Scope, tables: &mut BTreeMap<String, Table>) {
    for row in rows {
        let Some(t) = tables.get_mut(&row.tbl) else {
            continue;
        };
        let definition = scope.relative(row.definition);
        let (parts, include) = index_columns(&definition, &row.method);
        // An index left INVALID by a failed concurrent build differs from
        // any declared one, so the plan drops and builds it again.
        t.indexes.push(Index {
            name: row.name,
            table: row.tbl,
            unique: row.is_unique,
            parts,
            predicate: row.predicate,
            method: Some(if row.valid {
                row.method
            } else {
                format!("{} (invalid)", row.method)
            }),
            include,
            definition: Some(definition),
        });
    }
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

/// One view or materialized view.
#[derive(Debug, Deserialize)]
struct ViewRow {
    name: String,
    materialized: bool,
    definition: String,
}

fn views_sql() -> String {
    format!(
        "SELECT {QUAL} AS name, c.relkind = 'm' AS materialized, \
           pg_get_viewdef(c.oid, true) AS definition \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') AND {MANAGED_NS} AND {OWN_REL} ORDER BY 1"
    )
}

fn add_views(rows: Vec<ViewRow>, scope: &Scope, schema: &mut SqlSchema) {
    for row in rows {
        let name = row.name;
        let materialized = row.materialized;
        let body = scope.relative(row.definition);
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
}

/// One trigger (not the server's internal ones).
#[derive(Debug, Deserialize)]
struct TriggerRow {
    tbl: String,
    name: String,
    definition: String,
}

fn triggers_sql() -> String {
    format!(
        "SELECT {QUAL} AS tbl, tg.tgname::text AS name, pg_get_triggerdef(tg.oid, true) AS definition \
         FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE NOT tg.tgisinternal AND {MANAGED_NS} AND {OWN_REL} ORDER BY 1, 2"
    )
}

fn add_triggers(rows: Vec<TriggerRow>, scope: &Scope, schema: &mut SqlSchema) {
    for row in rows {
        let definition = scope.relative(row.definition);
        // Trigger names are per table in PostgreSQL.
        let name = trigger_key(&row.tbl, &row.name);
        schema.triggers.insert(
            name.clone(),
            Trigger {
                name,
                table: row.tbl,
                definition: definition.clone(),
                ddl: Some(definition),
            },
        );
    }
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

/// One schema besides `public`.
#[derive(Debug, Deserialize)]
struct SchemaRow {
    name: String,
}

fn schemas_sql() -> String {
    format!(
        "SELECT n.nspname::text AS name FROM pg_namespace n \
         WHERE {MANAGED_NS} AND n.nspname <> 'public' ORDER BY 1"
    )
}

fn add_schemas(rows: Vec<SchemaRow>, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let name = row.name;
        let ddl = vec![format!("CREATE SCHEMA {}", quote_ident(&name))];
        objects.extend([object(
            "schema",
            name.clone(),
            format!("SCHEMA {name}"),
            ddl,
        )]);
    }
}

/// One extension (but `plpgsql`).
#[derive(Debug, Deserialize)]
struct ExtensionRow {
    name: String,
    schema: String,
}

fn extensions_sql() -> String {
    "SELECT e.extname::text AS name, n.nspname::text AS schema FROM pg_extension e \
     JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1"
        .to_string()
}

fn add_extensions(rows: Vec<ExtensionRow>, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let (name, ns) = (row.name, row.schema);
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
}

/// One enum type, with its labels and comment.
#[derive(Debug, Deserialize)]
struct EnumRow {
    name: String,
    labels: Vec<String>,
    comment: Option<String>,
}

fn enums_sql() -> String {
    format!(
        "SELECT {TYPE_NAME} AS name, \
           ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid \
                 ORDER BY e.enumsortorder) AS labels, \
           obj_description(t.oid, 'pg_type') AS comment \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'e' AND {MANAGED_NS} AND {OWN_TYPE} ORDER BY 1"
    )
}

fn add_enums(rows: Vec<EnumRow>, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let name = row.name;
        let labels = row.labels;
        let list: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
        let mut definition = format!(
            "CREATE TYPE {} AS ENUM ({})",
            quote_name(&name),
            list.join(", ")
        );
        let mut ddl = vec![definition.clone()];
        if let Some(c) = &row.comment {
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
}

/// One domain, with collation, default, NOT NULL and checks.
#[derive(Debug, Deserialize)]
struct DomainRow {
    name: String,
    base_type: String,
    not_null: bool,
    default_expr: Option<String>,
    collation: Option<String>,
    checks: Vec<String>,
}

fn domains_sql() -> String {
    format!(
        "SELECT {TYPE_NAME} AS name, format_type(t.typbasetype, t.typtypmod) AS base_type, \
           t.typnotnull AS not_null, t.typdefault AS default_expr, \
           CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN co.collname::text END \
             AS collation, \
           ARRAY(SELECT 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid, true) \
                 FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.conname) AS checks \
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
         JOIN pg_type bt ON bt.oid = t.typbasetype \
         LEFT JOIN pg_collation co ON co.oid = t.typcollation \
         WHERE t.typtype = 'd' AND {MANAGED_NS} AND {OWN_TYPE} ORDER BY 1"
    )
}

fn add_domains(rows: Vec<DomainRow>, scope: &Scope, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let name = row.name;
        let mut definition = format!("CREATE DOMAIN {} AS {}", quote_name(&name), row.base_type);
        if let Some(coll) = row.collation {
            definition.push_str(&format!(" COLLATE {}", quote_ident(&coll)));
        }
        if let Some(default) = row.default_expr {
            definition.push_str(&format!(" DEFAULT {default}"));
        }
        if row.not_null {
            definition.push_str(" NOT NULL");
        }
        for check in row.checks {
            definition.push_str(&format!(" {check}"));
        }
        let definition = scope.relative(definition);
        let ddl = vec![definition.clone()];
        objects.extend([object("domain", name, definition, ddl)]);
    }
}

/// One sequence no column owns.
#[derive(Debug, Deserialize)]
struct SequenceRow {
    name: String,
    data_type: String,
    increment: i64,
    min: i64,
    max: i64,
    start: i64,
    cache: i64,
    cycle: bool,
}

fn sequences_sql() -> String {
    format!(
        "SELECT {QUAL} AS name, format_type(s.seqtypid, NULL) AS data_type, \
           s.seqincrement AS increment, s.seqmin AS min, s.seqmax AS max, s.seqstart AS start, \
           s.seqcache AS cache, s.seqcycle AS cycle \
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE {MANAGED_NS} AND {OWN_REL} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
                           AND d.objid = c.oid AND d.deptype IN ('a', 'i')) ORDER BY 1"
    )
}

fn add_sequences(rows: Vec<SequenceRow>, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let options = format!(
            "AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {} {}",
            row.data_type,
            row.increment,
            row.min,
            row.max,
            row.start,
            row.cache,
            if row.cycle { "CYCLE" } else { "NO CYCLE" }
        );
        let ddl = vec![format!(
            "CREATE SEQUENCE {} {options}",
            quote_name(&row.name)
        )];
        objects.extend([object("sequence", row.name, options, ddl)]);
    }
}

/// One function or procedure not from an extension.
#[derive(Debug, Deserialize)]
struct FunctionRow {
    name: String,
    arguments: String,
    definition: String,
    kind: String,
}

fn functions_sql() -> String {
    format!(
        "SELECT CASE WHEN n.nspname = 'public' THEN p.proname::text ELSE n.nspname || '.' || p.proname END \
           AS name, pg_get_function_identity_arguments(p.oid) AS arguments, \
           pg_get_functiondef(p.oid) AS definition, p.prokind::text AS kind \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.prokind IN ('f', 'p') AND {MANAGED_NS} \
           AND NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = 'pg_proc'::regclass \
                           AND dx.objid = p.oid AND dx.deptype = 'e') ORDER BY 1, 2"
    )
}

fn add_functions(rows: Vec<FunctionRow>, scope: &Scope, objects: &mut BTreeMap<String, SqlObject>) {
    for row in rows {
        let definition = scope.relative(row.definition);
        let signature = format!("{}({})", row.name, row.arguments);
        let ddl = vec![definition.trim_end().to_string()];
        let kind = if row.kind == "p" {
            "procedure"
        } else {
            "function"
        };
        objects.extend([object(
            kind,
            signature,
            definition.trim_end().to_string(),
            ddl,
        )]);
    }
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
