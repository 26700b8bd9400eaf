//! Key-value policy (Redis): tenants share a server and are isolated by a key
//! prefix; the schema is the tenant's ACL user, TTL policies and default keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValueSchema {
    pub acl: Option<AclUser>,
    #[serde(default)]
    pub ttl: Vec<TtlPolicy>,
    /// Key (relative to the tenant prefix) → value it gets when missing.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
}

/// The tenant's ACL user, confined to its key prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AclUser {
    /// Command rules, e.g. `+@all -@dangerous`.
    pub commands: String,
    /// Name of the environment variable holding the password (never the password).
    pub password_env: Option<String>,
}

/// Keys matching `pattern` (relative to the prefix) must expire within `max_seconds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtlPolicy {
    pub pattern: String,
    pub max_seconds: u64,
}
