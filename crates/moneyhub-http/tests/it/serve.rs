//! Timeouts, the connection cap, dropped connections and graceful shutdown.

use std::time::{Duration, Instant};

use moneyhub_http::ServeConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{closed_within, fresh_client, idle_head, request_on, start};

fn quiet() -> ServeConfig {
    // Long timeouts: only what a test sets short may close a connection.
    ServeConfig::default()
        .header_read_timeout(Duration::from_secs(60))
        .idle_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(60))
        .eviction_grace(Duration::from_millis(200))
}

#[tokio::test]
async fn a_panicking_handler_is_answered_500_and_the_server_keeps_serving() {
    let server = start(quiet()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let first = request_on(&mut s, "/panic").await;
    assert!(first.starts_with("HTTP/1.1 500"), "{first}");
    assert!(first.contains("InternalServerError"), "{first}");
    // The same connection, and new ones, are still served.
    let second = request_on(&mut s, "/ok").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let res = fresh_client().get(server.url("/ok")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn expect_100_continue_with_a_body_over_the_limit_is_refused_at_once() {
    let server = start(quiet().max_body_bytes(1024 * 1024)).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let got = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
    // Within the limit, the body is asked for (100 Continue) and read.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    use tokio::io::AsyncReadExt;
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"), "{:?}", &buf[..n]);
    s.write_all(b"hello").await.unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\n5") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn a_streamed_upload_answered_early_reads_the_answer_not_a_broken_pipe() {
    let server = start(quiet()).await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").await.unwrap();
        // A multipart upload of 512 KiB, streamed in 16 KiB chunks after the head.
        let chunk = vec![b'z'; 16 * 1024];
        for _ in 0..32 {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .expect("the server reads the body");
            s.write_all(&chunk).await.expect("the server reads the body");
            s.write_all(b"\r\n").await.expect("the server reads the body");
            tokio::task::yield_now().await;
        }
        s.write_all(b"0\r\n\r\n").await.expect("the server reads the body");
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        use tokio::io::AsyncReadExt;
        while !String::from_utf8_lossy(&got).contains("not here") {
            let n = s.read(&mut buf).await.expect("the answer, not a reset");
            assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 404"));
    }
}

#[tokio::test]
async fn a_just_accepted_connection_is_never_the_one_evicted() {
    let server = start(quiet().max_connections(4).eviction_grace(Duration::from_secs(2))).await;
    let mut old = Vec::new();
    for _ in 0..4 {
        old.push(idle_head(server.addr).await);
    }
    // Let the four age past the grace period: they may be evicted.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // A genuine client connects (its request not written yet), taking the oldest's slot.
    let mut genuine = TcpStream::connect(server.addr).await.unwrap();
    closed_within(&mut old[0], Duration::from_secs(5)).await.unwrap();
    // Four more slow clients arrive: they may evict the other old ones, never the genuine
    // connection, accepted less than the grace period ago.
    let mut new = Vec::new();
    for _ in 0..4 {
        new.push(idle_head(server.addr).await);
    }
    for s in &mut old[1..] {
        closed_within(s, Duration::from_secs(5)).await.unwrap();
    }
    let res = request_on(&mut genuine, "/ok").await;
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
}

#[tokio::test]
async fn a_trickled_request_head_is_closed_after_the_header_timeout() {
    let server = start(quiet().header_read_timeout(Duration::from_millis(400))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let (mut read, mut write) = s.split();
    // One byte every 100 ms: always active, never done.
    let trickle = async {
        for b in b"POST /webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle().take(200) {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let closed = async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(5), read.read(&mut buf)).await
    };
    let (_, closed) = tokio::join!(trickle, closed);
    let closed = closed.expect("the server did not close a trickling connection");
    assert!(matches!(closed, Ok(0) | Err(_)), "unexpected answer: {closed:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "closed too early: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_silent_new_connection_is_closed_after_the_header_timeout() {
    let server = start(quiet().header_read_timeout(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(quiet().idle_timeout(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let first = request_on(&mut s, "/ok").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Kept alive: a second request on the same connection is answered.
    let second = request_on(&mut s, "/ok").await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    let rest = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_by_the_request_timeout() {
    let server = start(quiet().request_timeout(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789").await.unwrap();
    let got = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(!String::from_utf8_lossy(&got).contains("200"), "answered: {got:?}");
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_makes_room_for_a_genuine_request() {
    let server = start(quiet().max_connections(4)).await;
    let client = fresh_client();
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(idle_head(server.addr).await);
    }
    // Make sure all four are accepted (each answers a request... they cannot: they are
    // mid-head). A genuine request queued behind them is accepted after them.
    let started = Instant::now();
    let res = client.get(server.url("/ok")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    // The oldest one made room.
    closed_within(&mut idle[0], Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn many_idle_connections_never_lock_genuine_requests_out() {
    let server = start(quiet().max_connections(50)).await;
    let client = fresh_client();
    let mut idle = Vec::new();
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        for _ in 0..40 {
            idle.push(idle_head(server.addr).await);
        }
        let started = Instant::now();
        let res = client.get(server.url("/ok")).send().await.unwrap();
        assert_eq!(res.status(), 200, "round {round}");
        assert_eq!(res.text().await.unwrap(), "ok");
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "slowest genuine request {slowest:?}");
    // The idle connections were closed to keep the open ones under the cap: at most the cap
    // (50) and the waiters (16 to half the cap) are still open.
    let checks: Vec<_> = idle
        .into_iter()
        .map(|mut s| tokio::spawn(async move { closed_within(&mut s, Duration::from_secs(2)).await.is_ok() }))
        .collect();
    let mut closed = 0;
    for c in checks {
        if c.await.unwrap() {
            closed += 1;
        }
    }
    assert!(closed >= 400 - 50 - 25, "only {closed} of the 400 idle connections were closed");
}

#[tokio::test]
async fn a_response_marked_drop_connection_closes_the_connection_unanswered() {
    let server = start(quiet()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let got = closed_within(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(got.is_empty(), "something was written: {:?}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = start(quiet()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let local = s.local_addr().unwrap();
    let res = request_on(&mut s, "/peer").await;
    assert!(res.ends_with(&local.to_string()), "{res}");
}

#[tokio::test]
async fn graceful_shutdown_closes_idle_connections_and_finishes_requests_in_flight() {
    let mut server = start(quiet()).await;
    let mut idle = idle_head(server.addr).await;
    let client = fresh_client();
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await?.text().await });
    server.slow_started.lock().await.recv().await.unwrap();
    server.stop();
    // The idle connection closes at once; the request in flight is still running.
    closed_within(&mut idle, Duration::from_secs(5)).await.unwrap();
    assert!(!in_flight.is_finished());
    // New connections are refused.
    assert!(fresh_client().get(server.url("/ok")).send().await.is_err());
    server.release.notify_one();
    assert_eq!(in_flight.await.unwrap().unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), server.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn graceful_shutdown_is_bounded() {
    let mut server = start(quiet().shutdown_timeout(Duration::from_millis(300))).await;
    let client = fresh_client();
    let url = server.url("/slow");
    let in_flight = tokio::spawn(async move { client.get(url).send().await });
    server.slow_started.lock().await.recv().await.unwrap();
    let started = Instant::now();
    server.stop();
    tokio::time::timeout(Duration::from_secs(5), server.task).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The request never released was cut off.
    assert!(in_flight.await.unwrap().is_err());
}
