//! Rendering changes as MySQL/MariaDB statements. Every change to one table
//! (columns, keys, indexes, checks, options) goes into a single `ALTER TABLE`
//! so the table is rebuilt at most once; foreign keys are dropped before
//! anything else and added after every table is in shape, because MySQL
//! refuses to drop or alter what a foreign key still needs. Column and key
//! definitions are taken verbatim from the server's own `SHOW CREATE TABLE`
//! of the declared (scratch) database.

use std::collections::{BTreeMap, BTreeSet};

use super::inspect::{
    Flavor, PARTITION_PREFIX, charset_of, column_line, constraint_line, primary_key_line,
    table_collation,
};
use super::{quote_ident, quote_literal};
use crate::diff::Step;
use crate::diff::{self, Change, Hazard, HazardKind, TableChange};
use crate::engine::EngineError;
use crate::model::sql::{Column, Index, SqlSchema, Table};

/// Steps by phase: run in this order.
#[derive(Default)]
struct Phases {
    /// Drop triggers, views and foreign keys.
    first: Vec<Step>,
    /// Create, alter and drop tables.
    middle: Vec<Step>,
    /// Add foreign keys, once every table is in shape.
    foreign_keys: Vec<Step>,
    /// Create views and triggers.
    last: Vec<Step>,
}

/// Index changes of one table, folded into its `ALTER TABLE`.
#[derive(Default)]
struct IndexChanges<'a> {
    drop: Vec<&'a Index>,
    create: Vec<&'a Change>,
}

/// The ordered steps that turn `live` into `declared`.
pub(super) fn plan(
    live: &SqlSchema,
    declared: &SqlSchema,
    flavor: Flavor,
) -> Result<Vec<Step>, EngineError> {
    let changes = diff::diff(live, declared);

    let mut index_changes: BTreeMap<&str, IndexChanges> = BTreeMap::new();
    for change in &changes {
        match change {
            Change::DropIndex(i) => index_changes.entry(&i.table).or_default().drop.push(i),
            Change::CreateIndex {
                index,
                new_table: false,
            } => index_changes
                .entry(&index.table)
                .or_default()
                .create
                .push(change),
            _ => {}
        }
    }

    let mut phases = Phases::default();
    rebind_foreign_keys(&changes, live, declared, &mut phases)?;
    let new_tables: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::CreateTable(t) => Some(t.name.as_str()),
            _ => None,
        })
        .collect();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    // Tables altered by this plan: a new table's key to one waits for the ALTER.
    let altered: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| match c {
            Change::AlterTable { to, .. } => Some(to.name.as_str()),
            _ => None,
        })
        .chain(index_changes.keys().copied())
        .collect();
    for change in &changes {
        match change {
            Change::DropTrigger(t) => phases.first.push(Step::for_change(
                change,
                vec![format!("DROP TRIGGER {}", quote_ident(&t.name))],
            )),
            Change::DropView(v) => phases.first.push(Step::for_change(
                change,
                vec![format!("DROP VIEW {}", quote_ident(&v.name))],
            )),
            Change::CreateTable(t) => {
                let later = |target: &str| {
                    (new_tables.contains(target) && !created.contains(target))
                        || altered.contains(target)
                };
                create_table(change, t, &later, &mut phases)?;
                created.insert(&t.name);
            }
            Change::DropTable(t) => phases.middle.push(Step::for_change(
                change,
                vec![format!("DROP TABLE {}", quote_ident(&t.name))],
            )),
            Change::AlterTable { from, to, changes } => {
                let idx = index_changes.remove(to.name.as_str()).unwrap_or_default();
                alter_table(from, to, changes, idx, flavor, &mut phases)?;
            }
            // Folded into their table's ALTER below; a new table's indexes
            // are part of its CREATE TABLE.
            Change::DropIndex(_) | Change::CreateIndex { .. } => {}
            Change::CreateView(v) => phases.last.push(Step::for_change(
                change,
                vec![ddl(v.ddl.as_deref(), "view", &v.name)?],
            )),
            Change::CreateTrigger(t) => phases.last.push(Step::for_change(
                change,
                vec![ddl(t.ddl.as_deref(), "trigger", &t.name)?],
            )),
        }
    }
    // Tables whose only changes are indexes.
    for (table, idx) in index_changes {
        let (Some(from), Some(to)) = (live.tables.get(table), declared.tables.get(table)) else {
            continue;
        };
        alter_table(from, to, &[], idx, flavor, &mut phases)?;
    }
    let mut steps = phases.first;
    steps.extend(phases.middle);
    steps.extend(phases.foreign_keys);
    steps.extend(phases.last);
    Ok(steps)
}

fn ddl(definition: Option<&str>, kind: &str, name: &str) -> Result<String, EngineError> {
    definition
        .map(str::to_string)
        .ok_or_else(|| EngineError::Internal(format!("no declared SQL for {kind} {name}")))
}

/// MySQL refuses to change the type of a column a foreign key uses (on
/// either side). Foreign keys that stay but touch a column whose type
/// changes are dropped first and added again at the end.
fn rebind_foreign_keys(
    changes: &[Change],
    live: &SqlSchema,
    declared: &SqlSchema,
    phases: &mut Phases,
) -> Result<(), EngineError> {
    let retyped: BTreeSet<(&str, &str)> = changes
        .iter()
        .flat_map(|c| match c {
            Change::AlterTable { to, changes, .. } => changes
                .iter()
                .filter_map(|tc| match tc {
                    TableChange::AlterColumn { from, to: col }
                        if from.data_type != col.data_type =>
                    {
                        Some((to.name.as_str(), col.name.as_str()))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    if retyped.is_empty() {
        return Ok(());
    }
    for to in declared.tables.values() {
        let Some(from) = live.tables.get(&to.name) else {
            continue;
        };
        let def = to
            .definition
            .as_deref()
            .ok_or_else(|| missing("CREATE TABLE", &to.name))?;
        for fk in to
            .foreign_keys
            .iter()
            .filter(|fk| from.foreign_keys.contains(fk))
        {
            let touches = fk
                .columns
                .iter()
                .any(|c| retyped.contains(&(to.name.as_str(), c.as_str())))
                || fk
                    .referenced_columns
                    .iter()
                    .any(|c| retyped.contains(&(fk.referenced_table.as_str(), c.as_str())));
            if !touches {
                continue;
            }
            let name = fk.name.as_deref().unwrap_or_default();
            let line = constraint_line(def, name)
                .ok_or_else(|| missing(&format!("foreign key {name}"), &to.name))?;
            let table = quote_ident(&to.name);
            phases.first.push(Step {
                description: format!(
                    "drop foreign key {name} on {} while its columns change type",
                    to.name
                ),
                hazards: Vec::new(),
                statements: vec![format!(
                    "ALTER TABLE {table} DROP FOREIGN KEY {}",
                    quote_ident(name)
                )],
            });
            phases.foreign_keys.push(Step {
                description: format!("add foreign key {name} on {} again", to.name),
                hazards: vec![Hazard::new(
                    HazardKind::DataDependent,
                    "add-constraint",
                    format!(
                        "adds FOREIGN KEY ({}) → {} again: fails on rows without a match",
                        fk.columns.join(", "),
                        fk.referenced_table
                    ),
                )],
                statements: vec![format!("ALTER TABLE {table} ADD {line}")],
            });
        }
    }
    Ok(())
}

/// A new table. Tables come after the tables they reference, but a foreign
/// key to a table that is not ready yet (`later`: created further on, in a
/// reference cycle, or altered by this plan, perhaps adding the referenced
/// column) is left out of the CREATE TABLE and added once every table is in shape.
fn create_table(
    change: &Change,
    t: &Table,
    later: &dyn Fn(&str) -> bool,
    phases: &mut Phases,
) -> Result<(), EngineError> {
    let mut sql = ddl(t.definition.as_deref(), "table", &t.name)?;
    let mut adds = Vec::new();
    let mut names = Vec::new();
    for fk in &t.foreign_keys {
        let target = fk.referenced_table.as_str();
        if target == t.name || !later(target) {
            continue;
        }
        let name = fk.name.as_deref().unwrap_or_default();
        let line = constraint_line(&sql, name)
            .ok_or_else(|| missing(&format!("foreign key {name}"), &t.name))?;
        sql = remove_element(&sql, &line);
        adds.push(format!("ADD {line}"));
        names.push(name);
    }
    phases.middle.push(Step::for_change(change, vec![sql]));
    if !adds.is_empty() {
        phases.foreign_keys.push(Step {
            description: format!(
                "add foreign key {} on new table {}",
                names.join(", "),
                t.name
            ),
            hazards: Vec::new(),
            statements: vec![format!(
                "ALTER TABLE {} {}",
                quote_ident(&t.name),
                adds.join(", ")
            )],
        });
    }
    Ok(())
}

/// `SHOW CREATE TABLE` text without the element `line` (comma fixed up).
fn remove_element(ddl: &str, line: &str) -> String {
    let mut lines: Vec<String> = ddl.lines().map(str::to_string).collect();
    let Some(i) = lines
        .iter()
        .position(|l| l.starts_with("  ") && l.trim().trim_end_matches(',') == line)
    else {
        return ddl.to_string();
    };
    let was_last = !lines[i].trim_end().ends_with(',');
    lines.remove(i);
    if was_last && i > 0 {
        let previous = lines[i - 1].trim_end().trim_end_matches(',').to_string();
        lines[i - 1] = previous;
    }
    lines.join("\n")
}

fn missing(what: &str, table: &str) -> EngineError {
    EngineError::Internal(format!("the declared DDL of table {table} has no {what}"))
}

/// Renders the changes to one table: foreign keys dropped (into `first`),
/// one `ALTER TABLE` for everything else (into `middle`), foreign keys added
/// (into `foreign_keys`).
fn alter_table(
    from: &Table,
    to: &Table,
    changes: &[TableChange],
    idx: IndexChanges,
    flavor: Flavor,
    out: &mut Phases,
) -> Result<(), EngineError> {
    let table = quote_ident(&to.name);
    let def = to
        .definition
        .as_deref()
        .ok_or_else(|| missing("CREATE TABLE", &to.name))?;
    out.first.extend(drop_foreign_keys(&table, to, changes));
    let alter = alter_clauses(&table, from, to, def, changes, &idx, flavor)?;
    out.middle
        .extend(alter_step(&table, from, to, changes, &idx, alter));
    out.foreign_keys
        .extend(add_foreign_keys(&table, from, to, def, changes)?);
    Ok(())
}

/// The foreign keys of a table that change or go, dropped first as a step of their own.
fn drop_foreign_keys(table: &str, to: &Table, changes: &[TableChange]) -> Option<Step> {
    let fk_drops: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            TableChange::DropForeignKey(fk) => fk.name.as_deref(),
            _ => None,
        })
        .map(|n| format!("DROP FOREIGN KEY {}", quote_ident(n)))
        .collect();
    (!fk_drops.is_empty()).then(|| Step {
        description: format!("drop foreign keys of {} that change or go", to.name),
        hazards: Vec::new(),
        statements: vec![format!("ALTER TABLE {table} {}", fk_drops.join(", "))],
    })
}

/// What the table's one `ALTER TABLE` does: statements it needs first
/// (`pre`), its clauses, and the reasons it rebuilds the table.
struct Alter {
    pre: Vec<String>,
    clauses: Vec<String>,
    rebuild: Vec<String>,
}

/// The clauses of the table's main `ALTER TABLE`, in the order MySQL needs
/// them: drops, options, columns in declared order, keys, indexes, checks, comment.
fn alter_clauses(
    table: &str,
    from: &Table,
    to: &Table,
    def: &str,
    changes: &[TableChange],
    idx: &IndexChanges,
    flavor: Flavor,
) -> Result<Alter, EngineError> {
    let dropped_columns: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            TableChange::DropColumn(c) => Some(c.name.as_str()),
            _ => None,
        })
        .collect();
    let added_columns: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            TableChange::AddColumn(c) => Some(c.name.as_str()),
            _ => None,
        })
        .collect();
    let mut modified: Vec<&str> = changes
        .iter()
        .filter_map(|c| match c {
            TableChange::AlterColumn { to, .. } => Some(to.name.as_str()),
            _ => None,
        })
        .collect();

    let mut pre = Vec::new(); // statements before the main ALTER
    let mut clauses = Vec::new();
    let mut rebuild: Vec<String> = Vec::new();

    for index in &idx.drop {
        clauses.push(format!("DROP INDEX {}", quote_ident(&index.name)));
    }
    for c in changes {
        match c {
            // A MariaDB column-level check cannot be dropped or added on its
            // own: it changes with its column's definition (MODIFY COLUMN).
            TableChange::DropCheck(check) | TableChange::AddCheck(check)
                if check.column.is_some() =>
            {
                let column = check.column.as_deref().unwrap_or_default();
                let stays = to.column(column).is_some() && from.column(column).is_some();
                if stays && !modified.contains(&column) {
                    modified.push(column);
                }
            }
            TableChange::DropCheck(check) => {
                let name = quote_ident(check.name.as_deref().unwrap_or_default());
                // MySQL has DROP CHECK since 8.0.16, DROP CONSTRAINT only since 8.0.19.
                clauses.push(match flavor {
                    Flavor::Mysql => format!("DROP CHECK {name}"),
                    Flavor::MariaDb => format!("DROP CONSTRAINT {name}"),
                });
            }
            _ => {}
        }
    }
    let pk_change = changes.iter().find_map(|c| match c {
        TableChange::SetPrimaryKey { from, to } => Some((from, to)),
        _ => None,
    });
    if let Some((Some(_), _)) = pk_change {
        clauses.push("DROP PRIMARY KEY".into());
        rebuild.push("primary key".into());
    }
    for name in &dropped_columns {
        clauses.push(format!("DROP COLUMN {}", quote_ident(name)));
        rebuild.push(format!("drop column {name}"));
    }

    // Options: a new default collation converts the table first, then the
    // columns that declare their own collation are set back below.
    for c in changes {
        if let TableChange::SetOptions { from: old, to: new } = c {
            option_clauses(
                table,
                from,
                to,
                old,
                new,
                &mut pre,
                &mut clauses,
                &mut rebuild,
                &mut modified,
            )?;
        }
    }

    // Columns in declared order, so AFTER always names a column that exists.
    for (i, col) in to.columns.iter().enumerate() {
        let is_added = added_columns.contains(&col.name.as_str());
        let is_modified = modified.contains(&col.name.as_str());
        if !is_added && !is_modified {
            continue;
        }
        let line = column_line(def, &col.name).ok_or_else(|| missing(&col.name, &to.name))?;
        if is_added {
            let position = match i {
                0 => "FIRST".to_string(),
                _ => format!("AFTER {}", quote_ident(&to.columns[i - 1].name)),
            };
            clauses.push(format!("ADD COLUMN {line} {position}"));
            if col.generated.as_ref().is_some_and(|g| g.stored) {
                rebuild.push(format!("stored generated column {}", col.name));
            }
        } else {
            clauses.push(format!("MODIFY COLUMN {line}"));
            if let Some(old) = from.column(&col.name)
                && (old.data_type != col.data_type
                    || old.nullable != col.nullable
                    || old.collation != col.collation
                    || old.generated != col.generated)
            {
                rebuild.push(format!("column {}", col.name));
            }
        }
    }

    if let Some((_, Some(_))) = pk_change {
        clauses.push(format!(
            "ADD {}",
            primary_key_line(def).ok_or_else(|| missing("primary key", &to.name))?
        ));
        if !rebuild.iter().any(|r| r == "primary key") {
            rebuild.push("primary key".into());
        }
    }
    for c in &idx.create {
        let Change::CreateIndex { index, .. } = c else {
            continue;
        };
        let line = index
            .definition
            .as_deref()
            .ok_or_else(|| missing(&format!("index {}", index.name), &to.name))?;
        clauses.push(format!("ADD {line}"));
    }
    for c in changes {
        if let TableChange::AddCheck(check) = c
            && check.column.is_none()
        {
            let name = check.name.as_deref().unwrap_or_default();
            let line = constraint_line(def, name)
                .ok_or_else(|| missing(&format!("check {name}"), &to.name))?;
            clauses.push(format!("ADD {line}"));
        }
    }
    for c in changes {
        if let TableChange::SetComment { to: comment, .. } = c {
            clauses.push(format!(
                "COMMENT = {}",
                quote_literal(comment.as_deref().unwrap_or(""))
            ));
        }
    }

    Ok(Alter {
        pre,
        clauses,
        rebuild,
    })
}

/// The clauses of changed table options: partitioning removed, a new
/// default collation (converting the table, and the columns with their own
/// collation modified after), engine and other create options.
#[allow(clippy::too_many_arguments)]
fn option_clauses<'a>(
    table: &str,
    from: &Table,
    to: &'a Table,
    old: &[String],
    new: &[String],
    pre: &mut Vec<String>,
    clauses: &mut Vec<String>,
    rebuild: &mut Vec<String>,
    modified: &mut Vec<&'a str>,
) -> Result<(), EngineError> {
    let partitioned = |o: &[String]| o.iter().any(|o| o.starts_with(PARTITION_PREFIX));
    if partitioned(new) {
        if new
            .iter()
            .any(|o| o.starts_with(PARTITION_PREFIX) && !old.contains(o))
        {
            return Err(EngineError::Other(format!(
                "table {}: changing partitioning is not supported; repartition by hand",
                to.name
            )));
        }
    } else if partitioned(old) {
        // Partitioned by hand, not in the blueprint: merge the partitions back.
        pre.push(format!("ALTER TABLE {table} REMOVE PARTITIONING"));
        rebuild.push("remove partitioning".into());
    }
    for option in new
        .iter()
        .filter(|o| !old.contains(o) && !o.starts_with(PARTITION_PREFIX))
    {
        if let Some(collation) = option.strip_prefix("COLLATE=") {
            pre.push(format!(
                "ALTER TABLE {table} CONVERT TO CHARACTER SET {} COLLATE {}",
                charset_of(collation),
                collation
            ));
            rebuild.push(format!("convert to {collation}"));
            for col in to.columns.iter().filter(|c| c.collation.is_some()) {
                if from.column(&col.name).is_some() && !modified.contains(&col.name.as_str()) {
                    modified.push(&col.name);
                }
            }
        } else if let Some(engine) = option.strip_prefix("ENGINE=") {
            clauses.push(format!("ENGINE={engine}"));
            rebuild.push(format!("engine {engine}"));
        } else {
            clauses.push(option.clone());
        }
    }
    for option in old
        .iter()
        .filter(|o| !new.contains(o) && !o.starts_with(PARTITION_PREFIX))
    {
        // A create option no longer declared goes back to its default.
        if let Some((key, _)) = option.split_once('=')
            && !matches!(key, "ENGINE" | "COLLATE")
            && !new.iter().any(|n| n.starts_with(&format!("{key}=")))
        {
            clauses.push(format!("{key}=DEFAULT"));
        }
    }
    Ok(())
}

/// What the main step does, change by change (foreign keys apart).
fn describe_alter(changes: &[TableChange], idx: &IndexChanges) -> Vec<String> {
    let mut descriptions: Vec<String> = changes
        .iter()
        .filter(|c| {
            !matches!(
                c,
                TableChange::DropForeignKey(_) | TableChange::AddForeignKey(_)
            )
        })
        .map(|c| match c {
            TableChange::SetOptions { from: old, to: new } => describe_options(old, new),
            other => other.describe(),
        })
        .collect();
    descriptions.extend(idx.drop.iter().map(|i| format!("drop index {}", i.name)));
    descriptions.extend(idx.create.iter().map(|c| match c {
        Change::CreateIndex { index, .. } => format!(
            "add {}index {}",
            if index.unique { "unique " } else { "" },
            index.name
        ),
        _ => String::new(),
    }));

    descriptions
}

/// The table's main step: its statements, described, with the hazards of
/// its changes, indexes, charset conversions, narrowing and rebuilds.
fn alter_step(
    table: &str,
    from: &Table,
    to: &Table,
    changes: &[TableChange],
    idx: &IndexChanges,
    alter: Alter,
) -> Option<Step> {
    let descriptions = describe_alter(changes, idx);
    let Alter {
        pre,
        clauses,
        rebuild,
    } = alter;
    if clauses.is_empty() && pre.is_empty() {
        return None;
    }
    {
        let mut statements = pre;
        if !clauses.is_empty() {
            statements.push(format!("ALTER TABLE {table} {}", clauses.join(", ")));
        }
        // Hazards of the table's changes (foreign keys apart) and of its indexes.
        let own = Change::AlterTable {
            from: from.clone(),
            to: to.clone(),
            changes: changes
                .iter()
                .filter(|c| !matches!(c, TableChange::AddForeignKey(_)))
                .cloned()
                .collect(),
        };
        let mut step = Step::for_change(&own, statements);
        step.description = format!("alter table {}: {}", to.name, descriptions.join("; "));
        for c in &idx.create {
            for h in c.hazards() {
                step.add_hazard(h);
            }
        }
        // A column moving to another character set converts every value;
        // strict mode rejects characters the new set lacks.
        let charset = |t: &Table, c: &Column| {
            c.collation
                .as_deref()
                .or_else(|| table_collation(t))
                .map(|co| charset_of(co).to_string())
        };
        for c in changes {
            if let TableChange::AlterColumn { from: old, to: new } = c
                && old.data_type == new.data_type
                && charset(from, old).is_some()
                && charset(from, old) != charset(to, new)
            {
                step.add_hazard(Hazard::new(
                    HazardKind::DataDependent,
                    "convert-charset",
                    format!(
                        "converts {} to {}: fails on characters it cannot hold",
                        new.name,
                        charset(to, new).unwrap_or_default()
                    ),
                ));
            }
        }
        for c in changes {
            if let TableChange::AlterColumn { from: old, to: new } = c
                && !diff::hazard::is_narrowing(&old.data_type, &new.data_type)
                && let Some(reason) = narrowing(&old.data_type, &new.data_type)
            {
                step.add_hazard(Hazard::new(
                    HazardKind::Destructive,
                    "narrow-type",
                    format!("narrows {} ({reason})", new.name),
                ));
            }
        }
        if !rebuild.is_empty() {
            step.add_hazard(Hazard::new(
                HazardKind::Locking,
                "table-rebuild",
                format!(
                    "rebuilds {} (copies every row; {}): blocks writes on older servers",
                    to.name,
                    rebuild.join(", ")
                ),
            ));
        }
        Some(step)
    }
}

/// The foreign keys the table gains, added once every table is in shape.
fn add_foreign_keys(
    table: &str,
    from: &Table,
    to: &Table,
    def: &str,
    changes: &[TableChange],
) -> Result<Option<Step>, EngineError> {
    let fk_adds: Vec<(String, &TableChange)> = changes
        .iter()
        .filter_map(|c| match c {
            TableChange::AddForeignKey(fk) => Some((fk.name.clone().unwrap_or_default(), c)),
            _ => None,
        })
        .collect();
    if fk_adds.is_empty() {
        return Ok(None);
    }
    {
        let mut statements_clauses = Vec::new();
        for (name, _) in &fk_adds {
            let line = constraint_line(def, name)
                .ok_or_else(|| missing(&format!("foreign key {name}"), &to.name))?;
            statements_clauses.push(format!("ADD {line}"));
        }
        let only_fks = Change::AlterTable {
            from: from.clone(),
            to: to.clone(),
            changes: fk_adds.iter().map(|(_, c)| (*c).clone()).collect(),
        };
        let mut step = Step::for_change(
            &only_fks,
            vec![format!(
                "ALTER TABLE {table} {}",
                statements_clauses.join(", ")
            )],
        );
        let names: Vec<&str> = fk_adds.iter().map(|(n, _)| n.as_str()).collect();
        step.description = format!("add foreign key {} on {}", names.join(", "), to.name);
        Ok(Some(step))
    }
}

/// `options: drop X; set Y`, naming only what changes.
fn describe_options(old: &[String], new: &[String]) -> String {
    let mut parts: Vec<String> = old
        .iter()
        .filter(|o| !new.contains(o))
        .filter(|o| {
            // A changed KEY=value shows once, as its new value.
            let key = o.split('=').next().unwrap_or(o);
            o.starts_with(PARTITION_PREFIX)
                || !new.iter().any(|n| n.starts_with(&format!("{key}=")))
        })
        .map(|o| format!("drop {o}"))
        .collect();
    parts.extend(
        new.iter()
            .filter(|o| !old.contains(o))
            .map(|o| format!("set {o}")),
    );
    format!("options: {}", parts.join(", "))
}

/// MySQL narrowings the engine-neutral rule does not know: a smaller TEXT or
/// BLOB size, or ENUM/SET values removed.
pub(super) fn narrowing(from: &str, to: &str) -> Option<String> {
    let rank = |t: &str| {
        ["tiny", "", "medium", "long"]
            .iter()
            .position(|p| t == format!("{p}text") || t == format!("{p}blob"))
    };
    let family = |t: &str| t.ends_with("text");
    if let (Some(f), Some(t)) = (rank(from), rank(to))
        && family(from) == family(to)
        && t < f
    {
        return Some(format!("{from} to {to}: longer values are cut or rejected"));
    }
    let values = |t: &str| -> Option<(String, Vec<String>)> {
        let (base, rest) = t.split_once('(')?;
        if base != "enum" && base != "set" {
            return None;
        }
        let inner = rest.rsplit_once(')')?.0;
        Some((
            base.to_string(),
            inner
                .split("','")
                .map(|v| v.trim_matches('\'').to_string())
                .collect(),
        ))
    };
    if let (Some((fb, fv)), Some((tb, tv))) = (values(from), values(to))
        && fb == tb
    {
        let gone: Vec<&String> = fv.iter().filter(|v| !tv.contains(v)).collect();
        if !gone.is_empty() {
            let gone: Vec<&str> = gone.iter().map(|s| s.as_str()).collect();
            return Some(format!("{fb} values removed: {}", gone.join(", ")));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::narrowing;

    #[test]
    fn removes_an_element_of_create_table() {
        let ddl = "CREATE TABLE `a` (\n  `id` int,\n  `b` int,\n  CONSTRAINT `f` FOREIGN KEY (`b`) REFERENCES `b` (`id`)\n) ENGINE=InnoDB";
        assert_eq!(
            super::remove_element(
                ddl,
                "CONSTRAINT `f` FOREIGN KEY (`b`) REFERENCES `b` (`id`)"
            ),
            "CREATE TABLE `a` (\n  `id` int,\n  `b` int\n) ENGINE=InnoDB"
        );
        assert_eq!(
            super::remove_element(ddl, "`id` int"),
            "CREATE TABLE `a` (\n  `b` int,\n  CONSTRAINT `f` FOREIGN KEY (`b`) REFERENCES `b` (`id`)\n) ENGINE=InnoDB"
        );
    }

    #[test]
    fn mysql_narrowings() {
        assert!(narrowing("mediumtext", "text").is_some());
        assert!(narrowing("longblob", "blob").is_some());
        assert!(narrowing("text", "longtext").is_none());
        assert!(narrowing("text", "blob").is_none());
        assert!(narrowing("enum('a','b','c')", "enum('a','c')").is_some());
        assert!(narrowing("enum('a','b')", "enum('a','b','c')").is_none());
        assert!(narrowing("int", "bigint").is_none());
    }
}

#[cfg(test)]
mod plan_changes {
    use crate::engine::plan_cases::{cases, plain_ddl, rendered};

    /// Each shared change case, rendered by this planner without a server.
    #[test]
    fn every_change_renders_the_expected_statements() {
        let cases = cases(
            "int",
            "text",
            |t| plain_ddl(t, |n| format!("`{n}`")),
            |i| format!("KEY `{}` (`{}`)", i.name, i.parts[0].expression),
        );
        let got = rendered(cases, |live, declared| {
            super::plan(live, declared, crate::engine::mysql::inspect::Flavor::Mysql)
        });
        let expected: &[&str] = &[
            "add a nullable column: ALTER TABLE `t` ADD COLUMN `note` text AFTER `id`",
            "drop a column: ALTER TABLE `t` DROP COLUMN `note`",
            "create a table: CREATE TABLE `u` (   `id` int NOT NULL,   PRIMARY KEY (`id`) )",
            "drop a table: DROP TABLE `u`",
            "create an index: ALTER TABLE `t` ADD KEY `t_note` (`note`)",
            "drop an index: ALTER TABLE `t` DROP INDEX `t_note`",
            "make a column not null: ALTER TABLE `t` MODIFY COLUMN `note` text NOT NULL",
            "set a default: ALTER TABLE `t` MODIFY COLUMN `note` text DEFAULT 'x'",
        ];
        assert_eq!(got, expected, "got:\n{}", got.join("\n"));
    }
}
