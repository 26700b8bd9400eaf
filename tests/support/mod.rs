//! The test harness shared by the integration tests: which real servers
//! are reachable (skip, or under `CI=true` fail, when one is not) and names
//! unique to a run, so parallel runs never share a database.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The URL in `var`, or `None` (after a skip notice) when it is unset
/// outside CI. Under `CI=true` a missing server fails the test.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set and CI=true: run scripts/services.sh up and export its env")
        }
        _ => {
            eprintln!("skipping: {var} is not set (scripts/services.sh env prints it)");
            None
        }
    }
}

/// A name unique to this test run: `prefix` plus a random-ish suffix, valid
/// as a tenant name (lowercase, at most 24 characters).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let suffix = format!("{:x}{:x}{n}", std::process::id() % 0xfff, nanos % 0xfffff);
    let mut name = format!("{prefix}_{suffix}");
    name.truncate(24);
    name
}
