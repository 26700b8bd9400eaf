//! MongoDB: one database per tenant database on the server. The declared
//! model is the blueprint's `schema.json`, normalised the way the server
//! reports options. Apply holds a lock document with an expiry in the
//! tenant's `_tenantctl_lock` collection, runs each step's commands in order
//! (MongoDB has no transactional DDL: a failed step stops the apply, the
//! history says how far it got, and a re-run plans what is left) and records
//! history in `_tenantctl_history`.

mod inspect;
mod migrate;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::{Client, Database};

use super::apply::{Applier, Atomicity, FINISHED_REGEX, HistoryStore};
use super::lease::{LeaseLock, LeaseStore};
use super::{Connection, Engine, EngineError, HISTORY_TABLE, HistoryRecord};
use crate::diff::Step;
use crate::model::document::Object;
use crate::model::{EngineKind, Schema, document};
use crate::repo::{
    Blueprint, Server,
    env::{redact, redact_text},
};

/// The collection holding a tenant database's apply lock.
pub const LOCK_COLLECTION: &str = "_tenantctl_lock";

/// A MongoDB server (or replica set) holding one database per tenant database.
pub struct MongoEngine {
    client: Client,
    lock_timeout: Duration,
}

/// Wraps a driver error with what was being done; the driver's messages
/// name hosts, never passwords, but URLs are redacted anyway.
pub(crate) fn driver_error(context: &str) -> impl FnOnce(mongodb::error::Error) -> EngineError {
    let context = context.to_string();
    move |e| EngineError::Driver {
        context,
        message: describe(&e),
        source: Box::new(e),
    }
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
        let url = server.resolved_url().map_err(EngineError::ServerConfig)?;
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
        let db = self.client.database(database);
        let lease = MongoLease {
            db: db.clone(),
            name: database.to_string(),
        };
        Ok(Some(Box::new(MongoDatabase {
            db,
            lock: LeaseLock::new(Arc::new(lease), database, self.lock_timeout),
        })))
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::Document(live), Schema::Document(declared)) => migrate::plan(live, declared),
            _ => Err(EngineError::WrongModel {
                engine: EngineKind::Mongodb,
                expected: "document",
            }),
        }
    }
}

/// One tenant database.
struct MongoDatabase {
    db: Database,
    lock: LeaseLock,
}

/// The lease document `{_id: "apply"}` in the tenant's `_tenantctl_lock`.
struct MongoLease {
    db: Database,
    name: String,
}

#[async_trait]
impl LeaseStore for MongoLease {
    async fn try_take(&self, token: &str, lease: Duration) -> Result<bool, EngineError> {
        let now = DateTime::now();
        let expires = DateTime::from_millis(now.timestamp_millis() + lease.as_millis() as i64);
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
            Ok(reply) if write_errors(&reply).is_none() => Ok(true),
            Ok(reply) if !is_duplicate_key(&reply) => Err(EngineError::Other(format!(
                "locking {}: {}",
                self.name,
                write_errors(&reply).unwrap_or_default()
            ))),
            Ok(_) => Ok(false),
            Err(e) if e.to_string().contains("E11000") => Ok(false),
            Err(e) => Err(driver_error(&format!("locking {}", self.name))(e)),
        }
    }

    async fn release(&self, token: &str) -> Result<(), EngineError> {
        self.db
            .run_command(doc! {
                "delete": LOCK_COLLECTION,
                "deletes": [{ "q": { "_id": "apply", "owner": token }, "limit": 1 }],
            })
            .await
            .map_err(driver_error(&format!("unlocking {}", self.name)))?;
        Ok(())
    }
}

#[async_trait]
impl Applier for MongoDatabase {
    /// MongoDB has no transactional DDL.
    const ATOMICITY: Atomicity = Atomicity::PerStatement;

    fn lease(&mut self) -> Option<&mut LeaseLock> {
        Some(&mut self.lock)
    }

    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Ok(Schema::Document(inspect::inspect(&self.db).await?))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), EngineError> {
        let body = migrate::parse_command(statement).map_err(EngineError::Rejected)?;
        let command = Document::try_from(body).map_err(|e| EngineError::Rejected(e.to_string()))?;
        self.db
            .run_command(command)
            .await
            .map_err(driver_error("running a command"))?;
        Ok(())
    }

    fn history(&mut self) -> Box<dyn HistoryStore + '_> {
        Box::new(MongoHistory { db: &self.db })
    }
}

/// The `_tenantctl_history` collection of a tenant database.
struct MongoHistory<'a> {
    db: &'a Database,
}

#[async_trait]
impl HistoryStore for MongoHistory<'_> {
    async fn append(&mut self, record: &HistoryRecord) -> Result<(), EngineError> {
        let mut entry = history_document(record)?;
        entry.insert("recordedAt", DateTime::now());
        self.db
            .run_command(doc! { "insert": HISTORY_TABLE, "documents": [entry] })
            .await
            .map_err(driver_error("writing the history record"))?;
        Ok(())
    }

    async fn update(&mut self, record: &HistoryRecord, _: usize) -> Result<(), EngineError> {
        self.db
            .run_command(doc! {
                "findAndModify": HISTORY_TABLE,
                "query": {},
                "sort": NEWEST_FIRST.clone(),
                "update": { "$set": history_document(record)? },
            })
            .await
            .map_err(driver_error("updating the history record"))?;
        Ok(())
    }

    async fn last_finished(&mut self) -> Result<Option<HistoryRecord>, EngineError> {
        let reply = self
            .db
            .run_command(doc! {
                "find": HISTORY_TABLE,
                "filter": { "outcome": { "$regex": FINISHED_REGEX } },
                "sort": NEWEST_FIRST.clone(),
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

/// The history order, newest first.
static NEWEST_FIRST: std::sync::LazyLock<Document> =
    std::sync::LazyLock::new(|| doc! { "recordedAt": -1, "_id": -1 });

fn history_document(record: &HistoryRecord) -> Result<Document, EngineError> {
    mongodb::bson::to_document(record).map_err(|e| EngineError::EncodeHistory {
        source: Box::new(e),
    })
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

/// This engine, as the registry (`engine::REGISTRY`) lists it.
pub const DESCRIPTION: super::EngineDescription = super::EngineDescription {
    kind: EngineKind::Mongodb,
    sql: false,
    fence: "js",
    check_option: super::no_option_check,
    check_server: super::no_server_check,
    connect,
    repo: crate::repo::EngineRules {
        schema: crate::repo::SchemaSource::Json,
        needs_path: false,
        dev_url: false,
        default_naming: crate::repo::DEFAULT_NAMING,
    },
    check_offline: super::no_offline_check,
};

fn connect(
    server: &Server,
) -> super::BoxFuture<'_, Result<std::sync::Arc<dyn Engine>, EngineError>> {
    Box::pin(async move {
        Ok(std::sync::Arc::new(MongoEngine::new(server).await?) as std::sync::Arc<dyn Engine>)
    })
}
