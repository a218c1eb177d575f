//! Versioned schema migrations, one list per backend with the same tables and columns.
//!
//! Version 2 adds `mirror_users_due`, the claim queue: one row per user with pending
//! events (see the `db` module docs for the claiming pattern), filled from the pending
//! events already stored.
//!
//! Version 3 adds the indexes retention and metrics read through: applied events by
//! application time, parked events, ledger rows by application time.
//!
//! Version 4 adds the lifecycle loop's tables (connection states, their history, the
//! notification outbox).
//!
//! Version 5 (`inbox_raw`) drops `mirror_inbox.envelope`: the inbox keeps only the verified
//! body as delivered, which the processor reads the envelope from
//! (`moneyhub::webhooks::read_verified`). Rows stored before keep their body, so they read
//! the same. (SQLite rewrites the table; PostgreSQL only marks the column dropped.) It also
//! adds `mirror_inbox_counts`, the inbox's counts by state and the ledger's, kept by triggers
//! in the transactions that change them, so that `/metrics` and `mirror status` read a few
//! rows instead of counting the inbox: on SQLite one row (one writer); on PostgreSQL one
//! delta row per changing statement (inserts never wait on each other), which the workers
//! fold into one every few seconds (`Db::compact_counts`); a read sums what is there.
//!
//! Version 6 adds the indexes the lifecycle retention reads through: removed connections,
//! parked notifications by age and by connection.
//!
//! Version 7 (`user_figures`) keeps the figures `mirror status` shows per user, so that it
//! never counts history (a fleet holds hundreds of millions of transaction rows):
//! `mirror_users.live`, `.tombstones` and `.connections`, refreshed by the claim that changed
//! them, in its own transaction, by a count over that user's rows only (through
//! `mirror_transactions_user`, the new partial index of tombstones
//! `mirror_transactions_tombstones`, and `mirror_connections_user`); `mirror_users_due.pending`
//! and `.last_event_ms`, kept by the receiver in the statement that queues the user (plus the
//! count of events stored, the newest arrival), and set again from the user's pending events
//! (their partial index) by the claim that ends the row's turn; `mirror_users.last_event_ms`,
//! where that claim carries the newest arrival before the queue row may go. Not triggers on
//! `mirror_transactions`: a trigger runs per row of the backfill, the hot path, where a count
//! per claim runs once per user's transaction. Not columns the receiver writes in
//! `mirror_users`: on PostgreSQL a claim holds that row's lock while it works (API requests
//! included), and the receiver must never wait for a claim; the queue row it writes is locked
//! by a claim only for the moment it ends its turn. The migration computes the figures of
//! existing databases once (a scan of each table, at upgrade only).
//!
//! Version 8 (`transactions_by_user`) rebuilds `mirror_transactions` with the key
//! `(user_id, id)` in place of `id`: a user's rows sit together in the key, so a backfill
//! (one user at a time) writes into one place of it instead of a random place of an `id`
//! index, and the `(user_id, id)` index the key replaces goes (one B-tree fewer per row).
//! On SQLite the table is `WITHOUT ROWID`, the key is the table itself. Transaction ids are
//! unique across users at Moneyhub, so the key changes no answer; every statement that
//! names a row says its user. Measured side by side on this project's 2-core machines:
//! SQLite (`bench/sqlite_key.py`: 1,000,000 rows of 200 users, 5,000 per transaction, WAL,
//! `synchronous=NORMAL`) 92,355 rows/s against 34,813 for the version-7 table with its `id`
//! key and four indexes, counting a user's rows (the kept figures) 1.23 ms against 0.61 ms;
//! PostgreSQL (`bench/pg_key.sh`: 550,000 rows of 100 users, 5,000 per upsert, two rounds)
//! 84,428 and 96,811 rows/s against 66,292 and 59,310. Both rebuild the table (rename,
//! create, copy, drop), so that a repair re-creates it as the last migration left it; on
//! PostgreSQL the old key's index is renamed first, its name being the new key's. PostgreSQL's key columns compare bytes
//! (`COLLATE "C"`), as SQLite's do: the pages of an export are in the key's own order
//! whatever the database's collation, so each page is a range of the key, not a sort of the
//! table.
//!
//! Each migration runs once, in order, in a transaction that also records it in
//! `mirror_migrations`; opening a database whose recorded version is newer than this build
//! knows is refused.

/// `(version, name, SQL)`.
pub type Migration = (i64, &'static str, &'static str);

/// SQLite migrations.
#[cfg(feature = "sqlite")]
pub const SQLITE: &[Migration] = &[
    (
        1,
        "initial",
        r#"
CREATE TABLE mirror_users (
    user_id       TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE mirror_inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    body         BLOB NOT NULL,
    content_type TEXT NOT NULL,
    signed       INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    applied_ms   INTEGER
);
CREATE INDEX mirror_inbox_pending ON mirror_inbox (user_id, seq, received_ms) WHERE state = 0;
CREATE TABLE mirror_applied_events (
    webhook_id TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    worker     TEXT NOT NULL,
    applied_ms INTEGER NOT NULL
);
CREATE TABLE mirror_connections (
    connection_id      TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    name               TEXT,
    status             TEXT,
    first_seen_ms      INTEGER NOT NULL,
    backfilled         INTEGER NOT NULL DEFAULT 0,
    watermark_ms       INTEGER,
    last_full_ms       INTEGER,
    last_reconciled_ms INTEGER,
    removed            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_connections_user ON mirror_connections (user_id);
CREATE TABLE mirror_accounts (
    account_id    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    removed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_accounts_user ON mirror_accounts (user_id);
CREATE TABLE mirror_transactions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    account_id    TEXT,
    connection_id TEXT,
    date_ms       INTEGER NOT NULL,
    modified_ms   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    raw           TEXT NOT NULL,
    updated_ms    INTEGER NOT NULL
);
CREATE INDEX mirror_transactions_user ON mirror_transactions (user_id, id);
CREATE INDEX mirror_transactions_account ON mirror_transactions (account_id, date_ms);
CREATE INDEX mirror_transactions_connection ON mirror_transactions (connection_id);
CREATE TABLE mirror_guard (
    connection_id TEXT PRIMARY KEY,
    record        TEXT NOT NULL,
    updated_ms    INTEGER NOT NULL
);
"#,
    ),
    (
        2,
        "users_due",
        r#"
CREATE TABLE mirror_users_due (
    user_id            TEXT PRIMARY KEY,
    due_at_ms          INTEGER NOT NULL,
    oldest_pending_seq INTEGER NOT NULL,
    oldest_pending_ms  INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_users_due_at ON mirror_users_due (due_at_ms, oldest_pending_seq);
INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts)
SELECT i.user_id, MAX(MIN(i.received_ms), COALESCE(MAX(u.not_before_ms), 0)), MIN(i.seq), MIN(i.received_ms), 0
FROM mirror_inbox i LEFT JOIN mirror_users u ON u.user_id = i.user_id
WHERE i.state = 0 GROUP BY i.user_id;
"#,
    ),
    (
        3,
        "retention",
        r#"
CREATE INDEX mirror_inbox_applied ON mirror_inbox (applied_ms) WHERE state = 1;
CREATE INDEX mirror_inbox_parked ON mirror_inbox (user_id) WHERE state = 2;
CREATE INDEX mirror_applied_events_at ON mirror_applied_events (applied_ms);
"#,
    ),
    (
        4,
        "lifecycle",
        r#"
CREATE TABLE mirror_lifecycle (
    connection_id TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    action        TEXT,
    status        TEXT,
    error         TEXT,
    removed       INTEGER NOT NULL DEFAULT 0,
    due_ms        INTEGER,
    state         TEXT NOT NULL
);
CREATE INDEX mirror_lifecycle_due ON mirror_lifecycle (due_ms) WHERE due_ms IS NOT NULL;
CREATE INDEX mirror_lifecycle_user ON mirror_lifecycle (user_id, connection_id);
CREATE TABLE mirror_lifecycle_history (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id   TEXT NOT NULL,
    entered_ms      INTEGER NOT NULL,
    status          TEXT,
    error           TEXT,
    extended_status TEXT,
    action          TEXT
);
CREATE INDEX mirror_lifecycle_history_connection ON mirror_lifecycle_history (connection_id, id);
CREATE TABLE mirror_outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    connection_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    state         INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       INTEGER NOT NULL,
    lease_ms      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX mirror_outbox_pending ON mirror_outbox (connection_id, seq) WHERE state = 0;
CREATE INDEX mirror_outbox_next ON mirror_outbox (next_ms, seq) WHERE state = 0;
"#,
    ),
    (
        5,
        "inbox_raw",
        concat!(
            "ALTER TABLE mirror_inbox DROP COLUMN envelope;\n",
            r#"
CREATE TABLE mirror_inbox_counts (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    pending  INTEGER NOT NULL,
    retrying INTEGER NOT NULL,
    applied  INTEGER NOT NULL,
    parked   INTEGER NOT NULL,
    ledger   INTEGER NOT NULL
);
INSERT INTO mirror_inbox_counts (id, pending, retrying, applied, parked, ledger)
SELECT 0, COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 0 AND attempts > 0), 0), COALESCE(SUM(state = 1), 0),
       COALESCE(SUM(state = 2), 0), (SELECT COUNT(*) FROM mirror_applied_events)
FROM mirror_inbox;
CREATE TRIGGER mirror_inbox_counts_insert AFTER INSERT ON mirror_inbox BEGIN
    UPDATE mirror_inbox_counts SET pending = pending + (NEW.state = 0),
        retrying = retrying + (NEW.state = 0 AND NEW.attempts > 0), applied = applied + (NEW.state = 1),
        parked = parked + (NEW.state = 2) WHERE id = 0;
END;
CREATE TRIGGER mirror_inbox_counts_delete AFTER DELETE ON mirror_inbox BEGIN
    UPDATE mirror_inbox_counts SET pending = pending - (OLD.state = 0),
        retrying = retrying - (OLD.state = 0 AND OLD.attempts > 0), applied = applied - (OLD.state = 1),
        parked = parked - (OLD.state = 2) WHERE id = 0;
END;
CREATE TRIGGER mirror_inbox_counts_update AFTER UPDATE OF state, attempts ON mirror_inbox BEGIN
    UPDATE mirror_inbox_counts SET pending = pending + (NEW.state = 0) - (OLD.state = 0),
        retrying = retrying + (NEW.state = 0 AND NEW.attempts > 0) - (OLD.state = 0 AND OLD.attempts > 0),
        applied = applied + (NEW.state = 1) - (OLD.state = 1),
        parked = parked + (NEW.state = 2) - (OLD.state = 2) WHERE id = 0;
END;
CREATE TRIGGER mirror_ledger_counts_insert AFTER INSERT ON mirror_applied_events BEGIN
    UPDATE mirror_inbox_counts SET ledger = ledger + 1 WHERE id = 0;
END;
CREATE TRIGGER mirror_ledger_counts_delete AFTER DELETE ON mirror_applied_events BEGIN
    UPDATE mirror_inbox_counts SET ledger = ledger - 1 WHERE id = 0;
END;
"#
        ),
    ),
    (
        6,
        "lifecycle_retention",
        r#"
CREATE INDEX mirror_lifecycle_removed ON mirror_lifecycle (connection_id) WHERE removed = 1;
CREATE INDEX mirror_outbox_parked ON mirror_outbox (created_ms) WHERE state = 2;
CREATE INDEX mirror_outbox_parked_connection ON mirror_outbox (connection_id) WHERE state = 2;
"#,
    ),
    (
        7,
        "user_figures",
        r#"
ALTER TABLE mirror_users ADD COLUMN live INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN connections INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN last_event_ms INTEGER;
ALTER TABLE mirror_users_due ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mirror_users_due ADD COLUMN last_event_ms INTEGER;
CREATE INDEX mirror_transactions_tombstones ON mirror_transactions (user_id) WHERE deleted <> 0;
UPDATE mirror_users SET live = t.live, tombstones = t.dead
FROM (SELECT user_id, SUM(deleted = 0) AS live, SUM(deleted <> 0) AS dead FROM mirror_transactions GROUP BY user_id) AS t
WHERE t.user_id = mirror_users.user_id;
UPDATE mirror_users SET connections = c.n
FROM (SELECT user_id, COUNT(*) AS n FROM mirror_connections WHERE removed = 0 GROUP BY user_id) AS c
WHERE c.user_id = mirror_users.user_id;
UPDATE mirror_users SET last_event_ms = i.last
FROM (SELECT user_id, MAX(received_ms) AS last FROM mirror_inbox GROUP BY user_id) AS i
WHERE i.user_id = mirror_users.user_id;
UPDATE mirror_users_due SET pending = p.n
FROM (SELECT user_id, COUNT(*) AS n FROM mirror_inbox WHERE state = 0 GROUP BY user_id) AS p
WHERE p.user_id = mirror_users_due.user_id;
"#,
    ),
    (
        8,
        "transactions_by_user",
        r#"
ALTER TABLE mirror_transactions RENAME TO mirror_transactions_v7;
DROP INDEX IF EXISTS mirror_transactions_user;
CREATE TABLE mirror_transactions (
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    account_id    TEXT,
    connection_id TEXT,
    date_ms       INTEGER NOT NULL,
    modified_ms   INTEGER NOT NULL,
    status        TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    raw           TEXT NOT NULL,
    updated_ms    INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
INSERT INTO mirror_transactions
    (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms
FROM mirror_transactions_v7;
DROP TABLE mirror_transactions_v7;
CREATE INDEX mirror_transactions_account ON mirror_transactions (account_id, date_ms);
CREATE INDEX mirror_transactions_connection ON mirror_transactions (connection_id);
CREATE INDEX mirror_transactions_tombstones ON mirror_transactions (user_id) WHERE deleted <> 0;
"#,
    ),
];

/// PostgreSQL migrations.
#[cfg(feature = "postgres")]
pub const POSTGRES: &[Migration] = &[
    (
        1,
        "initial",
        r#"
CREATE TABLE mirror_users (
    user_id       TEXT PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    not_before_ms BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE mirror_inbox (
    seq          BIGSERIAL PRIMARY KEY,
    webhook_id   TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    envelope     TEXT NOT NULL,
    body         BYTEA NOT NULL,
    content_type TEXT NOT NULL,
    signed       INTEGER NOT NULL,
    received_ms  BIGINT NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    applied_ms   BIGINT
);
CREATE INDEX mirror_inbox_pending ON mirror_inbox (user_id, seq, received_ms) WHERE state = 0;
CREATE TABLE mirror_applied_events (
    webhook_id TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    worker     TEXT NOT NULL,
    applied_ms BIGINT NOT NULL
);
CREATE TABLE mirror_connections (
    connection_id      TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL,
    name               TEXT,
    status             TEXT,
    first_seen_ms      BIGINT NOT NULL,
    backfilled         INTEGER NOT NULL DEFAULT 0,
    watermark_ms       BIGINT,
    last_full_ms       BIGINT,
    last_reconciled_ms BIGINT,
    removed            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_connections_user ON mirror_connections (user_id);
CREATE TABLE mirror_accounts (
    account_id    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    removed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_accounts_user ON mirror_accounts (user_id);
CREATE TABLE mirror_transactions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    account_id    TEXT,
    connection_id TEXT,
    date_ms       BIGINT NOT NULL,
    modified_ms   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    raw           TEXT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
CREATE INDEX mirror_transactions_user ON mirror_transactions (user_id, id);
CREATE INDEX mirror_transactions_account ON mirror_transactions (account_id, date_ms);
CREATE INDEX mirror_transactions_connection ON mirror_transactions (connection_id);
CREATE TABLE mirror_guard (
    connection_id TEXT PRIMARY KEY,
    record        TEXT NOT NULL,
    updated_ms    BIGINT NOT NULL
);
"#,
    ),
    (
        2,
        "users_due",
        r#"
CREATE TABLE mirror_users_due (
    user_id            TEXT PRIMARY KEY,
    due_at_ms          BIGINT NOT NULL,
    oldest_pending_seq BIGINT NOT NULL,
    oldest_pending_ms  BIGINT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mirror_users_due_at ON mirror_users_due (due_at_ms, oldest_pending_seq);
INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms, attempts)
SELECT i.user_id, GREATEST(MIN(i.received_ms), COALESCE(MAX(u.not_before_ms), 0)), MIN(i.seq), MIN(i.received_ms), 0
FROM mirror_inbox i LEFT JOIN mirror_users u ON u.user_id = i.user_id
WHERE i.state = 0 GROUP BY i.user_id;
"#,
    ),
    (
        3,
        "retention",
        r#"
CREATE INDEX mirror_inbox_applied ON mirror_inbox (applied_ms) WHERE state = 1;
CREATE INDEX mirror_inbox_parked ON mirror_inbox (user_id) WHERE state = 2;
CREATE INDEX mirror_applied_events_at ON mirror_applied_events (applied_ms);
"#,
    ),
    (
        4,
        "lifecycle",
        r#"
CREATE TABLE mirror_lifecycle (
    connection_id TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    action        TEXT,
    status        TEXT,
    error         TEXT,
    removed       INTEGER NOT NULL DEFAULT 0,
    due_ms        BIGINT,
    state         TEXT NOT NULL
);
CREATE INDEX mirror_lifecycle_due ON mirror_lifecycle (due_ms) WHERE due_ms IS NOT NULL;
CREATE INDEX mirror_lifecycle_user ON mirror_lifecycle (user_id, connection_id);
CREATE TABLE mirror_lifecycle_history (
    id              BIGSERIAL PRIMARY KEY,
    connection_id   TEXT NOT NULL,
    entered_ms      BIGINT NOT NULL,
    status          TEXT,
    error           TEXT,
    extended_status TEXT,
    action          TEXT
);
CREATE INDEX mirror_lifecycle_history_connection ON mirror_lifecycle_history (connection_id, id);
CREATE TABLE mirror_outbox (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    connection_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    state         INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       BIGINT NOT NULL,
    lease_ms      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX mirror_outbox_pending ON mirror_outbox (connection_id, seq) WHERE state = 0;
CREATE INDEX mirror_outbox_next ON mirror_outbox (next_ms, seq) WHERE state = 0;
"#,
    ),
    (
        5,
        "inbox_raw",
        concat!(
            "ALTER TABLE mirror_inbox DROP COLUMN envelope;\n",
            r#"
CREATE TABLE mirror_inbox_counts (
    id       BIGSERIAL PRIMARY KEY,
    pending  BIGINT NOT NULL,
    retrying BIGINT NOT NULL,
    applied  BIGINT NOT NULL,
    parked   BIGINT NOT NULL,
    ledger   BIGINT NOT NULL
);
INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
SELECT COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 0 AND attempts > 0),
       COUNT(*) FILTER (WHERE state = 1), COUNT(*) FILTER (WHERE state = 2),
       (SELECT COUNT(*) FROM mirror_applied_events)
FROM mirror_inbox;
CREATE FUNCTION mirror_inbox_count() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
        SELECT COUNT(*) FILTER (WHERE state = 0), COUNT(*) FILTER (WHERE state = 0 AND attempts > 0),
               COUNT(*) FILTER (WHERE state = 1), COUNT(*) FILTER (WHERE state = 2), 0
        FROM mirror_new_rows HAVING COUNT(*) > 0;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
        SELECT -COUNT(*) FILTER (WHERE state = 0), -COUNT(*) FILTER (WHERE state = 0 AND attempts > 0),
               -COUNT(*) FILTER (WHERE state = 1), -COUNT(*) FILTER (WHERE state = 2), 0
        FROM mirror_old_rows HAVING COUNT(*) > 0;
    END IF;
    RETURN NULL;
END $f$;
CREATE FUNCTION mirror_ledger_count() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
        SELECT 0, 0, 0, 0, COUNT(*) FROM mirror_new_rows HAVING COUNT(*) > 0;
    ELSE
        INSERT INTO mirror_inbox_counts (pending, retrying, applied, parked, ledger)
        SELECT 0, 0, 0, 0, -COUNT(*) FROM mirror_old_rows HAVING COUNT(*) > 0;
    END IF;
    RETURN NULL;
END $f$;
CREATE TRIGGER mirror_inbox_counts_insert AFTER INSERT ON mirror_inbox
    REFERENCING NEW TABLE AS mirror_new_rows FOR EACH STATEMENT EXECUTE FUNCTION mirror_inbox_count();
CREATE TRIGGER mirror_inbox_counts_update AFTER UPDATE ON mirror_inbox
    REFERENCING OLD TABLE AS mirror_old_rows NEW TABLE AS mirror_new_rows FOR EACH STATEMENT EXECUTE FUNCTION mirror_inbox_count();
CREATE TRIGGER mirror_inbox_counts_delete AFTER DELETE ON mirror_inbox
    REFERENCING OLD TABLE AS mirror_old_rows FOR EACH STATEMENT EXECUTE FUNCTION mirror_inbox_count();
CREATE TRIGGER mirror_ledger_counts_insert AFTER INSERT ON mirror_applied_events
    REFERENCING NEW TABLE AS mirror_new_rows FOR EACH STATEMENT EXECUTE FUNCTION mirror_ledger_count();
CREATE TRIGGER mirror_ledger_counts_delete AFTER DELETE ON mirror_applied_events
    REFERENCING OLD TABLE AS mirror_old_rows FOR EACH STATEMENT EXECUTE FUNCTION mirror_ledger_count();
"#
        ),
    ),
    (
        6,
        "lifecycle_retention",
        r#"
CREATE INDEX mirror_lifecycle_removed ON mirror_lifecycle (connection_id) WHERE removed = 1;
CREATE INDEX mirror_outbox_parked ON mirror_outbox (created_ms) WHERE state = 2;
CREATE INDEX mirror_outbox_parked_connection ON mirror_outbox (connection_id) WHERE state = 2;
"#,
    ),
    (
        7,
        "user_figures",
        r#"
ALTER TABLE mirror_users ADD COLUMN live BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN tombstones BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN connections BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_users ADD COLUMN last_event_ms BIGINT;
ALTER TABLE mirror_users_due ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE mirror_users_due ADD COLUMN last_event_ms BIGINT;
CREATE INDEX mirror_transactions_tombstones ON mirror_transactions (user_id) WHERE deleted <> 0;
UPDATE mirror_users SET live = t.live, tombstones = t.dead
FROM (SELECT user_id, COUNT(*) FILTER (WHERE deleted = 0) AS live, COUNT(*) FILTER (WHERE deleted <> 0) AS dead
      FROM mirror_transactions GROUP BY user_id) AS t
WHERE t.user_id = mirror_users.user_id;
UPDATE mirror_users SET connections = c.n
FROM (SELECT user_id, COUNT(*) AS n FROM mirror_connections WHERE removed = 0 GROUP BY user_id) AS c
WHERE c.user_id = mirror_users.user_id;
UPDATE mirror_users SET last_event_ms = i.last
FROM (SELECT user_id, MAX(received_ms) AS last FROM mirror_inbox GROUP BY user_id) AS i
WHERE i.user_id = mirror_users.user_id;
UPDATE mirror_users_due SET pending = p.n
FROM (SELECT user_id, COUNT(*) AS n FROM mirror_inbox WHERE state = 0 GROUP BY user_id) AS p
WHERE p.user_id = mirror_users_due.user_id;
"#,
    ),
    (
        8,
        "transactions_by_user",
        r#"
ALTER TABLE mirror_transactions RENAME TO mirror_transactions_v7;
ALTER INDEX mirror_transactions_pkey RENAME TO mirror_transactions_v7_pkey;
DROP INDEX IF EXISTS mirror_transactions_user;
CREATE TABLE mirror_transactions (
    id            TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL,
    account_id    TEXT,
    connection_id TEXT,
    date_ms       BIGINT NOT NULL,
    modified_ms   BIGINT NOT NULL,
    status        TEXT NOT NULL,
    deleted       INTEGER NOT NULL DEFAULT 0,
    raw           TEXT NOT NULL,
    updated_ms    BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
INSERT INTO mirror_transactions
    (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms)
SELECT id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms
FROM mirror_transactions_v7;
DROP TABLE mirror_transactions_v7;
CREATE INDEX mirror_transactions_account ON mirror_transactions (account_id, date_ms);
CREATE INDEX mirror_transactions_connection ON mirror_transactions (connection_id);
CREATE INDEX mirror_transactions_tombstones ON mirror_transactions (user_id) WHERE deleted <> 0;
"#,
    ),
];

/// The newest version of a list.
pub fn latest(list: &[Migration]) -> i64 {
    list.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Every table the mirror needs (readiness checks each; start-up re-creates missing ones).
pub const TABLES: &[&str] = &[
    "mirror_migrations",
    "mirror_users",
    "mirror_inbox",
    "mirror_applied_events",
    "mirror_connections",
    "mirror_accounts",
    "mirror_transactions",
    "mirror_guard",
    "mirror_users_due",
    "mirror_lifecycle",
    "mirror_lifecycle_history",
    "mirror_outbox",
    "mirror_inbox_counts",
];

/// The schema of a list as idempotent statements (`CREATE … IF NOT EXISTS`, data statements
/// left out): re-creates whatever table or index is missing (dropped by hand, say) and
/// touches nothing that exists. A table is re-created as the whole list leaves it: a later
/// `ALTER TABLE t DROP COLUMN c` removes `c`'s line from `t`'s `CREATE TABLE`, a later
/// `ALTER TABLE t ADD COLUMN c …` adds the line. A table or index created again by a later
/// migration (a rebuild: rename, create, copy, drop) takes its later definition, and
/// `DROP INDEX i` removes `i`.
pub fn repair_sql(list: &[Migration]) -> String {
    let mut statements: Vec<String> = Vec::new();
    // Adds a `CREATE … IF NOT EXISTS name …` statement, in place of an earlier one of `name`.
    let define = |statements: &mut Vec<String>, kind: &str, rest: &str| {
        let name = rest.split_whitespace().next().unwrap_or_default();
        let head = format!("CREATE {kind} IF NOT EXISTS {name} ");
        let statement = format!("CREATE {kind} IF NOT EXISTS {rest}");
        match statements.iter_mut().find(|st| st.starts_with(&head)) {
            Some(earlier) => *earlier = statement,
            None => statements.push(statement),
        }
    };
    for (_, _, sql) in list {
        for statement in sql.split(';') {
            let s = statement.trim();
            if let Some(rest) = s.strip_prefix("CREATE TABLE ") {
                define(&mut statements, "TABLE", rest);
            } else if let Some(rest) = s.strip_prefix("CREATE INDEX ") {
                define(&mut statements, "INDEX", rest);
            } else if let Some(name) = s.strip_prefix("DROP INDEX ") {
                let name = name.trim().trim_start_matches("IF EXISTS ").trim();
                let head = format!("CREATE INDEX IF NOT EXISTS {name} ");
                statements.retain(|st| !st.starts_with(&head));
            } else if let Some((table, column)) = added_column(s) {
                let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
                for st in statements.iter_mut().filter(|st| st.starts_with(&create)) {
                    if let Some(end) = st.rfind(')') {
                        st.insert_str(end, &format!(",\n    {column}\n"));
                        // `…,\n    last\n,\n    new\n)`: keep one line per column.
                        *st = st.replace("\n,\n", ",\n");
                    }
                }
            } else if let Some((table, column)) = dropped_column(s) {
                let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
                for st in statements.iter_mut().filter(|st| st.starts_with(&create)) {
                    *st = st
                        .lines()
                        .filter(|l| l.split_whitespace().next() != Some(column))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
        }
    }
    let mut out = String::new();
    for s in statements {
        out.push_str(&s);
        out.push_str(";\n");
    }
    out
}

/// `(table, column definition)` of an `ALTER TABLE table ADD COLUMN definition` statement.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("ALTER TABLE ")?;
    let (table, rest) = rest.split_once(' ')?;
    let column = rest.trim().strip_prefix("ADD COLUMN ")?.trim();
    Some((table, column))
}

/// `(table, column)` of an `ALTER TABLE table DROP COLUMN column` statement.
fn dropped_column(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("ALTER TABLE ")?;
    let (table, rest) = rest.split_once(' ')?;
    let column = rest.trim().strip_prefix("DROP COLUMN ")?.trim();
    Some((table, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table re-created by a repair has the columns later migrations added, and not those
    /// they dropped.
    #[cfg(feature = "sqlite")]
    #[test]
    fn repaired_tables_have_added_columns() {
        let sql = repair_sql(SQLITE);
        let users = sql.split(';').find(|s| s.contains("EXISTS mirror_users (")).expect("mirror_users");
        for column in ["not_before_ms INTEGER NOT NULL DEFAULT 0,", "live INTEGER", "last_event_ms INTEGER"] {
            assert!(users.contains(column), "{column} in {users}");
        }
        let due = sql.split(';').find(|s| s.contains("EXISTS mirror_users_due (")).expect("mirror_users_due");
        assert!(due.contains("pending INTEGER NOT NULL DEFAULT 0"), "{due}");
        let inbox = sql.split(';').find(|s| s.contains("EXISTS mirror_inbox (")).expect("mirror_inbox");
        assert!(!inbox.contains("envelope"), "{inbox}");
        // A rebuilt table takes its last definition, and a dropped index stays dropped.
        let txs: Vec<&str> = sql.split(';').filter(|s| s.contains("EXISTS mirror_transactions (")).collect();
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert!(txs[0].contains("PRIMARY KEY (user_id, id)") && txs[0].contains("WITHOUT ROWID"), "{txs:?}");
        assert!(
            !sql.contains("mirror_transactions_user ") && !sql.contains("mirror_transactions_v7"),
            "{sql}"
        );
        assert_eq!(sql.matches("EXISTS mirror_transactions_account ").count(), 1, "{sql}");
        // The whole schema, re-created on an empty database, is valid SQL.
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(&sql).unwrap();
        c.execute_batch("SELECT live, tombstones, connections, last_event_ms FROM mirror_users").unwrap();
    }

    /// PostgreSQL's repair re-creates `mirror_transactions` with the key of migration 8 and
    /// without the index that key replaced (the rebuild's renames are not part of it).
    #[cfg(feature = "postgres")]
    #[test]
    fn repaired_postgres_transactions_have_the_user_key() {
        let sql = repair_sql(POSTGRES);
        let txs: Vec<&str> = sql.split(';').filter(|s| s.contains("EXISTS mirror_transactions (")).collect();
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert!(
            txs[0].contains("PRIMARY KEY (user_id, id)") && !txs[0].contains("TEXT PRIMARY KEY"),
            "{txs:?}"
        );
        assert!(
            !sql.contains("mirror_transactions_user ") && !sql.contains("mirror_transactions_v7"),
            "{sql}"
        );
        for index in ["account", "connection", "tombstones"] {
            assert_eq!(sql.matches(&format!("EXISTS mirror_transactions_{index} ")).count(), 1, "{sql}");
        }
    }
}
