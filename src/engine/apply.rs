//! The apply executor: the one path every engine's [`Connection::migrate`]
//! takes — lock → re-introspect → plan → run statements → introspect again →
//! fill the record → write history → release — written once, generic over
//! the small pieces an engine provides ([`Applier`]).
//!
//! Two atomicity modes ([`Atomicity`]):
//! - **one transaction** (SQLite, PostgreSQL): the statements and the history
//!   row commit together; a failure rolls everything back. Statements that
//!   cannot run inside a transaction (PostgreSQL's `CREATE INDEX
//!   CONCURRENTLY`) run after the commit, and the history row is then updated.
//! - **per statement** (MySQL, MongoDB, Redis): a `started` history record is
//!   written before the first statement and updated after each one, so a
//!   failure (or a killed process) leaves a record of how far it got; a re-run
//!   plans again from the live state and converges.
//!
//! The newest *finished* record (applied, or failed with the schema it left)
//! is what [`Applier::last_finished`] returns on every engine: an unfinished
//! one (the process died mid-apply) cannot say what the database looked like.
//!
//! [`Connection::migrate`]: super::Connection::migrate

use async_trait::async_trait;

use super::lease::LeaseLock;
use super::{Connection, EngineError, HistoryRecord, MigrateOutcome, Planner};
use crate::model::Schema;

/// How an engine makes an apply durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atomicity {
    /// Everything (statements and history) in one transaction.
    Transaction,
    /// Statement by statement, progress recorded in history after each.
    PerStatement,
}

/// The outcome text of a finished, successful apply.
pub const APPLIED: &str = "applied";
/// How the outcome text of a failed apply starts.
pub const FAILED: &str = "failed after ";
/// The SQL condition selecting finished history rows (see [`is_finished`]).
pub const FINISHED_SQL: &str = "(outcome = 'applied' OR outcome LIKE 'failed after %')";

/// The regular expression matching finished outcomes (see [`is_finished`]).
pub const FINISHED_REGEX: &str = "^(applied$|failed after )";

/// Whether a history outcome is final: `applied`, or `failed after …`.
pub fn is_finished(outcome: &str) -> bool {
    outcome == APPLIED || outcome.starts_with(FAILED)
}

/// The pieces of one engine's tenant database the executor is generic over.
/// Everything the executor does not say is the engine's: which lock, which
/// statements, where history lives.
#[async_trait]
pub trait Applier: Send {
    /// One transaction, or statement by statement.
    const ATOMICITY: Atomicity;

    /// The lease lock of an engine without a native one; engines with a
    /// native lock override [`Applier::lock`] and [`Applier::unlock`] instead.
    fn lease(&mut self) -> Option<&mut LeaseLock> {
        None
    }

    /// Takes the tenant's lock, waiting at most the server's lock timeout
    /// ([`EngineError::LockTimeout`] after that). By default the lease.
    async fn lock(&mut self) -> Result<(), EngineError> {
        match self.lease() {
            Some(lease) => lease.lock().await,
            None => Ok(()),
        }
    }

    /// Releases the lock (called after every successful [`Applier::lock`],
    /// whatever happened in between).
    async fn unlock(&mut self) -> Result<(), EngineError> {
        match self.lease() {
            Some(lease) => lease.unlock().await,
            None => Ok(()),
        }
    }

    /// Starts the transaction ([`Atomicity::Transaction`] only).
    async fn begin(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Commits or rolls back the transaction ([`Atomicity::Transaction`] only).
    async fn end(&mut self, commit: bool) -> Result<(), EngineError> {
        let _ = commit;
        Ok(())
    }

    /// A last check before the commit (e.g. SQLite's foreign keys).
    async fn check(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Whether `statement` must run after the commit, outside the transaction.
    fn after_commit(&self, statement: &str) -> bool {
        let _ = statement;
        false
    }

    /// The live schema (tenantctl's own objects excluded).
    async fn introspect(&mut self) -> Result<Schema, EngineError>;

    /// Runs one statement; the error carries the server's own words.
    async fn execute(&mut self, statement: &str) -> Result<(), EngineError>;

    /// The tenant database's history.
    fn history(&mut self) -> Box<dyn HistoryStore + '_>;
}

/// Where an engine keeps a tenant database's history records.
#[async_trait]
pub trait HistoryStore: Send {
    /// Appends `record` to the history.
    async fn append(&mut self, record: &HistoryRecord) -> Result<(), EngineError>;

    /// Rewrites the newest history record (this apply's own: the lock is
    /// held) with `record`; `completed` statements of it have run.
    async fn update(&mut self, record: &HistoryRecord, completed: usize)
    -> Result<(), EngineError>;

    /// The newest finished history record ([`is_finished`]), if any.
    async fn last_finished(&mut self) -> Result<Option<HistoryRecord>, EngineError>;
}

/// Applies what `planner` decides to `db` under its lock, recording `record`
/// (its schema, statements and outcome filled in here) in the history.
pub async fn migrate<A: Applier>(
    db: &mut A,
    planner: Planner<'_>,
    record: HistoryRecord,
) -> Result<MigrateOutcome, EngineError> {
    db.lock().await?;
    let outcome = match A::ATOMICITY {
        Atomicity::Transaction => in_transaction(db, planner, record).await,
        Atomicity::PerStatement => per_statement(db, planner, record).await,
    };
    let unlocked = db.unlock().await;
    match (outcome, unlocked) {
        (Ok(o), Ok(())) => Ok(o),
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}

/// The record's description of the schema an apply left.
fn describe_after(record: &mut HistoryRecord, after: &Schema) {
    record.schema_fingerprint = after.fingerprint();
    record.schema = serde_json::to_string(after).ok();
}

/// What the transaction body decided.
enum Body {
    /// Refused or up to date: roll back, nothing ran.
    Nothing(MigrateOutcome),
    /// Ran `count` statements (the history row written); `later` run after the commit.
    Ran { count: usize, later: Vec<String> },
}

async fn in_transaction<A: Applier>(
    db: &mut A,
    planner: Planner<'_>,
    mut record: HistoryRecord,
) -> Result<MigrateOutcome, EngineError> {
    let body = transaction_body(db, planner, &mut record).await;
    let commit = matches!(body, Ok(Body::Ran { .. }));
    let ended = db.end(commit).await;
    let (count, later) = match (body, ended) {
        (Ok(Body::Nothing(outcome)), Ok(())) => return Ok(outcome),
        (Ok(Body::Ran { count, later }), Ok(())) => (count, later),
        (Ok(_), Err(e)) => return Err(e),
        (Err(e), Ok(())) => {
            return Err(EngineError::RolledBack(Box::new(e)));
        }
        (Err(e), Err(_)) => return Err(e),
    };
    if later.is_empty() {
        return Ok(MigrateOutcome::Applied { statements: count });
    }
    for statement in &later {
        db.execute(statement)
            .await
            .map_err(|e| EngineError::AfterCommit {
                statement: super::first_line(statement),
                message: e.reason(),
            })?;
    }
    // The history row must describe the schema with what ran after the
    // commit, or drift would take it for changes made by hand.
    let after = db.introspect().await?;
    describe_after(&mut record, &after);
    db.history().update(&record, count).await?;
    Ok(MigrateOutcome::Applied { statements: count })
}

/// Everything between the start of the transaction and its end.
async fn transaction_body<A: Applier>(
    db: &mut A,
    planner: Planner<'_>,
    record: &mut HistoryRecord,
) -> Result<Body, EngineError> {
    db.begin().await?;
    let live = db.introspect().await?;
    let steps = match planner(&live) {
        Ok(steps) if steps.is_empty() => return Ok(Body::Nothing(MigrateOutcome::UpToDate)),
        Ok(steps) => steps,
        Err(reason) => return Ok(Body::Nothing(MigrateOutcome::Refused(reason))),
    };
    let mut count = 0;
    let mut later = Vec::new();
    for step in &steps {
        for statement in &step.statements {
            count += 1;
            if db.after_commit(statement) {
                later.push(statement.clone());
                continue;
            }
            db.execute(statement)
                .await
                .map_err(|e| EngineError::StatementFailed {
                    step: step.description.clone(),
                    statement: super::first_line(statement),
                    message: e.reason(),
                })?;
        }
    }
    db.check().await?;
    let after = db.introspect().await?;
    describe_after(record, &after);
    record.statements = steps.into_iter().flat_map(|s| s.statements).collect();
    record.outcome = APPLIED.into();
    db.history().append(record).await?;
    Ok(Body::Ran { count, later })
}

async fn per_statement<A: Applier>(
    db: &mut A,
    planner: Planner<'_>,
    mut record: HistoryRecord,
) -> Result<MigrateOutcome, EngineError> {
    let live = db.introspect().await?;
    let steps = match planner(&live) {
        Ok(steps) if steps.is_empty() => return Ok(MigrateOutcome::UpToDate),
        Ok(steps) => steps,
        Err(reason) => return Ok(MigrateOutcome::Refused(reason)),
    };
    record.statements = steps
        .iter()
        .flat_map(|s| s.statements.iter().cloned())
        .collect();
    let total = record.statements.len();
    describe_after(&mut record, &live);
    record.outcome = format!("started: 0 of {total} statements");
    db.history().append(&record).await?;
    let mut done = 0;
    let mut failure = None;
    'steps: for step in &steps {
        for statement in &step.statements {
            if let Err(e) = db.execute(statement).await {
                failure = Some(EngineError::StatementFailed {
                    step: step.description.clone(),
                    statement: super::first_line(statement),
                    message: e.reason(),
                });
                break 'steps;
            }
            done += 1;
            record.outcome = format!("in progress: {done} of {total} statements");
            if let Err(e) = db.history().update(&record, done).await {
                return Err(EngineError::ProgressLost {
                    done,
                    total,
                    source: Box::new(e),
                });
            }
        }
    }
    let Some(failure) = failure else {
        let after = db.introspect().await?;
        describe_after(&mut record, &after);
        record.outcome = APPLIED.into();
        db.history().update(&record, total).await?;
        return Ok(MigrateOutcome::Applied { statements: total });
    };
    let EngineError::StatementFailed { message, .. } = &failure else {
        unreachable!("failure is a statement failure")
    };
    // Only a record that knows the schema the apply left is finished; when
    // the connection is gone (killed), it says how far the apply got.
    record.outcome = match db.introspect().await {
        Ok(after) => {
            describe_after(&mut record, &after);
            format!("{FAILED}{done} of {total} statements: {message}")
        }
        Err(_) => format!("interrupted after {done} of {total} statements: {message}"),
    };
    let _ = db.history().update(&record, done).await;
    Err(EngineError::PartlyApplied {
        done,
        total,
        source: Box::new(failure),
    })
}

/// Every engine's tenant database is a [`Connection`] through the executor.
#[async_trait]
impl<A: Applier> Connection for A {
    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Applier::introspect(self).await
    }

    async fn migrate(
        &mut self,
        planner: Planner<'_>,
        record: HistoryRecord,
    ) -> Result<MigrateOutcome, EngineError> {
        migrate(self, planner, record).await
    }

    async fn last_applied(&mut self) -> Result<Option<HistoryRecord>, EngineError> {
        self.history().last_finished().await
    }
}
