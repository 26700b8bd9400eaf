//! Document schema (MongoDB): collections with their options, validators and
//! indexes, in MongoDB's own spelling of each option. The same types are the
//! blueprint file format (`schema.json`), parsed strictly by [`parse`], and
//! the live model an engine reads back; [`DocumentSchema::normalized`] puts
//! both in the form the server reports, so equal schemas compare equal.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::JsonError;

/// A JSON object, key order preserved (it matters in index keys).
pub type Object = Map<String, Value>;

/// The collections of one database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSchema {
    #[serde(default, deserialize_with = "collection_map")]
    pub collections: BTreeMap<String, Collection>,
}

/// One collection: its creation options, validation and indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Collection {
    /// `$jsonSchema` or query-operator validator document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<Object>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_level: Option<ValidationLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_action: Option<ValidationAction>,
    /// Fixed at creation: a capped collection of `size` bytes and at most `max` documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Fixed at creation: a time-series collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries: Option<Timeseries>,
    /// Fixed at creation: a clustered collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clustered_index: Option<ClusteredIndex>,
    /// Fixed at creation: the default collation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "collation"
    )]
    pub collation: Option<Object>,
    #[serde(default, deserialize_with = "index_list")]
    pub indexes: Vec<DocumentIndex>,
}

/// `validationLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidationLevel {
    Off,
    Strict,
    Moderate,
}

/// `validationAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValidationAction {
    Error,
    Warn,
    ErrorAndLog,
}

/// `timeseries` options of a time-series collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeseries {
    pub time_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<Granularity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_max_span_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_rounding_seconds: Option<u64>,
}

/// `timeseries.granularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Granularity {
    Seconds,
    Minutes,
    Hours,
}

/// `clusteredIndex` options of a clustered collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusteredIndex {
    pub key: Object,
    pub unique: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One secondary index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentIndex {
    pub name: String,
    /// Ordered key document: `{"email": 1}`, `{"loc": "2dsphere"}`, `{"title": "text"}`, `{"h": "hashed"}`.
    #[serde(deserialize_with = "index_key")]
    pub key: Object,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<bool>,
    /// TTL index: documents expire this many seconds after the indexed date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_after_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_filter_expression: Option<Object>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "collation"
    )]
    pub collation: Option<Object>,
    /// Hidden from the query planner (still maintained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// Text indexes: field weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Object>,
    /// Text indexes: the default language.
    #[serde(
        default,
        rename = "default_language",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_language: Option<String>,
    /// Text indexes: the field naming a document's language.
    #[serde(
        default,
        rename = "language_override",
        skip_serializing_if = "Option::is_none"
    )]
    pub language_override: Option<String>,
}

/// Parses a MongoDB blueprint's `schema.json`: syntax, unknown fields, wrong
/// types and bad values are errors with the line and column where they are.
pub fn parse(source: &str) -> Result<DocumentSchema, JsonError> {
    super::check_duplicate_keys(source)?;
    serde_json::from_str(source).map_err(JsonError::from)
}

/// Whether a collation field has the value the server reports when it is
/// unset (for most locales; `version` is informational).
fn collation_default(key: &str, value: &Value) -> bool {
    match key {
        "version" => true,
        "caseLevel" | "numericOrdering" | "normalization" | "backwards" => {
            value == &Value::Bool(false)
        }
        "caseFirst" => value == "off",
        "strength" => value.as_i64() == Some(3),
        "alternate" => value == "non-ignorable",
        "maxVariable" => value == "punct",
        _ => false,
    }
}

/// Numbers that are whole become integers (the server may report `1.0` for `1`).
pub fn normalize_json(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| !n.is_i64() && !n.is_u64())
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_json),
        Value::Object(map) => map.values_mut().for_each(normalize_json),
        _ => {}
    }
}

fn normalize_object(object: &mut Object) {
    object.values_mut().for_each(normalize_json);
}

fn normalize_collation(collation: &mut Option<Object>) {
    if let Some(c) = collation {
        normalize_object(c);
        c.retain(|k, v| !collation_default(k, v));
        if c.get("locale").is_some_and(|l| l == "simple") && c.len() == 1 {
            *collation = None;
        }
    }
}

impl DocumentSchema {
    /// The schema with defaults spelled the way the server reports them
    /// (or left out when the server leaves them out), so that a declared
    /// and a live schema that mean the same compare equal.
    pub fn normalized(mut self) -> Self {
        for c in self.collections.values_mut() {
            c.normalize();
        }
        self
    }
}

impl Collection {
    fn normalize(&mut self) {
        if let Some(v) = &mut self.validator {
            normalize_object(v);
            if v.is_empty() {
                self.validator = None;
            }
        }
        if self.validation_level == Some(ValidationLevel::Strict) {
            self.validation_level = None;
        }
        if self.validation_action == Some(ValidationAction::Error) {
            self.validation_action = None;
        }
        if self.capped == Some(false) {
            self.capped = None;
            self.size = None;
            self.max = None;
        }
        if self.max == Some(0) {
            self.max = None;
        }
        if let Some(ts) = &mut self.timeseries {
            let custom = ts.bucket_rounding_seconds.is_some();
            if ts.granularity.is_none() && !custom {
                ts.granularity = Some(Granularity::Seconds);
            }
            let default_span = match ts.granularity {
                Some(Granularity::Seconds) => Some(3600),
                Some(Granularity::Minutes) => Some(86400),
                Some(Granularity::Hours) => Some(2_592_000),
                None => None,
            };
            if ts.bucket_max_span_seconds == default_span {
                ts.bucket_max_span_seconds = None;
            }
        }
        if let Some(ci) = &mut self.clustered_index {
            normalize_object(&mut ci.key);
            if ci.name.as_deref() == Some("_id_") {
                ci.name = None;
            }
        }
        normalize_collation(&mut self.collation);
        for index in &mut self.indexes {
            index.normalize();
        }
        self.indexes.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

impl DocumentIndex {
    /// Whether this is a text index (declared `"text"` keys or the server's `_fts`).
    pub fn is_text(&self) -> bool {
        self.key.values().any(|v| v == "text") || self.key.contains_key("_fts")
    }

    fn normalize(&mut self) {
        normalize_object(&mut self.key);
        for flag in [&mut self.unique, &mut self.sparse, &mut self.hidden] {
            if *flag == Some(false) {
                *flag = None;
            }
        }
        if let Some(p) = &mut self.partial_filter_expression {
            normalize_object(p);
        }
        normalize_collation(&mut self.collation);
        if self.is_text() {
            self.normalize_text();
        }
    }

    /// Text indexes as the server reports them: the text fields become
    /// `_fts: "text", _ftsx: 1` in the key and a weight each.
    fn normalize_text(&mut self) {
        let mut weights: BTreeMap<String, Value> = self
            .weights
            .take()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !self.key.contains_key("_fts") {
            let mut key = Object::new();
            for (field, kind) in std::mem::take(&mut self.key) {
                if kind == "text" {
                    weights.entry(field).or_insert(Value::from(1));
                    if !key.contains_key("_fts") {
                        key.insert("_fts".into(), Value::from("text"));
                        key.insert("_ftsx".into(), Value::from(1));
                    }
                } else {
                    key.insert(field, kind);
                }
            }
            self.key = key;
        }
        let mut w: Object = weights.into_iter().collect();
        normalize_object(&mut w);
        self.weights = Some(w);
        if self.default_language.as_deref() == Some("english") {
            self.default_language = None;
        }
        if self.language_override.as_deref() == Some("language") {
            self.language_override = None;
        }
    }
}

/// Names MongoDB accepts for a collection that tenantctl may manage.
pub fn check_collection_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a collection name cannot be empty".into());
    }
    if name.contains('$') || name.contains('\0') {
        return Err(format!(
            "collection name {name:?} cannot contain '$' or NUL"
        ));
    }
    if name.starts_with("system.") || name.starts_with(crate::engine::RESERVED_PREFIX) {
        return Err(format!(
            "collection name {name:?} is reserved (system.* and {}*)",
            crate::engine::RESERVED_PREFIX
        ));
    }
    if name.len() > 200 {
        return Err(format!("collection name {name:?} is too long"));
    }
    Ok(())
}

fn collection_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Collection>, D::Error> {
    let map = BTreeMap::<String, Collection>::deserialize(d)?;
    for name in map.keys() {
        check_collection_name(name).map_err(D::Error::custom)?;
    }
    Ok(map)
}

fn index_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DocumentIndex>, D::Error> {
    let list = Vec::<DocumentIndex>::deserialize(d)?;
    let mut names = std::collections::BTreeSet::new();
    for index in &list {
        if index.name.is_empty() || index.name == "_id_" {
            return Err(D::Error::custom(format!(
                "index name {:?} is reserved or empty",
                index.name
            )));
        }
        if !names.insert(&index.name) {
            return Err(D::Error::custom(format!(
                "two indexes are named {:?}",
                index.name
            )));
        }
    }
    Ok(list)
}

fn index_key<'de, D: Deserializer<'de>>(d: D) -> Result<Object, D::Error> {
    let key = Object::deserialize(d)?;
    if key.is_empty() {
        return Err(D::Error::custom("an index key needs at least one field"));
    }
    for (field, kind) in &key {
        let ok = match kind {
            Value::Number(n) => matches!(n.as_f64(), Some(x) if x == 1.0 || x == -1.0),
            Value::String(s) => matches!(s.as_str(), "text" | "2dsphere" | "2d" | "hashed"),
            _ => false,
        };
        if !ok {
            return Err(D::Error::custom(format!(
                "index key field {field:?} has {kind}; expected 1, -1, \"text\", \"2dsphere\", \"2d\" or \"hashed\""
            )));
        }
    }
    Ok(key)
}

fn collation<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Object>, D::Error> {
    let c = Object::deserialize(d)?;
    match c.get("locale") {
        Some(Value::String(_)) => Ok(Some(c)),
        _ => Err(D::Error::custom(
            "a collation needs a \"locale\" string (e.g. {\"locale\": \"en\", \"strength\": 2})",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes_defaults() {
        let s = parse(
            r#"{"collections": {"events": {
                "validator": {"$jsonSchema": {"required": ["at"]}},
                "validationLevel": "strict",
                "indexes": [{"name": "by_text", "key": {"kind": 1, "title": "text", "body": "text"}, "unique": false}]
            }}}"#,
        )
        .unwrap()
        .normalized();
        let c = &s.collections["events"];
        assert_eq!(c.validation_level, None);
        let i = &c.indexes[0];
        assert_eq!(i.unique, None);
        assert_eq!(
            Value::Object(i.key.clone()),
            serde_json::json!({"kind": 1, "_fts": "text", "_ftsx": 1})
        );
        assert_eq!(
            Value::Object(i.weights.clone().unwrap()),
            serde_json::json!({"body": 1, "title": 1})
        );
    }

    #[test]
    fn reports_mistakes_with_positions() {
        let e = parse(
            "{\"collections\": {\"a\": {\"indexes\": [{\"name\": \"x\", \"key\": {\"a\": 2}}]}}}",
        )
        .unwrap_err();
        assert!(e.message.contains("expected 1, -1"), "{e:?}");
        let e = parse("{\n  \"collections\": {\"a\": {\"cappd\": true}}\n}").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("unknown field `cappd`"), "{e:?}");
        let e = parse("{\"collections\": {\"a\": {\"validationLevel\": \"loose\"}}}").unwrap_err();
        assert!(e.message.contains("loose"), "{e:?}");
        let e = parse("{\"collections\": {\"_tenantctl_x\": {}}}").unwrap_err();
        assert!(e.message.contains("reserved"), "{e:?}");
    }
}
