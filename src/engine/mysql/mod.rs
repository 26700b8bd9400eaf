//! MySQL and MariaDB: one database per tenant database on the server. The
//! declared model is built by running the blueprint in a scratch database
//! (`_tenantctl_scratch_*`, dropped afterwards) and reading it back exactly
//! as tenants are read. MySQL commits every DDL statement implicitly, so an
//! apply cannot be all or nothing: it holds `GET_LOCK` on the tenant
//! database, records its progress statement by statement in
//! `_tenantctl_history`, and a re-run plans again from the live state, so an
//! interrupted migration converges on the next run.

mod inspect;
mod migrate;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection as _, Executor, MySqlConnection};

use super::apply::{Applier, Atomicity, HistoryStore};
use super::sql_history::{Placeholders, SqlDialect, SqlHistory, run};
use super::{Connection, Engine, EngineError, HISTORY_TABLE, RESERVED_PREFIX, driver_message};
use crate::diff::Step;
use crate::model::{EngineKind, Schema};
use crate::repo::{Blueprint, Server, env};
use inspect::Flavor;

/// Quotes a MySQL identifier with backquotes, doubling embedded ones.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Quotes a MySQL string literal; backslashes are escaped too, because
/// MySQL treats them as escapes unless `NO_BACKSLASH_ESCAPES` is set.
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The longest database name MySQL accepts.
const MAX_DATABASE_LEN: usize = 64;

/// A MySQL or MariaDB server.
pub struct MysqlEngine {
    server: String,
    options: MySqlConnectOptions,
    connect_timeout: Duration,
    lock_timeout: Duration,
    statement_timeout: Option<Duration>,
    /// The server family, known once a declared model was built.
    flavor: OnceLock<Flavor>,
}

impl MysqlEngine {
    pub fn new(server: &Server) -> Result<Self, EngineError> {
        let url = server.resolved_url().map_err(EngineError::ServerConfig)?;
        let options = MySqlConnectOptions::from_str(&url)
            .map_err(|_| {
                EngineError::ServerConfig(format!(
                    "server {}: not a valid MySQL URL: {}",
                    server.name,
                    env::redact(&url)
                ))
            })?
            // `||` means what it means in the user's own client (OR by
            // default), in the blueprint as in the tenants. The driver's
            // other session settings stay: NO_ENGINE_SUBSTITUTION (an
            // unavailable ENGINE fails instead of silently becoming InnoDB),
            // time_zone '+00:00' and utf8mb4.
            .pipes_as_concat(false);
        Ok(Self {
            server: server.name.clone(),
            options,
            connect_timeout: server.connect_timeout,
            lock_timeout: server.lock_timeout,
            statement_timeout: server.statement_timeout,
            flavor: OnceLock::new(),
        })
    }

    /// The server family, known after the first connection (MariaDB's
    /// spellings until then, which MySQL ≥ 8.0.19 accepts too).
    fn flavor(&self) -> Flavor {
        self.flavor.get().copied().unwrap_or(Flavor::MariaDb)
    }

    /// A connection to `database`, or to the server when `None`.
    async fn connect(&self, database: Option<&str>) -> Result<MySqlConnection, EngineError> {
        let what = match database {
            Some(db) => format!("connecting to {db} on server {}", self.server),
            None => format!("connecting to server {}", self.server),
        };
        let mut conn = self
            .connect_raw(database)
            .await
            .map_err(EngineError::db(what))?;
        self.prepare_session(&mut conn).await?;
        Ok(conn)
    }

    async fn connect_raw(&self, database: Option<&str>) -> Result<MySqlConnection, sqlx::Error> {
        let mut options = self.options.clone();
        if let Some(db) = database {
            options = options.database(db);
        }
        super::connect_within(self.connect_timeout, options.connect()).await
    }

    /// Detects the server family and applies the server's statement timeout.
    /// The SQL mode is left at the server's default, so the scratch database
    /// and tenants are read under the same rules.
    async fn prepare_session(&self, conn: &mut MySqlConnection) -> Result<Flavor, EngineError> {
        // One server, one family: asked once per engine, not per tenant.
        let flavor = match self.flavor.get() {
            Some(f) => *f,
            None => {
                let f = Flavor::detect(conn).await?;
                let _ = self.flavor.set(f);
                f
            }
        };
        // MariaDB's max_statement_time covers every statement; MySQL's
        // max_execution_time only SELECTs, so it is not set there.
        if let (Some(limit), Flavor::MariaDb) = (self.statement_timeout, flavor) {
            conn.execute(
                format!("SET SESSION max_statement_time = {}", limit.as_secs_f64()).as_str(),
            )
            .await
            .map_err(EngineError::db("setting max_statement_time"))?;
        }
        Ok(flavor)
    }

    /// Connects straight to the tenant database (one connection when it
    /// exists); creates it first when it does not and `create` is set.
    async fn open_database(
        &self,
        database: &str,
        create: bool,
        defaults: &DatabaseDefaults,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        check_database_name(database)?;
        let what = format!("connecting to {database} on server {}", self.server);
        let mut conn = match self.connect_raw(Some(database)).await {
            Ok(conn) => conn,
            Err(e) if is_unknown_database(&e) => {
                if !create {
                    return Ok(None);
                }
                let mut server = self.connect(None).await?;
                server
                    .execute(
                        format!(
                            "CREATE DATABASE IF NOT EXISTS {}{}",
                            quote_ident(database),
                            defaults.clause()
                        )
                        .as_str(),
                    )
                    .await
                    .map_err(EngineError::db(format!("creating database {database}")))?;
                server.close().await.ok();
                self.connect_raw(Some(database))
                    .await
                    .map_err(EngineError::db(what))?
            }
            Err(e) => return Err(EngineError::db(what)(e)),
        };
        let flavor = self.prepare_session(&mut conn).await?;
        Ok(Some(Box::new(MysqlDatabase {
            conn,
            name: database.to_string(),
            flavor,
            lock_timeout: self.lock_timeout,
        })))
    }
}

/// 24 random bytes, hex: the password of a build user, used once.
fn random_password() -> Result<String, EngineError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::Other(format!("no randomness for a build password: {e}")))?;
    Ok(hex::encode(bytes))
}

impl MysqlEngine {
    /// What the connecting account lacks to create the build user, and how
    /// to grant it (docs/engines/mysql.md, "Accounts").
    fn builder_error(&self, doing: &str, e: &sqlx::Error) -> EngineError {
        EngineError::Other(format!(
            "server {}: {doing} failed: {}. Declared models are built in a scratch database by a user \
             created for the run and granted only that database: the connecting account needs \
             CREATE USER, and all privileges WITH GRANT OPTION on `{RESERVED_PREFIX}scratch_%`.* \
             (GRANT CREATE USER ON *.* TO <account>; \
             GRANT ALL PRIVILEGES ON `{RESERVED_PREFIX}scratch\\_%`.* TO <account> WITH GRANT OPTION), \
             or set dev_url to a server where it has them",
            self.server,
            driver_message(e)
        ))
    }
}

/// Error 1049 (ER_BAD_DB_ERROR): the database does not exist.
fn is_unknown_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
        .is_some_and(|m| m.number() == 1049)
}

/// A database's default character set and collation, from the blueprint's
/// `options: {charset, collation}`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct DatabaseDefaults {
    charset: Option<String>,
    collation: Option<String>,
}

impl DatabaseDefaults {
    /// Reads and checks the options of a MySQL blueprint.
    pub(crate) fn from_options(
        blueprint: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, EngineError> {
        let mut defaults = DatabaseDefaults::default();
        for (key, value) in options {
            check_option(key, value)
                .map_err(|e| EngineError::Other(format!("blueprint {blueprint}: {e}")))?;
            match key.as_str() {
                "charset" => defaults.charset = Some(value.to_lowercase()),
                _ => defaults.collation = Some(value.to_lowercase()),
            }
        }
        Ok(defaults)
    }

    /// ` CHARACTER SET x COLLATE y`, or nothing for the server's defaults.
    fn clause(&self) -> String {
        let charset = self.charset.clone().or_else(|| {
            self.collation
                .as_deref()
                .map(|c| inspect::charset_of(c).to_string())
        });
        let mut out = String::new();
        if let Some(cs) = charset {
            out.push_str(&format!(" CHARACTER SET {cs}"));
        }
        if let Some(co) = &self.collation {
            out.push_str(&format!(" COLLATE {co}"));
        }
        out
    }
}

/// Checks one `options:` entry of a MySQL blueprint: `charset` or
/// `collation`, with a name made of letters, digits and `_`.
pub(crate) fn check_option(key: &str, value: &str) -> Result<(), String> {
    if !matches!(key, "charset" | "collation") {
        return Err(format!(
            "unknown mysql option {key:?} (known: charset, collation)"
        ));
    }
    let valid = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "option {key}: {value:?} is not a character set or collation name"
        ));
    }
    Ok(())
}

fn check_database_name(name: &str) -> Result<(), EngineError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_DATABASE_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(EngineError::Other(format!(
            "{name:?} is not a valid MySQL database name for tenantctl (^[a-z0-9_]{{1,64}}$)"
        )))
    }
}

#[async_trait]
impl Engine for MysqlEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Mysql
    }

    async fn declared_schema(&self, blueprint: &Blueprint) -> Result<Schema, EngineError> {
        let defaults = DatabaseDefaults::from_options(&blueprint.name, &blueprint.options)?;
        let suffix: String = {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let seed = format!("{}:{}:{nanos}", blueprint.name, std::process::id());
            hex::encode(&Sha256::digest(seed.as_bytes())[..6])
        };
        // `_tenantctl_scratch_{blueprint}_{12 hex}`: at most 62 characters.
        let scratch = format!("{RESERVED_PREFIX}scratch_{}_{suffix}", blueprint.name);
        let mut server = self.connect(None).await?;
        server
            .execute(
                format!(
                    "CREATE DATABASE {}{}",
                    quote_ident(&scratch),
                    defaults.clause()
                )
                .as_str(),
            )
            .await
            .map_err(|e| {
                self.builder_error(&format!("creating the scratch database {scratch}"), &e)
            })?;
        // The blueprint runs as a user of this run only, granted nothing
        // but the scratch database: another database, DEFINER=root, files
        // and plugins are refused by the server itself.
        let builder = format!("{RESERVED_PREFIX}b_{suffix}");
        let password = random_password()?;
        let account = format!("{}@'%'", quote_literal(&builder));
        let create = format!(
            "CREATE USER {account} IDENTIFIED BY {}",
            quote_literal(&password)
        );
        let grant = format!(
            "GRANT ALL PRIVILEGES ON {}.* TO {account}",
            quote_ident(&scratch)
        );
        let result = match server.execute(create.as_str()).await {
            Err(e) => Err(self.builder_error(&format!("creating the build user {builder}"), &e)),
            Ok(_) => match server.execute(grant.as_str()).await {
                Err(e) => Err(self.builder_error(
                    &format!("granting {scratch} to the build user {builder}"),
                    &e,
                )),
                Ok(_) => {
                    self.build_in(&scratch, &builder, &password, blueprint)
                        .await
                }
            },
        };
        // Dropped whatever happened while building.
        let user_dropped = server
            .execute(format!("DROP USER IF EXISTS {account}").as_str())
            .await;
        let dropped = server
            .execute(format!("DROP DATABASE IF EXISTS {}", quote_ident(&scratch)).as_str())
            .await;
        server.close().await.ok();
        let schema = result?;
        user_dropped.map_err(EngineError::db(format!(
            "dropping the build user {builder}"
        )))?;
        dropped.map_err(EngineError::db(format!(
            "dropping the scratch database {scratch}"
        )))?;
        Ok(Schema::Sql(schema))
    }

    async fn list_databases(&self) -> Result<Vec<String>, EngineError> {
        let mut conn = self.connect(None).await?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') \
             ORDER BY SCHEMA_NAME",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(EngineError::db("listing databases"))?;
        conn.close().await.ok();
        Ok(names
            .into_iter()
            .filter(|n| !n.starts_with(RESERVED_PREFIX))
            .collect())
    }

    async fn open(
        &self,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        self.open_database(database, create, &DatabaseDefaults::default())
            .await
    }

    async fn open_for(
        &self,
        blueprint: &Blueprint,
        database: &str,
        create: bool,
    ) -> Result<Option<Box<dyn Connection>>, EngineError> {
        let defaults = DatabaseDefaults::from_options(&blueprint.name, &blueprint.options)?;
        self.open_database(database, create, &defaults).await
    }

    fn plan(&self, live: &Schema, declared: &Schema) -> Result<Vec<Step>, EngineError> {
        match (live, declared) {
            (Schema::Sql(live), Schema::Sql(declared)) => {
                migrate::plan(live, declared, self.flavor())
            }
            _ => Err(EngineError::WrongModel {
                engine: EngineKind::Mysql,
                expected: "SQL",
            }),
        }
    }
}

impl MysqlEngine {
    /// Runs the blueprint in the scratch database and reads it back.
    async fn build_in(
        &self,
        scratch: &str,
        user: &str,
        password: &str,
        blueprint: &Blueprint,
    ) -> Result<crate::model::SqlSchema, EngineError> {
        let mut conn = self
            .options
            .clone()
            .username(user)
            .password(password)
            .database(scratch)
            .connect()
            .await
            .map_err(EngineError::db(format!(
                "connecting to {scratch} as the build user {user} on server {}",
                self.server
            )))?;
        self.prepare_session(&mut conn).await?;
        // Tables may reference tables declared further down the file.
        conn.execute("SET SESSION foreign_key_checks = 0")
            .await
            .map_err(EngineError::db("preparing the scratch database"))?;
        for statement in &blueprint.statements {
            if let Err(e) = conn.execute(statement.text.as_str()).await {
                conn.close().await.ok();
                return Err(EngineError::at_statement(
                    blueprint,
                    statement,
                    format!(
                        "the MySQL server rejected this {}: {}",
                        statement.kind,
                        driver_message(&e)
                    ),
                ));
            }
        }
        let schema = inspect::inspect(&mut conn, scratch, self.flavor(), true).await;
        conn.close().await.ok();
        schema
    }
}

/// MySQL's history table; `completed` counts the statements run.
const HISTORY: SqlDialect = SqlDialect {
    placeholders: Placeholders::Question,
    columns: "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
              applied_at VARCHAR(64) NOT NULL, tenantctl_version VARCHAR(64) NOT NULL, \
              git_commit VARCHAR(64) NULL, blueprint VARCHAR(255) NOT NULL, \
              blueprint_hash VARCHAR(128) NOT NULL, schema_fingerprint VARCHAR(128) NOT NULL, \
              statements LONGTEXT NOT NULL, completed INT NOT NULL DEFAULT 0, \
              outcome TEXT NOT NULL, schema_json LONGTEXT NULL",
    table_options: " ENGINE=InnoDB",
    // MySQL cannot select from the table an UPDATE changes.
    newest: "ORDER BY id DESC LIMIT 1",
    counts_completed: true,
    exists: "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
};

/// One open tenant database.
struct MysqlDatabase {
    conn: MySqlConnection,
    name: String,
    flavor: Flavor,
    lock_timeout: Duration,
}

impl MysqlDatabase {
    /// The GET_LOCK name of this database (MySQL limits lock names to 64 characters).
    fn lock_name(&self) -> String {
        let name = format!("tenantctl.{}", self.name);
        if name.len() <= 64 {
            name
        } else {
            format!(
                "tenantctl.{}",
                hex::encode(&Sha256::digest(self.name.as_bytes())[..16])
            )
        }
    }
}

#[async_trait]
impl Applier for MysqlDatabase {
    /// MySQL commits every DDL statement implicitly.
    const ATOMICITY: Atomicity = Atomicity::PerStatement;

    async fn lock(&mut self) -> Result<(), EngineError> {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(self.lock_name())
            .bind(self.lock_timeout.as_secs_f64().ceil() as i64)
            .fetch_one(&mut self.conn)
            .await
            .map_err(EngineError::db(format!("locking {}", self.name)))?;
        match got {
            Some(1) => Ok(()),
            _ => Err(EngineError::LockTimeout {
                database: self.name.clone(),
                waited: self.lock_timeout,
            }),
        }
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(self.lock_name())
            .execute(&mut self.conn)
            .await
            .map_err(EngineError::db(format!("unlocking {}", self.name)))?;
        Ok(())
    }

    async fn introspect(&mut self) -> Result<Schema, EngineError> {
        Ok(Schema::Sql(
            inspect::inspect(&mut self.conn, &self.name, self.flavor, false).await?,
        ))
    }

    async fn execute(&mut self, statement: &str) -> Result<(), EngineError> {
        run(&mut self.conn, statement).await
    }

    fn history(&mut self) -> Box<dyn HistoryStore + '_> {
        let binds = vec![self.name.clone(), HISTORY_TABLE.into()];
        SqlHistory::new(&mut self.conn, &HISTORY, quote_ident(HISTORY_TABLE), binds)
    }
}

/// This engine, as the registry (`engine::REGISTRY`) lists it.
pub const DESCRIPTION: super::EngineDescription = super::EngineDescription {
    kind: EngineKind::Mysql,
    sql: true,
    fence: "sql",
    check_option,
    check_server: super::no_server_check,
    connect,
    repo: crate::repo::EngineRules {
        schema: crate::repo::SchemaSource::Sql(crate::sql::SqlDialect::Mysql),
        needs_path: false,
        dev_url: true,
        default_naming: crate::repo::DEFAULT_NAMING,
    },
    check_offline: super::no_offline_check,
};

fn connect(
    server: &Server,
) -> super::BoxFuture<'_, Result<std::sync::Arc<dyn Engine>, EngineError>> {
    Box::pin(async move {
        Ok(std::sync::Arc::new(MysqlEngine::new(server)?) as std::sync::Arc<dyn Engine>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_cannot_be_escaped() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_literal("it's \\"), "'it''s \\\\'");
    }

    #[test]
    fn blueprint_options_are_checked() {
        let mut options = BTreeMap::new();
        options.insert("collation".to_string(), "utf8mb4_unicode_ci".to_string());
        let d = DatabaseDefaults::from_options("b", &options).unwrap();
        assert_eq!(
            d.clause(),
            " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        );
        options.insert("charset".to_string(), "utf8mb4; DROP".to_string());
        assert!(DatabaseDefaults::from_options("b", &options).is_err());
        let mut unknown = BTreeMap::new();
        unknown.insert("engine".to_string(), "x".to_string());
        assert!(DatabaseDefaults::from_options("b", &unknown).is_err());
    }

    #[test]
    fn database_names_are_checked() {
        assert!(check_database_name("users__acme").is_ok());
        assert!(check_database_name("a`b").is_err());
        assert!(check_database_name(&"a".repeat(65)).is_err());
    }
}
