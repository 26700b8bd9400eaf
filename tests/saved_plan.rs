//! Saved plans are review records, not scripts, and fingerprints survive an
//! upgrade: through the real binary, on SQLite fleets and on a real
//! PostgreSQL server (`TENANTCTL_TEST_PG_URL`), in real git repositories.
//!
//! Each tampering case starts from a fresh fleet with rows in every tenant,
//! a committed blueprint change and its saved plan, edits the plan file the
//! way a hostile or careless user would, applies it, and checks the refusal
//! and that every tenant's rows and columns are as they were.

mod support;

use support::{commit_all, git};

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use support::postgres::{Fleet, pg_url, psql};
use support::sqlite::{Repo, sqlite_column, sqlite_count, sqlite_exec};

const BEFORE: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);";
const AFTER: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);\n\
                     CREATE INDEX items_by_name ON items (name);";
const ROWS: &str = "INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')";

/// What a case needs of a fleet, whatever its engine.
trait Subject {
    fn root(&self) -> &Path;
    /// Runs tenantctl on the fleet: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String);
    /// Runs SQL in a tenant's database.
    fn exec(&self, tenant: &str, sql: &str);
    /// `rows,columns` of the tenant's `items` table, e.g. `3,id name`.
    fn state(&self, tenant: &str) -> String;
    fn write_schema(&self, sql: &str);
}

struct Sqlite(Repo);

impl Subject for Sqlite {
    fn root(&self) -> &Path {
        self.0.path()
    }
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let r = self.0.run(args);
        (r.code, r.stdout, r.stderr)
    }
    fn exec(&self, tenant: &str, sql: &str) {
        sqlite_exec(&self.0.sqlite_file(&format!("shop__{tenant}")), sql);
    }
    fn state(&self, tenant: &str) -> String {
        let file = self.0.sqlite_file(&format!("shop__{tenant}"));
        let rows = sqlite_count(&file, "SELECT count(*) FROM items");
        let columns = sqlite_column(
            &file,
            "SELECT name FROM pragma_table_info('items') ORDER BY cid",
        );
        format!("{rows},{}", columns.join(" "))
    }
    fn write_schema(&self, sql: &str) {
        self.0.write("blueprints/shop/schema.sql", sql);
    }
}

fn sqlite_fleet() -> Sqlite {
    let repo = Repo::sqlite(&[("shop", BEFORE)], &["a", "b"]);
    repo.write(".gitignore", "data/\n");
    Sqlite(repo)
}

struct Postgres(Fleet);

impl Subject for Postgres {
    fn root(&self) -> &Path {
        self.0.root()
    }
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.0.run(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    fn exec(&self, tenant: &str, sql: &str) {
        self.0.sql(tenant, sql);
    }
    fn state(&self, tenant: &str) -> String {
        let db = self.0.database(tenant);
        let rows = psql(&self.0.url, &db, "SELECT count(*) FROM items");
        let columns = psql(
            &self.0.url,
            &db,
            "SELECT string_agg(column_name, ' ' ORDER BY ordinal_position) FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'items'",
        );
        format!("{rows},{columns}")
    }
    fn write_schema(&self, sql: &str) {
        self.0.write_schema(sql);
    }
}

/// A fleet at the blueprint change, applied before it, with rows; its saved plan.
struct Setup<S> {
    fleet: S,
    base_commit: String,
    plan: Value,
    /// Keeps the plan file outside the repository.
    plans: tempfile::TempDir,
}

impl<S: Subject> Setup<S> {
    fn new(fleet: S) -> Self {
        fleet.write_schema(BEFORE);
        git(fleet.root(), &["init", "-q"]);
        let base_commit = commit_all(fleet.root(), "base");
        let (code, out, err) = fleet.run(&["reconcile", "--apply"]);
        assert_eq!(code, 0, "{out}{err}");
        for tenant in ["a", "b"] {
            fleet.exec(tenant, ROWS);
        }
        fleet.write_schema(AFTER);
        let commit = commit_all(fleet.root(), "note");
        let plans = tempfile::tempdir().unwrap();
        let file = plans.path().join("plan.json");
        let (code, out, err) = fleet.run(&["reconcile", "--plan", "--out", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}{err}");
        let plan: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(plan["format"], "tenantctl-plan/2");
        assert_eq!(plan["git_commit"], commit.as_str());
        assert_eq!(plan["dirty"], false);
        assert_eq!(plan["targets"].as_array().unwrap().len(), 2);
        assert_eq!(plan["targets"][0]["steps"].as_array().unwrap().len(), 2);
        Setup {
            fleet,
            base_commit,
            plan,
            plans,
        }
    }

    /// Applies `plan` as JSON: (exit code, stdout, stderr).
    fn apply(&self, plan: &Value, extra: &[&str]) -> (i32, String, String) {
        let file = self.file();
        std::fs::write(&file, serde_json::to_string_pretty(plan).unwrap()).unwrap();
        let mut args = vec![
            "reconcile",
            "--apply",
            "--plan-file",
            file.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        self.fleet.run(&args)
    }

    fn file(&self) -> PathBuf {
        self.plans.path().join("plan.json")
    }
}

const UNCHANGED: &str = "3,id name";
const MIGRATED: &str = "3,id name note";

/// The index of tenant `tenant`'s entry in the plan.
fn entry(plan: &Value, tenant: &str) -> usize {
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["tenant"] == tenant)
        .unwrap()
}

fn status_of(report: &Value, tenant: &str) -> (String, String) {
    let t = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no {tenant} in {report}"));
    (
        t["status"].as_str().unwrap().to_string(),
        t["message"].as_str().unwrap_or("").to_string(),
    )
}

/// A plan whose entry for tenant a was edited: a is refused with `expected`
/// in its message, its rows and columns intact; b (untouched) applies.
fn refused_tenant<S: Subject>(make: impl Fn() -> S, edit: impl Fn(&mut Value), expected: &str) {
    let setup = Setup::new(make());
    let mut plan = setup.plan.clone();
    edit(&mut plan);
    let (code, out, err) = setup.apply(&plan, &[]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let (status, message) = status_of(&report, "a");
    assert_eq!(status, "refused", "{message}");
    assert!(message.contains(expected), "{message}");
    assert!(message.contains("nothing was run"), "{message}");
    assert_eq!(setup.fleet.state("a"), UNCHANGED);
    assert_eq!(status_of(&report, "b").0, "applied");
    assert_eq!(setup.fleet.state("b"), MIGRATED);
}

/// A plan refused as a whole: exit 1, `expected` on stderr, no tenant touched.
fn refused_plan<S: Subject>(
    make: impl Fn() -> S,
    edit: impl Fn(&mut Value, &Setup<S>),
    expected: &str,
) {
    let setup = Setup::new(make());
    let mut plan = setup.plan.clone();
    edit(&mut plan, &setup);
    let (code, out, err) = setup.apply(&plan, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
    assert!(err.contains("refused"), "{err}");
    for tenant in ["a", "b"] {
        assert_eq!(setup.fleet.state(tenant), UNCHANGED, "{tenant}");
    }
}

fn every_case<S: Subject>(make: impl Fn() -> S) {
    // Untampered: applies, rows kept.
    let setup = Setup::new(make());
    let (code, out, err) = setup.apply(&setup.plan, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status_of(&report, "a").0, "applied");
    assert_eq!(status_of(&report, "b").0, "applied");
    for tenant in ["a", "b"] {
        assert_eq!(setup.fleet.state(tenant), MIGRATED);
    }
    drop(setup);

    // The file's statements are not what runs: edited ones are refused.
    refused_tenant(
        &make,
        |plan| {
            let i = entry(plan, "a");
            plan["targets"][i]["steps"][0]["statements"] = json!(["DELETE FROM items"]);
        },
        "statements differ",
    );
    // An added step.
    refused_tenant(
        &make,
        |plan| {
            let i = entry(plan, "a");
            plan["targets"][i]["steps"]
                .as_array_mut()
                .unwrap()
                .push(json!({"description": "drop table items", "hazards": [], "statements": ["DROP TABLE items"]}));
        },
        "has 3 step(s), tenantctl plans 2",
    );
    // A removed step.
    refused_tenant(
        &make,
        |plan| {
            let i = entry(plan, "a");
            plan["targets"][i]["steps"].as_array_mut().unwrap().pop();
        },
        "has 1 step(s), tenantctl plans 2",
    );
    // A hazard removed from a step (so it would pass a review filter).
    refused_tenant(
        &make,
        |plan| {
            let i = entry(plan, "a");
            let steps = plan["targets"][i]["steps"].as_array_mut().unwrap();
            let step = steps
                .iter_mut()
                .find(|s| !s["hazards"].as_array().unwrap().is_empty())
                .expect("a step with a hazard");
            step["hazards"] = json!([]);
        },
        "hazards differ",
    );

    // Another tenant: the plan is not a tenant list.
    refused_plan(
        &make,
        |plan, _| {
            let i = entry(plan, "a");
            let mut other = plan["targets"][i].clone();
            other["tenant"] = json!("mallory");
            plan["targets"].as_array_mut().unwrap().push(other);
        },
        "mallory/shop (not declared)",
    );
    // A declared tenant pointed at another database.
    refused_plan(
        &make,
        |plan, _| {
            let a = entry(plan, "a");
            let b = entry(plan, "b");
            plan["targets"][a]["database"] = plan["targets"][b]["database"].clone();
        },
        "does not declare",
    );
    // Another commit of this repository (the declared state there differs).
    refused_plan(
        &make,
        |plan, setup| plan["git_commit"] = json!(setup.base_commit),
        "does not declare the state the plan was made from",
    );
    // A commit this repository does not have.
    refused_plan(
        &make,
        |plan, _| plan["git_commit"] = json!("0123456789abcdef0123456789abcdef01234567"),
        "which this repository does not have",
    );
    // The declared-state hash edited (e.g. a plan from a dirty worktree).
    refused_plan(
        &make,
        |plan, _| plan["declared_hash"] = json!("sha256:00"),
        "does not declare the state the plan was made from",
    );
    // Another format version: plans of the old format were scripts.
    refused_plan(
        &make,
        |plan, _| plan["format"] = json!("tenantctl-plan/1"),
        "make a new plan",
    );
    // Another tenantctl version.
    refused_plan(
        &make,
        |plan, _| plan["tenantctl_version"] = json!("0.0.0-other"),
        "made by tenantctl 0.0.0-other",
    );
}

#[test]
fn sqlite_tampered_plans_are_refused_and_untampered_ones_apply() {
    every_case(sqlite_fleet);
}

#[test]
fn postgres_tampered_plans_are_refused_and_untampered_ones_apply() {
    let Some(url) = pg_url() else { return };
    every_case(|| Postgres(Fleet::new(&url, "savedplan", &["a", "b"])));
}

#[test]
fn a_plan_of_another_repository_is_refused() {
    let setup = Setup::new(sqlite_fleet());
    // The same fleet files in another git repository: other commits.
    let other = sqlite_fleet();
    other.write_schema(AFTER);
    git(other.root(), &["init", "-q"]);
    commit_all(other.root(), "other");
    let file = setup.file();
    std::fs::write(&file, serde_json::to_string(&setup.plan).unwrap()).unwrap();
    let (code, out, err) = other.run(&[
        "reconcile",
        "--apply",
        "--plan-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("plan of another repository"), "{err}");
    assert!(!other.root().join("data/shop__a.db").exists());
    // And outside git.
    std::fs::remove_dir_all(other.root().join(".git")).unwrap();
    let (code, _, err) = other.run(&[
        "reconcile",
        "--apply",
        "--plan-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not in a git repository"), "{err}");
}

#[test]
fn a_plan_of_a_dirty_worktree_applies_only_from_that_worktree() {
    let fleet = sqlite_fleet();
    git(fleet.root(), &["init", "-q"]);
    commit_all(fleet.root(), "base");
    assert_eq!(fleet.run(&["reconcile", "--apply"]).0, 0);
    fleet.exec("a", ROWS);
    fleet.write_schema(AFTER); // not committed
    let plans = tempfile::tempdir().unwrap();
    let file = plans.path().join("plan.json");
    let file = file.to_str().unwrap();
    assert_eq!(fleet.run(&["reconcile", "--plan", "--out", file]).0, 0);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(plan["dirty"], true);

    let (code, _, err) = fleet.run(&["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("uncommitted changes"), "{err}");
    assert_eq!(fleet.state("a"), UNCHANGED);

    // Somebody changes the worktree again: not the state that was reviewed.
    fleet.write_schema(&format!("{AFTER}\nCREATE TABLE extra (id INTEGER);"));
    let (code, _, err) = fleet.run(&["reconcile", "--apply", "--allow-dirty", "--plan-file", file]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(fleet.state("a"), UNCHANGED);

    fleet.write_schema(AFTER);
    let (code, out, err) =
        fleet.run(&["reconcile", "--apply", "--allow-dirty", "--plan-file", file]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(fleet.state("a"), MIGRATED);
}

/// The fingerprint tenantctl 0.1 wrote: the first 16 bytes of the SHA-256
/// of the model's serde JSON (what `schema_json` holds), unprefixed.
fn legacy_fingerprint(schema_json: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(schema_json.as_bytes())[..16])
}

#[test]
fn an_old_format_history_row_does_not_make_a_tenant_look_changed() {
    let fleet = sqlite_fleet();
    assert_eq!(fleet.run(&["reconcile", "--apply"]).0, 0);
    let file = fleet.0.sqlite_file("shop__a");
    let json = &sqlite_column(&file, "SELECT schema_json FROM _tenantctl_history")[0];
    let current = &sqlite_column(&file, "SELECT schema_fingerprint FROM _tenantctl_history")[0];
    assert!(current.starts_with("v2:"), "{current}");
    let legacy = legacy_fingerprint(json);
    sqlite_exec(
        &file,
        &format!("UPDATE _tenantctl_history SET schema_fingerprint = '{legacy}'"),
    );

    let drift = |expected_code: i32| {
        let (code, out, err) = fleet.run(&["drift", "--format", "json"]);
        assert_eq!(code, expected_code, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let report = drift(0);
    assert_eq!(status_of(&report, "a").0, "in-sync");

    // The blueprint moves on: the tenant is pending (still as applied), not drifted.
    fleet.write_schema(AFTER);
    let report = drift(2);
    let (status, message) = status_of(&report, "a");
    assert_eq!(status, "pending", "{message}");
    assert_eq!(status_of(&report, "b").0, "pending");

    // A change by hand after that legacy apply is still drift.
    fleet.exec("a", "CREATE TABLE hack (x INTEGER)");
    let (status, message) = status_of(&drift(2), "a");
    assert_eq!(status, "drifted", "{message}");
    assert!(message.contains("changed outside tenantctl"), "{message}");

    // Without a snapshot, an old fingerprint cannot be compared: said so.
    sqlite_exec(&file, "UPDATE _tenantctl_history SET schema_json = NULL");
    let (status, message) = status_of(&drift(2), "a");
    assert_eq!(status, "drifted", "{message}");
    assert!(
        message.contains("older tenantctl (fingerprint v1)"),
        "{message}"
    );
}

#[test]
fn a_plan_of_another_tenantctl_repository_in_the_same_git_repository_is_refused() {
    // One git repository (a monorepo) holding two tenantctl repositories with the same files.
    let mono = tempfile::tempdir().unwrap();
    let copies = [sqlite_fleet(), sqlite_fleet()];
    for (name, copy) in ["one", "two"].iter().zip(&copies) {
        let target = mono.path().join(name);
        std::fs::create_dir_all(target.join("blueprints/shop")).unwrap();
        std::fs::create_dir_all(target.join("tenants")).unwrap();
        for file in [
            "tenantctl.yaml",
            ".gitignore",
            "blueprints/shop/blueprint.yaml",
            "blueprints/shop/schema.sql",
            "tenants/all.yaml",
        ] {
            std::fs::copy(copy.root().join(file), target.join(file)).unwrap();
        }
    }
    git(mono.path(), &["init", "-q"]);
    commit_all(mono.path(), "two fleets");
    let run = |repo: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("--repo")
            .arg(mono.path().join(repo))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let plans = tempfile::tempdir().unwrap();
    let file = plans.path().join("plan.json");
    let file = file.to_str().unwrap();
    assert_eq!(run("one", &["reconcile", "--plan", "--out", file]).0, 0);
    let (code, err) = run("two", &["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("at \"one\""), "{err}");
    assert!(err.contains("plan of another repository"), "{err}");
    assert!(!mono.path().join("two/data/shop__a.db").exists());
    let (code, err) = run("one", &["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 0, "{err}");
    assert!(mono.path().join("one/data/shop__a.db").exists());
}

#[test]
fn a_plan_made_outside_git_applies_only_to_the_same_declared_state() {
    let fleet = sqlite_fleet();
    assert_eq!(fleet.run(&["reconcile", "--apply"]).0, 0);
    fleet.exec("a", ROWS);
    fleet.write_schema(AFTER);
    let plans = tempfile::tempdir().unwrap();
    let file = plans.path().join("plan.json");
    let file = file.to_str().unwrap();
    assert_eq!(fleet.run(&["reconcile", "--plan", "--out", file]).0, 0);
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(plan["git_commit"], Value::Null);

    // The tenants file changes after review: not the reviewed state.
    let tenants = std::fs::read_to_string(fleet.root().join("tenants/all.yaml")).unwrap();
    fleet.0.write(
        "tenants/all.yaml",
        &tenants.replace("- name: b", "- name: c"),
    );
    let (code, _, err) = fleet.run(&["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the worktree does not declare the state"),
        "{err}"
    );
    assert_eq!(fleet.state("a"), UNCHANGED);

    fleet.0.write("tenants/all.yaml", &tenants);
    let (code, out, err) = fleet.run(&["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(fleet.state("a"), MIGRATED);

    // In git now: a plan with no commit is not this repository's.
    git(fleet.root(), &["init", "-q"]);
    commit_all(fleet.root(), "now in git");
    let (code, _, err) = fleet.run(&["reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("made outside git"), "{err}");
}

#[test]
fn rev_must_name_the_plans_commit() {
    let setup = Setup::new(sqlite_fleet());
    let file = setup.file();
    std::fs::write(&file, serde_json::to_string(&setup.plan).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    let (code, _, err) = setup.fleet.run(&[
        "--rev",
        "HEAD~1",
        "reconcile",
        "--apply",
        "--plan-file",
        file,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--rev HEAD~1 is commit"), "{err}");
    assert_eq!(setup.fleet.state("a"), UNCHANGED);
    let (code, out, err) =
        setup
            .fleet
            .run(&["--rev", "HEAD", "reconcile", "--apply", "--plan-file", file]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(setup.fleet.state("a"), MIGRATED);
}
