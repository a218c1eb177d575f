//! TLS to PostgreSQL with rustls (the aws-lc-rs provider, the one crypto stack of the workspace; no OpenSSL), configured as libpq is,
//! from the URL's query parameters:
//!
//! | parameter | values | meaning |
//! | --- | --- | --- |
//! | `sslmode` | `disable` | plain TCP only |
//! | | `prefer` (default, as libpq; `allow` is read as `prefer`) | TLS when the server offers it, else plain TCP; the certificate is not checked unless `sslrootcert` is given |
//! | | `require` | TLS or nothing; the certificate is not checked unless `sslrootcert` is given (then as `verify-ca`, as libpq) |
//! | | `verify-ca` | TLS; the server's chain must lead to a trusted root (its name is not compared) |
//! | | `verify-full` | TLS; the chain must lead to a trusted root and the certificate must name the host of the URL |
//! | `sslrootcert` | a PEM file, or `system` | the trusted roots; without it, `verify-ca`/`verify-full` trust the Mozilla roots (`webpki-roots`), as `system` does |
//! | `sslcert`, `sslkey` | PEM files | a client certificate and its (unencrypted) key, both or neither |
//!
//! `sslpassword` (encrypted keys) and `passfile` are refused with a message saying so, rather
//! than ignored. Every other parameter goes to `tokio-postgres`. These parameters (and any
//! password) are redacted wherever a URL is shown ([`super::redact`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode`, as this crate implements it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it (the default).
    #[default]
    Prefer,
    /// TLS always; the certificate is checked only against an `sslrootcert` if one is given.
    Require,
    /// TLS; the chain must lead to a trusted root.
    VerifyCa,
    /// TLS; trusted chain and matching host name.
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Result<SslMode, String> {
        match v {
            "disable" => Ok(SslMode::Disable),
            "prefer" | "allow" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "sslmode {:?} is not one of disable, prefer, require, verify-ca, verify-full",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    /// The name libpq uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// A PEM file.
    File(PathBuf),
    /// The Mozilla roots.
    System,
}

/// The TLS settings of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsSettings {
    pub mode: SslMode,
    pub roots: Option<Roots>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// This crate's own parameters of a PostgreSQL URL (TLS and the connection pools).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Params {
    pub tls: TlsSettings,
    /// `pool_max_size`: most connections of the processors and readers.
    pub pool_max_size: Option<usize>,
    /// `pool_timeout` (seconds): how long a task waits for a free connection.
    pub pool_timeout: Option<std::time::Duration>,
}

/// Takes this crate's parameters (TLS, pool) out of a `postgres://` URL: the URL for the
/// driver, and the settings. Errors are messages for [`crate::Error::DbUrl`] (they never
/// contain values of credential parameters).
pub(crate) fn split(url: &url::Url) -> Result<(url::Url, Params), String> {
    let mut params = Params::default();
    let settings = &mut params.tls;
    let (mut cert, mut key) = (None, None);
    let mut kept = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "pool_max_size" => {
                let n: usize = v.parse().ok().filter(|n| (1..=10_000).contains(n)).ok_or_else(|| {
                    "pool_max_size must be a number of connections from 1 to 10000".to_owned()
                })?;
                params.pool_max_size = Some(n);
            }
            "pool_timeout" => {
                let secs: u64 =
                    v.parse().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                        "pool_timeout must be a number of seconds from 1 to 3600".to_owned()
                    })?;
                params.pool_timeout = Some(std::time::Duration::from_secs(secs));
            }
            "sslmode" => settings.mode = SslMode::parse(&v)?,
            "sslrootcert" if v == "system" => settings.roots = Some(Roots::System),
            "sslrootcert" => settings.roots = Some(Roots::File(PathBuf::from(v.as_ref()))),
            "sslcert" => cert = Some(PathBuf::from(v.as_ref())),
            "sslkey" => key = Some(PathBuf::from(v.as_ref())),
            "sslpassword" => {
                return Err("sslpassword is not supported: give sslkey an unencrypted key file".into())
            }
            "passfile" => {
                return Err(
                    "passfile is not supported: put the password in the URL (it is never shown)".into()
                )
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    settings.client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("sslcert and sslkey go together: give both or neither".into()),
    };
    if settings.mode == SslMode::Disable && (settings.roots.is_some() || settings.client_cert.is_some()) {
        return Err("sslmode=disable with sslrootcert, sslcert or sslkey: choose one".into());
    }
    let mut out = url.clone();
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok((out, params))
}

/// The driver's mode for ours: tokio-postgres knows disable, prefer and require; the
/// verification itself is rustls's.
pub(crate) fn driver_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Reads PEM certificates. Messages name the file only for `sslrootcert` (a public CA): the
/// client certificate's and key's paths are redacted like the rest of the URL's credentials.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let name = if what == "sslrootcert" { format!("{what} {}", path.display()) } else { what.to_owned() };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {name}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{name} is not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{name} holds no certificate"));
    }
    Ok(certs)
}

fn root_store(roots: Option<&Roots>) -> Result<RootCertStore, String> {
    match roots {
        None | Some(Roots::System) => Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }),
        Some(Roots::File(path)) => {
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(read_certs(path, "sslrootcert")?);
            if added == 0 {
                return Err(format!("sslrootcert {} holds no usable CA certificate", path.display()));
            }
            Ok(store)
        }
    }
}

/// The rustls configuration for these settings (`None` for `disable`).
pub(crate) fn client_config(settings: &TlsSettings) -> Result<Option<ClientConfig>, String> {
    let verifier: Arc<dyn ServerCertVerifier> = match (settings.mode, &settings.roots) {
        (SslMode::Disable, _) => return Ok(None),
        (SslMode::Prefer | SslMode::Require, None) => Arc::new(Lenient { chain: None, provider: provider() }),
        (SslMode::VerifyFull, roots) => webpki(roots.as_ref())?,
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, roots) => {
            Arc::new(Lenient { chain: Some(webpki(roots.as_ref())?), provider: provider() })
        }
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &settings.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = read_certs(cert, "sslcert")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("sslkey is not a readable, unencrypted PEM private key: {e}"))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| format!("sslcert/sslkey: {e}"))?
        }
    };
    Ok(Some(config))
}

fn webpki(roots: Option<&Roots>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(root_store(roots)?), provider())
        .build()
        .map_err(|e| format!("TLS roots: {e}"))
}

/// The checks below `verify-full` (which is rustls's own verifier), in one verifier:
///
/// * `verify-ca` (and `prefer`/`require` with an `sslrootcert`): `chain` set, the full check
///   except that a certificate for another name is accepted;
/// * `prefer`/`require` without `sslrootcert` (libpq's behaviour): no `chain`, encryption
///   against passive eavesdropping without authenticating the server.
///
/// Either way the handshake's signatures are checked with the provider's algorithms (those
/// rustls's own verifier uses), so the session is bound to the certificate the server sent.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(q: &str) -> Result<(String, TlsSettings), String> {
        let url = url::Url::parse(&format!("postgres://u@h/db{q}")).unwrap();
        split(&url).map(|(u, p)| (u.to_string(), p.tls))
    }

    #[test]
    fn parameters() {
        let (u, s) = settings("").unwrap();
        assert_eq!((u.as_str(), s.mode), ("postgres://u@h/db", SslMode::Prefer));
        let (u, s) = settings("?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3").unwrap();
        assert_eq!(u, "postgres://u@h/db?connect_timeout=3");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(settings("?sslrootcert=system").unwrap().1.roots, Some(Roots::System));
        let url = url::Url::parse("postgres://u@h/db?pool_max_size=4&pool_timeout=7").unwrap();
        let (u, p) = split(&url).unwrap();
        assert_eq!(u.as_str(), "postgres://u@h/db");
        assert_eq!((p.pool_max_size, p.pool_timeout), (Some(4), Some(std::time::Duration::from_secs(7))));
        for bad in [
            "?sslmode=sometimes",
            "?sslpassword=x",
            "?passfile=/p",
            "?sslcert=/c.pem",
            "?sslmode=disable&sslrootcert=/ca.pem",
            "?pool_max_size=0",
            "?pool_timeout=forever",
        ] {
            let e = settings(bad).unwrap_err();
            assert!(!e.is_empty() && !e.contains("=x"), "{bad}: {e}");
        }
        let e = client_config(&TlsSettings {
            mode: SslMode::VerifyFull,
            roots: Some(Roots::File("/nonexistent/ca.pem".into())),
            client_cert: None,
        })
        .unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        assert!(client_config(&TlsSettings::default()).unwrap().is_some());
        assert!(client_config(&TlsSettings { mode: SslMode::Disable, ..Default::default() })
            .unwrap()
            .is_none());
    }
}
