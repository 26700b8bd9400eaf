//! The apply executor's semantics, tested once against every engine on the
//! real servers: lock contention gives up with `LockTimeout`, a refusal runs
//! nothing and writes no history, a failure half-way leaves atomic engines
//! unchanged and per-statement engines with their progress recorded (and a
//! re-run converges), and history reads back what was applied.

mod support;

use std::time::Duration;

use tenantctl::engine::apply::Atomicity;
use tenantctl::engine::{self, Connection, EngineError, HistoryRecord, MigrateOutcome, Refusal};
use tenantctl::model::{EngineKind, Schema};
use tenantctl::plan::Step;
use tenantctl::repo::Server;

/// One engine under test: its server and three statements — two that
/// succeed on a fresh database and one that always fails after them.
struct Case {
    kind: EngineKind,
    atomicity: Atomicity,
    url: Option<String>,
    path: Option<std::path::PathBuf>,
    good: [String; 2],
    bad: String,
    _dir: Option<tempfile::TempDir>,
}

impl Case {
    fn server(&self, lock_timeout: Duration) -> Server {
        Server {
            name: "exec".into(),
            engine: self.kind,
            url: self.url.clone(),
            dev_url: None,
            path: self.path.clone(),
            connect_timeout: Duration::from_secs(10),
            max_connections: 4,
            lock_timeout,
            statement_timeout: None,
            concurrent_indexes: None,
            tenant_schemas_in: None,
        }
    }

    async fn open(&self, database: &str, lock_timeout: Duration) -> Box<dyn Connection> {
        let engine = engine::connect(&self.server(lock_timeout))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.kind));
        engine
            .open(database, true)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.kind))
            .expect("created")
    }
}

/// Every engine whose server is reachable (all five under `CI=true`).
fn cases(database: &str) -> Vec<Case> {
    let sql = |kind, atomicity, url: Option<String>| Case {
        kind,
        atomicity,
        url,
        path: None,
        good: [
            "CREATE TABLE exec_a (id INT)".into(),
            "CREATE TABLE exec_b (id INT)".into(),
        ],
        bad: "CREATE TABLE exec_a (id INT)".into(),
        _dir: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![Case {
        path: Some(dir.path().to_path_buf()),
        _dir: Some(dir),
        ..sql(EngineKind::Sqlite, Atomicity::Transaction, None)
    }];
    if let Some(url) = support::server_url("TENANTCTL_TEST_PG_URL") {
        cases.push(sql(EngineKind::Postgres, Atomicity::Transaction, Some(url)));
    }
    if let Some(url) = support::server_url("TENANTCTL_TEST_MYSQL_URL") {
        cases.push(sql(EngineKind::Mysql, Atomicity::PerStatement, Some(url)));
    }
    if let Some(url) = support::server_url("TENANTCTL_TEST_MONGO_URL") {
        let command = |c: &str| format!(r#"db.runCommand({c})"#);
        cases.push(Case {
            kind: EngineKind::Mongodb,
            atomicity: Atomicity::PerStatement,
            url: Some(url),
            path: None,
            good: [
                command(r#"{"create": "exec_a"}"#),
                command(r#"{"create": "exec_b"}"#),
            ],
            bad: command(r#"{"no_such_command": 1}"#),
            _dir: None,
        });
    }
    if let Some(url) = support::server_url("TENANTCTL_TEST_REDIS_URL") {
        cases.push(Case {
            kind: EngineKind::Redis,
            atomicity: Atomicity::PerStatement,
            url: Some(url),
            path: None,
            good: [
                format!("ACL SETUSER {database} on resetkeys ~{database}:a* +get"),
                format!("ACL SETUSER {database} resetkeys ~{database}:b*"),
            ],
            bad: format!("ACL SETUSER {database} +no_such_command"),
            _dir: None,
        });
    }
    cases
}

fn step(description: &str, statements: &[&String]) -> Step {
    Step {
        description: description.into(),
        hazards: Vec::new(),
        statements: statements.iter().map(|s| s.to_string()).collect(),
    }
}

fn record() -> HistoryRecord {
    HistoryRecord {
        applied_at: "2026-01-01T00:00:00Z".into(),
        tenantctl_version: "test".into(),
        blueprint: "exec".into(),
        blueprint_hash: "h".into(),
        ..Default::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const WAIT: Duration = Duration::from_secs(20);

/// While one apply holds a tenant's lock, another gives up after its lock
/// timeout with `LockTimeout`, having run nothing; the lock is free again
/// once the holder finishes.
#[test]
fn lock_contention_times_out_on_every_engine() {
    runtime().block_on(async {
        let database = support::unique("exlock");
        for case in cases(&database) {
            let server = case.server(WAIT);
            let held_database = database.clone();
            let mut waiter = case.open(&database, Duration::from_millis(600)).await;
            let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let go_rx = std::sync::Mutex::new(go_rx);
            // The holder blocks in its planner: on a thread and runtime of its own.
            let holding = std::thread::spawn(move || {
                let planner = move |_: &Schema| -> Result<Vec<Step>, Refusal> {
                    held_tx.send(()).unwrap();
                    go_rx.lock().unwrap().recv_timeout(WAIT).unwrap();
                    Ok(Vec::new())
                };
                runtime().block_on(async {
                    let engine = engine::connect(&server).await.unwrap();
                    let mut holder = engine.open(&held_database, true).await.unwrap().unwrap();
                    holder.migrate(&planner, record()).await
                })
            });
            held_rx.recv_timeout(WAIT).unwrap();
            let ran = std::sync::atomic::AtomicBool::new(false);
            let planner = |_: &Schema| -> Result<Vec<Step>, Refusal> {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(Vec::new())
            };
            let contended = waiter.migrate(&planner, record()).await;
            assert!(
                matches!(contended, Err(EngineError::LockTimeout { .. })),
                "{}: {contended:?}",
                case.kind
            );
            assert!(
                !ran.load(std::sync::atomic::Ordering::SeqCst),
                "{}",
                case.kind
            );
            go_tx.send(()).unwrap();
            let held = holding.join().unwrap();
            assert_eq!(held.unwrap(), MigrateOutcome::UpToDate, "{}", case.kind);
            let after = waiter.migrate(&planner, record()).await;
            assert_eq!(after.unwrap(), MigrateOutcome::UpToDate, "{}", case.kind);
        }
    });
}

/// A refusal runs nothing and writes no history; an apply is read back from
/// history as applied, with its statements and the schema it left; a failure
/// half-way leaves atomic engines as they were and per-statement engines
/// with the earlier statements and a finished `failed after` record that
/// describes the live schema; a re-run planned from the live state converges.
#[test]
fn refusal_history_and_failure_on_every_engine() {
    runtime().block_on(async {
        let database = support::unique("exrun");
        for case in cases(&database) {
            let kind = case.kind;
            let mut conn = case.open(&database, WAIT).await;
            let empty = conn.introspect().await.unwrap();

            // Refusal: nothing ran, no history.
            let refuse =
                |_: &Schema| -> Result<Vec<Step>, Refusal> { Err(Refusal::Policy("no".into())) };
            let refused = conn.migrate(&refuse, record()).await.unwrap();
            assert_eq!(
                refused,
                MigrateOutcome::Refused(Refusal::Policy("no".into())),
                "{kind}"
            );
            assert_eq!(conn.introspect().await.unwrap(), empty, "{kind}");
            assert_eq!(conn.last_applied().await.unwrap(), None, "{kind}");

            // Apply the first statement; history reads it back.
            let first = [step("first", &[&case.good[0]])];
            let plan_first = |_: &Schema| -> Result<Vec<Step>, Refusal> { Ok(first.to_vec()) };
            let applied = conn.migrate(&plan_first, record()).await.unwrap();
            assert_eq!(applied, MigrateOutcome::Applied { statements: 1 }, "{kind}");
            let live = conn.introspect().await.unwrap();
            assert_ne!(live, empty, "{kind}");
            let last = conn.last_applied().await.unwrap().expect("a record");
            assert_eq!(last.outcome, "applied", "{kind}");
            assert_eq!(last.statements, vec![case.good[0].clone()], "{kind}");
            assert_eq!(last.blueprint, "exec", "{kind}");
            assert_eq!(last.schema_fingerprint, live.fingerprint(), "{kind}");
            let snapshot: Schema = serde_json::from_str(last.schema.as_deref().unwrap()).unwrap();
            assert_eq!(snapshot.fingerprint(), live.fingerprint(), "{kind}");

            // A failure half-way.
            let failing = [
                step("second", &[&case.good[1]]),
                step("broken", &[&case.bad]),
            ];
            let plan_failing = |_: &Schema| -> Result<Vec<Step>, Refusal> { Ok(failing.to_vec()) };
            let failed = conn.migrate(&plan_failing, record()).await;
            let now = conn.introspect().await.unwrap();
            let last_now = conn.last_applied().await.unwrap().expect("a record");
            match case.atomicity {
                Atomicity::Transaction => {
                    assert!(
                        matches!(&failed, Err(EngineError::RolledBack(_))),
                        "{kind}: {failed:?}"
                    );
                    let message = failed.unwrap_err().to_string();
                    assert!(message.contains("broken failed at"), "{kind}: {message}");
                    assert_eq!(now, live, "{kind}: rolled back");
                    assert_eq!(last_now, last, "{kind}: no record of a rolled-back apply");
                }
                Atomicity::PerStatement => {
                    assert!(
                        matches!(
                            &failed,
                            Err(EngineError::PartlyApplied {
                                done: 1,
                                total: 2,
                                ..
                            })
                        ),
                        "{kind}: {failed:?}"
                    );
                    assert_ne!(now, live, "{kind}: the second statement stays");
                    assert!(
                        last_now
                            .outcome
                            .starts_with("failed after 1 of 2 statements: "),
                        "{kind}: {}",
                        last_now.outcome
                    );
                    assert_eq!(last_now.schema_fingerprint, now.fingerprint(), "{kind}");
                }
            }

            // The re-run plans from the live state: only what is missing.
            let before_rerun = now.fingerprint();
            let second = [step("second", &[&case.good[1]])];
            let rerun = |live: &Schema| -> Result<Vec<Step>, Refusal> {
                Ok(if live.fingerprint() == live_fingerprint(&last) {
                    second.to_vec()
                } else {
                    Vec::new()
                })
            };
            let outcome = conn.migrate(&rerun, record()).await.unwrap();
            let converged = conn.introspect().await.unwrap();
            match case.atomicity {
                Atomicity::Transaction => {
                    assert_eq!(outcome, MigrateOutcome::Applied { statements: 1 }, "{kind}");
                    assert_ne!(converged.fingerprint(), before_rerun, "{kind}");
                }
                Atomicity::PerStatement => {
                    assert_eq!(outcome, MigrateOutcome::UpToDate, "{kind}");
                    assert_eq!(converged.fingerprint(), before_rerun, "{kind}");
                }
            }
        }
    });
}

fn live_fingerprint(record: &HistoryRecord) -> String {
    record.schema_fingerprint.clone()
}
