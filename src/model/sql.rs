//! Relational schema: tables with their columns, keys, constraints and
//! indexes; views; triggers. Each engine's introspection fills these in
//! normalised form (canonical types, expressions printed by sqlparser), so
//! equal schemas compare equal field by field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every object of one SQL database (or schema) that tenantctl manages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SqlSchema {
    pub tables: BTreeMap<String, Table>,
    pub views: BTreeMap<String, View>,
    pub triggers: BTreeMap<String, Trigger>,
    /// Other named objects (schemas, extensions, types, domains, sequences,
    /// functions...) kept as the engine's canonical text, keyed by
    /// `kind name`. Engines that have none leave it empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, SqlObject>,
}

impl SqlSchema {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.views.is_empty()
            && self.triggers.is_empty()
            && self.objects.is_empty()
    }
}

/// A schema object other than a table, view or trigger, compared by its
/// canonical definition as the engine prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlObject {
    /// What it is, e.g. `schema`, `extension`, `enum`, `domain`, `sequence`, `function`.
    pub kind: String,
    /// Its (qualified) name; for functions, with the argument types.
    pub name: String,
    /// Canonical text of the whole definition.
    pub definition: String,
    /// Ordered members the engine can add in place (e.g. enum labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<String>,
    /// The statements that create it as declared; never compared.
    #[serde(skip)]
    pub ddl: Vec<String>,
}

/// A table and everything that belongs to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// In declaration order.
    pub columns: Vec<Column>,
    pub primary_key: Option<PrimaryKey>,
    pub uniques: Vec<UniqueConstraint>,
    pub checks: Vec<CheckConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Exclusion constraints (PostgreSQL), as the engine prints them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusions: Vec<ExclusionConstraint>,
    /// Indexes created with CREATE INDEX (not those backing constraints).
    pub indexes: Vec<Index>,
    /// Engine-specific table options that change the storage, e.g. SQLite's
    /// `WITHOUT ROWID` and `STRICT`, normalised to upper case.
    pub options: Vec<String>,
    pub comment: Option<String>,
    /// The engine's own DDL for the table as declared (e.g. SQLite's
    /// `sqlite_schema.sql`), used to create it exactly; never compared.
    #[serde(skip)]
    pub definition: Option<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// Canonical type as the engine reports it, e.g. `INTEGER`, `VARCHAR(20)`.
    pub data_type: String,
    pub nullable: bool,
    /// Canonical default expression.
    pub default: Option<String>,
    /// AUTOINCREMENT / AUTO_INCREMENT / serial-like.
    pub auto_increment: bool,
    pub generated: Option<Generated>,
    pub collation: Option<String>,
    pub comment: Option<String>,
    /// Expression assigned on every update of the row (MySQL's
    /// `ON UPDATE CURRENT_TIMESTAMP`); `None` for engines without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_update: Option<String>,
    /// Identity column: `ALWAYS` or `BY DEFAULT` (SQL standard, PostgreSQL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// An exclusion constraint, e.g. `EXCLUDE USING gist (room WITH =, during WITH &&)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionConstraint {
    pub name: String,
    /// Canonical definition as the engine prints it.
    pub definition: String,
}

/// A generated (computed) column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    pub expression: String,
    /// STORED rather than VIRTUAL.
    pub stored: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueConstraint {
    pub name: Option<String>,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckConstraint {
    pub name: Option<String>,
    /// Canonical boolean expression.
    pub expression: String,
    /// The column a column-level check is part of, where the engine keeps
    /// the two kinds apart (MariaDB); `None` for a table-level check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
    /// `NO ACTION`, `CASCADE`, `SET NULL`, `SET DEFAULT`, `RESTRICT`.
    pub on_delete: String,
    pub on_update: String,
    pub deferrable: bool,
    /// DEFERRABLE INITIALLY DEFERRED.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initially_deferred: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    pub table: String,
    pub unique: bool,
    pub parts: Vec<IndexPart>,
    /// Partial index predicate.
    pub predicate: Option<String>,
    /// Access method where the engine has several (btree, gin, ...).
    pub method: Option<String>,
    /// Covering columns (PostgreSQL INCLUDE).
    pub include: Vec<String>,
    /// The engine's own DDL as declared; never compared.
    #[serde(skip)]
    pub definition: Option<String>,
}

impl Index {
    /// Equal in every respect the database cares about.
    pub fn same_as(&self, other: &Index) -> bool {
        self.table == other.table
            && self.unique == other.unique
            && self.parts == other.parts
            && self.predicate == other.predicate
            && self.method == other.method
            && self.include == other.include
    }
}

/// One key of an index: a column or an expression, with its sort order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPart {
    /// A column name, or a canonical expression in parentheses.
    pub expression: String,
    pub descending: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    /// Canonical text of the view's definition.
    pub definition: String,
    pub materialized: bool,
    /// The engine's own DDL as declared; never compared.
    #[serde(skip)]
    pub ddl: Option<String>,
}

impl View {
    pub fn same_as(&self, other: &View) -> bool {
        self.definition == other.definition && self.materialized == other.materialized
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    pub table: String,
    /// Canonical text of the whole trigger definition.
    pub definition: String,
    /// The engine's own DDL as declared; never compared.
    #[serde(skip)]
    pub ddl: Option<String>,
}

impl Trigger {
    pub fn same_as(&self, other: &Trigger) -> bool {
        self.table == other.table && self.definition == other.definition
    }
}
