//! A PostgreSQL wire-protocol relay that records every statement a client
//! sends, per database: the test points tenantctl at it instead of the
//! server and reads back what reached the server (a simple `Query`, or an
//! `Execute` of a parsed statement, each counts as one statement). Plain
//! TCP only: the URL it hands out says `sslmode=disable`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The statements seen so far: database → statement texts, in order.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A running relay to one server.
pub struct StatementLog {
    port: u16,
    seen: Seen,
}

impl StatementLog {
    /// Relays `127.0.0.1:{port}` to `upstream` (`host:port`) until the test ends.
    pub fn start(upstream: &str) -> StatementLog {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay binds");
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let upstream = upstream.to_string();
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let log = log.clone();
                std::thread::spawn(move || relay(client, server, log));
            }
        });
        StatementLog { port, seen }
    }

    /// `url` (a `postgres://` URL) pointed at the relay, without TLS.
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        format!(
            "{scheme}://{}127.0.0.1:{}/{path}?sslmode=disable",
            userinfo.unwrap_or_default(),
            self.port
        )
    }

    /// The statements sent to `database` so far.
    pub fn statements(&self, database: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(db, _)| db == database)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

fn relay(mut client: TcpStream, server: TcpStream, seen: Seen) {
    let mut to_client = client.try_clone().unwrap();
    let mut from_server = server.try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let mut to_server = server;
    let _ = watch(&mut client, &mut to_server, &seen);
    let _ = to_server.shutdown(Shutdown::Both);
}

/// Forwards the client's messages, noting the statements among them.
fn watch(client: &mut TcpStream, server: &mut TcpStream, seen: &Seen) -> io::Result<()> {
    // Startup messages carry no type byte; SSL/GSS requests precede the real one.
    let database = loop {
        let body = untagged(client)?;
        server.write_all(&(body.len() as u32 + 4).to_be_bytes())?;
        server.write_all(&body)?;
        let code = u32::from_be_bytes(body[..4].try_into().unwrap());
        if code == 80_877_103 || code == 80_877_104 {
            continue;
        }
        let fields: Vec<String> = body[4..]
            .split(|b| *b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let db = fields
            .chunks(2)
            .find(|kv| kv[0] == "database")
            .and_then(|kv| kv.get(1).cloned());
        let user = fields
            .chunks(2)
            .find(|kv| kv[0] == "user")
            .and_then(|kv| kv.get(1).cloned());
        break db.or(user).unwrap_or_default();
    };
    let mut parsed: HashMap<String, String> = HashMap::new();
    let mut bound = String::new();
    loop {
        let mut tag = [0u8; 1];
        client.read_exact(&mut tag)?;
        let body = untagged(client)?;
        server.write_all(&tag)?;
        server.write_all(&(body.len() as u32 + 4).to_be_bytes())?;
        server.write_all(&body)?;
        let strings: Vec<String> = body
            .split(|b| *b == 0)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        match tag[0] {
            b'Q' => seen
                .lock()
                .unwrap()
                .push((database.clone(), strings[0].clone())),
            b'P' => {
                parsed.insert(strings[0].clone(), strings[1].clone());
            }
            b'B' => bound = parsed.get(&strings[1]).cloned().unwrap_or_default(),
            b'E' => seen.lock().unwrap().push((database.clone(), bound.clone())),
            b'X' => return Ok(()),
            _ => {}
        }
    }
}

/// One length-prefixed message body (the length itself not included).
fn untagged(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    stream.read_exact(&mut body)?;
    Ok(body)
}
