//! MongoDB engine against a real server (TENANTCTL_TEST_MONGO_URL), through
//! the tenantctl binary on repositories written to a temporary directory.

mod support;

use mongodb::bson::{Document, doc};
use support::{TestRepo, block_on, server_url, unique};

const URL_VAR: &str = "TENANTCTL_TEST_MONGO_URL";

/// Drops the databases a test created, even when it fails.
struct Cleanup {
    url: String,
    databases: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let url = self.url.clone();
        let databases = std::mem::take(&mut self.databases);
        block_on(async move {
            if let Ok(client) = mongodb::Client::with_uri_str(&url).await {
                for db in databases {
                    let _ = client.database(&db).drop().await;
                }
            }
        });
    }
}

fn repo_with(url_var: &str, tenant: &str, schema: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "tenantctl.yaml",
        &format!("servers:\n  docs:\n    engine: mongodb\n    url: \"${{{url_var}}}\"\n"),
    );
    repo.write(
        "blueprints/events/blueprint.yaml",
        "engine: mongodb\nserver: docs\n",
    );
    repo.write("blueprints/events/schema.json", schema);
    repo.write(
        "tenants/t.yaml",
        &format!("tenants:\n  - name: {tenant}\n    databases:\n      - blueprint: events\n"),
    );
    repo
}

async fn indexes(url: &str, db: &str, collection: &str) -> Vec<Document> {
    let client = mongodb::Client::with_uri_str(url).await.unwrap();
    let reply = client
        .database(db)
        .run_command(doc! { "listIndexes": collection })
        .await
        .unwrap();
    reply
        .get_document("cursor")
        .unwrap()
        .get_array("firstBatch")
        .unwrap()
        .iter()
        .filter_map(|b| b.as_document().cloned())
        .collect()
}

async fn collection_names(url: &str, db: &str) -> Vec<String> {
    let client = mongodb::Client::with_uri_str(url).await.unwrap();
    let mut names = client.database(db).list_collection_names().await.unwrap();
    names.sort();
    names
}

fn index<'a>(list: &'a [Document], name: &str) -> &'a Document {
    list.iter()
        .find(|d| d.get_str("name") == Ok(name))
        .unwrap_or_else(|| panic!("no index {name} in {list:?}"))
}

const V1: &str = r#"{
  "collections": {
    "users": {
      "validator": {"$jsonSchema": {"bsonType": "object", "required": ["email"]}},
      "indexes": [
        {"name": "email", "key": {"email": 1}, "unique": true},
        {"name": "by_team", "key": {"team": 1, "joined": -1}, "partialFilterExpression": {"active": true}},
        {"name": "nick", "key": {"nick": 1}, "sparse": true, "collation": {"locale": "en", "strength": 2}}
      ]
    },
    "sessions": {
      "indexes": [
        {"name": "expiry", "key": {"at": 1}, "expireAfterSeconds": 3600},
        {"name": "by_user", "key": {"user": 1}}
      ]
    },
    "audit": {}
  }
}"#;

const V2: &str = r#"{
  "collections": {
    "users": {
      "validator": {"$jsonSchema": {"bsonType": "object", "required": ["email", "team"]}},
      "validationAction": "warn",
      "validationLevel": "moderate",
      "indexes": [
        {"name": "email", "key": {"email": 1}, "unique": true},
        {"name": "by_team", "key": {"team": 1, "joined": -1}, "partialFilterExpression": {"active": false}},
        {"name": "nick", "key": {"nick": 1}, "unique": true, "sparse": true, "collation": {"locale": "fr"}}
      ]
    },
    "sessions": {
      "indexes": [
        {"name": "expiry", "key": {"at": 1}, "expireAfterSeconds": 7200}
      ]
    },
    "notes": {
      "indexes": [{"name": "by_title", "key": {"title": 1}, "hidden": true}]
    }
  }
}"#;

#[test]
fn mongodb_apply_converges_through_collection_validator_and_index_changes() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mgconv");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db.clone()],
    };
    let repo = repo_with(URL_VAR, &tenant, V1);
    repo.expect(&["validate"], 0);

    // A new tenant: everything is created, then the plan is empty.
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(plan.stdout.contains("db.runCommand("), "{}", plan.text());
    repo.expect(&["reconcile", "--apply"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    let live = block_on(indexes(&url, &db, "users"));
    assert_eq!(index(&live, "email").get_bool("unique"), Ok(true));
    assert_eq!(
        block_on(collection_names(&url, &db))
            .into_iter()
            .filter(|n| !n.starts_with("_tenantctl_"))
            .collect::<Vec<_>>(),
        vec!["audit", "sessions", "users"]
    );

    // Change validators and every index option; drop a collection and an index.
    repo.write("blueprints/events/schema.json", V2);
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    let text = plan.text();
    for expected in [
        "collMod",
        "\"hidden\":true",
        "validationAction\":\"warn",
        "\"expireAfterSeconds\":7200",
        "dropIndexes",
        "recreate index nick",
        "drop collection audit",
        "destructive",
    ] {
        assert!(text.contains(expected), "plan lacks {expected:?}:\n{text}");
    }
    // The dropped collection is destructive: refused without consent, nothing run.
    let refused = repo.run(&["reconcile", "--apply"]);
    assert_ne!(refused.code, 0, "{}", refused.text());
    assert!(refused.text().contains("refused"), "{}", refused.text());
    assert!(block_on(collection_names(&url, &db)).contains(&"audit".to_string()));

    repo.expect(&["reconcile", "--apply", "--allow-destructive"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    let notes = block_on(indexes(&url, &db, "notes"));
    assert_eq!(index(&notes, "by_title").get_bool("hidden"), Ok(true));
    let live = block_on(indexes(&url, &db, "users"));
    assert_eq!(index(&live, "nick").get_bool("unique"), Ok(true));
    assert_eq!(
        index(&live, "nick")
            .get_document("collation")
            .unwrap()
            .get_str("locale"),
        Ok("fr")
    );
    let sessions = block_on(indexes(&url, &db, "sessions"));
    assert!(sessions.iter().all(|d| d.get_str("name") != Ok("by_user")));
    let ttl = index(&sessions, "expiry")
        .get("expireAfterSeconds")
        .unwrap();
    assert_eq!(ttl.as_i64().or(ttl.as_i32().map(i64::from)), Some(7200));
    let names = block_on(collection_names(&url, &db));
    assert!(!names.contains(&"audit".to_string()), "{names:?}");
    assert!(
        names.contains(&"_tenantctl_history".to_string()),
        "{names:?}"
    );

    // Back to the first version: converges again.
    repo.write("blueprints/events/schema.json", V1);
    repo.expect(&["reconcile", "--apply", "--allow-destructive"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

#[test]
fn mongodb_immutable_option_change_is_reported_as_a_manual_step() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mgimm");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url,
        databases: vec![db],
    };
    let repo = repo_with(
        URL_VAR,
        &tenant,
        r#"{"collections": {"log": {"capped": true, "size": 65536}}}"#,
    );
    repo.expect(&["reconcile", "--apply"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    repo.write(
        "blueprints/events/schema.json",
        r#"{"collections": {"log": {"capped": true, "size": 131072}}}"#,
    );
    let plan = repo.run(&["reconcile", "--plan"]);
    assert_eq!(plan.code, 1, "{}", plan.text());
    assert!(
        plan.text()
            .contains("`size` cannot change after creation (live: 65536, declared: 131072)"),
        "{}",
        plan.text()
    );
    assert!(plan.text().contains("manual step"), "{}", plan.text());
    let apply = repo.run(&["reconcile", "--apply"]);
    assert_eq!(apply.code, 1, "{}", apply.text());
}

#[test]
fn validate_reports_mongodb_json_mistakes_with_positions() {
    let repo = repo_with(
        "UNUSED_URL",
        "acme",
        "{\n  \"collections\": {\n    \"users\": {\n      \"indexes\": [{\"name\": \"e\", \"key\": {\"email\": 1}, \"uniqe\": true}]\n    }\n  }\n}\n",
    );
    let run = repo.expect(&["validate"], 1);
    assert!(
        run.stdout.contains("blueprints/events/schema.json:4:"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("unknown field `uniqe`"),
        "{}",
        run.text()
    );

    repo.write(
        "blueprints/events/schema.json",
        "{\"collections\": {\"users\": {\n\"validationAction\": 3}}}",
    );
    let run = repo.expect(&["validate"], 1);
    assert!(run.stdout.contains("schema.json:2:"), "{}", run.text());

    repo.write("blueprints/events/schema.json", "{\"collections\": {,}}");
    let run = repo.expect(&["validate"], 1);
    assert!(
        run.stdout.contains("schema.json:1:18: JSON:"),
        "{}",
        run.text()
    );
}

/// Text, 2dsphere and hashed index keys: the server reports them in its own
/// form (text: `{"_fts": "text", "_ftsx": 1}` plus weights); the plan must
/// still be empty after apply. Each kind the server lacks (secantusdb has
/// none of the three) is skipped with a notice.
#[test]
fn mongodb_special_index_kinds_converge_where_supported() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let cases = [
        (
            "text",
            doc! { "t": "text" },
            r#"{"name": "search", "key": {"kind": 1, "title": "text", "body": "text"}, "weights": {"title": 5}, "default_language": "english"}"#,
        ),
        (
            "2dsphere",
            doc! { "loc": "2dsphere" },
            r#"{"name": "where", "key": {"loc": "2dsphere"}}"#,
        ),
        (
            "hashed",
            doc! { "h": "hashed" },
            r#"{"name": "shard", "key": {"tenant": "hashed"}}"#,
        ),
    ];
    for (kind, probe_key, index) in cases {
        let tenant = unique("mgkind");
        let db = format!("events__{tenant}");
        let _cleanup = Cleanup {
            url: url.clone(),
            databases: vec![db.clone()],
        };
        let supported = block_on(async {
            let client = mongodb::Client::with_uri_str(&url).await.unwrap();
            let ok = client
                .database(&db)
                .run_command(doc! { "createIndexes": "probe", "indexes": [{ "name": "p", "key": probe_key }] })
                .await
                .is_ok();
            let _ = client
                .database(&db)
                .collection::<Document>("probe")
                .drop()
                .await;
            ok
        });
        if !supported {
            eprintln!("skipping {kind} indexes: this server does not support them");
            continue;
        }
        let repo = repo_with(
            URL_VAR,
            &tenant,
            &format!(r#"{{"collections": {{"things": {{"indexes": [{index}]}}}}}}"#),
        );
        repo.expect(&["reconcile", "--apply"], 0);
        repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    }
}

/// Hiding an existing index is a `collMod`, not a rebuild. Skipped with a
/// notice where the server accepts the collMod but does not hide the index
/// (secantusdb 0.x); a real mongod does.
#[test]
fn mongodb_hiding_an_index_is_a_collmod_where_supported() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mghide");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db.clone()],
    };
    let declare = |hidden: bool| {
        format!(
            r#"{{"collections": {{"users": {{"indexes": [{{"name": "email", "key": {{"email": 1}}, "hidden": {hidden}}}]}}}}}}"#
        )
    };
    let repo = repo_with(URL_VAR, &tenant, &declare(false));
    repo.expect(&["reconcile", "--apply"], 0);
    repo.write("blueprints/events/schema.json", &declare(true));
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(
        plan.stdout.contains(
            r#"db.runCommand({"collMod":"users","index":{"name":"email","hidden":true}})"#
        ),
        "{}",
        plan.text()
    );
    assert!(!plan.stdout.contains("dropIndexes"), "{}", plan.text());
    let apply = repo.run(&["reconcile", "--apply"]);
    let hidden = block_on(indexes(&url, &db, "users"))
        .iter()
        .any(|d| d.get_str("name") == Ok("email") && d.get_bool("hidden") == Ok(true));
    if !hidden {
        assert!(apply.text().contains("not converged"), "{}", apply.text());
        eprintln!(
            "skipping the rest: this server accepts collMod index.hidden without hiding the index"
        );
        return;
    }
    assert_eq!(apply.code, 0, "{}", apply.text());
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

/// The status `drift --format json` gives `tenant`'s database.
fn drift_status(repo: &TestRepo, tenant: &str) -> (String, String) {
    let run = repo.run(&["drift", "--tenant", tenant, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("drift output is not JSON ({e}):\n{}", run.text()));
    let target = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no target for {tenant}:\n{}", run.text()))
        .clone();
    (
        target["status"].as_str().unwrap().to_string(),
        serde_json::to_string(&target).unwrap(),
    )
}

#[test]
fn mongodb_drift_tells_pending_from_changed_by_hand() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mgdrift");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db.clone()],
    };
    let repo = repo_with(
        URL_VAR,
        &tenant,
        r#"{"collections": {"users": {"indexes": [{"name": "email", "key": {"email": 1}}]}}}"#,
    );
    assert_eq!(drift_status(&repo, &tenant).0, "missing");
    repo.expect(&["reconcile", "--apply"], 0);
    assert_eq!(drift_status(&repo, &tenant).0, "in-sync");

    // Someone adds an index by hand.
    block_on(async {
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        client
            .database(&db)
            .run_command(doc! { "createIndexes": "users", "indexes": [{ "name": "by_hand", "key": { "nick": 1 } }] })
            .await
            .unwrap();
    });
    let (status, detail) = drift_status(&repo, &tenant);
    assert_eq!(status, "drifted", "{detail}");
    assert!(detail.contains("create index by_hand on users"), "{detail}");
    repo.expect(&["reconcile", "--apply"], 0);
    assert_eq!(drift_status(&repo, &tenant).0, "in-sync");

    // git moves on: pending until applied.
    repo.write(
        "blueprints/events/schema.json",
        r#"{"collections": {"users": {"indexes": [{"name": "email", "key": {"email": 1}}]}, "orders": {}}}"#,
    );
    let (status, detail) = drift_status(&repo, &tenant);
    assert_eq!(status, "pending", "{detail}");
    assert!(detail.contains("create collection orders"), "{detail}");
}

#[test]
fn mongodb_apply_waits_for_a_held_lock_and_takes_over_an_expired_one() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mglock");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db.clone()],
    };
    let repo = repo_with(URL_VAR, &tenant, r#"{"collections": {"users": {}}}"#);
    repo.write(
        "tenantctl.yaml",
        &format!(
            "servers:\n  docs:\n    engine: mongodb\n    url: \"${{{URL_VAR}}}\"\n    lock_timeout: 1s\n"
        ),
    );
    let set_lock = |expires_in_ms: i64| {
        block_on(async {
            let client = mongodb::Client::with_uri_str(&url).await.unwrap();
            let expires = mongodb::bson::DateTime::from_millis(
                mongodb::bson::DateTime::now().timestamp_millis() + expires_in_ms,
            );
            client
                .database(&db)
                .run_command(doc! { "update": "_tenantctl_lock", "updates": [{
                "q": { "_id": "apply" },
                "u": { "$set": { "owner": "another-ci-job", "expiresAt": expires } },
                "upsert": true }] })
                .await
                .unwrap();
        })
    };
    // Another job holds the lock: the apply gives up, nothing changed.
    set_lock(60_000);
    let run = repo.run(&["reconcile", "--apply"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(run.text().contains("holds the lock"), "{}", run.text());
    assert!(!block_on(collection_names(&url, &db)).contains(&"users".to_string()));
    // Its holder died and the lease ran out: the next apply takes over.
    set_lock(-1_000);
    repo.expect(&["reconcile", "--apply"], 0);
    assert!(block_on(collection_names(&url, &db)).contains(&"users".to_string()));
    // The apply released its lock (the reserved collection is not in the plan).
    let left = block_on(async {
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        client
            .database(&db)
            .collection::<Document>("_tenantctl_lock")
            .count_documents(doc! {})
            .await
            .unwrap()
    });
    assert_eq!(left, 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

#[test]
fn mongodb_creation_options_converge_and_are_then_fixed() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mgopts");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db],
    };
    let schema = |granularity: &str| {
        format!(
            r#"{{"collections": {{
                "metrics": {{"timeseries": {{"timeField": "at", "metaField": "host", "granularity": "{granularity}"}}}},
                "orders": {{"clusteredIndex": {{"key": {{"_id": 1}}, "unique": true}}}},
                "people": {{"collation": {{"locale": "fr", "strength": 3}}, "indexes": [{{"name": "by_name", "key": {{"name": 1}}}}]}},
                "log": {{"capped": true, "size": 8192, "max": 100}}
            }}}}"#
        )
    };
    let repo = repo_with(URL_VAR, &tenant, &schema("minutes"));
    repo.expect(&["reconcile", "--apply"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    repo.write("blueprints/events/schema.json", &schema("hours"));
    let plan = repo.run(&["reconcile", "--plan"]);
    assert_eq!(plan.code, 1, "{}", plan.text());
    assert!(
        plan.text()
            .contains("collection metrics: `timeseries` cannot change after creation"),
        "{}",
        plan.text()
    );
}

/// MongoDB cannot run DDL in a transaction: a step that fails stops the
/// apply, what ran stays, the history says how far it got, and the next
/// run plans only the rest and converges.
#[test]
fn mongodb_failed_apply_is_recorded_and_a_rerun_converges() {
    let Some(url) = server_url(URL_VAR) else {
        return;
    };
    let tenant = unique("mgfail");
    let db = format!("events__{tenant}");
    let _cleanup = Cleanup {
        url: url.clone(),
        databases: vec![db.clone()],
    };
    let repo = repo_with(URL_VAR, &tenant, r#"{"collections": {"users": {}}}"#);
    repo.expect(&["reconcile", "--apply"], 0);
    // Two users share an email: a unique index on it cannot be built.
    let twins = |insert: bool| {
        block_on(async {
            let client = mongodb::Client::with_uri_str(&url).await.unwrap();
            let users = client.database(&db).collection::<Document>("users");
            if insert {
                users
                    .insert_many([doc! { "email": "a@x" }, doc! { "email": "a@x" }])
                    .await
                    .unwrap();
            } else {
                users.delete_one(doc! { "email": "a@x" }).await.unwrap();
            }
        })
    };
    twins(true);

    repo.write(
        "blueprints/events/schema.json",
        r#"{"collections": {"users": {"indexes": [{"name": "email", "key": {"email": 1}, "unique": true}]}, "orders": {}}}"#,
    );
    let failed = repo.run(&["reconcile", "--apply"]);
    assert_eq!(failed.code, 1, "{}", failed.text());
    assert!(
        failed.text().contains("create index email on users failed"),
        "{}",
        failed.text()
    );
    assert!(failed.text().contains("stay applied"), "{}", failed.text());
    let names = block_on(collection_names(&url, &db));
    assert!(
        names.contains(&"orders".to_string()),
        "the step before stays: {names:?}"
    );
    let outcome = block_on(async {
        let client = mongodb::Client::with_uri_str(&url).await.unwrap();
        let history = client
            .database(&db)
            .collection::<Document>("_tenantctl_history")
            .find_one(doc! {})
            .sort(doc! { "recordedAt": -1 })
            .await
            .unwrap()
            .unwrap();
        history.get_str("outcome").unwrap().to_string()
    });
    assert!(
        outcome.starts_with("failed after 1 of 2 statements"),
        "{outcome}"
    );

    // Only the index is left to do; once the data allows it, a re-run converges.
    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(
        !plan.stdout.contains("create collection orders"),
        "{}",
        plan.text()
    );
    twins(false);
    repo.expect(&["reconcile", "--apply"], 0);
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

#[test]
fn mongodb_connection_errors_never_print_the_password() {
    let mut repo = repo_with(
        "TT_MONGO_SECRET_URL",
        "acme",
        r#"{"collections": {"a": {}}}"#,
    );
    repo.env(
        "TT_MONGO_SECRET_URL",
        "mongodb://admin:hunter2secret@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
    );
    for args in [&["reconcile", "--plan"][..], &["reconcile", "--apply"][..]] {
        let run = repo.run(args);
        assert_eq!(run.code, 1, "{}", run.text());
        assert!(!run.text().contains("hunter2secret"), "{}", run.text());
    }
}
