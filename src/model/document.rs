//! Document schema (MongoDB): collections with their validators and indexes,
//! in MongoDB's own spelling of each option.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DocumentSchema {
    pub collections: BTreeMap<String, Collection>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// `$jsonSchema` or query-operator validator document.
    pub validator: Option<serde_json::Value>,
    pub validation_level: Option<String>,
    pub validation_action: Option<String>,
    /// Options fixed at creation: capped/size, timeseries, clusteredIndex, collation.
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub indexes: Vec<DocumentIndex>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentIndex {
    pub name: String,
    /// Ordered key document, e.g. `{"email": 1}` or `{"loc": "2dsphere"}`.
    pub key: serde_json::Value,
    /// unique, sparse, expireAfterSeconds, partialFilterExpression, collation, hidden.
    #[serde(default)]
    pub options: BTreeMap<String, serde_json::Value>,
}
