//! Planning changes nothing, whatever the blueprint says (issue 10 §1).
//!
//! Each test tries a build-time side effect against a real server (or
//! SQLite's in-memory build) and proves that nothing outside the scratch
//! area changed: a victim database with rows stays intact, no file appears.
//! Three defences are proven separately: `validate` refuses the statement at
//! its line; with validate bypassed (statements pushed into a loaded
//! blueprint through the library), the least-privilege build role makes the
//! server refuse; and `dev_url` lets a plan run with read-only production
//! credentials.

mod support;

use std::path::Path;

use tenantctl::diagnostic::Position;
use tenantctl::repo::Repo;
use tenantctl::sql::SqlStatement;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Loads the repository at `root` and appends `unchecked` to blueprint
/// `name`'s statements, as if `validate` had let them through.
fn bypassing_validate(root: &Path, name: &str, unchecked: &[&str]) -> Repo {
    let mut repo =
        Repo::load(root, None, &tenantctl::engine::REGISTRY).unwrap_or_else(|d| panic!("{d:?}"));
    let blueprint = repo.blueprints.get_mut(name).expect("blueprint");
    for (i, sql) in unchecked.iter().enumerate() {
        blueprint.statements.push(SqlStatement {
            text: sql.to_string(),
            position: Position {
                line: 100 + i,
                column: 1,
            },
            kind: "CREATE TABLE".into(),
        });
    }
    repo
}

async fn build(repo: &Repo, server: &str, blueprint: &str) -> Result<(), String> {
    let engine = tenantctl::engine::connect(&repo.servers[server])
        .await
        .map_err(|e| e.to_string())?;
    engine
        .declared_schema(&repo.blueprints[blueprint])
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---------------------------------------------------------------- PostgreSQL

mod pg {
    use super::*;
    use support::postgres::{Fleet, pg_url, psql};

    /// A database of the fleet's own with a table of three rows.
    fn victim(fleet: &mut Fleet) -> String {
        let db = fleet.scratch_database("victim");
        psql(
            &fleet.url,
            &db,
            "CREATE TABLE keep (id int); INSERT INTO keep VALUES (1), (2), (3)",
        );
        db
    }

    fn intact(fleet: &Fleet, victim: &str) {
        let exists = psql(
            &fleet.url,
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{victim}'"),
        );
        assert_eq!(exists, "1", "the victim database was dropped");
        assert_eq!(psql(&fleet.url, victim, "SELECT count(*) FROM keep"), "3");
    }

    fn conninfo(url: &str) -> String {
        // postgres://user:password@host:port/db → a libpq key/value string.
        let rest = url.split_once("://").unwrap().1;
        let (auth, host) = rest.split_once('@').unwrap();
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let host = host.split('/').next().unwrap();
        let (host, port) = host.split_once(':').unwrap_or((host, "5432"));
        format!("host={host} port={port} user={user} password={password} dbname=postgres")
    }

    #[test]
    fn the_dblink_blueprint_of_the_issue_is_refused_by_validate_at_its_line() {
        let Some(url) = pg_url() else { return };
        let mut fleet = Fleet::new(&url, "dblink", &["acme"]);
        let victim = victim(&mut fleet);
        fleet.write_schema(&format!(
            "CREATE TABLE items (id int PRIMARY KEY);\n\
             CREATE EXTENSION IF NOT EXISTS dblink;\n\
             CREATE TABLE x AS SELECT dblink_exec('{}',\n\
             \x20                                    'DROP DATABASE {victim}') AS r;\n",
            conninfo(&url)
        ));
        let out = fleet.run(&["validate"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains("schema.sql:3:1: CREATE TABLE AS is refused in a blueprint"),
            "{shown}"
        );
        let out = fleet.run(&["reconcile", "--plan"]);
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        intact(&fleet, &victim);
    }

    #[test]
    fn every_build_time_side_effect_is_refused_and_the_victim_stays_intact() {
        let Some(url) = pg_url() else { return };
        let mut fleet = Fleet::new(&url, "sidefx", &["acme"]);
        let victim = victim(&mut fleet);
        let dblink = format!(
            "dblink_exec('{}', 'DROP DATABASE {victim}')",
            conninfo(&url)
        );
        let file = fleet.root().join("written-by-copy");
        let attempts = [
            format!("SELECT {dblink}"),
            format!("WITH x AS (SELECT {dblink}) SELECT * FROM x"),
            format!("SELECT {dblink} INTO stolen"),
            format!("DO $$ BEGIN PERFORM {}; END $$", dblink.replace('\'', "''")),
            format!("CREATE MATERIALIZED VIEW m AS SELECT {dblink} WITH DATA"),
            format!(
                "CREATE TABLE p (k text) PARTITION BY LIST (k);\nCREATE TABLE p1 PARTITION OF p FOR VALUES IN ({dblink})"
            ),
            format!("COPY (SELECT 1) TO '{}'", file.display()),
            "COPY (SELECT 1) TO PROGRAM 'touch /tmp/tenantctl-pwned'".into(),
            "COMMIT".into(),
            "SET ROLE postgres".into(),
            "RESET ROLE".into(),
            "SET SESSION AUTHORIZATION postgres".into(),
            "CALL p()".into(),
            "PREPARE p AS SELECT 1".into(),
            "EXPLAIN ANALYZE SELECT 1".into(),
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw".into(),
            format!("CREATE DATABASE {victim}_2"),
            "CREATE ROLE pwned SUPERUSER".into(),
            "ALTER SYSTEM SET log_statement = 'none'".into(),
            "LOAD 'plpgsql'".into(),
            "CREATE FUNCTION f() RETURNS int AS '/lib/x.so', 'f' LANGUAGE c".into(),
            "CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()".into(),
            // Folded at CREATE TABLE outside a security-restricted context, where
            // a superuser session could switch role back: refused by validate.
            "CREATE FUNCTION f() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('role', 'postgres', true); RETURN 1; END $$;\nCREATE TABLE g (a int, b int GENERATED ALWAYS AS (a + f()) STORED)".into(),
            "CREATE FUNCTION f() RETURNS int IMMUTABLE LANGUAGE sql AS $$ SELECT 1 $$;\nCREATE TABLE p (a int) PARTITION BY RANGE ((a + f()))".into(),
        ];
        for attempt in &attempts {
            fleet.write_schema(&format!("CREATE TABLE items (id int);\n{attempt};\n"));
            let out = fleet.run(&["validate"]);
            let shown = text(&out);
            assert_eq!(out.status.code(), Some(1), "{attempt}: {shown}");
            assert!(
                shown.contains("is refused in a blueprint"),
                "{attempt}: {shown}"
            );
            let out = fleet.run(&["reconcile", "--plan"]);
            assert_ne!(out.status.code(), Some(0), "{attempt}: {}", text(&out));
            intact(&fleet, &victim);
        }
        assert!(!file.exists());
        // A materialized view that passes validate is built WITH NO DATA:
        // its query (which would drop the victim) never runs.
        fleet.write_schema(&format!(
            "CREATE EXTENSION IF NOT EXISTS dblink;\nCREATE MATERIALIZED VIEW m AS SELECT {dblink} AS r"
        ));
        let out = fleet.run(&["validate"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let out = fleet.run(&["reconcile", "--plan"]);
        // The builder role may not create dblink: the plan fails, and says why.
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("dblink"), "{}", text(&out));
        intact(&fleet, &victim);
    }

    /// Validate bypassed: the builder role makes the server refuse.
    async fn refused_by_the_server(fleet: &Fleet, victim: &str, file: &Path) {
        fleet.write_schema("CREATE TABLE items (id int);\n");
        let dblink = format!(
            "dblink_exec('{}', 'DROP DATABASE {victim}')",
            conninfo(&fleet.url)
        );
        let unchecked = [
            ("CREATE EXTENSION dblink".to_string(), "permission denied"),
            (
                format!("CREATE TABLE x AS SELECT {dblink} AS r"),
                "dblink_exec",
            ),
            (
                format!("COPY (SELECT 1) TO '{}'", file.display()),
                "pg_write_server_files",
            ),
            (
                "COPY (SELECT 1) TO PROGRAM 'true'".into(),
                "pg_execute_server_program",
            ),
            (
                "CREATE FUNCTION f() RETURNS int AS 'libc.so.6', 'system' LANGUAGE c".into(),
                "permission denied",
            ),
            ("CREATE EXTENSION postgres_fdw".into(), "permission denied"),
            ("CREATE ROLE pwned SUPERUSER".into(), "must be superuser"),
            // A superuser session may change role back; the build notices
            // and stops before the next statement runs.
            ("RESET ROLE".into(), "left the build role"),
            (
                "SET SESSION AUTHORIZATION postgres".into(),
                "left the build role",
            ),
            ("COMMIT".into(), "left the build role"),
            (format!("RESET ROLE; SELECT {dblink}"), "multiple commands"),
            ("ALTER ROLE _tenantctl_builder SUPERUSER".into(), "rejected"),
            (
                "CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION pg_catalog.now()"
                    .into(),
                "rejected",
            ),
            ("CREATE SCHEMA s AUTHORIZATION postgres".into(), "rejected"),
        ];
        for (sql, expected) in &unchecked {
            let repo = bypassing_validate(fleet.root(), "shop", &[sql]);
            let result = build(&repo, "pg", "shop").await;
            let err = result.expect_err(sql);
            assert!(err.contains(expected), "{sql}: {err}");
            intact(fleet, victim);
        }
        assert!(!file.exists());
        // A normal blueprint still builds as the builder role.
        let repo = bypassing_validate(fleet.root(), "shop", &[]);
        build(&repo, "pg", "shop")
            .await
            .expect("a declaration builds");
    }

    #[test]
    fn code_the_server_runs_while_building_is_bounded_by_the_builder_role() {
        // PostgreSQL folds an IMMUTABLE function with constant arguments when
        // it checks an index expression: the function runs at CREATE INDEX.
        // The blueprint below is made of declarations only and passes
        // validate; the builder role is what stops the code it runs.
        let Some(url) = pg_url() else { return };
        let mut fleet = Fleet::new(&url, "folded", &["acme"]);
        let victim = victim(&mut fleet);
        let file = format!("/tmp/tenantctl-folded-{}", fleet.prefix);
        for body in [
            format!("EXECUTE 'COPY (SELECT 1) TO ''{file}''';"),
            "EXECUTE 'CREATE EXTENSION dblink';".to_string(),
            format!("EXECUTE 'DROP DATABASE {victim}';"),
            "EXECUTE 'ALTER ROLE _tenantctl_builder SUPERUSER';".to_string(),
            "PERFORM set_config('role', 'postgres', true); PERFORM pg_read_file('/etc/hostname');"
                .to_string(),
            // What a non-volatile function may still call is bounded by the role.
            "PERFORM pg_read_file('/etc/hostname');".to_string(),
            format!("PERFORM lo_export(lo_from_bytea(0, 'x'), '{file}');"),
            "PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres';"
                .to_string(),
        ] {
            fleet.write_schema(&format!(
                "CREATE TABLE items (id int);\n\
                 CREATE FUNCTION f() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN {body} RETURN 1; END $$;\n\
                 CREATE INDEX i ON items ((id + f()));\n"
            ));
            let out = fleet.run(&["validate"]);
            assert_eq!(out.status.code(), Some(0), "{body}: {}", text(&out));
            let out = fleet.run(&["reconcile", "--plan"]);
            let shown = text(&out);
            assert_eq!(out.status.code(), Some(1), "{body}: {shown}");
            assert!(shown.contains("schema.sql:3:"), "{body}: {shown}");
            assert!(
                [
                    "permission denied",
                    "not allowed in a non-volatile function",
                    "security-restricted operation",
                    "must be a superuser",
                ]
                .iter()
                .any(|m| shown.contains(m)),
                "the server refused it: {shown}"
            );
            intact(&fleet, &victim);
            assert!(!Path::new(&file).exists());
        }
    }
    #[tokio::test]
    async fn with_validate_bypassed_the_builder_role_makes_the_server_refuse() {
        let Some(url) = pg_url() else { return };
        let mut fleet = Fleet::new(&url, "bypass", &["acme"]);
        let victim = victim(&mut fleet);
        let file = fleet.root().join("copied");
        refused_by_the_server(&fleet, &victim, &file).await;
    }

    #[tokio::test]
    async fn schema_per_tenant_builds_run_as_the_builder_role_too() {
        let Some(url) = pg_url() else { return };
        let mut fleet = Fleet::new(&url, "bypassps", &["acme"]);
        fleet.schema_per_tenant();
        let victim = victim(&mut fleet);
        let file = fleet.root().join("copied");
        refused_by_the_server(&fleet, &victim, &file).await;
    }

    #[test]
    fn a_createdb_createrole_connecting_role_is_enough_to_build() {
        let Some(url) = pg_url() else { return };
        let fleet = Fleet::new(&url, "createrole", &["acme"]);
        fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY);\n");
        let admin = format!("{}_adm", fleet.prefix);
        psql(
            &url,
            "postgres",
            &format!("CREATE ROLE {admin} LOGIN PASSWORD 'adm-pass' CREATEDB CREATEROLE"),
        );
        let rest = url.split_once('@').unwrap().1;
        let out = fleet
            .command(&["reconcile", "--plan"])
            .env(
                "TENANTCTL_TEST_PG_URL",
                format!("postgres://{admin}:adm-pass@{rest}"),
            )
            .output()
            .unwrap();
        let shown = text(&out);
        psql(&url, "postgres", &format!("DROP ROLE {admin}"));
        assert_eq!(out.status.code(), Some(0), "{shown}");
        assert!(shown.contains("create"), "{shown}");
    }
    #[test]
    fn dev_url_builds_the_model_elsewhere_so_a_plan_needs_only_read_access() {
        let Some(url) = pg_url() else { return };
        let fleet = Fleet::new(&url, "devurl", &["acme"]);
        fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY);\n");
        fleet.apply(false);
        // A login role that can read the tenant but create nothing.
        let reader = format!("{}_ro", fleet.prefix);
        psql(
            &url,
            "postgres",
            &format!("CREATE ROLE {reader} LOGIN PASSWORD 'ro-pass' NOCREATEDB NOCREATEROLE"),
        );
        let db = fleet.database("acme");
        psql(
            &url,
            &db,
            &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"),
        );
        let rest = url.split_once('@').unwrap().1;
        let reader_url = format!("postgres://{reader}:ro-pass@{rest}");
        std::fs::write(
            fleet.root().join("tenantctl.yaml"),
            "servers:\n  pg:\n    engine: postgres\n    url: \"${READONLY_URL}\"\n",
        )
        .unwrap();
        fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY, name text);\n");
        let run = |extra: &[(&str, &str)]| {
            let mut cmd = fleet.command(&["reconcile", "--plan"]);
            cmd.env("READONLY_URL", &reader_url);
            for (k, v) in extra {
                cmd.env(k, v);
            }
            cmd.output().unwrap()
        };
        // Without a dev server the read-only role cannot build: the error
        // says which privilege is missing, and shows no password.
        let out = run(&[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(shown.contains("_tenantctl_builder"), "{shown}");
        assert!(shown.contains("CREATEROLE"), "{shown}");
        assert!(!shown.contains("ro-pass"), "{shown}");
        // With `dev_url` (expanded from the environment), it plans.
        let mut config = std::fs::read_to_string(fleet.root().join("tenantctl.yaml")).unwrap();
        config.push_str("    dev_url: \"${DEV_URL}\"\n");
        std::fs::write(fleet.root().join("tenantctl.yaml"), config).unwrap();
        let out = run(&[("DEV_URL", &url)]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(0), "{shown}");
        assert!(shown.contains("name"), "the plan adds the column: {shown}");
        assert_eq!(
            psql(
                &url,
                &db,
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items'"
            ),
            "1",
            "planning changed nothing"
        );
        psql(
            &url,
            &db,
            &format!("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {reader}"),
        );
        psql(&url, "postgres", &format!("DROP ROLE {reader}"));
    }
}

// --------------------------------------------------------------------- MySQL

mod my {
    use super::*;
    use support::mysql::{Fleet, server_url, unique};

    fn victim(fleet: &Fleet) -> String {
        let db = unique("victim");
        fleet.client.sql(
            None,
            &format!("CREATE DATABASE {db}; CREATE TABLE {db}.keep (id int); INSERT INTO {db}.keep VALUES (1), (2), (3)"),
        );
        db
    }

    fn intact(fleet: &Fleet, db: &str) {
        assert_eq!(
            fleet
                .client
                .sql(None, &format!("SELECT count(*) FROM {db}.keep"))
                .trim(),
            "3"
        );
        let tables = fleet.client.sql(
            None,
            &format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{db}'"),
        );
        assert_eq!(
            tables.trim(),
            "1",
            "a table appeared in the victim database"
        );
    }

    #[test]
    fn every_build_time_side_effect_is_refused_and_the_victim_stays_intact() {
        let Some(url) = server_url() else { return };
        let fleet = Fleet::new(
            &url,
            "sidefx",
            "CREATE TABLE items (id INT PRIMARY KEY);\n",
            &["acme"],
        );
        let db = victim(&fleet);
        let attempts = [
            format!("CREATE TABLE {db}.planted (id INT)"),
            format!("CREATE TABLE copy SELECT * FROM {db}.keep"),
            format!("CREATE TABLE t LIKE {db}.keep"),
            format!("CREATE INDEX i ON {db}.keep (id)"),
            format!("USE {db}"),
            "CREATE DEFINER=root@localhost VIEW v AS SELECT 1".into(),
            format!(
                "CREATE DEFINER=root@localhost TRIGGER t BEFORE INSERT ON items FOR EACH ROW DELETE FROM {db}.keep"
            ),
            "SELECT 1 INTO OUTFILE '/tmp/tenantctl-outfile'".into(),
            "LOAD DATA INFILE '/etc/passwd' INTO TABLE items".into(),
            "INSTALL PLUGIN p SONAME 'p.so'".into(),
            "SET GLOBAL read_only = 1".into(),
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST '127.0.0.1')".into(),
            format!("CREATE EVENT e ON SCHEDULE EVERY 1 SECOND DO DELETE FROM {db}.keep"),
            "CREATE TABLE d (id INT) DATA DIRECTORY = '/tmp'".into(),
            "HANDLER items OPEN".into(),
            format!("DO (SELECT count(*) FROM {db}.keep)"),
            format!("CREATE DATABASE {db}_2"),
        ];
        for attempt in &attempts {
            fleet.set_schema(&format!(
                "CREATE TABLE items (id INT PRIMARY KEY);\n{attempt};\n"
            ));
            let out = fleet.run(&["validate"]);
            let shown = text(&out);
            assert_eq!(out.status.code(), Some(1), "{attempt}: {shown}");
            assert!(shown.contains("schema.sql:2:1"), "{attempt}: {shown}");
            let out = fleet.run(&["reconcile", "--plan"]);
            assert_ne!(out.status.code(), Some(0), "{attempt}: {}", text(&out));
            intact(&fleet, &db);
        }
        fleet.client.sql(None, &format!("DROP DATABASE {db}"));
    }

    #[tokio::test]
    async fn with_validate_bypassed_the_build_user_makes_the_server_refuse() {
        let Some(url) = server_url() else { return };
        let fleet = Fleet::new(
            &url,
            "bypass",
            "CREATE TABLE items (id INT PRIMARY KEY);\n",
            &["acme"],
        );
        let db = victim(&fleet);
        let unchecked = [
            format!("CREATE TABLE {db}.planted (id INT)"),
            format!("DROP TABLE {db}.keep"),
            format!("DELETE FROM {db}.keep"),
            format!("CREATE TABLE copy AS SELECT * FROM {db}.keep"),
            format!("DROP DATABASE {db}"),
            "CREATE DEFINER=root@localhost VIEW v AS SELECT 1".into(),
            "SELECT 1 INTO OUTFILE '/tmp/tenantctl-outfile-bypass'".into(),
            "SET GLOBAL read_only = 1".into(),
            "CREATE USER pwned IDENTIFIED BY 'x'".into(),
            "GRANT ALL ON *.* TO CURRENT_USER".into(),
        ];
        for sql in &unchecked {
            let repo = bypassing_validate(fleet.root(), &fleet.blueprint, &[sql]);
            let err = build(&repo, "my", &fleet.blueprint).await.expect_err(sql);
            assert!(err.contains("rejected"), "{sql}: {err}");
            intact(&fleet, &db);
        }
        // The build user exists only while building.
        let left = fleet.client.sql(
            None,
            "SELECT count(*) FROM mysql.user WHERE user LIKE '\\_tenantctl\\_b\\_%' AND user NOT IN (SELECT user FROM information_schema.processlist)",
        );
        assert_eq!(left.trim(), "0", "a build user was left behind");
        let repo = bypassing_validate(fleet.root(), &fleet.blueprint, &[]);
        build(&repo, "my", &fleet.blueprint)
            .await
            .expect("a declaration builds");
        fleet.client.sql(None, &format!("DROP DATABASE {db}"));
    }

    #[test]
    fn dev_url_builds_the_model_elsewhere_so_a_plan_needs_only_read_access() {
        let Some(url) = server_url() else { return };
        let fleet = Fleet::new(
            &url,
            "devurl",
            "CREATE TABLE items (id INT PRIMARY KEY);\n",
            &["acme"],
        );
        fleet.expect(&["reconcile", "--apply"], 0);
        let reader = unique("ro");
        let db = fleet.database("acme");
        fleet.client.sql(
            None,
            &format!("CREATE USER '{reader}'@'%' IDENTIFIED BY 'ro-pass'; GRANT SELECT ON `{db}`.* TO '{reader}'@'%'"),
        );
        let reader_url = format!("mysql://{reader}:ro-pass@{}", fleet.client.host_port());
        fleet.set_schema("CREATE TABLE items (id INT PRIMARY KEY, name TEXT);\n");
        let plan = |config: &str, dev: Option<&str>| {
            fleet.write("tenantctl.yaml", config);
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"));
            cmd.arg("--repo")
                .arg(fleet.root())
                .args(["reconcile", "--plan"]);
            cmd.env("READONLY_URL", &reader_url);
            if let Some(dev) = dev {
                cmd.env("DEV_URL", dev);
            }
            cmd.output().unwrap()
        };
        let config = "servers:\n  my:\n    engine: mysql\n    url: \"${READONLY_URL}\"\n";
        let out = plan(config, None);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains("CREATE USER"),
            "the error names the missing privilege: {shown}"
        );
        assert!(!shown.contains("ro-pass"), "{shown}");
        let out = plan(
            &format!("{config}    dev_url: \"${{DEV_URL}}\"\n"),
            Some(&url),
        );
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(0), "{shown}");
        assert!(shown.contains("name"), "the plan adds the column: {shown}");
        let columns = fleet.client.sql(
            None,
            &format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = '{db}' AND table_name = 'items'"),
        );
        assert_eq!(columns.trim(), "1", "planning changed nothing");
        fleet.client.sql(None, &format!("DROP USER '{reader}'@'%'"));
    }
}

// -------------------------------------------------------------------- SQLite

mod lite {
    use super::*;
    use support::sqlite::Repo as TestRepo;

    #[test]
    fn attach_vacuum_into_and_pragmas_are_refused_and_write_no_file() {
        let target = tempfile::tempdir().unwrap();
        let file = target.path().join("written.db");
        let attempts = [
            format!("ATTACH DATABASE '{}' AS x", file.display()),
            format!("ATTACH '{}' AS x;\nCREATE TABLE x.t (a)", file.display()),
            format!("VACUUM INTO '{}'", file.display()),
            "PRAGMA writable_schema = 1".into(),
            "PRAGMA journal_mode = WAL".into(),
            "DETACH x".into(),
            "SELECT load_extension('/tmp/evil')".into(),
            "CREATE TEMP TABLE t (a)".into(),
            "BEGIN".into(),
        ];
        for attempt in &attempts {
            let repo = TestRepo::sqlite(
                &[(
                    "shop",
                    &format!("CREATE TABLE items (id INTEGER PRIMARY KEY);\n{attempt};\n"),
                )],
                &["acme"],
            );
            let out = repo.run(&["validate"]);
            assert_eq!(out.code, 1, "{attempt}: {}{}", out.stdout, out.stderr);
            assert!(
                out.stderr.contains("schema.sql:2:1") || out.stdout.contains("schema.sql:2:1"),
                "{attempt}: {}{}",
                out.stdout,
                out.stderr
            );
            let out = repo.run(&["reconcile", "--plan"]);
            assert_ne!(out.code, 0, "{attempt}");
            assert!(!file.exists(), "{attempt} wrote {}", file.display());
        }
    }

    #[tokio::test]
    async fn with_validate_bypassed_the_in_memory_build_still_refuses_attach() {
        let target = tempfile::tempdir().unwrap();
        let file = target.path().join("written.db");
        let repo = TestRepo::sqlite(
            &[("shop", "CREATE TABLE items (id INTEGER PRIMARY KEY);\n")],
            &["acme"],
        );
        let attach = format!("ATTACH '{}' AS x", file.display());
        let hidden = format!("CREATE TABLE y (a); ATTACH '{}' AS x", file.display());
        let vacuum = format!("VACUUM INTO '{}'", file.display());
        for sql in [&attach, &hidden, &vacuum] {
            let loaded = bypassing_validate(repo.path(), "shop", &[sql]);
            let err = build(&loaded, "local", "shop").await.expect_err(sql);
            assert!(err.contains("refused"), "{sql}: {err}");
            assert!(!file.exists(), "{sql} wrote {}", file.display());
        }
        // A view calling load_extension() is declared, never run.
        let loaded = bypassing_validate(
            repo.path(),
            "shop",
            &[&format!(
                "CREATE VIEW v AS SELECT load_extension('{}')",
                file.display()
            )],
        );
        build(&loaded, "local", "shop")
            .await
            .expect("a view is not run");
    }
}

#[test]
fn dev_url_is_refused_where_no_model_is_built_on_a_server() {
    let repo =
        support::sqlite::Repo::sqlite(&[("shop", "CREATE TABLE items (id INTEGER);\n")], &["acme"]);
    let config = std::fs::read_to_string(repo.path().join("tenantctl.yaml")).unwrap();
    repo.write(
        "tenantctl.yaml",
        &config.replace(
            "engine: sqlite\n",
            "engine: sqlite\n    dev_url: \"${DEV_URL}\"\n",
        ),
    );
    let out = repo.run(&["validate"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr)
            .contains("`dev_url` is for engines postgres and mysql"),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

/// Red team: MariaDB runs the text of a `/*M! … */` comment, which sqlparser
/// keeps as a comment, so `CREATE TABLE t (…) /*M! SELECT SLEEP(4) AS id */`
/// passed validate and ran its query (a 4 s sleep) during `reconcile --plan`.
#[test]
fn redteam_mariadb_executable_comments_are_refused() {
    use support::mysql::{Fleet, server_url};
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "execcmt",
        "CREATE TABLE items (id INT PRIMARY KEY);\n",
        &["acme"],
    );
    for attempt in [
        "CREATE TABLE t (id INT PRIMARY KEY) /*M! SELECT SLEEP(4) AS id */",
        "CREATE TABLE t (id INT PRIMARY KEY) /*M!100100 SELECT SLEEP(4) AS id */",
        "CREATE TABLE t (id INT PRIMARY KEY /*m! , v INT DEFAULT 1 */)",
    ] {
        fleet.set_schema(&format!(
            "CREATE TABLE items (id INT PRIMARY KEY);\n{attempt};\n"
        ));
        let out = fleet.run(&["validate"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{attempt}: {shown}");
        assert!(
            shown.contains("schema.sql:2:1: executable comment is refused"),
            "{attempt}: {shown}"
        );
        let started = std::time::Instant::now();
        let out = fleet.run(&["reconcile", "--plan"]);
        assert_ne!(out.status.code(), Some(0), "{attempt}: {}", text(&out));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{attempt}: the comment's query ran while planning"
        );
    }
    // A plain comment is still fine.
    fleet.set_schema("CREATE TABLE items (id INT PRIMARY KEY) /* M! not run */;\n");
    assert_eq!(fleet.run(&["validate"]).status.code(), Some(0));
}

/// Red team: the check for blueprint functions in generated columns and
/// partition keys looked for the function's name only, so an operator (or a
/// domain CHECK reached by a partition's bounds) calling it passed validate,
/// and during `reconcile --plan` the function ran outside a
/// security-restricted context, switched back to the connecting superuser
/// with `set_config('role', …)` and read a server file into the error shown
/// in the plan ("as postgres read <hostname>").
#[test]
fn redteam_blueprint_functions_reached_through_operators_or_domains_are_refused() {
    use support::postgres::{Fleet, pg_url};
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "unnamed", &["acme"]);
    let f = "CREATE FUNCTION f(int, int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN \
             PERFORM set_config('role', 'postgres', true); \
             RAISE EXCEPTION 'as % read %', current_user, pg_read_file('/etc/hostname'); \
             RETURN 1; END $$;\n";
    for rest in [
        "CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = f);\n\
         CREATE TABLE g (a int, b int GENERATED ALWAYS AS (1 ### 2) STORED);\n",
        "CREATE DOMAIN d AS int CHECK (f(VALUE, 1) = 1);\n\
         CREATE TABLE p (a d) PARTITION BY LIST (a);\n\
         CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);\n",
        // A Unicode-escaped name spells `f` without its letter.
        "CREATE TABLE g (a int, b int GENERATED ALWAYS AS (U&\"\\0066\"(1, 2)) STORED);\n",
    ] {
        fleet.write_schema(&format!("{f}{rest}"));
        let out = fleet.run(&["validate"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{rest}: {shown}");
        assert!(
            shown.contains("blueprint function in a generated column or partition key is refused"),
            "{rest}: {shown}"
        );
        let out = fleet.run(&["reconcile", "--plan"]);
        let shown = text(&out);
        assert_ne!(out.status.code(), Some(0), "{rest}: {shown}");
        assert!(!shown.contains("as postgres"), "{rest}: {shown}");
    }
}
