//! The MySQL/MariaDB engine against a real server (`TENANTCTL_TEST_MYSQL_URL`),
//! through the real binary on repositories written to temp dirs.
//!
//! Each migration case applies a current blueprint, inserts rows, switches to
//! a desired blueprint and applies it, then checks that (a) a new plan is
//! empty, (b) the rows of the tables that stay are all there, and (c)
//! `mysqldump --no-data` of the migrated tenant equals that of a fresh tenant
//! built from the desired blueprint (column/key order and AUTO_INCREMENT
//! counters aside).

mod support;

use std::collections::BTreeMap;

use support::mysql::{Fleet, server_url};

/// Row counts of every table of `db` (tenantctl's own excluded).
fn row_counts(fleet: &Fleet, db: &str) -> BTreeMap<String, String> {
    let tables = fleet.client.sql(
        None,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' \
             AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE '\\_tenantctl\\_%'"
        ),
    );
    tables
        .lines()
        .map(|t| {
            let n = fleet
                .client
                .sql(Some(db), &format!("SELECT COUNT(*) FROM `{t}`"));
            (t.to_string(), n)
        })
        .collect()
}

struct Case {
    name: &'static str,
    current: &'static str,
    /// Rows inserted after the current blueprint is applied.
    seed: &'static str,
    desired: &'static str,
    destructive: bool,
    /// A query on the migrated tenant and its expected output.
    check: Option<(&'static str, &'static str)>,
}

fn migrate_case(case: &Case) {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(&url, "mc", case.current, &["t1"]);
    let db = fleet.database("t1");
    let create = fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(create.contains("to create"), "{create}");
    assert!(fleet.client.databases(&db).is_empty(), "plan created {db}");
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    if !case.seed.is_empty() {
        fleet.client.sql(Some(&db), case.seed);
    }
    let before = row_counts(&fleet, &db);

    fleet.set_schema(case.desired);
    let plan = fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    if case.destructive {
        let refused = fleet.run(&["reconcile", "--apply"]);
        assert_ne!(
            refused.status.code(),
            Some(0),
            "{}: a destructive plan was applied without --allow-destructive:\n{plan}",
            case.name
        );
        fleet.expect(&["reconcile", "--apply", "--allow-destructive"], 0);
    } else {
        fleet.expect(&["reconcile", "--apply"], 0);
    }
    // (a) converged
    let after_plan = fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    assert!(after_plan.contains("in sync"), "{after_plan}");
    // (b) rows kept
    let after = row_counts(&fleet, &db);
    for (table, count) in &before {
        if let Some(now) = after.get(table) {
            assert_eq!(
                now, count,
                "{}: rows of {table} changed\nplan:\n{plan}",
                case.name
            );
        }
    }
    if let Some((query, expected)) = case.check {
        assert_eq!(
            fleet.client.sql(Some(&db), query),
            expected,
            "{}",
            case.name
        );
    }
    // (c) the oracle: the same schema as a fresh tenant built from the blueprint
    fleet.set_tenants(&["t1", "fresh"]);
    fleet.expect(&["reconcile", "--apply"], 0);
    let scratch = fleet
        .client
        .databases(&format!("_tenantctl_scratch_{}_", fleet.blueprint));
    assert!(
        scratch.is_empty(),
        "scratch databases left behind: {scratch:?}"
    );
    let migrated = fleet.client.schema_dump(&db);
    let fresh = fleet.client.schema_dump(&fleet.database("fresh"));
    assert_eq!(
        migrated, fresh,
        "{}: mysqldump of the migrated tenant differs from a fresh one\nplan:\n{plan}",
        case.name
    );
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        $(#[test] fn $name() { migrate_case(&$case); })*
    };
}

cases! {
    columns_added_anywhere: Case {
        name: "columns added anywhere",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10));",
        seed: "INSERT INTO t VALUES (1, 'x'), (2, 'y');",
        desired: "CREATE TABLE t (
            first_col INT NULL,
            id INT PRIMARY KEY,
            n INT NOT NULL DEFAULT 7 COMMENT 'seven',
            a VARCHAR(10),
            note TEXT,
            ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            v INT AS (n * 2) VIRTUAL,
            s INT AS (n + 1) STORED,
            big BIGINT UNSIGNED ZEROFILL
        );",
        destructive: false,
        check: Some(("SELECT GROUP_CONCAT(n, ':', v, ':', s ORDER BY id) FROM t", "7:14:8,7:14:8")),
    };
    columns_dropped: Case {
        name: "columns dropped",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b INT, c TEXT);",
        seed: "INSERT INTO t VALUES (1, 'x', 1, 'c'), (2, 'y', 2, 'd');",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, b INT);",
        destructive: true,
        check: Some(("SELECT GROUP_CONCAT(b ORDER BY id) FROM t", "1,2")),
    };
    columns_modified: Case {
        name: "columns modified",
        current: "CREATE TABLE t (
            id INT PRIMARY KEY,
            a VARCHAR(10) NOT NULL,
            n INT DEFAULT 1,
            m INT NULL,
            c VARCHAR(20) COMMENT 'old',
            d DATETIME DEFAULT '2020-01-01 00:00:00',
            u INT
        );",
        seed: "INSERT INTO t (id, a, m, c, u) VALUES (1, 'x', 5, 'c', 3), (2, 'y', 6, 'd', 4);",
        desired: "CREATE TABLE t (
            id BIGINT PRIMARY KEY,
            a VARCHAR(50) NOT NULL,
            n INT DEFAULT 2,
            m INT NOT NULL,
            c VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin COMMENT 'new',
            d DATETIME,
            u INT UNSIGNED
        );",
        destructive: false,
        check: Some(("SELECT GROUP_CONCAT(a, m, u ORDER BY id) FROM t", "x53,y64")),
    };
    column_narrowed: Case {
        name: "column narrowed",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(100), n BIGINT);",
        seed: "INSERT INTO t VALUES (1, 'short', 1), (2, 'also short', 2);",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20), n INT);",
        destructive: true,
        check: Some(("SELECT GROUP_CONCAT(a ORDER BY id) FROM t", "short,also short")),
    };
    text_and_enum_narrowed: Case {
        name: "text and enum narrowed",
        current: "CREATE TABLE t (id INT PRIMARY KEY, body MEDIUMTEXT, kind ENUM('a','b','c'));",
        seed: "INSERT INTO t VALUES (1, 'x', 'a'), (2, 'y', 'c');",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, body TEXT, kind ENUM('a','c'));",
        destructive: true,
        check: Some(("SELECT GROUP_CONCAT(body, kind ORDER BY id) FROM t", "xa,yc")),
    };
    primary_key_and_auto_increment: Case {
        name: "primary key and auto_increment",
        current: "CREATE TABLE t (id INT NOT NULL, k INT NOT NULL, a INT, PRIMARY KEY (id));
                  CREATE TABLE u (id INT NOT NULL, v INT);",
        seed: "INSERT INTO t VALUES (1, 1, 1), (2, 1, 2); INSERT INTO u VALUES (5, 1), (6, 2);",
        desired: "CREATE TABLE t (id INT NOT NULL, k INT NOT NULL, a INT, PRIMARY KEY (k, id));
                  CREATE TABLE u (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, v INT);",
        destructive: false,
        check: None,
    };
    indexes: Case {
        name: "indexes",
        current: "CREATE TABLE t (
            id INT PRIMARY KEY, a VARCHAR(100), b INT, c TEXT, g POINT NOT NULL,
            KEY ab (a, b), KEY gone (b), UNIQUE KEY ua (a(10))
        );",
        seed: "INSERT INTO t VALUES (1, 'alpha', 1, 'one', POINT(1, 1)), (2, 'beta', 2, 'two', POINT(2, 2));",
        desired: "CREATE TABLE t (
            id INT PRIMARY KEY, a VARCHAR(100), b INT, c TEXT, g POINT NOT NULL,
            KEY ab (b, a(20)), UNIQUE KEY ua (a(12)), UNIQUE KEY ub (b),
            KEY bdesc (b DESC), FULLTEXT KEY ft (c), SPATIAL KEY sp (g)
        );
        CREATE INDEX extra ON t (c(5), b);",
        destructive: false,
        check: None,
    };
    foreign_keys: Case {
        name: "foreign keys",
        current: "CREATE TABLE p (id INT PRIMARY KEY, code INT NOT NULL, UNIQUE KEY code (code));
                  CREATE TABLE c (id INT PRIMARY KEY, pid INT, pcode INT,
                     CONSTRAINT c_p FOREIGN KEY (pid) REFERENCES p (id),
                     CONSTRAINT c_gone FOREIGN KEY (pcode) REFERENCES p (code));",
        seed: "INSERT INTO p VALUES (1, 10), (2, 20); INSERT INTO c VALUES (1, 1, 10), (2, 2, 20);",
        desired: "CREATE TABLE p (id INT PRIMARY KEY, code INT NOT NULL, UNIQUE KEY code (code));
                  CREATE TABLE c (id INT PRIMARY KEY, pid INT, pcode INT, gid INT,
                     CONSTRAINT c_p FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE ON UPDATE CASCADE,
                     CONSTRAINT c_g FOREIGN KEY (gid) REFERENCES g (id));
                  CREATE TABLE g (id INT PRIMARY KEY);",
        destructive: false,
        check: None,
    };
    check_constraints: Case {
        name: "check constraints",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT,
                     CONSTRAINT a_pos CHECK (a > 0), CONSTRAINT gone CHECK (b < 100));
                  CREATE TABLE u (id INT PRIMARY KEY, c INT CHECK (c >= 0), d INT, e INT CHECK (e <> 0));",
        seed: "INSERT INTO t VALUES (1, 1, 1), (2, 5, 50); INSERT INTO u VALUES (1, 1, 1, 1);",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT CHECK (b > 0),
                     CONSTRAINT a_pos CHECK (a >= 1 AND a < 1000), CONSTRAINT b_pos CHECK (b > 0),
                     j JSON);
                  CREATE TABLE u (id INT PRIMARY KEY, c INT CHECK (c > 0), d INT CHECK (d > 0), e INT);",
        destructive: false,
        check: None,
    };
    table_options: Case {
        name: "table options",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10) COLLATE utf8mb4_bin)
                     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT 'old';
                  CREATE TABLE m (id INT PRIMARY KEY) ENGINE=InnoDB;",
        seed: "INSERT INTO t VALUES (1, 'x', 'y'); INSERT INTO m VALUES (1), (2);",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10) COLLATE utf8mb4_bin)
                     DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT 'new';
                  CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM ROW_FORMAT=FIXED;",
        destructive: false,
        check: Some(("SELECT CONCAT(a, b) FROM t", "xy")),
    };
    views_follow_their_tables: Case {
        name: "views follow their tables",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT);
                  CREATE VIEW v AS SELECT id, a FROM t;
                  CREATE VIEW vv AS SELECT id FROM v;
                  CREATE VIEW gone AS SELECT 1 AS one;",
        seed: "INSERT INTO t VALUES (1, 1, 1);",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, a BIGINT, b INT, c INT);
                  CREATE VIEW v AS SELECT id, a, c FROM t WHERE a > 0;
                  CREATE VIEW vv AS SELECT id FROM v;
                  CREATE VIEW fresh AS SELECT id FROM t;",
        destructive: false,
        check: Some(("SELECT COUNT(*) FROM vv", "1")),
    };
    triggers: Case {
        name: "triggers",
        current: "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT);
                  CREATE TRIGGER t_a BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END;
                  CREATE TRIGGER gone BEFORE UPDATE ON t FOR EACH ROW BEGIN SET NEW.b = 1; END;",
        seed: "INSERT INTO t (id) VALUES (1);",
        desired: "CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT);
                  CREATE TRIGGER t_a BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 2; END;
                  CREATE TRIGGER t_b AFTER DELETE ON t FOR EACH ROW BEGIN SET @deleted = OLD.id; END;",
        destructive: false,
        check: None,
    };
    key_columns_widened_under_a_foreign_key: Case {
        name: "key columns widened under a foreign key",
        current: "CREATE TABLE p (id INT PRIMARY KEY);
                  CREATE TABLE c (id INT PRIMARY KEY, pid INT, CONSTRAINT c_p FOREIGN KEY (pid) REFERENCES p (id));",
        seed: "INSERT INTO p VALUES (1), (2); INSERT INTO c VALUES (1, 1), (2, 2), (3, NULL);",
        desired: "CREATE TABLE p (id BIGINT PRIMARY KEY);
                  CREATE TABLE c (id INT PRIMARY KEY, pid BIGINT, CONSTRAINT c_p FOREIGN KEY (pid) REFERENCES p (id));",
        destructive: false,
        check: None,
    };
    foreign_key_cycle_between_new_tables: Case {
        name: "foreign key cycle between new tables",
        current: "CREATE TABLE keep (id INT PRIMARY KEY);",
        seed: "INSERT INTO keep VALUES (1);",
        desired: "CREATE TABLE keep (id INT PRIMARY KEY);
                  CREATE TABLE orgs (id INT PRIMARY KEY, owner_id INT,
                     CONSTRAINT orgs_owner FOREIGN KEY (owner_id) REFERENCES people (id));
                  CREATE TABLE people (id INT PRIMARY KEY, org_id INT,
                     CONSTRAINT people_org FOREIGN KEY (org_id) REFERENCES orgs (id));",
        destructive: false,
        check: None,
    };
    tables_created_and_dropped: Case {
        name: "tables created and dropped",
        current: "CREATE TABLE keep (id INT PRIMARY KEY);
                  CREATE TABLE old_parent (id INT PRIMARY KEY);
                  CREATE TABLE old_child (id INT PRIMARY KEY, pid INT,
                     FOREIGN KEY (pid) REFERENCES old_parent (id));",
        seed: "INSERT INTO keep VALUES (1), (2), (3); INSERT INTO old_parent VALUES (1); INSERT INTO old_child VALUES (1, 1);",
        desired: "CREATE TABLE keep (id INT PRIMARY KEY, code INT, UNIQUE KEY code (code));
                  CREATE TABLE by_code (id INT PRIMARY KEY, code INT, FOREIGN KEY (code) REFERENCES keep (code));
                  CREATE TABLE new_child (id INT PRIMARY KEY, pid INT, FOREIGN KEY (pid) REFERENCES new_parent (id));
                  CREATE TABLE new_parent (id INT PRIMARY KEY, k INT, FOREIGN KEY (k) REFERENCES keep (id));
                  CREATE TABLE counters (id INT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 1000;",
        destructive: true,
        check: Some((
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'counters'",
            "1000",
        )),
    };
}

/// Declaring what a database already has, in another usual spelling, plans nothing.
#[test]
fn spelling_equivalence_plans_nothing() {
    let Some(url) = server_url() else { return };
    let client = support::mysql::Client::from_url(&url);
    let charset = client.sql(None, "SELECT @@character_set_server");
    let canonical = format!(
        "CREATE TABLE `users` (
          `id` int(11) NOT NULL AUTO_INCREMENT,
          `email` varchar(100) CHARACTER SET {charset} NOT NULL,
          `active` tinyint(1) NOT NULL DEFAULT 1,
          `n` int(10) unsigned DEFAULT NULL,
          `small` tinyint(4) DEFAULT NULL,
          `created_at` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
          `score` decimal(10,0) DEFAULT NULL,
          `label` varchar(10) DEFAULT 'x',
          PRIMARY KEY (`id`),
          KEY `by_email` (`email`),
          CONSTRAINT `pos` CHECK ((`n` > 0))
        ) ENGINE=InnoDB DEFAULT CHARSET={charset};
        CREATE TABLE `orders` (
          `id` bigint(20) NOT NULL,
          `user_id` int(11) DEFAULT NULL,
          PRIMARY KEY (`id`),
          KEY `orders_user` (`user_id`),
          CONSTRAINT `orders_user` FOREIGN KEY (`user_id`) REFERENCES `users` (`id`)
        );
        CREATE VIEW `active` AS SELECT `users`.`id` AS `id` FROM `users` WHERE `users`.`active` = 1;"
    );
    let other = "create table orders (
          id BIGINT PRIMARY KEY,
          user_id INT,
          CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id)
        );
        create table users (
          id INTEGER PRIMARY KEY AUTO_INCREMENT,
          email VARCHAR(100) NOT NULL,
          active BOOL NOT NULL DEFAULT TRUE,
          n INT UNSIGNED NULL,
          small TINYINT,
          created_at TIMESTAMP NOT NULL DEFAULT NOW() ON UPDATE CURRENT_TIMESTAMP,
          score DECIMAL,
          label VARCHAR(10) DEFAULT \"x\",
          INDEX by_email (email),
          CONSTRAINT pos CHECK (n > 0)
        );
        create view active as select id from users where active = 1;";
    let fleet = Fleet::new(&url, "sp", &canonical, &["t1"]);
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.set_schema(other);
    let plan = fleet.run(&["reconcile", "--plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a respelling planned changes:\n{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
}

/// A blueprint option sets the tenant database's default charset and collation.
#[test]
fn charset_and_collation_from_the_blueprint() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "cs",
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10));",
        &["t1"],
    );
    fleet.set_blueprint_meta("options:\n  charset: utf8mb4\n  collation: utf8mb4_unicode_ci\n");
    fleet.expect(&["reconcile", "--apply"], 0);
    let db = fleet.database("t1");
    let got = fleet.client.sql(
        None,
        &format!(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
        ),
    );
    assert_eq!(got, "utf8mb4\tutf8mb4_unicode_ci");
    let table = fleet.client.sql(
        None,
        &format!("SELECT TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 't'"),
    );
    assert_eq!(table, "utf8mb4_unicode_ci");
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);

    fleet.set_blueprint_meta("options:\n  charset: \"utf8mb4; DROP DATABASE x\"\n");
    let out = fleet.expect(&["validate"], 1);
    let place = format!("blueprints/{}/blueprint.yaml:4:12", fleet.blueprint);
    assert!(
        out.contains(&place) && out.contains("not a character set"),
        "{out}"
    );
    fleet.expect(&["reconcile", "--plan"], 1);
}

/// A statement the server rejects is reported at its place in schema.sql.
#[test]
fn server_errors_point_at_the_blueprint_statement() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "be",
        "CREATE TABLE a (id INT PRIMARY KEY);\n\nCREATE TABLE b (id INT PRIMARY KEY, x INT,\n  KEY k (nope));\n",
        &["t1"],
    );
    let out = fleet.expect(&["reconcile", "--plan"], 1);
    let place = format!("blueprints/{}/schema.sql:3:1", fleet.blueprint);
    assert!(out.contains(&place), "expected {place} in:\n{out}");
    assert!(out.contains("nope"), "{out}");
    // The scratch database is gone, even though the blueprint failed.
    let left = fleet
        .client
        .databases(&format!("_tenantctl_scratch_{}_", fleet.blueprint));
    assert!(left.is_empty(), "scratch databases left behind: {left:?}");
    assert!(
        !out.contains(":root@") && !out.contains("root:root"),
        "{out}"
    );
}

/// Partitioning added by hand is reported as drift and removed again.
#[test]
fn partitioning_by_hand_is_reported() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "pt",
        "CREATE TABLE p (id INT NOT NULL, y INT NOT NULL, PRIMARY KEY (id, y));",
        &["t1"],
    );
    let db = fleet.database("t1");
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.client.sql(
        Some(&db),
        "INSERT INTO p VALUES (1, 1999), (2, 2020), (3, 2021); ALTER TABLE p PARTITION BY HASH (y) PARTITIONS 3;",
    );
    let plan = fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert!(
        plan.contains("PARTITION BY HASH") && plan.contains("REMOVE PARTITIONING"),
        "{plan}"
    );
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    assert_eq!(fleet.client.sql(Some(&db), "SELECT COUNT(*) FROM p"), "3");
}

/// A later statement fails on existing data after an earlier one committed:
/// the failure says how far the apply got, the history records it, and once
/// the data is fixed a re-run converges.
#[test]
fn failed_statement_then_rerun_converges() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "cr",
        "CREATE TABLE t (id INT PRIMARY KEY, a INT);",
        &["t1"],
    );
    let db = fleet.database("t1");
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet
        .client
        .sql(Some(&db), "INSERT INTO t VALUES (1, 5), (2, 5), (3, 7);");
    let desired = "CREATE TABLE t (id INT PRIMARY KEY, a INT, UNIQUE KEY ua (a));
                   CREATE TABLE audit (id INT PRIMARY KEY);";
    fleet.set_schema(desired);
    let out = fleet.run(&["reconcile", "--apply"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("after 1 of 2 statements"), "{text}");
    let outcome = fleet.client.sql(
        Some(&db),
        "SELECT completed, outcome FROM _tenantctl_history ORDER BY id DESC LIMIT 1",
    );
    assert!(outcome.starts_with("1\tfailed after 1 of 2"), "{outcome}");
    // Drift compares with the schema the failed apply left (its finished
    // record), so tenantctl's own statement is not taken for a change by hand.
    let drift = fleet.run(&["drift", "--format", "json"]);
    let drift = String::from_utf8_lossy(&drift.stdout).to_string();
    let report: serde_json::Value = serde_json::from_str(&drift).expect(&drift);
    assert_eq!(report["targets"][0]["status"], "pending", "{drift}");
    // The first statement stays applied: MySQL DDL is not transactional.
    assert_eq!(
        fleet.client.sql(None, &format!("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'audit'")),
        "1"
    );
    fleet
        .client
        .sql(Some(&db), "UPDATE t SET a = 6 WHERE id = 2;");
    let rerun = fleet.expect(&["reconcile", "--apply"], 0);
    assert!(
        !rerun.contains("create table audit"),
        "the re-run planned from the live state:\n{rerun}"
    );
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    assert_eq!(fleet.client.sql(Some(&db), "SELECT COUNT(*) FROM t"), "3");
    fleet.set_tenants(&["t1", "fresh"]);
    fleet.expect(&["reconcile", "--apply"], 0);
    assert_eq!(
        fleet.client.schema_dump(&db),
        fleet.client.schema_dump(&fleet.database("fresh"))
    );
}

/// The apply's connection is killed (`KILL` from another session) while the
/// second statement runs: the re-run continues from the live state and converges.
#[test]
fn killed_connection_then_rerun_converges() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "kl",
        "CREATE TABLE big (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(100));",
        &["t1"],
    );
    let db = fleet.database("t1");
    fleet.expect(&["reconcile", "--apply"], 0);
    let mut seed = String::from("INSERT INTO big (pad) VALUES (REPEAT('x', 90));");
    for _ in 0..18 {
        seed.push_str("INSERT INTO big (pad) SELECT pad FROM big;");
    }
    fleet.client.sql(Some(&db), &seed);
    let rows = fleet.client.sql(Some(&db), "SELECT COUNT(*) FROM big");
    fleet.set_schema(
        "CREATE TABLE big (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, pad TEXT, extra INT NOT NULL DEFAULT 0);
         CREATE TABLE aaa_first (id INT PRIMARY KEY);",
    );
    let killer = {
        let client = fleet.client.clone();
        let db = db.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_secs(60) {
                let id = client.sql(
                    None,
                    &format!(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{db}' AND INFO LIKE 'ALTER TABLE%big%' LIMIT 1"
                    ),
                );
                if !id.is_empty() {
                    client.sql(None, &format!("KILL CONNECTION {id}"));
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            false
        })
    };
    let out = fleet.run(&["reconcile", "--apply"]);
    let killed = killer.join().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        killed,
        "the ALTER finished before it could be killed:\n{text}"
    );
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("after 1 of 2 statements"), "{text}");
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    assert_eq!(
        fleet.client.sql(Some(&db), "SELECT COUNT(*) FROM big"),
        rows
    );
}

/// Two applies never migrate one tenant at once: a held GET_LOCK makes apply wait, then give up.
#[test]
fn apply_waits_for_the_tenant_lock() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(&url, "lk", "CREATE TABLE t (id INT PRIMARY KEY);", &["t1"]);
    fleet.write(
        "tenantctl.yaml",
        "servers:\n  my:\n    engine: mysql\n    url: \"${TENANTCTL_TEST_MYSQL_URL}\"\n    lock_timeout: 1s\n",
    );
    let db = fleet.database("t1");
    fleet.client.sql(None, &format!("CREATE DATABASE `{db}`"));
    let holder = {
        let client = fleet.client.clone();
        let lock = format!("tenantctl.{db}");
        std::thread::spawn(move || {
            client.sql(None, &format!("SELECT GET_LOCK('{lock}', 5), SLEEP(4)"));
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(700));
    let out = fleet.run(&["reconcile", "--apply"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("holds the lock"), "{text}");
    holder.join().unwrap();
    fleet.expect(&["reconcile", "--apply"], 0);
}

/// Several changes to one table are one ALTER TABLE (one rebuild at most),
/// and hazards say which statements rebuild, drop or may fail.
#[test]
fn one_alter_per_table_with_its_hazards() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "oa",
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b INT, c INT, KEY kb (b));
         CREATE TABLE quiet (id INT PRIMARY KEY, note VARCHAR(10));",
        &["t1"],
    );
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.set_schema(
        "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(40) NOT NULL DEFAULT '', b BIGINT, d INT,
            KEY kb (b, id), UNIQUE KEY ua (a), CONSTRAINT cb CHECK (b > 0)) COMMENT 'wide';
         CREATE TABLE quiet (id INT PRIMARY KEY, note VARCHAR(10) COMMENT 'just a comment', extra INT);",
    );
    let plan = fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 2);
    assert_eq!(plan.matches("ALTER TABLE `t` ").count(), 1, "{plan}");
    assert_eq!(plan.matches("ALTER TABLE `quiet` ").count(), 1, "{plan}");
    let t_step = plan
        .split("alter table ")
        .find(|s| s.starts_with("t:"))
        .expect("a step for t");
    for hazard in ["destructive", "data-dependent", "locking", "index-build"] {
        assert!(t_step.contains(hazard), "no {hazard} on t:\n{plan}");
    }
    let quiet_step = plan
        .split("alter table ")
        .find(|s| s.starts_with("quiet:"))
        .expect("a step for quiet");
    assert!(
        !quiet_step.contains("locking") && !quiet_step.contains("destructive"),
        "a comment and a new nullable column neither rebuild nor destroy:\n{plan}"
    );
    assert!(
        !plan.contains("convert-charset") && !plan.contains("converts note"),
        "{plan}"
    );
    let refused = fleet.run(&["reconcile", "--apply"]);
    assert_ne!(refused.status.code(), Some(0));
    fleet.expect(&["reconcile", "--apply", "--allow-destructive"], 0);
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

/// Two applies started together on the same fleet: each tenant is migrated
/// once, under its lock, and both runs end converged.
#[test]
fn concurrent_applies_serialise_per_tenant() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "cc",
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, KEY ka (a));
         CREATE VIEW v AS SELECT id FROM t;",
        &["t1", "t2", "t3"],
    );
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("--repo")
            .arg(fleet.root())
            .args(["reconcile", "--apply"])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    for out in [&a, &b] {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
    for tenant in ["t1", "t2", "t3"] {
        let applied = fleet.client.sql(
            Some(&fleet.database(tenant)),
            "SELECT COUNT(*) FROM _tenantctl_history WHERE outcome = 'applied'",
        );
        assert_eq!(applied, "1", "{tenant} was migrated {applied} times");
    }
}

/// A wrong password fails the run without printing it.
#[test]
fn connection_errors_never_print_the_password() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(&url, "pw", "CREATE TABLE t (id INT PRIMARY KEY);", &["t1"]);
    let client = support::mysql::Client::from_url(&url);
    let bad = format!(
        "mysql://{}:n0t-the-s3cret@{}",
        client.user(),
        client.host_port()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"))
        .arg("--repo")
        .arg(fleet.root())
        .args(["reconcile", "--plan"])
        .env("TENANTCTL_TEST_MYSQL_URL", &bad)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("n0t-the-s3cret"), "{text}");
}

/// `statement_timeout` bounds each statement (MariaDB's max_statement_time):
/// a long table copy is stopped, reported, and a re-run without the limit converges.
#[test]
fn statement_timeout_stops_a_long_statement() {
    let Some(url) = server_url() else { return };
    let client = support::mysql::Client::from_url(&url);
    if !client.sql(None, "SELECT VERSION()").contains("MariaDB") {
        eprintln!("skipped: statement_timeout is only applied on MariaDB");
        return;
    }
    let fleet = Fleet::new(
        &url,
        "st",
        "CREATE TABLE big (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, pad VARCHAR(100));",
        &["t1"],
    );
    let db = fleet.database("t1");
    fleet.expect(&["reconcile", "--apply"], 0);
    let mut seed = String::from("INSERT INTO big (pad) VALUES (REPEAT('x', 90));");
    for _ in 0..17 {
        seed.push_str("INSERT INTO big (pad) SELECT pad FROM big;");
    }
    fleet.client.sql(Some(&db), &seed);
    fleet.set_schema("CREATE TABLE big (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, pad TEXT);");
    let config = |limit: &str| {
        format!(
            "servers:\n  my:\n    engine: mysql\n    url: \"${{TENANTCTL_TEST_MYSQL_URL}}\"\n{limit}"
        )
    };
    fleet.write("tenantctl.yaml", &config("    statement_timeout: 20ms\n"));
    let out = fleet.run(&["reconcile", "--apply"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("max_statement_time"), "{text}");
    fleet.write("tenantctl.yaml", &config(""));
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.expect(&["reconcile", "--plan", "--detailed-exitcode"], 0);
}

/// Drift on MySQL: a change made by hand is shown as what was done (from the
/// schema snapshot in history); a blueprint change not yet applied is pending.
#[test]
fn drift_shows_hand_changes_and_pending_blueprint_changes() {
    let Some(url) = server_url() else { return };
    let fleet = Fleet::new(
        &url,
        "dr",
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);",
        &["hand", "calm"],
    );
    fleet.expect(&["reconcile", "--apply"], 0);
    fleet.expect(&["drift"], 0);

    let hand = fleet.database("hand");
    fleet
        .client
        .sql(Some(&hand), "ALTER TABLE items ADD COLUMN hack TEXT");
    let report: serde_json::Value = drift_json(&fleet);
    let target = |tenant: &str| {
        report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tenant"] == tenant)
            .unwrap()
            .clone()
    };
    assert_eq!(target("calm")["status"], "in-sync");
    assert_eq!(target("hand")["status"], "drifted");
    let done: Vec<String> = target("hand")["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["description"].as_str().unwrap().to_string())
        .collect();
    assert!(
        done.iter().any(|d| d.contains("add column hack")),
        "{done:?}"
    );

    fleet.set_schema(
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, price DECIMAL(10,2));",
    );
    let report: serde_json::Value = drift_json(&fleet);
    let calm = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "calm")
        .unwrap();
    assert_eq!(calm["status"], "pending");
}

fn drift_json(fleet: &Fleet) -> serde_json::Value {
    let out = fleet.run(&["drift", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
