//! The lease lock of engines without a native session lock (MongoDB, Redis):
//! a record holding a random token and an expiry, taken only when absent or
//! expired and released only by its owner, so a holder that died frees the
//! tenant after [`LEASE`]. Acquiring polls until the server's lock timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::EngineError;

/// How long a lease lives if its holder dies without releasing it.
pub const LEASE: Duration = Duration::from_secs(600);
/// How often a waiting apply asks again.
const POLL: Duration = Duration::from_millis(200);

/// Where an engine keeps its lease record.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease for `token` for `lease` unless a live holder has it;
    /// `false` when it is held.
    async fn try_take(&self, token: &str, lease: Duration) -> Result<bool, EngineError>;

    /// Deletes the lease if it still holds `token`.
    async fn release(&self, token: &str) -> Result<(), EngineError>;
}

/// A held lease; released by [`LeaseLock::unlock`], or in the background
/// when dropped without it (an error or a cancelled apply).
pub struct LeaseGuard {
    store: Arc<dyn LeaseStore>,
    token: String,
    released: bool,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let (store, token) = (self.store.clone(), std::mem::take(&mut self.token));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.release(&token).await;
            });
        }
    }
}

/// The lease lock of one tenant database.
pub struct LeaseLock {
    store: Arc<dyn LeaseStore>,
    database: String,
    timeout: Duration,
    held: Option<LeaseGuard>,
}

impl LeaseLock {
    /// The lock of `database` kept in `store`, waiting at most `timeout`.
    pub fn new(store: Arc<dyn LeaseStore>, database: &str, timeout: Duration) -> Self {
        Self {
            store,
            database: database.to_string(),
            timeout,
            held: None,
        }
    }

    /// Takes the lease, polling until `timeout`.
    pub async fn lock(&mut self) -> Result<(), EngineError> {
        let token = new_token();
        let started = Instant::now();
        while !self.store.try_take(&token, LEASE).await? {
            if started.elapsed() >= self.timeout {
                return Err(EngineError::LockTimeout {
                    database: self.database.clone(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
        self.held = Some(LeaseGuard {
            store: self.store.clone(),
            token,
            released: false,
        });
        Ok(())
    }

    /// Releases the lease if this lock holds it.
    pub async fn unlock(&mut self) -> Result<(), EngineError> {
        let Some(mut guard) = self.held.take() else {
            return Ok(());
        };
        guard.released = true;
        self.store.release(&guard.token).await
    }
}

/// A token unique to this process, time and call.
fn new_token() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{}:{}:{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    );
    hex::encode(&Sha256::digest(seed.as_bytes())[..12])
}
