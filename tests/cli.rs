//! "CI can trust the exit code": usage errors, selectors, validate's
//! reporting, unreachable servers, `${VAR}` in settings, YAML mistakes — each
//! driven through the real binary, as a pipeline would run it.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Repo, Run};

fn sqlite_fleet() -> Repo {
    Repo::sqlite(
        &[("shop", "CREATE TABLE items (id INTEGER PRIMARY KEY);")],
        &["a"],
    )
}

/// Both output streams, for messages whose stream does not matter.
fn output(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[test]
fn usage_errors_exit_1_never_2() {
    let repo = sqlite_fleet();
    for args in [
        &["drift", "--formt", "json"][..],
        &["drift", "--format", "yaml"],
        &["reconcile", "--plan", "--concurrency", "many"],
        &["reconcile"],
        &["reconcile", "--plan", "--plan-file", "p.json"],
        &["frobnicate"],
        &[],
    ] {
        let run = repo.run(args);
        assert_eq!(
            run.code, 1,
            "{args:?} must exit 1 (usage error), got {}:\n{}",
            run.code, run.stderr
        );
        assert!(!run.stderr.trim().is_empty(), "{args:?}: no message");
    }
    assert!(
        repo.run(&["drift", "--formt", "json"])
            .stderr
            .contains("--formt")
    );
    // Nothing was planned or created by a usage error.
    assert!(!repo.path().join("data").exists());
}

#[test]
fn help_and_version_exit_0() {
    let repo = sqlite_fleet();
    for args in [
        &["--help"][..],
        &["--version"],
        &["drift", "--help"],
        &["reconcile", "-h"],
    ] {
        let run = repo.run(args).expect(0);
        assert!(!run.stdout.trim().is_empty(), "{args:?} printed nothing");
    }
}

#[test]
fn selector_on_an_undeclared_label_key_is_an_error_naming_the_known_keys() {
    let repo = Repo::copy_of("example-repo");
    let run = repo
        .run(&["reconcile", "--apply", "--selector", "teir=enterprise"])
        .expect(1);
    assert!(run.stderr.contains("teir"), "{}", run.stderr);
    assert!(run.stderr.contains("region, tier"), "{}", run.stderr);
    assert!(
        !repo.path().join(".tenantctl").exists(),
        "nothing may be applied"
    );
    let run = repo
        .run(&["drift", "--selector", "teir=enterprise"])
        .expect(1);
    assert!(run.stderr.contains("region, tier"), "{}", run.stderr);

    // A declared key with a value no tenant has selects nothing: not an error.
    repo.run(&["reconcile", "--plan", "--selector", "tier=platinum"])
        .expect(0);

    // Malformed selectors are usage errors.
    for bad in ["tier", "=enterprise", " =x"] {
        let run = repo
            .run(&["reconcile", "--plan", "--selector", bad])
            .expect(1);
        assert!(run.stderr.contains("KEY=VALUE"), "{bad:?}: {}", run.stderr);
    }
}

#[test]
fn validate_reports_every_problem_of_an_entry() {
    let repo = sqlite_fleet();
    repo.write(
        "tenants/bad.yaml",
        "tenants:\n  - name: Bad-Name\n    databases:\n      - blueprint: nope\n",
    );
    // A blueprint with a bad name whose blueprint.yaml names an unknown server.
    repo.write(
        "blueprints/Shop2/blueprint.yaml",
        "engine: sqlite\nserver: elsewhere\n",
    );
    repo.write(
        "blueprints/Shop2/schema.sql",
        "CREATE TABLE t (id INTEGER);",
    );
    let run = repo.run(&["validate"]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let has = |file: &str, text: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(file) && l.contains(text))
    };
    assert!(has("tenants/bad.yaml:2:11", "Bad-Name"), "{}", run.stdout);
    assert!(
        has("tenants/bad.yaml:4:20", "unknown blueprint \"nope\""),
        "{}",
        run.stdout
    );
    assert!(has("blueprints/Shop2", "Shop2"), "{}", run.stdout);
    assert!(
        has(
            "blueprints/Shop2/blueprint.yaml:2:9",
            "unknown server \"elsewhere\""
        ),
        "{}",
        run.stdout
    );
    assert_eq!(lines.len(), 4, "exactly these problems:\n{}", run.stdout);
}

#[test]
fn a_yaml_mistake_is_reported_once_at_its_own_line() {
    let repo = sqlite_fleet();
    // `local:` lacks its `servers:` level under environments.staging.
    repo.write(
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: data\n\
         environments:\n  staging:\n    local:\n      path: staging-data\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one problem, no cascade:\n{}", run.stdout);
    assert!(
        lines[0].starts_with("tenantctl.yaml:7:5: unknown field `local`"),
        "{}",
        run.stdout
    );
    // The commands that load the repository say the same, once.
    let run = repo.run(&["reconcile", "--plan"]).expect(1);
    assert!(run.stderr.contains("tenantctl.yaml:7:5:"), "{}", run.stderr);
    assert!(!run.stderr.contains("unknown server"), "{}", run.stderr);

    // A bad value in the second of two servers: at that value, not at the first server.
    repo.write(
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: data\n\
         \x20 pg:\n    engine: postgress\n    url: x\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one problem, no cascade:\n{}", run.stdout);
    assert!(
        lines[0].starts_with("tenantctl.yaml:6:13: unknown variant `postgress`"),
        "{}",
        run.stdout
    );

    // A blueprint.yaml that does not parse: reported there, not again by its tenants.
    let repo = sqlite_fleet();
    repo.write(
        "blueprints/shop/blueprint.yaml",
        "engine: sqlite\nserver: local\npolicy:\n  allow_destrutive: true\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one problem, no cascade:\n{}", run.stdout);
    assert!(
        lines[0]
            .starts_with("blueprints/shop/blueprint.yaml:4:3: unknown field `allow_destrutive`"),
        "{}",
        run.stdout
    );
}

#[test]
fn variables_are_expanded_in_every_string_server_setting() {
    let repo = sqlite_fleet();
    let elsewhere = tempfile::tempdir().unwrap();
    repo.write(
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: \"${TENANTCTL_CLI_TEST_DIR}/fleet\"\n\
         \x20   lock_timeout: \"${TENANTCTL_CLI_TEST_LOCK:-5s}\"\n",
    );
    let dir = elsewhere.path().to_str().unwrap();
    repo.run_with_env(
        &["reconcile", "--apply"],
        &[("TENANTCTL_CLI_TEST_DIR", dir)],
    )
    .expect(0);
    assert!(elsewhere.path().join("fleet/shop__a.db").exists());
    assert!(
        std::fs::read_dir(repo.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains('$')),
        "no directory named after the template"
    );

    // Unset: a located error, before anything is created.
    let run = repo.run(&["validate"]).expect(1);
    assert!(
        run.stdout.contains(
            "tenantctl.yaml:4:11: environment variable TENANTCTL_CLI_TEST_DIR is not set"
        ),
        "{}",
        run.stdout
    );
    let run = repo.run(&["reconcile", "--apply"]).expect(1);
    assert!(run.stderr.contains("tenantctl.yaml:4:11"), "{}", run.stderr);
    assert!(!repo.path().join("${TENANTCTL_CLI_TEST_DIR}").exists());

    // A zero connect timeout would fail every connection.
    repo.write(
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: data\n    connect_timeout: 0s\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    assert!(
        run.stdout
            .contains("tenantctl.yaml:5:22: connect_timeout must be more than 0s"),
        "{}",
        run.stdout
    );

    // A malformed reference in a URL is located too (its value is only read when connecting).
    repo.write(
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: data\n\
         \x20 pg:\n    engine: postgres\n    url: \"postgres://${PG_HOST/db\"\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    assert!(
        run.stdout.contains("tenantctl.yaml:7:10: unclosed"),
        "{}",
        run.stdout
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A repository with one tenant on one `engine` server at `url`.
fn fleet_at(engine: &str, url: &str, extra: &str) -> Repo {
    let repo = Repo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  db:\n    engine: {engine}\n    url: \"{url}\"\n{extra}"),
    );
    repo.write(
        "blueprints/app/blueprint.yaml",
        &format!("engine: {engine}\nserver: db\n"),
    );
    match engine {
        "postgres" | "mysql" => repo.write(
            "blueprints/app/schema.sql",
            "CREATE TABLE items (id int PRIMARY KEY);",
        ),
        "mongodb" => repo.write(
            "blueprints/app/schema.json",
            r#"{"collections": {"items": {}}}"#,
        ),
        _ => repo.write(
            "blueprints/app/schema.json",
            r#"{"defaults": {"flags:x": "on"}}"#,
        ),
    }
    repo.write(
        "tenants/all.yaml",
        "tenants:\n  - name: acme\n    databases:\n      - blueprint: app\n",
    );
    repo
}

fn timed(repo: &Repo, args: &[&str]) -> (Run, Duration) {
    let start = Instant::now();
    let run = repo.run(args);
    (run, start.elapsed())
}

#[test]
fn an_unreachable_server_fails_fast_with_the_drivers_reason() {
    let port = closed_port();
    let cases = [
        (
            "postgres",
            format!("postgres://u:p@127.0.0.1:{port}/postgres"),
            "",
        ),
        ("mysql", format!("mysql://u:p@127.0.0.1:{port}"), ""),
        ("redis", format!("redis://127.0.0.1:{port}"), ""),
        // MongoDB's driver keeps retrying a refused server until the
        // selection timeout, which `connect_timeout` sets: drift, which
        // also lists the server's databases, waits for it once.
        (
            "mongodb",
            format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
            "    connect_timeout: 3s\n",
        ),
    ];
    for (engine, url, extra) in &cases {
        let repo = fleet_at(engine, url, extra);
        for args in [&["reconcile", "--plan"][..], &["drift"]] {
            let (run, took) = timed(&repo, args);
            let text = output(&run);
            assert_eq!(run.code, 1, "{engine} {args:?}:\n{text}");
            assert!(
                text.to_lowercase().contains("connection refused"),
                "{engine} {args:?}: the driver's reason:\n{text}"
            );
            assert!(
                !text.contains("pool timed out"),
                "{engine} {args:?}:\n{text}"
            );
            let bound = if *engine == "mongodb" { 5 } else { 3 };
            assert!(
                took < Duration::from_secs(bound),
                "{engine} {args:?} took {took:?}:\n{text}"
            );
        }
    }
}

#[test]
fn a_server_that_never_answers_fails_after_its_connect_timeout() {
    // Accepts TCP connections (the kernel's backlog) but never speaks.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for (engine, url) in [
        (
            "postgres",
            format!("postgres://u:p@127.0.0.1:{port}/postgres"),
        ),
        ("mysql", format!("mysql://u:p@127.0.0.1:{port}")),
    ] {
        let repo = fleet_at(engine, &url, "    connect_timeout: 1s\n");
        let (run, took) = timed(&repo, &["reconcile", "--plan"]);
        let text = output(&run);
        assert_eq!(run.code, 1, "{engine}:\n{text}");
        assert!(text.contains("connect_timeout"), "{engine}:\n{text}");
        assert!(
            took < Duration::from_secs(6),
            "{engine} took {took:?}:\n{text}"
        );
    }
    drop(listener);
}

/// The example workflows parse, and have what a fresh runner needs.
#[test]
fn example_workflows_are_valid_and_build_tenantctl_from_source() {
    use marked_yaml::Node;
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example-repo/.github/workflows");
    let get = |node: &Node, key: &str| -> Option<Node> {
        node.as_mapping().and_then(|m| m.get(key)).cloned()
    };
    let text = |node: &Node| {
        node.as_scalar()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    };
    for (file, job) in [
        ("tenantctl-plan.yml", "plan"),
        ("tenantctl-apply.yml", "apply"),
        ("tenantctl-drift.yml", "drift"),
    ] {
        let source = std::fs::read_to_string(dir.join(file)).unwrap();
        let doc = marked_yaml::parse_yaml(0, &source).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            get(&doc, "name").is_some() && get(&doc, "on").is_some(),
            "{file}"
        );
        let job_node = get(&doc, "jobs")
            .and_then(|j| get(&j, job))
            .unwrap_or_else(|| panic!("{file}: jobs.{job}"));
        assert_eq!(
            text(&get(&job_node, "runs-on").unwrap()),
            "ubuntu-latest",
            "{file}"
        );
        let steps = get(&job_node, "steps").unwrap();
        let steps = steps.as_sequence().unwrap();
        let runs: Vec<String> = steps
            .iter()
            .filter_map(|s| get(s, "run"))
            .map(|r| text(&r))
            .collect();
        let uses: Vec<String> = steps
            .iter()
            .filter_map(|s| get(s, "uses"))
            .map(|r| text(&r))
            .collect();
        assert!(
            uses.iter().any(|u| u.starts_with("actions/checkout@")),
            "{file}"
        );
        assert!(
            uses.iter()
                .any(|u| u.starts_with("dtolnay/rust-toolchain@")),
            "{file}: cargo"
        );
        // Built from the sources: no crate named tenantctl is published.
        let install = runs
            .iter()
            .find(|r| r.contains("cargo install"))
            .unwrap_or_else(|| panic!("{file}: an install step"));
        assert!(
            install.contains("--git") && install.contains("--locked"),
            "{file}: {install}"
        );
        // The tenantctl step keeps its exit code (2 for drift is the alert).
        let main = runs
            .iter()
            .find(|r| {
                r.contains(&format!(
                    "tenantctl {}",
                    if job == "drift" { "drift" } else { "reconcile" }
                ))
            })
            .unwrap_or_else(|| panic!("{file}: the tenantctl step"));
        assert!(main.contains("exit $code"), "{file}: {main}");
        assert!(main.contains("--format markdown"), "{file}");
        let env = get(&job_node, "env").unwrap();
        assert!(
            text(&get(&env, "PG_URL").unwrap()).contains("secrets.PG_URL"),
            "{file}"
        );
        if job == "plan" {
            // A disposable PostgreSQL service as the dev database.
            let services = get(&job_node, "services").expect("plan: services");
            let (_, postgres) = services.as_mapping().unwrap().iter().next().unwrap();
            assert!(text(&get(postgres, "image").unwrap()).starts_with("postgres:"));
            let port = text(&get(postgres, "ports").unwrap().as_sequence().unwrap()[0]);
            let dev_url = text(&get(&env, "PG_DEV_URL").expect("plan: PG_DEV_URL"));
            let host_port = port.split(':').next().unwrap();
            assert!(
                dev_url.contains(&format!("localhost:{host_port}/")),
                "{dev_url} vs {port}"
            );
            assert!(
                runs.iter()
                    .any(|r| r.contains("--base") && r.contains("--out plan.json"))
            );
        }
    }
}
