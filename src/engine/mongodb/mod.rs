//! MongoDB: one database per tenant database on the server. The declared
//! model is the blueprint's `schema.json`, normalised the way the server
//! reports options. Apply holds a lock document with an expiry in the
//! tenant's `_tenantctl_lock` collection, runs each step's commands in order
//! (MongoDB has no transactional DDL: a failed step stops the apply, the
//! history says how far it got, and a re-run plans what is left) and records
//! history in `_tenantctl_history`.

mod inspect;
mod migrate;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::{Client, Database};

use super::{
    Connection, Engine, EngineError, HISTORY_TABLE, HistoryRecord, MigrateOutcome, Planner,
};
use crate::model::document::Object;
use crate::model::{EngineKind, Schema, document};
use crate::plan::Step;
use crate::repo::{
    Blueprint, Server,
    env::{redact, redact_text},
};

/// The collection holding a tenant database's apply lock.
pub const LOCK_COLLECTION: &str = "_tenantctl_lock";
/// How long a lock lives if its holder dies without releasing it.
const LOCK_LEASE: Duration = Duration::from_secs(600);

/// A MongoDB server (or replica set) holding one database per tenant database.
pub struct MongoEngine {
    client: Client,
    lock_timeout: Duration,
}

/// Wraps a driver error with what was being done; the driver's messages
/// name hosts, never passwords, but URLs are redacted anyway.
pub(crate) fn driver_error(context: &str) -> impl FnOnce(mongodb::error::Error) -> EngineError {
    let context = context.to_string();
    move |e| EngineError::Other(format!("{context}: {}", describe(&e)))
}

/// The server's own words for a failed command (`CodeName (code): message`),
/// or the driver's message, without the raw reply.
pub(crate) fn describe(e: &mongodb::error::Error) -> String {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Command(c) => format!("{} ({}): {}", c.code_name, c.code, c.message),
        ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            format!("write error {}: {}", w.code, w.message)
        }
        ErrorKind::ServerSelection { message, .. } => {
            // The topology description repeats each server's error with driver
            // internals; keep the first server error only.
            let cause = message
                .split_once("Error: ")
                .map(|(_, rest)| rest.split(", labels").next().unwrap_or(rest))
                .map(|c| c.trim_start_matches("Kind: ").to_string())
                .unwrap_or_else(|| message.clone());
            format!("no reachable server ({})", redact_text(&cause))
        }
        _ => redact_text(&e.to_string()),
    }
}

impl MongoEngine {
    /// Connects, and checks the server answers (within `connect_timeout`).
    pub async fn new(server: &Server) -> Result<Self, EngineError> {
        let url = server.resolved_url().map_err(EngineError::Other)?;
        let mut options =
            mongodb::options::ClientOptions::parse(&url)
                .await
                .map_err(driver_error(&format!(
                    "server {}: reading the url {}",
                    server.name,
                    redact(&url)
                )))?;
        options.app_name = Some("tenantctl".into());
        // The server's `connect_timeout` unless the URL sets its own
        // (connectTimeoutMS, serverSelectionTimeoutMS).
        if options.server_selection_timeout.is_none() {
            options.server_selection_timeout = Some(server.connect_timeout);
        }
        if options.connect_timeout.is_none() {
            options.connect_timeout = Some(server.connect_timeout);
        }
        if options.max_pool_size.is_none() {
            options.max_pool_size = Some(server.max_connections.max(1) as u32);
        }
        let client = Client::with_options(options).map_err(driver_error(&format!(
            "server {}: connecting to {}",
            server.name,
            redact(&url)
        )))?;
        // One round trip now: an unreachable server then fails once, after
        // its connect timeout and with the driver's reason, instead of once
        // per use (each waits for server selection: plan, then drift's orphan listing).
        client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(driver_error(&format!(
                "server {}: connecting to {}",
                server.name,
                redact(&url)
            )))?;
        Ok(Self {
            client,
            lock_timeout: server.lock_timeout,
        })
    }
}

#[async_trait]
impl Engine for MongoEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Mongodb
    }

    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError> {
        let schema = document::parse(&blueprint.source).map_err(|e| EngineError::Blueprint {
            file: blueprint.schema_path.display().to_string(),
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        Ok(Schema::Document(schema.normalized()))
    }

    async fn list_databases(&self) -> Result<Vec<String>, EngineError> {
        let mut names = self
            .client
            .list_database_names()
            .await
            .map_err(driver_error("listing databases"))?;
        names.retain(|n| !matches!(n.as_str(), "admin" | "local" | "config"));
        names.sort();
        Ok(names)
    }

    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        crate::names::check_name(database).map_err(EngineError::Other)?;
        if !create {
            let found = self
                .client
                .list_database_names()
                .filter(doc! { "name": database })
                .await
                .map_err(driver_error(&format!("looking for database {database}")))?;
            if !found.iter().any(|n| n == database) {
                return Ok(None);
            }
        }
        Ok(Some(Box::new(MongoDatabase {
            db: self.client.database(database),
            name: database.to_string(),
            lock_timeout: self.lock_timeout,
        })))
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::Document(live), Schema::Document(declared)) => migrate::plan(live, declared),
            _ => Err(EngineError::Other(
                "mongodb plans document schemas only".into(),
            )),
        }
    }
}

/// One tenant database.
struct MongoDatabase {
    db: Database,
    name: String,
    lock_timeout: Duration,
}

impl MongoDatabase {
    /// Takes the lock document, waiting up to the lock timeout for a live
    /// holder; an expired lock (its holder died) is taken over.
    async fn lock(&self, token: &str) -> Result<(), EngineError> {
        let started = Instant::now();
        loop {
            let now = DateTime::now();
            let expires =
                DateTime::from_millis(now.timestamp_millis() + LOCK_LEASE.as_millis() as i64);
            let reply = self
                .db
                .run_command(doc! {
                    "update": LOCK_COLLECTION,
                    "updates": [{
                        "q": { "_id": "apply", "expiresAt": { "$lt": now } },
                        "u": { "$set": { "owner": token, "expiresAt": expires,
                                         "host": hostname() } },
                        "upsert": true,
                    }],
                })
                .await;
            match reply {
                Ok(reply) if write_errors(&reply).is_none() => return Ok(()),
                Ok(reply) if !is_duplicate_key(&reply) => {
                    return Err(EngineError::Other(format!(
                        "locking {}: {}",
                        self.name,
                        write_errors(&reply).unwrap_or_default()
                    )));
                }
                Ok(_) => {}
                Err(e) if e.to_string().contains("E11000") => {}
                Err(e) => return Err(driver_error(&format!("locking {}", self.name))(e)),
            }
            if started.elapsed() >= self.lock_timeout {
                return Err(EngineError::LockTimeout {
                    database: self.name.clone(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Releases the lock if this apply still owns it.
    async fn unlock(&self, token: &str) -> Result<(), EngineError> {
        self.db
            .run_command(doc! {
                "delete": LOCK_COLLECTION,
                "deletes": [{ "q": { "_id": "apply", "owner": token }, "limit": 1 }],
            })
            .await
            .map_err(driver_error(&format!("unlocking {}", self.name)))?;
        Ok(())
    }

    async fn migrate_locked(
        &mut self,
        planner: Planner<'_>,
        mut record: HistoryRecord,
    ) -> Result<MigrateOutcome, EngineError> {
        let live = Schema::Document(inspect::inspect(&self.db).await?);
        let steps = match planner(&live) {
            Ok(steps) => steps,
            Err(reason) => return Ok(MigrateOutcome::Refused(reason)),
        };
        if steps.is_empty() {
            return Ok(MigrateOutcome::UpToDate);
        }
        let mut done: Vec<String> = Vec::new();
        let mut failure = None;
        'steps: for step in &steps {
            for statement in &step.statements {
                if let Err(e) = self.run_statement(statement).await {
                    failure = Some(format!("{} failed at `{statement}`: {e}", step.description));
                    break 'steps;
                }
                done.push(statement.clone());
            }
        }
        let count = done.len();
        record.statements = done;
        let after = Schema::Document(inspect::inspect(&self.db).await?);
        record.schema_fingerprint = after.fingerprint();
        record.schema = serde_json::to_string(&after).ok();
        record.outcome = match &failure {
            None => "applied".into(),
            Some(message) => format!("failed after {count} statement(s): {message}"),
        };
        self.write_history(&record).await?;
        match failure {
            None => Ok(MigrateOutcome::Applied { statements: count }),
            Some(message) => Err(EngineError::Other(format!(
                "{message} ({count} earlier statement(s) stay applied; a re-run plans the rest)"
            ))),
        }
    }

    async fn run_statement(&self, statement: &str) -> Result<(), String> {
        let body = migrate::parse_command(statement)?;
        let command = Document::try_from(body).map_err(|e| e.to_string())?;
        self.db
            .run_command(command)
            .await
            .map_err(|e| describe(&e))?;
        Ok(())
    }

    async fn write_history(&self, record: &HistoryRecord) -> Result<(), EngineError> {
        let mut entry = mongodb::bson::to_document(record)
            .map_err(|e| EngineError::Other(format!("encoding the history record: {e}")))?;
        entry.insert("recordedAt", DateTime::now());
        self.db
            .run_command(doc! { "insert": HISTORY_TABLE, "documents": [entry] })
            .await
            .map_err(driver_error("writing the history record"))?;
        Ok(())
    }
}

fn write_errors(reply: &Document) -> Option<String> {
    let errors = reply.get_array("writeErrors").ok()?;
    (!errors.is_empty()).then(|| {
        Bson::Array(errors.clone())
            .into_relaxed_extjson()
            .to_string()
    })
}

fn is_duplicate_key(reply: &Document) -> bool {
    reply.get_array("writeErrors").is_ok_and(|errors| {
        errors.iter().any(|e| {
            e.as_document()
                .and_then(|d| d.get("code"))
                .and_then(|c| match c {
                    Bson::Int32(i) => Some(*i as i64),
                    Bson::Int64(i) => Some(*i),
                    Bson::Double(f) => Some(*f as i64),
                    _ => None,
                })
                == Some(11000)
        })
    })
}

fn hostname() -> String {
    std::env::var("HOSTNAME").unwrap_or_default()
}

fn new_token() -> String {
    use sha2::{Digest, Sha256};
    let seed = format!(
        "{}:{}:{:?}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        std::thread::current().id()
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..12])
}

#[async_trait]
impl Connection for MongoDatabase {
    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Ok(Schema::Document(inspect::inspect(&self.db).await?))
    }

    async fn migrate(
        &mut self,
        planner: Planner<'_>,
        record: HistoryRecord,
    ) -> Result<MigrateOutcome, EngineError> {
        let token = new_token();
        self.lock(&token).await?;
        let outcome = self.migrate_locked(planner, record).await;
        let unlocked = self.unlock(&token).await;
        let outcome = outcome?;
        unlocked?;
        Ok(outcome)
    }

    async fn last_applied(&mut self) -> Result<Option<HistoryRecord>, EngineError> {
        let reply = self
            .db
            .run_command(doc! {
                "find": HISTORY_TABLE,
                "sort": { "recordedAt": -1, "_id": -1 },
                "limit": 1,
                "singleBatch": true,
            })
            .await
            .map_err(driver_error("reading history"))?;
        let first = reply
            .get_document("cursor")
            .ok()
            .and_then(|c| c.get_array("firstBatch").ok())
            .and_then(|b| b.first())
            .and_then(|d| d.as_document().cloned());
        Ok(first.and_then(|mut d| {
            d.remove("_id");
            d.remove("recordedAt");
            let object: Object = inspect::to_object(d);
            serde_json::from_value(serde_json::Value::Object(object)).ok()
        }))
    }
}
