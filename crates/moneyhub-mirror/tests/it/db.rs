//! Storage: URLs and errors, versioned migrations on both backends, the sync-guard store,
//! backfill, status and export.

use moneyhub::guard::{DefaultSyncGuard, GuardRules, GuardStore, SyncGuard};
use moneyhub_mirror::{Db, DbGuardStore, Error, ExportFormat, ExportOptions, Mirror, MirrorConfig, Scope};
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn bad_urls_and_unreachable_databases_are_clear_errors() {
    for url in [
        "",
        "   ",
        "sqlite:",
        "mysql://h/db",
        "postgres://",
        "sqlite::memory:",
        "postgres://u:pw@h/db?schema=a-b",
    ] {
        let e = Db::open(url).await.unwrap_err();
        assert!(matches!(e, Error::DbUrl { .. }), "{url:?}: {e}");
        assert!(!e.to_string().contains("pw@"), "password echoed: {e}");
    }
    let e = Db::open("sqlite:/nonexistent-dir-for-mirror-tests/x.db").await.unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    // Nothing listens on port 1.
    let e = Db::open("postgres://postgres:secret@127.0.0.1:1/test").await.unwrap_err();
    assert!(matches!(e, Error::Postgres(_)), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
    // Not a database file.
    let dir = std::env::temp_dir().join(format!("mirror-notdb-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.db");
    std::fs::write(&file, vec![0x42; 8192]).unwrap();
    let e = Db::open(&format!("sqlite:{}", file.display())).await.unwrap_err();
    assert!(matches!(e, Error::Sqlite(_)), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Database failures say what they mean without naming a driver: a server that cannot be
/// reached is unavailable (worth retrying), a file that is not a database is not; both keep
/// the driver's error as their source.
#[tokio::test]
async fn database_errors_say_what_they_mean() {
    // Nothing listens on port 1.
    let e = Db::open("postgres://postgres@127.0.0.1:1/test?connect_timeout=2").await.unwrap_err();
    assert!(e.is_database() && e.is_unavailable(), "{e}");
    assert!(!e.is_unique_violation(), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the driver's error is kept: {e:?}");

    let dir = std::env::temp_dir().join(format!("mirror-notdb2-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.db");
    std::fs::write(&file, vec![0x42; 8192]).unwrap();
    let e = Db::open(&format!("sqlite:{}", file.display())).await.unwrap_err();
    assert!(e.is_database() && !e.is_unavailable(), "{e}");
    assert!(std::error::Error::source(&e).is_some(), "the driver's error is kept: {e:?}");
    let _ = std::fs::remove_dir_all(dir);
}

async fn migrations_on(db: TestDb) {
    let first = Db::open(db.url()).await.unwrap();
    assert_eq!(first.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
    // Opening again applies nothing new.
    let again = Db::open(db.url()).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
    again.close().await;
    // A database migrated by a newer build is refused.
    match &db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(first.file().expect("an SQLite file")).unwrap();
            c.execute(
                "INSERT INTO mirror_migrations (version, name, applied_ms) VALUES (99, 'future', 0)",
                [],
            )
            .unwrap();
        }
        TestDb::Postgres { base, schema, .. } => {
            let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            pg.batch_execute(&format!(
                "INSERT INTO {schema}.mirror_migrations (version, name, applied_ms) VALUES (99, 'future', 0)"
            ))
            .await
            .unwrap();
        }
    }
    let e = Db::open(db.url()).await.unwrap_err();
    assert!(matches!(e, Error::Migration(_)) && e.to_string().contains("99"), "{e}");
    first.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn migrations_are_versioned_on_sqlite() {
    migrations_on(TestDb::sqlite("migrate")).await;
}

#[tokio::test]
async fn migrations_are_versioned_on_postgres() {
    let Some(db) = TestDb::postgres("migrations_are_versioned_on_postgres") else { return };
    migrations_on(db).await;
}

/// The rows a version-7 database holds before the upgrade to schema 8: two users, one
/// tombstone, a pending row.
const V7_ROWS: &str = "
INSERT INTO mirror_users (user_id, first_seen_ms, live, tombstones) VALUES
    ('5c79210bbac25ecb5e71ac41', 0, 1, 1), ('5c79210bbac25ecb5e71ac42', 0, 1, 0);
INSERT INTO mirror_transactions
    (id, user_id, account_id, connection_id, date_ms, modified_ms, status, deleted, raw, updated_ms) VALUES
    ('0b0b0b0b-0000-4000-8000-000000000001', '5c79210bbac25ecb5e71ac41', '6d0baf11-248e-4c11-9c04-97b7758b4e04', 'c1', 1, 10, 'posted', 0, '{\"n\":1}', 5),
    ('0b0b0b0b-0000-4000-8000-000000000002', '5c79210bbac25ecb5e71ac41', '6d0baf11-248e-4c11-9c04-97b7758b4e04', 'c1', 2, 20, 'posted', 1, '{\"n\":2}', 5),
    ('0b0b0b0b-0000-4000-8000-000000000003', '5c79210bbac25ecb5e71ac42', 'a2', 'c2', 3, 30, 'pending', 0, '{\"n\":3}', 5);
";

/// Every transaction row as text, in id order.
const ALL_ROWS: &str =
    "SELECT id || '|' || user_id || '|' || account_id || '|' || connection_id || '|' || date_ms
        || '|' || modified_ms || '|' || status || '|' || deleted || '|' || raw || '|' || updated_ms
     FROM mirror_transactions ORDER BY id";

/// A database left by a release at schema 7 (transactions keyed by `id`) upgrades to schema
/// 8 (keyed by `(user_id, id)`) keeping every row, with the new key, without the index the
/// key replaces, and takes the mirror's upsert on the new key.
async fn a_version_7_database_upgrades_to_the_user_key(db: TestDb) {
    let (rows_before, rows_after, key, indexes) = match &db {
        TestDb::Sqlite { .. } => {
            let path = db.url().trim_start_matches("sqlite:").to_owned();
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(&moneyhub_mirror::testing::sqlite_schema_at(7)).unwrap();
            c.execute_batch(V7_ROWS).unwrap();
            let read = |c: &rusqlite::Connection| -> Vec<String> {
                let mut st = c.prepare(ALL_ROWS).unwrap();
                st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
            };
            let before = read(&c);
            drop(c);
            let mirror = Db::open(db.url()).await.unwrap();
            assert_eq!(mirror.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
            mirror.close().await;
            let c = rusqlite::Connection::open(&path).unwrap();
            let key: String = c
                .query_row("SELECT sql FROM sqlite_master WHERE name = 'mirror_transactions'", [], |r| {
                    r.get(0)
                })
                .unwrap();
            let mut st = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE tbl_name LIKE 'mirror_transactions%' ORDER BY name",
                )
                .unwrap();
            let names: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
            (before, read(&c), key, names)
        }
        TestDb::Postgres { base, schema, .. } => {
            let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            pg.batch_execute(&format!("CREATE SCHEMA {schema}; SET search_path TO {schema}")).await.unwrap();
            pg.batch_execute(&moneyhub_mirror::testing::postgres_schema_at(7)).await.unwrap();
            pg.batch_execute(V7_ROWS).await.unwrap();
            let read =
                |rows: Vec<tokio_postgres::Row>| -> Vec<String> { rows.iter().map(|r| r.get(0)).collect() };
            let before = read(pg.query(ALL_ROWS, &[]).await.unwrap());
            let mirror = Db::open(db.url()).await.unwrap();
            assert_eq!(mirror.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
            mirror.close().await;
            let indexes = pg
                .query(
                    "SELECT tablename || ':' || indexname || ' ' || indexdef FROM pg_indexes
                     WHERE schemaname = $1 AND tablename LIKE 'mirror_transactions%' ORDER BY indexname",
                    &[schema],
                )
                .await
                .unwrap();
            let indexes: Vec<String> = indexes.iter().map(|r| r.get(0)).collect();
            let key = indexes.iter().find(|i| i.contains("_pkey")).cloned().unwrap_or_default();
            let names = indexes.iter().map(|i| i.split(' ').next().unwrap().to_owned()).collect();
            (before, read(pg.query(ALL_ROWS, &[]).await.unwrap()), key, names)
        }
    };
    assert_eq!(rows_before.len(), 3, "{rows_before:?}");
    assert_eq!(rows_after, rows_before);
    assert!(key.contains("PRIMARY KEY (user_id, id)") || key.contains("(user_id, id)"), "{key}");
    let expected: &[&str] = match &db {
        TestDb::Sqlite { .. } => &[
            "mirror_transactions",
            "mirror_transactions_account",
            "mirror_transactions_connection",
            "mirror_transactions_tombstones",
        ],
        TestDb::Postgres { .. } => &[
            "mirror_transactions:mirror_transactions_account",
            "mirror_transactions:mirror_transactions_connection",
            "mirror_transactions:mirror_transactions_pkey",
            "mirror_transactions:mirror_transactions_tombstones",
        ],
    };
    assert_eq!(indexes, expected);

    // The mirror's upsert finds the upgraded row by its new key: a newer version replaces it.
    let newer = moneyhub_mirror::db::TxRow {
        id: "0b0b0b0b-0000-4000-8000-000000000001".parse().unwrap(),
        user_id: "5c79210bbac25ecb5e71ac41".parse().unwrap(),
        account_id: Some("6d0baf11-248e-4c11-9c04-97b7758b4e04".parse().unwrap()),
        connection_id: None,
        date_ms: 1,
        modified_ms: 11,
        status: "posted".into(),
        raw: r#"{"n":4}"#.into(),
    };
    let mirror = Db::open(db.url()).await.unwrap();
    match &db {
        TestDb::Sqlite { .. } => {
            let mut c = moneyhub_mirror::testing::open_sqlite(mirror.file().unwrap()).unwrap();
            moneyhub_mirror::testing::sqlite_upsert(&mut c, &[newer]).unwrap();
        }
        TestDb::Postgres { .. } => {
            moneyhub_mirror::testing::postgres_upsert(&mirror, &[newer]).await.unwrap()
        }
    }
    let live = mirror.live_transactions("5c79210bbac25ecb5e71ac41").await.unwrap();
    assert_eq!(live.len(), 1, "one live row of the user, replaced in place: {live:?}");
    assert_eq!((live[0].modified_ms, live[0].raw.as_str()), (11, r#"{"n":4}"#), "{live:?}");
    mirror.close().await;
    db.cleanup().await;
}

/// PostgreSQL reads a page of stored transactions as a range of the table's key in the
/// key's order: no sort of the table per page. Before schema 8 declared the key's columns
/// `COLLATE "C"`, the pages' byte order (`ORDER BY … COLLATE "C"`) was not the index's on a
/// database whose collation is not `C`, and every page of an export sorted the whole table.
#[tokio::test]
async fn postgres_pages_are_ranges_of_the_key() {
    let Some(db) = TestDb::postgres("postgres_pages_are_ranges_of_the_key") else { return };
    let mirror = Db::open(db.url()).await.unwrap();
    let plans = moneyhub_mirror::testing::postgres_page_plans(&mirror).await.unwrap();
    assert_eq!(plans.len(), 2);
    for plan in plans {
        assert!(plan.contains("Index Scan using mirror_transactions_pkey"), "{plan}");
        assert!(!plan.contains("Sort") && !plan.contains("Seq Scan"), "{plan}");
    }
    mirror.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_version_7_database_upgrades_to_the_user_key_on_sqlite() {
    a_version_7_database_upgrades_to_the_user_key(TestDb::sqlite("upgrade-8")).await;
}

#[tokio::test]
async fn a_version_7_database_upgrades_to_the_user_key_on_postgres() {
    let Some(db) = TestDb::postgres("a_version_7_database_upgrades_to_the_user_key_on_postgres") else {
        return;
    };
    a_version_7_database_upgrades_to_the_user_key(db).await;
}

async fn guard_store_on(url: String) {
    let conn: moneyhub::ConnectionId =
        "1ffe704d39629a929c8e293880fb449a:0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f9f".parse().unwrap();
    let now = t0();
    // Two guards over two stores: two processes sharing the database.
    let one = DefaultSyncGuard::with_store(GuardRules::default(), DbGuardStore::open(&url).await.unwrap());
    let two = DefaultSyncGuard::with_store(GuardRules::default(), DbGuardStore::open(&url).await.unwrap());
    one.acquire(&conn, now).await.unwrap();
    let refused = two.acquire(&conn, now + chrono::Duration::minutes(10)).await.unwrap_err();
    assert_eq!(refused.not_before, now + chrono::Duration::minutes(30));
    two.acquire(&conn, now + chrono::Duration::minutes(31)).await.unwrap();
    assert_eq!(one.store().load(&conn).await.manual_syncs.len(), 2);
    two.record_not_before(&conn, now + chrono::Duration::hours(2)).await;
    assert!(one.check(&conn, now + chrono::Duration::hours(1)).await.is_err());
}

/// Guards of three "processes" (each with its own store and database connections), three
/// tasks each, race for the same eight connections at the same instant: for each connection
/// exactly one manual sync is let through.
async fn guard_race_on(url: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const PROCESSES: usize = 3;
    const THREADS: usize = 3;
    let connections: Vec<moneyhub::ConnectionId> = (0..8)
        .map(|i| format!("1ffe704d39629a929c8e293880fb449a:0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f{i:02x}"))
        .map(|id| id.parse().unwrap())
        .collect();
    let mut guards: Vec<Arc<DefaultSyncGuard<DbGuardStore>>> = Vec::new();
    for _ in 0..PROCESSES {
        let store = DbGuardStore::open(url).await.unwrap();
        guards.push(Arc::new(DefaultSyncGuard::with_store(GuardRules::default(), store)));
    }
    let passed: Arc<Vec<AtomicUsize>> = Arc::new(connections.iter().map(|_| AtomicUsize::new(0)).collect());
    let start = Arc::new(tokio::sync::Barrier::new(PROCESSES * THREADS));
    let tasks: Vec<_> = (0..PROCESSES * THREADS)
        .map(|i| {
            let (guard, passed, start) = (guards[i % PROCESSES].clone(), passed.clone(), start.clone());
            let connections = connections.clone();
            tokio::spawn(async move {
                start.wait().await;
                for (n, c) in connections.iter().enumerate() {
                    if guard.acquire(c, t0()).await.is_ok() {
                        passed[n].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let passed: Vec<usize> = passed.iter().map(|p| p.load(Ordering::SeqCst)).collect();
    assert_eq!(passed, vec![1; connections.len()], "manual syncs let through per connection");
    for c in &connections {
        assert_eq!(guards[0].store().load(c).await.manual_syncs, vec![t0()], "one sync recorded for {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_of_several_processes_let_one_sync_through() {
    let db = TestDb::sqlite("guard-race");
    let url = db.url().to_owned();
    guard_race_on(&url).await;
    db.cleanup().await;
    if let Some(pg) = TestDb::postgres("guards_of_several_processes_let_one_sync_through (postgres)") {
        let url = pg.url().to_owned();
        guard_race_on(&url).await;
        pg.cleanup().await;
    }
}

/// Parking and re-queueing at the storage level: two users' events fail past the limit, one
/// user's are re-queued, then everyone's; each re-queued event is claimable again.
async fn requeue_on(db: TestDb) {
    let store = Db::open(db.url()).await.unwrap();
    let users = ["5c79210bbac25ecb5e71ac40", "5c79210bbac25ecb5e71ac41"];
    for (i, user) in users.iter().enumerate() {
        for n in 0..2 {
            let event = moneyhub_mirror::db::NewInboxEvent {
                webhook_id: format!("0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f{i}{n}").parse().unwrap(),
                user_id: Some(user.parse().unwrap()),
                event_type: moneyhub_types::WebhookEventType::SyncCompleted,
                body: b"{}".to_vec().into(),
                content_type: "application/json".into(),
                signed: false,
                received_ms: 1,
            };
            assert!(store.insert_inbox(event).await.unwrap());
        }
        // One failed attempt with a limit of one: parked, and the user backs off for an hour.
        let claim = store.claim_next(2, 2, 10).await.unwrap().expect("a user with due events");
        claim.fail("boom", 2, 3_600_000, 1).await.unwrap();
    }
    let counts = store.inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (0, 4), "{counts:?}");
    assert!(store.claim_next(3, 3, 10).await.unwrap().is_none(), "parked events are not claimed");

    assert_eq!(store.requeue_parked(Some("5c79210bbac25ecb5e71ac49")).await.unwrap(), 0);
    assert_eq!(store.requeue_parked(Some(users[1])).await.unwrap(), 2);
    let counts = store.inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (2, 2), "{counts:?}");
    // The back-off is lifted: claimable at once, well within the hour.
    let claim = store.claim_next(4, 4, 10).await.unwrap().expect("re-queued events are due");
    assert_eq!(claim.user_id(), users[1]);
    assert_eq!(claim.events().len(), 2);
    assert!(claim.events().iter().all(|e| e.attempts == 0), "attempts start again");
    drop(claim);
    assert_eq!(store.requeue_parked(None).await.unwrap(), 2);
    assert_eq!(store.requeue_parked(None).await.unwrap(), 0, "nothing left parked");
    let counts = store.inbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.failed), (4, 0), "{counts:?}");
    store.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn parked_events_can_be_requeued_on_sqlite() {
    requeue_on(TestDb::sqlite("requeue")).await;
}

#[tokio::test]
async fn parked_events_can_be_requeued_on_postgres() {
    let Some(db) = TestDb::postgres("parked_events_can_be_requeued_on_postgres") else { return };
    requeue_on(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_guard_persists_in_the_database() {
    let db = TestDb::sqlite("guard");
    let url = db.url().to_owned();
    guard_store_on(url).await;
    db.cleanup().await;
    if let Some(pg) = TestDb::postgres("the_sync_guard_persists_in_the_database (postgres)") {
        let url = pg.url().to_owned();
        guard_store_on(url).await;
        pg.cleanup().await;
    }
    assert!(DbGuardStore::open("mysql://nope").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_status_and_export() {
    let sb = sandbox(0.0).await;
    let db = TestDb::sqlite("export");
    let socgen = bank(&sb, SOCGEN).await;
    let ids: Vec<String> =
        users(&sb, 2, std::slice::from_ref(&socgen)).await.into_iter().map(|u| u.0).collect();
    advance_hours(&sb, 1).await; // the background history
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = progress.clone();
    let mirror = Mirror::open(client(&sb), db.url(), MirrorConfig::default())
        .await
        .unwrap()
        .on_progress(move |p| seen.lock().unwrap().push((p.done, p.total)));
    let report = mirror.backfill(&Scope::users(user_ids(&ids))).await.unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.totals.full, 2);
    assert!(progress.lock().unwrap().iter().any(|(done, total)| Some(*done) == *total));
    let (problems, compared) = compare(&sb, mirror.db(), &ids).await;
    assert!(problems.is_empty() && compared > 1000, "{problems:?}");
    // A second backfill has nothing left to do.
    assert_eq!(mirror.backfill(&Scope::users(user_ids(&ids))).await.unwrap().totals.full, 0);
    // A user Moneyhub does not know has no connections: nothing to list, nothing to fail.
    let r = mirror.reconcile(&Scope::users([UNKNOWN_USER.parse().unwrap()])).await.unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.users, r.totals.listed, r.totals.upserts), (1, 0, 0));

    let status = mirror.status(&Default::default()).await.unwrap();
    // The unknown user is recorded (it was asked for), with nothing.
    assert_eq!(status.users.len(), 3, "{status:?}");
    let unknown = status.users.iter().find(|u| u.user_id == UNKNOWN_USER).expect("unknown user listed");
    assert_eq!((unknown.live, unknown.connections), (0, 0));
    assert_eq!(status.live as usize, compared);
    assert_eq!(status.inbox_pending, 0);
    assert_eq!(status.users.iter().filter(|u| u.connections == 1).count(), 2);

    let mut csv = Vec::new();
    let n = mirror
        .export(ExportFormat::Csv, &ExportOptions::new().user(ids[0].parse().unwrap()), &mut csv)
        .await
        .unwrap();
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.lines().count() as u64, n + 1);
    assert!(text
        .starts_with("id,user_id,account_id,connection_id,date,date_modified,status,amount_minor,currency"));
    let mut json = Vec::new();
    let n_all = mirror.export(ExportFormat::Json, &ExportOptions::new(), &mut json).await.unwrap();
    assert_eq!(n_all as usize, compared);
    let parsed: Vec<Value> = serde_json::from_slice(&json).unwrap();
    assert_eq!(parsed.len(), compared);
    assert!(parsed.iter().all(|t| t["transaction"]["id"].is_string() && t["deleted"] == false));
    let mut empty = Vec::new();
    assert_eq!(
        mirror
            .export(ExportFormat::Json, &ExportOptions::new().user(UNKNOWN_USER.parse().unwrap()), &mut empty)
            .await
            .unwrap(),
        0
    );
    assert_eq!(serde_json::from_slice::<Vec<Value>>(&empty).unwrap().len(), 0);
    assert!("xml".parse::<ExportFormat>().is_err());
    db.cleanup().await;
}

/// The SQLite upsert writes 200 rows per statement: versions of one id inside one statement,
/// across statements and in the one-by-one remainder all end as the newest (an older
/// `dateModified` never wins), whatever their order.
#[tokio::test]
async fn multi_row_upserts_keep_the_newest_version() {
    use moneyhub_mirror::db::TxRow;
    let db = TestDb::sqlite("multi-row");
    let mirror_db = Db::open(db.url()).await.unwrap();
    let path = mirror_db.file().unwrap().to_path_buf();
    let id = |i: usize| format!("{i:08x}-0000-4000-8000-000000000000");
    let row = |i: usize, modified: i64| TxRow {
        id: id(i).parse().unwrap(),
        user_id: "5c79210bbac25ecb5e71ac40".parse().unwrap(),
        account_id: None,
        connection_id: None,
        date_ms: 1,
        modified_ms: modified,
        status: "posted".into(),
        raw: format!("{{\"v\":{modified}}}"),
    };
    // 150 ids, 3 versions each, shuffled so that versions meet inside statements, across
    // them and in the remainder (450 rows: two statements of 200, 50 one by one).
    let mut rows: Vec<TxRow> = Vec::new();
    for v in [2, 3, 1] {
        for i in 0..150 {
            rows.push(row(i, v * 10 + (i as i64 % 7)));
        }
    }
    rows.swap(10, 440);
    rows.swap(199, 201);
    let mut c = moneyhub_mirror::testing::open_sqlite(&path).unwrap();
    moneyhub_mirror::testing::sqlite_upsert(&mut c, &rows).unwrap();
    let check = rusqlite::Connection::open(&path).unwrap();
    let mut s = check.prepare("SELECT id, modified_ms, raw FROM mirror_transactions ORDER BY id").unwrap();
    let stored: Vec<(String, i64, String)> =
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(stored.len(), 150);
    for (i, (sid, modified, raw)) in stored.iter().enumerate() {
        let newest = 30 + (i as i64 % 7);
        assert_eq!(
            (sid.as_str(), *modified, raw.as_str()),
            (id(i).as_str(), newest, format!("{{\"v\":{newest}}}").as_str())
        );
    }
    db.cleanup().await;
}

/// Issue 24 item 8: the inbox keeps the verified body only (migration 5, `inbox_raw`). Rows
/// stored before it, with their `envelope` column beside the body, read the same after it:
/// one signed (a JWT) and one unsigned (JSON), claimed and read back from their bodies.
async fn rows_stored_before_inbox_raw_read_the_same(db: TestDb) {
    use moneyhub::jose::{KeyType, PrivateKey};
    use moneyhub_types::{WebhookEnvelope, WebhookEvent};
    let mirror = Db::open(db.url()).await.unwrap();
    assert_eq!(mirror.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
    mirror.close().await;
    let user = "5c79210bbac25ecb5e71ac40";
    let json_body = format!(
        r#"{{"id":"0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f90","eventType":"deletedAccount","userId":"{user}",
            "payload":{{"accountId":"4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13","note":"kept"}}}}"#
    );
    let key = PrivateKey::generate(KeyType::P256).unwrap();
    let jwt = key
        .sign(&serde_json::json!({"jti": "0b0b0b0b-1c1c-4d4d-8e8e-9f9f9f9f9f91", "sub": user, "iat": 1_700_000_000,
            "iss": "https://identity.moneyhub.co.uk/oidc", "aud": "client",
            "events": {"urn:com:moneyhub:events:deleted-account": {"accountId": "4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b14"}}}))
        .unwrap();
    // What the receiver of schema 4 stored: the envelope it verified, serialised, beside the
    // body; the same rows written into a schema put back to version 4.
    let json_env: WebhookEnvelope = moneyhub_types::decode(json_body.as_bytes()).unwrap();
    let jwt_env = moneyhub::webhooks::read_verified(jwt.as_bytes(), true).unwrap();
    let rows = [
        (
            json_env.id.to_string(),
            serde_json::to_string(&json_env).unwrap(),
            json_body.clone().into_bytes(),
            0,
            1,
        ),
        (jwt_env.id.to_string(), serde_json::to_string(&jwt_env).unwrap(), jwt.clone().into_bytes(), 1, 2),
    ];
    let back_to_4 = format!(
        "{}; ALTER TABLE mirror_inbox ADD COLUMN envelope TEXT; DELETE FROM mirror_migrations WHERE version >= 5;
        DROP TABLE mirror_inbox_counts; DROP INDEX mirror_lifecycle_removed; DROP INDEX mirror_outbox_parked;
        DROP INDEX mirror_outbox_parked_connection;",
        crate::status::BACK_TO_6
    );
    match &db {
        TestDb::Sqlite { .. } => {
            let c = rusqlite::Connection::open(db.url().trim_start_matches("sqlite:")).unwrap();
            c.execute_batch(&back_to_4).unwrap();
            for t in [
                "inbox_counts_insert",
                "inbox_counts_delete",
                "inbox_counts_update",
                "ledger_counts_insert",
                "ledger_counts_delete",
            ] {
                c.execute_batch(&format!("DROP TRIGGER mirror_{t}")).unwrap();
            }
            for (id, env, body, signed, at) in &rows {
                c.execute(
                    "INSERT INTO mirror_inbox (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                     VALUES (?1, ?2, 'deletedAccount', ?3, ?4, 'application/json', ?5, ?6)",
                    rusqlite::params![id, user, env, body, signed, at],
                )
                .unwrap();
            }
            c.execute("INSERT INTO mirror_users (user_id, first_seen_ms) VALUES (?1, 0)", [user]).unwrap();
            c.execute("INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms) VALUES (?1, 0, 1, 0)", [user]).unwrap();
        }
        TestDb::Postgres { base, schema, .. } => {
            let (c, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            c.batch_execute(&format!(
                "SET search_path TO {schema}; {back_to_4}
                 DROP FUNCTION mirror_inbox_count() CASCADE; DROP FUNCTION mirror_ledger_count() CASCADE;"
            ))
            .await
            .unwrap();
            for (id, env, body, signed, at) in &rows {
                let (signed, at) = (*signed, *at as i64);
                c.execute(
                    "INSERT INTO mirror_inbox (webhook_id, user_id, event_type, envelope, body, content_type, signed, received_ms)
                     VALUES ($1, $2, 'deletedAccount', $3, $4, 'application/json', $5, $6)",
                    &[id, &user, env, body, &signed, &at],
                )
                .await
                .unwrap();
            }
            c.execute("INSERT INTO mirror_users (user_id, first_seen_ms) VALUES ($1, 0)", &[&user])
                .await
                .unwrap();
            c.execute("INSERT INTO mirror_users_due (user_id, due_at_ms, oldest_pending_seq, oldest_pending_ms) VALUES ($1, 0, 1, 0)", &[&user]).await.unwrap();
        }
    }
    // Opened by this build: migrated to 5, 6 and 7 again, the column dropped, both rows read back
    // from their bodies as the envelopes stored beside them.
    let mirror = Db::open(db.url()).await.unwrap();
    assert_eq!(mirror.schema_version().await.unwrap(), TestDb::LATEST_SCHEMA);
    // Migration 7 counted the user's figures once: two pending events, the newest at 2.
    let s = mirror.status(&Default::default()).await.unwrap();
    let u = s.users.iter().find(|u| u.user_id == user).expect("the user is listed");
    assert_eq!((u.pending, u.last_event_ms, u.oldest_pending_ms), (2, Some(2), Some(0)), "{u:?}");
    let claim = mirror.claim_next(i64::MAX, i64::MAX, 10).await.unwrap().expect("the user is due");
    assert_eq!(claim.user_id(), user);
    let read: Vec<WebhookEnvelope> = claim
        .events()
        .iter()
        .map(|e| moneyhub::webhooks::read_verified(&e.body, e.signed).unwrap())
        .collect();
    assert_eq!(read, vec![json_env.clone(), jwt_env.clone()]);
    for env in &read {
        assert!(matches!(WebhookEvent::from_envelope(env).unwrap(), WebhookEvent::DeletedAccount(_)));
    }
    drop(claim);
    mirror.close().await;
    db.cleanup().await;
}

#[tokio::test]
async fn rows_stored_before_inbox_raw_read_the_same_on_sqlite() {
    rows_stored_before_inbox_raw_read_the_same(TestDb::sqlite("inbox-raw")).await;
}

#[tokio::test]
async fn rows_stored_before_inbox_raw_read_the_same_on_postgres() {
    let Some(db) = TestDb::postgres("rows_stored_before_inbox_raw_read_the_same_on_postgres") else { return };
    rows_stored_before_inbox_raw_read_the_same(db).await;
}
