//! The test harness shared by the integration tests: server URLs (skip or,
//! under CI=true, fail when unset), names unique to a run so parallel runs
//! never share a database, repositories written to a temporary directory
//! and driven through the real binary, and cleanup guards.

#![allow(dead_code)]

pub mod mysql;
pub mod pgwire;
pub mod postgres;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The URL in `var`, or `None` (after a skip notice) when it is unset
/// outside CI. Under `CI=true` a missing server fails the test.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set and CI=true: run scripts/services.sh up and export its env")
        }
        _ => {
            eprintln!("skipping: {var} is not set (scripts/services.sh env prints it)");
            None
        }
    }
}

/// A name unique to this test run: `prefix` plus a random-ish suffix, valid
/// as a tenant name (lowercase, at most 30 characters).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let suffix = format!("{:x}{:x}{n}", std::process::id() % 0xfff, nanos % 0xfffff);
    let mut name = format!("{prefix}_{suffix}");
    name.truncate(24);
    name
}

/// A tenantctl repository in a temporary directory.
pub struct TestRepo {
    pub dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

/// What a run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl TestRepo {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            envs: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `content` at `relative`, creating directories.
    pub fn write(&self, relative: &str, content: &str) {
        let path: PathBuf = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// An environment variable every run of the binary gets.
    pub fn env(&mut self, key: &str, value: &str) {
        self.envs.push((key.to_string(), value.to_string()));
    }

    /// Runs `tenantctl --repo DIR ARGS...`.
    pub fn run(&self, args: &[&str]) -> Run {
        let output: Output = Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("--repo")
            .arg(self.dir.path())
            .arg("--color")
            .arg("never")
            .args(args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs and asserts the exit code, returning the run.
    pub fn expect(&self, args: &[&str], code: i32) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code,
            code,
            "tenantctl {} exited {} (expected {code}):\n{}",
            args.join(" "),
            run.code,
            run.text()
        );
        run
    }
}

/// Blocks on a future with a fresh runtime (tests are synchronous so that
/// cleanup guards can run async code in `Drop`).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Copies the directory `from` (recursively, without tenantctl's own
/// `.tenantctl` state) into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != ".tenantctl" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Deletes the Redis ACL users and keys of a test's tenants, even when it fails.
pub struct RedisCleanup {
    pub url: String,
    pub tenants: Vec<String>,
}

impl Drop for RedisCleanup {
    fn drop(&mut self) {
        use redis::Commands;
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection())
        else {
            return;
        };
        for t in &self.tenants {
            let _: redis::RedisResult<i64> =
                redis::cmd("ACL").arg("DELUSER").arg(t).query(&mut conn);
            for pattern in [
                format!("{t}:*"),
                format!("{{{t}}}:*"),
                format!("_tenantctl:*{{{t}}}"),
            ] {
                let keys: Vec<String> = conn.keys(&pattern).unwrap_or_default();
                if !keys.is_empty() {
                    let _: redis::RedisResult<i64> = conn.del(keys);
                }
            }
        }
    }
}

/// Runs git in `dir` with a fixed identity and `main` as the default
/// branch; panics with git's message on failure; returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits everything in `dir`; returns the new commit's sha.
pub fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}
