//! The diff: two SQL models in, ordered [`Change`]s out. A change is data
//! (what happens to which object) before it is SQL; each engine renders it
//! in its own dialect. Order: dependents are dropped first (triggers, views,
//! indexes), then tables are created, altered and dropped, then dependents
//! are created again.

pub mod hazard;
mod step;

pub use step::Step;

use std::collections::{BTreeMap, BTreeSet};

pub use hazard::{Hazard, HazardKind};

use crate::model::sql::{
    CheckConstraint, Column, ExclusionConstraint, ForeignKey, Index, PrimaryKey, SqlSchema, Table,
    Trigger, UniqueConstraint, View,
};
use crate::sql::mentions_identifier;

/// One change to one object.
// A plan holds a handful of changes, built once per distinct live state: size is no concern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateTable(Table),
    DropTable(Table),
    /// `from` is the live table, `to` the declared one.
    AlterTable {
        from: Table,
        to: Table,
        changes: Vec<TableChange>,
    },
    /// `new_table`: the index belongs to a table created by the same plan,
    /// so building it costs nothing and cannot fail on existing rows.
    CreateIndex {
        index: Index,
        new_table: bool,
    },
    DropIndex(Index),
    CreateView(View),
    DropView(View),
    CreateTrigger(Trigger),
    DropTrigger(Trigger),
}

/// One change inside a table.
// Like `Change`: a handful per plan, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TableChange {
    AddColumn(Column),
    DropColumn(Column),
    AlterColumn {
        from: Column,
        to: Column,
    },
    SetPrimaryKey {
        from: Option<PrimaryKey>,
        to: Option<PrimaryKey>,
    },
    AddUnique(UniqueConstraint),
    DropUnique(UniqueConstraint),
    AddCheck(CheckConstraint),
    DropCheck(CheckConstraint),
    AddForeignKey(ForeignKey),
    DropForeignKey(ForeignKey),
    AddExclusion(ExclusionConstraint),
    DropExclusion(ExclusionConstraint),
    SetOptions {
        from: Vec<String>,
        to: Vec<String>,
    },
    SetComment {
        from: Option<String>,
        to: Option<String>,
    },
}

impl Change {
    /// A one-line description for plans, e.g. `add column orders.note`.
    pub fn describe(&self) -> String {
        match self {
            Change::CreateTable(t) => format!("create table {}", t.name),
            Change::DropTable(t) => format!("drop table {}", t.name),
            Change::AlterTable { to, changes, .. } => {
                let parts: Vec<String> = changes.iter().map(|c| c.describe()).collect();
                format!("alter table {}: {}", to.name, parts.join("; "))
            }
            Change::CreateIndex { index: i, .. } => format!(
                "create {}index {} on {}",
                if i.unique { "unique " } else { "" },
                i.name,
                i.table
            ),
            Change::DropIndex(i) => format!("drop index {} on {}", i.name, i.table),
            Change::CreateView(v) => format!("create view {}", v.name),
            Change::DropView(v) => format!("drop view {}", v.name),
            Change::CreateTrigger(t) => format!("create trigger {} on {}", t.name, t.table),
            Change::DropTrigger(t) => format!("drop trigger {} on {}", t.name, t.table),
        }
    }

    /// The hazards of this change, by the rules of [`hazard`].
    pub fn hazards(&self) -> Vec<Hazard> {
        hazard::assess(self)
    }
}

impl TableChange {
    pub fn describe(&self) -> String {
        match self {
            TableChange::AddColumn(c) => format!("add column {} {}", c.name, c.data_type)
                .trim_end()
                .to_string(),
            TableChange::DropColumn(c) => format!("drop column {}", c.name),
            TableChange::AlterColumn { from, to } => {
                let mut what = Vec::new();
                if from.data_type != to.data_type {
                    what.push(format!(
                        "type {} → {}",
                        show(&from.data_type),
                        show(&to.data_type)
                    ));
                }
                if from.nullable != to.nullable {
                    what.push(if to.nullable {
                        "drop not null".into()
                    } else {
                        "set not null".into()
                    });
                }
                if from.default != to.default {
                    what.push(match &to.default {
                        Some(d) => format!("default {d}"),
                        None => "drop default".into(),
                    });
                }
                if from.auto_increment != to.auto_increment {
                    what.push(format!(
                        "autoincrement {}",
                        if to.auto_increment { "on" } else { "off" }
                    ));
                }
                if from.generated != to.generated {
                    what.push("generated expression".into());
                }
                if from.collation != to.collation {
                    what.push(format!(
                        "collation {}",
                        to.collation.as_deref().unwrap_or("default")
                    ));
                }
                if from.comment != to.comment {
                    what.push("comment".into());
                }
                if from.on_update != to.on_update {
                    what.push(match &to.on_update {
                        Some(u) => format!("on update {u}"),
                        None => "drop on update".into(),
                    });
                }
                if from.identity != to.identity {
                    what.push(match &to.identity {
                        Some(i) => format!("identity {}", i.to_lowercase()),
                        None => "drop identity".into(),
                    });
                }
                format!("alter column {} ({})", to.name, what.join(", "))
            }
            TableChange::SetPrimaryKey { to, .. } => match to {
                Some(pk) => format!("primary key ({})", pk.columns.join(", ")),
                None => "drop primary key".into(),
            },
            TableChange::AddUnique(u) => format!("add unique ({})", u.columns.join(", ")),
            TableChange::DropUnique(u) => format!("drop unique ({})", u.columns.join(", ")),
            TableChange::AddCheck(c) => format!("add check ({})", c.expression),
            TableChange::DropCheck(c) => format!("drop check ({})", c.expression),
            TableChange::AddForeignKey(f) => format!(
                "add foreign key ({}) → {}",
                f.columns.join(", "),
                f.referenced_table
            ),
            TableChange::DropForeignKey(f) => format!(
                "drop foreign key ({}) → {}",
                f.columns.join(", "),
                f.referenced_table
            ),
            TableChange::AddExclusion(x) => format!("add constraint {} {}", x.name, x.definition),
            TableChange::DropExclusion(x) => format!("drop constraint {}", x.name),
            TableChange::SetOptions { to, .. } => format!("options [{}]", to.join(", ")),
            TableChange::SetComment { .. } => "comment".into(),
        }
    }
}

fn show(t: &str) -> &str {
    if t.is_empty() { "(none)" } else { t }
}

/// Computes the ordered changes that turn `live` into `declared`.
pub fn diff(live: &SqlSchema, declared: &SqlSchema) -> Vec<Change> {
    let mut changes = Vec::new();

    let altered: BTreeMap<&str, Vec<TableChange>> = declared
        .tables
        .values()
        .filter_map(|to| {
            let from = live.tables.get(&to.name)?;
            let c = diff_table(from, to);
            (!c.is_empty()).then_some((to.name.as_str(), c))
        })
        .collect();
    let dropped_tables: Vec<&Table> = live
        .tables
        .values()
        .filter(|t| !declared.tables.contains_key(&t.name))
        .collect();

    // Views to drop: gone, changed, or reading a table or view that changes in
    // a way a view can notice (adding a column or a comment cannot break one).
    let mut touched: BTreeSet<String> = altered
        .iter()
        .filter(|(_, changes)| {
            changes.iter().any(|c| {
                !matches!(
                    c,
                    TableChange::AddColumn(_) | TableChange::SetComment { .. }
                )
            })
        })
        .map(|(name, _)| name.to_string())
        .collect();
    touched.extend(dropped_tables.iter().map(|t| t.name.clone()));
    let mut views_to_drop: BTreeSet<String> = live
        .views
        .values()
        .filter(|v| declared.views.get(&v.name).is_none_or(|d| !d.same_as(v)))
        .map(|v| v.name.clone())
        .collect();
    loop {
        let before = views_to_drop.len();
        for v in live.views.values() {
            if !views_to_drop.contains(&v.name)
                && touched
                    .iter()
                    .chain(views_to_drop.iter())
                    .any(|t| mentions_identifier(&v.definition, t))
            {
                views_to_drop.insert(v.name.clone());
            }
        }
        if views_to_drop.len() == before {
            break;
        }
    }

    // 1. Triggers that are gone or changed. Those on a table or view that is
    //    dropped here go with it, so they are not dropped explicitly.
    let survives = |on: &str| {
        declared.tables.contains_key(on)
            || (declared.views.contains_key(on) && !views_to_drop.contains(on))
    };
    for t in live.triggers.values() {
        let keep = declared.triggers.get(&t.name).is_some_and(|d| d.same_as(t));
        if !keep && survives(&t.table) {
            changes.push(Change::DropTrigger(t.clone()));
        }
    }
    // 2. Views, dependents first.
    for name in order_views(&live.views, &views_to_drop).into_iter().rev() {
        changes.push(Change::DropView(live.views[&name].clone()));
    }
    // 3. Indexes of remaining tables that are gone or changed.
    for to in declared.tables.values() {
        let Some(from) = live.tables.get(&to.name) else {
            continue;
        };
        for idx in &from.indexes {
            if !to
                .indexes
                .iter()
                .any(|i| i.name == idx.name && i.same_as(idx))
            {
                changes.push(Change::DropIndex(idx.clone()));
            }
        }
    }
    // 4. New tables, referenced tables first.
    let new_tables: Vec<&Table> = declared
        .tables
        .values()
        .filter(|t| !live.tables.contains_key(&t.name))
        .collect();
    for t in order_tables(&new_tables) {
        changes.push(Change::CreateTable(t.clone()));
    }
    // 5. Altered tables.
    for (name, table_changes) in altered {
        changes.push(Change::AlterTable {
            from: live.tables[name].clone(),
            to: declared.tables[name].clone(),
            changes: table_changes,
        });
    }
    // 6. Dropped tables, referencing tables first.
    for t in order_tables(&dropped_tables).into_iter().rev() {
        changes.push(Change::DropTable(t.clone()));
    }
    // 7. Indexes that are new or changed.
    for to in declared.tables.values() {
        let from = live.tables.get(&to.name);
        for idx in &to.indexes {
            let exists = from.is_some_and(|f| {
                f.indexes
                    .iter()
                    .any(|i| i.name == idx.name && i.same_as(idx))
            });
            if !exists {
                changes.push(Change::CreateIndex {
                    index: idx.clone(),
                    new_table: from.is_none(),
                });
            }
        }
    }
    // 8. Views that are new or were dropped above, dependencies first.
    let views_to_create: BTreeSet<String> = declared
        .views
        .keys()
        .filter(|n| !live.views.contains_key(*n) || views_to_drop.contains(*n))
        .cloned()
        .collect();
    for name in order_views(&declared.views, &views_to_create) {
        changes.push(Change::CreateView(declared.views[&name].clone()));
    }
    // 9. Triggers that are new or changed, and those of views recreated above.
    for t in declared.triggers.values() {
        let exists = live.triggers.get(&t.name).is_some_and(|l| l.same_as(t))
            && !views_to_drop.contains(&t.table);
        if !exists {
            changes.push(Change::CreateTrigger(t.clone()));
        }
    }
    changes
}

/// The changes inside one table present on both sides.
pub fn diff_table(from: &Table, to: &Table) -> Vec<TableChange> {
    let mut changes = Vec::new();
    for col in &from.columns {
        if to.column(&col.name).is_none() {
            changes.push(TableChange::DropColumn(col.clone()));
        }
    }
    for col in &to.columns {
        match from.column(&col.name) {
            None => changes.push(TableChange::AddColumn(col.clone())),
            Some(old) if old != col => changes.push(TableChange::AlterColumn {
                from: old.clone(),
                to: col.clone(),
            }),
            Some(_) => {}
        }
    }
    if from.primary_key != to.primary_key {
        changes.push(TableChange::SetPrimaryKey {
            from: from.primary_key.clone(),
            to: to.primary_key.clone(),
        });
    }
    set_diff(
        &from.uniques,
        &to.uniques,
        TableChange::DropUnique,
        TableChange::AddUnique,
        &mut changes,
    );
    set_diff(
        &from.checks,
        &to.checks,
        TableChange::DropCheck,
        TableChange::AddCheck,
        &mut changes,
    );
    set_diff(
        &from.foreign_keys,
        &to.foreign_keys,
        TableChange::DropForeignKey,
        TableChange::AddForeignKey,
        &mut changes,
    );
    set_diff(
        &from.exclusions,
        &to.exclusions,
        TableChange::DropExclusion,
        TableChange::AddExclusion,
        &mut changes,
    );
    if from.options != to.options {
        changes.push(TableChange::SetOptions {
            from: from.options.clone(),
            to: to.options.clone(),
        });
    }
    if from.comment != to.comment {
        changes.push(TableChange::SetComment {
            from: from.comment.clone(),
            to: to.comment.clone(),
        });
    }
    changes
}

fn set_diff<T: PartialEq + Clone>(
    from: &[T],
    to: &[T],
    drop: impl Fn(T) -> TableChange,
    add: impl Fn(T) -> TableChange,
    out: &mut Vec<TableChange>,
) {
    out.extend(from.iter().filter(|x| !to.contains(x)).cloned().map(drop));
    out.extend(to.iter().filter(|x| !from.contains(x)).cloned().map(add));
}

/// Tables ordered so that a table comes after the tables it references.
fn order_tables<'a>(tables: &[&'a Table]) -> Vec<&'a Table> {
    let names: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut ordered = Vec::new();
    while ordered.len() < tables.len() {
        let before = ordered.len();
        for t in tables {
            if done.contains(t.name.as_str()) {
                continue;
            }
            let ready = t.foreign_keys.iter().all(|fk| {
                fk.referenced_table == t.name
                    || !names.contains(fk.referenced_table.as_str())
                    || done.contains(fk.referenced_table.as_str())
            });
            if ready {
                done.insert(&t.name);
                ordered.push(*t);
            }
        }
        if ordered.len() == before {
            // A reference cycle: keep name order for the rest.
            ordered.extend(tables.iter().filter(|t| !done.contains(t.name.as_str())));
            break;
        }
    }
    ordered
}

/// The views named in `subset`, ordered so that a view comes after the views it reads.
fn order_views(views: &BTreeMap<String, View>, subset: &BTreeSet<String>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut ordered = Vec::new();
    while ordered.len() < subset.len() {
        let before = ordered.len();
        for name in subset {
            if done.contains(name) {
                continue;
            }
            let view = &views[name];
            let ready = subset.iter().all(|other| {
                other == name
                    || done.contains(other)
                    || !mentions_identifier(&view.definition, other)
            });
            if ready {
                done.insert(name.clone());
                ordered.push(name.clone());
            }
        }
        if ordered.len() == before {
            ordered.extend(subset.iter().filter(|n| !done.contains(*n)).cloned());
            break;
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, cols: &[(&str, &str, bool)]) -> Table {
        Table {
            name: name.into(),
            columns: cols
                .iter()
                .map(|(n, t, nullable)| Column {
                    name: n.to_string(),
                    data_type: t.to_string(),
                    nullable: *nullable,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn schema(tables: Vec<Table>) -> SqlSchema {
        SqlSchema {
            tables: tables.into_iter().map(|t| (t.name.clone(), t)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn equal_schemas_have_no_changes() {
        let s = schema(vec![table("a", &[("id", "INTEGER", false)])]);
        assert!(diff(&s, &s).is_empty());
    }

    #[test]
    fn new_tables_come_after_what_they_reference() {
        let mut child = table("child", &[("parent_id", "INTEGER", true)]);
        child.foreign_keys.push(ForeignKey {
            columns: vec!["parent_id".into()],
            referenced_table: "parent".into(),
            ..Default::default()
        });
        let declared = schema(vec![child, table("parent", &[("id", "INTEGER", false)])]);
        let changes = diff(&SqlSchema::default(), &declared);
        let names: Vec<String> = changes.iter().map(Change::describe).collect();
        assert_eq!(names, ["create table parent", "create table child"]);
        let dropped = diff(&declared, &SqlSchema::default());
        let names: Vec<String> = dropped.iter().map(Change::describe).collect();
        assert_eq!(names, ["drop table child", "drop table parent"]);
    }

    #[test]
    fn views_are_rebuilt_only_when_a_table_they_read_changes_shape() {
        let mut live = schema(vec![table("a", &[("id", "INTEGER", false)])]);
        live.views.insert(
            "v".into(),
            View {
                name: "v".into(),
                definition: "CREATE VIEW v AS SELECT id FROM a".into(),
                ..Default::default()
            },
        );
        let mut added = live.clone();
        added.tables.get_mut("a").unwrap().columns.push(Column {
            name: "note".into(),
            data_type: "TEXT".into(),
            nullable: true,
            ..Default::default()
        });
        let names: Vec<String> = diff(&live, &added).iter().map(Change::describe).collect();
        assert_eq!(names, ["alter table a: add column note TEXT"]);

        let mut retyped = live.clone();
        retyped.tables.get_mut("a").unwrap().columns[0].data_type = "BIGINT".into();
        let names: Vec<String> = diff(&live, &retyped).iter().map(Change::describe).collect();
        assert_eq!(
            names,
            [
                "drop view v",
                "alter table a: alter column id (type INTEGER → BIGINT)",
                "create view v"
            ]
        );
    }

    #[test]
    fn triggers_on_views_are_dropped_and_survive_view_rebuilds() {
        let view = |def: &str| View {
            name: "v".into(),
            definition: def.into(),
            ..Default::default()
        };
        let trigger = Trigger {
            name: "v_insert".into(),
            table: "v".into(),
            definition: "CREATE TRIGGER v_insert INSTEAD OF INSERT ON v BEGIN SELECT 1; END".into(),
            ..Default::default()
        };
        let mut live = schema(vec![table("a", &[("id", "INTEGER", false)])]);
        live.views
            .insert("v".into(), view("CREATE VIEW v AS SELECT id FROM a"));
        live.triggers.insert(trigger.name.clone(), trigger.clone());

        let mut without = live.clone();
        without.triggers.clear();
        let names: Vec<String> = diff(&live, &without).iter().map(Change::describe).collect();
        assert_eq!(names, ["drop trigger v_insert on v"]);

        let mut redefined = live.clone();
        redefined.views.insert(
            "v".into(),
            view("CREATE VIEW v AS SELECT id, 1 AS one FROM a"),
        );
        let names: Vec<String> = diff(&live, &redefined)
            .iter()
            .map(Change::describe)
            .collect();
        assert_eq!(
            names,
            [
                "drop view v",
                "create view v",
                "create trigger v_insert on v"
            ]
        );
    }
}
