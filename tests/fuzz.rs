//! Fuzzing the repository loader: a fixed number of deterministic mutations
//! (byte flips, truncation, deep nesting, duplicated lines and keys, byte-order
//! marks, huge names, invalid UTF-8) of a valid repository, each loaded and
//! validated through the library in its own thread with a per-case timeout,
//! and every 25th through the binary. No case may panic, hang or crash.

mod support;

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::sqlite::Repo;

/// Cases run, whatever the machine.
const CASES: usize = 300;
/// The whole test stops starting cases after this long (CI budget).
const BUDGET: Duration = Duration::from_secs(20);
/// Longest one load may take before it counts as a hang.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The files of a valid repository with one blueprint per offline-checkable engine.
fn base_files() -> Vec<(&'static str, String)> {
    vec![
        (
            "tenantctl.yaml",
            "servers:\n  local:\n    engine: sqlite\n    path: data\n  pg:\n    engine: postgres\n    url: postgres://u:${PW:-x}@localhost/db\n    tenant_schemas_in: shared\n  docs:\n    engine: mongodb\n    url: mongodb://a,b/\n  kv:\n    engine: redis\n    url: redis://localhost\nenvironments:\n  staging:\n    servers:\n      pg:\n        url: postgres://staging/db\n".into(),
        ),
        ("blueprints/app/blueprint.yaml", "engine: sqlite\nserver: local\nnaming: \"{blueprint}__{tenant}\"\n".into()),
        (
            "blueprints/app/schema.sql",
            "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL);\nCREATE INDEX items_name ON items (name);\n".into(),
        ),
        ("blueprints/orders/blueprint.yaml", "engine: postgres\nserver: pg\n".into()),
        (
            "blueprints/orders/schema.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10,2) DEFAULT 0);\n".into(),
        ),
        ("blueprints/docs/blueprint.yaml", "engine: mongodb\nserver: docs\n".into()),
        (
            "blueprints/docs/schema.json",
            "{\"collections\": {\"events\": {\"indexes\": [{\"key\": {\"at\": 1}, \"name\": \"at_1\"}]}}}\n".into(),
        ),
        ("blueprints/kv/blueprint.yaml", "engine: redis\nserver: kv\nnaming: \"kv_{tenant}\"\n".into()),
        (
            "blueprints/kv/schema.json",
            "{\"acl\": {\"commands\": \"+@read\"}, \"ttl\": [{\"pattern\": \"s:*\", \"max_seconds\": 60}], \"defaults\": {\"plan\": \"free\"}}\n".into(),
        ),
        (
            "tenants/all.yaml",
            "tenants:\n  - name: acme\n    labels: {tier: gold}\n    databases:\n      - blueprint: app\n      - blueprint: orders\n      - blueprint: docs\n      - blueprint: kv\n  - name: beta\n    databases:\n      - blueprint: app\n".into(),
        ),
    ]
}

/// One mutation of `text`.
fn mutate(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    match rng.below(9) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !out.is_empty() {
                    let i = rng.below(out.len());
                    out[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => out.truncate(rng.below(out.len() + 1)),
        2 => {
            let depth = 10 + rng.below(20_000);
            let (open, close) = match rng.below(3) {
                0 => ("[", "]"),
                1 => ("{a: ", "}"),
                _ => ("- ", ""),
            };
            let nest = format!("{}x{}", open.repeat(depth), close.repeat(depth));
            let at = rng.below(out.len() + 1);
            out.splice(at..at, nest.into_bytes());
        }
        3 => {
            let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
            let line = lines[rng.below(lines.len())];
            let at = rng.below(out.len() + 1);
            let mut dup = line.to_vec();
            dup.push(b'\n');
            out.splice(at..at, dup);
        }
        4 => {
            let mut bom = "\u{feff}".as_bytes().to_vec();
            bom.extend(out);
            out = bom;
        }
        5 => {
            let name = "n".repeat(1 + rng.below(5000));
            let at = rng.below(out.len() + 1);
            out.splice(at..at, name.into_bytes());
        }
        6 => {
            let at = rng.below(out.len() + 1);
            out.splice(at..at, b"\n---\n".to_vec());
        }
        7 => {
            let at = rng.below(out.len() + 1);
            let junk: &[&[u8]] = &[
                b"\xff\xfe",
                b"\0",
                "é${".as_bytes(),
                b"&a *a <<: *a",
                b"!!binary x",
                b"'\"",
                b"\t",
            ];
            out.splice(at..at, junk[rng.below(junk.len())].to_vec());
        }
        _ => {
            // Two mutations at once.
            let once = mutate(rng, text);
            out = mutate(rng, &once);
        }
    }
    out
}

fn write_repo(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (path, bytes) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Loads `root` in a thread with the default (small) stack; `Err` says why it failed.
fn load_bounded(root: &Path) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    let handle = std::thread::Builder::new()
        .name("fuzz-load".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| {
                let loaded = tenantctl::repo::Repo::load(&root, None, &tenantctl::engine::REGISTRY);
                if let Err(d) = &loaded {
                    // Rendering the diagnostics is part of the contract too.
                    let _ = d.to_string();
                }
                let _ = tenantctl::repo::Repo::load(
                    &root,
                    Some("staging"),
                    &tenantctl::engine::REGISTRY,
                );
            });
            let _ = tx.send(outcome.is_ok());
        })
        .unwrap();
    match rx.recv_timeout(CASE_TIMEOUT) {
        Ok(true) => {
            handle.join().ok();
            Ok(())
        }
        Ok(false) => Err("panicked".into()),
        Err(_) => Err(format!("no answer within {CASE_TIMEOUT:?} (hang)")),
    }
}

#[test]
fn mutated_repositories_never_panic_or_hang() {
    let base = base_files();
    let pristine = Repo::new();
    let pristine_files: Vec<(&str, Vec<u8>)> = base
        .iter()
        .map(|(p, t)| (*p, t.clone().into_bytes()))
        .collect();
    write_repo(pristine.path(), &pristine_files);
    assert!(
        tenantctl::repo::Repo::load(pristine.path(), None, &tenantctl::engine::REGISTRY).is_ok(),
        "the base repository must be valid: {:?}",
        tenantctl::repo::Repo::load(pristine.path(), None, &tenantctl::engine::REGISTRY)
            .err()
            .map(|d| d.to_string())
    );

    let mut rng = Rng(0x7e4a_47c7_1d5e_c0de);
    let started = Instant::now();
    let mut ran = 0;
    for case in 0..CASES {
        if started.elapsed() > BUDGET {
            break;
        }
        let mut files = pristine_files.clone();
        for _ in 0..=rng.below(2) {
            let i = rng.below(files.len());
            files[i].1 = mutate(&mut rng, &files[i].1);
        }
        let repo = Repo::new();
        write_repo(repo.path(), &files);
        if let Err(why) = load_bounded(repo.path()) {
            let kept = std::env::temp_dir().join(format!("tenantctl-fuzz-case-{case}"));
            let _ = std::fs::remove_dir_all(&kept);
            write_repo(&kept, &files);
            panic!(
                "case {case}: {why}; the repository is kept in {}",
                kept.display()
            );
        }
        if case % 25 == 0 {
            let run = repo.run(&["validate"]);
            assert!(
                run.code == 0 || run.code == 1,
                "case {case}: validate exited {}\n{}",
                run.code,
                run.stderr
            );
        }
        ran += 1;
    }
    eprintln!(
        "{ran} mutated repositories loaded in {:?}",
        started.elapsed()
    );
    assert!(ran >= 50, "only {ran} cases ran within {BUDGET:?}");
}
