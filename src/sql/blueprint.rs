//! Splitting a blueprint's SQL file into statements with their positions, and
//! refusing what is not a declaration (the rules are in [`super::safety`]).

use sqlparser::ast::Statement;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token};

use super::SqlDialect;
use super::safety::{self, Verdict, classify};
use crate::diagnostic::Position;

/// One statement of a blueprint, with its source text and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// The statement as written (without the trailing `;`).
    pub text: String,
    pub position: Position,
    /// What it declares, e.g. `CREATE TABLE`.
    pub kind: String,
}

/// Splits and checks `source`. Returns every statement that parsed and is a
/// schema definition, and an error for every one that is not.
pub fn parse_blueprint(
    source: &str,
    dialect: SqlDialect,
) -> (Vec<SqlStatement>, Vec<(Position, String)>) {
    let mut statements = Vec::new();
    let mut errors = Vec::new();
    let d = dialect.parser_dialect();
    let mut parser = match Parser::new(d.as_ref()).try_with_sql(source) {
        Ok(p) => p,
        Err(e) => {
            errors.push(error_position(&e, Position { line: 1, column: 1 }));
            return (statements, errors);
        }
    };
    let offsets = LineOffsets::new(source);
    // PostgreSQL: functions the blueprint creates, and the table expressions
    // the server evaluates at CREATE TABLE, checked against each other last.
    let mut functions = Vec::new();
    let mut evaluated = Vec::new();
    // PostgreSQL: statements through which a function is called unnamed.
    let mut unnamed = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let first = parser.peek_token();
        if first.token == Token::EOF {
            break;
        }
        let start = position(first.span.start);
        match parser.parse_statement() {
            Ok(statement) => {
                // sqlparser stops a materialized view before `WITH [NO] DATA`.
                let mut with_data = None;
                if matches!(&statement, Statement::CreateView(v) if v.materialized) {
                    if parser.parse_keywords(&[Keyword::WITH, Keyword::NO, Keyword::DATA]) {
                        with_data = Some(false);
                    } else if parser.parse_keywords(&[Keyword::WITH, Keyword::DATA]) {
                        with_data = Some(true);
                    }
                }
                let next = parser.peek_token();
                if !matches!(next.token, Token::SemiColon | Token::EOF) {
                    let begin = offsets.byte_offset(source, first.span.start);
                    let end = skip_statement(&mut parser)
                        .map_or(source.len(), |loc| offsets.byte_offset(source, loc));
                    // A refused statement sqlparser only read part of
                    // (`SELECT … INTO OUTFILE`, `VACUUM INTO`) is reported
                    // under its rule, not as a syntax error.
                    let refused = safety::refused_unparsed(&source[begin..end], dialect).or(
                        match classify(&statement, dialect) {
                            Verdict::Refuse(kind) => Some(kind),
                            _ => None,
                        },
                    );
                    errors.push(match refused {
                        Some(kind) => (start, safety::message(kind)),
                        None => (
                            position(next.span.start),
                            format!("expected ';' after the statement, found {}", next.token),
                        ),
                    });
                    continue;
                }
                let end = match next.token {
                    Token::EOF => source.len(),
                    _ => offsets.byte_offset(source, next.span.start),
                };
                let begin = offsets.byte_offset(source, first.span.start);
                let text = source[begin..end].trim_end();
                if dialect == SqlDialect::Postgres {
                    functions.extend(safety::created_function(&statement));
                    evaluated.extend(safety::build_evaluated(&statement).map(|e| {
                        // sqlparser reads `U&"…"` as `U & "…"`: keep the text's.
                        let raw = if safety::has_unicode_escaped_name(text) {
                            text
                        } else {
                            ""
                        };
                        (start, format!("{e} {raw}"))
                    }));
                    if safety::reaches_functions_unnamed(&statement) {
                        unnamed.push(text.to_string());
                    }
                }
                let verdict = match (classify(&statement, dialect), with_data) {
                    (Verdict::DeclareWith { .. }, Some(true)) => {
                        Verdict::Refuse("materialized view WITH DATA")
                    }
                    (Verdict::DeclareWith { kind, .. }, Some(false)) => Verdict::Declare(kind),
                    (_, _)
                        if dialect == SqlDialect::Mysql && safety::has_executable_comment(text) =>
                    {
                        Verdict::Refuse("executable comment")
                    }
                    (Verdict::Declare(_), _)
                        if dialect == SqlDialect::Mysql && safety::has_definer_clause(text) =>
                    {
                        Verdict::Refuse("DEFINER")
                    }
                    (verdict, _) => verdict,
                };
                match verdict {
                    Verdict::Declare(kind) => statements.push(SqlStatement {
                        text: text.to_string(),
                        position: start,
                        kind,
                    }),
                    Verdict::DeclareWith { kind, suffix } => statements.push(SqlStatement {
                        text: format!("{text}{suffix}"),
                        position: start,
                        kind,
                    }),
                    Verdict::Skip => {}
                    Verdict::Refuse(kind) => errors.push((start, safety::message(kind))),
                }
            }
            Err(e) => {
                let begin = offsets.byte_offset(source, first.span.start);
                let end = skip_statement(&mut parser)
                    .map_or(source.len(), |loc| offsets.byte_offset(source, loc));
                let text = source[begin..end].trim_end();
                if dialect == SqlDialect::Sqlite && is_virtual_table(text) {
                    // Module arguments are free-form tokens in SQLite's grammar
                    // (`fts5(body, content=notes)`), beyond sqlparser; SQLite
                    // itself checks them when the blueprint is run in memory.
                    statements.push(SqlStatement {
                        text: text.to_string(),
                        position: start,
                        kind: "CREATE VIRTUAL TABLE".into(),
                    });
                } else if let Some(kind) = safety::refused_unparsed(text, dialect) {
                    errors.push((start, safety::message(kind)));
                } else {
                    errors.push(error_position(&e, start));
                }
            }
        }
    }
    // `U&"\0066"` names `f` too: with functions to call, such a name
    // counts as a call.
    let calls = |text: &str| {
        functions
            .iter()
            .any(|f| super::mentions_identifier(text, f))
            || (!functions.is_empty() && safety::has_unicode_escaped_name(text))
    };
    let called_unnamed = unnamed.iter().any(|text| calls(text));
    for (at, expressions) in evaluated {
        if called_unnamed || calls(&expressions) {
            let kind = "blueprint function in a generated column or partition key";
            errors.push((at, safety::message(kind)));
        }
    }
    (statements, errors)
}

fn position(loc: Location) -> Position {
    Position {
        line: loc.line as usize,
        column: loc.column as usize,
    }
}

/// Skips to the end of the current statement so parsing can go on after an
/// error; returns where the terminating `;` starts (`None` at the end of input).
fn skip_statement(parser: &mut Parser) -> Option<Location> {
    loop {
        let t = parser.next_token();
        match t.token {
            Token::SemiColon => return Some(t.span.start),
            Token::EOF => return None,
            _ => {}
        }
    }
}

/// `CREATE VIRTUAL TABLE ...`, whatever the spacing and case.
fn is_virtual_table(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .take(3)
        .map(str::to_uppercase)
        .collect();
    words == ["CREATE", "VIRTUAL", "TABLE"]
}

/// sqlparser puts the location in the message (`... at Line: 3, Column: 7`):
/// lift it out so the diagnostic reads `file:3:7: ...`.
fn error_position(error: &ParserError, fallback: Position) -> (Position, String) {
    let text = match error {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m.clone(),
        other => other.to_string(),
    };
    if let Some(at) = text.rfind(" at Line: ") {
        let tail = &text[at + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse().ok());
        let column = parts.next().and_then(|c| c.trim().parse().ok());
        if let (Some(line), Some(column)) = (line, column) {
            return (
                Position { line, column },
                format!("SQL syntax: {}", &text[..at]),
            );
        }
    }
    (fallback, format!("SQL syntax: {text}"))
}

/// Byte offset of the start of each line, to turn sqlparser locations
/// (1-based line, 1-based character column) into string slices.
pub(crate) struct LineOffsets(Vec<usize>);

impl LineOffsets {
    pub(crate) fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    pub(crate) fn byte_offset(&self, source: &str, loc: Location) -> usize {
        let Some(&line_start) = self.0.get((loc.line as usize).saturating_sub(1)) else {
            return source.len();
        };
        source[line_start..]
            .char_indices()
            .nth((loc.column as usize).saturating_sub(1))
            .map(|(i, _)| line_start + i)
            .unwrap_or(source.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_positions_and_keeps_trigger_bodies() {
        let sql = "CREATE TABLE a (id INTEGER PRIMARY KEY);\n\n  CREATE TRIGGER t AFTER INSERT ON a BEGIN\n    UPDATE a SET id = id; SELECT CASE WHEN 1 THEN 2 END;\n  END;\nCREATE INDEX i ON a (id)";
        let (stmts, errors) = parse_blueprint(sql, SqlDialect::Sqlite);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(stmts.len(), 3);
        assert_eq!(stmts[1].position, Position { line: 3, column: 3 });
        assert!(stmts[1].text.ends_with("END"), "{}", stmts[1].text);
        assert_eq!(stmts[2].kind, "CREATE INDEX");
    }

    #[test]
    fn sqlite_virtual_tables_pass_as_written() {
        let sql = "CREATE VIRTUAL TABLE docs USING fts5(body, content=notes, content_rowid=id);\nCREATE TABLE x (id INT,, y INT);";
        let (stmts, errors) = parse_blueprint(sql, SqlDialect::Sqlite);
        assert_eq!(stmts.len(), 1);
        assert_eq!(
            stmts[0].text,
            "CREATE VIRTUAL TABLE docs USING fts5(body, content=notes, content_rowid=id)"
        );
        assert_eq!(errors.len(), 1, "other syntax errors are still reported");
        let (_, errors) = parse_blueprint(
            "CREATE VIRTUAL TABLE d USING fts5(a, b=c)",
            SqlDialect::Postgres,
        );
        assert_eq!(errors.len(), 1, "only SQLite has virtual tables");
    }

    #[test]
    fn reports_every_error() {
        let sql = "CREATE TABLE a (id INT,, b INT);\nINSERT INTO a VALUES (1);\nDROP TABLE b;\nCREATE TABLE ok (id INT);";
        let (stmts, errors) = parse_blueprint(sql, SqlDialect::Sqlite);
        assert_eq!(stmts.len(), 1);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(
            errors[0].0,
            Position {
                line: 1,
                column: 24
            }
        );
        assert_eq!(errors[1].0.line, 2);
        assert!(errors[2].1.contains("DROP"));
    }
}
