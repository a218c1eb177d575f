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
    /// Credentials accepted on a bank that wants one-time codes: what approving the last
    /// code will grant.
    pub awaiting_code: Option<Flow>,
    /// How many one-time codes are still to enter (multi-step MFA: `mfa_twice` asks two).
    pub codes_left: u8,
    /// How many codes the login asked for in all (the pages say "step N of M").
    pub codes_total: u8,
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

/// What a magic password on the bank's login page scripts for the new connection (the
/// connection is made and its first fetch succeeds; then the bank behaves as named), so
/// that every row of the health advice (lifecycle spec §3) can be reached from a browser.
///
/// Decision (the reference is silent on how a sandbox reaches these states from a login):
/// a one-off failure (`sync_error`, `sync_partial`) fails only the next sync, so a retry
/// passes (rows 9 and 11); a lasting one (`credentials_error`, `mfa_required`,
/// `provider_outage`) fails every sync from the next on until the connection is renewed or
/// re-scripted (rows 4, 5, 10, and after three days of outage `stoppedSyncing`, row 6);
/// `resync` makes the data stale at once (its last update is moved back past the account
/// types' staleness limit; the next successful sync clears it: row 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magic {
    /// `credentials_error`: every sync from the next on is refused by the bank.
    CredentialsError,
    /// `mfa_required`: every sync from the next on needs the user's MFA.
    MfaRequired,
    /// `sync_error`: the next sync fails (a retry passes).
    SyncError,
    /// `sync_partial`: the next sync brings only part of the data.
    SyncPartial,
    /// `provider_outage`: the bank is down: every sync from the next on fails.
    ProviderOutage,
    /// `resync`: the connection's data is already stale.
    Resync,
}

impl Magic {
    /// Every magic password that scripts the connection, with what it does (the login page
    /// lists them).
    pub const ALL: &'static [(&'static str, Magic, &'static str)] = &[
        (
            "credentials_error",
            Magic::CredentialsError,
            "connected; from the next sync on the bank rejects the credentials (reauth)",
        ),
        (
            "mfa_required",
            Magic::MfaRequired,
            "connected; from the next sync on the bank wants MFA (legacy: refresh; open banking: reauth)",
        ),
        ("sync_error", Magic::SyncError, "connected; the next sync fails once (a retry passes)"),
        ("sync_partial", Magic::SyncPartial, "connected; the next sync brings only part of the data"),
        (
            "provider_outage",
            Magic::ProviderOutage,
            "connected; the bank is down from the next sync on (three days later: stoppedSyncing)",
        ),
        ("resync", Magic::Resync, "connected with data that is already stale (error resync)"),
    ];

    /// The magic of a password, if it is one.
    pub fn of_password(password: &str) -> Option<Magic> {
        Magic::ALL.iter().find(|(p, _, _)| *p == password).map(|(_, m, _)| *m)
    }
}
