//! OpenID Connect discovery (`<identity>/oidc/.well-known/openid-configuration`, cached) and
//! Moneyhub's JWKS (cached; fetched again when a token names an unknown `kid`, at most once a
//! minute by default: see [`ClientBuilder::jwks_refetch_interval`](crate::ClientBuilder::jwks_refetch_interval)).

use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, Result};
use crate::jose::{self, JwsHeader};
use crate::transport::route::Route;
use crate::ClientInner;

/// The parts of the discovery document the client uses; everything else is in `extra`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer (`https://identity.moneyhub.co.uk/oidc`): id_tokens' `iss`.
    pub issuer: String,
    /// The authorisation endpoint (`…/oidc/auth`).
    pub authorization_endpoint: String,
    /// The token endpoint (`…/oidc/token`).
    pub token_endpoint: String,
    /// The JWKS (`…/oidc/certs`).
    pub jwks_uri: String,
    /// The PAR endpoint (`…/oidc/request`).
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Every other field, e.g. Moneyhub's `<kind>_connections_endpoint`s.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ProviderMetadata {
    /// The identity base URL webhooks name as `iss`: the issuer without `/oidc`.
    pub fn identity_base(&self) -> &str {
        let trimmed = self.issuer.trim_end_matches('/');
        trimmed.strip_suffix("/oidc").unwrap_or(trimmed)
    }
}

#[derive(Default)]
struct JwksState {
    keys: Arc<Vec<Value>>,
    fetched_at: Option<Instant>,
}

/// The cached discovery document and JWKS.
#[derive(Default)]
pub(crate) struct DiscoveryCache {
    metadata: tokio::sync::Mutex<Option<(Arc<ProviderMetadata>, Instant)>>,
    jwks: tokio::sync::Mutex<JwksState>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Value>,
}

impl ClientInner {
    /// The discovery document (fetched once per TTL; concurrent callers share the fetch).
    pub(crate) async fn metadata(&self) -> Result<Arc<ProviderMetadata>> {
        let mut cached = self.discovery.metadata.lock().await;
        if let Some((meta, at)) = cached.as_ref() {
            if at.elapsed() < self.config.discovery_ttl {
                return Ok(meta.clone());
            }
        }
        let reply = self.execute_plain(self.request(Route::Discovery)?).await?;
        let meta: ProviderMetadata = reply.decode()?;
        for (what, value) in [("token_endpoint", &meta.token_endpoint), ("jwks_uri", &meta.jwks_uri)] {
            self.endpoint(value, what)?;
        }
        let meta = Arc::new(meta);
        *cached = Some((meta.clone(), Instant::now()));
        Ok(meta)
    }

    /// Parses an endpoint URL from the discovery document.
    pub(crate) fn endpoint(&self, raw: &str, what: &str) -> Result<Url> {
        let url = Url::parse(raw)
            .map_err(|e| Error::config_with(format!("the discovery document's {what} is not a URL"), e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config(format!("the discovery document's {what} is not an http(s) URL")));
        }
        Ok(url)
    }

    /// The JWKS keys, fetched again (at most once a minute) when none matches `header`.
    pub(crate) async fn jwks_for(&self, header: &JwsHeader) -> Result<Arc<Vec<Value>>> {
        let mut state = self.discovery.jwks.lock().await;
        let stale = match state.fetched_at {
            None => true,
            Some(at) => {
                !jose::has_key(&state.keys, header) && at.elapsed() >= self.config.jwks_refetch_interval
            }
        };
        if stale {
            let meta = self.metadata().await?;
            let url = self.endpoint(&meta.jwks_uri, "jwks_uri")?;
            let reply = self.execute_plain(self.request_at(Route::Jwks, url)).await?;
            let set: JwkSet = reply.decode()?;
            state.keys = Arc::new(set.keys);
            state.fetched_at = Some(Instant::now());
        }
        Ok(state.keys.clone())
    }
}
