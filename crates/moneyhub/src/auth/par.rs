//! Pushed authorisation requests (RFC 9126): `POST <pushed_authorization_request_endpoint>`
//! answered 201 `{request_uri, expires_in}`; the browser then goes to
//! `<authorization_endpoint>?client_id=…&request_uri=…`.
//!
//! With a request-object algorithm configured
//! ([`ClientBuilder::request_object_signing_alg`](crate::ClientBuilder::request_object_signing_alg)),
//! the parameters travel inside a signed request object (JAR, RFC 9101) as `request=<JWS>`
//! (header `typ: oauth-authz-req+jwt`, `kid`; claims `iss` = client_id, `aud` = issuer,
//! `iat`, `nbf`, `exp` = +300 s, `jti`, `client_id` and every authorisation parameter, `claims`
//! as an object), as Moneyhub requires of clients registered with a signed algorithm; plain
//! parameters only for `none`.

use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use moneyhub_types::{ConnectionId, UserId};

use super::{Auth, AuthFlow, AuthorizationRequest};
use crate::config::ClientAuth;
use crate::error::{Error, Result};
use crate::jose::{pkce_challenge, random_token, random_uuid};
use crate::secret::Secret;
use crate::transport::route::Route;

/// What a flow pushes.
pub(super) struct PushRequest {
    pub flow: AuthFlow,
    pub scope: String,
    pub claims: Value,
    pub state: String,
    pub nonce: String,
    pub user_id: Option<UserId>,
    pub connection_id: Option<ConnectionId>,
    pub redirect_uri: Option<String>,
}

#[derive(Deserialize)]
struct ParResponse {
    request_uri: String,
    expires_in: u64,
}

impl Auth {
    pub(super) async fn push(&self, req: PushRequest) -> Result<AuthorizationRequest> {
        let inner = self.client.inner();
        let redirect_uri = match (&req.redirect_uri, &inner.config.redirect_uri) {
            (Some(r), _) => {
                Url::parse(r).map_err(|_| Error::validation(format!("invalid redirect URI {r:?}")))?
            }
            (None, Some(r)) => r.clone(),
            (None, None) => {
                return Err(Error::config("no redirect URI is configured (ClientBuilder::redirect_uri)"))
            }
        };
        let meta = inner.metadata().await?;
        let par = meta.pushed_authorization_request_endpoint.as_deref().ok_or_else(|| {
            Error::config("the identity service does not advertise a pushed authorisation request endpoint")
        })?;
        let par_url = inner.endpoint(par, "pushed_authorization_request_endpoint")?;
        let auth_url = inner.endpoint(&meta.authorization_endpoint, "authorization_endpoint")?;
        // RFC 7636: 32 random bytes → a 43-character verifier.
        let verifier = Secret::new(random_token(32));
        let params = vec![
            ("client_id", inner.config.client_id.clone()),
            ("response_type", "code".to_owned()),
            ("scope", req.scope),
            ("redirect_uri", redirect_uri.as_str().to_owned()),
            ("state", req.state.clone()),
            ("nonce", req.nonce.clone()),
            ("prompt", "consent".to_owned()),
            ("claims", req.claims.to_string()),
            ("code_challenge", pkce_challenge(verifier.expose_secret())),
            ("code_challenge_method", "S256".to_owned()),
        ];
        let form = match (inner.config.request_object_alg, &inner.config.auth) {
            (None, _) => params,
            (Some(alg), ClientAuth::PrivateKey(key)) => {
                let now = inner.config.clock.now().timestamp();
                let mut claims = serde_json::Map::new();
                for (k, v) in &params {
                    claims.insert((*k).to_owned(), Value::String(v.clone()));
                }
                claims.insert("claims".into(), req.claims.clone());
                claims.insert("iss".into(), json!(inner.config.client_id));
                claims.insert("aud".into(), json!(meta.issuer));
                claims.insert("iat".into(), json!(now));
                claims.insert("nbf".into(), json!(now));
                claims.insert("exp".into(), json!(now + 300));
                claims.insert("jti".into(), json!(random_uuid().to_string()));
                let jws = key.sign_with(alg, "oauth-authz-req+jwt", &Value::Object(claims))?;
                vec![("client_id", inner.config.client_id.clone()), ("request", jws)]
            }
            // Refused when the client is built.
            (Some(alg), other) => {
                return Err(Error::config(format!(
                    "request objects signed with {alg} need a private key, not {}",
                    other.method()
                )))
            }
        };
        let call = inner.request_at(Route::Par, par_url).client_auth(&meta.token_endpoint).form(form);
        let reply = inner.execute(call).await?;
        let pushed: ParResponse = reply.decode()?;
        let mut url = auth_url;
        url.query_pairs_mut()
            .append_pair("client_id", &inner.config.client_id)
            .append_pair("request_uri", &pushed.request_uri);
        let lifetime =
            Duration::seconds(i64::try_from(pushed.expires_in).unwrap_or(i64::MAX / 1000).min(86_400));
        Ok(AuthorizationRequest {
            url,
            state: req.state,
            nonce: req.nonce,
            code_verifier: verifier,
            redirect_uri: redirect_uri.as_str().to_owned(),
            flow: req.flow,
            user_id: req.user_id,
            connection_id: req.connection_id,
            expires_at: inner.config.clock.now() + lifetime,
        })
    }
}
