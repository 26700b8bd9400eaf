//! The physical identity of each tenant database: which server (engine,
//! normalised host and port, or SQLite file) and which database, schema or key
//! prefix on it. Two targets with the same identity would share one database —
//! each apply dropping the other's objects — so loading refuses them, naming
//! both, as it refuses names past an engine's limit (a PostgreSQL server
//! silently truncates names at 63 bytes, so two long names could meet).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Component, Path, PathBuf};

use super::{Server, Tenant, env};
use crate::diagnostic::Diagnostic;
use crate::model::EngineKind;

/// PostgreSQL truncates identifiers (database and schema names) past 63 bytes.
pub const POSTGRES_MAX_NAME_BYTES: usize = 63;
/// MySQL and MariaDB refuse database names over 64 characters.
pub const MYSQL_MAX_NAME_CHARS: usize = 64;
/// MongoDB database names must be shorter than 64 bytes.
pub const MONGODB_MAX_NAME_BYTES: usize = 63;
/// SQLite files are `NAME.db`; most file systems allow 255 bytes per name.
pub const SQLITE_MAX_NAME_BYTES: usize = 255 - ".db".len();

/// Where a server is, normalised so that two spellings of one server compare
/// equal: `engine://host:port` with the engine's default port, host in lower
/// case, loopback names as `localhost`; a SQLite server's canonical directory.
/// A URL whose `${VAR}`s are not set is compared as its unexpanded template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A network server (or, MongoDB, a sorted set of hosts).
    Network(String),
    /// A SQLite directory.
    Directory(PathBuf),
    /// A URL template with unset variables, compared as written.
    Template(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Network(n) => f.write_str(n),
            Endpoint::Directory(d) => write!(f, "{}", d.display()),
            Endpoint::Template(t) => f.write_str(&env::redact(t)),
        }
    }
}

/// The physical identity of one tenant database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub engine: EngineKind,
    pub endpoint: Endpoint,
    /// What names the database on the server: the database name, the schema
    /// inside `tenant_schemas_in`'s database (`db/schema`), the Redis ACL user
    /// and key prefix, the SQLite file name.
    pub place: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.engine {
            EngineKind::Postgres if self.place.contains('/') => "PostgreSQL schema",
            EngineKind::Postgres => "PostgreSQL database",
            EngineKind::Mysql => "MySQL database",
            EngineKind::Sqlite => "SQLite file",
            EngineKind::Mongodb => "MongoDB database",
            EngineKind::Redis => "Redis ACL user and key prefix",
        };
        write!(f, "{what} {} on {}", self.place, self.endpoint)
    }
}

/// The engine's default port.
fn default_port(engine: EngineKind) -> Option<u16> {
    match engine {
        EngineKind::Postgres => Some(5432),
        EngineKind::Mysql => Some(3306),
        EngineKind::Mongodb => Some(27017),
        EngineKind::Redis => Some(6379),
        EngineKind::Sqlite => None,
    }
}

/// `localhost`, `127.0.0.0/8`, `::1`, `::ffff:127.0.0.1` and the unspecified
/// `0.0.0.0`/`::` (which connect to the local machine) are the same machine.
/// IPv4 addresses are read as the resolver reads them (`127.1`, `0x7f.1`,
/// `2130706433` are `127.0.0.1`), so no spelling of one address looks like
/// another server.
fn normal_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    let lower = lower.trim_end_matches('.');
    let ip = lower
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| match url::Host::parse(lower) {
            Ok(url::Host::Ipv4(v4)) => Some(v4.into()),
            Ok(url::Host::Ipv6(v6)) => Some(v6.into()),
            _ => None,
        })
        .map(|ip| ip.to_canonical());
    match ip {
        Some(ip) if ip.is_loopback() || ip.is_unspecified() => "localhost".into(),
        Some(ip) => ip.to_string(),
        None if lower == "localhost" || lower.ends_with(".localhost") => "localhost".into(),
        None => lower.to_string(),
    }
}

/// `host:port` of one parsed URL; the `host=`/`port=` (PostgreSQL) or
/// `socket=` (MySQL) query parameters win over the authority, as in the drivers.
fn host_port(engine: EngineKind, url: &url::Url) -> String {
    let mut host = url.host_str().map(normal_host).unwrap_or_default();
    let mut port = url.port().or(default_port(engine));
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "host" | "socket" if !value.is_empty() => {
                host = if value.starts_with('/') {
                    value.trim_end_matches('/').to_string()
                } else {
                    normal_host(&value)
                }
            }
            "port" => port = value.parse().ok().or(port),
            _ => {}
        }
    }
    if host.is_empty() && url.scheme().contains("unix") {
        return url.path().to_string();
    }
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// The normalised endpoint of a server.
pub fn endpoint(server: &Server) -> Endpoint {
    if let Some(path) = &server.path {
        return Endpoint::Directory(canonical_dir(path));
    }
    let Some(template) = &server.url else {
        return Endpoint::Template(String::new());
    };
    let Ok(expanded) = env::expand_env(template) else {
        return Endpoint::Template(template.clone());
    };
    let engine = server.engine;
    let scheme = engine.as_str();
    if engine == EngineKind::Mongodb {
        // A seed list `h1:27017,h2` is not one URL authority: parse each host.
        let rest = expanded.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let srv = expanded.starts_with("mongodb+srv:");
        let mut normal: Vec<String> = hosts
            .split(',')
            .map(|h| match url::Url::parse(&format!("mongodb://{h}")) {
                Ok(u) if srv => u.host_str().map(normal_host).unwrap_or_default(),
                Ok(u) => host_port(engine, &u),
                Err(_) => h.to_ascii_lowercase(),
            })
            .collect();
        normal.sort();
        normal.dedup();
        let scheme = if srv { "mongodb+srv" } else { scheme };
        return Endpoint::Network(format!("{scheme}://{}", normal.join(",")));
    }
    match url::Url::parse(&expanded) {
        Ok(u) => Endpoint::Network(format!("{scheme}://{}", host_port(engine, &u))),
        Err(_) => Endpoint::Template(template.clone()),
    }
}

/// `path` made absolute and free of `.`/`..`, through symlinks where it exists
/// (the directory may not be created yet).
fn canonical_dir(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut normal = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    // Resolve symlinks in the longest existing ancestor.
    let mut existing = normal.clone();
    let mut missing = Vec::new();
    while !existing.exists() {
        match existing.file_name() {
            Some(name) => {
                missing.push(name.to_os_string());
                existing.pop();
            }
            None => return normal,
        }
    }
    let mut resolved = existing.canonicalize().unwrap_or(existing);
    resolved.extend(missing.iter().rev());
    resolved
}

/// The connecting user of a server's URL, when it names one.
fn url_user(server: &Server) -> Option<String> {
    let expanded = env::expand_env(server.url.as_deref()?).ok()?;
    let url = url::Url::parse(&expanded).ok()?;
    let user = percent_encoding::percent_decode_str(url.username())
        .decode_utf8_lossy()
        .into_owned();
    (!user.is_empty()).then_some(user)
}

/// The identity of database `database` on `server`.
pub fn identity(server: &Server, database: &str) -> Identity {
    let place = match (server.engine, &server.tenant_schemas_in) {
        (EngineKind::Postgres, Some(shared)) => format!("{shared}/{database}"),
        (EngineKind::Sqlite, _) => format!("{database}.db"),
        _ => database.to_string(),
    };
    Identity {
        engine: server.engine,
        endpoint: endpoint(server),
        place,
    }
}

/// Why `database` cannot be a database of `server`'s engine, if it cannot.
pub fn check_limits(server: &Server, database: &str) -> Option<String> {
    let too_long = |limit: usize, unit: &str, what: &str| {
        format!(
            "{what} {database:?} is {} {unit} long; the limit is {limit}: shorten the tenant or blueprint name, or the blueprint's `naming`",
            if unit == "bytes" {
                database.len()
            } else {
                database.chars().count()
            }
        )
    };
    match server.engine {
        EngineKind::Postgres if database.len() > POSTGRES_MAX_NAME_BYTES => Some(format!(
            "{} (PostgreSQL would silently truncate it, and two tenants could share the truncated name)",
            too_long(
                POSTGRES_MAX_NAME_BYTES,
                "bytes",
                if server.tenant_schemas_in.is_some() {
                    "PostgreSQL schema name"
                } else {
                    "PostgreSQL database name"
                }
            )
        )),
        EngineKind::Mysql if database.chars().count() > MYSQL_MAX_NAME_CHARS => Some(too_long(
            MYSQL_MAX_NAME_CHARS,
            "characters",
            "MySQL database name",
        )),
        EngineKind::Mongodb if database.len() > MONGODB_MAX_NAME_BYTES => Some(too_long(
            MONGODB_MAX_NAME_BYTES,
            "bytes",
            "MongoDB database name",
        )),
        EngineKind::Sqlite if database.len() > SQLITE_MAX_NAME_BYTES => Some(too_long(
            SQLITE_MAX_NAME_BYTES,
            "bytes",
            "SQLite file name",
        )),
        EngineKind::Redis if database == "default" => Some(
            "a Redis tenant database cannot be named `default`: that is Redis's own default user, which every client without credentials connects as; change the tenant name or the blueprint's `naming`".into(),
        ),
        EngineKind::Redis if url_user(server).as_deref() == Some(database) => Some(format!(
            "Redis tenant database {database:?} is the user server {} connects as: applying would rewrite tenantctl's own ACL user",
            server.name
        )),
        _ => None,
    }
}

/// Checks every tenant database: names within the engine's limits and no two
/// with the same [`Identity`]; each collision names both tenants, their
/// blueprints and where they are declared.
pub(super) fn check(
    servers: &BTreeMap<String, Server>,
    tenants: &[Tenant],
    diags: &mut Vec<Diagnostic>,
) {
    let mut seen: BTreeMap<Identity, (&Tenant, &str, &str)> = BTreeMap::new();
    // The databases holding PostgreSQL tenant schemas are no tenant's database.
    let shared: BTreeMap<Identity, &str> = servers
        .values()
        .filter(|s| s.engine == EngineKind::Postgres)
        .filter_map(|s| {
            let db = s.tenant_schemas_in.as_ref()?;
            let id = Identity {
                engine: s.engine,
                endpoint: endpoint(s),
                place: db.clone(),
            };
            Some((id, s.name.as_str()))
        })
        .collect();
    for tenant in tenants {
        for db in &tenant.databases {
            let Some(server) = servers.get(&db.server) else {
                continue;
            };
            let at = |message: String| {
                Diagnostic::new(
                    &tenant.file,
                    tenant.position.line,
                    tenant.position.column,
                    message,
                )
            };
            if let Some(problem) = check_limits(server, &db.database) {
                diags.push(at(format!(
                    "tenant {:?}, blueprint {}: {problem}",
                    tenant.name, db.blueprint
                )));
                continue;
            }
            let id = identity(server, &db.database);
            if let Some(holder) = shared.get(&id) {
                diags.push(at(format!(
                    "tenant {:?} (blueprint {}, server {}): the {id} is where server {holder} keeps its tenant schemas (`tenant_schemas_in`); give it another name, `naming` or server",
                    tenant.name, db.blueprint, db.server
                )));
                continue;
            }
            match seen.entry(id) {
                Entry::Vacant(slot) => {
                    slot.insert((tenant, &db.blueprint, &db.server));
                }
                Entry::Occupied(first) => {
                    let id = first.key();
                    let (other, other_bp, other_server) = *first.get();
                    diags.push(at(format!(
                        "tenant {:?} (blueprint {}, server {}) and tenant {:?} (blueprint {}, server {}, {}:{}:{}) are the same {id}: each apply would change the other's; give them different names, `naming` or servers",
                        tenant.name,
                        db.blueprint,
                        db.server,
                        other.name,
                        other_bp,
                        other_server,
                        other.file.display(),
                        other.position.line,
                        other.position.column,
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server(engine: EngineKind, url: &str) -> Server {
        Server {
            name: "s".into(),
            engine,
            url: Some(url.into()),
            dev_url: None,
            path: None,
            max_connections: 1,
            lock_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            statement_timeout: None,
            concurrent_indexes: None,
            tenant_schemas_in: None,
        }
    }

    #[test]
    fn spellings_of_one_server_are_one_endpoint() {
        let pg = |u: &str| endpoint(&server(EngineKind::Postgres, u));
        let a = pg("postgres://u:p@localhost/db");
        assert_eq!(a, pg("postgresql://other@127.0.0.1:5432/x"));
        assert_eq!(a, pg("postgres://LOCALHOST:5432"));
        assert_eq!(a, pg("postgres://[::1]/"));
        assert_ne!(a, pg("postgres://localhost:5433/db"));
        assert_ne!(a, pg("postgres://db.example.com/db"));
        let my = |u: &str| endpoint(&server(EngineKind::Mysql, u));
        assert_eq!(my("mysql://root:x@h"), my("mysql://h:3306/db"));
        let mongo = |u: &str| endpoint(&server(EngineKind::Mongodb, u));
        assert_eq!(
            mongo("mongodb://u:p@b:27017,a/?replicaSet=r"),
            mongo("mongodb://a:27017,b")
        );
        let redis = |u: &str| endpoint(&server(EngineKind::Redis, u));
        // ACL users are server-wide: the database number does not separate them.
        assert_eq!(redis("redis://h/1"), redis("redis://:pw@h:6379/2"));
    }

    #[test]
    fn unset_variables_compare_as_templates() {
        let s = server(EngineKind::Postgres, "${TENANTCTL_SURELY_UNSET_VAR}");
        assert_eq!(
            endpoint(&s),
            Endpoint::Template("${TENANTCTL_SURELY_UNSET_VAR}".into())
        );
    }

    #[test]
    fn limits_per_engine() {
        let pg = server(EngineKind::Postgres, "postgres://h/db");
        assert!(check_limits(&pg, &"a".repeat(63)).is_none());
        assert!(check_limits(&pg, &"a".repeat(64)).unwrap().contains("63"));
        let my = server(EngineKind::Mysql, "mysql://h");
        assert!(check_limits(&my, &"a".repeat(64)).is_none());
        assert!(check_limits(&my, &"a".repeat(65)).is_some());
        let redis = server(EngineKind::Redis, "redis://admin:pw@h");
        assert!(check_limits(&redis, "default").is_some());
        assert!(check_limits(&redis, "admin").is_some());
        assert!(check_limits(&redis, "acme").is_none());
    }

    #[test]
    fn sqlite_directories_are_canonical() {
        let dir = tempfile::tempdir().unwrap();
        let a = canonical_dir(&dir.path().join("dbs"));
        let b = canonical_dir(&dir.path().join("x/../dbs/."));
        assert_eq!(a, b);
    }
}
