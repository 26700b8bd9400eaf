//! Key-value policy (Redis): tenants share a server and are isolated by a key
//! prefix; the schema is the tenant's ACL user, TTL policies and default keys.
//! The same types are the blueprint file format (`schema.json`), parsed
//! strictly by [`parse`], and the live model an engine reads back.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::JsonError;

/// What a Redis blueprint declares for each tenant prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueSchema {
    #[serde(default)]
    pub acl: Option<AclUser>,
    #[serde(default, deserialize_with = "ttl_list")]
    pub ttl: Vec<TtlPolicy>,
    /// Key (relative to the tenant prefix) → value it gets when missing.
    #[serde(default, deserialize_with = "default_keys")]
    pub defaults: BTreeMap<String, String>,
    /// Redis Cluster: use the hash-tag prefix `{tenant}:` instead of `tenant:`,
    /// so that all of a tenant's keys live in one slot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hash_tag: bool,
    /// Live model only (a blueprint may not set it): the prefix and ACL user
    /// the state was read for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<KeyValueTarget>,
}

/// The tenant a live key-value state belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyValueTarget {
    /// The key prefix, e.g. `acme:` or `{acme}:`.
    pub prefix: String,
    /// The ACL user name.
    pub user: String,
}

/// The tenant's ACL user, confined to its key prefix.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclUser {
    /// Command rules, e.g. `+@all -@dangerous` (only `+`/`-` rules,
    /// `allcommands` and `nocommands`: keys, channels and passwords are not
    /// the blueprint's to grant).
    #[serde(deserialize_with = "command_rules")]
    pub commands: String,
    /// Name of the environment variable holding the password (never the
    /// password); `{tenant}` in it is replaced by the tenant's name in upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Key patterns, relative to the prefix (default `["*"]`).
    #[serde(default = "everything", deserialize_with = "patterns")]
    pub keys: Vec<String>,
    /// Pub/sub channel patterns, relative to the prefix (default `["*"]`).
    #[serde(default = "everything", deserialize_with = "patterns")]
    pub channels: Vec<String>,
}

fn everything() -> Vec<String> {
    vec!["*".to_string()]
}

/// Keys matching `pattern` (relative to the prefix) must expire within `max_seconds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtlPolicy {
    pub pattern: String,
    pub max_seconds: u64,
    /// Live model only (a blueprint may not set it): keys (relative to the
    /// prefix) that match and have no expiry or a later one; bounded by the
    /// engine's scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violators: Vec<String>,
}

/// Parses a Redis blueprint's `schema.json`: syntax, unknown fields, wrong
/// types and bad values are errors with the line and column where they are.
pub fn parse(source: &str) -> Result<KeyValueSchema, JsonError> {
    super::check_duplicate_keys(source)?;
    let schema: KeyValueSchema = serde_json::from_str(source).map_err(JsonError::from)?;
    let live_only = if schema.target.is_some() {
        Some("target")
    } else if schema.ttl.iter().any(|p| !p.violators.is_empty()) {
        Some("violators")
    } else {
        None
    };
    if let Some(field) = live_only {
        let quoted = format!("\"{field}\"");
        let (line, column) = source
            .lines()
            .enumerate()
            .find_map(|(i, l)| l.find(&quoted).map(|c| (i + 1, c + 1)))
            .unwrap_or((1, 1));
        return Err(JsonError {
            line,
            column,
            message: format!("`{field}` is read from the server, not declared in a blueprint"),
        });
    }
    Ok(schema)
}

fn command_rules<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let rules = String::deserialize(d)?;
    check_command_rules(&rules).map_err(D::Error::custom)?;
    Ok(rules.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Checks ACL command rules: only `+cmd`, `-cmd`, `+@category`,
/// `-@category`, `+cmd|sub`, `allcommands` and `nocommands`.
pub fn check_command_rules(rules: &str) -> Result<(), String> {
    if rules.trim().is_empty() {
        return Err("acl.commands is empty; e.g. \"+@all -@dangerous\"".into());
    }
    for rule in rules.split_whitespace() {
        let ok = matches!(rule, "allcommands" | "nocommands")
            || rule
                .strip_prefix('+')
                .or_else(|| rule.strip_prefix('-'))
                .map(|r| r.strip_prefix('@').unwrap_or(r))
                .is_some_and(|r| {
                    !r.is_empty()
                        && r.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "|_-.".contains(c))
                });
        if !ok {
            return Err(format!(
                "acl.commands: {rule:?} is not a command rule (allowed: +cmd, -cmd, +@category, -@category, allcommands, nocommands; key and channel patterns follow the tenant prefix)"
            ));
        }
    }
    Ok(())
}

fn check_relative(what: &str, pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{what} {pattern:?} must be non-empty and without spaces"
        ));
    }
    Ok(())
}

fn patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for p in &list {
        check_relative("pattern", p).map_err(D::Error::custom)?;
    }
    Ok(list)
}

fn ttl_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TtlPolicy>, D::Error> {
    let list = Vec::<TtlPolicy>::deserialize(d)?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &list {
        check_relative("ttl pattern", &p.pattern).map_err(D::Error::custom)?;
        if p.max_seconds == 0 {
            return Err(D::Error::custom(format!(
                "ttl pattern {:?}: max_seconds must be at least 1",
                p.pattern
            )));
        }
        if !seen.insert(&p.pattern) {
            return Err(D::Error::custom(format!(
                "ttl pattern {:?} is declared twice",
                p.pattern
            )));
        }
    }
    Ok(list)
}

fn default_keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = BTreeMap::<String, String>::deserialize(d)?;
    for key in map.keys() {
        check_relative("default key", key).map_err(D::Error::custom)?;
        if key.contains(['*', '?', '[']) {
            return Err(D::Error::custom(format!(
                "default key {key:?} cannot contain glob characters"
            )));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_defaults() {
        let s = parse(
            r#"{"acl": {"commands": "+@all  -@dangerous", "password_env": "PW"},
                "ttl": [{"pattern": "session:*", "max_seconds": 3600}],
                "defaults": {"flags:beta": "off"}}"#,
        )
        .unwrap();
        let acl = s.acl.unwrap();
        assert_eq!(acl.commands, "+@all -@dangerous");
        assert_eq!(acl.keys, vec!["*"]);
        assert_eq!(s.ttl[0].max_seconds, 3600);
    }

    #[test]
    fn rejects_rules_that_escape_the_prefix() {
        for rules in ["+@all ~*", "allkeys", "+@all >secret", "on", "+@all &*"] {
            let source = format!(r#"{{"acl": {{"commands": "{rules}"}}}}"#);
            let e = parse(&source).unwrap_err();
            assert!(e.message.contains("not a command rule"), "{rules}: {e:?}");
        }
        let e = parse("{\n\"ttl\": [{\"pattern\": \"s:*\", \"max_seconds\": -1}]}").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        let e = parse("{\n \"target\": {\"prefix\": \"x:\", \"user\": \"x\"}}").unwrap_err();
        assert_eq!((e.line, e.column), (2, 2), "{e:?}");
        let e = parse(r#"{"acl": {"commands": "+@all", "pasword_env": "X"}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `pasword_env`"), "{e:?}");
    }
}
