//! Where the manual-sync guard keeps its history: in memory, and (against a real Moneyhub) in a
//! JSON file under the state directory, so that separate invocations share it: a second
//! `moneyhub connections sync` within 30 minutes is refused before anything is sent, and
//! `doctor` knows which connections this client already retried.
//!
//! The file is `$MONEYHUB_STATE_DIR`, else `$XDG_STATE_HOME/moneyhub`, else
//! `~/.local/state/moneyhub` (Unix, macOS included), `%LOCALAPPDATA%\moneyhub` on Windows, then
//! `guard-<hash of identity URL and client id>.json`.
//!
//! The rules and the records are the client's [`MemoryGuardStore`]; the file only persists
//! them. Every change is a read-modify-write of the whole file under an exclusive lock on the
//! file itself (`File::lock`), so processes started at the same instant take turns: two
//! `moneyhub connections sync` of one connection let exactly one through. The file is rewritten
//! in place while locked (a rename would swap the locked file for another); a crash in the
//! middle of a write leaves it unreadable, which the next run reports and treats as an empty
//! history (Moneyhub's own throttle still applies). Waiting for the lock blocks the calling
//! thread; the lock is held for one read and one write.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, Utc};
use moneyhub::guard::{GuardRecord, GuardStore, MemoryGuardStore};
use moneyhub::ConnectionId;

/// The CLI's [`GuardStore`]: a [`MemoryGuardStore`], persisted to a locked file when it has one.
#[derive(Debug)]
pub struct CliGuardStore {
    path: Option<PathBuf>,
    memory: MemoryGuardStore,
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

/// The records in `bytes`, without syncs older than a day or passed not-before times; empty
/// (with a warning) when they cannot be read.
fn parse(path: &Path, bytes: &[u8]) -> HashMap<ConnectionId, GuardRecord> {
    if bytes.is_empty() {
        return HashMap::new();
    }
    let now = Utc::now();
    match serde_json::from_slice::<HashMap<ConnectionId, GuardRecord>>(bytes) {
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
    }
}

impl CliGuardStore {
    /// A store kept in memory only.
    pub fn memory() -> Self {
        CliGuardStore { path: None, memory: MemoryGuardStore::new() }
    }

    /// A store persisted under the state directory for this identity service and client
    /// (memory only when there is no state directory).
    pub fn persistent(identity_url: &str, client_id: &str) -> Self {
        let Some(dir) = state_dir() else { return Self::memory() };
        let path = dir.join(format!("guard-{:016x}.json", fnv(&format!("{identity_url}\n{client_id}"))));
        CliGuardStore { path: Some(path), memory: MemoryGuardStore::new() }
    }

    /// Runs `work` on the in-memory store loaded from the file, under the file's lock
    /// (exclusive when `write`, and then the store is written back before the lock is let
    /// go). Without a file, or when the file cannot be opened (a warning says so), `work`
    /// runs on the in-memory store alone.
    fn locked<R>(&self, write: bool, work: impl FnOnce(&MemoryGuardStore) -> R) -> R {
        let Some(path) = &self.path else { return work(&self.memory) };
        let mut file = match open_locked(path, write) {
            Ok(file) => file,
            Err(e) => {
                crate::output::warn(&format!(
                    "moneyhub: could not open the sync history {}: {e}",
                    path.display()
                ));
                return work(&self.memory);
            }
        };
        let mut bytes = Vec::new();
        if let Err(e) = file.read_to_end(&mut bytes) {
            crate::output::warn(&format!(
                "moneyhub: could not read the sync history {}: {e}",
                path.display()
            ));
        }
        self.memory.replace(parse(path, &bytes));
        let outcome = work(&self.memory);
        if write {
            let saved = serde_json::to_vec_pretty(&self.memory.records())
                .map_err(std::io::Error::other)
                .and_then(|json| {
                    file.set_len(0)?;
                    file.seek(SeekFrom::Start(0))?;
                    file.write_all(&json)?;
                    file.sync_data()
                });
            if let Err(e) = saved {
                crate::output::warn(&format!(
                    "moneyhub: could not save the sync history to {}: {e}",
                    path.display()
                ));
            }
        }
        // Dropping the file lets the lock go.
        drop(file);
        outcome
    }
}

/// The history file, created when missing (mode 0600 on Unix), locked (exclusively to write,
/// shared to read). It is never opened through a symbolic link: one planted at its path is
/// refused with a message saying so (and `O_NOFOLLOW` closes the race between that check and
/// the open), so its target is never overwritten. An existing file that others may read is
/// narrowed to 0600.
fn open_locked(path: &Path, write: bool) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("it is a symbolic link, which is never followed (remove it)"));
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        let file = options.open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other("it is not a regular file"));
        }
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        lock(file, write)
    }
    #[cfg(not(unix))]
    lock(options.open(path)?, write)
}

fn lock(file: File, write: bool) -> std::io::Result<File> {
    if write {
        file.lock()?;
    } else {
        file.lock_shared()?;
    }
    Ok(file)
}

/// `mirror run --auto-sync`: the guard's records live in the mirror's database (shared by
/// every process of that mirror) instead of the state file. Set once, before the client is
/// built; every [`CliGuardStore`] of the process then uses it.
#[cfg(feature = "mirror")]
static MIRROR_GUARD: std::sync::OnceLock<std::sync::Arc<moneyhub_mirror::DbGuardStore>> =
    std::sync::OnceLock::new();

/// Keeps this process's guard records in a mirror's database (see `MIRROR_GUARD`).
#[cfg(feature = "mirror")]
pub fn use_mirror_database(store: moneyhub_mirror::DbGuardStore) {
    let _ = MIRROR_GUARD.set(std::sync::Arc::new(store));
}

#[cfg(feature = "mirror")]
fn mirror_guard() -> Option<&'static moneyhub_mirror::DbGuardStore> {
    MIRROR_GUARD.get().map(|s| &**s)
}

#[cfg(not(feature = "mirror"))]
fn mirror_guard() -> Option<&'static MemoryGuardStore> {
    None
}

impl GuardStore for CliGuardStore {
    async fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        if let Some(db) = mirror_guard() {
            return db.load(connection_id).await;
        }
        let id = connection_id.clone();
        self.locked(false, move |memory| memory.update_now(&id, |record| (None, record)))
    }

    async fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        if let Some(db) = mirror_guard() {
            return db.save(connection_id, record).await;
        }
        self.locked(true, |memory| memory.update_now(connection_id, |_| (Some(record), ())))
    }

    async fn update<R, F>(&self, connection_id: &ConnectionId, change: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(GuardRecord) -> (Option<GuardRecord>, R) + Send + 'static,
    {
        if let Some(db) = mirror_guard() {
            return db.update(connection_id, change).await;
        }
        self.locked(true, |memory| memory.update_now(connection_id, change))
    }
}
