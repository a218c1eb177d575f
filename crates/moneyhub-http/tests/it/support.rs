//! A small app served by `moneyhub_http::serve` and raw-socket helpers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use moneyhub_http::{DropConnection, PeerCertificate, ServeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;

/// What the `/slow` handler does: tells the test it started, then waits to be released.
#[derive(Clone)]
pub struct Slow {
    pub started: mpsc::UnboundedSender<()>,
    pub release: Arc<Notify>,
}

pub struct Server {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<()>,
    pub slow_started: Mutex<mpsc::UnboundedReceiver<()>>,
    pub release: Arc<Notify>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn cert(cert: Option<axum::Extension<PeerCertificate>>) -> Vec<u8> {
    match cert {
        Some(axum::Extension(c)) => c.der().to_vec(),
        None => b"none".to_vec(),
    }
}

pub fn app(slow: Slow) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/peer", get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body.len().to_string() }))
        .route(
            "/drop",
            get(|| async {
                let mut res = "never sent".into_response();
                res.extensions_mut().insert(DropConnection);
                res
            }),
        )
        .route(
            "/slow",
            get(|State(slow): State<Slow>| async move {
                let _ = slow.started.send(());
                slow.release.notified().await;
                "done"
            }),
        )
        .route("/cert", get(cert))
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("a handler bug")
                } else {
                    "never"
                }
            }),
        )
        // Answers without reading the body (as an error found in the head would).
        .route("/early", post(|| async { (axum::http::StatusCode::NOT_FOUND, "not here") }))
        .with_state(slow)
}

pub async fn start(config: ServeConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (started_tx, started_rx) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let app = app(Slow { started: started_tx, release: release.clone() });
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(moneyhub_http::serve(listener, app, config, async move {
        let _ = rx.await;
    }));
    Server { addr, stop: Some(tx), task, slow_started: Mutex::new(started_rx), release }
}

/// A client that opens a new connection per request.
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).no_proxy().build().unwrap()
}

/// Reads until the peer closes; `Ok(bytes)` on EOF or reset, `Err` if `within` passes first.
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, &'static str> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    match read {
        Ok(()) => Ok(got),
        Err(_) => Err("the server did not close the connection"),
    }
}

/// Opens a connection and sends the start of a request head (never finished).
pub async fn idle_head(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /webhooks HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    s
}

/// Sends one complete keep-alive request and reads its response head and body.
pub async fn request_on(stream: &mut TcpStream, path: &str) -> String {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response was complete");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= head_end + 4 + len {
                return text;
            }
        }
    }
}
