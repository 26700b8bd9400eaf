//! The git workflow end to end on SQLite fleets in real git repositories:
//! PR plans (`--base`), saved plans, drift states, the dirty-worktree guard.

mod support;

use support::{commit_all, git};

use support::sqlite::{Repo, sqlite_column as query, sqlite_exec as exec};

/// A git repository with blueprints `shop` and `users`; tenants a and b use both.
fn fleet() -> Repo {
    let repo = Repo::sqlite(
        &[
            (
                "shop",
                "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
            ),
            (
                "users",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);",
            ),
        ],
        &["a", "b"],
    );
    repo.write(".gitignore", "data/\n");
    git(repo.path(), &["init", "-q"]);
    commit_all(repo.path(), "base");
    repo
}

fn statuses(report: &serde_json::Value) -> Vec<String> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}/{}:{}",
                t["tenant"].as_str().unwrap(),
                t["blueprint"].as_str().unwrap(),
                t["status"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn pr_plan_shows_the_declared_change_and_plans_only_affected_databases() {
    let repo = fleet();
    repo.run(&["reconcile", "--apply"]).expect(0);
    git(repo.path(), &["checkout", "-q", "-b", "feature"]);
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);",
    );
    repo.write(
        "tenants/c.yaml",
        "tenants:\n  - name: c\n    databases:\n      - blueprint: users\n",
    );
    commit_all(repo.path(), "add a column and a tenant");

    let out = repo
        .run(&["reconcile", "--plan", "--base", "main", "--format", "json"])
        .expect(0);
    let report = out.json();
    assert_eq!(
        statuses(&report),
        ["a/shop:changes", "b/shop:changes", "c/users:create"]
    );
    let declared = &report["declared"];
    assert_eq!(declared["blueprints"].as_array().unwrap().len(), 1);
    assert_eq!(declared["blueprints"][0]["name"], "shop");
    assert_eq!(declared["blueprints"][0]["change"], "changed");
    let diff = declared["blueprints"][0]["diff"].as_str().unwrap();
    assert!(
        diff.contains(
            "+CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);"
        ),
        "{diff}"
    );
    assert!(
        diff.contains("-CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
        "{diff}"
    );
    assert_eq!(declared["tenants"].as_array().unwrap().len(), 1);
    assert_eq!(declared["tenants"][0]["name"], "c");
    assert_eq!(declared["tenants"][0]["change"], "added");

    let all = repo
        .run(&[
            "reconcile",
            "--plan",
            "--base",
            "main",
            "--all",
            "--format",
            "json",
        ])
        .expect(0)
        .json();
    assert_eq!(
        all["targets"].as_array().unwrap().len(),
        5,
        "--all plans every database"
    );

    let md = repo
        .run(&[
            "reconcile",
            "--plan",
            "--base",
            "main",
            "--format",
            "markdown",
        ])
        .expect(0)
        .stdout;
    assert!(md.contains("<b>Declared changes</b>"), "{md}");
    assert!(md.contains("```diff"), "{md}");
    assert!(md.contains("tenant `c` added"), "{md}");
    assert!(md.contains("| `shop` | to change | 2 (a, b) |"), "{md}");
    let text = repo
        .run(&["reconcile", "--plan", "--base", "main"])
        .expect(0)
        .stdout;
    assert!(text.contains("changed blueprint shop"), "{text}");
    assert!(text.contains("add column note TEXT"), "{text}");
}

#[test]
fn saved_plan_applies_exactly_and_refuses_a_tenant_changed_since() {
    let repo = fleet();
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price INTEGER);",
    );
    let commit = commit_all(repo.path(), "price");
    let plan_file = repo.path().join("plan.json");
    repo.run(&["reconcile", "--plan", "--out", plan_file.to_str().unwrap()])
        .expect(0);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["format"], "tenantctl-plan/2");
    assert_eq!(saved["git_commit"], commit.as_str());
    assert_eq!(
        saved["targets"].as_array().unwrap().len(),
        2,
        "only databases with changes are saved"
    );

    // Someone changes tenant a by hand between review and apply.
    exec(
        &repo.sqlite_file("shop__a"),
        "CREATE TABLE hack (x INTEGER)",
    );
    let out = repo
        .run(&[
            "reconcile",
            "--apply",
            "--plan-file",
            plan_file.to_str().unwrap(),
            "--format",
            "json",
        ])
        .expect(1);
    let report = out.json();
    assert_eq!(statuses(&report), ["a/shop:refused", "b/shop:applied"]);
    assert!(
        report["targets"][0]["message"]
            .as_str()
            .unwrap()
            .contains("changed since the plan was made")
    );
    assert_eq!(
        query(
            &repo.sqlite_file("shop__a"),
            "SELECT name FROM pragma_table_info('items') ORDER BY cid"
        ),
        ["id", "name"]
    );
    assert_eq!(
        query(
            &repo.sqlite_file("shop__b"),
            "SELECT name FROM pragma_table_info('items') ORDER BY cid"
        ),
        ["id", "name", "price"]
    );
    assert_eq!(
        query(
            &repo.sqlite_file("shop__b"),
            "SELECT git_commit FROM _tenantctl_history ORDER BY id DESC LIMIT 1"
        ),
        [commit]
    );
}

#[test]
fn drift_tells_in_sync_pending_drifted_missing_and_orphan_apart() {
    let repo = fleet();
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.run(&["drift", "--format", "json"]).expect(0);

    // pending: users changes in git, not applied yet.
    repo.write(
        "blueprints/users/schema.sql",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);",
    );
    commit_all(repo.path(), "users.name");
    // drifted: someone adds a column to shop__a by hand.
    exec(
        &repo.sqlite_file("shop__a"),
        "ALTER TABLE items ADD COLUMN hack TEXT",
    );
    // missing: shop__b's database is gone. orphan: a shop database nobody declares.
    std::fs::copy(repo.sqlite_file("shop__b"), repo.sqlite_file("shop__ghost")).unwrap();
    std::fs::remove_file(repo.sqlite_file("shop__b")).unwrap();

    let out = repo.run(&["drift", "--format", "json"]).expect(2);
    let report = out.json();
    let mut got = statuses(&report);
    got.sort();
    assert_eq!(
        got,
        [
            "a/shop:drifted",
            "a/users:pending",
            "b/shop:missing",
            "b/users:pending",
            "ghost/shop:orphan"
        ]
    );
    let drifted = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "drifted")
        .unwrap();
    assert_eq!(
        drifted["steps"][0]["description"], "alter table items: add column hack TEXT",
        "drift shows what was done by hand"
    );

    let text = repo.run(&["drift"]).expect(2).stdout;
    assert!(
        text.contains("Drift: 0 in sync, 2 pending, 1 drifted, 1 missing, 1 orphan"),
        "{text}"
    );
    let md = repo
        .run(&["drift", "--format", "markdown"])
        .expect(2)
        .stdout;
    assert!(
        md.contains("### tenantctl drift: 0 in sync, 2 pending, 1 drifted, 1 missing, 1 orphan"),
        "{md}"
    );

    // After an apply everything declared is in sync again; the orphan stays reported.
    repo.run(&["reconcile", "--apply", "--allow-destructive"])
        .expect(0);
    let after = repo.run(&["drift", "--format", "json"]).expect(2).json();
    let mut got = statuses(&after);
    got.sort();
    assert_eq!(
        got,
        [
            "a/shop:in-sync",
            "a/users:in-sync",
            "b/shop:in-sync",
            "b/users:in-sync",
            "ghost/shop:orphan"
        ]
    );
}

#[test]
fn apply_refuses_a_dirty_worktree_and_records_the_commit() {
    let repo = fleet();
    let head = git(repo.path(), &["rev-parse", "HEAD"]);
    repo.run(&["reconcile", "--apply"]).expect(0);
    assert_eq!(
        query(
            &repo.sqlite_file("shop__a"),
            "SELECT git_commit FROM _tenantctl_history"
        ),
        std::slice::from_ref(&head)
    );

    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);",
    );
    let refused = repo.run(&["reconcile", "--apply"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("uncommitted changes (blueprints/shop/schema.sql)"),
        "{}",
        refused.stderr
    );
    repo.run(&["reconcile", "--plan", "--detailed-exitcode"])
        .expect(2);
    repo.run(&["reconcile", "--apply", "--allow-dirty"])
        .expect(0);
    assert_eq!(
        query(
            &repo.sqlite_file("shop__a"),
            "SELECT git_commit FROM _tenantctl_history ORDER BY id DESC LIMIT 1"
        ),
        [format!("{head}-dirty")]
    );
}

#[test]
fn rev_reads_the_declared_state_from_git_without_the_worktree() {
    let repo = fleet();
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);",
    );
    commit_all(repo.path(), "note");
    // The worktree is now broken; HEAD~1 and HEAD are still readable.
    repo.write(
        "blueprints/shop/schema.sql",
        "CREATE TABLE items (id INTEGER,, broken);",
    );
    repo.run(&["validate"]).expect(1);
    repo.run(&["--rev", "HEAD", "validate"]).expect(0);
    repo.run(&["--rev", "HEAD~1", "reconcile", "--apply"])
        .expect(0);
    assert_eq!(
        query(
            &repo.sqlite_file("shop__a"),
            "SELECT name FROM pragma_table_info('items') ORDER BY cid"
        ),
        ["id", "name"]
    );
    repo.run(&[
        "--rev",
        "HEAD~1",
        "reconcile",
        "--plan",
        "--detailed-exitcode",
    ])
    .expect(0);
    repo.run(&[
        "--rev",
        "HEAD",
        "reconcile",
        "--plan",
        "--detailed-exitcode",
    ])
    .expect(2);
    let bad = repo
        .run(&["--rev", "nope", "reconcile", "--plan"])
        .expect(1);
    assert!(
        bad.stderr.contains("cannot resolve git revision \"nope\""),
        "{}",
        bad.stderr
    );
}
