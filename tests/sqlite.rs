//! End-to-end tests of the SQLite engine: the real binary on real database files.

mod common;

use common::{Repo, sqlite_column as column, sqlite_count as count, sqlite_exec as exec};

#[test]
fn example_repo_applies_then_plans_nothing() {
    let repo = Repo::copy_of("example-repo");
    let first = repo
        .run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(2);
    assert!(first.stdout.contains("5 to create"), "{}", first.stdout);
    repo.run(&["reconcile", "--apply"]).expect(0);
    for db in [
        "orders__acme",
        "orders__globex",
        "orders__initech",
        "users__acme",
        "users__globex",
    ] {
        assert!(
            repo.path()
                .join(".tenantctl/data")
                .join(format!("{db}.db"))
                .exists(),
            "{db} missing"
        );
    }
    let again = repo
        .run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
    assert!(
        again.stdout.contains("0 to change, 0 to create, 5 in sync"),
        "{}",
        again.stdout
    );
}

const ITEMS_V1: &str = "CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    qty INTEGER NOT NULL DEFAULT 1,
    note TEXT
);";

/// Each (description, desired schema) is applied to tenants holding rows of
/// ITEMS_V1: the plan shows changes, the apply converges, the rows stay.
#[test]
fn schema_changes_converge_and_keep_rows() {
    let cases: &[(&str, &str)] = &[
        ("add column", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1, note TEXT, sku TEXT DEFAULT 'n/a');"),
        ("add index", &format!("{ITEMS_V1}\nCREATE INDEX items_name_idx ON items (name);")),
        ("add unique expression index", &format!("{ITEMS_V1}\nCREATE UNIQUE INDEX items_lower_name ON items (lower(name));")),
        ("add partial index", &format!("{ITEMS_V1}\nCREATE INDEX items_big ON items (qty DESC) WHERE qty > 10;")),
        ("add check", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1 CHECK (qty > 0), note TEXT);"),
        ("change column type", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty REAL NOT NULL DEFAULT 1, note TEXT);"),
        ("drop not null", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER NOT NULL DEFAULT 1, note TEXT);"),
        ("set not null with default", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1, note TEXT NOT NULL DEFAULT '');"),
        ("add foreign key and table", "CREATE TABLE kinds (id INTEGER PRIMARY KEY, label TEXT);
             CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1, note TEXT,
                                 kind_id INTEGER REFERENCES kinds (id) ON DELETE SET NULL);"),
        ("add view and trigger", &format!("{ITEMS_V1}
             CREATE VIEW big_items AS SELECT id, name FROM items WHERE qty > 10;
             CREATE TRIGGER items_qty_guard BEFORE UPDATE OF qty ON items WHEN NEW.qty < 0
             BEGIN SELECT RAISE(ABORT, 'negative'); END;")),
        ("view with an instead-of trigger", &format!("{ITEMS_V1}
             CREATE VIEW named AS SELECT id, name FROM items;
             CREATE TRIGGER named_insert INSTEAD OF INSERT ON named
             BEGIN INSERT INTO items (id, name) VALUES (NEW.id, NEW.name); END;")),
        ("composite primary key and without rowid", "CREATE TABLE items (id INTEGER NOT NULL, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1, note TEXT,
             PRIMARY KEY (id, name)) WITHOUT ROWID;"),
        ("autoincrement", "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1, note TEXT);"),
    ];
    for (what, desired) in cases {
        let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &["acme", "globex"]);
        repo.run(&["reconcile", "--apply"]).expect(0);
        for tenant in ["acme", "globex"] {
            exec(
                &repo.sqlite_file(&format!("shop__{tenant}")),
                "INSERT INTO items (id, name, qty, note) VALUES (1, 'apple', 3, NULL), (2, 'pear', 12, 'ripe'), (3, 'fig', 1, 'x')",
            );
        }
        repo.write("blueprints/shop/schema.sql", desired);
        let plan = repo.run(&["reconcile", "--plan", "--detailed-exitcode"]);
        assert_eq!(
            plan.code, 2,
            "{what}: plan should show changes\n{}{}",
            plan.stdout, plan.stderr
        );
        let apply = repo.run(&["reconcile", "--apply"]);
        assert_eq!(
            apply.code, 0,
            "{what}: apply failed\n{}{}",
            apply.stdout, apply.stderr
        );
        let after = repo.run(&["reconcile", "--plan", "--detailed-exitcode"]);
        assert_eq!(after.code, 0, "{what}: not converged\n{}", after.stdout);
        for tenant in ["acme", "globex"] {
            let file = repo.sqlite_file(&format!("shop__{tenant}"));
            let rows = column(
                &file,
                "SELECT id || ':' || name || ':' || CAST(qty AS INTEGER) FROM items ORDER BY id",
            );
            assert_eq!(
                rows,
                ["1:apple:3", "2:pear:12", "3:fig:1"],
                "{what}: rows changed in {tenant}"
            );
            assert_eq!(
                count(&file, "SELECT count(*) FROM _tenantctl_history"),
                2,
                "{what}: one history record per apply"
            );
        }
    }
}

#[test]
fn destructive_changes_need_consent() {
    let repo = Repo::sqlite(
        &[(
            "shop",
            &format!("{ITEMS_V1}\nCREATE TABLE old_log (id INTEGER PRIMARY KEY);"),
        )],
        &["acme"],
    );
    repo.run(&["reconcile", "--apply"]).expect(0);
    let file = repo.sqlite_file("shop__acme");
    exec(
        &file,
        "INSERT INTO items (id, name, note) VALUES (1, 'apple', 'keep me')",
    );
    // Drop the column `note` and the table `old_log`.
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1);",
    );
    let plan = repo
        .run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(2);
    assert!(
        plan.stdout.contains("destructive: drops column note"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("destructive: drops table old_log"),
        "{}",
        plan.stdout
    );
    let refused = repo.run(&["reconcile", "--apply"]).expect(1);
    assert!(refused.stdout.contains("refused"), "{}", refused.stdout);
    assert_eq!(column(&file, "SELECT note FROM items"), ["keep me"]);
    assert_eq!(
        count(
            &file,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'old_log'"
        ),
        1
    );

    repo.run(&["reconcile", "--apply", "--allow-destructive"])
        .expect(0);
    assert_eq!(
        count(
            &file,
            "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'note'"
        ),
        0
    );
    assert_eq!(
        count(
            &file,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'old_log'"
        ),
        0
    );
    assert_eq!(column(&file, "SELECT name FROM items"), ["apple"]);
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
}

#[test]
fn blueprint_policy_can_allow_destructive_changes() {
    let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &["acme"]);
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.write(
        "blueprints/shop/blueprint.yaml",
        "engine: sqlite\nserver: local\npolicy:\n  allow_destructive: true\n",
    );
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    );
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
}

/// A statement failing on the third of five tenants leaves that tenant
/// untouched, the others converged, and a re-run converges all.
#[test]
fn failing_tenant_is_rolled_back_and_rerun_converges() {
    let tenants = ["t1", "t2", "t3", "t4", "t5"];
    let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &tenants);
    repo.run(&["reconcile", "--apply"]).expect(0);
    for t in tenants {
        exec(
            &repo.sqlite_file(&format!("shop__{t}")),
            "INSERT INTO items (id, name, qty) VALUES (1, 'a', 5), (2, 'b', 7)",
        );
    }
    // t3 holds a row the new CHECK rejects: its rebuild fails mid-transaction.
    let bad = repo.sqlite_file("shop__t3");
    exec(
        &bad,
        "INSERT INTO items (id, name, qty) VALUES (3, 'broken', -1)",
    );
    let before: Vec<String> = column(&bad, "SELECT sql FROM sqlite_schema ORDER BY name");
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 1 CHECK (qty >= 0), note TEXT, added TEXT);
         CREATE INDEX items_name ON items (name);",
    );
    let apply = repo
        .run(&["reconcile", "--apply", "--format", "json"])
        .expect(1);
    let report = apply.json();
    let statuses: Vec<(String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (tenant, status) in &statuses {
        let expected = if tenant == "t3" { "failed" } else { "applied" };
        assert_eq!(status, expected, "{tenant}: {}", apply.stdout);
    }
    assert_eq!(
        column(&bad, "SELECT sql FROM sqlite_schema ORDER BY name"),
        before,
        "t3 schema must be untouched"
    );
    assert_eq!(count(&bad, "SELECT count(*) FROM items"), 3);

    exec(&bad, "UPDATE items SET qty = 0 WHERE id = 3");
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
    for t in tenants {
        let file = repo.sqlite_file(&format!("shop__{t}"));
        assert!(count(&file, "SELECT count(*) FROM items") >= 2);
        assert_eq!(
            count(
                &file,
                "SELECT count(*) FROM pragma_table_info('items') WHERE name = 'added'"
            ),
            1
        );
    }
}

/// Two applies at once: the tenant lock makes one wait, re-check, and find
/// nothing to do, so every tenant is migrated exactly once.
#[test]
fn concurrent_applies_migrate_each_tenant_once() {
    let tenants: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &names);
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.write(
        "blueprints/shop/schema.sql",
        &format!("{ITEMS_V1}\nCREATE INDEX items_name ON items (name);"),
    );
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| repo.run(&["reconcile", "--apply"]));
        let b = s.spawn(|| repo.run(&["reconcile", "--apply"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    a.expect(0);
    b.expect(0);
    for t in &tenants {
        let file = repo.sqlite_file(&format!("shop__{t}"));
        assert_eq!(
            count(&file, "SELECT count(*) FROM _tenantctl_history"),
            2,
            "{t} migrated twice"
        );
    }
}

#[test]
fn validate_reports_every_mistake_with_its_position() {
    let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &["acme"]);
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE a (id INTEGER PRIMARY KEY);\nINSERT INTO a VALUES (1);\nCREATE TABLE b (id INT,, x INT);\nDROP TABLE c;\n",
    );
    repo.write(
        "tenants/more.yaml",
        "tenants:\n  - name: Bad-Name\n    databases:\n      - blueprint: shop\n  - name: acme\n    databases:\n      - blueprint: shop\n  - name: globex\n    databases:\n      - blueprint: nope\n",
    );
    repo.write(
        "tenants/typo.yaml",
        "tenants:\n  - name: initech\n    databses: []\n",
    );
    let out = repo.run(&["validate"]).expect(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let expect = [
        "blueprints/shop/schema.sql:2:1: data change is refused in a blueprint: changes data",
        "blueprints/shop/schema.sql:3:24: SQL syntax",
        "blueprints/shop/schema.sql:4:1: DROP is refused in a blueprint",
        "tenants/more.yaml:2:11: tenant name \"Bad-Name\"",
        "tenants/more.yaml:5:11: duplicate tenant \"acme\": first declared at tenants/all.yaml:2:11",
        "tenants/more.yaml:10:20: tenant \"globex\": unknown blueprint \"nope\"",
        "tenants/typo.yaml:3:5: unknown field `databses`",
    ];
    for e in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(e)),
            "missing {e:?} in:\n{}",
            out.stdout
        );
    }
    assert_eq!(
        lines.len(),
        expect.len(),
        "unexpected extra lines:\n{}",
        out.stdout
    );
}

#[test]
fn blueprint_rejected_by_sqlite_names_the_statement() {
    let repo = Repo::sqlite(
        &[(
            "shop",
            "CREATE TABLE a (id INTEGER PRIMARY KEY);\n\nCREATE INDEX i ON missing_table (x);",
        )],
        &["acme"],
    );
    let out = repo.run(&["reconcile", "--plan"]).expect(1);
    assert!(
        out.stdout
            .contains("blueprints/shop/schema.sql:3:1: SQLite rejected this CREATE INDEX"),
        "{}",
        out.stdout
    );
}

#[test]
fn filters_select_tenants_and_report_as_json() {
    let repo = Repo::copy_of("example-repo");
    let out = repo
        .run(&[
            "reconcile",
            "--plan",
            "--selector",
            "tier=standard",
            "--blueprint",
            "orders",
            "--format",
            "json",
        ])
        .expect(0);
    let report = out.json();
    let tenants: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["globex", "initech"]);
    let target = &report["targets"][0];
    assert_eq!(target["status"], "create");
    assert_eq!(target["database"], "orders__globex");
    assert!(
        target["steps"][0]["statements"][0]
            .as_str()
            .unwrap()
            .starts_with("CREATE TABLE customers")
    );
    assert_eq!(
        report["groups"].as_array().unwrap().len(),
        1,
        "identical plans are grouped"
    );
    assert_eq!(report["summary"]["by_status"]["create"], 2);

    repo.run(&["reconcile", "--apply", "--tenant", "acme"])
        .expect(0);
    assert!(repo.path().join(".tenantctl/data/orders__acme.db").exists());
    assert!(
        !repo
            .path()
            .join(".tenantctl/data/orders__globex.db")
            .exists()
    );
    let typo = repo
        .run(&["reconcile", "--plan", "--tenant", "acmee"])
        .expect(1);
    assert!(
        typo.stderr.contains("--tenant acmee: no such tenant"),
        "{}",
        typo.stderr
    );
}

#[test]
fn markdown_plan_groups_and_flags_hazards() {
    let repo = Repo::sqlite(&[("shop", ITEMS_V1)], &["a1", "a2", "a3"]);
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    );
    let md = repo
        .run(&["reconcile", "--plan", "--format", "markdown"])
        .expect(0)
        .stdout;
    assert!(
        md.contains("| `shop` | to change | 3 (a1, a2, a3) | **destructive**"),
        "{md}"
    );
    assert!(md.contains("```sql"), "{md}");
    assert!(md.contains("[!CAUTION]"), "{md}");
}

#[test]
fn tenants_list_never_prints_passwords() {
    let repo = Repo::copy_of("example-repo");
    let config = std::fs::read_to_string(repo.path().join("tenantctl.yaml")).unwrap();
    let config = config.replace(
        "servers:\n",
        "servers:\n  pg:\n    engine: postgres\n    url: \"${PG_URL}\"\n",
    );
    repo.write("tenantctl.yaml", &config);
    repo.write(
        "blueprints/ledger/blueprint.yaml",
        "engine: postgres\nserver: pg\n",
    );
    repo.write(
        "blueprints/ledger/schema.sql",
        "CREATE TABLE entries (id bigint PRIMARY KEY);",
    );
    repo.write(
        "tenants/ledger.yaml",
        "tenants:\n  - name: hooli\n    databases:\n      - blueprint: ledger\n",
    );
    let env = [("PG_URL", "postgres://app:s3cr3t@db:5432/x")];
    for format in ["json", "text", "markdown"] {
        let out = repo
            .run_with_env(&["tenants", "list", "--format", format], &env)
            .expect(0);
        assert!(!out.stdout.contains("s3cr3t"), "{format}: {}", out.stdout);
        if format == "json" {
            let rows = out.json();
            assert_eq!(rows.as_array().unwrap().len(), 6);
            let ledger = rows
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["tenant"] == "hooli")
                .unwrap();
            assert_eq!(ledger["location"], "postgres://app:***@db:5432/x");
        }
    }
}

#[test]
fn templates_can_be_overridden() {
    let repo = Repo::copy_of("example-repo");
    repo.write(
        "my-templates/report.md.j2",
        "custom: {{ report.summary.total }} databases, {{ report.groups | length }} groups\n",
    );
    let templates = repo.path().join("my-templates");
    let out = repo
        .run(&[
            "--templates",
            templates.to_str().unwrap(),
            "reconcile",
            "--plan",
            "--format",
            "markdown",
        ])
        .expect(0);
    assert_eq!(out.stdout, "custom: 5 databases, 2 groups\n");
    let text = repo
        .run(&[
            "--templates",
            templates.to_str().unwrap(),
            "reconcile",
            "--plan",
        ])
        .expect(0);
    assert!(
        text.stdout.contains("Plan: 0 to change, 5 to create"),
        "text keeps the built-in template: {}",
        text.stdout
    );
}

#[test]
fn virtual_tables_are_created_and_rebuilt_keeping_rows() {
    let v1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
              CREATE VIRTUAL TABLE notes_fts USING fts5(body);";
    let repo = Repo::sqlite(&[("docs", v1)], &["acme"]);
    repo.run(&["validate"]).expect(0);
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
    let file = repo.sqlite_file("docs__acme");
    exec(
        &file,
        "INSERT INTO notes_fts (body) VALUES ('hello world'), ('second note')",
    );
    repo.write(
        "blueprints/docs/schema.sql",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         CREATE VIRTUAL TABLE notes_fts USING fts5(body, tokenize = 'porter');",
    );
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(2);
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(0);
    assert_eq!(
        column(
            &file,
            "SELECT body FROM notes_fts WHERE notes_fts MATCH 'hello'"
        ),
        ["hello world"]
    );
    assert_eq!(count(&file, "SELECT count(*) FROM notes_fts"), 2);
}
