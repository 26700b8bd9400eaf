//! Redis: tenants share a server and are isolated by a key prefix. A tenant
//! "database" is the prefix (`acme` → keys `acme:*`, or `{acme}:*` with the
//! blueprint's `hash_tag` option for Redis Cluster); its schema is an ACL
//! user named after it and confined to the prefix, TTL policies on key
//! patterns and default keys. Apply holds `SET _tenantctl:lock:{db} token NX PX`
//! (released only by its owner) and appends history to the list
//! `_tenantctl:history:{db}`. Redis has no transactional DDL: each command is
//! idempotent, so an interrupted apply is finished by the next run.

mod inspect;
mod migrate;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;

use super::apply::{Applier, Atomicity, HistoryStore, is_finished};
use super::lease::{LeaseLock, LeaseStore};
use super::{Connection, Engine, EngineError, HistoryRecord};
use crate::diff::Step;
use crate::model::keyvalue::{self, KeyValueSchema};
use crate::model::{EngineKind, Schema};
use crate::repo::{
    Blueprint, Server,
    env::{redact, redact_text},
};

/// The prefix of tenantctl's own keys.
pub const RESERVED_KEY_PREFIX: &str = "_tenantctl:";
/// History records kept per tenant.
const HISTORY_KEPT: isize = 100;

/// Deletes the lock only when it still holds this apply's token.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// A Redis server shared by tenants.
pub struct RedisEngine {
    client: redis::Client,
    server: String,
    /// How long opening a connection may take (the server's `connect_timeout`).
    connect_timeout: Duration,
    lock_timeout: Duration,
    /// What each blueprint built on this server declares, to know, when a
    /// tenant prefix is opened, its prefix form, password and policies.
    blueprints: Mutex<Vec<(String, String, KeyValueSchema)>>,
}

/// Wraps a driver error with what was being done, any URL redacted.
pub(crate) fn driver_error(context: &str) -> impl FnOnce(redis::RedisError) -> EngineError {
    let context = context.to_string();
    move |e| EngineError::Driver {
        context,
        message: redact_text(&e.to_string()),
        source: Box::new(e),
    }
}

/// One tenant on the server, as the connection needs it.
pub(crate) struct Tenant {
    /// The ACL user: the tenant database's name after the blueprint's `naming`.
    pub user: String,
    /// `user:` or `{user}:`.
    pub prefix: String,
    /// What its blueprint declares (defaults when no blueprint was built).
    pub declared: KeyValueSchema,
    /// The password variable template and the hash of its value.
    pub password: Option<(String, String)>,
}

impl RedisEngine {
    pub fn new(server: &Server) -> Result<Self, EngineError> {
        let url = server.resolved_url().map_err(EngineError::ServerConfig)?;
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            EngineError::ServerConfig(format!(
                "server {}: reading the url {}: {}",
                server.name,
                redact(&url),
                redact_text(&e.to_string())
            ))
        })?;
        Ok(Self {
            client,
            server: server.name.clone(),
            connect_timeout: server.connect_timeout,
            lock_timeout: server.lock_timeout,
            blueprints: Mutex::new(Vec::new()),
        })
    }

    async fn connection(&self) -> Result<MultiplexedConnection, EngineError> {
        let config =
            redis::AsyncConnectionConfig::new().set_connection_timeout(Some(self.connect_timeout));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(driver_error(&format!(
                "connecting to server {}",
                self.server
            )))
    }

    /// The tenant behind `database`, from the blueprints built on this server.
    fn tenant(&self, database: &str) -> Result<Tenant, EngineError> {
        let blueprints = self.blueprints.lock().expect("blueprints");
        let mut matches: Vec<(&str, String, &KeyValueSchema)> = Vec::new();
        for (name, naming, schema) in blueprints.iter() {
            let pattern = naming.replace("{blueprint}", name);
            let Some((before, after)) = pattern.split_once("{tenant}") else {
                continue;
            };
            if let Some(tenant) = database
                .strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .filter(|t| !t.is_empty())
            {
                matches.push((name, tenant.to_string(), schema));
            }
        }
        if matches.len() > 1 {
            let names: Vec<&str> = matches.iter().map(|m| m.0).collect();
            return Err(EngineError::Other(format!(
                "{database}: blueprints {} would manage the same tenant prefix on server {}; \
                 give them different `naming` or servers",
                names.join(", "),
                self.server
            )));
        }
        // The ACL user and key prefix are the database name after the
        // blueprint's `naming`, so blueprints with different `naming` never
        // share them; `{tenant}` in `password_env` stays the tenant's name.
        let user = database.to_string();
        let (tenant, declared) = match matches.pop() {
            Some((_, tenant, schema)) => (tenant, schema.clone()),
            None => (database.to_string(), KeyValueSchema::default()),
        };
        if user == "default" {
            return Err(EngineError::Other(format!(
                "{database}: a Redis tenant cannot be named `default`: that is Redis's own default user, \
                 which every client without credentials connects as"
            )));
        }
        let prefix = if declared.hash_tag {
            format!("{{{user}}}:")
        } else {
            format!("{user}:")
        };
        let password = match declared.acl.as_ref().and_then(|a| a.password_env.clone()) {
            Some(template) => {
                let var = migrate::password_var(&template, &tenant);
                let value = password_value(&var)?;
                Some((template, inspect::password_hash(&value)))
            }
            None => None,
        };
        Ok(Tenant {
            user,
            prefix,
            declared,
            password,
        })
    }
}

/// The list holding a tenant database's history.
fn history_key(database: &str) -> String {
    format!("{RESERVED_KEY_PREFIX}history:{{{database}}}")
}

fn password_value(var: &str) -> Result<String, EngineError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            EngineError::Other(format!(
                "environment variable {var} (the ACL password of this tenant) is not set"
            ))
        })
}

#[async_trait]
impl Engine for RedisEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Redis
    }

    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError> {
        let file = blueprint.schema_path.display().to_string();
        let mut schema =
            keyvalue::parse(&blueprint.source).map_err(|e| EngineError::Blueprint {
                file: file.clone(),
                line: e.line,
                column: e.column,
                message: e.message,
            })?;
        if let Some(acl) = &mut schema.acl {
            let mut conn = self.connection().await?;
            let scratch = format!("_tenantctl_scratch_{}", std::process::id());
            acl.commands = inspect::normalize_rules(&mut conn, &acl.commands, &scratch)
                .await
                .map_err(|message| {
                    let line = blueprint
                        .source
                        .lines()
                        .position(|l| l.contains("\"commands\""))
                        .map_or(1, |i| i + 1);
                    EngineError::Blueprint {
                        file: file.clone(),
                        line,
                        column: 1,
                        message: format!("Redis rejected acl.commands: {message}"),
                    }
                })?;
            acl.keys.sort();
            acl.channels.sort();
        }
        self.blueprints.lock().expect("blueprints").push((
            blueprint.name.clone(),
            blueprint.naming.clone(),
            schema.clone(),
        ));
        Ok(Schema::KeyValue(schema))
    }

    /// The tenant prefixes tenantctl has applied to: ACL users with a valid
    /// tenant name and a history list (other users of a shared server are
    /// none of tenantctl's business).
    async fn list_databases(&self) -> Result<Vec<String>, EngineError> {
        let mut conn = self.connection().await?;
        let mut users: Vec<String> = redis::cmd("ACL")
            .arg("USERS")
            .query_async(&mut conn)
            .await
            .map_err(driver_error("listing ACL users"))?;
        users.retain(|u| u != "default" && crate::names::check_name(u).is_ok());
        if users.is_empty() {
            return Ok(users);
        }
        let mut pipe = redis::pipe();
        for user in &users {
            pipe.exists(history_key(user));
        }
        let recorded: Vec<bool> = pipe
            .query_async(&mut conn)
            .await
            .map_err(driver_error("reading history"))?;
        let mut found: Vec<String> = users
            .into_iter()
            .zip(recorded)
            .filter_map(|(user, recorded)| recorded.then_some(user))
            .collect();
        found.sort();
        Ok(found)
    }

    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        crate::names::check_name(database).map_err(EngineError::Other)?;
        let tenant = self.tenant(database)?;
        let mut conn = self.connection().await?;
        let me: String = redis::cmd("ACL")
            .arg("WHOAMI")
            .query_async(&mut conn)
            .await
            .map_err(driver_error("asking which ACL user tenantctl is"))?;
        if me == tenant.user {
            return Err(EngineError::Other(format!(
                "{database}: tenantctl connects to this server as ACL user `{me}`, so it cannot manage a tenant of that name"
            )));
        }
        let history = history_key(database);
        if !create {
            let user: redis::Value = redis::cmd("ACL")
                .arg("GETUSER")
                .arg(&tenant.user)
                .query_async(&mut conn)
                .await
                .map_err(driver_error("reading the ACL user"))?;
            let recorded: bool = redis::cmd("EXISTS")
                .arg(&history)
                .query_async(&mut conn)
                .await
                .map_err(driver_error("reading history"))?;
            if matches!(user, redis::Value::Nil)
                && !recorded
                && !inspect::any_key(&mut conn, &tenant.prefix).await?
            {
                return Ok(None);
            }
        }
        let lease = RedisLease {
            conn: conn.clone(),
            key: format!("{RESERVED_KEY_PREFIX}lock:{{{database}}}"),
            name: database.to_string(),
        };
        Ok(Some(Box::new(RedisTenant {
            conn,
            history_key: history,
            tenant,
            lock: LeaseLock::new(Arc::new(lease), database, self.lock_timeout),
        })))
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::KeyValue(live), Schema::KeyValue(declared)) => migrate::plan(live, declared),
            _ => Err(EngineError::WrongModel {
                engine: EngineKind::Redis,
                expected: "key-value",
            }),
        }
    }
}

/// One tenant prefix on the server.
struct RedisTenant {
    conn: MultiplexedConnection,
    history_key: String,
    tenant: Tenant,
    lock: LeaseLock,
}

/// The lease key `_tenantctl:lock:{db}`, set with NX and PX.
struct RedisLease {
    conn: MultiplexedConnection,
    key: String,
    name: String,
}

#[async_trait]
impl LeaseStore for RedisLease {
    async fn try_take(&self, token: &str, lease: Duration) -> Result<bool, EngineError> {
        let taken: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(lease.as_millis() as u64)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(driver_error(&format!("locking {}", self.name)))?;
        Ok(taken.is_some())
    }

    async fn release(&self, token: &str) -> Result<(), EngineError> {
        let _: i64 = redis::cmd("EVAL")
            .arg(UNLOCK_SCRIPT)
            .arg(1)
            .arg(&self.key)
            .arg(token)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(driver_error(&format!("unlocking {}", self.name)))?;
        Ok(())
    }
}

#[async_trait]
impl Applier for RedisTenant {
    /// Redis has no transactional DDL; each command is idempotent.
    const ATOMICITY: Atomicity = Atomicity::PerStatement;

    fn lease(&mut self) -> Option<&mut LeaseLock> {
        Some(&mut self.lock)
    }

    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Ok(Schema::KeyValue(
            inspect::inspect(&mut self.conn, &self.tenant).await?,
        ))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), EngineError> {
        let tokens = migrate::parse_statement(statement, &self.tenant.user, &self.tenant.prefix)
            .map_err(EngineError::Rejected)?;
        let mut cmd = redis::cmd(&tokens[0]);
        for token in &tokens[1..] {
            match migrate::password_token_var(token) {
                Some(var) => {
                    let value = password_value(var)?;
                    cmd.arg(format!("#{}", inspect::password_hash(&value)));
                }
                None => {
                    cmd.arg(token);
                }
            }
        }
        let _: redis::Value = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(driver_error("running a command"))?;
        Ok(())
    }

    fn history(&mut self) -> Box<dyn HistoryStore + '_> {
        Box::new(RedisHistory {
            conn: &mut self.conn,
            key: &self.history_key,
        })
    }
}

/// The list `_tenantctl:history:{db}` of a tenant, newest last.
struct RedisHistory<'a> {
    conn: &'a mut MultiplexedConnection,
    key: &'a str,
}

#[async_trait]
impl HistoryStore for RedisHistory<'_> {
    async fn append(&mut self, record: &HistoryRecord) -> Result<(), EngineError> {
        let _: () = redis::pipe()
            .rpush(self.key, history_entry(record)?)
            .ignore()
            .ltrim(self.key, -HISTORY_KEPT, -1)
            .ignore()
            .query_async(self.conn)
            .await
            .map_err(driver_error("writing the history record"))?;
        Ok(())
    }

    async fn update(&mut self, record: &HistoryRecord, _: usize) -> Result<(), EngineError> {
        let _: () = redis::cmd("LSET")
            .arg(self.key)
            .arg(-1)
            .arg(history_entry(record)?)
            .query_async(self.conn)
            .await
            .map_err(driver_error("updating the history record"))?;
        Ok(())
    }

    async fn last_finished(&mut self) -> Result<Option<HistoryRecord>, EngineError> {
        let all: Vec<String> = redis::cmd("LRANGE")
            .arg(self.key)
            .arg(0)
            .arg(-1)
            .query_async(self.conn)
            .await
            .map_err(driver_error("reading history"))?;
        Ok(all
            .iter()
            .rev()
            .filter_map(|s| serde_json::from_str::<HistoryRecord>(s).ok())
            .find(|r| is_finished(&r.outcome)))
    }
}

fn history_entry(record: &HistoryRecord) -> Result<String, EngineError> {
    serde_json::to_string(record).map_err(|e| EngineError::EncodeHistory {
        source: Box::new(e),
    })
}

/// This engine, as the registry (`engine::REGISTRY`) lists it.
pub const DESCRIPTION: super::EngineDescription = super::EngineDescription {
    kind: EngineKind::Redis,
    sql: false,
    fence: "",
    check_option: super::no_option_check,
    check_server: super::no_server_check,
    connect,
    repo: crate::repo::EngineRules {
        schema: crate::repo::SchemaSource::Json,
        needs_path: false,
        dev_url: false,
        default_naming: crate::repo::DEFAULT_KEYVALUE_NAMING,
    },
    check_offline: super::no_offline_check,
};

fn connect(
    server: &Server,
) -> super::BoxFuture<'_, Result<std::sync::Arc<dyn Engine>, EngineError>> {
    Box::pin(async move {
        Ok(std::sync::Arc::new(RedisEngine::new(server)?) as std::sync::Arc<dyn Engine>)
    })
}
