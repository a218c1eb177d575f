//! Group commit of the receiver's inbox writes.
//!
//! Each webhook used to be its own transaction and its own fsync; under load the disk's
//! sync rate capped the receiver. Now a verified webhook is queued, and a committer writes
//! everything queued in one transaction (one fsync) and then answers each webhook of the
//! batch with its own outcome. A webhook is answered `200` only after the commit that holds
//! it returned; when that commit fails, every webhook of the batch is answered `503` (none
//! of them is stored: the transaction rolled back), and the sender's retry stores it later.
//!
//! * **Committers**: a committer is a task spawned by the request that found none running
//!   (so it lives on the receiver's runtime and finishes its batch even when the request
//!   that started it goes away); it takes what is queued, commits, answers, and repeats
//!   until the queue is empty. One runs at a time ([`COMMITTERS`]), on both backends:
//!   SQLite has one writer, and on PostgreSQL a second committer only splits the queue into
//!   smaller batches, each paying the statement's and the commit's fixed cost in the server
//!   (measured with `BACKFILL=0 bench/fleet.sh`, 2 cores, server on the same host: 1
//!   committer 11,457–13,521 acks/s, p99 2.2–2.7 ms; 2 committers 8,773–9,798/s; 4
//!   committers 8,213–8,510/s). A server further away makes each commit longer, and the
//!   batches grow with it (up to `MAX_BATCH`).
//! * **Bounds**: a batch holds at most `MAX_BATCH` (512) webhooks and `MAX_BATCH_BYTES` (16 MiB) of
//!   bodies. The queue holds at most one webhook per request in flight, so it is bounded by
//!   the receiver's connection cap times its body limit.
//! * **Gathering**: under a steady load the webhooks one commit answers come back together
//!   (their senders send the next ones), a few hundred microseconds apart; the first of them
//!   would start a commit of one while the others wait a whole sync behind it, and batches
//!   would alternate between one and the rest. So a committer that finds fewer webhooks
//!   queued than its previous batch held waits for that many, at most [`GATHER_MAX`] (and
//!   never longer than half its previous commit took): it costs at most one short wait when
//!   the load drops (the next batch is as small as what arrived), and nothing at a trickle
//!   (a batch of one waits for one).
//! * **Replays in one batch**: the first copy of a webhook id is written; later copies are
//!   answered as its duplicates once it is stored (the same as a replay arriving after it).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::db::{Db, NewInboxEvent};

/// Most webhooks per transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Most body bytes per transaction (a batch always takes at least one webhook).
pub(crate) const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Committers running at once (see "Committers" in the module docs).
pub(crate) const COMMITTERS: usize = 1;
/// Longest a committer waits for a batch as large as its previous one.
pub(crate) const GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(1);

/// The outcome of one queued webhook: stored (`true`), already stored (`false`), or the
/// commit failed (the message).
pub(crate) type Outcome = std::result::Result<bool, String>;

struct Queued {
    event: NewInboxEvent,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct State {
    queue: std::collections::VecDeque<Queued>,
    /// Committers running.
    running: usize,
    /// The queue length a gathering committer waits for (0: none waits).
    want: usize,
    /// The last batch's size and commit time (see "Gathering" in the module docs).
    previous: (usize, std::time::Duration),
}

/// The receiver's group committer.
pub(crate) struct GroupCommit {
    db: Db,
    state: Arc<Mutex<State>>,
    /// Woken when the queue reaches what a gathering committer waits for.
    gathered: Arc<tokio::sync::Notify>,
}

impl GroupCommit {
    pub(crate) fn new(db: Db) -> GroupCommit {
        GroupCommit {
            db,
            state: Arc::new(Mutex::new(State::default())),
            gathered: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Stores `event` with whatever else is queued; returns once the commit holding it
    /// returned.
    pub(crate) async fn insert(&self, event: NewInboxEvent) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let spawn = {
            let mut s = self.state.lock();
            s.queue.push_back(Queued { event, reply });
            if s.want > 0 && s.queue.len() >= s.want {
                s.want = 0;
                self.gathered.notify_waiters();
            }
            if s.running < COMMITTERS {
                s.running += 1;
                true
            } else {
                false
            }
        };
        if spawn {
            let db = self.db.clone();
            let state = self.state.clone();
            tokio::spawn(commit_loop(db, state, self.gathered.clone()));
        }
        answer.await.unwrap_or_else(|_| Err("the committer ended before answering".to_owned()))
    }
}

/// Takes batches until the queue is empty.
async fn commit_loop(db: Db, state: Arc<Mutex<State>>, gathered: Arc<tokio::sync::Notify>) {
    // Ends the committer's turn if a commit panics (the task is gone, its batch answered
    // `503` through the dropped senders).
    struct Running(Arc<Mutex<State>>, bool);
    impl Drop for Running {
        fn drop(&mut self) {
            if self.1 {
                let mut s = self.0.lock();
                s.running = s.running.saturating_sub(1);
            }
        }
    }
    let mut guard = Running(state.clone(), true);
    loop {
        let woken = gathered.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let wait = {
            let mut s = state.lock();
            let (size, took) = s.previous;
            let wait = took.checked_div(2).unwrap_or_default().min(GATHER_MAX);
            let short = !s.queue.is_empty() && s.queue.len() < size && !wait.is_zero();
            if short {
                s.want = size;
            }
            short.then_some(wait)
        };
        if let Some(wait) = wait {
            let _ = tokio::time::timeout(wait, woken).await;
            state.lock().want = 0;
        }
        let batch = {
            let mut s = state.lock();
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while let Some(next) = s.queue.front() {
                let size = next.event.body.len();
                if !batch.is_empty()
                    && (batch.len() >= MAX_BATCH || bytes.saturating_add(size) > MAX_BATCH_BYTES)
                {
                    break;
                }
                bytes = bytes.saturating_add(size);
                batch.extend(s.queue.pop_front());
            }
            if batch.is_empty() {
                // Decided under the lock: a webhook queued after this sees one fewer
                // committer and starts its own.
                s.running = s.running.saturating_sub(1);
                guard.1 = false;
                return;
            }
            batch
        };
        let (n, started) = (batch.len(), std::time::Instant::now());
        commit(&db, batch).await;
        state.lock().previous = (n, started.elapsed());
    }
}

/// Writes one batch and answers each webhook in it.
async fn commit(db: &Db, batch: Vec<Queued>) {
    // The first copy of each webhook id is written; the others wait for its outcome.
    let mut first: HashMap<String, usize> = HashMap::new();
    let mut events = Vec::with_capacity(batch.len());
    let mut replies: Vec<(oneshot::Sender<Outcome>, Vec<oneshot::Sender<Outcome>>)> = Vec::new();
    for q in batch {
        match first.get(q.event.webhook_id.as_str()) {
            Some(&i) => replies[i].1.push(q.reply),
            None => {
                first.insert(q.event.webhook_id.as_str().to_owned(), events.len());
                events.push(q.event);
                replies.push((q.reply, Vec::new()));
            }
        }
    }
    match db.insert_inbox_batch(events).await {
        Ok(stored) => {
            for ((reply, copies), stored) in replies.into_iter().zip(stored) {
                let _ = reply.send(Ok(stored));
                for c in copies {
                    let _ = c.send(Ok(false));
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            tracing::error!(error = %message, "a batch of webhooks could not be stored");
            for (reply, copies) in replies {
                let _ = reply.send(Err(message.clone()));
                for c in copies {
                    let _ = c.send(Err(message.clone()));
                }
            }
        }
    }
}
