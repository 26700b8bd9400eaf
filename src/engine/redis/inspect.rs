//! Reads a tenant's live state: its ACL user (`ACL GETUSER`), the keys
//! violating each declared TTL policy (a bounded `SCAN` plus pipelined
//! `TTL`s) and which declared default keys exist (pipelined `EXISTS`).

use redis::Value;
use redis::aio::MultiplexedConnection;
use sha2::{Digest, Sha256};

use super::{Tenant, driver_error};
use crate::engine::EngineError;
use crate::model::keyvalue::{AclUser, KeyValueSchema, KeyValueTarget, TtlPolicy};

/// Keys examined per `SCAN` call.
pub const SCAN_COUNT: usize = 1000;
/// Most keys one TTL policy reports as violating per run; the rest are
/// found by the next run (`reconcile --apply` again converges).
pub const MAX_VIOLATORS: usize = 10_000;

/// The live state of `tenant`, read against what its blueprint declares.
pub async fn inspect(
    conn: &mut MultiplexedConnection,
    tenant: &Tenant,
) -> Result<KeyValueSchema, EngineError> {
    let declared = &tenant.declared;
    let mut live = KeyValueSchema {
        acl: read_user(conn, tenant).await?,
        hash_tag: declared.hash_tag,
        target: Some(KeyValueTarget {
            prefix: tenant.prefix.clone(),
            user: tenant.user.clone(),
        }),
        ..Default::default()
    };
    for policy in &declared.ttl {
        live.ttl.push(TtlPolicy {
            pattern: policy.pattern.clone(),
            max_seconds: policy.max_seconds,
            violators: violators(conn, &tenant.prefix, policy).await?,
        });
    }
    if !declared.defaults.is_empty() {
        let mut pipe = redis::pipe();
        for key in declared.defaults.keys() {
            pipe.exists(format!("{}{key}", tenant.prefix));
        }
        let exists: Vec<bool> = pipe
            .query_async(conn)
            .await
            .map_err(driver_error("checking default keys"))?;
        for ((key, value), exists) in declared.defaults.iter().zip(exists) {
            if exists {
                live.defaults.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(live)
}

/// Keys (relative to the prefix) matching the policy with no expiry or a later one.
/// One `SCAN cursor MATCH pattern COUNT n` page: the next cursor and the keys.
async fn scan_page(
    conn: &mut MultiplexedConnection,
    cursor: u64,
    pattern: &str,
) -> Result<(u64, Vec<String>), EngineError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT)
        .query_async(conn)
        .await
        .map_err(driver_error("scanning keys"))
}

async fn violators(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    policy: &TtlPolicy,
) -> Result<Vec<String>, EngineError> {
    let pattern = format!("{}{}", escape_glob(prefix), policy.pattern);
    let mut cursor: u64 = 0;
    let mut found = Vec::new();
    loop {
        let (next, keys) = scan_page(conn, cursor, &pattern).await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in &keys {
                pipe.ttl(key);
            }
            let ttls: Vec<i64> = pipe
                .query_async(conn)
                .await
                .map_err(driver_error("reading TTLs"))?;
            for (key, ttl) in keys.into_iter().zip(ttls) {
                // -2: gone meanwhile; -1: no expiry.
                let late = ttl == -1 || ttl > policy.max_seconds as i64;
                if late && let Some(relative) = key.strip_prefix(prefix) {
                    found.push(relative.to_string());
                }
            }
        }
        cursor = next;
        if cursor == 0 || found.len() >= MAX_VIOLATORS {
            break;
        }
    }
    found.sort();
    found.dedup();
    found.truncate(MAX_VIOLATORS);
    Ok(found)
}

/// Whether any key lives under `prefix` (a bounded scan: at most
/// [`MAX_VIOLATORS`] keys of the server examined).
pub async fn any_key(conn: &mut MultiplexedConnection, prefix: &str) -> Result<bool, EngineError> {
    let pattern = format!("{}*", escape_glob(prefix));
    let mut cursor: u64 = 0;
    let mut examined = 0;
    loop {
        let (next, keys) = scan_page(conn, cursor, &pattern).await?;
        if !keys.is_empty() {
            return Ok(true);
        }
        examined += SCAN_COUNT;
        cursor = next;
        if cursor == 0 || examined >= MAX_VIOLATORS {
            return Ok(false);
        }
    }
}

/// Escapes Redis glob characters so a prefix matches itself only (the
/// hash-tag form `{acme}:` has none, but a prefix may).
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The SHA-256 hex digest Redis keeps for a password.
pub fn password_hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

async fn read_user(
    conn: &mut MultiplexedConnection,
    tenant: &Tenant,
) -> Result<Option<AclUser>, EngineError> {
    let reply: Value = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(&tenant.user)
        .query_async(conn)
        .await
        .map_err(driver_error("reading the ACL user"))?;
    if matches!(reply, Value::Nil) {
        return Ok(None);
    }
    let mut flags = Vec::new();
    let mut passwords = Vec::new();
    let mut commands = String::new();
    let mut keys = Vec::new();
    let mut channels = Vec::new();
    for (field, value) in pairs(reply) {
        match field.as_str() {
            "flags" => flags = strings(value),
            "passwords" => passwords = strings(value),
            "commands" => commands = strings(value).join(" "),
            "keys" => keys = strings(value),
            "channels" => channels = strings(value),
            _ => {}
        }
    }
    let relative = |list: Vec<String>, sigil: &str| -> Vec<String> {
        let mut out: Vec<String> = list
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(|p| {
                p.strip_prefix(sigil)
                    .and_then(|bare| bare.strip_prefix(tenant.prefix.as_str()))
                    .map(str::to_string)
                    // Outside the tenant's prefix: never equal to a declared pattern.
                    .unwrap_or_else(|| format!("(outside the prefix) {p}"))
            })
            .collect();
        out.sort();
        out
    };
    let on = flags.iter().any(|f| f == "on");
    let nopass = flags.iter().any(|f| f == "nopass");
    let password_env = match &tenant.password {
        Some((var, hash)) if passwords.len() == 1 && &passwords[0] == hash && !nopass => {
            Some(var.clone())
        }
        None if passwords.is_empty() && !nopass => None,
        _ => Some("(another password)".into()),
    };
    Ok(Some(AclUser {
        commands: if on {
            commands
        } else {
            format!("(disabled) {commands}")
        },
        password_env,
        keys: relative(keys, "~"),
        channels: relative(channels, "&"),
    }))
}

/// Field/value pairs of a RESP2 flat array or a RESP3 map.
fn pairs(value: Value) -> Vec<(String, Value)> {
    match value {
        Value::Map(map) => map
            .into_iter()
            .map(|(k, v)| (strings(k).join(""), v))
            .collect(),
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((strings(k).join(""), v));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every string in a reply (one for a string, each item of an array).
fn strings(value: Value) -> Vec<String> {
    match value {
        Value::BulkString(b) => vec![String::from_utf8_lossy(&b).into_owned()],
        Value::SimpleString(s) => vec![s],
        Value::VerbatimString { text, .. } => vec![text],
        Value::Array(items) | Value::Set(items) => items.into_iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The command rules the server reports for `rules` (it may reorder or
/// compact them), read back from a scratch user that is deleted again.
pub async fn normalize_rules(
    conn: &mut MultiplexedConnection,
    rules: &str,
    scratch: &str,
) -> Result<String, String> {
    let mut set = redis::cmd("ACL");
    set.arg("SETUSER").arg(scratch).arg("reset");
    for rule in rules.split_whitespace() {
        set.arg(rule);
    }
    let result: Result<(), _> = set.query_async(conn).await;
    if let Err(e) = result {
        return Err(e.to_string());
    }
    let reply: Result<Value, _> = redis::cmd("ACL")
        .arg("GETUSER")
        .arg(scratch)
        .query_async(conn)
        .await;
    let _: Result<i64, _> = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(scratch)
        .query_async(conn)
        .await;
    let reply = reply.map_err(|e| e.to_string())?;
    Ok(pairs(reply)
        .into_iter()
        .find(|(k, _)| k == "commands")
        .map(|(_, v)| strings(v).join(" "))
        .unwrap_or_default())
}
