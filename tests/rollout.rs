//! Rollouts through the binary on SQLite fleets: `--shard`, waves with
//! `--between-waves`, `--max-failure-rate`, and fleet-sized Markdown.

mod support;

use std::collections::BTreeSet;

use support::sqlite::{Repo, sqlite_count as count, sqlite_exec as exec};

const V1: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\n";
const V2: &str =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\nCREATE UNIQUE INDEX t_v ON t (v);\n";

/// A SQLite repository with blueprint `app` (schema `schema`) and the
/// tenants given as (name, labels YAML like `wave: canary` or "").
fn fleet(schema: &str, tenants: &[(String, &str)], rollout: &str) -> Repo {
    let repo = Repo::sqlite(&[("app", schema)], &[]);
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  local:\n    engine: sqlite\n    path: data\n{rollout}"),
    );
    write_tenants(&repo, tenants);
    repo
}

fn write_tenants(repo: &Repo, tenants: &[(String, &str)]) {
    let mut yaml = String::from("tenants:\n");
    for (name, labels) in tenants {
        yaml.push_str(&format!("  - name: {name}\n"));
        if !labels.is_empty() {
            yaml.push_str(&format!("    labels: {{{labels}}}\n"));
        }
        yaml.push_str("    databases:\n      - blueprint: app\n");
    }
    repo.write("tenants/all.yaml", &yaml);
}

fn names(n: usize) -> Vec<(String, &'static str)> {
    (0..n).map(|i| (format!("t{i:04}"), "")).collect()
}

/// Tenant names of the report's targets with `status` (any status for "").
fn tenants_with(run: &support::sqlite::Run, status: &str) -> BTreeSet<String> {
    run.json()["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| status.is_empty() || t["status"] == status)
        .map(|t| t["tenant"].as_str().expect("tenant").to_string())
        .collect()
}

#[test]
fn shard_splits_cover_every_tenant_exactly_once_for_n_1_to_7() {
    let tenants = names(40);
    let repo = fleet(V1, &tenants, "");
    let all: BTreeSet<String> = tenants.iter().map(|(n, _)| n.clone()).collect();
    let mut shards_of_3 = Vec::new();
    for n in 1..=7 {
        let mut seen: Vec<String> = Vec::new();
        for i in 1..=n {
            let run = repo
                .run(&[
                    "reconcile",
                    "--plan",
                    "--format",
                    "json",
                    "--shard",
                    &format!("{i}/{n}"),
                ])
                .expect(0);
            let part = tenants_with(&run, "");
            if n == 3 {
                shards_of_3.push(part.clone());
            }
            seen.extend(part);
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), all.len(), "n={n}: a tenant in two shards");
        assert_eq!(unique, all, "n={n}: shards do not cover the fleet");
    }
    // 40 tenants over 3 shards: no shard empty or holding nearly everything.
    assert!(
        shards_of_3.iter().all(|s| (5..=25).contains(&s.len())),
        "{shards_of_3:?}"
    );

    // The split is by database identity, not list order: reversed, same shards.
    let mut reversed = tenants.clone();
    reversed.reverse();
    write_tenants(&repo, &reversed);
    for (i, expected) in shards_of_3.iter().enumerate() {
        let run = repo
            .run(&[
                "reconcile",
                "--plan",
                "--format",
                "json",
                "--shard",
                &format!("{}/3", i + 1),
            ])
            .expect(0);
        assert_eq!(&tenants_with(&run, ""), expected);
    }
    // drift takes --shard too.
    let drift = repo.run(&["drift", "--format", "json", "--shard", "1/3"]);
    assert_eq!(tenants_with(&drift, ""), shards_of_3[0]);
}

#[test]
fn bad_shard_values_are_usage_errors() {
    let repo = fleet(V1, &names(3), "");
    for bad in ["0/3", "4/3", "1/0", "x", "1/", "2"] {
        let run = repo.run(&["reconcile", "--plan", "--shard", bad]).expect(1);
        assert!(run.stderr.contains("--shard"), "{bad}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{bad}: {}", run.stdout);
    }
}

/// Ten tenants: two canaries, eight others.
fn waved(schema: &str) -> Repo {
    let mut tenants = names(10);
    tenants[3].1 = "wave: canary";
    tenants[7].1 = "wave: canary";
    fleet(
        schema,
        &tenants,
        "rollout:\n  waves:\n    - selector: wave=canary\n    - percent: 50\n    - rest: true\n",
    )
}

fn table_exists(repo: &Repo, tenant: &str) -> bool {
    let file = repo.sqlite_file(&format!("app__{tenant}"));
    file.exists() && count(&file, "SELECT count(*) FROM sqlite_master WHERE name = 't'") == 1
}

#[test]
fn plan_shows_which_tenants_are_in_which_wave() {
    let repo = waved(V1);
    let run = repo
        .run(&["reconcile", "--plan", "--format", "json"])
        .expect(0);
    let report = run.json();
    let waves = report["waves"].as_array().expect("waves");
    let sizes: Vec<usize> = waves
        .iter()
        .map(|w| w["members"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [2, 5, 3]);
    let canary: BTreeSet<&str> = waves[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(canary, BTreeSet::from(["t0003", "t0007"]));
    for t in report["targets"].as_array().unwrap() {
        assert!(t["wave"].as_u64().is_some(), "{t}");
    }
    let text = repo.run(&["reconcile", "--plan"]).expect(0).stdout;
    assert!(
        text.contains("Waves:\n  1. wave=canary: 2 databases (t000"),
        "{text}"
    );
    assert!(text.contains("2. 50%: 5 databases"), "{text}");
    assert!(text.contains("3. rest: 3 databases"), "{text}");
}

#[test]
fn a_failing_between_waves_check_stops_the_rollout_with_later_waves_not_started() {
    let repo = waved(V1);
    let seen = repo.path().join("between.txt");
    let copy = repo.path().join("wave-report.json");
    let check = format!(
        "echo \"$TENANTCTL_WAVE/$TENANTCTL_WAVES next $TENANTCTL_NEXT_WAVE\" >> {}; cp \"$TENANTCTL_REPORT\" {}; echo checking-wave-$TENANTCTL_WAVE; exit 3",
        seen.display(),
        copy.display()
    );
    let run = repo
        .run(&[
            "reconcile",
            "--apply",
            "--format",
            "json",
            "--between-waves",
            &check,
        ])
        .expect(1);
    let report = run.json();
    assert_eq!(
        tenants_with(&run, "applied"),
        BTreeSet::from(["t0003".into(), "t0007".into()])
    );
    assert_eq!(tenants_with(&run, "skipped").len(), 8);
    let statuses: Vec<&str> = report["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["converged", "not-started", "not-started"]);
    assert!(
        report["stopped"]
            .as_str()
            .unwrap()
            .contains("--between-waves command exited with 3 after wave 1"),
        "{report}"
    );
    // The check's output goes to stderr: stdout stays the report (parsed above).
    assert!(run.stderr.contains("checking-wave-1"), "{}", run.stderr);
    // The check ran once, after wave 1, with the report of wave 1 (2 applied).
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "1/3 next 2\n");
    let so_far: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&copy).unwrap()).unwrap();
    assert_eq!(so_far["summary"]["by_status"]["applied"], 2, "{so_far}");
    assert_eq!(so_far["summary"]["total"], 2, "{so_far}");
    // Nothing of the later waves was touched.
    for t in [
        "t0000", "t0001", "t0002", "t0004", "t0005", "t0006", "t0008", "t0009",
    ] {
        assert!(!table_exists(&repo, t), "{t} was created");
    }
    for target in report["targets"].as_array().unwrap() {
        if target["status"] == "skipped" {
            assert!(
                target["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("not started: "),
                "{target}"
            );
        }
    }
    // The text report says why it stopped; a re-run whose check passes finishes the fleet.
    let text = repo
        .run(&["reconcile", "--apply", "--between-waves", "exit 3"])
        .expect(1)
        .stdout;
    assert!(
        text.contains("Stopped: --between-waves command exited with 3 after wave 1"),
        "{text}"
    );
    let rerun = repo
        .run(&[
            "reconcile",
            "--apply",
            "--format",
            "json",
            "--between-waves",
            "true",
        ])
        .expect(0);
    assert_eq!(tenants_with(&rerun, "applied").len(), 8);
    assert_eq!(tenants_with(&rerun, "in-sync").len(), 2);
}

#[test]
fn a_wave_that_does_not_converge_stops_the_rollout_before_the_check_runs() {
    let repo = waved(V1);
    repo.run(&["reconcile", "--apply"]).expect(0);
    // Canary t0003 has rows the new unique index rejects.
    exec(
        &repo.sqlite_file("app__t0003"),
        "INSERT INTO t (v) VALUES ('dup'), ('dup')",
    );
    repo.write("blueprints/app/schema.sql", V2);
    let marker = repo.path().join("checked");
    let run = repo
        .run(&[
            "reconcile",
            "--apply",
            "--format",
            "json",
            "--between-waves",
            &format!("touch {}", marker.display()),
        ])
        .expect(1);
    assert_eq!(
        tenants_with(&run, "failed"),
        BTreeSet::from(["t0003".into()])
    );
    assert_eq!(
        tenants_with(&run, "applied"),
        BTreeSet::from(["t0007".into()])
    );
    assert_eq!(tenants_with(&run, "skipped").len(), 8);
    assert!(
        !marker.exists(),
        "the check ran after a wave that did not converge"
    );
    let report = run.json();
    assert!(
        report["stopped"]
            .as_str()
            .unwrap()
            .contains("wave 1 (wave=canary) did not converge"),
        "{report}"
    );
}

#[test]
fn wave_by_label_makes_one_wave_per_value_in_order() {
    let mut tenants = names(6);
    tenants[0].1 = "ring: b";
    tenants[1].1 = "ring: a";
    tenants[2].1 = "ring: b";
    tenants[3].1 = "ring: c";
    let repo = fleet(V1, &tenants, "");
    let report = repo
        .run(&[
            "reconcile",
            "--plan",
            "--format",
            "json",
            "--wave-by",
            "ring",
        ])
        .expect(0)
        .json();
    let rules: Vec<(&str, usize)> = report["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["rule"].as_str().unwrap(),
                w["members"].as_array().unwrap().len(),
            )
        })
        .collect();
    let typo = repo
        .run(&["reconcile", "--plan", "--wave-by", "rign"])
        .expect(1);
    assert!(
        typo.stderr.contains(
            "--wave-by rign: no tenant has a label \"rign\"; the tenants' label keys are: ring"
        ),
        "{}",
        typo.stderr
    );
    assert_eq!(
        rules,
        [
            ("ring=a", 1),
            ("ring=b", 2),
            ("ring=c", 1),
            ("no ring label", 2)
        ]
    );
}

#[test]
fn pause_is_refused_without_a_terminal() {
    let repo = waved(V1);
    let run = repo.run(&["reconcile", "--apply", "--pause"]).expect(1);
    assert!(run.stderr.contains("--pause"), "{}", run.stderr);
    assert!(!table_exists(&repo, "t0003"));
}

#[test]
fn rollout_waves_are_validated_with_positions() {
    let repo = fleet(
        V1,
        &names(2),
        "rollout:\n  waves:\n    - rest: true\n    - percent: 150\n    - selector: nokey\n    - {}\n",
    );
    let run = repo.run(&["validate"]).expect(1);
    for expected in [
        "tenantctl.yaml:7:13: rollout wave 1: `rest: true` takes every tenant database left, so it must be the last wave",
        "tenantctl.yaml:8:16: rollout wave 2: percent must be 1 to 100, got 150",
        "tenantctl.yaml:9:17: rollout wave 3: selector:",
        "tenantctl.yaml:10:7: rollout wave 4: give exactly one of",
    ] {
        assert!(
            run.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            run.stdout
        );
    }
}

#[test]
fn max_failure_rate_stops_starting_tenants_and_a_rerun_picks_them_up() {
    let tenants = names(20);
    let repo = fleet(V1, &tenants, "");
    repo.run(&["reconcile", "--apply"]).expect(0);
    // 15 of 20 tenants hold rows the new unique index rejects: they fail for real.
    for (name, _) in &tenants[..15] {
        exec(
            &repo.sqlite_file(&format!("app__{name}")),
            "INSERT INTO t (v) VALUES ('dup'), ('dup')",
        );
    }
    repo.write("blueprints/app/schema.sql", V2);
    let run = repo
        .run(&[
            "reconcile",
            "--apply",
            "--format",
            "json",
            "--concurrency",
            "1",
            "--max-failure-rate",
            "50%",
        ])
        .expect(1);
    let failed = tenants_with(&run, "failed");
    let applied = tenants_with(&run, "applied");
    let skipped = tenants_with(&run, "skipped");
    assert_eq!(failed.len() + applied.len() + skipped.len(), 20);
    // Whatever the order: at most 11 finish before more than half have failed.
    assert!(failed.len() + applied.len() <= 11, "{failed:?} {applied:?}");
    assert!(!skipped.is_empty());
    let report = run.json();
    let stopped = report["stopped"].as_str().expect("stopped");
    assert!(
        stopped.contains("more than --max-failure-rate 50%"),
        "{stopped}"
    );
    // Skipped tenants were not touched: no index.
    for name in &skipped {
        let file = repo.sqlite_file(&format!("app__{name}"));
        assert_eq!(
            count(
                &file,
                "SELECT count(*) FROM sqlite_master WHERE name = 't_v'"
            ),
            0
        );
    }
    // The summary says so in text and Markdown too.
    repo.write("blueprints/app/schema.sql", V2);
    let md = repo
        .run(&[
            "reconcile",
            "--apply",
            "--format",
            "markdown",
            "--concurrency",
            "1",
            "--max-failure-rate",
            "50",
        ])
        .expect(1)
        .stdout;
    assert!(
        md.contains("**Stopped**") && md.contains(r"failure\-rate 50%"),
        "{md}"
    );
    // A re-run without the budget picks up every tenant that was not started.
    let rerun = repo
        .run(&["reconcile", "--apply", "--format", "json"])
        .expect(1);
    assert_eq!(tenants_with(&rerun, "skipped").len(), 0);
    assert_eq!(tenants_with(&rerun, "failed").len(), 15);
    assert_eq!(
        tenants_with(&rerun, "applied").len() + tenants_with(&rerun, "in-sync").len(),
        5
    );
}

#[test]
fn max_failure_rate_is_a_percentage() {
    let repo = fleet(V1, &names(2), "");
    for bad in ["150%", "-1", "half"] {
        repo.run(&["reconcile", "--apply", "--max-failure-rate", bad])
            .expect(1);
    }
}

#[test]
fn markdown_of_5000_tenants_renders_a_group_of_500_identical_tenants_once() {
    let mut tenants = names(5000);
    for t in tenants.iter_mut().take(500) {
        t.1 = "old: yes";
    }
    let repo = fleet(V1, &tenants, "");
    // One tenant database at v1, copied to the other 499 of the group.
    repo.run(&["reconcile", "--apply", "--tenant", "t0000"])
        .expect(0);
    let first = repo.sqlite_file("app__t0000");
    for (name, _) in tenants.iter().take(500).skip(1) {
        std::fs::copy(&first, repo.sqlite_file(&format!("app__{name}"))).unwrap();
    }
    repo.write("blueprints/app/schema.sql", V2);
    let md = repo
        .run(&["reconcile", "--plan", "--format", "markdown"])
        .expect(0)
        .stdout;
    assert!(
        md.chars().count() < 65_536,
        "{} characters",
        md.chars().count()
    );
    assert!(
        md.contains(
            "| `app` | to change | 500 (t0000, t0001, t0002, t0003, t0004, … and 495 more) |"
        ),
        "{md}"
    );
    assert!(md.contains("| `app` | to create | 4500 ("), "{md}");
    assert_eq!(md.matches("CREATE UNIQUE INDEX t_v").count(), 2, "{md}");
    assert!(
        !md.contains("t0499"),
        "a member name past the first few is listed"
    );
}

/// The `args` of the first container of the Kubernetes example, as one shell command.
fn kubernetes_command() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/kubernetes/tenantctl-apply-job.yaml"
    );
    let job: serde_json::Value =
        marked_yaml::from_yaml(0, &std::fs::read_to_string(path).unwrap()).unwrap();
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], serde_json::json!(["sh", "-c"]));
    container["args"][0].as_str().unwrap().to_string()
}

#[test]
fn the_kubernetes_indexed_job_command_applies_every_tenant_once_over_its_indexes() {
    let tenants = names(30);
    let repo = fleet(V1, &tenants, "");
    let command = kubernetes_command();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_tenantctl"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let mut applied = Vec::new();
    for index in 0..4 {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{command} --format json"))
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .env("SHARDS", "4")
            .env("TENANTCTL_REPO", repo.path())
            .output()
            .unwrap();
        let run = support::sqlite::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
        .expect(0);
        assert_eq!(
            tenants_with(&run, "").len(),
            tenants_with(&run, "applied").len()
        );
        applied.extend(tenants_with(&run, "applied"));
    }
    applied.sort();
    let all: Vec<String> = tenants.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(applied, all);
}

#[test]
fn ci_logs_get_plain_progress_lines_and_small_runs_none() {
    let repo = fleet(V1, &names(60), "");
    // stderr is a pipe here, as in CI: plain lines, at least one per 10%, ending at 60/60.
    let run = repo.run(&["reconcile", "--plan"]).expect(0);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(lines.len() >= 10, "{}", run.stderr);
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("progress: 60/60 done, 0 failed, 0 left, "),
        "{}",
        run.stderr
    );
    assert!(
        lines.iter().all(|l| l.contains("/s, ETA ")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("progress: "),
        "progress went to stdout"
    );
    let small = fleet(V1, &names(3), "");
    let run = small.run(&["reconcile", "--plan"]).expect(0);
    assert!(!run.stderr.contains("progress: "), "{}", run.stderr);
}

#[test]
fn overlapping_shards_applied_at_once_migrate_each_database_once() {
    let tenants = names(30);
    let repo = fleet(V1, &tenants, "");
    repo.run(&["reconcile", "--apply"]).expect(0);
    repo.write("blueprints/app/schema.sql", V2);
    // Shard 1/2 and the whole fleet (1/1) at the same time: they overlap on half the fleet.
    let spawn = |shard: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .args(["--repo"])
            .arg(repo.path())
            .args(["reconcile", "--apply", "--format", "json", "--shard", shard])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (half, whole) = (spawn("1/2"), spawn("1/1"));
    let mut applied = Vec::new();
    for child in [half, whole] {
        let out = child.wait_with_output().unwrap();
        let run = support::sqlite::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
        .expect(0);
        applied.extend(tenants_with(&run, "applied"));
    }
    // Each database was migrated by exactly one of the two runs.
    applied.sort();
    let all: Vec<String> = tenants.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(applied, all);
    for (name, _) in &tenants {
        let file = repo.sqlite_file(&format!("app__{name}"));
        assert_eq!(
            count(&file, "SELECT count(*) FROM _tenantctl_history"),
            2,
            "{name}"
        );
    }
}
