//! What one PostgreSQL tenant database costs the server, counted on the
//! wire (`support::pgwire` relays tenantctl's connections and records every
//! statement): a plan reads the catalog in one statement, a drift check adds
//! at most the history read, and nothing else is sent to a tenant database.

mod support;

use support::pgwire::StatementLog;
use support::postgres::{Fleet, pg_url, show};

/// Tables, keys, an index, a view, a trigger, an enum, a domain, a sequence,
/// a function: every kind of catalog row the engine reads.
const SCHEMA: &str = "
CREATE TYPE status AS ENUM ('new', 'paid');
CREATE DOMAIN cents AS bigint CHECK (VALUE >= 0);
CREATE SEQUENCE invoice_numbers;
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status status NOT NULL DEFAULT 'new',
    total cents NOT NULL DEFAULT 0
);
CREATE INDEX orders_customer ON orders (customer_id) WHERE status = 'new';
CREATE VIEW paid AS SELECT id, total FROM orders WHERE status = 'paid';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
";

/// `host:port` of a `postgres://` URL.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    }
}

#[test]
fn plan_and_drift_send_at_most_the_catalog_query_and_the_history_read() {
    let Some(url) = pg_url() else { return };
    let fleet = Fleet::new(&url, "pgstmts", &["acme", "globex"]);
    fleet.write_schema(SCHEMA);
    fleet.apply(false);
    let log = StatementLog::start(&host_port(&url));
    let relayed = log.url(&url);
    let run = |args: &[&str]| {
        let out = fleet
            .command(args)
            .env("TENANTCTL_TEST_PG_URL", &relayed)
            .output()
            .expect("tenantctl runs");
        assert!(out.status.success(), "{args:?} failed:\n{}", show(&out));
    };

    run(&["reconcile", "--plan"]);
    for tenant in ["acme", "globex"] {
        let sent = log.statements(&fleet.database(tenant));
        assert_eq!(
            sent.len(),
            1,
            "a plan of {tenant} sends one catalog query, no setup: {sent:#?}"
        );
        assert!(
            sent[0].starts_with("SELECT json_build_object("),
            "{sent:#?}"
        );
    }
    // Nothing per tenant on the maintenance database: only the build
    // role's checks, once per server (two tenants would have added two).
    let maintenance = log.statements("postgres");
    assert!(
        maintenance.len() <= 4 && !maintenance.iter().any(|s| s.contains("acme")),
        "{maintenance:#?}"
    );

    // Drift of a changed tenant: the catalog, then the newest history record.
    fleet.sql("acme", "ALTER TABLE customers ADD COLUMN note text");
    log.clear();
    let out = fleet
        .command(&["drift"])
        .env("TENANTCTL_TEST_PG_URL", &relayed)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "drift exits 2:\n{}", show(&out));
    let sent = log.statements(&fleet.database("acme"));
    assert_eq!(sent.len(), 2, "catalog + history: {sent:#?}");
    assert!(sent[1].contains("_tenantctl_history"), "{sent:#?}");
    assert_eq!(log.statements(&fleet.database("globex")).len(), 1);

    // The relay saw what the server saw: the plan through it is the real one.
    log.clear();
    let out = fleet
        .command(&["reconcile", "--plan"])
        .env("TENANTCTL_TEST_PG_URL", &relayed)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("note"),
        "{}",
        show(&out)
    );
}
