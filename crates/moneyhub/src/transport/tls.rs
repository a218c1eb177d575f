//! TLS of the client's own `reqwest::Client`: rustls on aws-lc-rs, HTTP/1.1, the optional
//! client certificate, and server certificates checked against the platform's trust store
//! (rustls-platform-verifier) or, with the `webpki-roots` feature, Mozilla's bundle, plus
//! the roots the builder added.
//!
//! Why not reqwest's own TLS set-up: it builds the root store when the client is built. On
//! Linux that reads and parses every certificate of the system bundle and directory (hundreds),
//! for each `Client` built, even one that only ever speaks plain HTTP to a local sandbox: ~10 MiB
//! of peak memory and a few milliseconds per client (`bench/by-ids.sh`). Here the trust store
//! is loaded on the first HTTPS handshake, once per process (clients without added roots share
//! it), and never for plain HTTP. Verification is the same verifier reqwest uses, so what is
//! trusted does not change.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The rustls configuration of a client built by [`ClientBuilder`](crate::ClientBuilder):
/// `extra_roots` are trusted beside the default roots, `identity` (certificate chain PEM,
/// private key PEM) is presented when the server asks for a client certificate.
pub(crate) fn client_config(
    extra_roots: Vec<CertificateDer<'static>>,
    identity: Option<(&[u8], &str)>,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier: Arc<LazyVerifier> = if extra_roots.is_empty() {
        // One trust store for every client of the process.
        static SHARED: OnceLock<Arc<LazyVerifier>> = OnceLock::new();
        SHARED.get_or_init(|| Arc::new(LazyVerifier::new(provider.clone(), Vec::new()))).clone()
    } else {
        Arc::new(LazyVerifier::new(provider.clone(), extra_roots))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config_with("could not set up TLS", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|_| Error::config("the TLS client certificate is not a PEM certificate"))?;
            if chain.is_empty() {
                return Err(Error::config("the TLS client certificate is not a PEM certificate"));
            }
            // Errors are reported by kind only: a parser's message could quote the key.
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|_| Error::config("the TLS client key is not a PEM private key"))?;
            builder.with_client_auth_cert(chain, key).map_err(|_| {
                Error::config("the TLS client certificate and key are not a usable pair (PEM)")
            })?
        }
    };
    // The client speaks HTTP/1.1 only (reqwest without `http2`), as reqwest would announce.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// aws-lc-rs, the workspace's one crypto provider (built once).
fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// The default roots (platform, or Mozilla's with `webpki-roots`) and `extra`, loaded on the
/// first certificate to check. Handshake signatures are checked without them, with the
/// provider's algorithms, as the loaded verifier would.
#[derive(Debug)]
struct LazyVerifier {
    provider: Arc<CryptoProvider>,
    extra: Vec<CertificateDer<'static>>,
    loaded: OnceLock<std::result::Result<Arc<dyn ServerCertVerifier>, rustls::Error>>,
}

impl LazyVerifier {
    fn new(provider: Arc<CryptoProvider>, extra: Vec<CertificateDer<'static>>) -> Self {
        LazyVerifier { provider, extra, loaded: OnceLock::new() }
    }

    fn get(&self) -> std::result::Result<&Arc<dyn ServerCertVerifier>, rustls::Error> {
        self.loaded.get_or_init(|| self.load()).as_ref().map_err(Clone::clone)
    }

    #[cfg(not(feature = "webpki-roots"))]
    fn load(&self) -> std::result::Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
        let verifier = if self.extra.is_empty() {
            rustls_platform_verifier::Verifier::new(self.provider.clone())?
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                self.extra.clone(),
                self.provider.clone(),
            )?
        };
        Ok(Arc::new(verifier))
    }

    #[cfg(feature = "webpki-roots")]
    fn load(&self) -> std::result::Result<Arc<dyn ServerCertVerifier>, rustls::Error> {
        // Mozilla's bundle (compiled in) and the added roots, and nothing else.
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        for cert in &self.extra {
            roots.add(cert.clone())?;
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(format!("no usable root certificate: {e}")))?;
        Ok(verifier)
    }
}

impl ServerCertVerifier for LazyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.get()?.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
