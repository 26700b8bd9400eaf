//! Which statements a blueprint may hold: only declarations reach the server
//! while the declared model is built.
//!
//! Building a model runs the blueprint on a real server (PostgreSQL, MySQL)
//! or in memory (SQLite). Anyone who can push a branch writes blueprint text,
//! and the pull-request job builds models with the fleet's credentials, so a
//! statement that runs a query, calls code, changes the session, ends the
//! build's transaction or reaches outside the scratch area must never be
//! sent. [`classify`] decides on sqlparser's AST; every refusal names a kind
//! of [`REFUSED`], the documented table of kind → reason. What sqlparser
//! cannot parse is refused anyway (as a syntax error); [`refused_unparsed`]
//! only gives those statements their named reason.

use sqlparser::ast::{
    CommentObject, CreateTableOptions, Expr, ForValues, ObjectName, PartitionBoundValue,
    SchemaName, SetExpr, Statement,
};

use super::SqlDialect;

/// Every statement kind a blueprint may not hold, with the reason shown by
/// `validate`. Kept in one table so each rule is named, documented (README
/// "Security model") and unit-tested.
pub const REFUSED: &[(&str, &str)] = &[
    (
        "CREATE TABLE AS",
        "runs its query while the model is built (any function it calls, e.g. dblink_exec, runs too): declare the columns instead",
    ),
    (
        "query",
        "a SELECT, VALUES, WITH or TABLE statement runs a query (and every function it calls) while the model is built",
    ),
    (
        "SELECT INTO",
        "creates a table from a query, running it while the model is built",
    ),
    (
        "SELECT INTO OUTFILE",
        "writes a file on the database server",
    ),
    (
        "DO",
        "runs an anonymous code block while the model is built",
    ),
    ("CALL", "runs a procedure while the model is built"),
    (
        "EXECUTE",
        "runs a prepared statement or dynamic SQL while the model is built",
    ),
    (
        "PREPARE",
        "prepares a statement to run: a blueprint only declares objects",
    ),
    ("EXPLAIN", "EXPLAIN ANALYZE runs the query it explains"),
    (
        "COPY",
        "reads or writes server files and programs, or loads rows",
    ),
    (
        "transaction control",
        "the model is built inside one transaction that is always rolled back: BEGIN, START, COMMIT, END, ROLLBACK, SAVEPOINT and RELEASE would end or split it (a COMMIT would keep what the blueprint built)",
    ),
    (
        "SET",
        "changes the session: SET ROLE, SET SESSION AUTHORIZATION or SET GLOBAL would leave the least-privilege build role or change the server",
    ),
    (
        "RESET",
        "changes the session: RESET ROLE or RESET SESSION AUTHORIZATION would leave the least-privilege build role",
    ),
    (
        "LOCK",
        "takes locks on the server instead of declaring objects",
    ),
    (
        "LISTEN/NOTIFY",
        "sends or waits for notifications instead of declaring objects",
    ),
    (
        "maintenance",
        "VACUUM, ANALYZE, CLUSTER, REINDEX, OPTIMIZE and REFRESH MATERIALIZED VIEW run work on data, not declarations (SQLite's VACUUM INTO writes a file)",
    ),
    (
        "LOAD",
        "loads a shared library or a data file into the server",
    ),
    (
        "server administration",
        "CHECKPOINT, DISCARD, SECURITY LABEL, ALTER SYSTEM, FLUSH, KILL and SHUTDOWN act on the server or session, not on the tenant schema",
    ),
    (
        "materialized view WITH DATA",
        "materialized views are built WITH NO DATA, so their query never runs while the model is built: leave out WITH DATA (a tenant's view is filled when it is created there)",
    ),
    (
        "CREATE EVENT TRIGGER",
        "runs a function on every later DDL statement, including the build's own",
    ),
    (
        "replication",
        "CREATE PUBLICATION and CREATE SUBSCRIPTION connect servers to each other",
    ),
    (
        "foreign data",
        "foreign servers, wrappers, user mappings, foreign tables and IMPORT FOREIGN SCHEMA reach other databases from the scratch area",
    ),
    (
        "cluster object",
        "databases, roles, users, tablespaces, secrets, languages and MySQL schemas are managed by tenantctl and the server set-up, not by blueprints",
    ),
    (
        "CREATE SCHEMA AUTHORIZATION",
        "names an owner: objects are owned by the role that applies the blueprint",
    ),
    (
        "COMMENT ON cluster object",
        "comments on databases, roles and users change objects outside the tenant schema",
    ),
    (
        "untrusted language",
        "functions in C, internal or untrusted (`…u`) languages run native or unsandboxed code on the server",
    ),
    (
        "partition bound expression",
        "the server evaluates partition bound expressions when the table is created: write constants",
    ),
    (
        "blueprint function in a generated column or partition key",
        "PostgreSQL runs an IMMUTABLE function with constant arguments while it creates the table: call only built-in functions there (an operator, operator class, domain or type that calls a blueprint function counts too, and so do a partition's bounds, which the server coerces to the key's type and compares with its operator class)",
    ),
    (
        "other database",
        "names an object in another database: a MySQL blueprint declares objects of its own database only",
    ),
    (
        "DEFINER",
        "a DEFINER clause runs the object with another account's rights: objects run as the account that applies the blueprint",
    ),
    (
        "table storage outside the database",
        "DATA DIRECTORY, INDEX DIRECTORY, CONNECTION and the FEDERATED, CONNECT, MERGE and SPIDER engines put or read data outside the database",
    ),
    (
        "executable comment",
        "MariaDB runs the text of a `/*M! … */` comment as SQL, so what it holds would reach the server unchecked: write the statement without it",
    ),
    (
        "USE",
        "switches to another database: a MySQL blueprint declares objects of its own database only",
    ),
    ("HANDLER", "reads rows directly from tables"),
    (
        "INSTALL",
        "installs a server plugin (a shared library) into the server",
    ),
    (
        "CREATE EVENT",
        "schedules code on the server; events cannot be declared in a blueprint",
    ),
    ("ATTACH", "opens (and creates) another database file"),
    ("DETACH", "detaches a database file"),
    (
        "PRAGMA",
        "changes SQLite's settings or runs checks instead of declaring objects",
    ),
    (
        "temporary object",
        "temporary objects do not persist, so they cannot be declared in a blueprint",
    ),
    (
        "data change",
        "changes data, not schema: a blueprint declares the end state with CREATE statements only",
    ),
    (
        "DROP",
        "delete the object's CREATE statement and tenantctl plans the drop",
    ),
    (
        "ALTER",
        "edit the CREATE statement to the end state you want and tenantctl plans the ALTER",
    ),
    (
        "privileges",
        "GRANT and REVOKE are not schema definitions: privileges are not managed by blueprints",
    ),
    (
        "not a declaration",
        "a blueprint holds CREATE (and COMMENT) statements only",
    ),
];

/// The reason of a kind of [`REFUSED`].
pub fn reason(kind: &str) -> &'static str {
    REFUSED
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("not allowed in a blueprint", |(_, r)| r)
}

/// The `validate` message for a refused kind.
pub fn message(kind: &str) -> String {
    format!("{kind} is refused in a blueprint: {}", reason(kind))
}

/// What becomes of one parsed statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A declaration, sent to the server as written; the kind it declares.
    Declare(String),
    /// A declaration sent with `suffix` appended: materialized views are
    /// built `WITH NO DATA`, so their query never runs while building.
    DeclareWith { kind: String, suffix: &'static str },
    /// A known-harmless line of `pg_dump`'s header, never sent to the server.
    Skip,
    /// Refused: a kind of [`REFUSED`].
    Refuse(&'static str),
}

/// The exact `pg_dump` header statements (as sqlparser prints them) that are
/// skipped rather than refused: session settings for the restore, none of
/// which changes a role or what the build can reach.
const PG_DUMP_HEADER: &[&str] = &[
    "SET statement_timeout = 0",
    "SET lock_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
    "SET transaction_timeout = 0",
    "SET client_encoding = 'UTF8'",
    "SET standard_conforming_strings = on",
    "SELECT pg_catalog.set_config('search_path', '', false)",
    "SET check_function_bodies = false",
    "SET xmloption = content",
    "SET client_min_messages = warning",
    "SET row_security = off",
    "SET default_tablespace = ''",
    "SET default_table_access_method = heap",
];

/// Decides what becomes of `statement` in a blueprint of `dialect`.
pub fn classify(statement: &Statement, dialect: SqlDialect) -> Verdict {
    use Verdict::{Declare, Refuse};
    let mysql = dialect == SqlDialect::Mysql;
    let postgres = dialect == SqlDialect::Postgres;
    if postgres && PG_DUMP_HEADER.contains(&statement.to_string().as_str()) {
        return Verdict::Skip;
    }
    // MySQL: `db.t` is always another database than the one being built.
    let foreign = |name: &ObjectName| mysql && name.0.len() > 1;
    match statement {
        Statement::CreateTable(t) => {
            if t.query.is_some() {
                Refuse("CREATE TABLE AS")
            } else if t.temporary {
                Refuse("temporary object")
            } else if foreign(&t.name)
                || t.like.as_ref().is_some_and(|l| foreign(like_name(l)))
                || t.clone.as_ref().is_some_and(foreign)
            {
                Refuse("other database")
            } else if !constant_bounds(t.for_values.as_ref()) {
                Refuse("partition bound expression")
            } else if outside_storage(&t.table_options) {
                Refuse("table storage outside the database")
            } else {
                Declare("CREATE TABLE".into())
            }
        }
        Statement::CreateVirtualTable { .. } => Declare("CREATE VIRTUAL TABLE".into()),
        Statement::CreateIndex(i) => {
            if foreign(&i.table_name) || i.name.as_ref().is_some_and(foreign) {
                Refuse("other database")
            } else {
                Declare("CREATE INDEX".into())
            }
        }
        Statement::CreateView(v) => {
            if v.temporary {
                Refuse("temporary object")
            } else if foreign(&v.name) {
                Refuse("other database")
            } else if v.params.as_ref().is_some_and(|p| p.definer.is_some()) {
                Refuse("DEFINER")
            } else if v.materialized {
                // sqlparser parses neither `WITH DATA` nor `WITH NO DATA`,
                // so the text ends with the query: appending `WITH NO DATA`
                // (on its own line, past any trailing comment) keeps the
                // query from running while the model is built.
                Verdict::DeclareWith {
                    kind: "CREATE MATERIALIZED VIEW".into(),
                    suffix: "\nWITH NO DATA",
                }
            } else {
                Declare("CREATE VIEW".into())
            }
        }
        Statement::CreateSchema { schema_name, .. } => match schema_name {
            _ if mysql => Refuse("cluster object"),
            SchemaName::Simple(_) => Declare("CREATE SCHEMA".into()),
            _ => Refuse("CREATE SCHEMA AUTHORIZATION"),
        },
        Statement::CreateFunction(f) => {
            if f.temporary {
                Refuse("temporary object")
            } else if f.language.as_ref().is_some_and(|l| untrusted(&l.value)) {
                Refuse("untrusted language")
            } else if foreign(&f.name) {
                Refuse("other database")
            } else {
                Declare("CREATE FUNCTION".into())
            }
        }
        Statement::CreateProcedure { language, name, .. } => {
            if language.as_ref().is_some_and(|l| untrusted(&l.value)) {
                Refuse("untrusted language")
            } else if foreign(name) {
                Refuse("other database")
            } else {
                Declare("CREATE PROCEDURE".into())
            }
        }
        Statement::CreateTrigger(t) => {
            if t.temporary {
                Refuse("temporary object")
            } else if foreign(&t.name) || foreign(&t.table_name) {
                Refuse("other database")
            } else {
                Declare("CREATE TRIGGER".into())
            }
        }
        Statement::CreateSequence { temporary, .. } if *temporary => Refuse("temporary object"),
        Statement::CreateSequence { .. } => Declare("CREATE SEQUENCE".into()),
        Statement::CreateType { .. } => Declare("CREATE TYPE".into()),
        Statement::CreateDomain(_) => Declare("CREATE DOMAIN".into()),
        Statement::CreateExtension(_) if postgres => Declare("CREATE EXTENSION".into()),
        Statement::CreatePolicy(_) => Declare("CREATE POLICY".into()),
        Statement::CreateRule(_) => Declare("CREATE RULE".into()),
        Statement::CreateCollation(_) => Declare("CREATE COLLATION".into()),
        Statement::CreateAggregate(_) => Declare("CREATE AGGREGATE".into()),
        Statement::CreateOperator(_)
        | Statement::CreateOperatorFamily(_)
        | Statement::CreateOperatorClass(_) => Declare("CREATE OPERATOR".into()),
        Statement::CreateTextSearch(_) => Declare("CREATE TEXT SEARCH".into()),
        Statement::Comment { object_type, .. } => match object_type {
            CommentObject::Database | CommentObject::Role | CommentObject::User => {
                Refuse("COMMENT ON cluster object")
            }
            _ => Declare("COMMENT".into()),
        },
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(s) if s.into.is_some() => Refuse("SELECT INTO"),
            _ => Refuse("query"),
        },
        Statement::Call(_) => Refuse("CALL"),
        Statement::Execute { .. } => Refuse("EXECUTE"),
        Statement::Prepare { .. } | Statement::Deallocate { .. } => Refuse("PREPARE"),
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Refuse("EXPLAIN"),
        Statement::Copy { .. } | Statement::CopyIntoSnowflake { .. } => Refuse("COPY"),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Refuse("transaction control"),
        Statement::Set(_) => Refuse("SET"),
        Statement::Reset(_) => Refuse("RESET"),
        Statement::Lock(_) | Statement::LockTables { .. } | Statement::UnlockTables => {
            Refuse("LOCK")
        }
        Statement::LISTEN { .. } | Statement::UNLISTEN { .. } | Statement::NOTIFY { .. } => {
            Refuse("LISTEN/NOTIFY")
        }
        Statement::Vacuum(_)
        | Statement::Analyze(_)
        | Statement::OptimizeTable { .. }
        | Statement::RefreshMaterializedView(_) => Refuse("maintenance"),
        Statement::Load { .. } | Statement::LoadData { .. } => Refuse("LOAD"),
        Statement::Discard { .. } | Statement::Flush { .. } | Statement::Kill { .. } => {
            Refuse("server administration")
        }
        Statement::CreateServer(_)
        | Statement::CreateForeignDataWrapper(_)
        | Statement::CreateUserMapping(_)
        | Statement::CreateForeignTable(_) => Refuse("foreign data"),
        Statement::CreateDatabase { .. }
        | Statement::CreateRole(_)
        | Statement::CreateUser(_)
        | Statement::CreateSecret { .. }
        | Statement::CreateExtension(_) => Refuse("cluster object"),
        Statement::Use(_) => Refuse("USE"),
        Statement::Install { .. } => Refuse("INSTALL"),
        Statement::AttachDatabase { .. } | Statement::AttachDuckDBDatabase { .. } => {
            Refuse("ATTACH")
        }
        Statement::DetachDuckDBDatabase { .. } => Refuse("DETACH"),
        Statement::Pragma { .. } => Refuse("PRAGMA"),
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
        | Statement::Truncate(_) => Refuse("data change"),
        Statement::Drop { .. }
        | Statement::DropFunction(_)
        | Statement::DropDomain(_)
        | Statement::DropProcedure { .. }
        | Statement::DropTrigger(_)
        | Statement::DropExtension(_)
        | Statement::DropPolicy(_) => Refuse("DROP"),
        Statement::AlterTable(_)
        | Statement::AlterIndex { .. }
        | Statement::AlterView(_)
        | Statement::AlterType(_)
        | Statement::AlterSchema(_)
        | Statement::AlterFunction(_)
        | Statement::AlterRole { .. }
        | Statement::AlterUser(_)
        | Statement::AlterPolicy(_)
        | Statement::RenameTable(_) => Refuse("ALTER"),
        Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::GrantRole(_)
        | Statement::RevokeRole(_)
        | Statement::AlterDefaultPrivileges(_) => Refuse("privileges"),
        _ => Refuse("not a declaration"),
    }
}

/// The refused kind of a statement sqlparser could not parse, from its
/// leading words, so the syntax error gets the rule's name and reason. The
/// statement is refused either way: this only words the message.
pub fn refused_unparsed(text: &str, dialect: SqlDialect) -> Option<&'static str> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_uppercase)
        .collect();
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let upper = text.to_uppercase();
    let kind = match (dialect, w.as_slice()) {
        (_, ["DO", ..]) => "DO",
        (_, ["TABLE", ..]) => "query",
        (_, ["SELECT" | "WITH", ..])
            if upper.contains(" INTO OUTFILE") || upper.contains(" INTO DUMPFILE") =>
        {
            "SELECT INTO OUTFILE"
        }
        (_, ["SELECT" | "WITH" | "VALUES", ..]) => "query",
        (_, ["CREATE", "TABLE", ..]) if upper.contains(" AS EXECUTE") => "CREATE TABLE AS",
        (_, ["CLUSTER" | "REINDEX" | "OPTIMIZE", ..]) => "maintenance",
        (SqlDialect::Sqlite, ["VACUUM", ..]) => "maintenance",
        (_, ["CHECKPOINT" | "SHUTDOWN", ..])
        | (_, ["SECURITY", "LABEL", ..])
        | (_, ["ALTER", "SYSTEM", ..]) => "server administration",
        (_, ["CREATE", "EVENT", "TRIGGER", ..]) => "CREATE EVENT TRIGGER",
        (_, ["CREATE", "SUBSCRIPTION" | "PUBLICATION", ..]) => "replication",
        (_, ["IMPORT", "FOREIGN", ..]) => "foreign data",
        (_, ["CREATE", "TABLESPACE" | "LANGUAGE", ..])
        | (_, ["CREATE", "TRUSTED" | "OR", "LANGUAGE" | "REPLACE", ..]) => "cluster object",
        (_, ["START" | "BEGIN" | "XA", ..]) => "transaction control",
        (_, ["FETCH" | "MOVE" | "CLOSE", ..]) => "not a declaration",
        (SqlDialect::Mysql, ["CALL", ..]) => "CALL",
        (SqlDialect::Mysql, ["PREPARE", ..]) => "PREPARE",
        (SqlDialect::Mysql, ["HANDLER", ..]) => "HANDLER",
        (SqlDialect::Mysql, ["LOAD", ..]) => "LOAD",
        (SqlDialect::Mysql, ["INSTALL", ..]) => "INSTALL",
        (SqlDialect::Mysql, ["CREATE", ..])
            if w.contains(&"EVENT") && !upper.contains("DEFINER") =>
        {
            "CREATE EVENT"
        }
        (SqlDialect::Mysql, ["CREATE", ..]) if upper.contains("DEFINER") => "DEFINER",
        (SqlDialect::Mysql, ["CREATE", "TABLE", ..])
            if upper.contains("ENGINE=CONNECT") || upper.contains("ENGINE = CONNECT") =>
        {
            "table storage outside the database"
        }
        (SqlDialect::Sqlite, ["DETACH", ..]) => "DETACH",
        (SqlDialect::Sqlite, ["PRAGMA", ..]) => "PRAGMA",
        _ => return None,
    };
    Some(kind)
}

/// Whether a MySQL `CREATE` statement has a `DEFINER = account` clause
/// before the kind of object it creates. sqlparser keeps the clause of a
/// view but drops a trigger's, so the tokens are read.
pub fn has_definer_clause(text: &str) -> bool {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let Ok(tokens) = Tokenizer::new(&sqlparser::dialect::MySqlDialect {}, text).tokenize() else {
        return false;
    };
    let mut tokens = tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)));
    while let Some(t) = tokens.next() {
        let Token::Word(w) = t else { continue };
        if w.quote_style.is_some() {
            continue;
        }
        match w.value.to_uppercase().as_str() {
            "TABLE" | "VIEW" | "TRIGGER" | "PROCEDURE" | "FUNCTION" | "EVENT" | "INDEX" => {
                return false;
            }
            "DEFINER" if matches!(tokens.next(), Some(Token::Eq)) => return true,
            _ => {}
        }
    }
    false
}

/// Whether a MySQL statement holds a comment the server runs as SQL but
/// sqlparser keeps as a comment: MariaDB's `/*M! … */` (and `/*M!###### … */`)
/// form. sqlparser already reads the text of MySQL's `/*! … */` as SQL, so
/// its statements are classified; any such comment it left as a comment is
/// refused too.
pub fn has_executable_comment(text: &str) -> bool {
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    let Ok(tokens) = Tokenizer::new(&sqlparser::dialect::MySqlDialect {}, text).tokenize() else {
        // The statement parsed, so it tokenizes; refuse if it somehow did not.
        return true;
    };
    tokens.iter().any(|t| {
        matches!(t, Token::Whitespace(Whitespace::MultiLineComment(c))
            if c.starts_with('!') || c.starts_with("M!") || c.starts_with("m!"))
    })
}

/// The name (last part) of the function a statement creates.
pub fn created_function(statement: &Statement) -> Option<String> {
    match statement {
        Statement::CreateFunction(f) => f.name.0.last().map(|p| p.to_string()),
        _ => None,
    }
}

/// The expressions of a `CREATE TABLE` that PostgreSQL evaluates while it
/// creates the table, outside a security-restricted context: it folds an
/// IMMUTABLE function with constant arguments in a generated column or a
/// partition key, so such a function runs during the build.
pub fn build_evaluated(statement: &Statement) -> Option<String> {
    use sqlparser::ast::ColumnOption;
    let Statement::CreateTable(t) = statement else {
        return None;
    };
    let mut text: Vec<String> = t
        .columns
        .iter()
        .flat_map(|c| &c.options)
        .filter_map(|o| match &o.option {
            ColumnOption::Generated {
                generation_expr: Some(e),
                ..
            } => Some(e.to_string()),
            _ => None,
        })
        .collect();
    text.extend(t.partition_by.as_ref().map(|e| e.to_string()));
    if t.partition_of.is_some() {
        // The bounds are coerced to the parent's key type and compared with
        // its operator class, which may call blueprint functions by name.
        text.push(String::new());
    }
    (!text.is_empty()).then(|| text.join(" "))
}

/// Whether `text` holds a PostgreSQL Unicode-escaped name (`U&"\0066"`),
/// which can spell any function's name without its letters.
pub fn has_unicode_escaped_name(text: &str) -> bool {
    text.to_ascii_lowercase().contains("u&\"")
}

/// Whether `statement` makes functions callable without naming them: an
/// operator, operator class or family (a partition key's comparisons), a
/// domain (its CHECK) or a type. When such a statement names a blueprint
/// function, every expression the server evaluates at CREATE TABLE may call
/// it, so none is allowed.
pub fn reaches_functions_unnamed(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::CreateOperator(_)
            | Statement::CreateOperatorFamily(_)
            | Statement::CreateOperatorClass(_)
            | Statement::CreateDomain(_)
            | Statement::CreateType { .. }
    )
}

fn like_name(like: &sqlparser::ast::CreateTableLikeKind) -> &ObjectName {
    match like {
        sqlparser::ast::CreateTableLikeKind::Parenthesized(l)
        | sqlparser::ast::CreateTableLikeKind::Plain(l) => &l.name,
    }
}

/// C, `internal` and untrusted (`plpython3u`, `plperlu`, …) languages.
fn untrusted(language: &str) -> bool {
    let l = language.to_lowercase();
    l == "c" || l == "internal" || l.ends_with('u')
}

/// Whether every partition bound is a constant (literals, signed literals,
/// literals cast to a type): anything else is evaluated at CREATE TABLE.
fn constant_bounds(bounds: Option<&ForValues>) -> bool {
    fn constant(e: &Expr) -> bool {
        match e {
            Expr::Value(_) | Expr::TypedString(_) => true,
            Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => constant(expr),
            Expr::Cast { expr, .. } => constant(expr),
            Expr::Identifier(i) => matches!(
                i.value.to_uppercase().as_str(),
                "MINVALUE" | "MAXVALUE" | "TRUE" | "FALSE" | "NULL"
            ),
            _ => false,
        }
    }
    let bound = |b: &PartitionBoundValue| match b {
        PartitionBoundValue::Expr(e) => constant(e),
        PartitionBoundValue::MinValue | PartitionBoundValue::MaxValue => true,
    };
    match bounds {
        None | Some(ForValues::With { .. }) | Some(ForValues::Default) => true,
        Some(ForValues::In(values)) => values.iter().all(constant),
        Some(ForValues::From { from, to }) => from.iter().chain(to).all(bound),
    }
}

/// MySQL table options that put or read the table's data outside its
/// database directory, or on another server.
fn outside_storage(options: &CreateTableOptions) -> bool {
    let list = match options {
        CreateTableOptions::None => return false,
        CreateTableOptions::With(l)
        | CreateTableOptions::Options(l)
        | CreateTableOptions::Plain(l)
        | CreateTableOptions::TableProperties(l) => l,
    };
    const OUTSIDE: &[&str] = &[
        "DATA DIRECTORY",
        "INDEX DIRECTORY",
        "CONNECTION",
        "UNION",
        "ENGINE = FEDERATED",
        "ENGINE = CONNECT",
        "ENGINE = MERGE",
        "ENGINE = MRG_MYISAM",
        "ENGINE = SPIDER",
    ];
    list.iter().any(|o| {
        let shown = o.to_string().to_uppercase();
        OUTSIDE.iter().any(|k| shown.starts_with(k))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_blueprint;

    /// The refused kind of `sql` (one statement), or what it declares.
    fn outcome(sql: &str, dialect: SqlDialect) -> Result<String, String> {
        let (statements, errors) = parse_blueprint(sql, dialect);
        match (statements.as_slice(), errors.as_slice()) {
            ([s], []) => Ok(s.kind.clone()),
            ([], [(_, message)]) => Err(message.clone()),
            ([], []) => Ok("skipped".into()),
            other => panic!("{sql}: {other:?}"),
        }
    }

    fn refused(dialect: SqlDialect, cases: &[(&str, &str)]) {
        for (sql, kind) in cases {
            match outcome(sql, dialect) {
                Err(m) => assert_eq!(m, message(kind), "{sql}"),
                Ok(k) => panic!("{dialect:?}: {sql} was accepted as {k}"),
            }
        }
    }

    fn accepted(dialect: SqlDialect, cases: &[(&str, &str)]) {
        for (sql, kind) in cases {
            assert_eq!(outcome(sql, dialect).as_deref(), Ok(*kind), "{sql}");
        }
    }

    #[test]
    fn every_refused_kind_has_a_reason_and_is_named_once() {
        for (i, (kind, reason)) in REFUSED.iter().enumerate() {
            assert!(!reason.is_empty(), "{kind}");
            assert!(
                REFUSED[i + 1..].iter().all(|(k, _)| k != kind),
                "{kind} twice"
            );
        }
    }

    #[test]
    fn postgres_refuses_what_runs_code_or_escapes_the_scratch_area() {
        refused(
            SqlDialect::Postgres,
            &[
                (
                    "CREATE TABLE x AS SELECT dblink_exec('host=127.0.0.1', 'DROP DATABASE victim') AS r",
                    "CREATE TABLE AS",
                ),
                ("CREATE TABLE x AS EXECUTE p", "CREATE TABLE AS"),
                ("SELECT 1 INTO t", "SELECT INTO"),
                ("SELECT dblink_exec('x', 'DROP DATABASE victim')", "query"),
                ("VALUES (1)", "query"),
                ("WITH a AS (SELECT 1) SELECT * FROM a", "query"),
                ("TABLE items", "query"),
                ("DO $$ BEGIN PERFORM 1; END $$", "DO"),
                ("CALL p()", "CALL"),
                ("EXECUTE p", "EXECUTE"),
                ("PREPARE p AS SELECT 1", "PREPARE"),
                ("DEALLOCATE p", "PREPARE"),
                ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN"),
                ("COPY t FROM '/etc/passwd'", "COPY"),
                ("COPY t TO PROGRAM 'id'", "COPY"),
                ("BEGIN", "transaction control"),
                ("START TRANSACTION", "transaction control"),
                ("COMMIT", "transaction control"),
                ("END", "transaction control"),
                ("ROLLBACK", "transaction control"),
                ("ABORT", "transaction control"),
                ("SAVEPOINT a", "transaction control"),
                ("RELEASE SAVEPOINT a", "transaction control"),
                ("RELEASE a", "transaction control"),
                ("SET ROLE postgres", "SET"),
                ("SET LOCAL ROLE postgres", "SET"),
                ("SET SESSION AUTHORIZATION postgres", "SET"),
                ("SET search_path = other", "SET"),
                ("RESET ROLE", "RESET"),
                ("RESET ALL", "RESET"),
                ("LOCK TABLE t", "LOCK"),
                ("LISTEN c", "LISTEN/NOTIFY"),
                ("NOTIFY c", "LISTEN/NOTIFY"),
                ("UNLISTEN *", "LISTEN/NOTIFY"),
                ("VACUUM", "maintenance"),
                ("ANALYZE t", "maintenance"),
                ("CLUSTER t", "maintenance"),
                ("REINDEX TABLE t", "maintenance"),
                ("REFRESH MATERIALIZED VIEW m", "maintenance"),
                ("LOAD 'plpython3u'", "LOAD"),
                ("CHECKPOINT", "server administration"),
                ("DISCARD ALL", "server administration"),
                ("SECURITY LABEL ON TABLE t IS 'x'", "server administration"),
                (
                    "ALTER SYSTEM SET wal_level = minimal",
                    "server administration",
                ),
                (
                    "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION f()",
                    "CREATE EVENT TRIGGER",
                ),
                (
                    "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
                    "replication",
                ),
                ("CREATE PUBLICATION p FOR ALL TABLES", "replication"),
                (
                    "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw",
                    "foreign data",
                ),
                ("CREATE FOREIGN DATA WRAPPER w", "foreign data"),
                ("CREATE USER MAPPING FOR public SERVER s", "foreign data"),
                (
                    "IMPORT FOREIGN SCHEMA a FROM SERVER s INTO b",
                    "foreign data",
                ),
                ("CREATE FOREIGN TABLE f (a int) SERVER s", "foreign data"),
                ("CREATE DATABASE d", "cluster object"),
                ("CREATE ROLE r", "cluster object"),
                ("CREATE USER u", "cluster object"),
                ("CREATE TABLESPACE t LOCATION '/tmp'", "cluster object"),
                ("CREATE LANGUAGE plperlu", "cluster object"),
                (
                    "CREATE SCHEMA s AUTHORIZATION postgres",
                    "CREATE SCHEMA AUTHORIZATION",
                ),
                (
                    "COMMENT ON DATABASE postgres IS 'x'",
                    "COMMENT ON cluster object",
                ),
                (
                    "COMMENT ON ROLE postgres IS 'x'",
                    "COMMENT ON cluster object",
                ),
                (
                    "CREATE FUNCTION f() RETURNS int AS 'x.so', 'f' LANGUAGE c",
                    "untrusted language",
                ),
                (
                    "CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$ return 1 $$",
                    "untrusted language",
                ),
                (
                    "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (dblink_exec('x', 'DROP DATABASE victim'))",
                    "partition bound expression",
                ),
                (
                    "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (f()) TO (10)",
                    "partition bound expression",
                ),
                (
                    "CREATE MATERIALIZED VIEW m AS SELECT 1 WITH DATA",
                    "materialized view WITH DATA",
                ),
                ("CREATE TEMP TABLE t (a int)", "temporary object"),
                ("INSERT INTO t VALUES (1)", "data change"),
                ("UPDATE t SET a = 1", "data change"),
                ("DELETE FROM t", "data change"),
                ("TRUNCATE t", "data change"),
                ("DROP TABLE t", "DROP"),
                ("ALTER TABLE t ADD COLUMN b int", "ALTER"),
                ("GRANT ALL ON t TO x", "privileges"),
                (
                    "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO x",
                    "privileges",
                ),
                ("DECLARE c CURSOR FOR SELECT 1", "not a declaration"),
                ("SHOW search_path", "not a declaration"),
            ],
        );
    }

    #[test]
    fn mysql_refuses_what_runs_code_or_escapes_the_scratch_database() {
        refused(
            SqlDialect::Mysql,
            &[
                (
                    "CREATE TABLE t SELECT * FROM other.secrets",
                    "CREATE TABLE AS",
                ),
                ("CREATE TABLE t (a int) AS SELECT 1", "CREATE TABLE AS"),
                ("SELECT * FROM mysql.user", "query"),
                ("SELECT 1 INTO OUTFILE '/tmp/x'", "SELECT INTO OUTFILE"),
                ("SELECT 1 INTO DUMPFILE '/tmp/x'", "SELECT INTO OUTFILE"),
                ("USE mysql", "USE"),
                ("HANDLER t OPEN", "HANDLER"),
                ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "LOAD"),
                ("LOAD XML INFILE 'x' INTO TABLE t", "LOAD"),
                ("INSTALL PLUGIN p SONAME 'x.so'", "INSTALL"),
                ("INSTALL SONAME 'x'", "INSTALL"),
                (
                    "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x')",
                    "foreign data",
                ),
                ("SET GLOBAL event_scheduler = ON", "SET"),
                ("SET @@global.read_only = 1", "SET"),
                ("SET SESSION sql_log_bin = 0", "SET"),
                ("SET PASSWORD = 'x'", "SET"),
                ("SET ROLE ALL", "SET"),
                (
                    "CREATE DEFINER=root@localhost VIEW v AS SELECT 1",
                    "DEFINER",
                ),
                (
                    "CREATE DEFINER = `root`@`%` TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET NEW.a = 1",
                    "DEFINER",
                ),
                ("CREATE TABLE other.t (a int)", "other database"),
                ("CREATE INDEX i ON other.t (a)", "other database"),
                ("CREATE VIEW other.v AS SELECT 1", "other database"),
                ("CREATE TABLE t LIKE other.t", "other database"),
                (
                    "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM t",
                    "CREATE EVENT",
                ),
                (
                    "CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DISABLE DO DELETE FROM t",
                    "CREATE EVENT",
                ),
                (
                    "CREATE TABLE t (a int) DATA DIRECTORY = '/tmp'",
                    "table storage outside the database",
                ),
                (
                    "CREATE TABLE t (a int) INDEX DIRECTORY = '/tmp'",
                    "table storage outside the database",
                ),
                (
                    "CREATE TABLE t (a int) ENGINE=FEDERATED CONNECTION='mysql://x'",
                    "table storage outside the database",
                ),
                (
                    "CREATE TABLE t (a int) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/tmp/x'",
                    "table storage outside the database",
                ),
                ("CREATE DATABASE d", "cluster object"),
                ("CREATE SCHEMA d", "cluster object"),
                ("CREATE USER u", "cluster object"),
                ("LOCK TABLES t WRITE", "LOCK"),
                ("UNLOCK TABLES", "LOCK"),
                ("FLUSH PRIVILEGES", "server administration"),
                ("KILL 1", "server administration"),
                ("SHUTDOWN", "server administration"),
                ("OPTIMIZE TABLE t", "maintenance"),
                ("ANALYZE TABLE t", "maintenance"),
                ("DO SLEEP(100)", "DO"),
                ("CALL p()", "CALL"),
                ("PREPARE s FROM 'DROP DATABASE victim'", "PREPARE"),
                ("EXECUTE s", "EXECUTE"),
                ("XA START 'x'", "transaction control"),
                ("START TRANSACTION", "transaction control"),
                ("REPLACE INTO t VALUES (1)", "data change"),
                ("RENAME TABLE a TO b", "ALTER"),
            ],
        );
    }

    #[test]
    fn sqlite_refuses_what_writes_files_or_changes_settings() {
        refused(
            SqlDialect::Sqlite,
            &[
                ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
                ("ATTACH '/tmp/x.db' AS x", "ATTACH"),
                ("DETACH x", "DETACH"),
                ("DETACH DATABASE x", "DETACH"),
                ("VACUUM", "maintenance"),
                ("VACUUM INTO '/tmp/x.db'", "maintenance"),
                ("PRAGMA foreign_keys = ON", "PRAGMA"),
                ("PRAGMA writable_schema = 1", "PRAGMA"),
                ("CREATE TEMP TABLE t (a)", "temporary object"),
                ("CREATE TABLE t AS SELECT 1", "CREATE TABLE AS"),
                ("REINDEX", "maintenance"),
                ("ANALYZE", "maintenance"),
                ("BEGIN", "transaction control"),
                ("SAVEPOINT a", "transaction control"),
                ("RELEASE a", "transaction control"),
                ("END", "transaction control"),
                ("SELECT load_extension('/tmp/evil')", "query"),
            ],
        );
    }

    #[test]
    fn declarations_are_still_accepted() {
        accepted(
            SqlDialect::Postgres,
            &[
                (
                    "CREATE TABLE items (id int PRIMARY KEY, n text DEFAULT now())",
                    "CREATE TABLE",
                ),
                ("CREATE UNLOGGED TABLE t (a int)", "CREATE TABLE"),
                ("CREATE TABLE t (LIKE items)", "CREATE TABLE"),
                (
                    "CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1, 2)",
                    "CREATE TABLE",
                ),
                (
                    "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (MINVALUE) TO ('2024-01-01'::date)",
                    "CREATE TABLE",
                ),
                (
                    "CREATE TABLE p3 PARTITION OF p FOR VALUES WITH (MODULUS 4, REMAINDER 0)",
                    "CREATE TABLE",
                ),
                ("CREATE INDEX i ON items (id)", "CREATE INDEX"),
                (
                    "CREATE UNIQUE INDEX i ON items ((lower(n)))",
                    "CREATE INDEX",
                ),
                ("CREATE VIEW v AS SELECT id FROM items", "CREATE VIEW"),
                (
                    "CREATE MATERIALIZED VIEW m AS SELECT id FROM items",
                    "CREATE MATERIALIZED VIEW",
                ),
                (
                    "CREATE MATERIALIZED VIEW m AS SELECT id FROM items WITH NO DATA",
                    "CREATE MATERIALIZED VIEW",
                ),
                ("CREATE TYPE mood AS ENUM ('a', 'b')", "CREATE TYPE"),
                (
                    "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
                    "CREATE DOMAIN",
                ),
                (
                    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
                    "CREATE FUNCTION",
                ),
                (
                    "CREATE OR REPLACE FUNCTION g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
                    "CREATE FUNCTION",
                ),
                (
                    "CREATE TRIGGER t AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION g()",
                    "CREATE TRIGGER",
                ),
                ("CREATE SEQUENCE s", "CREATE SEQUENCE"),
                ("COMMENT ON TABLE items IS 'x'", "COMMENT"),
                ("CREATE SCHEMA billing", "CREATE SCHEMA"),
                ("CREATE EXTENSION IF NOT EXISTS citext", "CREATE EXTENSION"),
                ("CREATE POLICY p ON items USING (true)", "CREATE POLICY"),
                ("SET statement_timeout = 0", "skipped"),
                (
                    "SELECT pg_catalog.set_config('search_path', '', false)",
                    "skipped",
                ),
            ],
        );
        accepted(
            SqlDialect::Mysql,
            &[
                (
                    "CREATE TABLE t (a int, FOREIGN KEY (a) REFERENCES p (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                    "CREATE TABLE",
                ),
                ("CREATE INDEX i ON t (a)", "CREATE INDEX"),
                ("CREATE VIEW v AS SELECT a FROM t", "CREATE VIEW"),
                ("CREATE TABLE t2 LIKE t", "CREATE TABLE"),
                ("CREATE TABLE d (definer INT)", "CREATE TABLE"),
                (
                    "CREATE SQL SECURITY DEFINER VIEW v AS SELECT 1",
                    "CREATE VIEW",
                ),
            ],
        );
        accepted(
            SqlDialect::Sqlite,
            &[
                ("CREATE TABLE t (a INTEGER) STRICT", "CREATE TABLE"),
                ("CREATE TABLE main.t (a INTEGER)", "CREATE TABLE"),
                (
                    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
                    "CREATE TRIGGER",
                ),
                ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
                ("CREATE INDEX i ON t (a)", "CREATE INDEX"),
            ],
        );
    }

    #[test]
    fn blueprint_functions_may_not_run_at_create_table() {
        let f = "CREATE FUNCTION f() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n";
        for table in [
            "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + f()) STORED)",
            "CREATE TABLE p (a int) PARTITION BY RANGE ((a + f()))",
        ] {
            let (_, errors) = parse_blueprint(&format!("{f}{table}"), SqlDialect::Postgres);
            assert_eq!(errors.len(), 1, "{table}: {errors:?}");
            assert_eq!(errors[0].0.line, 2);
            assert_eq!(
                errors[0].1,
                message("blueprint function in a generated column or partition key")
            );
        }
        let (_, errors) = parse_blueprint(
            &format!(
                "{f}CREATE TABLE g (a int, b int GENERATED ALWAYS AS (lower(a::text) || 'x') STORED);\nCREATE INDEX i ON g ((f() + a))"
            ),
            SqlDialect::Postgres,
        );
        assert!(
            errors.is_empty(),
            "built-in functions and index expressions: {errors:?}"
        );
    }

    #[test]
    fn materialized_views_are_built_without_data() {
        let (s, _) = parse_blueprint(
            "CREATE MATERIALIZED VIEW m AS SELECT dblink_exec('x', 'y') -- note",
            SqlDialect::Postgres,
        );
        assert!(
            s[0].text.ends_with("-- note\nWITH NO DATA"),
            "{}",
            s[0].text
        );
        let (s, _) = parse_blueprint(
            "CREATE MATERIALIZED VIEW m AS SELECT 1 WITH NO DATA",
            SqlDialect::Postgres,
        );
        assert_eq!(
            s[0].text,
            "CREATE MATERIALIZED VIEW m AS SELECT 1 WITH NO DATA"
        );
    }
}
