//! Honest readiness (issue 20 #6): `/readyz` checks every table the mirror needs and that the
//! database accepts writes; start-up re-creates a missing table.

use moneyhub_mirror::{Db, MirrorConfig};
use reqwest::StatusCode;

use crate::support::*;

async fn readyz(running: &Running) -> (StatusCode, String) {
    let url = format!("{}/readyz", running.url.trim_end_matches("/webhooks"));
    let res = http().get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// A plain connection to a test schema.
async fn pg_in(base: &str, schema: &str) -> tokio_postgres::Client {
    let (pg, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!("SET search_path TO {schema}")).await.unwrap();
    pg
}

/// Before the fix `/readyz` answered 200 after `DROP TABLE mirror_transactions` (it counted
/// the inbox only), and a restart neither repaired the schema nor refused to start.
async fn a_dropped_table_is_unready_then_repaired(db: TestDb) {
    let sb = sandbox(0.0).await;
    let running = Running::start(client(&sb), db.url(), MirrorConfig::default()).await;
    assert_eq!(readyz(&running).await, (StatusCode::OK, "ready".into()));
    match &db {
        TestDb::Sqlite { .. } => {
            let conn = rusqlite::Connection::open(running.mirror.db().file().unwrap()).unwrap();
            conn.execute_batch("DROP TABLE mirror_transactions").unwrap();
        }
        TestDb::Postgres { base, schema, .. } => {
            pg_in(base, schema).await.batch_execute("DROP TABLE mirror_transactions CASCADE").await.unwrap();
        }
    }
    let (status, text) = readyz(&running).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("mirror_transactions"), "{text}");
    // A restart re-creates the table (and its indexes).
    let reopened = Db::open(db.url()).await.expect("start-up repairs the schema");
    assert!(reopened.readiness().await.unwrap().ok());
    reopened.close().await;
    assert_eq!(readyz(&running).await, (StatusCode::OK, "ready".into()));
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_is_unready_then_repaired_on_sqlite() {
    a_dropped_table_is_unready_then_repaired(TestDb::sqlite("dropped-table")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_table_is_unready_then_repaired_on_postgres() {
    let Some(db) = TestDb::postgres("a_dropped_table_is_unready_then_repaired_on_postgres") else { return };
    a_dropped_table_is_unready_then_repaired(db).await;
}

/// A database that became read-only (`default_transaction_read_only`, set here for the
/// mirror's own role so that nothing else on the server is touched) is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgresql_is_unready() {
    let Some(db) = TestDb::postgres("a_read_only_postgresql_is_unready") else { return };
    let TestDb::Postgres { base, schema, .. } = &db else { unreachable!() };
    let role = format!("mirror_ro_{}_{:08x}", std::process::id(), rand::random::<u32>());
    let admin = pg_in(base, schema).await;
    admin.batch_execute(&format!("CREATE ROLE {role} LOGIN SUPERUSER")).await.unwrap();
    let url = db.url().replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(url, db.url(), "the test URL names the postgres role");
    let sb = sandbox(0.0).await;
    let running = Running::start(client(&sb), &url, MirrorConfig::default()).await;
    assert_eq!(readyz(&running).await, (StatusCode::OK, "ready".into()));
    admin.batch_execute(&format!("ALTER ROLE {role} SET default_transaction_read_only = on")).await.unwrap();
    let (status, text) = readyz(&running).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(text.contains("read-only"), "{text}");
    running.stop().await;
    db.cleanup().await;
    admin.batch_execute(&format!("DROP ROLE {role}")).await.unwrap();
}
