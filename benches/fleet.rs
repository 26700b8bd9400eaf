//! Fleet benchmark: a generated SQLite fleet of N tenant databases (default
//! 1000; `TENANTCTL_BENCH_TENANTS` overrides), reconciled through the library.
//! Prints the median of several runs for each phase, the per-tenant cost,
//! and the process's peak memory.
//!
//!     cargo bench --bench fleet
//!     TENANTCTL_BENCH_TENANTS=200 cargo bench --bench fleet

use std::time::{Duration, Instant};

use tenantctl::plan::{Mode, Report};
use tenantctl::reconcile::{self, Options};
use tenantctl::repo::Repo;

const SCHEMA_V1: &str = "
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'paid', 'shipped')),
    total_cents INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE items (order_id INTEGER NOT NULL REFERENCES orders (id), line INTEGER NOT NULL, sku TEXT, PRIMARY KEY (order_id, line));
CREATE VIEW paid AS SELECT * FROM orders WHERE status = 'paid';
";

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn options(mode: Mode) -> Options {
    Options::new(mode)
}

fn run(dir: &std::path::Path, mode: Mode) -> (Duration, Report) {
    let repo = Repo::load(dir, None, &tenantctl::engine::REGISTRY).expect("bench repo loads");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let start = Instant::now();
    let report = runtime
        .block_on(reconcile::run(&repo, &options(mode)))
        .unwrap();
    (start.elapsed(), report)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, without it:
    // then a small smoke run shows the benchmark still works, without its cost.
    let measuring = std::env::args().any(|a| a == "--bench");
    let tenants: usize = std::env::var("TENANTCTL_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 1000 } else { 20 });
    if !measuring {
        println!("smoke run ({tenants} tenants); `cargo bench --bench fleet` measures");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "tenantctl.yaml",
        "servers:\n  local:\n    engine: sqlite\n    path: data\ndefaults:\n  concurrency: 8\n",
    );
    write(
        root,
        "blueprints/shop/blueprint.yaml",
        "engine: sqlite\nserver: local\n",
    );
    write(root, "blueprints/shop/schema.sql", SCHEMA_V1);
    let mut yaml = String::from("tenants:\n");
    for i in 0..tenants {
        yaml.push_str(&format!("  - name: t{i:05}\n    labels: {{ wave: w{} }}\n    databases:\n      - blueprint: shop\n", i % 10));
    }
    write(root, "tenants/fleet.yaml", &yaml);

    let start = Instant::now();
    Repo::load(root, None, &tenantctl::engine::REGISTRY).unwrap();
    let load = start.elapsed();

    let (create, report) = run(root, Mode::Apply);
    assert!(report.summary.ok, "initial apply failed");
    let in_sync: Vec<Duration> = (0..5).map(|_| run(root, Mode::Plan).0).collect();
    write(
        root,
        "blueprints/shop/schema.sql",
        &format!("{SCHEMA_V1}\nCREATE INDEX orders_status ON orders (status);"),
    );
    let (change_plan, report) = run(root, Mode::Plan);
    assert_eq!(
        report.groups.len(),
        1,
        "one distinct plan for the whole fleet"
    );
    let (change_apply, report) = run(root, Mode::Apply);
    assert!(report.summary.ok, "change apply failed");
    let drift: Vec<Duration> = (0..3).map(|_| run(root, Mode::Drift).0).collect();

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / tenants as f64;
    let median_plan = median(in_sync);
    let median_drift = median(drift);
    println!(
        "tenantctl fleet benchmark: {tenants} SQLite tenant databases, concurrency 8, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{:<34} {:>10} {:>14}", "phase", "total", "per tenant");
    for (name, d) in [
        ("load repository", load),
        ("apply: create every database", create),
        ("plan, all in sync (median of 5)", median_plan),
        ("plan after a blueprint change", change_plan),
        ("apply the change", change_apply),
        ("drift (median of 3)", median_drift),
    ] {
        println!(
            "{name:<34} {:>8.0}ms {:>12.2}ms",
            d.as_secs_f64() * 1000.0,
            per(d)
        );
    }
    println!("peak memory (VmHWM): {:.1} MiB", peak_rss_mib());
}
