//! Where the manual-sync guard keeps its history: in memory, and (against a real Moneyhub) in a
//! JSON file under the state directory, so that separate invocations share it: a second
//! `moneyhub connections sync` within 30 minutes is refused before anything is sent, and
//! `doctor` knows which connections this client already retried.
//!
//! The file is `$MONEYHUB_STATE_DIR`, else `$XDG_STATE_HOME/moneyhub`, else
//! `~/.local/state/moneyhub` (Unix, macOS included), `%LOCALAPPDATA%\moneyhub` on Windows, then `guard-<hash of identity URL and client id>.json`. It is
//! rewritten whole (write to a temporary file, then rename) on every change; two processes
//! syncing at the same instant may lose one record, never corrupt the file.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use moneyhub::guard::{GuardRecord, GuardStore};
use moneyhub::ConnectionId;
use parking_lot::Mutex;

/// The CLI's [`GuardStore`].
#[derive(Debug)]
pub struct CliGuardStore {
    path: Option<PathBuf>,
    records: Mutex<HashMap<ConnectionId, GuardRecord>>,
}

/// The state directory, if one can be found.
pub fn state_dir() -> Option<PathBuf> {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("MONEYHUB_STATE_DIR") {
        return Some(d);
    }
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().ok()?;
    // XDG has a state directory; Windows has none, and local (not roaming) data is its place.
    let base = strategy.state_dir().unwrap_or_else(|| strategy.cache_dir());
    Some(base.join("moneyhub"))
}

/// FNV-1a, for a stable file name per (identity URL, client id).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl CliGuardStore {
    /// A store kept in memory only.
    pub fn memory() -> Self {
        CliGuardStore { path: None, records: Mutex::new(HashMap::new()) }
    }

    /// A store persisted under the state directory for this identity service and client,
    /// loaded now (records older than a day are dropped). Falls back to memory, with a
    /// warning, when the file cannot be read.
    pub fn persistent(identity_url: &str, client_id: &str, now: DateTime<Utc>) -> Self {
        let Some(dir) = state_dir() else { return Self::memory() };
        let path = dir.join(format!("guard-{:016x}.json", fnv(&format!("{identity_url}\n{client_id}"))));
        let records = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<HashMap<ConnectionId, GuardRecord>>(&bytes) {
                Ok(mut map) => {
                    map.retain(|_, r| {
                        r.manual_syncs.retain(|t| now - *t < Duration::days(1));
                        r.not_before = r.not_before.filter(|nb| *nb > now);
                        !r.manual_syncs.is_empty() || r.not_before.is_some()
                    });
                    map
                }
                Err(e) => {
                    crate::output::warn(&format!(
                        "moneyhub: ignoring the unreadable sync history {}: {e}",
                        path.display()
                    ));
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        };
        CliGuardStore { path: Some(path), records: Mutex::new(records) }
    }

    /// The last manual sync recorded for a connection.
    pub fn last_manual_sync(&self, connection_id: &ConnectionId) -> Option<DateTime<Utc>> {
        self.records.lock().get(connection_id).and_then(|r| r.manual_syncs.iter().max().copied())
    }

    fn persist(&self, records: &HashMap<ConnectionId, GuardRecord>) {
        let Some(path) = &self.path else { return };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
            std::fs::write(&tmp, serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            crate::output::warn(&format!(
                "moneyhub: could not save the sync history to {}: {e}",
                path.display()
            ));
        }
    }
}

impl GuardStore for CliGuardStore {
    fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        self.records.lock().get(connection_id).cloned().unwrap_or_default()
    }

    fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        let mut records = self.records.lock();
        if record == GuardRecord::default() {
            records.remove(connection_id);
        } else {
            records.insert(connection_id.clone(), record);
        }
        self.persist(&records);
    }
}
