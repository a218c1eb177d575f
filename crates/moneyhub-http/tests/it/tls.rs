//! The TLS acceptor hook: server certificate, optional and required client certificates,
//! the peer certificate as a request extension.

use moneyhub_http::tls::{server_config_from_pem, ClientAuth};
use moneyhub_http::ServeConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::support::start;

const CA: &[u8] = include_bytes!("../fixtures/ca.pem");
const SERVER_CERT: &[u8] = include_bytes!("../fixtures/server.pem");
const SERVER_KEY: &[u8] = include_bytes!("../fixtures/server.key");
const CLIENT_CERT: &[u8] = include_bytes!("../fixtures/client.pem");
const CLIENT_KEY: &[u8] = include_bytes!("../fixtures/client.key");

fn client(with_cert: bool) -> reqwest::Client {
    let mut b =
        reqwest::Client::builder().no_proxy().tls_certs_only([reqwest::Certificate::from_pem(CA).unwrap()]);
    if with_cert {
        let pem = [CLIENT_CERT, CLIENT_KEY].concat();
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn tls_server(auth: ClientAuth) -> crate::support::Server {
    let config = server_config_from_pem(SERVER_CERT, SERVER_KEY, auth).unwrap();
    start(ServeConfig::default().tls(config)).await
}

fn https(server: &crate::support::Server, path: &str) -> String {
    format!("https://localhost:{}{path}", server.addr.port())
}

#[tokio::test]
async fn a_self_signed_client_certificate_reaches_the_handler() {
    let server = tls_server(ClientAuth::Optional).await;
    // `localhost` resolves to loopback; the server certificate names it.
    let c = client(true);
    let got = c.get(https(&server, "/cert")).send().await.unwrap();
    assert_eq!(got.status(), 200);
    let der = got.bytes().await.unwrap();
    let expected = CertificateDer::from_pem_slice(CLIENT_CERT).unwrap();
    assert_eq!(der.as_ref(), expected.as_ref());
}

#[tokio::test]
async fn optional_client_auth_serves_clients_without_a_certificate() {
    let server = tls_server(ClientAuth::Optional).await;
    let got = client(false).get(https(&server, "/cert")).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), "none");
}

#[tokio::test]
async fn required_client_auth_refuses_clients_without_a_certificate() {
    let server = tls_server(ClientAuth::Required).await;
    assert!(client(false).get(https(&server, "/cert")).send().await.is_err());
    let ok = client(true).get(https(&server, "/ok")).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn without_client_auth_no_certificate_is_asked_for() {
    let server = tls_server(ClientAuth::None).await;
    let got = client(true).get(https(&server, "/cert")).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), "none");
}

#[tokio::test]
async fn plain_http_to_a_tls_server_gets_no_answer() {
    let server = tls_server(ClientAuth::None).await;
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(plain.get(format!("http://{}/ok", server.addr)).send().await.is_err());
}

#[test]
fn unusable_pem_gives_clear_errors() {
    let e = server_config_from_pem(b"not pem", SERVER_KEY, ClientAuth::None).unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
    let e = server_config_from_pem(SERVER_CERT, b"nothing", ClientAuth::None).unwrap_err();
    assert!(e.to_string().contains("no private key"), "{e}");
    let e = server_config_from_pem(SERVER_CERT, CLIENT_KEY, ClientAuth::None).unwrap_err();
    assert!(e.to_string().contains("unusable"), "{e}");
    assert!(!e.to_string().contains("PRIVATE"), "{e}");
}
