//! SQL shared by the SQL engines: splitting and checking blueprint files with
//! sqlparser, normalising expressions so that both sides of a diff compare
//! equal when the server considers them equal, and quoting.

mod blueprint;
pub mod safety;

pub use blueprint::{SqlStatement, parse_blueprint};

use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// The SQL dialect a blueprint is written in, one per SQL engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl SqlDialect {
    pub(crate) fn parser_dialect(self) -> Box<dyn Dialect> {
        match self {
            SqlDialect::Sqlite => Box::new(SQLiteDialect {}),
            SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
            SqlDialect::Mysql => Box::new(MySqlDialect {}),
        }
    }
}

/// Quotes an identifier with double quotes (SQLite, PostgreSQL), doubling any
/// embedded quote, so no name from a repository can break out of it.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal with single quotes, doubling embedded quotes.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Collapses runs of whitespace outside string literals into one space.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_quote: Option<char> = None;
    let mut pending_space = false;
    for c in text.trim().chars() {
        match in_quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    in_quote = None;
                }
            }
            None if c.is_whitespace() => pending_space = true,
            None => {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                if c == '\'' || c == '"' || c == '`' {
                    in_quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Canonical text of an SQL expression: parsed and printed back by sqlparser,
/// so `now( )`, `NOW()` spacing and redundant whitespace compare equal. Falls
/// back to whitespace-collapsed text when the expression does not parse.
pub fn normalize_expr(text: &str, dialect: SqlDialect) -> String {
    let d = dialect.parser_dialect();
    Parser::new(d.as_ref())
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map(|e| e.to_string())
        .unwrap_or_else(|_| collapse_whitespace(text))
}

/// Canonical text of a whole statement, as [`normalize_expr`] does for expressions.
pub fn normalize_statement(text: &str, dialect: SqlDialect) -> String {
    let d = dialect.parser_dialect();
    Parser::parse_sql(d.as_ref(), text)
        .ok()
        .filter(|s| s.len() == 1)
        .map(|s| s[0].to_string())
        .unwrap_or_else(|| collapse_whitespace(text))
}

/// Whether `sql` mentions the identifier `name` (case-insensitively) as a
/// word token: used to find the views and triggers that depend on a table.
/// For a qualified name (`billing.invoices`) the object's own name is looked
/// for, so a mention through the search path counts too.
pub fn mentions_identifier(sql: &str, name: &str) -> bool {
    let name = name.rsplit_once('.').map_or(name, |(_, object)| object);
    match Tokenizer::new(&GenericDialect {}, sql).tokenize() {
        Ok(tokens) => tokens
            .iter()
            .any(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case(name))),
        Err(_) => sql.to_lowercase().contains(&name.to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_cannot_be_escaped() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn expressions_normalise() {
        let d = SqlDialect::Sqlite;
        assert_eq!(
            normalize_expr("length( a )>0", d),
            normalize_expr("length(a) > 0", d)
        );
        assert_eq!(collapse_whitespace("  a \n  b 'x  y' "), "a b 'x  y'");
    }

    #[test]
    fn finds_mentions() {
        assert!(mentions_identifier("SELECT * FROM Orders o", "orders"));
        assert!(mentions_identifier("SELECT * FROM \"orders\"", "orders"));
        assert!(!mentions_identifier("SELECT 'orders' FROM x", "orders"));
        assert!(mentions_identifier(
            "SELECT id FROM billing.invoices",
            "billing.invoices"
        ));
    }
}

/// Replaces the name in `CREATE [TEMP] TABLE|INDEX|VIEW [IF NOT EXISTS] name ...`
/// with `new_name` (already quoted), keeping the rest of the text as written.
pub fn rename_created_object(ddl: &str, new_name: &str) -> Option<String> {
    let tokens = Tokenizer::new(&GenericDialect {}, ddl)
        .tokenize_with_location()
        .ok()?;
    let mut words = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)));
    let mut name_start = None;
    for t in words.by_ref() {
        if let Token::Word(w) = &t.token {
            let kw = w.value.to_uppercase();
            if w.quote_style.is_none()
                && matches!(
                    kw.as_str(),
                    "CREATE"
                        | "TEMP"
                        | "TEMPORARY"
                        | "VIRTUAL"
                        | "TABLE"
                        | "UNIQUE"
                        | "INDEX"
                        | "VIEW"
                        | "IF"
                        | "NOT"
                        | "EXISTS"
                )
            {
                continue;
            }
            name_start = Some(t);
            break;
        }
        return None;
    }
    let first = name_start?;
    let mut last = first;
    let rest: Vec<_> = words.collect();
    let mut i = 0;
    while i + 1 < rest.len()
        && rest[i].token == Token::Period
        && matches!(rest[i + 1].token, Token::Word(_))
    {
        last = rest[i + 1];
        i += 2;
    }
    let offsets = blueprint::LineOffsets::new(ddl);
    let start = offsets.byte_offset(ddl, first.span.start);
    let end = offsets.byte_offset(ddl, last.span.end);
    Some(format!("{}{}{}", &ddl[..start], new_name, &ddl[end..]))
}

#[cfg(test)]
mod rename_tests {
    use super::rename_created_object;

    #[test]
    fn renames_only_the_name() {
        assert_eq!(
            rename_created_object(
                "CREATE TABLE \"orders\" (id INT REFERENCES orders(id))",
                "\"tmp\""
            )
            .unwrap(),
            "CREATE TABLE \"tmp\" (id INT REFERENCES orders(id))"
        );
        assert_eq!(
            rename_created_object("CREATE TABLE IF NOT EXISTS main.orders(\n id INT)", "x")
                .unwrap(),
            "CREATE TABLE IF NOT EXISTS x(\n id INT)"
        );
    }
}
