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

/// What a redacted secret is replaced with.
pub const REDACTED: &str = "***";

/// Query parameter names (lowercase substrings) whose values are secrets:
/// `password`, `pass`, `pwd`, `sslpassword`, `sslkey`, `api_key`, `token`,
/// `secret`, `authMechanismProperties`, ...
const SECRET_PARAMS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "signature",
    "sig",
];

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// A URL safe to print: parsed with the `url` crate (WHATWG rules, as the
/// drivers parse it), the password of the user info, the value of every query
/// parameter that carries a secret (see [`SECRET_PARAMS`]) and any fragment
/// become `***`. A URL that does not parse is shown as its scheme plus `***`,
/// never partially; a bare `${VAR}` template is shown as is.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return unparsable(url);
    };
    if parsed.password().is_some() && parsed.set_password(Some(REDACTED)).is_err() {
        return unparsable(url);
    }
    if parsed.query_pairs().any(|(k, _)| is_secret_param(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    REDACTED.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some(REDACTED));
    }
    // The serializer percent-encodes `*` in a query; show it plainly.
    parsed.to_string().replace("%2A%2A%2A", REDACTED)
}

/// `scheme://***` for a URL that does not parse, `***` without a scheme.
fn unparsable(url: &str) -> String {
    if is_bare_template(url) {
        return url.to_string();
    }
    match url.split_once(':') {
        Some((scheme, _)) if is_scheme(scheme) => format!("{scheme}://{REDACTED}"),
        _ => REDACTED.to_string(),
    }
}

/// `${VAR}` or `${A}${B}`: only placeholders, no secret in sight.
fn is_bare_template(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix("${") else {
            return false;
        };
        let Some(end) = inner.find('}') else {
            return false;
        };
        if !inner[..end]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return false;
        }
        rest = &inner[end + 1..];
    }
    true
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Redacts every URL (`scheme://...`, up to the next whitespace) quoted in
/// free text such as a driver's error message, with [`redact`]. Text without
/// a secret is returned unchanged.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let scheme_start = rest[..found]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(found, |(i, _)| i);
        let end = rest[found..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |i| found + i);
        let token = &rest[scheme_start..end];
        // Punctuation that closes the sentence or a quote is not part of the URL.
        let url = token.trim_end_matches(['.', ',', ';', ')', ']', '}', '>', '"', '\'', '`']);
        let url = url.trim_end_matches(':');
        out.push_str(&rest[..scheme_start]);
        if scheme_start == found {
            // `://` without a scheme: nothing a driver parses; keep it.
            out.push_str(token);
        } else {
            let redacted = redact(url);
            if url::Url::parse(url).is_ok_and(|u| u.to_string() == redacted) || redacted == url {
                out.push_str(url);
            } else {
                out.push_str(&redacted);
            }
            out.push_str(&token[url.len()..]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
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

    /// Passwords a user may write, encoded or not, including the characters
    /// that end a URL part (`/ @ : % # ? &`) and non-ASCII.
    const PASSWORDS: &[&str] = &[
        "s3cret",
        "pa/ss",
        "pa@ss",
        "pa:ss",
        "pa%ss",
        "pa#ss",
        "pa?ss",
        "pa&ss",
        "pä§wörd",
        "p/@:%#?&ä",
        "%2F%40",
        "x",
        "***x",
    ];

    fn assert_hidden(shown: &str, password: &str) {
        let encoded =
            percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let pieces = [password.to_string(), encoded];
        for piece in pieces.iter().filter(|p| p.len() > 2) {
            assert!(
                !shown.contains(piece.as_str()),
                "{piece:?} shown in {shown:?}"
            );
        }
    }

    #[test]
    fn redacts_every_password_raw_or_encoded() {
        for password in PASSWORDS {
            let encoded =
                percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            for scheme in ["postgres", "mysql", "mongodb", "redis"] {
                for pw in [password.to_string(), encoded.clone()] {
                    for url in [
                        format!("{scheme}://user:{pw}@db.local:1234/app"),
                        format!("{scheme}://:{pw}@db.local/app"),
                        format!("{scheme}://ünïcode:{pw}@hôst.local/app"),
                        format!("{scheme}://db.local/app?user=u&password={pw}&x=1"),
                        format!("{scheme}://h/app?ünï=1&sslpassword={pw}"),
                        format!("{scheme}://h/app?api_key={pw}"),
                        format!("{scheme}://h/app?TOKEN={pw}"),
                    ] {
                        let shown = redact(&url);
                        assert_hidden(&shown, password);
                        assert!(shown.starts_with(&format!("{scheme}://")), "{shown}");
                        let in_text = redact_text(&format!("error: cannot reach ({url}): refused"));
                        assert_hidden(&in_text, password);
                        assert!(in_text.starts_with("error: cannot reach ("), "{in_text}");
                    }
                }
            }
        }
    }

    #[test]
    fn unparsable_urls_show_only_their_scheme() {
        assert_eq!(redact("postgres://u:pa/ss@h/db"), "postgres://***");
        assert_eq!(redact("not a url with password=x"), "***");
        assert_eq!(redact("${PG_URL}"), "${PG_URL}");
        assert_eq!(redact("postgres://u@h:99999/db"), "postgres://***");
    }

    #[test]
    fn keeps_what_is_not_secret() {
        assert_eq!(
            redact("postgres://u@h:5432/db?sslmode=require"),
            "postgres://u@h:5432/db?sslmode=require"
        );
        let text = "see https://example.com/docs, or postgres://u@h/db.";
        assert_eq!(redact_text(text), text);
        assert_eq!(
            redact_text("\"mysql://root:pw@127.0.0.1:3306/x\""),
            "\"mysql://root:***@127.0.0.1:3306/x\""
        );
        assert_eq!(redact_text("no urls here: a://"), "no urls here: a://");
    }
}
