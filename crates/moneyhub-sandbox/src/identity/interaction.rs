//! One run through the consent pages: the validated authorisation request it serves and
//! what the pages need to remember between two of them.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::authz::{AuthRequest, Flow};
use super::params::Params;
use crate::seed::catalogue::Listing;

/// How long (virtual seconds) the consent pages of one request stay usable.
pub const INTERACTION_TTL_SECS: i64 = 3600;

/// The consent pages' state for one authorisation request.
///
/// Decision (CSRF and tampering): the pages' forms carry nothing but this interaction's id
/// (in the URL) and what the person chooses (bank for a group scope, accounts, credentials);
/// everything the request fixed (client, redirect URI, state, scope, user, connection,
/// expiry) stays here, server-side. A POST is accepted only with the cookie set when the
/// interaction began ([`Interaction::browser_key`], `SameSite=Strict`, so no other site's
/// page can make the browser send it) and, when the browser names one, the sandbox's own
/// `Origin`. The interaction is single use: approving or cancelling ends it.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// The validated request.
    pub req: AuthRequest,
    /// The auth request (`POST /auth-requests`) it belongs to, if any.
    pub auth_request: Option<String>,
    /// The scope named a group (`id:all`, `id:test`...): the person picks the bank.
    pub chooser: Option<Listing>,
    /// What `mh:consent` asked for.
    pub summary: ConsentSummary,
    /// The cookie value a POST must carry.
    pub browser_key: String,
    /// Credentials accepted on a legacy provider that wants a one-time code: what approving
    /// the code will grant.
    pub awaiting_code: Option<Flow>,
    /// Expiry, virtual seconds.
    pub expires_at: i64,
}

/// The consent summary the pages show, from `mh:consent` (already validated).
#[derive(Debug, Clone, Default)]
pub struct ConsentSummary {
    /// Extra permissions asked for (`permissions`), beside the standard account-information
    /// ones.
    pub extra_permissions: Vec<String>,
    /// `expirationDateTime`.
    pub expires_at: Option<DateTime<Utc>>,
    /// `transactionFromDateTime`.
    pub history_from: Option<DateTime<Utc>>,
}

impl ConsentSummary {
    /// Reads `claims.id_token["mh:consent"].value` of the effective parameters; anything
    /// unreadable is left out (validation has already refused what must be refused).
    pub fn from_params(params: &Params) -> Self {
        let claims: Option<Value> = params.get("claims").and_then(|c| serde_json::from_str(c).ok());
        let Some(consent) = claims.as_ref().and_then(|c| c.pointer("/id_token/mh:consent/value")) else {
            return ConsentSummary::default();
        };
        let date = |name: &str| {
            consent
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        ConsentSummary {
            extra_permissions: consent
                .get("permissions")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            expires_at: date("expirationDateTime"),
            history_from: date("transactionFromDateTime"),
        }
    }
}
