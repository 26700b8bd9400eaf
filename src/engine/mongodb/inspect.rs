//! Reads a tenant database's collections and indexes (`listCollections`,
//! then `listIndexes` for every collection, concurrently) into the document
//! model, tenantctl's own `_tenantctl_*` collections excluded.

use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use serde_json::Value;

use super::driver_error;
use crate::engine::{EngineError, RESERVED_PREFIX};
use crate::model::document::{Collection, DocumentIndex, DocumentSchema, Object};

/// The live schema of `db`, normalised like a declared one.
pub async fn inspect(db: &Database) -> Result<DocumentSchema, EngineError> {
    let specs = run_cursor(
        db,
        doc! { "listCollections": 1, "filter": { "type": { "$in": ["collection", "timeseries"] } } },
        "listing collections",
    )
    .await?;
    let mut collections = Vec::new();
    for spec in specs {
        let Ok(name) = spec.get_str("name") else {
            continue;
        };
        if name.starts_with(RESERVED_PREFIX) || name.starts_with("system.") {
            continue;
        }
        let options = spec.get_document("options").cloned().unwrap_or_default();
        collections.push((name.to_string(), options));
    }
    let index_lists = futures::future::try_join_all(collections.iter().map(|(name, _)| {
        run_cursor(
            db,
            doc! { "listIndexes": name.as_str() },
            format!("listing the indexes of {name}"),
        )
    }))
    .await?;
    let mut schema = DocumentSchema::default();
    for ((name, options), indexes) in collections.into_iter().zip(index_lists) {
        let mut collection = collection_from_options(&name, options)?;
        for spec in indexes {
            if let Some(index) = index_from_spec(&name, spec)? {
                collection.indexes.push(index);
            }
        }
        schema.collections.insert(name, collection);
    }
    Ok(schema.normalized())
}

/// Runs a command returning a cursor and gathers every batch.
pub async fn run_cursor(
    db: &Database,
    command: Document,
    context: impl Into<String>,
) -> Result<Vec<Document>, EngineError> {
    let context = context.into();
    let reply = db
        .run_command(command)
        .await
        .map_err(driver_error(&context))?;
    let cursor = reply
        .get_document("cursor")
        .map_err(|e| EngineError::Other(format!("{context}: unexpected reply: {e}")))?;
    let mut out: Vec<Document> = batch(cursor, "firstBatch");
    let mut id = cursor.get_i64("id").unwrap_or(0);
    let ns = cursor.get_str("ns").unwrap_or_default().to_string();
    let collection = ns.split_once('.').map(|(_, c)| c.to_string());
    while id != 0 {
        let Some(collection) = &collection else { break };
        let reply = db
            .run_command(doc! { "getMore": id, "collection": collection.as_str() })
            .await
            .map_err(driver_error(&context))?;
        let cursor = reply
            .get_document("cursor")
            .map_err(|e| EngineError::Other(format!("{context}: unexpected reply: {e}")))?;
        out.extend(batch(cursor, "nextBatch"));
        id = cursor.get_i64("id").unwrap_or(0);
    }
    Ok(out)
}

fn batch(cursor: &Document, field: &str) -> Vec<Document> {
    cursor
        .get_array(field)
        .map(|a| a.iter().filter_map(|b| b.as_document().cloned()).collect())
        .unwrap_or_default()
}

/// Relaxed extended JSON of a BSON document, as a JSON object.
pub fn to_object(document: Document) -> Object {
    match Bson::Document(document).into_relaxed_extjson() {
        Value::Object(map) => map,
        _ => Object::new(),
    }
}

/// Deserialises the fields tenantctl models from a server document, ignoring the rest.
fn pick<T: serde::de::DeserializeOwned>(
    what: &str,
    document: Document,
    fields: &[&str],
) -> Result<T, EngineError> {
    let mut object = to_object(document);
    object.retain(|k, _| fields.contains(&k.as_str()));
    object
        .values_mut()
        .for_each(crate::model::document::normalize_json);
    serde_json::from_value(Value::Object(object))
        .map_err(|e| EngineError::Other(format!("reading {what}: {e}")))
}

fn collection_from_options(name: &str, options: Document) -> Result<Collection, EngineError> {
    let mut options = options;
    if let Ok(ci) = options.get_document_mut("clusteredIndex") {
        ci.remove("v");
    }
    if let Ok(ts) = options.get_document_mut("timeseries") {
        // Internal flags some servers add.
        let extra: Vec<String> = ts
            .keys()
            .filter(|k| {
                !matches!(
                    k.as_str(),
                    "timeField"
                        | "metaField"
                        | "granularity"
                        | "bucketMaxSpanSeconds"
                        | "bucketRoundingSeconds"
                )
            })
            .cloned()
            .collect();
        for k in extra {
            ts.remove(&k);
        }
    }
    pick(
        &format!("the options of collection {name}"),
        options,
        &[
            "validator",
            "validationLevel",
            "validationAction",
            "capped",
            "size",
            "max",
            "timeseries",
            "clusteredIndex",
            "collation",
        ],
    )
}

fn index_from_spec(collection: &str, spec: Document) -> Result<Option<DocumentIndex>, EngineError> {
    let name = spec.get_str("name").unwrap_or_default();
    if name == "_id_" || spec.get_bool("clustered").unwrap_or(false) {
        return Ok(None);
    }
    pick(
        &format!("index {name} of {collection}"),
        spec,
        &[
            "name",
            "key",
            "unique",
            "sparse",
            "expireAfterSeconds",
            "partialFilterExpression",
            "collation",
            "hidden",
            "weights",
            "default_language",
            "language_override",
        ],
    )
    .map(Some)
}
