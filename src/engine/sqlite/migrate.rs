//! Rendering changes as SQLite statements. SQLite's ALTER TABLE can add a
//! column (with restrictions) and little else, so any other change to a
//! table uses the documented rebuild: create the new table under a temporary
//! name, copy the rows, drop the old table, rename, and recreate its indexes
//! and triggers — all inside the apply's transaction.

use std::collections::BTreeSet;

use crate::diff::Step;
use crate::diff::{self, Change, Hazard, HazardKind, TableChange};
use crate::engine::{EngineError, RESERVED_PREFIX};
use crate::model::sql::{Column, SqlSchema, Table};
use crate::sql::{quote_ident, rename_created_object};

use super::inspect::column_definition;

/// The ordered steps that turn `live` into `declared`.
pub(super) fn plan(live: &SqlSchema, declared: &SqlSchema) -> Result<Vec<Step>, EngineError> {
    let changes = diff::diff(live, declared);
    let rebuilt: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::AlterTable { to, changes, .. } if !changes.iter().all(alters_in_place) => {
                Some(to.name.as_str())
            }
            _ => None,
        })
        .collect();
    let mut steps = Vec::new();
    for change in &changes {
        let statements = match change {
            Change::CreateTable(t) => vec![ddl(t.definition.as_deref(), "table", &t.name)?],
            Change::DropTable(t) => vec![format!("DROP TABLE {}", quote_ident(&t.name))],
            Change::AlterTable { from, to, changes } if rebuilt.contains(to.name.as_str()) => {
                steps.push(rebuild(change, from, to, changes, declared)?);
                continue;
            }
            Change::AlterTable { to, changes, .. } => changes
                .iter()
                .map(|tc| match tc {
                    TableChange::AddColumn(c) => add_column(to, c),
                    other => Err(EngineError::Internal(format!(
                        "{} is not an in-place change",
                        other.describe()
                    ))),
                })
                .collect::<Result<_, _>>()?,
            // A rebuilt table's indexes and triggers are recreated by its rebuild.
            Change::CreateIndex { index: i, .. } | Change::DropIndex(i)
                if rebuilt.contains(i.table.as_str()) =>
            {
                continue;
            }
            Change::CreateTrigger(t) | Change::DropTrigger(t)
                if rebuilt.contains(t.table.as_str()) =>
            {
                continue;
            }
            Change::CreateIndex { index: i, .. } => {
                vec![ddl(i.definition.as_deref(), "index", &i.name)?]
            }
            Change::DropIndex(i) => vec![format!("DROP INDEX {}", quote_ident(&i.name))],
            Change::CreateView(v) => vec![ddl(v.ddl.as_deref(), "view", &v.name)?],
            Change::DropView(v) => vec![format!("DROP VIEW {}", quote_ident(&v.name))],
            Change::CreateTrigger(t) => vec![ddl(t.ddl.as_deref(), "trigger", &t.name)?],
            Change::DropTrigger(t) => vec![format!("DROP TRIGGER {}", quote_ident(&t.name))],
        };
        steps.push(Step::for_change(change, statements));
    }
    Ok(steps)
}

fn ddl(definition: Option<&str>, kind: &str, name: &str) -> Result<String, EngineError> {
    definition
        .map(str::to_string)
        .ok_or_else(|| EngineError::Internal(format!("no declared SQL for {kind} {name}")))
}

/// What `ALTER TABLE ... ADD COLUMN` accepts: no key, a constant default
/// (required when NOT NULL), no stored generated expression.
fn alters_in_place(change: &TableChange) -> bool {
    let TableChange::AddColumn(col) = change else {
        return false;
    };
    let constant_default = col.default.as_deref().is_none_or(|d| {
        let upper = d.to_uppercase();
        !d.starts_with('(') && !upper.starts_with("CURRENT_") && upper != "NULL"
    });
    let not_null_ok = col.nullable
        || col
            .default
            .as_deref()
            .is_some_and(|d| !d.eq_ignore_ascii_case("NULL"));
    constant_default && not_null_ok && !col.generated.as_ref().is_some_and(|g| g.stored)
}

fn add_column(table: &Table, column: &Column) -> Result<String, EngineError> {
    let definition = table
        .definition
        .as_deref()
        .and_then(|sql| column_definition(sql, &column.name))
        .ok_or_else(|| {
            EngineError::Internal(format!(
                "no declared SQL for column {}.{}",
                table.name, column.name
            ))
        })?;
    Ok(format!(
        "ALTER TABLE {} ADD COLUMN {definition}",
        quote_ident(&table.name)
    ))
}

/// The rebuild of one table (sqlite.org/lang_altertable.html, "other kinds
/// of table schema changes"), keeping every row of the columns both
/// versions share.
fn rebuild(
    change: &Change,
    from: &Table,
    to: &Table,
    changes: &[TableChange],
    declared: &SqlSchema,
) -> Result<Step, EngineError> {
    let temp = format!("{RESERVED_PREFIX}new_{}", to.name);
    let create = ddl(to.definition.as_deref(), "table", &to.name)?;
    let create = rename_created_object(&create, &quote_ident(&temp)).ok_or_else(|| {
        EngineError::Other(format!(
            "cannot rename the declared CREATE TABLE of {}",
            to.name
        ))
    })?;
    let (targets, sources): (Vec<String>, Vec<String>) = to
        .columns
        .iter()
        .filter(|c| c.generated.is_none())
        .filter_map(|c| {
            let old = from.column(&c.name).filter(|o| o.generated.is_none())?;
            let value = match (&c.default, old.nullable && !c.nullable) {
                (Some(default), true) => format!("COALESCE({}, {default})", quote_ident(&c.name)),
                _ => quote_ident(&c.name),
            };
            Some((quote_ident(&c.name), value))
        })
        .unzip();
    let mut statements = vec![create];
    if !targets.is_empty() {
        statements.push(format!(
            "INSERT INTO {} ({}) SELECT {} FROM {}",
            quote_ident(&temp),
            targets.join(", "),
            sources.join(", "),
            quote_ident(&from.name)
        ));
    }
    statements.push(format!("DROP TABLE {}", quote_ident(&from.name)));
    statements.push(format!(
        "ALTER TABLE {} RENAME TO {}",
        quote_ident(&temp),
        quote_ident(&to.name)
    ));
    for index in &to.indexes {
        statements.push(ddl(index.definition.as_deref(), "index", &index.name)?);
    }
    for trigger in declared.triggers.values().filter(|t| t.table == to.name) {
        statements.push(ddl(trigger.ddl.as_deref(), "trigger", &trigger.name)?);
    }
    let mut step = Step::for_change(change, statements);
    let what: Vec<String> = changes.iter().map(TableChange::describe).collect();
    step.description = format!("rebuild table {} ({})", to.name, what.join("; "));
    step.add_hazard(Hazard::new(
        HazardKind::Locking,
        "table-rebuild",
        format!(
            "rebuilds {}: copies every row into a new table under a write lock",
            to.name
        ),
    ));
    Ok(step)
}

#[cfg(test)]
mod plan_changes {
    use crate::engine::plan_cases::{cases, create_index, plain_ddl, rendered};

    /// Each shared change case, rendered by this planner without a server.
    #[test]
    fn every_change_renders_the_expected_statements() {
        let cases = cases(
            "INTEGER",
            "TEXT",
            |t| plain_ddl(t, |n| n.to_string()),
            create_index,
        );
        let got = rendered(cases, super::plan);
        let expected: &[&str] = &[
            "add a nullable column: ALTER TABLE \"t\" ADD COLUMN note TEXT",
            "drop a column: CREATE TABLE \"_tenantctl_new_t\" (   id INTEGER NOT NULL,   PRIMARY KEY (id) ); INSERT INTO \"_tenantctl_new_t\" (\"id\") SELECT \"id\" FROM \"t\"; DROP TABLE \"t\"; ALTER TABLE \"_tenantctl_new_t\" RENAME TO \"t\"",
            "create a table: CREATE TABLE u (   id INTEGER NOT NULL,   PRIMARY KEY (id) )",
            "drop a table: DROP TABLE \"u\"",
            "create an index: CREATE INDEX t_note ON t (note)",
            "drop an index: DROP INDEX \"t_note\"",
            "make a column not null: CREATE TABLE \"_tenantctl_new_t\" (   id INTEGER NOT NULL,   note TEXT NOT NULL,   PRIMARY KEY (id) ); INSERT INTO \"_tenantctl_new_t\" (\"id\", \"note\") SELECT \"id\", \"note\" FROM \"t\"; DROP TABLE \"t\"; ALTER TABLE \"_tenantctl_new_t\" RENAME TO \"t\"",
            "set a default: CREATE TABLE \"_tenantctl_new_t\" (   id INTEGER NOT NULL,   note TEXT DEFAULT 'x',   PRIMARY KEY (id) ); INSERT INTO \"_tenantctl_new_t\" (\"id\", \"note\") SELECT \"id\", \"note\" FROM \"t\"; DROP TABLE \"t\"; ALTER TABLE \"_tenantctl_new_t\" RENAME TO \"t\"",
        ];
        assert_eq!(got, expected, "got:\n{}", got.join("\n"));
    }
}
