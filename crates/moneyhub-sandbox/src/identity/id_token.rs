//! id_tokens: what openid-client (and any careful relying party) verifies, and Moneyhub's
//! `mh:*` claims.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::Oidc;
use crate::error::OAuthError;
use crate::keys::left_half_hash;

/// How long id_tokens are valid (Moneyhub's examples: one hour).
pub const ID_TOKEN_TTL_SECS: i64 = 3600;

/// The inputs of one id_token.
#[derive(Debug, Default)]
pub struct IdToken<'a> {
    /// The client (`aud`).
    pub client_id: &'a str,
    /// The user (`sub`).
    pub user_id: &'a str,
    /// Echoed only when the authorisation request carried one (openid-client treats an
    /// unexpected nonce as a mismatch).
    pub nonce: Option<&'a str>,
    /// Session id.
    pub sid: &'a str,
    /// `auth_time`, included only when the request asked for `max_age`.
    pub auth_time: Option<i64>,
    /// `mh:con_id`.
    pub connection_id: Option<&'a str>,
    /// `mh:sync` (asynchronous connections only).
    pub sync_id: Option<Uuid>,
    /// The access token issued alongside (gives `at_hash`).
    pub access_token: Option<&'a str>,
    /// The code issued alongside on the front channel (gives `c_hash`).
    pub code: Option<&'a str>,
}

impl IdToken<'_> {
    /// Signs the id_token (RS256, the key of `/oidc/certs`) issued at `iat`.
    pub fn sign(&self, state: &Oidc, iat: i64) -> Result<String, OAuthError> {
        let mut c = Map::new();
        c.insert("iss".into(), json!(state.core.issuer()));
        c.insert("sub".into(), json!(self.user_id));
        c.insert("aud".into(), json!(self.client_id));
        c.insert("iat".into(), json!(iat));
        c.insert("exp".into(), json!(iat + ID_TOKEN_TTL_SECS));
        c.insert("sid".into(), json!(self.sid));
        if let Some(n) = self.nonce {
            c.insert("nonce".into(), json!(n));
        }
        if let Some(t) = self.auth_time {
            c.insert("auth_time".into(), json!(t));
        }
        if let Some(at) = self.access_token {
            c.insert("at_hash".into(), json!(left_half_hash(at)));
        }
        if let Some(code) = self.code {
            c.insert("c_hash".into(), json!(left_half_hash(code)));
        }
        if let Some(con) = self.connection_id {
            c.insert("mh:con_id".into(), json!(con));
        }
        if let Some(sync) = self.sync_id {
            c.insert("mh:sync".into(), json!({"syncId": sync.to_string()}));
        }
        state.identity.key.sign("JWT", &Value::Object(c)).map_err(|e| OAuthError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: format!("could not sign the id_token: {e}"),
        })
    }
}
