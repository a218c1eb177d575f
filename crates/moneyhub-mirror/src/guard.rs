//! The client's manual-sync guard, persisted in the mirror's database, so that several
//! processes and restarts share the history of manual syncs.
//!
//! Every change is one database transaction ([`GuardStore::update`]): SQLite's write lock, or
//! a PostgreSQL advisory lock per connection, is held from the read to the write, so guards in
//! several processes sharing the database cannot both let a sync of one connection through.
//!
//! [`GuardStore`] is a synchronous trait called from async code, so the store runs the
//! database calls on a dedicated thread with its own runtime and waits for the answer
//! (bounded by a timeout). On a database error it logs a warning and answers an empty
//! record (the guard then lets the sync through, and Moneyhub's own throttling still
//! applies).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use moneyhub::guard::{DefaultSyncGuard, GuardRules};
//! let store = moneyhub_mirror::DbGuardStore::open("sqlite:mirror.db")?;
//! let client = moneyhub::Client::builder()
//!     .client_id("id")
//!     .client_auth(moneyhub::ClientAuth::secret("secret"))
//!     .sync_guard(DefaultSyncGuard::with_store(GuardRules::default(), store))
//!     .build()?;
//! # Ok(()) }
//! ```

use std::sync::mpsc;
use std::time::Duration;

use moneyhub::guard::{GuardRecord, GuardStore};
use moneyhub::ConnectionId;

use crate::db::Db;
use crate::error::{Error, Result};

/// How long a guard call waits for the database.
const WAIT: Duration = Duration::from_secs(10);

enum Request {
    Load(String, mpsc::Sender<Result<Option<String>>>),
    Save(String, Option<String>, mpsc::Sender<Result<()>>),
    /// An update: the store thread sends the current record, then waits for the decision
    /// (`None`: no change, `Some(None)`: delete) inside the transaction, then sends the result.
    Update(String, mpsc::Sender<UpdateStep>, mpsc::Receiver<Option<Option<String>>>),
}

/// What the store thread tells an updating caller.
enum UpdateStep {
    Current(Option<String>),
    Done(Result<()>),
}

/// A [`GuardStore`] in the mirror's database (table `mirror_guard`).
#[derive(Debug)]
pub struct DbGuardStore {
    tx: parking_lot::Mutex<mpsc::Sender<Request>>,
}

impl DbGuardStore {
    /// Opens the database at `url` (the mirror's URL) for the store, on a dedicated thread
    /// with its own runtime and connections, so guard calls never wait on the caller's
    /// runtime. The thread ends when the store is dropped.
    pub fn open(url: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let (ready_tx, ready) = mpsc::channel::<Result<()>>();
        let url = url.to_owned();
        std::thread::Builder::new()
            .name("mirror-guard-store".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::task(format!("guard store runtime: {e}"))));
                        return;
                    }
                };
                let db = match runtime.block_on(Db::open(&url)) {
                    Ok(db) => {
                        let _ = ready_tx.send(Ok(()));
                        db
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(req) = rx.recv() {
                    match req {
                        Request::Load(id, reply) => {
                            let _ = reply.send(runtime.block_on(db.guard_load(&id)));
                        }
                        Request::Save(id, record, reply) => {
                            let _ = reply.send(runtime.block_on(db.guard_save(&id, record)));
                        }
                        Request::Update(id, steps, decision) => {
                            let current = steps.clone();
                            let change = move |record| {
                                let _ = current.send(UpdateStep::Current(record));
                                // A caller that gave up (timed out) has dropped its sender:
                                // no change.
                                decision.recv_timeout(WAIT).ok().flatten()
                            };
                            let _ =
                                steps.send(UpdateStep::Done(runtime.block_on(db.guard_update(&id, change))));
                        }
                    }
                }
            })
            .map_err(Error::Io)?;
        ready.recv().map_err(|_| Error::task("the guard store thread ended while opening"))??;
        Ok(DbGuardStore { tx: parking_lot::Mutex::new(tx) })
    }

    fn send(&self, req: Request) -> bool {
        self.tx.lock().send(req).is_ok()
    }
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
    fn load(&self, connection_id: &ConnectionId) -> GuardRecord {
        let (reply, answer) = mpsc::channel();
        if !self.send(Request::Load(connection_id.as_str().to_owned(), reply)) {
            tracing::warn!("guard store thread is gone; treating the record as empty");
            return GuardRecord::default();
        }
        match answer.recv_timeout(WAIT) {
            Ok(Ok(json)) => decode(connection_id, json),
            Ok(Err(e)) => {
                tracing::warn!(connection = %connection_id, error = %e, "guard record could not be read; treating as empty");
                GuardRecord::default()
            }
            Err(_) => {
                tracing::warn!(connection = %connection_id, "guard record read timed out; treating as empty");
                GuardRecord::default()
            }
        }
    }

    fn save(&self, connection_id: &ConnectionId, record: GuardRecord) {
        let json = match encode(&record) {
            Ok(json) => json,
            Err(e) => {
                tracing::warn!(error = %e, "guard record does not encode");
                return;
            }
        };
        let (reply, answer) = mpsc::channel();
        if !self.send(Request::Save(connection_id.as_str().to_owned(), json, reply)) {
            tracing::warn!("guard store thread is gone; record not saved");
            return;
        }
        match answer.recv_timeout(WAIT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(connection = %connection_id, error = %e, "guard record not saved"),
            Err(_) => tracing::warn!(connection = %connection_id, "guard record save timed out"),
        }
    }

    fn update(
        &self,
        connection_id: &ConnectionId,
        change: &mut dyn FnMut(GuardRecord) -> Option<GuardRecord>,
    ) {
        let (steps_tx, steps) = mpsc::channel();
        let (decide, decision) = mpsc::channel();
        if !self.send(Request::Update(connection_id.as_str().to_owned(), steps_tx, decision)) {
            tracing::warn!("guard store thread is gone; treating the record as empty, not saving");
            change(GuardRecord::default());
            return;
        }
        let current = match steps.recv_timeout(WAIT) {
            Ok(UpdateStep::Current(json)) => json,
            Ok(UpdateStep::Done(Err(e))) => {
                tracing::warn!(connection = %connection_id, error = %e, "guard record could not be read; treating as empty, not saving");
                change(GuardRecord::default());
                return;
            }
            Ok(UpdateStep::Done(Ok(()))) | Err(_) => {
                tracing::warn!(connection = %connection_id, "guard record read timed out; treating as empty, not saving");
                change(GuardRecord::default());
                return;
            }
        };
        let decided = change(decode(connection_id, current)).and_then(|record| match encode(&record) {
            Ok(json) => Some(json),
            Err(e) => {
                tracing::warn!(error = %e, "guard record does not encode");
                None
            }
        });
        let _ = decide.send(decided);
        match steps.recv_timeout(WAIT) {
            Ok(UpdateStep::Done(Ok(()))) => {}
            Ok(UpdateStep::Done(Err(e))) => {
                tracing::warn!(connection = %connection_id, error = %e, "guard record not saved")
            }
            Ok(UpdateStep::Current(_)) | Err(_) => {
                tracing::warn!(connection = %connection_id, "guard record save timed out")
            }
        }
    }
}
