//! The PostgreSQL engine against a real server (`TENANTCTL_TEST_PG_URL`,
//! printed by `scripts/services.sh env`), through the real binary on
//! repositories written to temp dirs.
//!
//! Migration cases: apply the current blueprint, insert rows, switch to the
//! desired blueprint and apply; then (a) the plan is empty, (b) the rows the
//! change keeps are all there, and (c) `pg_dump --schema-only` of the
//! migrated tenant equals that of a fresh database where the desired
//! blueprint ran through psql (column order aside).

mod support;

use std::time::{Duration, Instant};

use support::postgres::{Fleet, pg_url, send, show};

struct Case {
    current: &'static str,
    /// Rows inserted after the current blueprint is applied.
    rows: &'static str,
    desired: &'static str,
    /// A query over the kept data: same result before and after.
    keep: &'static str,
    destructive: bool,
}

fn check_case(test: &str, case: Case) {
    let Some(url) = pg_url() else { return };
    let mut fleet = Fleet::new(&url, test, &["acme"]);
    fleet.write_schema(case.current);
    fleet.apply(false);
    assert_eq!(fleet.plan_code().0, 0, "current schema did not converge");
    if !case.rows.is_empty() {
        fleet.sql("acme", case.rows);
    }
    let before = fleet.sql("acme", case.keep);
    fleet.write_schema(case.desired);
    let (code, plan) = fleet.plan_code();
    assert_eq!(code, 2, "the change plans nothing:\n{plan}");
    if case.destructive {
        let refused = fleet.run(&["reconcile", "--apply"]);
        assert!(
            !refused.status.success(),
            "a destructive change applied without --allow-destructive:\n{}",
            show(&refused)
        );
    }
    let applied = fleet.apply(case.destructive);
    let (code, plan) = fleet.plan_code();
    assert_eq!(
        code,
        0,
        "not converged after:\n{}\nplan now:\n{plan}",
        show(&applied)
    );
    assert_eq!(fleet.sql("acme", case.keep), before, "kept rows changed");
    let migrated = fleet.dump(&fleet.database("acme"));
    let fresh = fleet.fresh_dump(case.desired);
    assert_eq!(
        migrated,
        fresh,
        "pg_dump of the migrated tenant differs from a fresh database built from the blueprint:\n{}",
        show(&applied)
    );
}

macro_rules! cases {
    ($($name:ident => $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check_case(stringify!($name), $case);
            }
        )*
    };
}

cases! {
    add_columns_of_builtin_types => Case {
        current: "CREATE TABLE items (id serial PRIMARY KEY, name text);",
        rows: "INSERT INTO items (name) VALUES ('a'), ('b'), (NULL);",
        desired: "CREATE TABLE items (id serial PRIMARY KEY, name text,
            code varchar(12) NOT NULL DEFAULT 'x', price numeric(10,2) DEFAULT 0,
            seen timestamptz DEFAULT now(), tags text[] DEFAULT '{}', grid int[][],
            doc json, meta jsonb NOT NULL DEFAULT '{}'::jsonb, ref uuid, ok boolean,
            big bigint, small smallint, ratio double precision, day date, at time,
            span interval, raw bytea, addr inet, n2 real, c char(3));",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: false,
    };
    drop_column_is_destructive => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name text, legacy text);",
        rows: "INSERT INTO items VALUES (1, 'a', 'x'), (2, 'b', 'y');",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text);",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: true,
    };
    widen_and_change_types => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name varchar(20), qty int DEFAULT 1, price numeric(8,2), note varchar(5));",
        rows: "INSERT INTO items VALUES (1, 'a', 3, 1.5, 'n'), (2, 'b', 4, 2.25, NULL);",
        desired: "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(50), qty bigint DEFAULT 2, price numeric(12,2), note text);",
        keep: "SELECT id, name, qty, price, note FROM items ORDER BY id",
        destructive: false,
    };
    narrowing_a_type_is_destructive => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name varchar(50));",
        rows: "INSERT INTO items VALUES (1, 'short');",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name varchar(10));",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: true,
    };
    nullability_and_defaults => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name text, qty int NOT NULL, at timestamptz DEFAULT now(), flag bool DEFAULT true);",
        rows: "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2);",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL DEFAULT '', qty int, at timestamptz, flag bool DEFAULT false);",
        keep: "SELECT id, name, qty FROM items ORDER BY id",
        destructive: false,
    };
    constraints_added_and_dropped => Case {
        current: "CREATE TABLE parents (id int PRIMARY KEY, code text);
            CREATE TABLE kids (id int PRIMARY KEY, parent_id int REFERENCES parents(id), qty int CHECK (qty > 0), email text UNIQUE, during tstzrange, room int);",
        rows: "INSERT INTO parents VALUES (1, 'a'), (2, 'b');
            INSERT INTO kids VALUES (1, 1, 5, 'a@x', '[2024-01-01,2024-01-02)', 1), (2, 2, 6, 'b@x', '[2024-02-01,2024-02-02)', 2);",
        desired: "CREATE TABLE parents (id int PRIMARY KEY, code text UNIQUE);
            CREATE TABLE kids (id int PRIMARY KEY,
              parent_id int REFERENCES parents(id) ON DELETE CASCADE ON UPDATE SET NULL DEFERRABLE INITIALLY DEFERRED,
              qty int CHECK (qty >= 0) CONSTRAINT qty_small CHECK (qty < 1000), email text, during tstzrange, room int,
              CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&), UNIQUE (parent_id, email));",
        keep: "SELECT id, parent_id, qty, email FROM kids ORDER BY id",
        destructive: false,
    };
    primary_key_changes => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, code text NOT NULL, n int);
            CREATE TABLE refs (item_id int REFERENCES items(id));",
        rows: "INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2); INSERT INTO refs VALUES (1);",
        desired: "CREATE TABLE items (id int NOT NULL UNIQUE, code text NOT NULL, n int, PRIMARY KEY (code));
            CREATE TABLE refs (item_id int REFERENCES items(id));",
        keep: "SELECT i.id, i.code, r.item_id FROM items i LEFT JOIN refs r ON r.item_id = i.id ORDER BY 1",
        destructive: false,
    };
    indexes_of_every_shape => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, meta jsonb);
            CREATE INDEX items_name ON items (name);
            CREATE INDEX items_qty ON items (qty);
            CREATE INDEX items_old ON items (qty, name);",
        rows: "INSERT INTO items VALUES (1, 'a', 1, '{}'), (2, 'b', 2, '{\"k\": 1}');",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text, qty int, meta jsonb);
            CREATE INDEX items_name ON items (lower(name) DESC NULLS LAST);
            CREATE UNIQUE INDEX items_qty ON items (qty) INCLUDE (name) WHERE qty > 0;
            CREATE INDEX items_meta ON items USING gin (meta jsonb_path_ops);
            CREATE INDEX items_hash ON items USING hash (name);",
        keep: "SELECT id, name, qty, meta::text FROM items ORDER BY id",
        destructive: false,
    };
    enum_values_added_and_new_types => Case {
        current: "CREATE TYPE status AS ENUM ('new', 'paid');
            CREATE TABLE orders (id int PRIMARY KEY, status status NOT NULL DEFAULT 'new');",
        rows: "INSERT INTO orders VALUES (1, 'new'), (2, 'paid');",
        desired: "CREATE TYPE status AS ENUM ('draft', 'new', 'sent', 'paid', 'void');
            CREATE TYPE priority AS ENUM ('low', 'high');
            COMMENT ON TYPE priority IS 'how urgent';
            CREATE DOMAIN email AS text COLLATE \"C\" DEFAULT 'x@y' NOT NULL CHECK (VALUE LIKE '%@%');
            CREATE TABLE orders (id int PRIMARY KEY, status status NOT NULL DEFAULT 'new', prio priority, contact email);",
        keep: "SELECT id, status::text FROM orders ORDER BY id",
        destructive: false,
    };
    types_domains_and_sequences_dropped => Case {
        current: "CREATE TYPE mood AS ENUM ('ok', 'sad');
            CREATE DOMAIN posint AS int CHECK (VALUE > 0);
            CREATE SEQUENCE counter START 10;
            CREATE SEQUENCE ticket START 100 INCREMENT 5;
            CREATE TABLE t (id int PRIMARY KEY, m mood, p posint, n int DEFAULT nextval('counter'));",
        rows: "INSERT INTO t (id, m, p) VALUES (1, 'ok', 3);",
        desired: "CREATE SEQUENCE ticket START 100 INCREMENT 10 MAXVALUE 100000 CYCLE;
            CREATE TABLE t (id int PRIMARY KEY, t int DEFAULT nextval('ticket'));",
        keep: "SELECT id FROM t ORDER BY id",
        destructive: true,
    };
    views_rebuilt_when_what_they_read_changes => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name varchar(20), qty int);
            CREATE VIEW named AS SELECT id, name FROM items;
            CREATE VIEW named_upper AS SELECT id, upper(name) AS u FROM named;
            CREATE VIEW gone AS SELECT qty FROM items;
            CREATE MATERIALIZED VIEW totals AS SELECT sum(qty) AS total FROM items;",
        rows: "INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2);",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text, qty bigint);
            CREATE VIEW named AS SELECT id, name FROM items;
            CREATE VIEW named_upper AS SELECT id, upper(name) AS u, length(name) AS l FROM named;
            CREATE MATERIALIZED VIEW totals AS SELECT sum(qty) AS total, count(*) AS n FROM items;
            CREATE VIEW big AS SELECT * FROM items WHERE qty > 1;",
        keep: "SELECT id, name, qty FROM items ORDER BY id",
        destructive: false,
    };
    functions_and_triggers => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name text, updated timestamptz);
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated := now(); RETURN NEW; END $$;
            CREATE FUNCTION old_fn(a int) RETURNS int LANGUAGE sql AS $$ SELECT a + 1 $$;
            CREATE TRIGGER items_touch BEFORE UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();",
        rows: "INSERT INTO items VALUES (1, 'a', NULL);",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text, updated timestamptz);
            CREATE TABLE audit (item_id int, at timestamptz DEFAULT now());
            CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated := clock_timestamp(); RETURN NEW; END $$;
            CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (item_id) VALUES (NEW.id); RETURN NEW; END $$;
            CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM items $$;
            CREATE TRIGGER items_touch BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
            CREATE TRIGGER items_log AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_it();",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: false,
    };
    comments => Case {
        current: "CREATE TABLE items (id int PRIMARY KEY, name text);
            COMMENT ON TABLE items IS 'old';
            COMMENT ON COLUMN items.name IS 'the name';",
        rows: "INSERT INTO items VALUES (1, 'a');",
        desired: "CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
            COMMENT ON TABLE items IS 'what we sell';
            COMMENT ON COLUMN items.id IS 'key';
            COMMENT ON COLUMN items.qty IS 'how many';",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: false,
    };
    schemas_and_extensions => Case {
        current: "CREATE SCHEMA old_stuff;
            CREATE TABLE old_stuff.logs (id int PRIMARY KEY);
            CREATE TABLE items (id int PRIMARY KEY, name text);",
        rows: "INSERT INTO items VALUES (1, 'a'); INSERT INTO old_stuff.logs VALUES (7);",
        desired: "CREATE EXTENSION IF NOT EXISTS citext;
            CREATE SCHEMA billing;
            CREATE TABLE items (id int PRIMARY KEY, name text);
            CREATE TABLE billing.invoices (id serial PRIMARY KEY, item_id int REFERENCES items(id), email citext);
            CREATE INDEX invoices_item ON billing.invoices (item_id);
            CREATE VIEW billing.recent AS SELECT id FROM billing.invoices;",
        keep: "SELECT id, name FROM items ORDER BY id",
        destructive: true,
    };
    identity_serial_and_generated_columns => Case {
        current: "CREATE TABLE a (id int NOT NULL PRIMARY KEY, name text, total int);
            CREATE TABLE b (id serial PRIMARY KEY, n int);
            CREATE TABLE c (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, x int, doubled int GENERATED ALWAYS AS (x * 2) STORED);",
        rows: "INSERT INTO a VALUES (1, 'a', 1), (2, 'b', 2); INSERT INTO b (n) VALUES (1), (2); INSERT INTO c (x) VALUES (1), (2);",
        desired: "CREATE TABLE a (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text, total int, twice int GENERATED ALWAYS AS (total * 2) STORED);
            CREATE TABLE b (id int PRIMARY KEY, n int);
            CREATE TABLE c (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, x int, doubled int GENERATED ALWAYS AS (x * 3) STORED);",
        keep: "SELECT (SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM a), (SELECT string_agg(id || ':' || n, ',' ORDER BY id) FROM b), (SELECT string_agg(id || ':' || x, ',' ORDER BY id) FROM c)",
        destructive: false,
    };
    serial_added_to_an_existing_column => Case {
        current: "CREATE TABLE a (id int NOT NULL PRIMARY KEY, name text);",
        rows: "INSERT INTO a VALUES (1, 'a'), (5, 'b');",
        desired: "CREATE TABLE a (id serial PRIMARY KEY, name text);",
        keep: "SELECT id, name FROM a ORDER BY id",
        destructive: false,
    };
    tables_created_and_dropped_with_references => Case {
        current: "CREATE TABLE a (id int PRIMARY KEY);
            CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id));
            CREATE TABLE keep (id int PRIMARY KEY);",
        rows: "INSERT INTO a VALUES (1); INSERT INTO b VALUES (1, 1); INSERT INTO keep VALUES (9);",
        desired: "CREATE TABLE a_new (id int PRIMARY KEY);
            CREATE TABLE keep (id int PRIMARY KEY, parent int REFERENCES a_new(id));
            CREATE TABLE z_new (id int PRIMARY KEY, self int REFERENCES z_new(id), back int REFERENCES keep(id));",
        keep: "SELECT id FROM keep ORDER BY id",
        destructive: true,
    };
    quoted_identifiers_with_odd_characters => Case {
        current: "CREATE TABLE \"Order Items\" (\"Id\" int PRIMARY KEY, \"we\"\"ird\" text, \"select\" int);",
        rows: "INSERT INTO \"Order Items\" VALUES (1, 'a', 2), (2, 'b', 3);",
        desired: "CREATE SCHEMA \"Sales Team\";
            CREATE TABLE \"Order Items\" (\"Id\" int PRIMARY KEY, \"we\"\"ird\" varchar(40) NOT NULL DEFAULT 'it''s', \"select\" bigint CHECK (\"select\" > 0), \"New Col\" text UNIQUE);
            CREATE INDEX \"Odd Index\" ON \"Order Items\" (\"we\"\"ird\", \"select\" DESC);
            CREATE TABLE \"Sales Team\".\"Deals\" (\"Id\" int PRIMARY KEY REFERENCES \"Order Items\"(\"Id\"));
            CREATE VIEW \"Big Ones\" AS SELECT \"Id\" FROM \"Order Items\" WHERE \"select\" > 2;
            COMMENT ON COLUMN \"Order Items\".\"we\"\"ird\" IS 'quote '' inside';",
        keep: "SELECT \"Id\", \"we\"\"ird\", \"select\" FROM \"Order Items\" ORDER BY 1",
        destructive: true,
    };
    enum_and_domain_recreated_when_unused => Case {
        current: "CREATE TYPE color AS ENUM ('red', 'green', 'blue');
            CREATE DOMAIN short AS varchar(10);
            CREATE TABLE t (id int PRIMARY KEY);",
        rows: "INSERT INTO t VALUES (1);",
        desired: "CREATE TYPE color AS ENUM ('blue', 'red');
            CREATE DOMAIN short AS varchar(20) CHECK (VALUE <> '');
            CREATE TABLE t (id int PRIMARY KEY);",
        keep: "SELECT id FROM t",
        destructive: false,
    };
    function_changes_and_views_in_other_schemas => Case {
        current: "CREATE SCHEMA api;
            CREATE TABLE items (id int PRIMARY KEY, price numeric(8,2));
            CREATE FUNCTION api.with_tax(p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT p * 1.1 $$;
            CREATE FUNCTION api.gone() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
            CREATE VIEW api.prices AS SELECT id, api.with_tax(price) AS gross FROM items;",
        rows: "INSERT INTO items VALUES (1, 10), (2, 20);",
        desired: "CREATE SCHEMA api;
            CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2));
            CREATE FUNCTION api.with_tax(p numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT p * 1.2 $$;
            CREATE FUNCTION api.with_tax(p numeric, rate numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT p * rate $$;
            CREATE VIEW api.prices AS SELECT id, api.with_tax(price) AS gross, api.with_tax(price, 2) AS double FROM items;",
        keep: "SELECT id, price FROM items ORDER BY id",
        destructive: false,
    };
    views_in_another_schema_rebuilt => Case {
        current: "CREATE SCHEMA billing;
            CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric(8,2));
            CREATE VIEW billing.recent AS SELECT id, amount FROM billing.invoices;",
        rows: "INSERT INTO billing.invoices VALUES (1, 10.5), (2, 20);",
        desired: "CREATE SCHEMA billing;
            CREATE TABLE billing.invoices (id int PRIMARY KEY, amount numeric(12,3));
            CREATE VIEW billing.recent AS SELECT id, amount FROM billing.invoices;",
        keep: "SELECT id, (amount * 100)::int FROM billing.invoices ORDER BY id",
        destructive: false,
    };
    unlogged_tables => Case {
        current: "CREATE TABLE cache (k text PRIMARY KEY, v text); CREATE UNLOGGED TABLE events (id int PRIMARY KEY);",
        rows: "INSERT INTO cache VALUES ('a', '1'); INSERT INTO events VALUES (1);",
        desired: "CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text); CREATE TABLE events (id int PRIMARY KEY); CREATE UNLOGGED TABLE scratch (x int);",
        keep: "SELECT (SELECT count(*) FROM cache), (SELECT count(*) FROM events)",
        destructive: false,
    };
}

/// Declaring what the database already has, in another spelling, plans nothing.
#[test]
fn other_spellings_plan_nothing() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "spellings", &["acme"]);
    fleet.write_schema(
        "CREATE TABLE orders (
            id SERIAL PRIMARY KEY,
            qty int4 NOT NULL,
            price DECIMAL(10,2),
            note VARCHAR(20),
            at TIMESTAMPTZ DEFAULT now(),
            ok BOOL DEFAULT TRUE,
            f FLOAT8,
            tags TEXT[]
        );
        CREATE INDEX orders_qty ON orders (qty);
        CREATE VIEW big AS SELECT id FROM orders WHERE qty > 10;",
    );
    fleet.apply(false);
    fleet.write_schema(
        "create table \"orders\" (
            \"id\" serial4 primary key,
            \"qty\" integer not null,
            \"price\" numeric(10, 2),
            \"note\" character varying(20),
            \"at\" timestamp with time zone default CURRENT_TIMESTAMP,
            ok boolean default 'true',
            f double precision,
            tags text[]
        );
        create index \"orders_qty\" on orders using btree (\"qty\" asc);
        create view big as select id from orders where qty > 10;",
    );
    let (code, plan) = fleet.plan_code();
    assert_eq!(
        code, 0,
        "another spelling of the same schema plans changes:\n{plan}"
    );
}

/// A blueprint the server rejects is reported at its file:line:col, and nothing is created.
#[test]
fn server_errors_point_into_the_blueprint() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "blueprinterr", &["acme"]);
    fleet.write_schema(
        "CREATE TABLE a (id int PRIMARY KEY);\n\nCREATE TABLE b (\n  id int,\n  x nosuchtype\n);\n",
    );
    let out = fleet.run(&["reconcile", "--apply"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("schema.sql:5:5") && text.contains("nosuchtype"),
        "no position in: {text}"
    );
    let exists = support::postgres::psql(
        &url,
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{}'",
            fleet.database("acme")
        ),
    );
    assert_eq!(exists, "0");
    assert!(
        !text.contains("postgres:postgres@"),
        "a password was printed: {text}"
    );
}

/// An apply whose backend is terminated mid-transaction leaves the old
/// schema (nothing it did before is kept), and a re-run converges.
#[test]
fn terminated_apply_leaves_the_old_schema_and_a_rerun_converges() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "crash", &["acme"]);
    fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY, name text);");
    fleet.apply(false);
    fleet.sql("acme", "INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    let before = fleet.dump(&fleet.database("acme"));
    // Creates a table first, then blocks on the row lock held below.
    fleet.write_schema(
        "CREATE TABLE items (id int PRIMARY KEY, name text, note text);
         CREATE TABLE aaa_new (id int PRIMARY KEY);",
    );
    let mut holder = fleet.session("acme");
    send(&mut holder, "BEGIN;\nSELECT * FROM items FOR UPDATE;\n");
    // Wait until the holder has its lock.
    let db = fleet.database("acme");
    let deadline = Instant::now() + Duration::from_secs(20);
    while support::postgres::psql(
        &url,
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE d.datname = '{db}' AND l.mode = 'RowShareLock'"
        ),
    ) == "0"
    {
        assert!(Instant::now() < deadline, "the holder never locked");
        std::thread::sleep(Duration::from_millis(100));
    }
    let apply = fleet.spawn(&["reconcile", "--apply"]);
    let mut terminated = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let killed = support::postgres::psql(
            &url,
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{db}' AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE%'"
            ),
        );
        if killed != "0" {
            terminated = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = apply.wait_with_output().unwrap();
    send(&mut holder, "ROLLBACK;\n");
    drop(holder.stdin.take());
    holder.wait().ok();
    assert!(
        terminated,
        "the apply never blocked on the lock:\n{}",
        show(&out)
    );
    assert!(
        !out.status.success(),
        "a terminated apply reported success:\n{}",
        show(&out)
    );
    assert_eq!(
        fleet.dump(&db),
        before,
        "the terminated apply left changes behind"
    );
    assert_eq!(fleet.sql("acme", "SELECT count(*) FROM items"), "2");
    assert_eq!(
        fleet.sql("acme", "SELECT count(*) FROM _tenantctl_history"),
        "1",
        "the terminated apply wrote history"
    );
    assert_eq!(fleet.plan_code().0, 2);
    fleet.apply(false);
    assert_eq!(fleet.plan_code().0, 0);
    assert_eq!(fleet.sql("acme", "SELECT count(*) FROM items"), "2");
}

/// Two applies started at once on one fleet migrate every tenant exactly once.
#[test]
fn concurrent_applies_migrate_each_tenant_once() {
    let Some(url) = pg_url() else { return };
    let tenants = ["t1", "t2", "t3", "t4"];
    let fleet = Fleet::new(&url, "concurrent", &tenants);
    fleet.write_schema(
        "CREATE TABLE items (id serial PRIMARY KEY, name text);
         CREATE INDEX items_name ON items (name);",
    );
    let a = fleet.spawn(&["reconcile", "--apply", "--format", "json"]);
    let b = fleet.spawn(&["reconcile", "--apply", "--format", "json"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", show(&a));
    assert!(b.status.success(), "{}", show(&b));
    for t in tenants {
        assert_eq!(
            fleet.sql(t, "SELECT count(*) FROM _tenantctl_history"),
            "1",
            "tenant {t} was migrated more than once"
        );
    }
    // And once more with a change to every tenant.
    fleet.write_schema(
        "CREATE TABLE items (id serial PRIMARY KEY, name text, qty int DEFAULT 0);
         CREATE INDEX items_name ON items (name);",
    );
    let a = fleet.spawn(&["reconcile", "--apply", "--format", "json"]);
    let b = fleet.spawn(&["reconcile", "--apply", "--format", "json"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", show(&a));
    assert!(b.status.success(), "{}", show(&b));
    for t in tenants {
        assert_eq!(fleet.sql(t, "SELECT count(*) FROM _tenantctl_history"), "2");
    }
    assert_eq!(fleet.plan_code().0, 0);
}

/// The declared model is built without touching tenants or leaving anything
/// in the scratch database, and the plan shows PostgreSQL's hazards.
#[test]
fn plan_shows_postgres_hazards() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "hazards", &["acme"]);
    fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY, name text, qty int);");
    fleet.apply(false);
    fleet.write_schema(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, qty int CHECK (qty > 0));
         CREATE INDEX items_qty ON items (qty);",
    );
    let out = fleet.run(&["reconcile", "--plan", "--format", "json"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for rule in [
        "pg-table-rewrite",
        "pg-set-not-null-scan",
        "pg-constraint-scan",
        "index-build",
    ] {
        assert!(text.contains(rule), "{rule} missing from:\n{text}");
    }
    assert!(
        text.contains("NOT VALID"),
        "no NOT VALID advice in:\n{text}"
    );
    let leftovers = support::postgres::psql(
        &url,
        "_tenantctl_scratch",
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    );
    assert_eq!(leftovers, "0", "the scratch database keeps objects");
}

/// With `concurrent_indexes: true`, indexes on existing tables are built
/// with CREATE INDEX CONCURRENTLY after the commit; a failed build leaves an
/// INVALID index that the next run drops and builds again.
#[test]
fn concurrent_index_builds_and_their_recovery() {
    let Some(url) = pg_url() else { return };
    let mut fleet = Fleet::new(&url, "cic", &["acme"]);
    fleet.server_option("concurrent_indexes: true");
    fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY, code text);");
    fleet.apply(false);
    fleet.sql(
        "acme",
        "INSERT INTO items VALUES (1, 'a'), (2, 'a'), (3, 'b')",
    );
    let desired = "CREATE TABLE items (id int PRIMARY KEY, code text, note text);
        CREATE INDEX items_note ON items (note);
        CREATE UNIQUE INDEX items_code ON items (code);";
    fleet.write_schema(desired);
    let plan = fleet.run(&["reconcile", "--plan"]);
    let text = show(&plan);
    assert!(
        text.contains("CREATE UNIQUE INDEX CONCURRENTLY items_code")
            && text.contains("after the transaction commits"),
        "{text}"
    );
    // Duplicate codes: the transaction commits, the unique build fails.
    let failed = fleet.run(&["reconcile", "--apply", "--format", "json"]);
    assert!(!failed.status.success(), "{}", show(&failed));
    assert_eq!(
        fleet.sql("acme", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'"),
        "1",
        "the transactional part was not committed"
    );
    assert_eq!(
        fleet.sql("acme", "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'items_code' AND NOT i.indisvalid"),
        "1",
        "expected the failed build to leave an invalid index"
    );
    assert_eq!(fleet.plan_code().0, 2);
    fleet.sql("acme", "DELETE FROM items WHERE id = 2");
    fleet.apply(false);
    assert_eq!(fleet.plan_code().0, 0);
    assert_eq!(
        fleet.sql("acme", "SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        "0"
    );
    let migrated = fleet.dump(&fleet.database("acme"));
    assert_eq!(migrated, fleet.fresh_dump(desired));
    // History describes the schema with the concurrently built indexes, so
    // at the next blueprint change drift says pending, not changed by hand.
    fleet.write_schema(&format!(
        "{desired}\nCREATE TABLE extra (id int PRIMARY KEY);"
    ));
    let drift = fleet.run(&["drift", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert_eq!(
        report["targets"][0]["status"],
        "pending",
        "{}",
        show(&drift)
    );
}

/// Schema-per-tenant placement: every tenant is a schema of one database;
/// tenants are migrated independently, and each schema matches a fresh one.
#[test]
fn schema_per_tenant_placement() {
    let Some(url) = pg_url() else { return };
    let mut fleet = Fleet::new(&url, "schemas", &["acme", "globex"]);
    let db = fleet.schema_per_tenant();
    fleet.write_schema(
        "CREATE TYPE status AS ENUM ('new', 'paid');
         CREATE TABLE orders (id serial PRIMARY KEY, status status NOT NULL DEFAULT 'new', total numeric(10,2));
         CREATE INDEX orders_status ON orders (status);",
    );
    fleet.apply(false);
    assert_eq!(fleet.plan_code().0, 0);
    let acme = fleet.database("acme");
    let globex = fleet.database("globex");
    support::postgres::psql(
        &url,
        &db,
        &format!("INSERT INTO {acme}.orders (total) VALUES (1), (2)"),
    );
    let desired = "CREATE TYPE status AS ENUM ('new', 'paid', 'void');
         CREATE TABLE orders (id serial PRIMARY KEY, status status NOT NULL DEFAULT 'new', total numeric(12,2), note text);
         CREATE TABLE lines (order_id int REFERENCES orders(id), qty int CHECK (qty > 0));
         CREATE INDEX orders_status ON orders (status) WHERE status <> 'new';
         CREATE VIEW paid AS SELECT id FROM orders WHERE total > 0;
         CREATE FUNCTION order_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM orders $$;";
    fleet.write_schema(desired);
    assert_eq!(fleet.plan_code().0, 2);
    fleet.apply(false);
    let (code, plan) = fleet.plan_code();
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        support::postgres::psql(&url, &db, &format!("SELECT count(*) FROM {acme}.orders")),
        "2"
    );
    assert_eq!(
        support::postgres::psql(
            &url,
            &db,
            &format!("SELECT count(*) FROM {acme}._tenantctl_history")
        ),
        "2"
    );
    // The oracle: a fresh schema where the blueprint ran through psql.
    let oracle = fleet.scratch_database("oracle");
    let file = fleet.tempfile("oracle.sql");
    std::fs::write(
        &file,
        format!("CREATE SCHEMA zz_oracle; SET search_path = zz_oracle, public;\n{desired}"),
    )
    .unwrap();
    let out = std::process::Command::new("psql")
        .args([
            &support::postgres::url_for(&url, &oracle),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-f",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = fleet.dump_schema(&oracle, "zz_oracle");
    assert!(
        fresh
            .iter()
            .any(|s| s.starts_with("CREATE TABLE SCHEMA.lines")),
        "the oracle dump is empty: {fresh:?}"
    );
    assert_eq!(fleet.dump_schema(&db, &acme), fresh);
    assert_eq!(fleet.dump_schema(&db, &globex), fresh);
}

/// The PostgreSQL-only server options are refused elsewhere, at their place in the file.
#[test]
fn postgres_options_are_checked_offline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("blueprints/shop")).unwrap();
    std::fs::create_dir_all(root.join("tenants")).unwrap();
    std::fs::write(
        root.join("tenantctl.yaml"),
        "servers:\n  local:\n    engine: sqlite\n    path: data\n    concurrent_indexes: true\n  pg:\n    engine: postgres\n    url: \"${NOPE_URL}\"\n    tenant_schemas_in: Bad-Name\n",
    )
    .unwrap();
    std::fs::write(
        root.join("blueprints/shop/blueprint.yaml"),
        "engine: sqlite\nserver: local\n",
    )
    .unwrap();
    std::fs::write(
        root.join("blueprints/shop/schema.sql"),
        "CREATE TABLE t (id INTEGER PRIMARY KEY);\n",
    )
    .unwrap();
    std::fs::write(
        root.join("tenants/a.yaml"),
        "tenants:\n  - name: acme\n    databases: [{blueprint: shop}]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"))
        .args(["--repo", root.to_str().unwrap(), "validate"])
        .output()
        .unwrap();
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("tenantctl.yaml:2:3:")
            && text.contains("options of engine postgres, not sqlite"),
        "{text}"
    );
    assert!(
        text.contains("tenant_schemas_in: name \"Bad-Name\""),
        "{text}"
    );
}

/// `lock_timeout` bounds the wait for another tenantctl's lock on the tenant
/// and for the table locks the DDL needs; either way the tenant is unchanged.
#[test]
fn lock_timeout_bounds_every_wait() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "locktimeout", &["acme"]);
    fleet.server_option("lock_timeout: 1s");
    fleet.server_option("statement_timeout: 30s");
    fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY);");
    fleet.apply(false);
    fleet.sql("acme", "INSERT INTO items VALUES (1)");
    let before = fleet.dump(&fleet.database("acme"));
    fleet.write_schema("CREATE TABLE items (id int PRIMARY KEY, note text);");
    // Another tenantctl holds this tenant's advisory lock.
    let mut holder = fleet.session("acme");
    send(
        &mut holder,
        &format!(
            "SELECT pg_advisory_lock({}, hashtext('{}'));\n",
            0x746e_6e74,
            fleet.database("acme")
        ),
    );
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let out = fleet.run(&["reconcile", "--apply", "--format", "json"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("holds the lock"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    send(
        &mut holder,
        "SELECT pg_advisory_unlock_all();\nBEGIN;\nSELECT * FROM items FOR UPDATE;\n",
    );
    std::thread::sleep(Duration::from_millis(500));
    // A row lock blocks the ALTER TABLE: cancelled after lock_timeout.
    let out = fleet.run(&["reconcile", "--apply", "--format", "json"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("lock timeout"), "{text}");
    send(&mut holder, "ROLLBACK;\n");
    drop(holder.stdin.take());
    holder.wait().ok();
    assert_eq!(fleet.dump(&fleet.database("acme")), before);
    fleet.apply(false);
    assert_eq!(fleet.plan_code().0, 0);
}

/// Partitioned tables are refused with a clear message rather than planned wrong.
#[test]
fn partitioned_tables_are_refused() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "partitions", &["acme"]);
    fleet.write_schema(
        "CREATE TABLE m (at date NOT NULL, v int) PARTITION BY RANGE (at);
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
    );
    let out = fleet.run(&["reconcile", "--plan", "--format", "json"]);
    let text = show(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("partitioned tables are not supported"),
        "{text}"
    );
}

/// Drift on PostgreSQL: a change made by hand is shown as what was done
/// (from the schema snapshot in history), and a blueprint change not yet
/// applied is pending.
#[test]
fn drift_shows_hand_changes_and_pending_blueprint_changes() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "drift", &["hand", "calm"]);
    fleet.write_schema("CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);");
    let out = fleet.apply(false);
    assert!(out.status.success(), "{}", show(&out));
    let drift = fleet.run(&["drift", "--format", "json"]);
    assert_eq!(drift.status.code(), Some(0), "{}", show(&drift));

    fleet.sql(
        "hand",
        "ALTER TABLE items ADD COLUMN hack text; CREATE INDEX items_hack ON items (hack)",
    );
    let drift = fleet.run(&["drift", "--format", "json"]);
    assert_eq!(drift.status.code(), Some(2), "{}", show(&drift));
    let report: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
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
    let hand = target("hand");
    assert_eq!(hand["status"], "drifted");
    let done: Vec<&str> = hand["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["description"].as_str().unwrap())
        .collect();
    assert!(
        done.iter().any(|d| d.contains("add column hack")),
        "{done:?}"
    );
    assert!(done.iter().any(|d| d.contains("items_hack")), "{done:?}");

    fleet.write_schema(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2));",
    );
    let drift = fleet.run(&["drift", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&drift.stdout).unwrap();
    let calm = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "calm")
        .unwrap();
    assert_eq!(calm["status"], "pending", "{}", show(&drift));
}
