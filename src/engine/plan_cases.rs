//! Schema changes every SQL planner must render, as (live, declared) pairs
//! built without a server: each engine's `migrate.rs` tests turn every case
//! into its statements and compare them with its own expected table (as
//! Atlas's `TestPlanChanges`), so a planner bug shows in `cargo test --lib`.

use crate::model::sql::{Column, Index, IndexPart, PrimaryKey, SqlSchema, Table};

/// One change to plan: the live schema and the declared one.
pub struct Case {
    pub name: &'static str,
    pub live: SqlSchema,
    pub declared: SqlSchema,
}

fn column(name: &str, data_type: &str, nullable: bool) -> Column {
    Column {
        name: name.into(),
        data_type: data_type.into(),
        nullable,
        ..Default::default()
    }
}

/// Table `name` with `columns` (name, type, nullable) and primary key `id`.
fn table(name: &str, columns: &[(&str, &str, bool)]) -> Table {
    Table {
        name: name.into(),
        columns: columns
            .iter()
            .map(|(n, t, null)| column(n, t, *null))
            .collect(),
        primary_key: Some(PrimaryKey {
            name: None,
            columns: vec!["id".into()],
        }),
        ..Default::default()
    }
}

fn schema(tables: Vec<Table>) -> SqlSchema {
    SqlSchema {
        tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
        ..Default::default()
    }
}

fn index(name: &str, table: &str, column: &str, unique: bool) -> Index {
    Index {
        name: name.into(),
        table: table.into(),
        unique,
        parts: vec![IndexPart {
            expression: column.into(),
            descending: false,
        }],
        ..Default::default()
    }
}

/// The cases, with the column types `int` and `text` spelled by the engine
/// and each declared table's DDL as the engine's catalog prints it (`ddl`).
pub fn cases(
    int: &str,
    text: &str,
    ddl: fn(&Table) -> String,
    index_ddl: fn(&Index) -> String,
) -> Vec<Case> {
    let declared = |mut t: Table| {
        t.definition = Some(ddl(&t));
        for i in &mut t.indexes {
            i.definition = Some(index_ddl(i));
        }
        t
    };
    let base = || declared(table("t", &[("id", int, false), ("note", text, true)]));
    let with_index = |unique| {
        let mut t = table("t", &[("id", int, false), ("note", text, true)]);
        t.indexes.push(index("t_note", "t", "note", unique));
        declared(t)
    };
    let created = declared(table("u", &[("id", int, false)]));
    let mut not_null = table("t", &[("id", int, false), ("note", text, false)]);
    not_null = declared(not_null);
    let mut defaulted = table("t", &[("id", int, false), ("note", text, true)]);
    defaulted.columns[1].default = Some("'x'".into());
    let defaulted = declared(defaulted);
    vec![
        Case {
            name: "add a nullable column",
            live: schema(vec![declared(table("t", &[("id", int, false)]))]),
            declared: schema(vec![base()]),
        },
        Case {
            name: "drop a column",
            live: schema(vec![base()]),
            declared: schema(vec![declared(table("t", &[("id", int, false)]))]),
        },
        Case {
            name: "create a table",
            live: schema(vec![base()]),
            declared: schema(vec![base(), created.clone()]),
        },
        Case {
            name: "drop a table",
            live: schema(vec![base(), created]),
            declared: schema(vec![base()]),
        },
        Case {
            name: "create an index",
            live: schema(vec![base()]),
            declared: schema(vec![with_index(false)]),
        },
        Case {
            name: "drop an index",
            live: schema(vec![with_index(false)]),
            declared: schema(vec![base()]),
        },
        Case {
            name: "make a column not null",
            live: schema(vec![base()]),
            declared: schema(vec![not_null]),
        },
        Case {
            name: "set a default",
            live: schema(vec![base()]),
            declared: schema(vec![defaulted]),
        },
    ]
}

/// Every case's statements from `plan`, one line per case:
/// `name: statement; statement` (or `name: error: …`).
pub fn rendered(
    cases: Vec<Case>,
    plan: impl Fn(&SqlSchema, &SqlSchema) -> Result<Vec<crate::diff::Step>, super::EngineError>,
) -> Vec<String> {
    cases
        .into_iter()
        .map(|case| match plan(&case.live, &case.declared) {
            Ok(steps) => format!(
                "{}: {}",
                case.name,
                steps
                    .iter()
                    .flat_map(|s| s.statements.iter().map(|st| st.replace('\n', " ")))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Err(e) => format!("{}: error: {e}", case.name),
        })
        .collect()
}

/// A table's DDL in the common form `CREATE TABLE t (\n  c type [NOT NULL] [DEFAULT d],\n  PRIMARY KEY (id)\n)`,
/// identifiers quoted by `quote`.
pub fn plain_ddl(t: &Table, quote: fn(&str) -> String) -> String {
    let mut lines: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut line = format!("  {} {}", quote(&c.name), c.data_type);
            if !c.nullable {
                line.push_str(" NOT NULL");
            }
            if let Some(d) = &c.default {
                line.push_str(&format!(" DEFAULT {d}"));
            }
            line
        })
        .collect();
    lines.push(format!("  PRIMARY KEY ({})", quote("id")));
    format!(
        "CREATE TABLE {} (\n{}\n)",
        quote(&t.name),
        lines.join(",\n")
    )
}

/// `CREATE [UNIQUE] INDEX name ON table (column)`, unquoted.
pub fn create_index(i: &Index) -> String {
    format!(
        "CREATE {}INDEX {} ON {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        i.name,
        i.table,
        i.parts[0].expression
    )
}
