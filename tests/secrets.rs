//! No output prints a secret, and every tenant database has its own identity.
//!
//! The secrets matrix drives the real binary against the real servers with
//! passwords holding `/ @ : % # ? &`, percent-encoding and non-ASCII, written
//! encoded and raw in the URL, through every output (text, JSON, Markdown,
//! saved plans, `tenants list`, `drift`, errors: wrong password, unreachable
//! server, a real user the server lets in but refuses work to), and asserts
//! that neither the password nor its percent-encoded form ever appears and
//! that the tool never panics (exit 101).

mod support;

use std::process::Command;

use support::server_url;
use support::sqlite::{Repo, Run};

/// The passwords of the matrix.
const PASSWORDS: &[&str] = &["Pa/ss@w:rd%25#?&x", "sl/ash", "ät@ñ:ü%C3%A4?x", "a&b=c#d?e"];

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Panics if `run` shows `password` (raw or percent-encoded) or panicked.
fn assert_no_secret(what: &str, run: &Run, password: &str) {
    assert_ne!(run.code, 101, "{what}: panicked\n{}", run.stderr);
    for piece in [password.to_string(), encode(password)] {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(&piece),
                "{what}: {stream} shows the password {piece:?}:\n{text}"
            );
        }
    }
}

fn pg_repo(url: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  main:\n    engine: postgres\n    url: \"{url}\"\n"),
    );
    repo.write(
        "blueprints/app/blueprint.yaml",
        "engine: postgres\nserver: main\n",
    );
    repo.write(
        "blueprints/app/schema.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\n",
    );
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: zz_nosuch_tenant\n    databases:\n      - blueprint: app\n",
    );
    repo
}

fn repo_for(engine: &str, url: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  main:\n    engine: {engine}\n    url: \"{url}\"\n"),
    );
    repo.write(
        "blueprints/app/blueprint.yaml",
        &format!("engine: {engine}\nserver: main\n"),
    );
    let (file, schema) = match engine {
        "mongodb" => ("schema.json", "{\"collections\": {\"items\": {}}}\n"),
        "redis" => ("schema.json", "{\"defaults\": {\"plan\": \"free\"}}\n"),
        _ => ("schema.sql", "CREATE TABLE items (id int PRIMARY KEY);\n"),
    };
    repo.write(&format!("blueprints/app/{file}"), schema);
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: zz_nosuch_tenant\n    databases:\n      - blueprint: app\n",
    );
    repo
}

/// Every output of the tool on `repo`, each checked for `password`.
fn every_output(repo: &Repo, password: &str) {
    let plan = repo.path().join("plan.json");
    let plan_arg = plan.to_string_lossy().to_string();
    for args in [
        vec!["validate"],
        vec!["tenants", "list"],
        vec!["tenants", "list", "--format", "json"],
        vec!["tenants", "list", "--format", "markdown"],
        vec!["reconcile", "--plan"],
        vec!["reconcile", "--plan", "--format", "json"],
        vec!["reconcile", "--plan", "--format", "markdown"],
        vec!["reconcile", "--plan", "--out", &plan_arg],
        vec!["reconcile", "--apply", "--max-failures", "1"],
        vec!["drift", "--format", "json"],
    ] {
        let run = repo.run(&args);
        assert_no_secret(&args.join(" "), &run, password);
    }
    if let Ok(saved) = std::fs::read_to_string(&plan) {
        for piece in [password.to_string(), encode(password)] {
            assert!(!saved.contains(&piece), "saved plan shows {piece:?}");
        }
    }
}

/// `scheme://user:PASSWORD@host...` with the password encoded, and raw.
fn urls(base: &str, user: &str, password: &str) -> Vec<String> {
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    vec![
        format!("{scheme}://{user}:{}@{rest}", encode(password)),
        format!("{scheme}://{user}:{password}@{rest}"),
    ]
}

#[test]
fn wrong_passwords_never_show_postgres() {
    let Some(base) = server_url("TENANTCTL_TEST_PG_URL") else {
        return;
    };
    for password in PASSWORDS {
        for url in urls(&base, "postgres", password) {
            every_output(&repo_for("postgres", &url), password);
        }
    }
}

#[test]
fn wrong_passwords_never_show_mysql() {
    let Some(base) = server_url("TENANTCTL_TEST_MYSQL_URL") else {
        return;
    };
    for password in PASSWORDS {
        for url in urls(&base, "root", password) {
            every_output(&repo_for("mysql", &url), password);
        }
    }
}

#[test]
fn wrong_passwords_never_show_redis() {
    let Some(base) = server_url("TENANTCTL_TEST_REDIS_URL") else {
        return;
    };
    for password in PASSWORDS {
        for url in urls(&base, "nosuchuser", password) {
            every_output(&repo_for("redis", &url), password);
        }
    }
}

#[test]
fn wrong_passwords_never_show_mongodb() {
    let Some(base) = server_url("TENANTCTL_TEST_MONGO_URL") else {
        return;
    };
    for password in &PASSWORDS[..2] {
        for url in urls(&base, "nosuchuser", password) {
            let url = if url.contains('?') || url.ends_with('/') {
                url
            } else {
                format!("{url}/?serverSelectionTimeoutMS=2000")
            };
            every_output(&repo_for("mongodb", &url), password);
        }
    }
}

#[test]
fn unreachable_servers_never_show_passwords() {
    // Each unreachable connect waits for the driver's timeout: one password.
    for password in &PASSWORDS[..1] {
        for (engine, url) in [
            ("postgres", "postgres://u:{}@127.0.0.1:1/db?password={}"),
            ("mysql", "mysql://u:{}@127.0.0.1:1/db"),
            ("redis", "redis://u:{}@127.0.0.1:1/"),
            (
                "mongodb",
                "mongodb://u:{}@127.0.0.1:1/?serverSelectionTimeoutMS=500",
            ),
        ] {
            let url = url.replace("{}", &encode(password));
            let repo = repo_for(engine, &url);
            for args in [
                &["tenants", "list", "--format", "json"][..],
                &["reconcile", "--plan", "--format", "json"],
            ] {
                let run = repo.run(args);
                assert_no_secret(
                    &format!("{engine} unreachable: {}", args.join(" ")),
                    &run,
                    password,
                );
                if args[0] == "reconcile" {
                    assert_eq!(run.code, 1, "{engine}: {}", run.stdout);
                }
            }
        }
    }
}

/// The password of a real PostgreSQL user who may log in but not create
/// databases: the errors come after a successful authentication.
#[test]
fn a_real_postgres_user_with_a_hostile_password() {
    let Some(base) = server_url("TENANTCTL_TEST_PG_URL") else {
        return;
    };
    let password = "Pa/ss@w:rd%25#?&ä'";
    let user = format!("tenantctl_secret_{}", std::process::id());
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .arg(&base)
            .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&format!(
        "CREATE ROLE {user} LOGIN PASSWORD '{}'",
        password.replace('\'', "''")
    ));
    let url = urls(&base, &user, password).remove(0);
    let repo = pg_repo(&url);
    let run = repo.run(&["reconcile", "--plan"]);
    psql(&format!("DROP ROLE {user}"));
    assert_no_secret("plan as a real user", &run, password);
    assert!(
        !run.stderr.contains("password authentication failed") && run.code == 1,
        "the user should log in and be refused work:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

fn redis_cli(base: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-u", base])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 10 §3 (c): two Redis blueprints with different `naming` get
/// different ACL users and key prefixes, named after the database name.
#[test]
fn redis_user_and_prefix_follow_naming() {
    let Some(base) = server_url("TENANTCTL_TEST_REDIS_URL") else {
        return;
    };
    let tenant = format!("t{}", std::process::id());
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  main:\n    engine: redis\n    url: \"{base}\"\n"),
    );
    for bp in ["cache", "queue"] {
        repo.write(
            &format!("blueprints/{bp}/blueprint.yaml"),
            &format!("engine: redis\nserver: main\nnaming: \"{bp}_{{tenant}}\"\n"),
        );
        repo.write(
            &format!("blueprints/{bp}/schema.json"),
            &format!(
                "{{\"acl\": {{\"commands\": \"+@read\"}}, \"defaults\": {{\"owner\": \"{bp}\"}}}}\n"
            ),
        );
    }
    repo.write(
        "tenants/all.yaml",
        &format!(
            "tenants:\n  - name: {tenant}\n    databases:\n      - blueprint: cache\n      - blueprint: queue\n"
        ),
    );
    let run = repo.run(&["reconcile", "--apply"]);
    let users = redis_cli(&base, &["ACL", "USERS"]);
    let cache = redis_cli(&base, &["GET", &format!("cache_{tenant}:owner")]);
    let queue = redis_cli(&base, &["GET", &format!("queue_{tenant}:owner")]);
    for bp in ["cache", "queue"] {
        let db = format!("{bp}_{tenant}");
        redis_cli(&base, &["ACL", "DELUSER", &db]);
        redis_cli(&base, &["DEL", &format!("{db}:owner")]);
        redis_cli(&base, &["DEL", &format!("_tenantctl:history:{{{db}}}")]);
    }
    let run = run.expect(0);
    assert!(
        users.contains(&format!("cache_{tenant}")),
        "{users}\n{}",
        run.stdout
    );
    assert!(users.contains(&format!("queue_{tenant}")), "{users}");
    assert!(!users.lines().any(|u| u == tenant), "{users}");
    assert_eq!(cache.trim(), "cache");
    assert_eq!(queue.trim(), "queue");
}

fn validate_fails_with(repo: &Repo, needles: &[&str]) -> Run {
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    for needle in needles {
        assert!(all.contains(needle), "no {needle:?} in:\n{all}");
    }
    run
}

/// Issue 10 §3 (a): two server entries for one PostgreSQL server (spelled
/// `localhost` and `127.0.0.1`) and names colliding across `__`.
#[test]
fn one_database_through_two_servers_and_a_double_underscore() {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  one:\n    engine: postgres\n    url: postgres://u:pw@localhost/postgres\n  two:\n    engine: postgres\n    url: postgres://other@127.0.0.1:5432/x\n",
    );
    for (bp, server) in [("a__b", "one"), ("a", "two")] {
        repo.write(
            &format!("blueprints/{bp}/blueprint.yaml"),
            &format!("engine: postgres\nserver: {server}\n"),
        );
        repo.write(
            &format!("blueprints/{bp}/schema.sql"),
            "CREATE TABLE items (id int PRIMARY KEY);\n",
        );
    }
    repo.write(
        "tenants/one.yaml",
        "tenants:\n  - name: c\n    databases:\n      - blueprint: a__b\n",
    );
    repo.write(
        "tenants/two.yaml",
        "tenants:\n  - name: b__c\n    databases:\n      - blueprint: a\n",
    );
    let run = validate_fails_with(
        &repo,
        &[
            "tenant \"c\"",
            "tenant \"b__c\"",
            "PostgreSQL database a__b__c",
            "tenants/one.yaml:2:11",
            "tenants/two.yaml:",
        ],
    );
    assert!(!run.stdout.contains("pw"), "{}", run.stdout);
    // Every command loads the repository through the same checks.
    let plan = repo.run(&["reconcile", "--plan"]);
    assert_eq!(plan.code, 1, "{}", plan.stderr);
    assert!(plan.stderr.contains("a__b__c"), "{}", plan.stderr);
}

/// Issue 10 §3 (b): names past PostgreSQL's 63 bytes and MySQL's 64
/// characters are refused by `validate`, not at apply time.
#[test]
fn names_past_the_engine_limit() {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  pg:\n    engine: postgres\n    url: postgres://h/db\n  my:\n    engine: mysql\n    url: mysql://h\n",
    );
    for (bp, engine, naming) in [
        ("pgapp", "postgres", "{tenant}_{tenant}_x"),
        ("myapp", "mysql", "{tenant}_{tenant}_xy"),
    ] {
        repo.write(
            &format!("blueprints/{bp}/blueprint.yaml"),
            &format!(
                "engine: {engine}\nserver: {}\nnaming: \"{naming}\"\n",
                &bp[..2]
            ),
        );
        repo.write(
            &format!("blueprints/{bp}/schema.sql"),
            "CREATE TABLE items (id int PRIMARY KEY);\n",
        );
    }
    // 30 + 1 + 30 + 2 = 63 bytes (PostgreSQL), 64 characters (MySQL): accepted.
    let tenant = "t".repeat(30);
    repo.write(
        "tenants/all.yaml",
        &format!(
            "tenants:\n  - name: {tenant}\n    databases:\n      - blueprint: pgapp\n      - blueprint: myapp\n"
        ),
    );
    assert_eq!(repo.run(&["validate"]).code, 0);
    // One more byte or character each: refused.
    repo.write(
        "blueprints/pgapp/blueprint.yaml",
        "engine: postgres\nserver: pg\nnaming: \"{tenant}_{tenant}_xy\"\n",
    );
    repo.write(
        "blueprints/myapp/blueprint.yaml",
        "engine: mysql\nserver: my\nnaming: \"{tenant}_{tenant}_xyz\"\n",
    );
    validate_fails_with(
        &repo,
        &[
            "PostgreSQL database name",
            "is 64 bytes long; the limit is 63",
            "MySQL database name",
            "is 65 characters long; the limit is 64",
            "tenants/all.yaml:2:11",
        ],
    );
}

/// Two Redis blueprints with the same `naming` on one server would share a
/// key prefix and ACL user: `validate` names both.
#[test]
fn redis_blueprints_sharing_a_prefix() {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  r1:\n    engine: redis\n    url: redis://admin:pw@localhost:6379/0\n  r2:\n    engine: redis\n    url: redis://127.0.0.1/3\n",
    );
    for (bp, server) in [("cache", "r1"), ("queue", "r2")] {
        repo.write(
            &format!("blueprints/{bp}/blueprint.yaml"),
            &format!("engine: redis\nserver: {server}\n"),
        );
        repo.write(&format!("blueprints/{bp}/schema.json"), "{}\n");
    }
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: acme\n    databases:\n      - blueprint: cache\n      - blueprint: queue\n  - name: admin\n    databases:\n      - blueprint: cache\n",
    );
    validate_fails_with(
        &repo,
        &[
            "Redis ACL user and key prefix acme",
            "blueprint queue",
            "blueprint cache",
            "\"admin\" is the user server r1 connects as",
        ],
    );
}

/// Two SQLite servers whose paths name one directory.
#[test]
fn sqlite_paths_of_one_directory() {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  a:\n    engine: sqlite\n    path: data\n  b:\n    engine: sqlite\n    path: ./other/../data/\n",
    );
    for (bp, server) in [("app", "a"), ("app2", "b")] {
        repo.write(
            &format!("blueprints/{bp}/blueprint.yaml"),
            &format!("engine: sqlite\nserver: {server}\nnaming: \"x_{{tenant}}\"\n"),
        );
        repo.write(
            &format!("blueprints/{bp}/schema.sql"),
            "CREATE TABLE items (id int PRIMARY KEY);\n",
        );
    }
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: acme\n    databases:\n      - blueprint: app\n      - blueprint: app2\n",
    );
    validate_fails_with(&repo, &["SQLite file x_acme.db", "server a", "server b"]);
}

/// Hostile YAML and JSON through the binary: located errors, never a crash.
#[test]
fn hostile_files_are_located_errors() {
    let repo = Repo::sqlite(
        &[("app", "CREATE TABLE items (id int PRIMARY KEY);\n")],
        &["acme"],
    );
    let deep: String = (0..3000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    repo.write("tenants/deep.yaml", &deep);
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("tenants/deep.yaml:65:"),
        "{}",
        run.stdout
    );
    // 50,000 nested sequences, a 100 KB file (overflowed release builds).
    repo.write("tenants/deep.yaml", &format!("{}x\n", "- ".repeat(50_000)));
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("tenants/deep.yaml:1:"),
        "{}",
        run.stdout
    );
    repo.write(
        "tenants/deep.yaml",
        &format!("{}x{}\n", "[".repeat(50_000), "]".repeat(50_000)),
    );
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("tenants/deep.yaml:1:"),
        "{}",
        run.stdout
    );
    std::fs::remove_file(repo.path().join("tenants/deep.yaml")).unwrap();

    repo.write(
        "tenants/two.yaml",
        "tenants:\n  - name: beta\n    databases:\n      - blueprint: app\n---\ntenants: []\n",
    );
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("tenants/two.yaml:5:1") && run.stdout.contains("second document"),
        "{}",
        run.stdout
    );
    std::fs::remove_file(repo.path().join("tenants/two.yaml")).unwrap();

    let config = std::fs::read_to_string(repo.path().join("tenantctl.yaml")).unwrap();
    repo.write("tenantctl.yaml", &format!("\u{feff}{config}"));
    repo.write(
        "tenants/bom.yaml",
        "\u{feff}tenants:\n  - name: Beta\n    databases: []\n",
    );
    let run = repo.run(&["validate"]);
    assert!(run.stdout.contains("tenants/bom.yaml:2:"), "{}", run.stdout);
    assert!(!run.stdout.contains('\u{feff}'), "{:?}", run.stdout);
    std::fs::remove_file(repo.path().join("tenants/bom.yaml")).unwrap();
    assert_eq!(repo.run(&["validate"]).code, 0);
}

/// Duplicate keys in a `schema.json` are a located error.
#[test]
fn duplicate_json_keys_are_located_errors() {
    for (engine, url, schema, line) in [
        (
            "mongodb",
            "mongodb://h",
            "{\"collections\": {\n  \"a\": {},\n  \"a\": {\"capped\": true}\n}}\n",
            3,
        ),
        (
            "redis",
            "redis://h",
            "{\"defaults\": {\"k\": \"1\",\n \"k\": \"2\"}}\n",
            2,
        ),
    ] {
        let repo = repo_for(engine, url);
        repo.write("blueprints/app/schema.json", schema);
        let run = repo.run(&["validate"]);
        assert_eq!(run.code, 1, "{engine}: {}", run.stdout);
        assert!(
            run.stdout
                .contains(&format!("blueprints/app/schema.json:{line}:"))
                && run.stdout.contains("duplicate key"),
            "{engine}: {}",
            run.stdout
        );
    }
}

/// A real MariaDB user with a hostile password, who may log in and nothing else.
#[test]
fn a_real_mysql_user_with_a_hostile_password() {
    let Some(base) = server_url("TENANTCTL_TEST_MYSQL_URL") else {
        return;
    };
    let password = "Pa/ss@w:rd%25#?&ä'";
    let user = format!("tsec_{}", std::process::id());
    let mysql = |sql: &str| {
        let out = Command::new("mysql")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                "3306",
                "-uroot",
                "-proot",
                "-e",
                sql,
            ])
            .output()
            .expect("mysql");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    mysql(&format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{}'",
        password.replace('\'', "\\'")
    ));
    let url = urls(&base, &user, password).remove(0);
    let repo = repo_for("mysql", &url);
    let plan = repo.run(&["reconcile", "--plan", "--format", "json"]);
    let apply = repo.run(&["reconcile", "--apply"]);
    let list = repo.run(&["tenants", "list"]);
    mysql(&format!("DROP USER '{user}'@'%'"));
    for (what, run) in [("plan", &plan), ("apply", &apply), ("list", &list)] {
        assert_no_secret(what, run, password);
    }
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!("'{user}'@")) && plan.stdout.contains("to database"),
        "the user should log in and be refused work: {}",
        plan.stdout
    );
}

/// A real Redis ACL user with a hostile password and the rights tenantctl
/// needs: the apply succeeds, and neither its report, the history list it
/// writes nor `drift` shows the password.
#[test]
fn a_real_redis_user_with_a_hostile_password() {
    let Some(base) = server_url("TENANTCTL_TEST_REDIS_URL") else {
        return;
    };
    let password = "Pa/ss@w:rd%25#?&ä";
    let user = format!("tsec_{}", std::process::id());
    let tenant = format!("tsecr{}", std::process::id());
    redis_cli(
        &base,
        &[
            "ACL",
            "SETUSER",
            &user,
            "on",
            &format!(">{password}"),
            "~*",
            "&*",
            "+@all",
        ],
    );
    let url = urls(&base, &user, password).remove(0);
    let repo = repo_for("redis", &url);
    repo.write(
        "tenants/all.yaml",
        &format!("tenants:\n  - name: {tenant}\n    databases:\n      - blueprint: app\n"),
    );
    let saved_path = repo.path().join("plan.json");
    let saved_arg = saved_path.to_string_lossy().to_string();
    let planned = repo.run(&["reconcile", "--plan", "--out", &saved_arg]);
    let saved = std::fs::read_to_string(&saved_path).unwrap_or_default();
    let apply = repo.run(&["reconcile", "--apply", "--format", "json"]);
    let drift = repo.run(&["drift", "--format", "markdown"]);
    let plan = repo.run(&["reconcile", "--plan", "--format", "markdown"]);
    let history = redis_cli(
        &base,
        &[
            "LRANGE",
            &format!("_tenantctl:history:{{{tenant}}}"),
            "0",
            "-1",
        ],
    );
    redis_cli(
        &base,
        &[
            "DEL",
            &format!("_tenantctl:history:{{{tenant}}}"),
            &format!("{tenant}:plan"),
        ],
    );
    redis_cli(&base, &["ACL", "DELUSER", &user]);
    for (what, run) in [
        ("saving a plan", &planned),
        ("apply", &apply),
        ("drift", &drift),
        ("plan", &plan),
    ] {
        assert_no_secret(what, run, password);
    }
    assert_eq!(apply.code, 0, "{}\n{}", apply.stdout, apply.stderr);
    assert!(
        saved.contains("SET"),
        "the saved plan has the steps: {saved}"
    );
    for piece in [password.to_string(), encode(password)] {
        assert!(!saved.contains(&piece), "saved plan shows {piece:?}");
    }
    assert!(history.contains("applied"), "no history written: {history}");
    for piece in [password.to_string(), encode(password)] {
        assert!(!history.contains(&piece), "history shows {piece:?}");
    }
}

/// A tenant database named as the database a PostgreSQL server keeps its
/// tenant schemas in would be that shared database.
#[test]
fn a_tenant_database_that_holds_the_tenant_schemas() {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  shared:\n    engine: postgres\n    url: postgres://localhost/x\n    tenant_schemas_in: app__acme\n  own:\n    engine: postgres\n    url: postgres://127.0.0.1:5432/y\n",
    );
    repo.write(
        "blueprints/app/blueprint.yaml",
        "engine: postgres\nserver: own\n",
    );
    repo.write(
        "blueprints/app/schema.sql",
        "CREATE TABLE items (id int PRIMARY KEY);\n",
    );
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: acme\n    databases:\n      - blueprint: app\n  - name: beta\n    databases:\n      - blueprint: app\n        server: shared\n",
    );
    validate_fails_with(
        &repo,
        &[
            "tenant \"acme\"",
            "PostgreSQL database app__acme",
            "server shared keeps its tenant schemas",
        ],
    );
}

/// A YAML type mistake quotes the value it read: `validate` redacts it.
#[test]
fn validate_messages_quoting_a_url_are_redacted() {
    let repo = repo_for("postgres", "postgres://h/db");
    repo.write(
        "tenantctl.yaml",
        "servers:\n  main:\n    engine: \"postgres://u:s3cr%2Fet@h/db\"\n    url: postgres://h/db\n",
    );
    let run = repo.run(&["validate"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_no_secret("validate", &run, "s3cr%2Fet");
    // The message still says what is wrong, with the URL redacted.
    assert!(
        run.stdout
            .contains("unknown variant `postgres://u:***@h/db`"),
        "{}",
        run.stdout
    );
}

/// Red team: spellings of the loopback address the resolver accepts but the
/// identity check did not know (`[::ffff:127.0.0.1]`, `127.1`, `0.0.0.0`,
/// `2130706433`, `0x7f.0.0.1`) made a second server entry for the same
/// PostgreSQL server look like another one, so two blueprints planned into
/// one database.
#[test]
fn redteam_loopback_spellings_are_one_server() {
    for host in [
        "[::ffff:127.0.0.1]",
        "127.1",
        "0.0.0.0",
        "[::]",
        "2130706433",
        "0x7f.0.0.1",
        "LOCALHOST.",
    ] {
        let repo = Repo::new();
        repo.write(
            "tenantctl.yaml",
            &format!(
                "servers:\n  one:\n    engine: postgres\n    url: postgres://u:pw@127.0.0.1:5432/postgres\n  two:\n    engine: postgres\n    url: postgres://u:pw@{host}:5432/postgres\n"
            ),
        );
        for (bp, server) in [("a", "one"), ("b", "two")] {
            repo.write(
                &format!("blueprints/{bp}/blueprint.yaml"),
                &format!("engine: postgres\nserver: {server}\nnaming: \"shared_{{tenant}}\"\n"),
            );
            repo.write(
                &format!("blueprints/{bp}/schema.sql"),
                "CREATE TABLE items (id int PRIMARY KEY);\n",
            );
        }
        repo.write(
            "tenants/all.yaml",
            "tenants:\n  - name: c\n    databases:\n      - blueprint: a\n      - blueprint: b\n",
        );
        validate_fails_with(&repo, &["PostgreSQL database shared_c"]);
    }
}
