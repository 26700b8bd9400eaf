//! Turns the difference between a tenant's live key-value state and its
//! blueprint into steps whose statements are Redis commands in `redis-cli`
//! syntax, quoted like a shell, which the engine parses back and runs. The
//! password never appears: a statement says `#<sha256 of $VAR>` and the
//! engine puts the hash in when it runs it.

use crate::diff::Step;
use crate::diff::{Hazard, HazardKind};
use crate::engine::EngineError;
use crate::model::keyvalue::{AclUser, KeyValueSchema};

/// Prefix and user shown when the tenant has nothing live yet (plan only).
const PLACEHOLDER_USER: &str = "<tenant>";

/// The steps turning `live` into `declared`.
pub fn plan(live: &KeyValueSchema, declared: &KeyValueSchema) -> Result<Vec<Step>, EngineError> {
    let (prefix, user) = match &live.target {
        Some(t) => (t.prefix.clone(), t.user.clone()),
        None if declared.hash_tag => (
            format!("{{{PLACEHOLDER_USER}}}:"),
            PLACEHOLDER_USER.to_string(),
        ),
        None => (format!("{PLACEHOLDER_USER}:"), PLACEHOLDER_USER.to_string()),
    };
    let mut steps = Vec::new();
    match (&live.acl, &declared.acl) {
        (have, Some(want)) if have.as_ref().map(sorted) != Some(sorted(want)) => {
            steps.push(set_user(&user, &prefix, want, have.is_some())?);
        }
        (Some(_), None) => steps.push(Step {
            description: format!("delete ACL user {user} (no acl in the blueprint)"),
            hazards: vec![Hazard::new(
                HazardKind::Destructive,
                "delete-acl-user",
                format!("clients logging in as {user} are refused from now on"),
            )],
            statements: vec![join(&["ACL", "DELUSER", &user])?],
        }),
        _ => {}
    }
    for policy in &live.ttl {
        let declared_policy = declared.ttl.iter().find(|p| p.pattern == policy.pattern);
        let Some(want) = declared_policy else {
            continue;
        };
        if policy.violators.is_empty() {
            continue;
        }
        let seconds = want.max_seconds.to_string();
        let statements = policy
            .violators
            .iter()
            .map(|key| join(&["EXPIRE", &format!("{prefix}{key}"), &seconds, "LT"]))
            .collect::<Result<Vec<_>, _>>()?;
        steps.push(Step {
            description: format!(
                "expire {} key(s) matching {prefix}{} within {}s (TTL policy)",
                statements.len(),
                want.pattern,
                want.max_seconds
            ),
            hazards: Vec::new(),
            statements,
        });
    }
    for (key, value) in &declared.defaults {
        if !live.defaults.contains_key(key) {
            steps.push(Step {
                description: format!("create default key {prefix}{key} (kept if it exists)"),
                hazards: Vec::new(),
                statements: vec![join(&["SET", &format!("{prefix}{key}"), value, "NX"])?],
            });
        }
    }
    Ok(steps)
}

fn sorted(acl: &AclUser) -> AclUser {
    let mut acl = acl.clone();
    acl.keys.sort();
    acl.channels.sort();
    acl
}

/// The name of the variable holding `user`'s password.
pub fn password_var(template: &str, user: &str) -> String {
    template.replace("{tenant}", &user.to_uppercase())
}

/// The token standing for the hash of the password in `var`.
fn password_token(var: &str) -> String {
    format!("#<sha256 of ${var}>")
}

/// The environment variable a password token names.
pub fn password_token_var(token: &str) -> Option<&str> {
    token.strip_prefix("#<sha256 of $")?.strip_suffix('>')
}

fn set_user(user: &str, prefix: &str, acl: &AclUser, exists: bool) -> Result<Step, EngineError> {
    let mut tokens: Vec<String> = ["ACL", "SETUSER", user, "reset", "on"]
        .map(String::from)
        .to_vec();
    if let Some(template) = &acl.password_env {
        tokens.push(password_token(&password_var(template, user)));
    }
    tokens.extend(acl.keys.iter().map(|k| format!("~{prefix}{k}")));
    tokens.extend(acl.channels.iter().map(|c| format!("&{prefix}{c}")));
    tokens.extend(acl.commands.split_whitespace().map(String::from));
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    Ok(Step {
        description: format!(
            "{} ACL user {user}: keys and channels under {prefix}, commands {}",
            if exists { "reset" } else { "create" },
            acl.commands
        ),
        hazards: Vec::new(),
        statements: vec![join(&refs)?],
    })
}

fn join(tokens: &[&str]) -> Result<String, EngineError> {
    shlex::try_join(tokens.iter().copied())
        .map_err(|e| EngineError::Other(format!("cannot quote a Redis command: {e}")))
}

/// A statement's tokens, checked to be a command tenantctl plans, on the
/// tenant's own user and keys only.
pub fn parse_statement(statement: &str, user: &str, prefix: &str) -> Result<Vec<String>, String> {
    let tokens =
        shlex::split(statement).ok_or_else(|| format!("unreadable statement: {statement}"))?;
    let own_key = |k: &String| k.starts_with(prefix);
    let ok = match tokens
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ACL", "SETUSER", u, rest @ ..] => {
            *u == user
                && rest.iter().all(|t| {
                    !(t.starts_with('~') || t.starts_with('&') || t.starts_with('%'))
                        || t[1..].starts_with(prefix)
                })
                && !rest
                    .iter()
                    .any(|t| matches!(*t, "allkeys" | "allchannels" | "nopass"))
                && rest.iter().all(|t| {
                    !t.starts_with('>') && (!t.starts_with('#') || password_token_var(t).is_some())
                })
        }
        ["ACL", "DELUSER", u] => *u == user,
        ["EXPIRE", _, seconds, "LT"] => own_key(&tokens[1]) && seconds.parse::<u64>().is_ok(),
        ["SET", _, _, "NX"] => own_key(&tokens[1]),
        _ => false,
    };
    if ok {
        Ok(tokens)
    } else {
        Err(format!(
            "refusing to run `{statement}`: not a command tenantctl plans for user {user} and prefix {prefix}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::keyvalue::{KeyValueTarget, TtlPolicy, parse};

    #[test]
    fn plans_user_ttl_fixes_and_missing_defaults() {
        let declared = parse(
            r#"{"acl": {"commands": "+@all -@dangerous", "password_env": "PW_{tenant}"},
                "ttl": [{"pattern": "s:*", "max_seconds": 60}],
                "defaults": {"flag": "on", "there": "x"}}"#,
        )
        .unwrap();
        let mut live = KeyValueSchema {
            target: Some(KeyValueTarget {
                prefix: "acme:".into(),
                user: "acme".into(),
            }),
            ..Default::default()
        };
        live.ttl.push(TtlPolicy {
            pattern: "s:*".into(),
            max_seconds: 60,
            violators: vec!["s:1".into()],
        });
        live.defaults.insert("there".into(), "x".into());
        let steps = plan(&live, &declared).unwrap();
        let all: Vec<&String> = steps.iter().flat_map(|s| &s.statements).collect();
        assert_eq!(
            all[0],
            "ACL SETUSER acme reset on '#<sha256 of $PW_ACME>' '~acme:*' '&acme:*' +@all -@dangerous"
        );
        assert_eq!(all[1], "EXPIRE acme:s:1 60 LT");
        assert_eq!(all[2], "SET acme:flag on NX");
        for s in all {
            parse_statement(s, "acme", "acme:").unwrap();
        }
        assert!(parse_statement("SET other:flag on NX", "acme", "acme:").is_err());
        assert!(parse_statement("ACL SETUSER acme '~*'", "acme", "acme:").is_err());
        assert!(parse_statement("FLUSHALL", "acme", "acme:").is_err());
    }
}
