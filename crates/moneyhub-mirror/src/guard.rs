//! The client's manual-sync guard, persisted in the mirror's database, so that several
//! processes and restarts share the history of manual syncs.
//!
//! [`GuardStore`] is async, and the store calls the database on the caller's runtime. Every
//! change is one database transaction ([`GuardStore::update`]): SQLite's write lock, or a
//! PostgreSQL advisory lock per connection, is held from the read to the write, so guards in
//! several processes sharing the database cannot both let a sync of one connection through.
//! On a database error the store logs a warning and answers an empty record without saving
//! (the guard then lets the sync through, and Moneyhub's own throttling still applies): the
//! contract of [`GuardStore`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use moneyhub::guard::{DefaultSyncGuard, GuardRules};
//! let store = moneyhub_mirror::DbGuardStore::open("sqlite:mirror.db").await?;
//! let client = moneyhub::Client::builder()
//!     .client_id("id")
//!     .client_auth(moneyhub::ClientAuth::secret("secret"))
//!     .sync_guard(DefaultSyncGuard::with_store(GuardRules::default(), store))
//!     .build()?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use moneyhub::guard::{GuardRecord, GuardStore};
use moneyhub::ConnectionId;

use crate::db::Db;
use crate::error::Result;

/// A [`GuardStore`] in the mirror's database (table `mirror_guard`).
#[derive(Debug)]
pub struct DbGuardStore {
    db: Db,
}

impl DbGuardStore {
    /// Opens the database at `url` (the mirror's URL) for the store, with its own connections.
    pub async fn open(url: &str) -> Result<Self> {
        Ok(DbGuardStore { db: Db::open(url).await? })
    }
}

/// Where an update's `change` is: not run yet, or run with this outcome.
enum Step<F, R> {
    Pending(F),
    Done(R),
}

/// A stored record, or an empty one (with a warning) when it cannot be read.
fn decode(connection_id: &ConnectionId, json: Option<String>) -> GuardRecord {
    let Some(json) = json else { return GuardRecord::default() };
    serde_json::from_str(&json).unwrap_or_else(|e| {
        tracing::warn!(connection = %connection_id, error = %e, "stored guard record unreadable; treating as empty");
        GuardRecord::default()
    })
}

/// What to store for a record: `None` deletes the row of an empty one.
fn encode(record: &GuardRecord) -> Result<Option<String>, serde_json::Error> {
    if *record == GuardRecord::default() {
        Ok(None)
    } else {
        serde_json::to_string(record).map(Some)
    }
}

impl GuardStore for DbGuardStore {
    async fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        match self.db.guard_load(connection_id.as_str()).await {
            Ok(json) => decode(connection_id, json),
            Err(e) => {
                tracing::warn!(connection = %connection_id, error = %e, "guard record could not be read; treating as empty");
                GuardRecord::default()
            }
        }
    }

    async fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        let json = match encode(&record) {
            Ok(json) => json,
            Err(e) => {
                tracing::warn!(error = %e, "guard record does not encode");
                return;
            }
        };
        if let Err(e) = self.db.guard_save(connection_id.as_str(), json).await {
            tracing::warn!(connection = %connection_id, error = %e, "guard record not saved");
        }
    }

    async fn update<R, F>(&self, connection_id: &ConnectionId, change: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(GuardRecord) -> (Option<GuardRecord>, R) + Send + 'static,
    {
        // The database runs `change` inside its transaction (on its own terms: it must be
        // 'static); the outcome comes back through `step`.
        let step = Arc::new(parking_lot::Mutex::new(Some(Step::Pending(change))));
        let (inside, id) = (step.clone(), connection_id.clone());
        let stored = self
            .db
            .guard_update(connection_id.as_str(), move |json| {
                let mut step = inside.lock();
                let Some(Step::Pending(change)) = step.take() else { return None };
                let (record, outcome) = change(decode(&id, json));
                *step = Some(Step::Done(outcome));
                record.and_then(|record| match encode(&record) {
                    Ok(json) => Some(json),
                    Err(e) => {
                        tracing::warn!(error = %e, "guard record does not encode");
                        None
                    }
                })
            })
            .await;
        if let Err(e) = stored {
            tracing::warn!(connection = %connection_id, error = %e, "guard record not read or not saved");
        }
        let last = step.lock().take();
        match last {
            Some(Step::Done(outcome)) => outcome,
            // Never run: the record could not be read. An empty one, and nothing is saved.
            Some(Step::Pending(change)) => change(GuardRecord::default()).1,
            None => unreachable!("`change` runs under the step's lock and always leaves its outcome"),
        }
    }
}
