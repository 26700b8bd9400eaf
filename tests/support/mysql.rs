//! Helpers for the MySQL/MariaDB integration tests: a repository in a temp
//! dir whose one server is `TENANTCTL_TEST_MYSQL_URL`, the real binary, and
//! the `mysql`/`mysqldump` clients as independent observers.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The test server's URL, or `None` (with a notice) when unset outside CI.
pub fn server_url() -> Option<String> {
    super::server_url("TENANTCTL_TEST_MYSQL_URL")
}

/// Connection parameters for the command-line clients.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: String,
    user: String,
    password: String,
}

impl Client {
    pub fn from_url(url: &str) -> Client {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.split(['/', '?']).next().unwrap_or(rest);
        let (auth, hostport) = rest.rsplit_once('@').unwrap_or(("root", rest));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
        Client {
            host: host.into(),
            port: port.into(),
            user: user.into(),
            password: password.into(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// `host:port`.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.arg("-h")
            .arg(&self.host)
            .arg("-P")
            .arg(&self.port)
            .arg("-u")
            .arg(&self.user)
            .env("MYSQL_PWD", &self.password);
        c
    }

    /// Runs `sql` (in `db` when given); returns stdout, tab-separated, no headers.
    pub fn try_sql(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        let mut c = self.command("mysql");
        c.arg("--batch")
            .arg("--skip-column-names")
            .arg("-e")
            .arg(sql);
        if let Some(db) = db {
            c.arg(db);
        }
        let out = c.output().expect("the mysql client runs");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("mysql failed on {sql:?}: {e}"))
    }

    /// `mysqldump --no-data` of `db`, normalised: no header comments, no
    /// AUTO_INCREMENT counters, and the lines inside each CREATE TABLE sorted
    /// (column and key order aside).
    pub fn schema_dump(&self, db: &str) -> String {
        let out = self
            .command("mysqldump")
            .args([
                "--no-data",
                "--skip-comments",
                "--skip-dump-date",
                "--triggers",
                "--compact",
            ])
            .arg(format!("--ignore-table={db}._tenantctl_history"))
            .arg(db)
            .output()
            .expect("mysqldump runs");
        assert!(
            out.status.success(),
            "mysqldump {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        normalize_dump(&String::from_utf8_lossy(&out.stdout))
    }

    /// Names of the databases starting with `prefix`.
    pub fn databases(&self, prefix: &str) -> Vec<String> {
        let out = self.sql(
            None,
            &format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}%'",
                prefix.replace('_', "\\_")
            ),
        );
        out.lines().map(str::to_string).collect()
    }
}

/// See [`Client::schema_dump`].
pub fn normalize_dump(dump: &str) -> String {
    let mut out = Vec::new();
    let mut body: Vec<String> = Vec::new();
    let mut in_table = false;
    for line in dump.lines() {
        if line.starts_with("--") || line.trim().is_empty() {
            continue;
        }
        if line.starts_with("CREATE TABLE") {
            in_table = true;
            out.push(line.to_string());
            continue;
        }
        if in_table && line.starts_with(')') {
            body.sort();
            out.append(&mut body);
            in_table = false;
            let options: Vec<&str> = line
                .split(' ')
                .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                .collect();
            out.push(options.join(" "));
            continue;
        }
        if in_table {
            body.push(line.trim_end_matches(',').to_string());
        } else {
            out.push(line.to_string());
        }
    }
    out.join("\n")
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test run: `prefix` + a random-ish suffix.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!(
        "{prefix}{:x}{n}",
        (nanos ^ std::process::id().rotate_left(16)) & 0xffffff
    )
}

/// A repository with one MySQL server and one blueprint, in a temp dir; its
/// tenant databases are dropped when it goes out of scope.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub blueprint: String,
    pub client: Client,
}

impl Fleet {
    pub fn new(url: &str, prefix: &str, schema: &str, tenants: &[&str]) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet {
            dir,
            blueprint: unique(prefix),
            client: Client::from_url(url),
        };
        fleet.write(
            "tenantctl.yaml",
            "servers:\n  my:\n    engine: mysql\n    url: \"${TENANTCTL_TEST_MYSQL_URL}\"\n    lock_timeout: 5s\n",
        );
        fleet.set_blueprint_meta("");
        fleet.set_schema(schema);
        fleet.set_tenants(tenants);
        fleet
    }

    pub fn write(&self, path: &str, text: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `blueprint.yaml` with `extra` lines appended.
    pub fn set_blueprint_meta(&self, extra: &str) {
        self.write(
            &format!("blueprints/{}/blueprint.yaml", self.blueprint),
            &format!("engine: mysql\nserver: my\n{extra}"),
        );
    }

    pub fn set_schema(&self, schema: &str) {
        self.write(&format!("blueprints/{}/schema.sql", self.blueprint), schema);
    }

    pub fn set_tenants(&self, tenants: &[&str]) {
        let mut yaml = String::from("tenants:\n");
        for t in tenants {
            yaml.push_str(&format!(
                "  - name: {t}\n    databases: [{{blueprint: {}}}]\n",
                self.blueprint
            ));
        }
        self.write("tenants/all.yaml", &yaml);
    }

    pub fn database(&self, tenant: &str) -> String {
        format!("{}__{tenant}", self.blueprint)
    }

    /// Runs the real binary on this repository.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("--repo")
            .arg(self.dir.path())
            .args(args)
            .output()
            .expect("tenantctl runs")
    }

    /// Runs the binary and asserts its exit code.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "tenantctl {args:?} exited {:?}:\n{text}",
            out.status.code()
        );
        text
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for db in self.client.databases(&format!("{}__", self.blueprint)) {
            let _ = self
                .client
                .try_sql(None, &format!("DROP DATABASE IF EXISTS `{db}`"));
        }
    }
}
