//! Schema fingerprints: a versioned, canonical form of a [`Schema`], hashed.
//!
//! The fingerprint is `v2:` followed by 32 hex digits of the SHA-256 of a
//! hand-written canonical text of the schema. The text names every attribute
//! explicitly, one per line, in an order fixed here (not by the struct layout or
//! serde): maps in key order (the model keeps them keyed by name), lists in the
//! model's order (introspection normalises it, and order is part of the state,
//! e.g. column order). Strings are written as JSON strings, JSON values
//! (MongoDB validators, index keys) as compact JSON in the model's key order.
//!
//! Every struct is destructured without `..`, so adding a field to the model
//! does not compile until this file decides how the field is written. The rule
//! for such a field: write it only when it differs from its default, so that the
//! fingerprints of schemas that do not use it stay the same. Changing how an
//! existing attribute is written changes fingerprints: then bump
//! [`FINGERPRINT_VERSION`] (the golden tests in this file fail until you do, and
//! drift re-derives recorded fingerprints of another version, see
//! [`is_current`]).
//!
//! Version 1 (tenantctl before this form) was 32 hex digits of the SHA-256 of the
//! model's serde JSON, with no prefix.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::Schema;
use super::document::{
    ClusteredIndex, Collection, DocumentIndex, DocumentSchema, Granularity, Timeseries,
    ValidationAction, ValidationLevel,
};
use super::keyvalue::{AclUser, KeyValueSchema, KeyValueTarget, TtlPolicy};
use super::sql::{
    CheckConstraint, Column, ExclusionConstraint, ForeignKey, Generated, Index, IndexPart,
    PrimaryKey, SqlObject, SqlSchema, Table, Trigger, UniqueConstraint, View,
};

/// The version of the canonical form, written before the hash (`v2:…`).
pub const FINGERPRINT_VERSION: &str = "v2";

/// The fingerprint of `schema` in the current version.
pub fn fingerprint(schema: &Schema) -> String {
    let digest = Sha256::digest(canonical(schema).as_bytes());
    format!("{FINGERPRINT_VERSION}:{}", hex::encode(&digest[..16]))
}

/// The version a recorded fingerprint was made with: the text before `:`,
/// or `v1` for the unprefixed fingerprints of earlier releases.
pub fn version_of(fingerprint: &str) -> &str {
    match fingerprint.split_once(':') {
        Some((version, _)) => version,
        None => "v1",
    }
}

/// Whether a recorded fingerprint was made by the running version, so that
/// comparing it with a fresh one says whether the schema changed.
pub fn is_current(fingerprint: &str) -> bool {
    version_of(fingerprint) == FINGERPRINT_VERSION
}

/// The canonical text of a schema: what [`fingerprint`] hashes.
pub fn canonical(schema: &Schema) -> String {
    let mut w = Writer::default();
    w.line(0, "tenantctl-schema", FINGERPRINT_VERSION);
    match schema {
        Schema::Sql(s) => sql(&mut w, s),
        Schema::Document(d) => document(&mut w, d),
        Schema::KeyValue(k) => keyvalue(&mut w, k),
    }
    w.out
}

/// Lines of `indent` spaces, a key and a value.
#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn line(&mut self, indent: usize, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{:indent$}{key} {value}", "");
    }

    fn str(&mut self, indent: usize, key: &str, value: &str) {
        self.line(indent, key, quote(value));
    }

    fn opt(&mut self, indent: usize, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.str(indent, key, v),
            None => self.line(indent, key, "none"),
        }
    }

    fn list(&mut self, indent: usize, key: &str, values: &[String]) {
        let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
        self.line(indent, key, format!("[{}]", items.join(",")));
    }

    fn json(&mut self, indent: usize, key: &str, value: Option<&impl serde::Serialize>) {
        match value {
            Some(v) => {
                let text = serde_json::to_string(v).expect("JSON values serialise");
                self.line(indent, key, text);
            }
            None => self.line(indent, key, "none"),
        }
    }
}

/// A string as a JSON string literal: unambiguous, and stable across releases.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

fn opt_num(value: Option<u64>) -> String {
    value.map_or_else(|| "none".to_string(), |v| v.to_string())
}

fn opt_bool(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "true",
        Some(false) => "false",
        None => "none",
    }
}

fn sql(w: &mut Writer, schema: &SqlSchema) {
    let SqlSchema {
        tables,
        views,
        triggers,
        objects,
    } = schema;
    w.line(0, "kind", "sql");
    for (key, table) in tables {
        w.str(0, "table", key);
        sql_table(w, table);
    }
    for (key, view) in views {
        let View {
            name,
            definition,
            materialized,
            ddl: _,
        } = view;
        w.str(0, "view", key);
        w.str(1, "name", name);
        w.str(1, "definition", definition);
        w.line(1, "materialized", materialized);
    }
    for (key, trigger) in triggers {
        let Trigger {
            name,
            table,
            definition,
            ddl: _,
        } = trigger;
        w.str(0, "trigger", key);
        w.str(1, "name", name);
        w.str(1, "table", table);
        w.str(1, "definition", definition);
    }
    for (key, object) in objects {
        let SqlObject {
            kind,
            name,
            definition,
            items,
            ddl: _,
        } = object;
        w.str(0, "object", key);
        w.str(1, "kind", kind);
        w.str(1, "name", name);
        w.str(1, "definition", definition);
        w.list(1, "items", items);
    }
}

fn sql_table(w: &mut Writer, table: &Table) {
    let Table {
        name,
        columns,
        primary_key,
        uniques,
        checks,
        foreign_keys,
        exclusions,
        indexes,
        options,
        comment,
        definition: _,
    } = table;
    w.str(1, "name", name);
    for column in columns {
        sql_column(w, column);
    }
    match primary_key {
        Some(PrimaryKey { name, columns }) => {
            w.line(1, "primary_key", "");
            w.opt(2, "name", name.as_deref());
            w.list(2, "columns", columns);
        }
        None => w.line(1, "primary_key", "none"),
    }
    for UniqueConstraint { name, columns } in uniques {
        w.line(1, "unique", "");
        w.opt(2, "name", name.as_deref());
        w.list(2, "columns", columns);
    }
    for CheckConstraint {
        name,
        expression,
        column,
    } in checks
    {
        w.line(1, "check", "");
        w.opt(2, "name", name.as_deref());
        w.str(2, "expression", expression);
        w.opt(2, "column", column.as_deref());
    }
    for ForeignKey {
        name,
        columns,
        referenced_table,
        referenced_columns,
        on_delete,
        on_update,
        deferrable,
        initially_deferred,
    } in foreign_keys
    {
        w.line(1, "foreign_key", "");
        w.opt(2, "name", name.as_deref());
        w.list(2, "columns", columns);
        w.str(2, "referenced_table", referenced_table);
        w.list(2, "referenced_columns", referenced_columns);
        w.str(2, "on_delete", on_delete);
        w.str(2, "on_update", on_update);
        w.line(2, "deferrable", deferrable);
        w.line(2, "initially_deferred", initially_deferred);
    }
    for ExclusionConstraint { name, definition } in exclusions {
        w.line(1, "exclusion", "");
        w.str(2, "name", name);
        w.str(2, "definition", definition);
    }
    for index in indexes {
        sql_index(w, index);
    }
    w.list(1, "options", options);
    w.opt(1, "comment", comment.as_deref());
}

fn sql_column(w: &mut Writer, column: &Column) {
    let Column {
        name,
        data_type,
        nullable,
        default,
        auto_increment,
        generated,
        collation,
        comment,
        on_update,
        identity,
    } = column;
    w.str(1, "column", name);
    w.str(2, "type", data_type);
    w.line(2, "nullable", nullable);
    w.opt(2, "default", default.as_deref());
    w.line(2, "auto_increment", auto_increment);
    match generated {
        Some(Generated { expression, stored }) => {
            w.str(2, "generated", expression);
            w.line(3, "stored", stored);
        }
        None => w.line(2, "generated", "none"),
    }
    w.opt(2, "collation", collation.as_deref());
    w.opt(2, "comment", comment.as_deref());
    w.opt(2, "on_update", on_update.as_deref());
    w.opt(2, "identity", identity.as_deref());
}

fn sql_index(w: &mut Writer, index: &Index) {
    let Index {
        name,
        table,
        unique,
        parts,
        predicate,
        method,
        include,
        definition: _,
    } = index;
    w.str(1, "index", name);
    w.str(2, "table", table);
    w.line(2, "unique", unique);
    for IndexPart {
        expression,
        descending,
    } in parts
    {
        w.str(2, "part", expression);
        w.line(3, "descending", descending);
    }
    w.opt(2, "predicate", predicate.as_deref());
    w.opt(2, "method", method.as_deref());
    w.list(2, "include", include);
}

fn document(w: &mut Writer, schema: &DocumentSchema) {
    let DocumentSchema { collections } = schema;
    w.line(0, "kind", "document");
    for (name, collection) in collections {
        w.str(0, "collection", name);
        document_collection(w, collection);
    }
}

fn document_collection(w: &mut Writer, collection: &Collection) {
    let Collection {
        validator,
        validation_level,
        validation_action,
        capped,
        size,
        max,
        timeseries,
        clustered_index,
        collation,
        indexes,
    } = collection;
    w.json(1, "validator", validator.as_ref());
    let level = validation_level.map(|l| match l {
        ValidationLevel::Off => "off",
        ValidationLevel::Strict => "strict",
        ValidationLevel::Moderate => "moderate",
    });
    w.line(1, "validation_level", level.unwrap_or("none"));
    let action = validation_action.map(|a| match a {
        ValidationAction::Error => "error",
        ValidationAction::Warn => "warn",
        ValidationAction::ErrorAndLog => "errorAndLog",
    });
    w.line(1, "validation_action", action.unwrap_or("none"));
    w.line(1, "capped", opt_bool(*capped));
    w.line(1, "size", opt_num(*size));
    w.line(1, "max", opt_num(*max));
    match timeseries {
        Some(Timeseries {
            time_field,
            meta_field,
            granularity,
            bucket_max_span_seconds,
            bucket_rounding_seconds,
        }) => {
            w.line(1, "timeseries", "");
            w.str(2, "time_field", time_field);
            w.opt(2, "meta_field", meta_field.as_deref());
            let granularity = granularity.map(|g| match g {
                Granularity::Seconds => "seconds",
                Granularity::Minutes => "minutes",
                Granularity::Hours => "hours",
            });
            w.line(2, "granularity", granularity.unwrap_or("none"));
            w.line(
                2,
                "bucket_max_span_seconds",
                opt_num(*bucket_max_span_seconds),
            );
            w.line(
                2,
                "bucket_rounding_seconds",
                opt_num(*bucket_rounding_seconds),
            );
        }
        None => w.line(1, "timeseries", "none"),
    }
    match clustered_index {
        Some(ClusteredIndex { key, unique, name }) => {
            w.line(1, "clustered_index", "");
            w.json(2, "key", Some(key));
            w.line(2, "unique", unique);
            w.opt(2, "name", name.as_deref());
        }
        None => w.line(1, "clustered_index", "none"),
    }
    w.json(1, "collation", collation.as_ref());
    for index in indexes {
        let DocumentIndex {
            name,
            key,
            unique,
            sparse,
            expire_after_seconds,
            partial_filter_expression,
            collation,
            hidden,
            weights,
            default_language,
            language_override,
        } = index;
        w.str(1, "index", name);
        w.json(2, "key", Some(key));
        w.line(2, "unique", opt_bool(*unique));
        w.line(2, "sparse", opt_bool(*sparse));
        w.line(2, "expire_after_seconds", opt_num(*expire_after_seconds));
        w.json(
            2,
            "partial_filter_expression",
            partial_filter_expression.as_ref(),
        );
        w.json(2, "collation", collation.as_ref());
        w.line(2, "hidden", opt_bool(*hidden));
        w.json(2, "weights", weights.as_ref());
        w.opt(2, "default_language", default_language.as_deref());
        w.opt(2, "language_override", language_override.as_deref());
    }
}

fn keyvalue(w: &mut Writer, schema: &KeyValueSchema) {
    let KeyValueSchema {
        acl,
        ttl,
        defaults,
        hash_tag,
        target,
    } = schema;
    w.line(0, "kind", "key_value");
    match acl {
        Some(AclUser {
            commands,
            password_env,
            keys,
            channels,
        }) => {
            w.line(0, "acl", "");
            w.str(1, "commands", commands);
            w.opt(1, "password_env", password_env.as_deref());
            w.list(1, "keys", keys);
            w.list(1, "channels", channels);
        }
        None => w.line(0, "acl", "none"),
    }
    for TtlPolicy {
        pattern,
        max_seconds,
        violators,
    } in ttl
    {
        w.str(0, "ttl", pattern);
        w.line(1, "max_seconds", max_seconds);
        w.list(1, "violators", violators);
    }
    for (key, value) in defaults {
        w.str(0, "default", key);
        w.str(1, "value", value);
    }
    w.line(0, "hash_tag", hash_tag);
    match target {
        Some(KeyValueTarget { prefix, user }) => {
            w.line(0, "target", "");
            w.str(1, "prefix", prefix);
            w.str(1, "user", user);
        }
        None => w.line(0, "target", "none"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sql::*;

    /// Golden fingerprints of [`sql_sample`], [`document_sample`] and
    /// [`keyvalue_sample`], one row per released version of the canonical
    /// form. A released row is never edited: a change to the form adds a row
    /// with a new [`FINGERPRINT_VERSION`].
    const GOLDEN: &[(&str, [&str; 3])] = &[(
        "v2",
        [
            "v2:999ffdd81d2d8c79bb8828febf13ee3e",
            "v2:0ec77fb208a5dbd7b02d0c28a95057d9",
            "v2:76405b2c5e61eff9dcd7d49b0e75cda2",
        ],
    )];

    fn sql_sample() -> Schema {
        let mut s = SqlSchema::default();
        s.tables.insert(
            "items".into(),
            Table {
                name: "items".into(),
                columns: vec![
                    Column {
                        name: "id".into(),
                        data_type: "INTEGER".into(),
                        auto_increment: true,
                        ..Default::default()
                    },
                    Column {
                        name: "name".into(),
                        data_type: "TEXT".into(),
                        nullable: true,
                        default: Some("'x'".into()),
                        collation: Some("NOCASE".into()),
                        ..Default::default()
                    },
                    Column {
                        name: "total".into(),
                        data_type: "INTEGER".into(),
                        generated: Some(Generated {
                            expression: "id * 2".into(),
                            stored: true,
                        }),
                        ..Default::default()
                    },
                ],
                primary_key: Some(PrimaryKey {
                    name: None,
                    columns: vec!["id".into()],
                }),
                uniques: vec![UniqueConstraint {
                    name: Some("items_name_key".into()),
                    columns: vec!["name".into()],
                }],
                checks: vec![CheckConstraint {
                    name: None,
                    expression: "id > 0".into(),
                    column: None,
                }],
                foreign_keys: vec![ForeignKey {
                    name: None,
                    columns: vec!["id".into()],
                    referenced_table: "parents".into(),
                    referenced_columns: vec!["id".into()],
                    on_delete: "CASCADE".into(),
                    on_update: "NO ACTION".into(),
                    deferrable: false,
                    initially_deferred: false,
                }],
                indexes: vec![Index {
                    name: "items_by_name".into(),
                    table: "items".into(),
                    unique: false,
                    parts: vec![IndexPart {
                        expression: "name".into(),
                        descending: true,
                    }],
                    predicate: Some("name IS NOT NULL".into()),
                    definition: Some("never part of the fingerprint".into()),
                    ..Default::default()
                }],
                options: vec!["STRICT".into()],
                ..Default::default()
            },
        );
        s.views.insert(
            "names".into(),
            View {
                name: "names".into(),
                definition: "SELECT name FROM items".into(),
                materialized: false,
                ddl: None,
            },
        );
        s.triggers.insert(
            "touch".into(),
            Trigger {
                name: "touch".into(),
                table: "items".into(),
                definition: "CREATE TRIGGER touch AFTER INSERT ON items BEGIN SELECT 1; END".into(),
                ddl: None,
            },
        );
        s.objects.insert(
            "enum mood".into(),
            SqlObject {
                kind: "enum".into(),
                name: "mood".into(),
                definition: "CREATE TYPE mood AS ENUM ('ok', 'sad')".into(),
                items: vec!["ok".into(), "sad".into()],
                ddl: Vec::new(),
            },
        );
        Schema::Sql(s)
    }

    fn document_sample() -> Schema {
        let source = r#"{"collections": {
            "orders": {
                "validator": {"$jsonSchema": {"required": ["total", "at"]}},
                "validationLevel": "strict",
                "validationAction": "error",
                "indexes": [
                    {"name": "by_customer", "key": {"customer": 1, "at": -1}, "unique": true},
                    {"name": "expiry", "key": {"at": 1}, "expireAfterSeconds": 3600}
                ]
            },
            "events": {"capped": true, "size": 4096}
        }}"#;
        Schema::Document(crate::model::document::parse(source).unwrap())
    }

    fn keyvalue_sample() -> Schema {
        let source = r#"{"acl": {"commands": "+@all -@dangerous", "password_env": "PW_{tenant}"},
            "ttl": [{"pattern": "session:*", "max_seconds": 3600}],
            "defaults": {"flags:beta": "off", "plan": "free"}}"#;
        Schema::KeyValue(crate::model::keyvalue::parse(source).unwrap())
    }

    fn current() -> [String; 3] {
        [sql_sample(), document_sample(), keyvalue_sample()].map(|s| fingerprint(&s))
    }

    #[test]
    fn golden_fingerprints_per_engine_kind() {
        let (_, golden) = GOLDEN
            .iter()
            .find(|(v, _)| *v == FINGERPRINT_VERSION)
            .expect("FINGERPRINT_VERSION has no GOLDEN row: add one");
        assert_eq!(
            current(),
            *golden,
            "the canonical form changed: every recorded fingerprint of the fleet would look \
             changed. Bump FINGERPRINT_VERSION and add a GOLDEN row (never edit a released one)"
        );
    }

    #[test]
    fn a_changed_form_is_a_new_version() {
        let versions: std::collections::BTreeSet<&str> = GOLDEN.iter().map(|(v, _)| *v).collect();
        assert_eq!(
            versions.len(),
            GOLDEN.len(),
            "a version has two GOLDEN rows"
        );
        for (version, golden) in GOLDEN {
            for fp in golden {
                assert_eq!(version_of(fp), *version, "{fp} is not of version {version}");
            }
            if *version != FINGERPRINT_VERSION {
                for (old, new) in golden.iter().zip(current()) {
                    assert_ne!(
                        old.split_once(':').map(|(_, h)| h),
                        new.split_once(':').map(|(_, h)| h),
                        "version {version} and {FINGERPRINT_VERSION} write the same form: no need for a new version"
                    );
                }
            }
        }
    }

    #[test]
    fn every_attribute_counts_and_declared_ddl_does_not() {
        let base = fingerprint(&sql_sample());
        let Schema::Sql(mut s) = sql_sample() else {
            unreachable!()
        };
        s.tables.get_mut("items").unwrap().indexes[0].definition = Some("other".into());
        s.tables.get_mut("items").unwrap().definition = Some("CREATE TABLE …".into());
        assert_eq!(fingerprint(&Schema::Sql(s.clone())), base);
        let edits: [fn(&mut SqlSchema); 7] = [
            |s| s.tables.get_mut("items").unwrap().columns[1].nullable = false,
            |s| s.tables.get_mut("items").unwrap().columns[0].comment = Some(String::new()),
            |s| s.tables.get_mut("items").unwrap().columns.swap(0, 1),
            |s| s.tables.get_mut("items").unwrap().indexes[0].parts[0].descending = false,
            |s| s.tables.get_mut("items").unwrap().foreign_keys[0].initially_deferred = true,
            |s| {
                s.objects.get_mut("enum mood").unwrap().items.pop();
            },
            |s| s.views.get_mut("names").unwrap().materialized = true,
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = s.clone();
            edit(&mut changed);
            assert_ne!(
                fingerprint(&Schema::Sql(changed)),
                base,
                "edit {i} not seen"
            );
        }
    }

    #[test]
    fn strings_cannot_run_into_the_next_attribute() {
        let one = |name: &str, ty: &str| {
            let mut s = SqlSchema::default();
            s.tables.insert(
                "t".into(),
                Table {
                    name: "t".into(),
                    columns: vec![Column {
                        name: name.into(),
                        data_type: ty.into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            );
            fingerprint(&Schema::Sql(s))
        };
        assert_ne!(one("a\"\n    type \"b", "c"), one("a", "b\"\n    type \"c"));
    }

    #[test]
    fn versions_of_recorded_fingerprints() {
        assert_eq!(version_of("0123456789abcdef0123456789abcdef"), "v1");
        assert_eq!(version_of("v2:0123"), "v2");
        assert!(is_current(&fingerprint(&sql_sample())));
        assert!(!is_current("0123456789abcdef0123456789abcdef"));
        assert!(fingerprint(&keyvalue_sample()).starts_with("v2:"));
    }
}
