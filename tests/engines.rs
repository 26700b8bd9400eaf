//! One tenant with all five engines (the `examples/multi-engine` repository)
//! reconciled in one run of the binary against the real servers.

mod support;

use redis::Commands;
use support::{RedisCleanup, TestRepo, server_url, unique};

fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// The URL with a user and password.
fn url_as(url: &str, user: &str, password: &str) -> String {
    url.replacen("redis://", &format!("redis://{user}:{password}@"), 1)
}

#[test]
fn one_tenant_with_all_five_engines_reconciles_in_one_run() {
    let Some(redis_url) = server_url("TENANTCTL_TEST_REDIS_URL") else {
        return;
    };
    let Some(mongo_url) = server_url("TENANTCTL_TEST_MONGO_URL") else {
        return;
    };
    let Some(pg_url) = server_url("TENANTCTL_TEST_PG_URL") else {
        return;
    };
    let Some(mysql_url) = server_url("TENANTCTL_TEST_MYSQL_URL") else {
        return;
    };
    let tenant = unique("multi");
    let _drop_sql = DropSqlDatabases {
        pg: (pg_url.clone(), format!("orders__{tenant}")),
        mysql: (mysql_url.clone(), format!("accounts__{tenant}")),
    };
    let _cleanup = RedisCleanup {
        url: redis_url.clone(),
        tenants: vec![tenant.clone()],
    };
    let mongo_db = format!("events__{tenant}");
    let _drop_mongo = DropMongo {
        url: mongo_url.clone(),
        database: mongo_db.clone(),
    };
    let mut repo = TestRepo::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-engine");
    support::copy_dir(&example, repo.path());
    let tenants = std::fs::read_to_string(repo.path().join("tenants/acme.yaml")).unwrap();
    repo.write(
        "tenants/acme.yaml",
        &tenants.replace("name: acme", &format!("name: {tenant}")),
    );
    repo.env("TENANTCTL_MONGO_URL", &mongo_url);
    repo.env("TENANTCTL_REDIS_URL", &redis_url);
    repo.env("PG_URL", &pg_url);
    repo.env("MYSQL_URL", &mysql_url);
    let password = format!("{tenant}-pw");
    repo.env(
        &format!("TENANTCTL_REDIS_PASSWORD_{}", tenant.to_uppercase()),
        &password,
    );
    repo.expect(&["validate"], 0);

    let plan = repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    for engine_statement in [
        "CREATE TABLE",
        "CREATE TYPE",
        "db.runCommand(",
        "ACL SETUSER",
    ] {
        assert!(plan.stdout.contains(engine_statement), "{}", plan.text());
    }
    // Each engine's statements are fenced and terminated as its registry
    // entry says: SQL in ```sql ending with `;`, MongoDB commands in ```js,
    // Redis commands in a plain fence, neither with `;`.
    let md = repo.expect(
        &[
            "reconcile",
            "--plan",
            "--format",
            "markdown",
            "--detailed-exitcode",
        ],
        2,
    );
    let blocks = fenced_blocks(&md.stdout);
    for (marker, info, semicolons) in [
        ("CREATE TABLE", "sql", true),
        ("CREATE TYPE", "sql", true),
        ("db.runCommand(", "js", false),
        ("ACL SETUSER", "", false),
    ] {
        let block = blocks
            .iter()
            .find(|(_, body)| body.contains(marker))
            .unwrap_or_else(|| panic!("no fenced block with {marker}:\n{}", md.stdout));
        assert_eq!(block.0, info, "{marker}:\n{}", md.stdout);
        // A SQL block ends with its last statement's `;`; the others have none.
        let terminated = if semicolons {
            block.1.trim_end().ends_with(';')
        } else {
            !block.1.lines().any(|l| l.trim_end().ends_with(';'))
        };
        assert!(terminated, "{marker}:\n{}", md.stdout);
    }
    let apply = repo.expect(&["reconcile", "--apply", "--format", "json"], 0);
    let report: serde_json::Value = serde_json::from_str(&apply.stdout).unwrap();
    let statuses: Vec<(String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["engine"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        ["mysql", "sqlite", "mongodb", "postgres", "redis"]
            .map(|engine| (engine.to_string(), "applied".to_string()))
            .to_vec()
    );
    repo.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    // Every engine's state is real: the SQLite file, the capped MongoDB
    // collection, the Redis user and default key.
    assert!(
        repo.path()
            .join(format!(".tenantctl/data/billing__{tenant}.db"))
            .exists()
    );
    let mut as_tenant = connect(&url_as(&redis_url, &tenant, &password));
    let flag: Option<String> = as_tenant
        .get(format!("{tenant}:flags:new_checkout"))
        .unwrap();
    assert_eq!(flag.as_deref(), Some("off"));
    let capped = support::block_on(async {
        let client = mongodb::Client::with_uri_str(&mongo_url).await.unwrap();
        let reply = client
            .database(&mongo_db)
            .run_command(
                mongodb::bson::doc! { "listCollections": 1, "filter": { "name": "audit" } },
            )
            .await
            .unwrap();
        reply
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap()[0]
            .as_document()
            .unwrap()
            .get_document("options")
            .unwrap()
            .get_bool("capped")
            .unwrap_or(false)
    });
    assert!(capped);
}

/// The fenced code blocks of a Markdown text: (info string, body).
fn fenced_blocks(md: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String, String)> = None;
    for line in md.lines() {
        match &mut open {
            None => {
                let ticks = line.len() - line.trim_start_matches('`').len();
                if ticks >= 3 {
                    let info = line[ticks..].trim().to_string();
                    open = Some(("`".repeat(ticks), info, String::new()));
                }
            }
            Some((fence, _, body)) => {
                if line.trim_end() == fence.as_str() {
                    let (_, info, body) = open.take().unwrap();
                    blocks.push((info, body));
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    blocks
}

/// Drops the PostgreSQL and MySQL tenant databases a test created.
struct DropSqlDatabases {
    pg: (String, String),
    mysql: (String, String),
}

impl Drop for DropSqlDatabases {
    fn drop(&mut self) {
        use sqlx::{Connection, Executor};
        let (pg, mysql) = (self.pg.clone(), self.mysql.clone());
        support::block_on(async move {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&pg.0).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", pg.1).as_str())
                    .await;
            }
            if let Ok(mut conn) = sqlx::MySqlConnection::connect(&mysql.0).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS `{}`", mysql.1).as_str())
                    .await;
            }
        });
    }
}

/// Drops a MongoDB database the test created, even when it fails.
struct DropMongo {
    url: String,
    database: String,
}

impl Drop for DropMongo {
    fn drop(&mut self) {
        let (url, db) = (self.url.clone(), self.database.clone());
        support::block_on(async move {
            if let Ok(client) = mongodb::Client::with_uri_str(&url).await {
                let _ = client.database(&db).drop().await;
            }
        });
    }
}
