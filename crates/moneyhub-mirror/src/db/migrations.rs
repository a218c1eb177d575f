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
//! notification outbox). Version 6 adds the indexes the lifecycle retention reads through:
//! removed connections, parked notifications by age and by connection (version 5 is kept
//! for the receiver's `inbox_raw`, developed alongside).
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
        6,
        "lifecycle_retention",
        r#"
CREATE INDEX mirror_lifecycle_removed ON mirror_lifecycle (connection_id) WHERE removed = 1;
CREATE INDEX mirror_outbox_parked ON mirror_outbox (created_ms) WHERE state = 2;
CREATE INDEX mirror_outbox_parked_connection ON mirror_outbox (connection_id) WHERE state = 2;
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
        6,
        "lifecycle_retention",
        r#"
CREATE INDEX mirror_lifecycle_removed ON mirror_lifecycle (connection_id) WHERE removed = 1;
CREATE INDEX mirror_outbox_parked ON mirror_outbox (created_ms) WHERE state = 2;
CREATE INDEX mirror_outbox_parked_connection ON mirror_outbox (connection_id) WHERE state = 2;
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
];

/// The schema of a list as idempotent statements (`CREATE … IF NOT EXISTS`, data statements
/// left out): re-creates whatever table or index is missing (dropped by hand, say) and
/// touches nothing that exists.
pub fn repair_sql(list: &[Migration]) -> String {
    let mut out = String::new();
    for (_, _, sql) in list {
        for statement in sql.split(';') {
            let s = statement.trim();
            let fixed = if let Some(rest) = s.strip_prefix("CREATE TABLE ") {
                format!("CREATE TABLE IF NOT EXISTS {rest}")
            } else if let Some(rest) = s.strip_prefix("CREATE INDEX ") {
                format!("CREATE INDEX IF NOT EXISTS {rest}")
            } else {
                continue;
            };
            out.push_str(&fixed);
            out.push_str(";\n");
        }
    }
    out
}
