//! Validation of the names users give to tenants, blueprints and servers.
//!
//! Names end up in database names, key prefixes and file names, so they are
//! restricted to `^[a-z][a-z0-9_]*$` and a length every engine accepts.

/// The longest name accepted: PostgreSQL truncates identifiers at 63 bytes and
/// a tenant database name is `{blueprint}__{tenant}`.
pub const MAX_NAME_LEN: usize = 30;

/// The prefix of tenantctl's own objects in tenant databases; introspection skips them.
pub const RESERVED_PREFIX: &str = "_tenantctl_";
/// The history table/collection in every tenant database.
pub const HISTORY_TABLE: &str = "_tenantctl_history";

/// Checks a tenant, blueprint or server name; the error says what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("name is empty".into()),
        Some(c) if !c.is_ascii_lowercase() => {
            return Err(format!(
                "name {name:?} must start with a lowercase letter (allowed: ^[a-z][a-z0-9_]*$)"
            ));
        }
        _ => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "name {name:?} contains {bad:?}; only lowercase letters, digits and '_' are allowed (^[a-z][a-z0-9_]*$)"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "name {name:?} is longer than {MAX_NAME_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn accepts_and_rejects() {
        assert!(check_name("acme").is_ok());
        assert!(check_name("acme_2").is_ok());
        for bad in [
            "",
            "Acme",
            "2acme",
            "ac-me",
            "acme;drop",
            "a b",
            &"a".repeat(31),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
