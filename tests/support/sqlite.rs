//! SQLite repositories written to temp dirs, the real binary run on them, and
//! direct reads of the database files.
#![allow(dead_code)]

use super::copy_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::{Connection, Executor, SqliteConnection};
use tempfile::TempDir;

/// What a run of `tenantctl` printed and returned.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// A tenantctl repository in a temporary directory.
pub struct Repo {
    pub dir: TempDir,
}

impl Repo {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A copy of a directory of the project (e.g. `example-repo`).
    pub fn copy_of(relative: &str) -> Self {
        let repo = Self::new();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(relative),
            repo.path(),
        );
        repo
    }

    /// A SQLite repository: server `local` in `data/`, the given blueprints
    /// (name, schema.sql) and tenants (all using every blueprint).
    pub fn sqlite(blueprints: &[(&str, &str)], tenants: &[&str]) -> Self {
        let repo = Self::new();
        repo.write(
            "tenantctl.yaml",
            "servers:\n  local:\n    engine: sqlite\n    path: data\n",
        );
        for (name, schema) in blueprints {
            repo.write(
                &format!("blueprints/{name}/blueprint.yaml"),
                "engine: sqlite\nserver: local\n",
            );
            repo.write(&format!("blueprints/{name}/schema.sql"), schema);
        }
        let mut yaml = String::from("tenants:\n");
        for t in tenants {
            yaml.push_str(&format!("  - name: {t}\n    databases:\n"));
            for (name, _) in blueprints {
                yaml.push_str(&format!("      - blueprint: {name}\n"));
            }
        }
        repo.write("tenants/all.yaml", &yaml);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }

    /// Runs `tenantctl --repo <this repo> ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("--repo")
            .arg(self.path())
            .arg("--color")
            .arg("never")
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run tenantctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The SQLite file of a tenant database.
    pub fn sqlite_file(&self, database: &str) -> PathBuf {
        self.path().join("data").join(format!("{database}.db"))
    }
}

fn with_sqlite<T>(file: &Path, f: impl AsyncFnOnce(&mut SqliteConnection) -> T) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut conn = SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                .await
                .unwrap();
            f(&mut conn).await
        })
}

/// Runs statements on a SQLite database file.
pub fn sqlite_exec(file: &Path, sql: &str) {
    with_sqlite(file, async |conn| {
        conn.execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    })
}

/// The first column of every row of a query on a SQLite file, as text.
pub fn sqlite_column(file: &Path, sql: &str) -> Vec<String> {
    with_sqlite(file, async |conn| {
        sqlx::query_scalar::<_, String>(sql)
            .fetch_all(conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    })
}

/// A single integer a query on a SQLite file returns.
pub fn sqlite_count(file: &Path, sql: &str) -> i64 {
    sqlite_column(file, &format!("SELECT CAST(({sql}) AS TEXT)"))[0]
        .parse()
        .unwrap()
}
