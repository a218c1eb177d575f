use crate::support::*;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_trivial_receiver() {
    let sb = sandbox(0.5).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    set_webhooks(&sb, &url, "json").await;
    set_chaos(&sb, 0.1, 0.2, 1.0).await;
    let socgen = bank(&sb, SOCGEN).await;
    users(&sb, 50, &[socgen]).await;
    let mut stats = DeliveryStats::default();
    flush(&sb).await;
    delivery_stats(&sb, &mut stats).await;
    let t = Instant::now();
    let c0 = cpu_time();
    let mut stats = DeliveryStats::default();
    for _ in 0..6 {
        advance_days(&sb, 1).await;
        flush(&sb).await;
        delivery_stats(&sb, &mut stats).await;
    }
    println!("trivial receiver: {:?} in {:.1?} cpu {:.1?}", stats, t.elapsed(), cpu_time() - c0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_mirror_receiver_only() {
    let sb = sandbox(0.5).await;
    let db = TestDb::sqlite("scratch");
    let running = Running::start(
        client(&sb),
        db.url(),
        moneyhub_mirror::MirrorConfig::default().allow_unsigned_json(true),
    )
    .await;
    set_webhooks(&sb, &running.url, "json").await;
    set_chaos(&sb, 0.1, 0.2, 1.0).await;
    let socgen = bank(&sb, SOCGEN).await;
    users(&sb, 50, &[socgen]).await;
    let mut stats = DeliveryStats::default();
    flush(&sb).await;
    delivery_stats(&sb, &mut stats).await;
    let t = Instant::now();
    let c0 = cpu_time();
    let mut stats = DeliveryStats::default();
    for _ in 0..6 {
        advance_days(&sb, 1).await;
        flush(&sb).await;
        delivery_stats(&sb, &mut stats).await;
    }
    println!("mirror receiver, no workers: {:?} in {:.1?} cpu {:.1?}", stats, t.elapsed(), cpu_time() - c0);
    running.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_request_costs() {
    let sb = sandbox(0.5).await;
    let socgen = bank(&sb, SOCGEN).await;
    let u = users(&sb, 1, &[socgen]).await;
    let c = client(&sb);
    let user: moneyhub::UserId = u[0].0.parse().unwrap();
    let n = 300;
    let c0 = cpu_time();
    let t = Instant::now();
    for _ in 0..n {
        c.connections().list(&user).await.unwrap();
    }
    println!("connections list: {:.2?} wall, {:.2?} cpu per call", t.elapsed() / n, (cpu_time() - c0) / n);
    let c0 = cpu_time();
    let t = Instant::now();
    for _ in 0..n {
        c.transactions().list(&user, &moneyhub::TransactionFilter::new().limit(1)).await.unwrap();
    }
    println!("count probe: {:.2?} wall, {:.2?} cpu per call", t.elapsed() / n, (cpu_time() - c0) / n);
    let page = c.transactions().list(&user, &moneyhub::TransactionFilter::new().limit(20)).await.unwrap();
    let ids: Vec<String> = page.transactions.iter().map(|t| t.id.as_str().to_owned()).collect();
    let c0 = cpu_time();
    let t = Instant::now();
    for _ in 0..n {
        c.transactions().by_ids(&user, &ids).await.unwrap();
    }
    println!("by_ids 20: {:.2?} wall, {:.2?} cpu per call", t.elapsed() / n, (cpu_time() - c0) / n);
    let c0 = cpu_time();
    let t = Instant::now();
    for _ in 0..n / 10 {
        c.transactions().list(&user, &moneyhub::TransactionFilter::new().limit(1000)).await.unwrap();
    }
    println!(
        "list 1000: {:.2?} wall, {:.2?} cpu per call",
        t.elapsed() / (n / 10),
        (cpu_time() - c0) / (n / 10)
    );
}
