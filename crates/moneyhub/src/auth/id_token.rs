//! id_token verification: signature through Moneyhub's JWKS (RS256, PS256 or ES256 only),
//! `iss` = the discovery issuer, `aud` contains the client id (and `azp` names it when there
//! are several audiences), `exp` not passed (with a small leeway), `nonce` = the request's,
//! `sub` = the request's user, `at_hash` = the access token's when present.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result, Sent};
use crate::jose::{self, aud_contains, aud_len, str_claim, time_claim};
use crate::secret::Secret;
use crate::ClientInner;

use super::AuthorizationRequest;

/// The claims of a verified id_token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: Option<String>,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issue time.
    pub iat: Option<i64>,
    /// The nonce.
    pub nonce: Option<String>,
    /// Session id.
    pub sid: Option<String>,
    /// Every claim, including Moneyhub's `mh:*` ones.
    pub all: Map<String, Value>,
}

impl IdTokenClaims {
    /// A claim by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.all.get(name)
    }

    /// `mh:con_id`.
    pub fn connection_id(&self) -> Option<&str> {
        str_claim(&self.all, "mh:con_id")
    }

    /// The sync id in `mh:sync` (`{"syncId": …}`; a bare string is accepted too).
    pub fn sync_id(&self) -> Option<&str> {
        match self.all.get("mh:sync")? {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("syncId").and_then(Value::as_str),
            _ => None,
        }
    }
}

fn rejected(message: impl Into<String>) -> Error {
    Error::auth(format!("id_token rejected: {}", message.into()), Sent::Answered)
}

/// Verifies an id_token against the request it answers (see the module docs).
pub(crate) async fn verify_id_token(
    inner: &ClientInner,
    token: &str,
    request: &AuthorizationRequest,
    access_token: Option<&Secret>,
) -> Result<IdTokenClaims> {
    let header = jose::header(token.trim()).map_err(rejected)?;
    let keys = inner.jwks_for(&header).await?;
    let claims = jose::verify(token.trim(), &header, &keys).map_err(rejected)?;
    let meta = inner.metadata().await?;

    let iss = str_claim(&claims, "iss").ok_or_else(|| rejected("no iss claim"))?;
    if iss != meta.issuer {
        return Err(rejected(format!("iss {iss:?} is not the issuer {:?}", meta.issuer)));
    }
    let client_id = &inner.config.client_id;
    if !aud_contains(&claims, client_id) {
        return Err(rejected("aud does not contain this client's id"));
    }
    if aud_len(&claims) > 1 && str_claim(&claims, "azp") != Some(client_id.as_str()) {
        return Err(rejected("several audiences and azp is not this client's id"));
    }
    let now = inner.config.clock.now().timestamp();
    let leeway = i64::try_from(inner.config.jwt_leeway.as_secs()).unwrap_or(i64::MAX);
    let exp = time_claim(&claims, "exp").ok_or_else(|| rejected("no numeric exp claim"))?;
    if exp.saturating_add(leeway) < now {
        return Err(rejected("it has expired"));
    }
    if let Some(nbf) = time_claim(&claims, "nbf") {
        if nbf.saturating_sub(leeway) > now {
            return Err(rejected("it is not valid yet (nbf)"));
        }
    }
    match str_claim(&claims, "nonce") {
        Some(n) if Secret::ct_eq(n, &request.nonce) => {}
        Some(_) => return Err(rejected("nonce does not match the authorisation request")),
        None => return Err(rejected("no nonce claim (the request sent one)")),
    }
    let sub = str_claim(&claims, "sub");
    if let Some(user) = &request.user_id {
        if sub != Some(user.as_str()) {
            return Err(rejected("sub is not the user of the authorisation request"));
        }
    }
    if let (Some(at_hash), Some(token)) = (str_claim(&claims, "at_hash"), access_token) {
        if at_hash != jose::left_half_sha256(token.expose_secret()) {
            return Err(rejected("at_hash does not match the access token"));
        }
    }
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Ok(IdTokenClaims {
        iss: iss.to_owned(),
        sub: sub.map(str::to_owned),
        aud,
        exp,
        iat: time_claim(&claims, "iat"),
        nonce: str_claim(&claims, "nonce").map(str::to_owned),
        sid: str_claim(&claims, "sid").map(str::to_owned),
        all: claims,
    })
}
