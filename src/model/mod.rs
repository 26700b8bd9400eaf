//! Engine-neutral schema types. Both sides of every diff — the declared
//! schema built from a blueprint and the live schema read from a tenant
//! database — are values of these types.

pub mod document;
pub mod fingerprint;
pub mod keyvalue;
pub mod sql;

use serde::{Deserialize, Serialize};

pub use document::DocumentSchema;
pub use keyvalue::KeyValueSchema;
pub use sql::SqlSchema;

/// The schema of one database, whatever its engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schema {
    /// PostgreSQL, MySQL, SQLite.
    Sql(SqlSchema),
    /// MongoDB: collections, validators, indexes.
    Document(DocumentSchema),
    /// Redis: the tenant's ACL user, TTL policies, default keys.
    KeyValue(KeyValueSchema),
}

impl Schema {
    /// A stable, versioned hash of the schema (`v2:…`, see [`fingerprint`]):
    /// tenants with equal fingerprints are in the same state and share one
    /// diff, and saved plans use it to notice a database that changed after it
    /// was planned. It depends on the schema only, not on how the model's
    /// structs are laid out.
    pub fn fingerprint(&self) -> String {
        fingerprint::fingerprint(self)
    }

    /// Whether the schema declares nothing (a new, empty database).
    pub fn is_empty(&self) -> bool {
        match self {
            Schema::Sql(s) => s.is_empty(),
            Schema::Document(d) => d.collections.is_empty(),
            Schema::KeyValue(k) => k.acl.is_none() && k.ttl.is_empty() && k.defaults.is_empty(),
        }
    }
}

/// A mistake in a JSON blueprint, with where it is (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = text.strip_suffix(&suffix).unwrap_or(&text);
        let message = if e.is_syntax() || e.is_eof() {
            format!("JSON: {message}")
        } else {
            message.to_string()
        };
        JsonError {
            line: e.line().max(1),
            column: e.column().max(1),
            message,
        }
    }
}

/// Refuses a JSON document in which any object repeats a key (serde_json
/// keeps the last one silently), at the position of the repeated key.
pub(crate) fn check_duplicate_keys(source: &str) -> Result<(), JsonError> {
    use serde::Deserializer as _;
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

    /// Walks any JSON value, failing on the first repeated key of an object.
    struct Unique;

    impl<'de> DeserializeSeed<'de> for Unique {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Unique {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Unique)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(de::Error::custom(format!(
                        "duplicate key {key:?} in one object"
                    )));
                }
                map.next_value_seed(Unique)?;
            }
            Ok(())
        }
    }

    let mut deserializer = serde_json::Deserializer::from_str(source);
    deserializer
        .deserialize_any(Unique)
        .map_err(JsonError::from)
}

/// Parses the `schema.json` of a MongoDB or Redis blueprint into its model;
/// `None` for engines whose blueprints are SQL.
pub fn parse_json_schema(engine: EngineKind, source: &str) -> Option<Result<Schema, JsonError>> {
    match engine {
        EngineKind::Mongodb => Some(document::parse(source).map(Schema::Document)),
        EngineKind::Redis => Some(keyvalue::parse(source).map(Schema::KeyValue)),
        EngineKind::Postgres | EngineKind::Mysql | EngineKind::Sqlite => None,
    }
}

/// The database engines tenantctl manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgres,
    Mysql,
    Sqlite,
    Mongodb,
    Redis,
}

impl EngineKind {
    /// The schema file a blueprint of this engine keeps.
    pub fn schema_file(self) -> &'static str {
        match self {
            EngineKind::Postgres | EngineKind::Mysql | EngineKind::Sqlite => "schema.sql",
            EngineKind::Mongodb | EngineKind::Redis => "schema.json",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::Mysql => "mysql",
            EngineKind::Sqlite => "sqlite",
            EngineKind::Mongodb => "mongodb",
            EngineKind::Redis => "redis",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
