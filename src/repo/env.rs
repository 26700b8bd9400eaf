//! `${VAR}` / `${VAR:-default}` expansion and secret redaction.

/// Expands `${VAR}` and `${VAR:-default}` in `template` with `lookup`.
/// A variable that is unset (and has no default) is an error naming it.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed '${{' in {:?}", redact(template)))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {name:?} in ${{...}}"));
        }
        match lookup(name)
            .filter(|v| !v.is_empty())
            .or_else(|| default.map(str::to_string))
        {
            Some(value) => out.push_str(&value),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands from the process environment.
pub fn expand_env(template: &str) -> Result<String, String> {
    expand(template, |name| std::env::var(name).ok())
}

/// Replaces the password of a URL (`scheme://user:PASSWORD@host`) and any
/// `password=` query parameter with `***`, so a URL can be printed.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let auth_start = scheme_end + 3;
        let host_end = out[auth_start..]
            .find('/')
            .map_or(out.len(), |i| auth_start + i);
        if let Some(at) = out[auth_start..host_end].rfind('@') {
            let userinfo = &out[auth_start..auth_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(auth_start + colon + 1..auth_start + at, "***");
            }
        }
    }
    for key in ["password=", "pass="] {
        let mut search = 0;
        while let Some(found) = out[search..].to_lowercase().find(key) {
            let value_start = search + found + key.len();
            let value_end = out[value_start..]
                .find('&')
                .map_or(out.len(), |i| value_start + i);
            out.replace_range(value_start..value_end, "***");
            search = value_start + 3;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "HOST").then(|| "db.local".to_string())
    }

    #[test]
    fn expands_and_defaults() {
        assert_eq!(expand("pg://${HOST}/x", lookup).unwrap(), "pg://db.local/x");
        assert_eq!(expand("${PORT:-5432}", lookup).unwrap(), "5432");
        assert!(
            expand("${MISSING}", lookup)
                .unwrap_err()
                .contains("MISSING")
        );
        assert!(expand("${HOST", lookup).is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact("mysql://h/db?user=u&password=s3cret&x=1"),
            "mysql://h/db?user=u&password=***&x=1"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
