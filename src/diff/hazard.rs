//! Hazards: what could go wrong when a change runs against a database full
//! of data. Each rule is a small named unit with its own documentation and
//! tests, so a reviewer can see why a statement is flagged.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Change, TableChange};
use crate::model::sql::Column;

/// The classes of hazard a planned statement can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HazardKind {
    /// Drops data: a table, a column, or narrows a type. Not applied without
    /// `--allow-destructive` (or the blueprint's policy).
    Destructive,
    /// May fail on existing rows: SET NOT NULL, a new UNIQUE/CHECK/FK.
    DataDependent,
    /// Rewrites or locks a table for the duration of the statement.
    Locking,
    /// Builds an index: long on big tables.
    IndexBuild,
}

impl HazardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HazardKind::Destructive => "destructive",
            HazardKind::DataDependent => "data-dependent",
            HazardKind::Locking => "locking",
            HazardKind::IndexBuild => "index-build",
        }
    }
}

impl fmt::Display for HazardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hazard of one change: its class, the rule that found it, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hazard {
    pub kind: HazardKind,
    /// The rule's name, e.g. `drop-column`.
    pub rule: String,
    pub reason: String,
}

impl Hazard {
    pub fn new(kind: HazardKind, rule: &str, reason: impl Into<String>) -> Self {
        Self {
            kind,
            rule: rule.to_string(),
            reason: reason.into(),
        }
    }
}

/// A hazard rule: a name, the class it raises, what it means, and a check
/// returning one reason per problem found in a change.
pub struct Rule {
    pub name: &'static str,
    pub kind: HazardKind,
    pub doc: &'static str,
    check: fn(&Change) -> Vec<String>,
}

/// Every rule, applied to every change.
pub const RULES: &[Rule] = &[
    Rule {
        name: "drop-table",
        kind: HazardKind::Destructive,
        doc: "Dropping a table deletes all of its rows.",
        check: |c| match c {
            Change::DropTable(t) => vec![format!("drops table {} and every row in it", t.name)],
            _ => vec![],
        },
    },
    Rule {
        name: "drop-column",
        kind: HazardKind::Destructive,
        doc: "Dropping a column deletes its values in every row.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::DropColumn(col) => {
                    Some(format!("drops column {} and its values", col.name))
                }
                _ => None,
            })
        },
    },
    Rule {
        name: "narrow-type",
        kind: HazardKind::Destructive,
        doc: "Changing a column to a narrower type (shorter length, smaller integer, less precision, text to bounded) can truncate or reject values.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AlterColumn { from, to }
                    if is_narrowing(&from.data_type, &to.data_type) =>
                {
                    Some(format!(
                        "narrows {} from {} to {}",
                        to.name, from.data_type, to.data_type
                    ))
                }
                _ => None,
            })
        },
    },
    Rule {
        name: "generate-column",
        kind: HazardKind::Destructive,
        doc: "Turning an ordinary column into a generated one discards the values it holds: they are replaced by the computed expression.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AlterColumn { from, to }
                    if from.generated.is_none() && to.generated.is_some() =>
                {
                    Some(format!(
                        "replaces the stored values of {} with a generated expression",
                        to.name
                    ))
                }
                _ => None,
            })
        },
    },
    Rule {
        name: "change-type",
        kind: HazardKind::DataDependent,
        doc: "Converting a column's values to another type fails if a value does not convert.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AlterColumn { from, to }
                    if from.data_type != to.data_type
                        && !is_narrowing(&from.data_type, &to.data_type) =>
                {
                    Some(format!(
                        "converts {} from {} to {}",
                        to.name, from.data_type, to.data_type
                    ))
                }
                _ => None,
            })
        },
    },
    Rule {
        name: "set-not-null",
        kind: HazardKind::DataDependent,
        doc: "Making a column NOT NULL fails if a row holds NULL in it.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AlterColumn { from, to } if from.nullable && !to.nullable => Some(
                    format!("sets {} NOT NULL: fails if any row has NULL there", to.name),
                ),
                _ => None,
            })
        },
    },
    Rule {
        name: "add-required-column",
        kind: HazardKind::DataDependent,
        doc: "A new NOT NULL column without a default cannot be filled for existing rows.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AddColumn(col) if is_required_without_default(col) => Some(format!(
                    "adds NOT NULL column {} without a default: fails if the table has rows",
                    col.name
                )),
                _ => None,
            })
        },
    },
    Rule {
        name: "add-constraint",
        kind: HazardKind::DataDependent,
        doc: "A new UNIQUE, CHECK or FOREIGN KEY constraint, or a new primary key, fails if existing rows violate it.",
        check: |c| {
            table_changes(c, |tc| match tc {
                TableChange::AddUnique(u) => Some(format!(
                    "adds UNIQUE ({}): fails on duplicate rows",
                    u.columns.join(", ")
                )),
                TableChange::AddCheck(k) => Some(format!(
                    "adds CHECK ({}): fails on rows that violate it",
                    k.expression
                )),
                TableChange::AddForeignKey(f) => Some(format!(
                    "adds FOREIGN KEY ({}) → {}: fails on rows without a match",
                    f.columns.join(", "),
                    f.referenced_table
                )),
                TableChange::AddExclusion(x) => Some(format!(
                    "adds {} {}: fails on rows that conflict",
                    x.name, x.definition
                )),
                TableChange::SetPrimaryKey { to: Some(pk), .. } => Some(format!(
                    "sets PRIMARY KEY ({}): fails on duplicate or NULL keys",
                    pk.columns.join(", ")
                )),
                _ => None,
            })
        },
    },
    Rule {
        name: "unique-index",
        kind: HazardKind::DataDependent,
        doc: "A new unique index fails if existing rows hold duplicate keys.",
        check: |c| match c {
            Change::CreateIndex {
                index: i,
                new_table: false,
            } if i.unique => {
                vec![format!("unique index {} fails on duplicate keys", i.name)]
            }
            _ => vec![],
        },
    },
    Rule {
        name: "index-build",
        kind: HazardKind::IndexBuild,
        doc: "Building an index reads the whole table; long on big tables.",
        check: |c| match c {
            Change::CreateIndex {
                index: i,
                new_table: false,
            } => vec![format!("builds index {} on {}", i.name, i.table)],
            _ => vec![],
        },
    },
];

/// Applies every rule to `change`.
pub fn assess(change: &Change) -> Vec<Hazard> {
    RULES
        .iter()
        .flat_map(|rule| {
            (rule.check)(change)
                .into_iter()
                .map(|reason| Hazard::new(rule.kind, rule.name, reason))
        })
        .collect()
}

fn table_changes(change: &Change, f: impl Fn(&TableChange) -> Option<String>) -> Vec<String> {
    match change {
        Change::AlterTable { changes, .. } => changes.iter().filter_map(f).collect(),
        _ => vec![],
    }
}

fn is_required_without_default(col: &Column) -> bool {
    !col.nullable && col.default.is_none() && col.generated.is_none() && !col.auto_increment
}

/// Splits a type into its name and arguments: `VARCHAR(20)` → (`VARCHAR`, [20]),
/// `timestamp(3) without time zone` → (`TIMESTAMP WITHOUT TIME ZONE`, [3]).
fn parse_type(t: &str) -> (String, Vec<u64>) {
    let upper = t.trim().to_uppercase();
    match (upper.find('('), upper.rfind(')')) {
        (Some(open), Some(close)) if close > open => {
            let base = format!("{} {}", upper[..open].trim(), upper[close + 1..].trim());
            let args = upper[open + 1..close]
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect();
            (base.trim().to_string(), args)
        }
        _ => (upper, vec![]),
    }
}

fn integer_rank(base: &str) -> Option<u8> {
    Some(match base {
        "TINYINT" | "INT1" => 1,
        "SMALLINT" | "INT2" => 2,
        "MEDIUMINT" | "INT3" => 3,
        "INT" | "INTEGER" | "INT4" => 4,
        "BIGINT" | "INT8" => 8,
        _ => return None,
    })
}

fn is_unbounded_text(base: &str) -> bool {
    matches!(base, "TEXT" | "CLOB" | "MEDIUMTEXT" | "LONGTEXT")
}

fn is_bounded_text(base: &str) -> bool {
    matches!(
        base,
        "VARCHAR" | "CHAR" | "CHARACTER VARYING" | "CHARACTER" | "NVARCHAR" | "NCHAR" | "TINYTEXT"
    )
}

fn is_exact_decimal(base: &str) -> bool {
    matches!(base, "NUMERIC" | "DECIMAL")
}

fn is_double(base: &str) -> bool {
    matches!(base, "DOUBLE" | "DOUBLE PRECISION" | "FLOAT8")
}

fn is_single_float(base: &str) -> bool {
    matches!(base, "REAL" | "FLOAT4" | "FLOAT")
}

fn is_fractional(base: &str) -> bool {
    is_exact_decimal(base) || is_double(base) || is_single_float(base)
}

/// Date-and-time types, whose argument is the fractional-second precision (default 6).
fn is_time_of_day(base: &str) -> bool {
    base.starts_with("TIMESTAMP") || base.starts_with("DATETIME") || base.starts_with("TIME")
}

/// Whether changing a column from type `from` to `to` can lose information.
pub fn is_narrowing(from: &str, to: &str) -> bool {
    let (fb, fa) = parse_type(from);
    let (tb, ta) = parse_type(to);
    if fb == tb {
        // Same type with a smaller length/precision/scale, or a bound where there was none
        // (text cut to a length, arbitrary-precision numbers rounded, seconds truncated).
        let bound_added = fa.is_empty()
            && !ta.is_empty()
            && (is_bounded_text(&tb)
                || is_exact_decimal(&tb)
                || (is_time_of_day(&tb) && ta[0] < 6));
        return fa.iter().zip(&ta).any(|(f, t)| t < f) || bound_added;
    }
    if let (Some(f), Some(t)) = (integer_rank(&fb), integer_rank(&tb)) {
        return t < f;
    }
    (is_unbounded_text(&fb) && is_bounded_text(&tb))
        || (is_bounded_text(&fb) && is_bounded_text(&tb) && ta.first() < fa.first())
        || (is_fractional(&fb) && integer_rank(&tb).is_some())
        || (is_exact_decimal(&fb) && (is_double(&tb) || is_single_float(&tb)))
        || (is_double(&fb) && is_single_float(&tb))
        || (is_time_of_day(&fb) && !fb.starts_with("TIME ") && fb != "TIME" && tb == "DATE")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sql::{Index, Table};

    fn alter(from: Column, to: Column) -> Change {
        Change::AlterTable {
            from: Table::default(),
            to: Table::default(),
            changes: vec![TableChange::AlterColumn { from, to }],
        }
    }

    fn col(t: &str, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            data_type: t.into(),
            nullable,
            ..Default::default()
        }
    }

    fn kinds(change: &Change) -> Vec<HazardKind> {
        assess(change).into_iter().map(|h| h.kind).collect()
    }

    #[test]
    fn narrowing_is_detected() {
        assert!(is_narrowing("VARCHAR(50)", "varchar(20)"));
        assert!(is_narrowing("BIGINT", "INTEGER"));
        assert!(is_narrowing("TEXT", "VARCHAR(10)"));
        assert!(is_narrowing("NUMERIC(10,2)", "NUMERIC(10,1)"));
        assert!(is_narrowing("REAL", "INTEGER"));
        assert!(!is_narrowing("INTEGER", "BIGINT"));
        assert!(!is_narrowing("VARCHAR(20)", "TEXT"));
        assert!(!is_narrowing("INTEGER", "REAL"));
        // PostgreSQL spellings, as format_type prints them.
        assert!(is_narrowing("numeric", "numeric(10,2)"));
        assert!(is_narrowing(
            "timestamp(6) without time zone",
            "timestamp(0) without time zone"
        ));
        assert!(is_narrowing(
            "timestamp without time zone",
            "timestamp(3) without time zone"
        ));
        assert!(is_narrowing("timestamp with time zone", "date"));
        assert!(is_narrowing("double precision", "real"));
        assert!(is_narrowing("numeric(12,2)", "double precision"));
        assert!(!is_narrowing("real", "double precision"));
        assert!(!is_narrowing("date", "timestamp without time zone"));
        assert!(!is_narrowing("numeric(10,2)", "numeric"));
    }

    #[test]
    fn rules_fire_on_their_changes_only() {
        assert_eq!(
            kinds(&alter(col("VARCHAR(50)", true), col("VARCHAR(10)", true))),
            [HazardKind::Destructive]
        );
        assert_eq!(
            kinds(&alter(col("INTEGER", true), col("REAL", true))),
            [HazardKind::DataDependent]
        );
        assert_eq!(
            kinds(&alter(col("TEXT", true), col("TEXT", false))),
            [HazardKind::DataDependent]
        );
        assert!(kinds(&alter(col("TEXT", false), col("TEXT", true))).is_empty());
        let mut generated = col("INTEGER", true);
        generated.generated = Some(crate::model::sql::Generated {
            expression: "a + b".into(),
            stored: true,
        });
        assert_eq!(
            kinds(&alter(col("INTEGER", true), generated)),
            [HazardKind::Destructive]
        );
        let index = Index {
            name: "i".into(),
            unique: true,
            ..Default::default()
        };
        let unique = Change::CreateIndex {
            index: index.clone(),
            new_table: false,
        };
        assert_eq!(
            kinds(&unique),
            [HazardKind::DataDependent, HazardKind::IndexBuild]
        );
        let on_new_table = Change::CreateIndex {
            index,
            new_table: true,
        };
        assert!(kinds(&on_new_table).is_empty());
        assert_eq!(
            kinds(&Change::DropTable(Table::default())),
            [HazardKind::Destructive]
        );
    }

    #[test]
    fn every_rule_is_documented() {
        for rule in RULES {
            assert!(
                !rule.doc.is_empty()
                    && rule
                        .name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
    }
}
