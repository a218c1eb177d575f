//! The TLS acceptor hook: a rustls server configuration for [`crate::ServeConfig::tls`], with
//! optional client certificates.
//!
//! Client certificates are not checked against any authority: the verifier accepts any
//! well-formed X.509 certificate, self-signed included, once its holder has proved in the
//! handshake that it has the matching private key. The certificate (DER) then reaches every
//! request of the connection as a [`PeerCertificate`] extension, and the handler decides
//! whether it is the one it expects (for example by comparing its SHA-256 fingerprint with a
//! registered one). Validity dates are not checked either: pinning a registered certificate is
//! the handler's job. This is how an API that registers each client's certificate
//! (self-signed, as Moneyhub's own mTLS clients are) authenticates it.
//!
//! ```no_run
//! # fn demo() -> Result<(), moneyhub_http::tls::TlsSetupError> {
//! let config = moneyhub_http::tls::server_config_from_pem_files(
//!     "server.pem".as_ref(),
//!     "server.key".as_ref(),
//!     moneyhub_http::tls::ClientAuth::Optional,
//! )?;
//! let serve = moneyhub_http::ServeConfig::default().tls(config);
//! # let _ = serve; Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// The client's certificate (DER), put into the extensions of every request of a TLS
/// connection whose client presented one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCertificate(pub CertificateDer<'static>);

impl PeerCertificate {
    /// The certificate's DER bytes.
    pub fn der(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// Whether clients present certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// Asked for; a client without one is served too (no [`PeerCertificate`] then).
    Optional,
    /// Required: the handshake fails without one.
    Required,
}

/// Why a TLS configuration could not be built. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// A file could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate PEM holds no usable certificate.
    #[error("no certificate found in the certificate PEM{0}")]
    NoCertificate(String),
    /// The key PEM holds no usable private key.
    #[error("no private key (PKCS#8, PKCS#1 or SEC1) found in the key PEM{0}")]
    NoKey(String),
    /// rustls refused the certificate or key (for example a key that does not match).
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A server configuration from a certificate chain (leaf first) and its key.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    if cert_chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(String::new()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match client_auth {
        ClientAuth::None => builder.with_no_client_auth().with_single_cert(cert_chain, key)?,
        ClientAuth::Optional | ClientAuth::Required => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                provider,
                mandatory: client_auth == ClientAuth::Required,
            }))
            .with_single_cert(cert_chain, key)?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration from PEM text: every `CERTIFICATE` of `cert_pem` (leaf first) and
/// the first private key of `key_pem`.
pub fn server_config_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    pem_config(cert_pem, key_pem, client_auth, "")
}

/// A server configuration from PEM files (see [`server_config_from_pem`]).
pub fn server_config_from_pem_files(
    cert_path: &Path,
    key_path: &Path,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsSetupError::Read { path: p.display().to_string(), source })
    };
    let cert = read(cert_path)?;
    let key = read(key_path)?;
    let cert_note = format!(" {}", cert_path.display());
    let key_note = format!(" {}", key_path.display());
    let chain = certs(&cert, &cert_note)?;
    let key = private_key(&key, &key_note)?;
    server_config(chain, key, client_auth)
}

fn pem_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_auth: ClientAuth,
    note: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let chain = certs(cert_pem, note)?;
    let key = private_key(key_pem, note)?;
    server_config(chain, key, client_auth)
}

fn certs(pem: &[u8], note: &str) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).filter_map(|c| c.ok()).collect();
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate(note.to_owned()));
    }
    Ok(chain)
}

fn private_key(pem: &[u8], note: &str) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsSetupError::NoKey(note.to_owned()))
}

/// Accepts any well-formed client certificate whose holder signs the handshake with its key.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Only that it is a certificate; who it belongs to is the handler's decision.
        webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
