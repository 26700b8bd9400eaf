//! Rendering changes as PostgreSQL DDL, in dependency order:
//!
//! 1. foreign keys that go away or change (so nothing else trips on them);
//! 2. schemas, extensions, types, domains, sequences and functions that are
//!    new or changed (tables and defaults may use them);
//! 3. the shared diff's changes: dependents dropped (triggers, views,
//!    indexes), tables created, altered and dropped — new foreign keys only
//!    once every table exists —, then indexes, views and triggers created;
//! 4. objects that are gone, in reverse order (functions before the types
//!    they use, schemas last).
//!
//! Every table, column and constraint is rendered from the model, which the
//! server printed itself; views, triggers, indexes and functions reuse the
//! server's own definition text.

use crate::diff::Step;
use crate::diff::{self, Change, Hazard, HazardKind, TableChange};
use crate::engine::EngineError;
use crate::model::sql::{Column, ForeignKey, SqlObject, SqlSchema, Table};
use crate::sql::{quote_ident, quote_literal};

use super::inspect::{OBJECT_ORDER, trigger_key};
use super::names::quote_name;

/// Whether `statement` must run outside a transaction (after the commit).
pub(super) fn is_concurrent(statement: &str) -> bool {
    statement.starts_with("CREATE INDEX CONCURRENTLY ")
        || statement.starts_with("CREATE UNIQUE INDEX CONCURRENTLY ")
}

/// The ordered steps that turn `live` into `declared`; with `concurrent`,
/// indexes on existing tables are built with `CREATE INDEX CONCURRENTLY`.
pub(super) fn plan(
    live: &SqlSchema,
    declared: &SqlSchema,
    concurrent: bool,
) -> Result<Vec<Step>, EngineError> {
    if let Some(t) = declared
        .tables
        .values()
        .find(|t| t.options.iter().any(|o| o == "PARTITIONED"))
    {
        return Err(EngineError::Other(format!(
            "table {} is partitioned: partitioned tables are not supported by tenantctl yet",
            t.name
        )));
    }
    let changes = diff::diff(live, declared);
    let mut phases = Phases::default();
    let mut after_tables = 0;
    for change in &changes {
        match change {
            Change::CreateTable(_) | Change::AlterTable { .. } | Change::DropTable(_) => {
                table_steps(change, &mut phases)?;
                after_tables = phases.body.len();
            }
            _ => phases.body.push(object_step(change, concurrent)?),
        }
    }
    let tail = phases.body.split_off(after_tables);
    rebind_replaced_keys(&changes, live, declared, &mut phases)?;
    let (object_creates, object_drops) = object_steps(live, declared);
    let mut steps = phases.fk_drops;
    steps.extend(object_creates);
    steps.extend(phases.body);
    steps.extend(phases.fk_adds);
    steps.extend(tail);
    steps.extend(object_drops);
    Ok(steps)
}

/// A plan's steps by phase: foreign keys dropped first, then the body
/// (tables, then indexes, views and triggers), foreign keys added last.
#[derive(Default)]
struct Phases {
    fk_drops: Vec<Step>,
    body: Vec<Step>,
    fk_adds: Vec<Step>,
}

/// The steps of a table created, altered or dropped; its foreign key
/// changes go to their own phases.
fn table_steps(change: &Change, phases: &mut Phases) -> Result<(), EngineError> {
    match change {
        Change::CreateTable(t) => {
            phases.body.push(Step::for_change(change, create_table(t)));
            for fk in &t.foreign_keys {
                phases.fk_adds.push(Step {
                    description: format!(
                        "alter table {}: add foreign key ({}) → {} (new table)",
                        t.name,
                        fk.columns.join(", "),
                        fk.referenced_table
                    ),
                    hazards: Vec::new(),
                    statements: vec![add_foreign_key(&t.name, fk)],
                });
            }
        }
        Change::AlterTable { from, to, changes } => {
            let (fks, rest): (Vec<&TableChange>, Vec<&TableChange>) =
                changes.iter().partition(|c| {
                    matches!(
                        c,
                        TableChange::AddForeignKey(_) | TableChange::DropForeignKey(_)
                    )
                });
            for fk in fks {
                let single = Change::AlterTable {
                    from: from.clone(),
                    to: to.clone(),
                    changes: vec![fk.clone()],
                };
                let mut step = Step::for_change(&single, alter_statements(to, fk)?);
                add_hazards(&mut step, to, fk);
                match fk {
                    TableChange::DropForeignKey(_) => phases.fk_drops.push(step),
                    _ => phases.fk_adds.push(step),
                }
            }
            if !rest.is_empty() {
                phases.body.push(alter_table(from, to, &rest)?);
            }
        }
        Change::DropTable(t) => phases.body.push(Step::for_change(
            change,
            vec![format!("DROP TABLE {}", quote_name(&t.name))],
        )),
        _ => {}
    }
    Ok(())
}

/// The one step of an index, view or trigger change.
fn object_step(change: &Change, concurrent: bool) -> Result<Step, EngineError> {
    Ok(match change {
        Change::CreateIndex { index, new_table } => {
            let ddl = index.definition.clone().ok_or_else(|| {
                EngineError::Internal(format!("no definition for index {}", index.name))
            })?;
            if concurrent && !new_table {
                let ddl = ddl.replacen(" INDEX ", " INDEX CONCURRENTLY ", 1);
                let mut step = Step::for_change(change, vec![ddl]);
                step.add_hazard(Hazard::new(
                    HazardKind::IndexBuild,
                    "pg-concurrent-index",
                    format!(
                        "builds {} with CREATE INDEX CONCURRENTLY after the transaction commits: writes go on meanwhile, but it is not atomic with the other steps; a failed build leaves an INVALID index that the next run drops and builds again",
                        index.name
                    ),
                ));
                step
            } else {
                Step::for_change(change, vec![ddl])
            }
        }
        Change::DropIndex(i) => {
            Step::for_change(change, vec![format!("DROP INDEX {}", quote_name(&i.name))])
        }
        Change::CreateView(v) => {
            let ddl = v.ddl.clone().ok_or_else(|| {
                EngineError::Internal(format!("no definition for view {}", v.name))
            })?;
            Step::for_change(change, vec![ddl])
        }
        Change::DropView(v) => Step::for_change(
            change,
            vec![format!(
                "DROP {}VIEW {}",
                if v.materialized { "MATERIALIZED " } else { "" },
                quote_name(&v.name)
            )],
        ),
        Change::CreateTrigger(t) => {
            let ddl = t.ddl.clone().ok_or_else(|| {
                EngineError::Internal(format!("no definition for trigger {}", t.name))
            })?;
            Step::for_change(change, vec![ddl])
        }
        Change::DropTrigger(t) => {
            let prefix = trigger_key(&t.table, "");
            let trigger = t.name.strip_prefix(&prefix).unwrap_or(&t.name);
            Step::for_change(
                change,
                vec![format!(
                    "DROP TRIGGER {} ON {}",
                    quote_ident(trigger),
                    quote_name(&t.table)
                )],
            )
        }
        _ => unreachable!("table changes are planned by table_steps"),
    })
}

/// Foreign keys whose referenced key the plan replaces: dropped first and
/// added again at the end.
fn rebind_replaced_keys(
    changes: &[Change],
    live: &SqlSchema,
    declared: &SqlSchema,
    phases: &mut Phases,
) -> Result<(), EngineError> {
    for (table, fk) in foreign_keys_on_replaced_keys(changes, live, declared) {
        phases.fk_drops.push(Step {
            description: format!(
                "alter table {table}: drop foreign key ({}) → {} while its referenced key is replaced",
                fk.columns.join(", "),
                fk.referenced_table
            ),
            hazards: Vec::new(),
            statements: vec![drop_constraint(&table, fk.name.as_deref())?],
        });
        let mut step = Step {
            description: format!(
                "alter table {table}: add foreign key ({}) → {} again",
                fk.columns.join(", "),
                fk.referenced_table
            ),
            hazards: Vec::new(),
            statements: vec![add_foreign_key(&table, &fk)],
        };
        if let Some(t) = declared.tables.get(&table) {
            add_hazards(&mut step, t, &TableChange::AddForeignKey(fk.clone()));
        }
        phases.fk_adds.push(step);
    }
    Ok(())
}

/// Foreign keys that stay but depend on a primary key, unique constraint
/// or unique index that the plan drops: PostgreSQL refuses to drop the key
/// under them, so they are dropped first and added again at the end.
fn foreign_keys_on_replaced_keys(
    changes: &[Change],
    live: &SqlSchema,
    declared: &SqlSchema,
) -> Vec<(String, ForeignKey)> {
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    for change in changes {
        match change {
            Change::AlterTable { to, changes, .. } => {
                for tc in changes {
                    match tc {
                        TableChange::SetPrimaryKey { from: Some(pk), .. } => {
                            keys.push((to.name.clone(), sorted(&pk.columns)))
                        }
                        TableChange::DropUnique(u) => {
                            keys.push((to.name.clone(), sorted(&u.columns)))
                        }
                        _ => {}
                    }
                }
            }
            Change::DropIndex(i) if i.unique => keys.push((
                i.table.clone(),
                sorted(
                    &i.parts
                        .iter()
                        .map(|p| p.expression.clone())
                        .collect::<Vec<_>>(),
                ),
            )),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for t in live.tables.values() {
        let Some(kept) = declared.tables.get(&t.name) else {
            continue;
        };
        for fk in &t.foreign_keys {
            let replaced = keys.iter().any(|(table, cols)| {
                *table == fk.referenced_table && *cols == sorted(&fk.referenced_columns)
            });
            if replaced && kept.foreign_keys.contains(fk) {
                out.push((t.name.clone(), fk.clone()));
            }
        }
    }
    out
}

fn sorted(columns: &[String]) -> Vec<String> {
    let mut v = columns.to_vec();
    v.sort();
    v
}

/// `CREATE TABLE` with columns and every constraint but foreign keys, plus comments.
fn create_table(t: &Table) -> Vec<String> {
    let mut items: Vec<String> = t.columns.iter().map(column_definition).collect();
    if let Some(pk) = &t.primary_key {
        items.push(format!(
            "{}PRIMARY KEY ({})",
            constraint_name(pk.name.as_deref()),
            idents(&pk.columns)
        ));
    }
    for u in &t.uniques {
        items.push(format!(
            "{}UNIQUE ({})",
            constraint_name(u.name.as_deref()),
            idents(&u.columns)
        ));
    }
    for c in &t.checks {
        items.push(format!(
            "{}CHECK {}",
            constraint_name(c.name.as_deref()),
            c.expression
        ));
    }
    for x in &t.exclusions {
        items.push(format!(
            "CONSTRAINT {} {}",
            quote_ident(&x.name),
            x.definition
        ));
    }
    let unlogged = if t.options.iter().any(|o| o == "UNLOGGED") {
        "UNLOGGED "
    } else {
        ""
    };
    let mut statements = vec![format!(
        "CREATE {unlogged}TABLE {} (\n    {}\n)",
        quote_name(&t.name),
        items.join(",\n    ")
    )];
    if let Some(comment) = &t.comment {
        statements.push(table_comment(&t.name, Some(comment)));
    }
    for c in t.columns.iter().filter(|c| c.comment.is_some()) {
        statements.push(column_comment(&t.name, &c.name, c.comment.as_deref()));
    }
    statements
}

fn constraint_name(name: Option<&str>) -> String {
    name.map(|n| format!("CONSTRAINT {} ", quote_ident(n)))
        .unwrap_or_default()
}

fn idents(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn table_comment(table: &str, comment: Option<&str>) -> String {
    format!(
        "COMMENT ON TABLE {} IS {}",
        quote_name(table),
        comment.map_or("NULL".into(), quote_literal)
    )
}

fn column_comment(table: &str, column: &str, comment: Option<&str>) -> String {
    format!(
        "COMMENT ON COLUMN {}.{} IS {}",
        quote_name(table),
        quote_ident(column),
        comment.map_or("NULL".into(), quote_literal)
    )
}

/// The serial pseudo-type creating the same column and owned sequence.
fn serial_type(data_type: &str) -> Option<&'static str> {
    match data_type {
        "integer" => Some("serial"),
        "bigint" => Some("bigserial"),
        "smallint" => Some("smallserial"),
        _ => None,
    }
}

fn column_definition(c: &Column) -> String {
    let serial = c
        .auto_increment
        .then(|| serial_type(&c.data_type))
        .flatten();
    let mut s = format!(
        "{} {}",
        quote_ident(&c.name),
        serial.unwrap_or(&c.data_type)
    );
    if let Some(coll) = &c.collation {
        s.push_str(&format!(" COLLATE {}", quote_ident(coll)));
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", g.expression));
    } else if let Some(identity) = &c.identity {
        s.push_str(&format!(" GENERATED {identity} AS IDENTITY"));
    } else if let (None, Some(default)) = (serial, &c.default) {
        s.push_str(&format!(" DEFAULT {default}"));
    }
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    s
}

fn add_foreign_key(table: &str, fk: &ForeignKey) -> String {
    let mut s = format!(
        "ALTER TABLE {} ADD {}FOREIGN KEY ({}) REFERENCES {} ({})",
        quote_name(table),
        constraint_name(fk.name.as_deref()),
        idents(&fk.columns),
        quote_name(&fk.referenced_table),
        idents(&fk.referenced_columns)
    );
    for (what, action) in [("UPDATE", &fk.on_update), ("DELETE", &fk.on_delete)] {
        if !action.is_empty() && action != "NO ACTION" {
            s.push_str(&format!(" ON {what} {action}"));
        }
    }
    if fk.deferrable {
        s.push_str(" DEFERRABLE");
        if fk.initially_deferred {
            s.push_str(" INITIALLY DEFERRED");
        }
    }
    s
}

fn drop_constraint(table: &str, name: Option<&str>) -> Result<String, EngineError> {
    let name =
        name.ok_or_else(|| EngineError::Internal(format!("unnamed constraint on {table}")))?;
    Ok(format!(
        "ALTER TABLE {} DROP CONSTRAINT {}",
        quote_name(table),
        quote_ident(name)
    ))
}

/// Where a table change goes inside its table's step: constraints are
/// dropped first (dropping a column would drop them silently), then
/// columns change, then constraints are added.
fn phase(change: &TableChange) -> u8 {
    match change {
        TableChange::DropForeignKey(_)
        | TableChange::DropUnique(_)
        | TableChange::DropCheck(_)
        | TableChange::DropExclusion(_) => 0,
        TableChange::SetPrimaryKey { .. } => 1,
        TableChange::DropColumn(_) => 2,
        TableChange::AddColumn(_) | TableChange::AlterColumn { .. } => 3,
        _ => 4,
    }
}

fn alter_table(from: &Table, to: &Table, changes: &[&TableChange]) -> Result<Step, EngineError> {
    let mut ordered: Vec<&TableChange> = changes.to_vec();
    ordered.sort_by_key(|c| phase(c));
    let change = Change::AlterTable {
        from: from.clone(),
        to: to.clone(),
        changes: ordered.iter().map(|c| (*c).clone()).collect(),
    };
    // Constraints (the old primary key too) are dropped first, columns
    // change next, constraints (the new primary key too) are added last.
    let mut drops = Vec::new();
    let mut columns = Vec::new();
    let mut adds = Vec::new();
    for tc in &ordered {
        match tc {
            TableChange::SetPrimaryKey { from: old, to: new } => {
                if let Some(old) = old {
                    drops.push(drop_constraint(&to.name, old.name.as_deref())?);
                }
                if let Some(new) = new {
                    adds.push(format!(
                        "ALTER TABLE {} ADD {}PRIMARY KEY ({})",
                        quote_name(&to.name),
                        constraint_name(new.name.as_deref()),
                        idents(&new.columns)
                    ));
                }
            }
            _ => match phase(tc) {
                0 => drops.extend(alter_statements(to, tc)?),
                2 | 3 => columns.extend(alter_statements(to, tc)?),
                _ => adds.extend(alter_statements(to, tc)?),
            },
        }
    }
    drops.extend(columns);
    drops.extend(adds);
    let mut step = Step::for_change(&change, drops);
    for tc in &ordered {
        add_hazards(&mut step, to, tc);
    }
    Ok(step)
}

/// The statements of one change inside table `t`.
fn alter_statements(t: &Table, change: &TableChange) -> Result<Vec<String>, EngineError> {
    let table = quote_name(&t.name);
    Ok(match change {
        TableChange::AddColumn(c) => {
            let mut v = vec![format!(
                "ALTER TABLE {table} ADD COLUMN {}",
                column_definition(c)
            )];
            if c.comment.is_some() {
                v.push(column_comment(&t.name, &c.name, c.comment.as_deref()));
            }
            v
        }
        TableChange::DropColumn(c) => {
            vec![format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                quote_ident(&c.name)
            )]
        }
        TableChange::AlterColumn { from, to } => alter_column(t, from, to),
        TableChange::SetPrimaryKey { .. } => Vec::new(),
        TableChange::AddUnique(u) => vec![format!(
            "ALTER TABLE {table} ADD {}UNIQUE ({})",
            constraint_name(u.name.as_deref()),
            idents(&u.columns)
        )],
        TableChange::DropUnique(u) => vec![drop_constraint(&t.name, u.name.as_deref())?],
        TableChange::AddCheck(c) => vec![format!(
            "ALTER TABLE {table} ADD {}CHECK {}",
            constraint_name(c.name.as_deref()),
            c.expression
        )],
        TableChange::DropCheck(c) => vec![drop_constraint(&t.name, c.name.as_deref())?],
        TableChange::AddForeignKey(fk) => vec![add_foreign_key(&t.name, fk)],
        TableChange::DropForeignKey(fk) => vec![drop_constraint(&t.name, fk.name.as_deref())?],
        TableChange::AddExclusion(x) => vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} {}",
            quote_ident(&x.name),
            x.definition
        )],
        TableChange::DropExclusion(x) => vec![drop_constraint(&t.name, Some(&x.name))?],
        TableChange::SetOptions { to, .. } => vec![format!(
            "ALTER TABLE {table} SET {}",
            if to.iter().any(|o| o == "UNLOGGED") {
                "UNLOGGED"
            } else {
                "LOGGED"
            }
        )],
        TableChange::SetComment { to, .. } => vec![table_comment(&t.name, to.as_deref())],
    })
}

/// The sequence named in a `nextval('name'::regclass)` default.
fn sequence_of(default: Option<&str>) -> Option<String> {
    let inner = default?.strip_prefix("nextval('")?;
    let name = &inner[..inner.find("'::regclass)")?];
    Some(name.replace("''", "'"))
}

fn alter_column(t: &Table, from: &Column, to: &Column) -> Vec<String> {
    let table = quote_name(&t.name);
    let col = quote_ident(&to.name);
    let alter = |what: String| format!("ALTER TABLE {table} ALTER COLUMN {col} {what}");
    let mut out = Vec::new();
    if from.generated != to.generated {
        if to.generated.is_some() {
            // PostgreSQL 15 cannot change a generation expression in place.
            out.push(format!("ALTER TABLE {table} DROP COLUMN {col}"));
            out.push(format!(
                "ALTER TABLE {table} ADD COLUMN {}",
                column_definition(to)
            ));
            if to.comment.is_some() {
                out.push(column_comment(&t.name, &to.name, to.comment.as_deref()));
            }
            return out;
        }
        out.push(alter("DROP EXPRESSION".into()));
    }
    if from.identity.is_some() && to.identity.is_none() {
        out.push(alter("DROP IDENTITY".into()));
    }
    let retype = from.data_type != to.data_type || from.collation != to.collation;
    let mut default_dropped = false;
    if from.auto_increment && !to.auto_increment {
        out.push(alter("DROP DEFAULT".into()));
        default_dropped = true;
        if let Some(seq) = sequence_of(from.default.as_deref()) {
            out.push(format!("DROP SEQUENCE {}", quote_name(&seq)));
        }
    } else if retype && from.default.is_some() && !from.auto_increment {
        out.push(alter("DROP DEFAULT".into()));
        default_dropped = true;
    }
    if !from.nullable && to.nullable {
        out.push(alter("DROP NOT NULL".into()));
    }
    if retype {
        let collate = to
            .collation
            .as_ref()
            .map(|c| format!(" COLLATE {}", quote_ident(c)))
            .unwrap_or_default();
        out.push(alter(format!(
            "TYPE {}{collate} USING {col}::{}",
            to.data_type, to.data_type
        )));
    }
    if to.auto_increment && !from.auto_increment {
        if let Some(seq) = sequence_of(to.default.as_deref()) {
            let seq_name = quote_name(&seq);
            out.push(format!(
                "CREATE SEQUENCE {seq_name} AS {} OWNED BY {table}.{col}",
                to.data_type
            ));
            out.push(format!(
                "SELECT setval({}, (SELECT COALESCE(MAX({col}), 0) + 1 FROM {table}), false)",
                quote_literal(&seq_name)
            ));
        }
        if let Some(default) = &to.default {
            out.push(alter(format!("SET DEFAULT {default}")));
        }
    } else if to.identity.is_none() && (from.default != to.default || default_dropped) {
        match &to.default {
            Some(default) => out.push(alter(format!("SET DEFAULT {default}"))),
            None if !default_dropped => out.push(alter("DROP DEFAULT".into())),
            None => {}
        }
    }
    if from.nullable && !to.nullable {
        out.push(alter("SET NOT NULL".into()));
    }
    match (&from.identity, &to.identity) {
        (None, Some(identity)) => {
            out.push(alter(format!("ADD GENERATED {identity} AS IDENTITY")));
            out.push(format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), (SELECT COALESCE(MAX({col}), 0) + 1 FROM {table}), false)",
                quote_literal(&table),
                quote_literal(&to.name)
            ));
        }
        (Some(a), Some(b)) if a != b => out.push(alter(format!("SET GENERATED {b}"))),
        _ => {}
    }
    if from.comment != to.comment {
        out.push(column_comment(&t.name, &to.name, to.comment.as_deref()));
    }
    out
}

/// Whether changing a column from `from` to `to` can skip rewriting the
/// table (PostgreSQL only relabels binary-compatible widenings).
fn rewrites(from: &str, to: &str) -> bool {
    fn args(t: &str, base: &str) -> Option<Vec<u32>> {
        let rest = t.strip_prefix(base)?;
        if rest.is_empty() {
            return Some(Vec::new());
        }
        let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
        inner.split(',').map(|a| a.trim().parse().ok()).collect()
    }
    for base in ["character varying", "varchar"] {
        if let Some(f) = args(from, base) {
            if to == "text" {
                return false;
            }
            if let Some(t) = args(to, base) {
                return !(t.is_empty() || (!f.is_empty() && t[0] >= f[0]));
            }
        }
    }
    if let (Some(f), Some(t)) = (args(from, "numeric"), args(to, "numeric")) {
        return !(t.is_empty() || (f.len() == 2 && t.len() == 2 && t[0] >= f[0] && t[1] == f[1]));
    }
    true
}

/// Hazards only PostgreSQL has, with what to do about them.
fn add_hazards(step: &mut Step, t: &Table, change: &TableChange) {
    match change {
        TableChange::AlterColumn { from, to } => {
            if (from.data_type != to.data_type || from.collation != to.collation)
                && rewrites(&from.data_type, &to.data_type)
            {
                step.add_hazard(Hazard::new(
                    HazardKind::Locking,
                    "pg-table-rewrite",
                    format!(
                        "changing {}.{} to {} rewrites the table and its indexes under an ACCESS EXCLUSIVE lock",
                        t.name, to.name, to.data_type
                    ),
                ));
            }
            if from.nullable && !to.nullable {
                step.add_hazard(Hazard::new(
                    HazardKind::Locking,
                    "pg-set-not-null-scan",
                    format!(
                        "SET NOT NULL on {}.{} scans the table under an ACCESS EXCLUSIVE lock; on a big table first add CHECK ({} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it in a later apply, then SET NOT NULL",
                        t.name, to.name, to.name
                    ),
                ));
            }
            if from.generated != to.generated && to.generated.is_some() {
                step.add_hazard(Hazard::new(
                    HazardKind::Locking,
                    "pg-regenerate-column",
                    format!("recreates generated column {}.{}: rewrites the table", t.name, to.name),
                ));
            }
        }
        TableChange::AddCheck(_) | TableChange::AddForeignKey(_) => step.add_hazard(Hazard::new(
            HazardKind::Locking,
            "pg-constraint-scan",
            format!(
                "validating the new constraint scans {} while holding its lock; on a big table add it NOT VALID first, then VALIDATE CONSTRAINT in a later apply",
                t.name
            ),
        )),
        TableChange::AddUnique(_)
        | TableChange::AddExclusion(_)
        | TableChange::SetPrimaryKey { to: Some(_), .. } => step.add_hazard(Hazard::new(
            HazardKind::IndexBuild,
            "pg-constraint-index",
            format!("builds the constraint's index on {} under a write lock", t.name),
        )),
        TableChange::SetOptions { .. } => step.add_hazard(Hazard::new(
            HazardKind::Locking,
            "pg-table-rewrite",
            format!("SET LOGGED/UNLOGGED rewrites {}", t.name),
        )),
        TableChange::AddColumn(c) if c.identity.is_some() || c.generated.is_some() => {
            step.add_hazard(Hazard::new(
                HazardKind::Locking,
                "pg-table-rewrite",
                format!("adding {}.{} fills every row: rewrites the table", t.name, c.name),
            ))
        }
        _ => {}
    }
}

/// Steps creating or changing objects (in [`OBJECT_ORDER`]) and steps
/// dropping the ones that are gone (in reverse).
fn object_steps(live: &SqlSchema, declared: &SqlSchema) -> (Vec<Step>, Vec<Step>) {
    let mut creates = Vec::new();
    let mut drops = Vec::new();
    for kind in OBJECT_ORDER {
        for obj in declared.objects.values().filter(|o| o.kind == *kind) {
            match live.objects.get(&key(obj)) {
                None => creates.push(Step {
                    description: format!("create {} {}", obj.kind, obj.name),
                    hazards: Vec::new(),
                    statements: obj.ddl.clone(),
                }),
                Some(old) if old.definition != obj.definition => {
                    creates.push(alter_object(old, obj))
                }
                Some(_) => {}
            }
        }
    }
    for kind in OBJECT_ORDER.iter().rev() {
        for obj in live.objects.values().filter(|o| o.kind == *kind) {
            if !declared.objects.contains_key(&key(obj)) {
                drops.push(drop_object(obj));
            }
        }
    }
    (creates, drops)
}

fn key(obj: &SqlObject) -> String {
    format!("{} {}", obj.kind, obj.name)
}

fn drop_statement(obj: &SqlObject) -> String {
    match obj.kind.as_str() {
        "function" | "procedure" => {
            let (name, args) = obj.name.split_once('(').unwrap_or((&obj.name, ")"));
            format!(
                "DROP {} {}({args}",
                obj.kind.to_uppercase(),
                quote_name(name)
            )
        }
        "enum" => format!("DROP TYPE {}", quote_name(&obj.name)),
        "extension" | "schema" => format!(
            "DROP {} {}",
            obj.kind.to_uppercase(),
            quote_ident(&obj.name)
        ),
        other => format!("DROP {} {}", other.to_uppercase(), quote_name(&obj.name)),
    }
}

fn drop_object(obj: &SqlObject) -> Step {
    let mut hazards = Vec::new();
    if matches!(obj.kind.as_str(), "schema" | "extension" | "sequence") {
        hazards.push(Hazard::new(
            HazardKind::Destructive,
            "pg-drop-object",
            format!(
                "drops {} {} and what it holds{}",
                obj.kind,
                obj.name,
                if obj.kind == "sequence" {
                    " (its current value)"
                } else {
                    ""
                }
            ),
        ));
    }
    Step {
        description: format!("drop {} {}", obj.kind, obj.name),
        hazards,
        statements: vec![drop_statement(obj)],
    }
}

/// Changes an object in place where PostgreSQL can, else drops and recreates it.
fn alter_object(old: &SqlObject, new: &SqlObject) -> Step {
    let name = quote_name(&new.name);
    let in_place: Option<Vec<String>> = match new.kind.as_str() {
        "function" | "procedure" => Some(new.ddl.clone()),
        "sequence" => Some(vec![format!("ALTER SEQUENCE {name} {}", new.definition)]),
        "enum" => add_enum_values(&name, &old.items, &new.items).map(|mut v| {
            if old.definition.contains("; COMMENT ON") || new.ddl.len() > 1 {
                v.push(
                    new.ddl
                        .get(1)
                        .cloned()
                        .unwrap_or_else(|| format!("COMMENT ON TYPE {name} IS NULL")),
                );
            }
            v
        }),
        "extension" => new.definition.rsplit_once(" SCHEMA ").map(|(_, schema)| {
            vec![format!(
                "ALTER EXTENSION {} SET SCHEMA {}",
                quote_ident(&new.name),
                quote_ident(schema)
            )]
        }),
        _ => None,
    };
    match in_place {
        Some(statements) => Step {
            description: format!("alter {} {}", new.kind, new.name),
            hazards: Vec::new(),
            statements,
        },
        None => {
            let mut statements = vec![drop_statement(old)];
            statements.extend(new.ddl.iter().cloned());
            Step {
                description: format!("recreate {} {}", new.kind, new.name),
                hazards: vec![Hazard::new(
                    HazardKind::DataDependent,
                    "pg-recreate-type",
                    format!(
                        "{} {} cannot change in place: it is dropped and created again, which fails while columns use it",
                        new.kind, new.name
                    ),
                )],
                statements,
            }
        }
    }
}

/// `ALTER TYPE ... ADD VALUE` statements when `new` keeps every label of
/// `old` in the same order; `None` when a label was removed or moved.
fn add_enum_values(name: &str, old: &[String], new: &[String]) -> Option<Vec<String>> {
    let kept: Vec<&String> = new.iter().filter(|l| old.contains(l)).collect();
    if kept.len() != old.len() || kept.iter().zip(old).any(|(a, b)| *a != b) {
        return None;
    }
    let mut out = Vec::new();
    for (i, label) in new.iter().enumerate() {
        if old.contains(label) {
            continue;
        }
        let place = match i {
            0 => new
                .get(1)
                .map(|next| format!(" BEFORE {}", quote_literal(next)))
                .unwrap_or_default(),
            _ => format!(" AFTER {}", quote_literal(&new[i - 1])),
        };
        out.push(format!(
            "ALTER TYPE {name} ADD VALUE {}{place}",
            quote_literal(label)
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_varchar_does_not_rewrite() {
        assert!(!rewrites("character varying(10)", "character varying(20)"));
        assert!(!rewrites("character varying(10)", "text"));
        assert!(rewrites("character varying(20)", "character varying(10)"));
        assert!(rewrites("integer", "bigint"));
        assert!(!rewrites("numeric(10,2)", "numeric(12,2)"));
    }

    #[test]
    fn enum_values_are_added_in_place() {
        let old = ["a".to_string(), "c".to_string()];
        let new = [
            "a".to_string(),
            "b".to_string(),
            "c".to_string(),
            "d".to_string(),
        ];
        assert_eq!(
            add_enum_values("\"e\"", &old, &new).unwrap(),
            [
                "ALTER TYPE \"e\" ADD VALUE 'b' AFTER 'a'",
                "ALTER TYPE \"e\" ADD VALUE 'd' AFTER 'c'"
            ]
        );
        assert!(add_enum_values("\"e\"", &new, &old).is_none());
    }

    #[test]
    fn serial_sequence_is_found_in_its_default() {
        assert_eq!(
            sequence_of(Some("nextval('t_id_seq'::regclass)")).as_deref(),
            Some("t_id_seq")
        );
    }
}

#[cfg(test)]
mod plan_changes {
    use crate::engine::plan_cases::{cases, create_index, plain_ddl, rendered};

    /// Each shared change case, rendered by this planner without a server.
    #[test]
    fn every_change_renders_the_expected_statements() {
        let cases = cases(
            "integer",
            "text",
            |t| plain_ddl(t, |n| format!("\"{n}\"")),
            create_index,
        );
        let got = rendered(cases, |live, declared| super::plan(live, declared, false));
        let expected: &[&str] = &[
            "add a nullable column: ALTER TABLE \"t\" ADD COLUMN \"note\" text",
            "drop a column: ALTER TABLE \"t\" DROP COLUMN \"note\"",
            "create a table: CREATE TABLE \"u\" (     \"id\" integer NOT NULL,     PRIMARY KEY (\"id\") )",
            "drop a table: DROP TABLE \"u\"",
            "create an index: CREATE INDEX t_note ON t (note)",
            "drop an index: DROP INDEX \"t_note\"",
            "make a column not null: ALTER TABLE \"t\" ALTER COLUMN \"note\" SET NOT NULL",
            "set a default: ALTER TABLE \"t\" ALTER COLUMN \"note\" SET DEFAULT 'x'",
        ];
        assert_eq!(got, expected, "got:\n{}", got.join("\n"));
    }
}
