//! Redis engine against a real server (TENANTCTL_TEST_REDIS_URL), through
//! the tenantctl binary on repositories written to a temporary directory.

mod support;

use redis::Commands;
use support::{RedisCleanup as Cleanup, TestRepo, server_url, unique};

const URL_VAR: &str = "TENANTCTL_TEST_REDIS_URL";

fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// A repository with one redis blueprint `cache` and the given tenants.
fn repo_with(tenants: &[&str], schema: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  kv:\n    engine: redis\n    url: \"${{{URL_VAR}}}\"\n"),
    );
    repo.write(
        "blueprints/cache/blueprint.yaml",
        "engine: redis\nserver: kv\n",
    );
    repo.write("blueprints/cache/schema.json", schema);
    let mut yaml = String::from("tenants:\n");
    for t in tenants {
        yaml.push_str(&format!(
            "  - name: {t}\n    databases:\n      - blueprint: cache\n"
        ));
    }
    repo.write("tenants/t.yaml", &yaml);
    repo
}

/// The URL with a user and password.
fn url_as(url: &str, user: &str, password: &str) -> String {
    url.replacen("redis://", &format!("redis://{user}:{password}@"), 1)
}

#[test]
fn redis_acl_user_reads_and_writes_its_prefix_and_gets_noperm_elsewhere() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let a = unique("rda");
    let b = unique("rdb");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![a.clone(), b.clone()],
    };
    let mut repo = repo_with(
        &[&a, &b],
        r#"{"acl": {"commands": "+@all -@dangerous", "password_env": "TT_REDIS_PW_{tenant}"}}"#,
    );
    let secret_a = format!("pw-{a}-s3cret");
    let secret_b = format!("pw-{b}-s3cret");
    repo.env(&format!("TT_REDIS_PW_{}", a.to_uppercase()), &secret_a);
    repo.env(&format!("TT_REDIS_PW_{}", b.to_uppercase()), &secret_b);
    repo.expect(&["validate"], 0);

    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("ACL SETUSER"), "{}", plan.text());
    let apply = repo.expect(&["reconcile", "--apply", "--format", "json"], 0);
    for output in [&plan, &apply] {
        assert!(!output.text().contains(&secret_a), "password printed");
        assert!(!output.text().contains("s3cret"), "password printed");
    }
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    let mut as_a = connect(&url_as(&url, &a, &secret_a));
    let _: () = as_a.set(format!("{a}:greeting"), "hello").unwrap();
    let got: String = as_a.get(format!("{a}:greeting")).unwrap();
    assert_eq!(got, "hello");
    let err = as_a
        .get::<_, Option<String>>(format!("{b}:greeting"))
        .unwrap_err();
    assert!(err.to_string().to_uppercase().contains("NOPERM"), "{err}");
    let err = as_a
        .set::<_, _, ()>(format!("{b}:greeting"), "intruder")
        .unwrap_err();
    assert!(err.to_string().to_uppercase().contains("NOPERM"), "{err}");
    // -@dangerous holds.
    let err = redis::cmd("FLUSHALL").query::<()>(&mut as_a).unwrap_err();
    assert!(err.to_string().to_uppercase().contains("NOPERM"), "{err}");
    // The wrong password is refused.
    assert!(
        redis::Client::open(url_as(&url, &a, &secret_b).as_str())
            .unwrap()
            .get_connection()
            .is_err()
    );

    // Someone widens the user by hand: drift, reset by the next apply.
    let mut admin = connect(&url);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&a)
        .arg("~*")
        .query(&mut admin)
        .unwrap();
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains(&format!("reset ACL user {a}")),
        "{}",
        plan.text()
    );
    repo.expect(&["reconcile", "--apply"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    let mut as_a = connect(&url_as(&url, &a, &secret_a));
    assert!(as_a.get::<_, Option<String>>(format!("{b}:x")).is_err());

    // Removing the acl deletes the user, but only with consent.
    repo.write("blueprints/cache/schema.json", "{}");
    let refused = repo.run(&["reconcile", "--apply"]);
    assert_eq!(refused.code, 1, "{}", refused.text());
    assert!(refused.text().contains("destructive"), "{}", refused.text());
    repo.expect(&["reconcile", "--apply", "--allow-destructive"], 0);
    let users: Vec<String> = redis::cmd("ACL").arg("USERS").query(&mut admin).unwrap();
    assert!(!users.contains(&a), "{users:?}");
}

#[test]
fn redis_ttl_policy_drift_is_detected_and_fixed() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let t = unique("rdttl");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![t.clone()],
    };
    let repo = repo_with(
        &[&t],
        r#"{"ttl": [{"pattern": "session:*", "max_seconds": 3600}]}"#,
    );
    let mut admin = connect(&url);
    let _: () = admin.set(format!("{t}:session:forever"), "1").unwrap();
    let _: () = admin
        .set_ex(format!("{t}:session:long"), "1", 100_000)
        .unwrap();
    let _: () = admin.set_ex(format!("{t}:session:short"), "1", 60).unwrap();
    let _: () = admin.set(format!("{t}:other"), "1").unwrap();

    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    let text = plan.text();
    assert!(text.contains("expire 2 key(s)"), "{text}");
    assert!(
        text.contains(&format!("EXPIRE {t}:session:forever 3600 LT")),
        "{text}"
    );
    assert!(
        text.contains(&format!("EXPIRE {t}:session:long 3600 LT")),
        "{text}"
    );
    assert!(!text.contains("session:short"), "{text}");

    repo.expect(&["reconcile", "--apply"], 0);
    for key in ["forever", "long"] {
        let ttl: i64 = admin.ttl(format!("{t}:session:{key}")).unwrap();
        assert!((1..=3600).contains(&ttl), "{key}: ttl {ttl}");
    }
    let short: i64 = admin.ttl(format!("{t}:session:short")).unwrap();
    assert!((1..=60).contains(&short), "short ttl {short}");
    let other: i64 = admin.ttl(format!("{t}:other")).unwrap();
    assert_eq!(other, -1, "keys outside the pattern are left alone");
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    // New drift: found again.
    let _: () = admin.persist(format!("{t}:session:long")).unwrap();
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(plan.text().contains("expire 1 key(s)"), "{}", plan.text());
}

#[test]
fn redis_default_keys_are_created_once_and_never_overwritten() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let t = unique("rddef");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![t.clone()],
    };
    let repo = repo_with(
        &[&t],
        r#"{"hash_tag": true, "defaults": {"flags:beta": "off", "settings:locale": "en"}}"#,
    );
    repo.expect(&["reconcile", "--apply"], 0);
    let mut admin = connect(&url);
    // The hash-tag prefix form.
    let beta: Option<String> = admin.get(format!("{{{t}}}:flags:beta")).unwrap();
    assert_eq!(beta.as_deref(), Some("off"));
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    // The application changes a value: it stays.
    let _: () = admin.set(format!("{{{t}}}:flags:beta"), "on").unwrap();
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    repo.expect(&["reconcile", "--apply"], 0);
    let beta: Option<String> = admin.get(format!("{{{t}}}:flags:beta")).unwrap();
    assert_eq!(beta.as_deref(), Some("on"));

    // A deleted default comes back; the other is untouched.
    let _: () = admin.del(format!("{{{t}}}:settings:locale")).unwrap();
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("NX"), "{}", plan.text());
    repo.expect(&["reconcile", "--apply"], 0);
    let locale: Option<String> = admin.get(format!("{{{t}}}:settings:locale")).unwrap();
    assert_eq!(locale.as_deref(), Some("en"));
    let beta: Option<String> = admin.get(format!("{{{t}}}:flags:beta")).unwrap();
    assert_eq!(beta.as_deref(), Some("on"));
    // History was recorded under the reserved prefix.
    let history: i64 = admin.llen(format!("_tenantctl:history:{{{t}}}")).unwrap();
    assert_eq!(history, 2);
}

#[test]
fn validate_reports_redis_json_mistakes_with_positions() {
    let repo = repo_with(&["acme"], "{\n  \"acl\": {\"commands\": \"+@all ~*\"}\n}\n");
    let run = repo.expect(&["validate"], 1);
    assert!(
        run.stdout.contains("blueprints/cache/schema.json:2:"),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("not a command rule"), "{}", run.text());

    repo.write(
        "blueprints/cache/schema.json",
        "{\"ttl\": [\n  {\"pattern\": \"s:*\", \"max_seconds\": \"soon\"}]}",
    );
    let run = repo.expect(&["validate"], 1);
    assert!(run.stdout.contains("schema.json:2:"), "{}", run.text());
    assert!(run.stdout.contains("invalid type"), "{}", run.text());

    repo.write(
        "blueprints/cache/schema.json",
        "{\"defaults\": {\"a\": \"b\"} \"x\"}",
    );
    let run = repo.expect(&["validate"], 1);
    assert!(run.stdout.contains("schema.json:1:"), "{}", run.text());
    assert!(run.stdout.contains("JSON:"), "{}", run.text());
}

/// `examples/multi-engine`, with a tenant name unique to the run: its SQLite,
/// MongoDB and Redis databases reconcile in one run and converge.
#[test]
fn redis_drift_reports_a_tenant_whose_keys_break_the_ttl_policy() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let t = unique("rddrift");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![t.clone()],
    };
    let repo = repo_with(
        &[&t],
        r#"{"ttl": [{"pattern": "session:*", "max_seconds": 60}], "defaults": {"v": "1"}}"#,
    );
    repo.expect(&["reconcile", "--apply"], 0);
    let status = |repo: &TestRepo| -> String {
        let run = repo.run(&["drift", "--tenant", &t, "--format", "json"]);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tenant"] == t.as_str())
            .map(|x| x["status"].as_str().unwrap().to_string())
            .unwrap_or_else(|| run.text())
    };
    assert_eq!(status(&repo), "in-sync");
    let mut admin = connect(&url);
    let _: () = admin.set(format!("{t}:session:x"), "1").unwrap();
    assert_eq!(status(&repo), "drifted");
    repo.expect(&["reconcile", "--apply"], 0);
    assert_eq!(status(&repo), "in-sync");
}

#[test]
fn redis_apply_waits_for_a_held_lock_and_releases_its_own() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let t = unique("rdlock");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![t.clone()],
    };
    let repo = repo_with(&[&t], r#"{"defaults": {"flag": "off"}}"#);
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  kv:\n    engine: redis\n    url: \"${{{URL_VAR}}}\"\n    lock_timeout: 1s\n"),
    );
    let mut admin = connect(&url);
    let lock = format!("_tenantctl:lock:{{{t}}}");
    let _: () = admin.set_ex(&lock, "another-ci-job", 60).unwrap();
    let run = repo.run(&["reconcile", "--apply"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.text().contains("holds the lock"), "{}", run.text());
    let flag: Option<String> = admin.get(format!("{t}:flag")).unwrap();
    assert_eq!(flag, None, "nothing ran without the lock");
    // The other job's lock is untouched; once it is gone, apply runs.
    let holder: Option<String> = admin.get(&lock).unwrap();
    assert_eq!(holder.as_deref(), Some("another-ci-job"));
    let _: () = admin.del(&lock).unwrap();
    repo.expect(&["reconcile", "--apply"], 0);
    let flag: Option<String> = admin.get(format!("{t}:flag")).unwrap();
    assert_eq!(flag.as_deref(), Some("off"));
    let exists: bool = admin.exists(&lock).unwrap();
    assert!(!exists, "the apply released its lock");
}

#[test]
fn redis_connection_errors_never_print_the_password() {
    let mut repo = repo_with(&["acme"], r#"{"defaults": {"a": "b"}}"#);
    repo.write(
        "tenantctl.yaml",
        "servers:\n  kv:\n    engine: redis\n    url: \"${TT_REDIS_SECRET_URL}\"\n",
    );
    repo.env(
        "TT_REDIS_SECRET_URL",
        "redis://admin:hunter2secret@127.0.0.1:1",
    );
    for args in [&["reconcile", "--plan"][..], &["reconcile", "--apply"][..]] {
        let run = repo.run(args);
        assert_eq!(run.code, 1, "{}", run.text());
        assert!(!run.text().contains("hunter2secret"), "{}", run.text());
    }
}

#[test]
fn redis_drift_reports_a_removed_tenant_as_orphan_but_not_foreign_users() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let kept = unique("rdkeep");
    let removed = unique("rdgone");
    let foreign = unique("rdforeign");
    let _cleanup = Cleanup {
        url: url.clone(),
        tenants: vec![kept.clone(), removed.clone(), foreign.clone()],
    };
    let schema = r#"{"acl": {"commands": "+@read"}}"#;
    repo_with(&[&kept, &removed], schema).expect(&["reconcile", "--apply"], 0);
    let mut admin = connect(&url);
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&foreign)
        .arg("on")
        .query(&mut admin)
        .unwrap();

    let repo = repo_with(&[&kept], schema);
    let run = repo.run(&["drift", "--format", "json"]);
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.text()));
    let status_of = |name: &str| {
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant"] == name)
            .map(|t| t["status"].as_str().unwrap().to_string())
    };
    assert_eq!(
        status_of(&kept).as_deref(),
        Some("in-sync"),
        "{}",
        run.text()
    );
    assert_eq!(
        status_of(&removed).as_deref(),
        Some("orphan"),
        "{}",
        run.text()
    );
    assert_eq!(status_of(&foreign), None, "{}", run.text());
}

#[test]
fn redis_tenant_named_default_is_refused_and_the_default_user_untouched() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let mut admin = connect(&url);
    let before: redis::Value = redis::cmd("ACL")
        .arg("GETUSER")
        .arg("default")
        .query(&mut admin)
        .unwrap();
    let repo = repo_with(&["default"], r#"{"acl": {"commands": "+@read"}}"#);
    for args in [&["reconcile", "--plan"][..], &["reconcile", "--apply"][..]] {
        let run = repo.run(args);
        assert_eq!(run.code, 1, "{}", run.text());
        assert!(
            run.text().contains("cannot be named `default`"),
            "{}",
            run.text()
        );
    }
    let after: redis::Value = redis::cmd("ACL")
        .arg("GETUSER")
        .arg("default")
        .query(&mut admin)
        .unwrap();
    assert_eq!(before, after, "the default user must not change");
}
