//! Helpers for the PostgreSQL tests: a tenantctl repository in a temp dir
//! whose databases carry a prefix unique to the test, the real binary, and
//! psql / pg_dump for independent checks. Every database a fleet creates is
//! dropped when it goes out of scope.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The test server's URL, or `None` (with a notice) when it is not
/// configured; under `CI=true` a missing server fails the test.
pub fn pg_url() -> Option<String> {
    super::server_url("TENANTCTL_TEST_PG_URL")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name prefix no other test (or test run) uses, short enough for
/// tenantctl's 30-character names: `t{test}_{random}`.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mix = nanos
        ^ (u128::from(std::process::id()) << 40)
        ^ ((COUNTER.fetch_add(1, Ordering::SeqCst) as u128) << 20);
    format!(
        "t{}_{:06x}",
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect::<String>()
            .to_lowercase(),
        (mix ^ (mix >> 24) ^ (mix >> 48)) & 0xff_ffff
    )
}

/// Replaces the database of a `postgres://` URL.
pub fn url_for(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[authority_end..]
        .find('/')
        .map(|i| i + authority_end)
        .unwrap_or(base.len());
    format!("{}/{database}{query}", &base[..path_start])
}

/// Runs SQL with psql on `database`; panics on error; returns unaligned output.
pub fn psql(url: &str, database: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            &url_for(url, database),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql on {database} failed: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with one PostgreSQL server `pg` and one blueprint `shop`,
/// whose tenant databases are named `{prefix}_{blueprint}__{tenant}`.
pub struct Fleet {
    pub url: String,
    pub prefix: String,
    pub dir: tempfile::TempDir,
    created: Vec<String>,
}

impl Fleet {
    pub fn new(url: &str, test: &str, tenants: &[&str]) -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        let prefix = unique_prefix(test);
        let root = dir.path();
        std::fs::create_dir_all(root.join("blueprints/shop")).unwrap();
        std::fs::create_dir_all(root.join("tenants")).unwrap();
        std::fs::write(
            root.join("tenantctl.yaml"),
            "servers:\n  pg:\n    engine: postgres\n    url: \"${TENANTCTL_TEST_PG_URL}\"\n",
        )
        .unwrap();
        std::fs::write(
            root.join("blueprints/shop/blueprint.yaml"),
            format!(
                "engine: postgres\nserver: pg\nnaming: \"{prefix}_{{blueprint}}__{{tenant}}\"\n"
            ),
        )
        .unwrap();
        let mut yaml = String::from("tenants:\n");
        for t in tenants {
            yaml.push_str(&format!(
                "  - name: {t}\n    databases: [{{blueprint: shop}}]\n"
            ));
        }
        std::fs::write(root.join("tenants/all.yaml"), yaml).unwrap();
        let created = tenants
            .iter()
            .map(|t| format!("{prefix}_shop__{t}"))
            .collect();
        Fleet {
            url: url.to_string(),
            prefix,
            dir,
            created,
        }
    }

    /// Adds `line` (e.g. `concurrent_indexes: true`) to the server's settings.
    pub fn server_option(&self, line: &str) {
        let path = self.root().join("tenantctl.yaml");
        let mut config = std::fs::read_to_string(&path).unwrap();
        config.push_str(&format!("    {line}\n"));
        std::fs::write(path, config).unwrap();
    }

    /// Switches the server to schema-per-tenant placement in a database of
    /// this fleet; returns that database's name.
    pub fn schema_per_tenant(&mut self) -> String {
        let db = format!("{}_fleet", self.prefix);
        self.server_option(&format!("tenant_schemas_in: {db}"));
        self.created.push(db.clone());
        db
    }

    /// `pg_dump --schema-only` of one schema, its name replaced by `SCHEMA`.
    pub fn dump_schema(&self, database: &str, schema: &str) -> Vec<String> {
        let out = Command::new("pg_dump")
            .args([
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                "--exclude-table=*._tenantctl_*",
                "-n",
                schema,
                &url_for(&self.url, database),
            ])
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalize_dump(&String::from_utf8_lossy(&out.stdout).replace(schema, "SCHEMA"))
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn database(&self, tenant: &str) -> String {
        format!("{}_shop__{tenant}", self.prefix)
    }

    pub fn write_schema(&self, sql: &str) {
        std::fs::write(self.root().join("blueprints/shop/schema.sql"), sql).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantctl"));
        cmd.args(["--repo", self.root().to_str().unwrap(), "--color", "never"])
            .args(args)
            .env("TENANTCTL_TEST_PG_URL", &self.url);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tenantctl runs")
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tenantctl starts")
    }

    /// `reconcile --apply`, which must succeed.
    pub fn apply(&self, allow_destructive: bool) -> Output {
        let mut args = vec!["reconcile", "--apply", "--format", "json"];
        if allow_destructive {
            args.push("--allow-destructive");
        }
        let out = self.run(&args);
        assert!(out.status.success(), "apply failed:\n{}", show(&out));
        out
    }

    /// Exit code of `reconcile --plan --detailed-exitcode`, with the output.
    pub fn plan_code(&self) -> (i32, String) {
        let out = self.run(&["reconcile", "--plan", "--detailed-exitcode"]);
        (out.status.code().unwrap_or(-1), show(&out))
    }

    pub fn sql(&self, tenant: &str, sql: &str) -> String {
        psql(&self.url, &self.database(tenant), sql)
    }

    /// Creates a database of this fleet's own (dropped with the fleet).
    pub fn scratch_database(&mut self, suffix: &str) -> String {
        let name = format!("{}_{suffix}", self.prefix);
        psql(
            &self.url,
            "postgres",
            &format!("CREATE DATABASE \"{name}\""),
        );
        self.created.push(name.clone());
        name
    }

    /// `pg_dump --schema-only` of `database`, normalised for comparison.
    pub fn dump(&self, database: &str) -> Vec<String> {
        let out = Command::new("pg_dump")
            .args([
                "--schema-only",
                "--no-owner",
                "--no-privileges",
                "--exclude-table=_tenantctl_*",
                &url_for(&self.url, database),
            ])
            .output()
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalize_dump(&String::from_utf8_lossy(&out.stdout))
    }

    /// The oracle: the dump of a fresh database where the blueprint ran as
    /// plain SQL through psql, without tenantctl.
    pub fn fresh_dump(&mut self, schema_sql: &str) -> Vec<String> {
        let db = self.scratch_database(&format!("oracle{}", self.created.len()));
        let file = self.root().join("oracle.sql");
        std::fs::write(&file, schema_sql).unwrap();
        let out = Command::new("psql")
            .args([
                &url_for(&self.url, &db),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                file.to_str().unwrap(),
            ])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "the blueprint does not run in psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dump = self.dump(&db);
        psql(
            &self.url,
            "postgres",
            &format!("DROP DATABASE \"{db}\" WITH (FORCE)"),
        );
        self.created.retain(|d| *d != db);
        dump
    }

    /// Starts psql with an open stdin, to hold locks in a transaction.
    pub fn session(&self, tenant: &str) -> Child {
        Command::new("psql")
            .args([
                &url_for(&self.url, &self.database(tenant)),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("psql starts")
    }

    pub fn tempfile(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for db in &self.created {
            let _ = Command::new("psql")
                .args([
                    &url_for(&self.url, "postgres"),
                    "-X",
                    "-q",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
                ])
                .output();
        }
    }
}

/// Writes to a psql session's stdin.
pub fn send(session: &mut Child, sql: &str) {
    let stdin = session.stdin.as_mut().expect("session stdin");
    stdin.write_all(sql.as_bytes()).unwrap();
    stdin.flush().unwrap();
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A schema dump as a sorted list of statements: comments, blank lines,
/// session settings and psql meta-commands dropped, and the column lines of
/// each `CREATE TABLE` sorted (column order is not part of the comparison).
pub fn normalize_dump(dump: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in dump.lines() {
        let trimmed = line.trim_end();
        if trimmed.is_empty()
            || trimmed.starts_with("--")
            || trimmed.starts_with('\\')
            || (current.is_empty()
                && (trimmed.starts_with("SET ")
                    || trimmed.starts_with("SELECT pg_catalog.set_config")))
        {
            continue;
        }
        current.push(trimmed.to_string());
        if trimmed.ends_with(';') {
            statements.push(finish_statement(std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        statements.push(finish_statement(current));
    }
    statements.sort();
    statements
}

fn finish_statement(lines: Vec<String>) -> String {
    if lines.len() > 2 && lines[0].starts_with("CREATE TABLE ") {
        let mut columns: Vec<String> = lines[1..lines.len() - 1]
            .iter()
            .map(|l| l.trim().trim_end_matches(',').to_string())
            .collect();
        columns.sort();
        format!(
            "{}\n{}\n{}",
            lines[0],
            columns.join("\n"),
            lines[lines.len() - 1]
        )
    } else {
        lines.join("\n")
    }
}
