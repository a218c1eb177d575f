//! [`advise`]: the lifecycle spec's §3 table, row by row, in its order of precedence.

use std::fmt;

use chrono::{DateTime, Utc};
// The tests (`use super::*`) build durations; the thresholds live in `health::thresholds`.
#[cfg(test)]
use chrono::Duration;
use moneyhub_types::{Connection, ConnectionError, ConnectionStatus, ExtendedStatus};
use serde::{Deserialize, Serialize};

use crate::health::context::AdviceContext;
use crate::health::staleness::{is_stale, last_data_at};
use crate::health::thresholds;

/// What to do about a connection. Serialised as `none`, `sync`, `reauth`, `reconsent`,
/// `refresh`, `remove` or `contact_support`.
///
/// ```
/// use moneyhub::health::Action;
/// assert_eq!(Action::ContactSupport.as_str(), "contact_support");
/// assert_eq!(Action::Reconsent.to_string(), "reconsent");
/// assert_eq!(serde_json::to_string(&Action::None)?, r#""none""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Healthy: nothing to do.
    None,
    /// Start a manual sync (`POST /sync/{connectionId}`), at or after
    /// [`Advice::not_before`] when set.
    Sync,
    /// Send the user through the reauth flow (log in to the provider again; the connection id
    /// may change).
    Reauth,
    /// Send the user through the reconsent flow (renew consent without going back to the bank;
    /// API-like connections with `tppConsent` only).
    Reconsent,
    /// Send the user through the refresh flow (provide MFA or other input; legacy connections).
    Refresh,
    /// Remove the connection: the provider is gone for good; offer another provider.
    Remove,
    /// Moneyhub reported something this crate does not know; raise it with support.
    ContactSupport,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 7] = [
        Action::None,
        Action::Sync,
        Action::Reauth,
        Action::Reconsent,
        Action::Refresh,
        Action::Remove,
        Action::ContactSupport,
    ];

    /// The action's snake_case name, as serialised.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Sync => "sync",
            Action::Reauth => "reauth",
            Action::Reconsent => "reconsent",
            Action::Refresh => "refresh",
            Action::Remove => "remove",
            Action::ContactSupport => "contact_support",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The advice for one connection: exactly one [`Action`], why, and when.
///
/// Serialised with camelCase field names; `notBefore` (Moneyhub's timestamp format) and
/// `unknown` are left out when absent:
/// `{"action":"sync","reason":"…","notBefore":"2025-01-03T09:30:00.000Z","rule":9}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Advice {
    /// What to do.
    pub action: Action,
    /// One plain sentence a support agent could read to the user. It also names any value
    /// Moneyhub sent that this crate does not recognise.
    pub reason: String,
    /// Only with [`Action::Sync`]: the manual-sync guard does not allow a sync before this time
    /// (it is after [`AdviceContext::now`]).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "moneyhub_types::time::timestamp_opt")]
    pub not_before: Option<DateTime<Utc>>,
    /// The row of the lifecycle spec's §3 table that decided, `1..=17`.
    pub rule: u8,
    /// Only with [`Action::ContactSupport`]: the unrecognised value that caused it, as
    /// `field=value` (`"error=paused"`, `"status=suspended"`; a `status: error` without an
    /// error code gives `"error=null"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// Advises what to do about `connection`, following the lifecycle spec's §3 table exactly: the
/// first row that applies wins. See the [module docs](crate::health) for the table and for how
/// missing and unrecognised values are handled.
///
/// Total: every connection and context (unknown enum values, missing or extreme dates included)
/// gets exactly one action, a non-empty reason and a rule in `1..=17`.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use moneyhub::health::{advise, Action, AdviceContext};
/// use moneyhub_types::Connection;
///
/// let connection: Connection = serde_json::from_value(serde_json::json!({
///     "id": "b74f1a79f0be8bdb857d82d0f041d7d2:7d235ab0-e951-487f-acde-73cae1a18be0",
///     "name": "Modelo Open Banking Mock", "type": "test",
///     "connectedOn": "2025-01-02T10:00:00.000Z", "lastUpdated": "2025-01-02T10:00:00.000Z",
///     "lastSyncedAt": "2025-01-03T09:00:00.000Z", "accountIds": [],
///     "status": "error", "error": "sync_error", "tppConsent": true
/// }))?;
/// let now = Utc.with_ymd_and_hms(2025, 1, 3, 9, 10, 0).unwrap();
///
/// // No manual sync made yet: try one (row 9).
/// let advice = advise(&connection, &AdviceContext::new(now));
/// assert_eq!((advice.action, advice.rule), (Action::Sync, 9));
/// assert_eq!(advice.not_before, None);
///
/// // The guard says the next manual sync is 20 minutes away: still `sync`, but not before then.
/// let allowed = now + Duration::minutes(20);
/// let advice = advise(&connection, &AdviceContext::new(now).with_sync_allowed_at(allowed));
/// assert_eq!((advice.action, advice.not_before), (Action::Sync, Some(allowed)));
///
/// // Our manual sync at 09:00 finished (lastSyncedAt) and the error is still there (row 10).
/// let synced = Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 0).unwrap();
/// let advice = advise(&connection, &AdviceContext::new(now).with_last_manual_sync(synced));
/// assert_eq!((advice.action, advice.rule), (Action::Reconsent, 10));
/// println!("{}", advice.reason);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn advise(connection: &Connection, context: &AdviceContext) -> Advice {
    let facts = Facts::new(connection, context);
    let decision = decide(connection, &facts);

    let not_before = match decision.action {
        Action::Sync => context.sync_allowed_at.filter(|at| *at > context.now),
        _ => None,
    };

    let mut reason = decision.text;
    if let Some(at) = not_before {
        reason.push_str(&format!(" at or after {}, when the manual-sync limit allows it", format_time(at)));
    }
    let notes = facts.notes(connection, decision.rule);
    if !notes.is_empty() {
        reason.push_str(&format!(" ({})", notes.join("; ")));
    }
    reason.push('.');

    Advice { action: decision.action, reason, not_before, rule: decision.rule, unknown: decision.unknown }
}

/// The facts the table keys on, with the documented defaults for missing values applied.
struct Facts {
    /// API-like for the table: api, test, zoopla, mouseprice, autotrader, and unknown types.
    api_like: bool,
    /// `tppConsent`, missing = `false`.
    tpp_consent: bool,
    /// `singleSyncOnly`, missing = `false`.
    single_sync_only: bool,
    /// "Retried" (rows 8 and 10).
    retried: bool,
    /// Stale per lifecycle spec §2 (rows 13 and 14).
    stale: bool,
    /// `expiresAt` is at most 5 days away, or already past (row 15). A past expiry on a
    /// connection still reported `ok` is consent that lapsed before Moneyhub flagged it:
    /// renewing is the right advice, not "nothing to do".
    expires_soon: bool,
    /// `expiresAt` is at or before now.
    lapsed: bool,
}

impl Facts {
    fn new(c: &Connection, ctx: &AdviceContext) -> Self {
        let retried = match (ctx.last_manual_sync, c.last_synced_at) {
            (Some(manual), Some(attempt)) => manual > last_data_at(c) && attempt >= manual,
            _ => false,
        };
        let expires_soon = c.expires_at.is_some_and(|at| thresholds::expires_soon(at, ctx.now));
        Facts {
            api_like: c.kind.is_api_like() || c.kind.is_unknown(),
            tpp_consent: c.tpp_consent.unwrap_or(false),
            single_sync_only: c.single_sync_only.unwrap_or(false),
            retried,
            stale: is_stale(c, ctx.known_account_types(), ctx.now),
            expires_soon,
            lapsed: c.expires_at.is_some_and(|at| thresholds::lapsed(at, ctx.now)),
        }
    }

    /// Unrecognised values the decision did not turn on, reported in the reason.
    fn notes(&self, c: &Connection, rule: u8) -> Vec<String> {
        let mut notes = Vec::new();
        if c.kind.is_unknown() {
            notes.push(format!(
                "Moneyhub reported an unrecognised connection type {:?}, handled like an open banking connection",
                c.kind.as_str()
            ));
        }
        if let Some(ext) = c.extended_status.as_ref().filter(|ext| ext.is_unknown()) {
            notes.push(format!("Moneyhub also reported an unrecognised extended status {:?}", ext.as_str()));
        }
        if let Some(error) = c.error.as_ref().filter(|error| error.is_unknown() && rule != 12) {
            notes.push(format!("Moneyhub also reported an unrecognised error {:?}", error.as_str()));
        }
        notes
    }
}

/// The deciding row, before the not-before time and the notes are added.
struct Decision {
    rule: u8,
    action: Action,
    text: String,
    unknown: Option<String>,
}

fn row(rule: u8, action: Action, text: impl Into<String>) -> Decision {
    Decision { rule, action, text: text.into(), unknown: None }
}

/// "reconsent if tppConsent, else reauth" (rows 6, 10 and 15).
fn renew(tpp_consent: bool) -> (Action, &'static str) {
    if tpp_consent {
        (Action::Reconsent, "ask the user to renew consent through the reconsent flow")
    } else {
        (Action::Reauth, "ask the user to log in to the bank again through the reauth flow")
    }
}

const ASK_REAUTH: &str = "ask the user to log in to the provider again through the reauth flow";
const ASK_REFRESH: &str = "ask the user to refresh the connection and provide what the provider asks for";

/// The table, top to bottom: the first row that matches decides.
fn decide(c: &Connection, f: &Facts) -> Decision {
    provider_and_consent_rows(c, f).or_else(|| error_rows(c, f)).unwrap_or_else(|| status_rows(c, f))
}

/// Rows 1 to 3: the provider withdrawn, consent expired.
fn provider_and_consent_rows(c: &Connection, f: &Facts) -> Option<Decision> {
    let extended = c.extended_status.as_ref();
    // 1
    if c.status == ConnectionStatus::Never {
        return Some(row(
            1,
            Action::Remove,
            "The provider has been permanently withdrawn and this connection will never sync again, \
             so remove it and offer the user another provider",
        ));
    }
    // 2, 3
    if extended == Some(&ExtendedStatus::Expired) {
        return Some(if f.api_like && f.tpp_consent {
            row(
                2,
                Action::Reconsent,
                "Consent for this connection has expired, so ask the user to renew it through the reconsent flow, \
                 which does not need a bank login",
            )
        } else {
            row(
                3,
                Action::Reauth,
                format!("Consent for this connection has expired and cannot be renewed without the provider, so {ASK_REAUTH}"),
            )
        });
    }
    None
}

/// Rows 4 to 11: the errors (and stopped syncing) the table knows, in its order.
fn error_rows(c: &Connection, f: &Facts) -> Option<Decision> {
    let error = c.error.as_ref();
    let extended = c.extended_status.as_ref();
    // 4
    if error == Some(&ConnectionError::CredentialsError) {
        return Some(row(
            4,
            Action::Reauth,
            format!("The provider rejected the saved credentials or access was revoked, so {ASK_REAUTH}"),
        ));
    }
    // 5
    if error == Some(&ConnectionError::MfaRequired) {
        return Some(if f.api_like {
            row(
                5,
                Action::Reauth,
                format!("The bank needs the user to confirm their identity again, so {ASK_REAUTH}"),
            )
        } else {
            row(
                5,
                Action::Refresh,
                format!("The provider needs input from the user such as a one-time code, so {ASK_REFRESH}"),
            )
        });
    }
    // 6
    if extended == Some(&ExtendedStatus::StoppedSyncing) {
        let what = "Syncs for this connection kept failing for days and Moneyhub has stopped retrying, so";
        return Some(if f.api_like {
            let (action, ask) = renew(f.tpp_consent);
            row(6, action, format!("{what} {ask}"))
        } else {
            row(6, Action::Refresh, format!("{what} {ASK_REFRESH}"))
        });
    }
    // 7, 8
    if error == Some(&ConnectionError::Resync) {
        return Some(if !f.retried {
            row(7, Action::Sync, "The provider has not sent new data recently, so start a manual sync")
        } else if f.api_like {
            row(
                8,
                Action::Reauth,
                format!("The provider still sends no new data after a manual sync, so {ASK_REAUTH}"),
            )
        } else {
            row(
                8,
                Action::Refresh,
                format!("The provider still sends no new data after a manual sync, so {ASK_REFRESH}"),
            )
        });
    }
    // 9, 10
    if error == Some(&ConnectionError::SyncError) {
        let what = "Syncing this connection still fails after a manual sync, so";
        return Some(if !f.retried {
            row(9, Action::Sync, "The last sync of this connection failed, so start a manual sync")
        } else if f.api_like {
            let (action, ask) = renew(f.tpp_consent);
            row(10, action, format!("{what} {ask}"))
        } else {
            row(10, Action::Refresh, format!("{what} {ASK_REFRESH}"))
        });
    }
    // 11
    if error == Some(&ConnectionError::SyncPartial) {
        return Some(row(
            11,
            Action::Sync,
            "Some of this connection's transactions failed to sync, so start a manual sync",
        ));
    }
    None
}

/// Rows 12 to 17: by status, once no known error decided (unknown errors, staleness, consent
/// ending, healthy, unknown statuses).
fn status_rows(c: &Connection, f: &Facts) -> Decision {
    let error = c.error.as_ref();
    match &c.status {
        // 12: every known error was handled above, so `error` is unknown or missing here.
        ConnectionStatus::Error | ConnectionStatus::Never => {
            let value = error.map_or("null", |e| e.as_str());
            let text = match error {
                Some(e) => format!(
                    "Moneyhub reported the unrecognised error {:?} for this connection, so raise it with Moneyhub support",
                    e.as_str()
                ),
                None => "Moneyhub reported an error without naming it, so raise it with Moneyhub support".to_owned(),
            };
            Decision {
                rule: 12,
                action: Action::ContactSupport,
                text,
                unknown: Some(format!("error={value}")),
            }
        }
        // 13 to 16
        ConnectionStatus::Ok => {
            if f.stale && f.single_sync_only {
                row(
                    13,
                    Action::Refresh,
                    format!("This connection only fetches data once and its data is now out of date, so {ASK_REFRESH}"),
                )
            } else if f.stale {
                row(14, Action::Sync, "The data on this connection is out of date, so start a manual sync")
            } else if f.api_like && f.expires_soon {
                let (action, ask) = renew(f.tpp_consent);
                let at = c.expires_at.map(format_time).unwrap_or_default();
                if f.lapsed {
                    row(15, action, format!("Consent for this connection ran out at {at}, so {ask}"))
                } else {
                    row(
                        15,
                        action,
                        format!("Consent for this connection runs out at {at}, so {ask} before it lapses"),
                    )
                }
            } else {
                row(16, Action::None, "This connection is healthy and needs no action")
            }
        }
        // 17: an unknown status, or one the types crate learns before this table does
        // (`ConnectionStatus` is non-exhaustive).
        other => {
            let value = other.as_str();
            Decision {
                rule: 17,
                action: Action::ContactSupport,
                text: format!(
                    "Moneyhub reported the unrecognised status {value:?} for this connection, so raise it with Moneyhub support"
                ),
                unknown: Some(format!("status={value}")),
            }
        }
    }
}

fn format_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use moneyhub_types::{AccountType, ConnectionType};
    use serde_json::{json, Value};

    use crate::health::fixtures::{conn, now, ts};

    fn ctx() -> AdviceContext {
        AdviceContext::new(now())
    }

    /// A context in which the connection counts as retried: a manual sync 30 minutes ago, after
    /// `lastUpdated`; use with `lastSyncedAt` set after it (see [`retried_conn`]).
    fn retried_ctx() -> AdviceContext {
        ctx().with_last_manual_sync(now() - Duration::minutes(30))
    }

    /// Error connection whose data last arrived 3 days ago and whose last attempt finished
    /// 20 minutes ago (after the manual sync of [`retried_ctx`]).
    fn retried_conn(mut overrides: Value) -> Connection {
        let base = json!({
            "status": "error",
            "lastUpdated": ts(now() - Duration::days(3)),
            "lastSyncedAt": ts(now() - Duration::minutes(20)),
        });
        for (key, v) in base.as_object().unwrap() {
            overrides.as_object_mut().unwrap().entry(key.clone()).or_insert(v.clone());
        }
        conn(overrides)
    }

    #[track_caller]
    fn check(advice: &Advice, rule: u8, action: Action) {
        assert_eq!((advice.rule, advice.action), (rule, action), "{advice:#?}");
        assert!(advice.reason.ends_with('.') && advice.reason.len() > 20, "{advice:#?}");
        assert_eq!(advice.unknown.is_some(), action == Action::ContactSupport, "{advice:#?}");
    }

    // ---- Action ------------------------------------------------------------------------

    #[test]
    fn action_names_display_and_serde() {
        let names = ["none", "sync", "reauth", "reconsent", "refresh", "remove", "contact_support"];
        for (action, name) in Action::ALL.iter().zip(names) {
            assert_eq!(action.as_str(), name);
            assert_eq!(action.to_string(), name);
            assert_eq!(serde_json::to_value(action).unwrap(), json!(name));
            assert_eq!(serde_json::from_value::<Action>(json!(name)).unwrap(), *action);
        }
    }

    // ---- one test per row ----------------------------------------------------------------

    #[test]
    fn row_1_never_removes() {
        let advice = advise(&conn(json!({"status": "never"})), &ctx());
        check(&advice, 1, Action::Remove);
        assert!(advice.reason.contains("another provider"));
        let legacy = advise(&conn(json!({"status": "never", "type": "legacy", "expiresAt": null})), &ctx());
        check(&legacy, 1, Action::Remove);
    }

    #[test]
    fn row_2_expired_api_like_with_tpp_consent_reconsents() {
        for kind in ["api", "test", "zoopla", "mouseprice", "autotrader"] {
            let c = conn(json!({"type": kind, "status": "error", "error": "sync_error",
                "extendedStatus": "expired", "tppConsent": true}));
            check(&advise(&c, &ctx()), 2, Action::Reconsent);
        }
    }

    #[test]
    fn row_3_expired_otherwise_reauths() {
        let expired = json!({"status": "error", "error": "sync_error", "extendedStatus": "expired"});
        let mut no_tpp = expired.clone();
        no_tpp["tppConsent"] = json!(false);
        check(&advise(&conn(no_tpp), &ctx()), 3, Action::Reauth);
        // Missing tppConsent counts as false.
        let mut missing = expired.clone();
        missing["tppConsent"] = Value::Null;
        check(&advise(&conn(missing), &ctx()), 3, Action::Reauth);
        // Legacy with tppConsent: not API-like, so row 3.
        let mut legacy = expired.clone();
        legacy["type"] = json!("legacy");
        check(&advise(&conn(legacy), &ctx()), 3, Action::Reauth);
    }

    #[test]
    fn row_4_credentials_error_reauths() {
        for kind in ["api", "legacy"] {
            let c = conn(json!({"type": kind, "status": "error", "error": "credentials_error"}));
            check(&advise(&c, &ctx()), 4, Action::Reauth);
        }
    }

    #[test]
    fn row_5_mfa_required_legacy_refreshes() {
        let c =
            conn(json!({"type": "legacy", "status": "error", "error": "mfa_required", "expiresAt": null}));
        check(&advise(&c, &ctx()), 5, Action::Refresh);
    }

    #[test]
    fn row_5_mfa_required_api_like_reauths() {
        for kind in ["api", "test"] {
            let c = conn(json!({"type": kind, "status": "error", "error": "mfa_required"}));
            check(&advise(&c, &ctx()), 5, Action::Reauth);
        }
    }

    #[test]
    fn row_6_stopped_syncing_legacy_refreshes() {
        let c = conn(json!({"type": "legacy", "status": "error", "error": "sync_error",
            "extendedStatus": "stoppedSyncing", "tppConsent": true}));
        check(&advise(&c, &ctx()), 6, Action::Refresh);
    }

    #[test]
    fn row_6_stopped_syncing_api_like_reconsents_or_reauths() {
        let with =
            conn(json!({"status": "error", "error": "sync_error", "extendedStatus": "stoppedSyncing"}));
        check(&advise(&with, &ctx()), 6, Action::Reconsent);
        let without = conn(json!({"status": "error", "error": "sync_error",
            "extendedStatus": "stoppedSyncing", "tppConsent": false}));
        check(&advise(&without, &ctx()), 6, Action::Reauth);
    }

    #[test]
    fn row_7_resync_not_yet_retried_syncs() {
        let c = retried_conn(json!({"error": "resync"}));
        // No knowledge of a manual sync: sync first.
        let advice = advise(&c, &ctx());
        check(&advice, 7, Action::Sync);
        assert_eq!(advice.not_before, None);
        // Legacy too.
        let legacy = retried_conn(json!({"type": "legacy", "error": "resync", "expiresAt": null}));
        check(&advise(&legacy, &ctx()), 7, Action::Sync);
    }

    #[test]
    fn row_8_resync_retried_legacy_refreshes() {
        let c = retried_conn(json!({"type": "legacy", "error": "resync", "expiresAt": null}));
        check(&advise(&c, &retried_ctx()), 8, Action::Refresh);
    }

    #[test]
    fn row_8_resync_retried_api_like_reauths_even_with_tpp_consent() {
        let c = retried_conn(json!({"error": "resync", "tppConsent": true}));
        check(&advise(&c, &retried_ctx()), 8, Action::Reauth);
    }

    #[test]
    fn row_9_sync_error_not_yet_retried_syncs() {
        let c = retried_conn(json!({"error": "sync_error"}));
        check(&advise(&c, &ctx()), 9, Action::Sync);
    }

    #[test]
    fn row_10_sync_error_retried_legacy_refreshes() {
        let c = retried_conn(json!({"type": "legacy", "error": "sync_error", "expiresAt": null}));
        check(&advise(&c, &retried_ctx()), 10, Action::Refresh);
    }

    #[test]
    fn row_10_sync_error_retried_api_like_reconsents_or_reauths() {
        let with = retried_conn(json!({"error": "sync_error", "tppConsent": true}));
        check(&advise(&with, &retried_ctx()), 10, Action::Reconsent);
        let without = retried_conn(json!({"error": "sync_error", "tppConsent": false}));
        check(&advise(&without, &retried_ctx()), 10, Action::Reauth);
        let missing = retried_conn(json!({"error": "sync_error", "tppConsent": null}));
        check(&advise(&missing, &retried_ctx()), 10, Action::Reauth);
    }

    #[test]
    fn row_11_sync_partial_syncs_even_when_retried() {
        let c = retried_conn(json!({"error": "sync_partial"}));
        check(&advise(&c, &ctx()), 11, Action::Sync);
        check(&advise(&c, &retried_ctx()), 11, Action::Sync);
    }

    #[test]
    fn row_12_unknown_error_contacts_support_naming_it() {
        let c = conn(json!({"status": "error", "error": "paused"}));
        let advice = advise(&c, &ctx());
        check(&advice, 12, Action::ContactSupport);
        assert_eq!(advice.unknown.as_deref(), Some("error=paused"));
        assert!(advice.reason.contains("\"paused\""), "{}", advice.reason);
    }

    #[test]
    fn row_12_error_status_without_error_code_contacts_support() {
        let advice = advise(&conn(json!({"status": "error", "error": null})), &ctx());
        check(&advice, 12, Action::ContactSupport);
        assert_eq!(advice.unknown.as_deref(), Some("error=null"));
    }

    #[test]
    fn row_13_single_sync_only_and_stale_refreshes() {
        let stale = ts(now() - Duration::days(3));
        let c =
            conn(json!({"type": "legacy", "expiresAt": null, "singleSyncOnly": true, "lastUpdated": stale}));
        check(&advise(&c, &ctx()), 13, Action::Refresh);
        // Fresh: healthy.
        let fresh = conn(json!({"type": "legacy", "expiresAt": null, "singleSyncOnly": true}));
        check(&advise(&fresh, &ctx()), 16, Action::None);
    }

    #[test]
    fn row_14_stale_syncs() {
        let c = conn(json!({"lastUpdated": ts(now() - Duration::days(3))}));
        let advice = advise(&c, &ctx());
        check(&advice, 14, Action::Sync);
        assert_eq!(advice.not_before, None);
        // singleSyncOnly false is the same as missing.
        let explicit = conn(json!({"lastUpdated": ts(now() - Duration::days(3)), "singleSyncOnly": false}));
        check(&advise(&explicit, &ctx()), 14, Action::Sync);
    }

    #[test]
    fn row_15_expiring_api_like_with_tpp_consent_reconsents() {
        let c = conn(json!({"expiresAt": ts(now() + Duration::days(3)), "tppConsent": true}));
        let advice = advise(&c, &ctx());
        check(&advice, 15, Action::Reconsent);
        assert!(advice.reason.contains("2025-03-13 12:00 UTC"), "{}", advice.reason);
    }

    #[test]
    fn row_15_expiring_api_like_without_tpp_consent_reauths() {
        for tpp in [json!(false), Value::Null] {
            let c = conn(json!({"expiresAt": ts(now() + Duration::days(3)), "tppConsent": tpp}));
            check(&advise(&c, &ctx()), 15, Action::Reauth);
        }
    }

    #[test]
    fn row_15_legacy_with_expires_at_falls_through_to_none() {
        let c = conn(json!({"type": "legacy", "expiresAt": ts(now() + Duration::days(3))}));
        check(&advise(&c, &ctx()), 16, Action::None);
    }

    #[test]
    fn row_15_window_is_at_most_five_days_and_includes_a_lapsed_expiry() {
        let at = |d: Duration| advise(&conn(json!({"expiresAt": ts(now() + d)})), &ctx()).rule;
        assert_eq!(at(Duration::days(5)), 15);
        assert_eq!(at(Duration::seconds(1)), 15);
        assert_eq!(at(Duration::days(5) + Duration::seconds(1)), 16);
        assert_eq!(at(Duration::zero()), 15);
        let lapsed =
            advise(&conn(json!({"expiresAt": ts(now() - Duration::days(1)), "tppConsent": true})), &ctx());
        assert_eq!((lapsed.rule, lapsed.action), (15, Action::Reconsent));
        assert!(lapsed.reason.contains("ran out"), "{}", lapsed.reason);
    }

    #[test]
    fn row_16_healthy_needs_nothing() {
        let advice = advise(&conn(json!({})), &ctx());
        check(&advice, 16, Action::None);
        assert_eq!(advice.reason, "This connection is healthy and needs no action.");
        let no_expiry = conn(json!({"expiresAt": null}));
        check(&advise(&no_expiry, &ctx()), 16, Action::None);
    }

    #[test]
    fn row_17_unknown_status_contacts_support_naming_it() {
        let advice = advise(&conn(json!({"status": "suspended"})), &ctx());
        check(&advice, 17, Action::ContactSupport);
        assert_eq!(advice.unknown.as_deref(), Some("status=suspended"));
        assert!(advice.reason.contains("\"suspended\""), "{}", advice.reason);
        // With an unknown error too, the status decides (row 12 needs status == error).
        let both = advise(&conn(json!({"status": "suspended", "error": "paused"})), &ctx());
        check(&both, 17, Action::ContactSupport);
        assert_eq!(both.unknown.as_deref(), Some("status=suspended"));
        assert!(both.reason.contains("\"paused\""), "{}", both.reason);
    }

    // ---- precedence ----------------------------------------------------------------------

    #[test]
    fn never_beats_expired_and_errors() {
        let c = conn(json!({"status": "never", "error": "credentials_error", "extendedStatus": "expired"}));
        check(&advise(&c, &ctx()), 1, Action::Remove);
    }

    #[test]
    fn expired_beats_credentials_error() {
        let with =
            conn(json!({"status": "error", "error": "credentials_error", "extendedStatus": "expired"}));
        check(&advise(&with, &ctx()), 2, Action::Reconsent);
        let without = conn(json!({"status": "error", "error": "credentials_error",
            "extendedStatus": "expired", "tppConsent": false}));
        check(&advise(&without, &ctx()), 3, Action::Reauth);
    }

    #[test]
    fn mfa_beats_stopped_syncing() {
        let api =
            conn(json!({"status": "error", "error": "mfa_required", "extendedStatus": "stoppedSyncing"}));
        check(&advise(&api, &ctx()), 5, Action::Reauth);
        let legacy = conn(json!({"type": "legacy", "status": "error", "error": "mfa_required",
            "extendedStatus": "stoppedSyncing"}));
        check(&advise(&legacy, &ctx()), 5, Action::Refresh);
    }

    #[test]
    fn credentials_error_beats_stopped_syncing() {
        let c = conn(
            json!({"status": "error", "error": "credentials_error", "extendedStatus": "stoppedSyncing"}),
        );
        check(&advise(&c, &ctx()), 4, Action::Reauth);
    }

    #[test]
    fn stopped_syncing_beats_sync_errors_and_unknown_errors() {
        for error in ["resync", "sync_error", "sync_partial", "paused"] {
            let c = retried_conn(json!({"error": error, "extendedStatus": "stoppedSyncing"}));
            check(&advise(&c, &ctx()), 6, Action::Reconsent);
            check(&advise(&c, &retried_ctx()), 6, Action::Reconsent);
        }
    }

    #[test]
    fn stale_beats_expiring_soon() {
        let c = conn(
            json!({"lastUpdated": ts(now() - Duration::days(3)), "expiresAt": ts(now() + Duration::days(2))}),
        );
        check(&advise(&c, &ctx()), 14, Action::Sync);
    }

    #[test]
    fn error_rows_apply_whatever_the_status() {
        // The table's rows 4-11 key on `error` only.
        let unknown_status = conn(json!({"status": "suspended", "error": "credentials_error"}));
        check(&advise(&unknown_status, &ctx()), 4, Action::Reauth);
        let ok_partial = conn(json!({"status": "ok", "error": "sync_partial"}));
        check(&advise(&ok_partial, &ctx()), 11, Action::Sync);
    }

    // ---- retried -------------------------------------------------------------------------

    #[test]
    fn retried_needs_manual_sync_after_last_updated() {
        let c = retried_conn(json!({"error": "sync_error"}));
        let updated = c.last_updated.unwrap();
        // Manual sync exactly at lastUpdated: not later, so not retried.
        check(&advise(&c, &ctx().with_last_manual_sync(updated)), 9, Action::Sync);
        check(&advise(&c, &ctx().with_last_manual_sync(updated - Duration::hours(1))), 9, Action::Sync);
        check(
            &advise(&c, &ctx().with_last_manual_sync(updated + Duration::seconds(1))),
            10,
            Action::Reconsent,
        );
    }

    #[test]
    fn retried_needs_the_manual_sync_to_have_finished() {
        let manual = now() - Duration::minutes(30);
        let context = ctx().with_last_manual_sync(manual);
        // lastSyncedAt at the manual sync: finished ("at or after").
        let at = retried_conn(json!({"error": "resync", "lastSyncedAt": ts(manual)}));
        check(&advise(&at, &context), 8, Action::Reauth);
        // lastSyncedAt before it: still running, sync is the advice (and nothing re-sent early).
        let before =
            retried_conn(json!({"error": "resync", "lastSyncedAt": ts(manual - Duration::seconds(1))}));
        check(&advise(&before, &context), 7, Action::Sync);
        // No lastSyncedAt: unknown, so not retried.
        let missing = retried_conn(json!({"error": "resync", "lastSyncedAt": null}));
        check(&advise(&missing, &context), 7, Action::Sync);
    }

    #[test]
    fn retried_without_last_updated_measures_from_connected_on() {
        // connectedOn is 2025-01-01T09:00; no successful fetch since.
        let c = retried_conn(json!({"error": "sync_error", "lastUpdated": null}));
        let before_connect = Utc.with_ymd_and_hms(2025, 1, 1, 8, 0, 0).unwrap();
        check(&advise(&c, &ctx().with_last_manual_sync(before_connect)), 9, Action::Sync);
        check(&advise(&c, &retried_ctx()), 10, Action::Reconsent);
    }

    // ---- not_before ----------------------------------------------------------------------

    #[test]
    fn sync_advice_waits_for_the_guard() {
        let allowed = now() + Duration::minutes(25);
        for (c, rule) in [
            (retried_conn(json!({"error": "resync"})), 7),
            (retried_conn(json!({"error": "sync_error"})), 9),
            (retried_conn(json!({"error": "sync_partial"})), 11),
            (conn(json!({"lastUpdated": ts(now() - Duration::days(3))})), 14),
        ] {
            let advice = advise(&c, &ctx().with_sync_allowed_at(allowed));
            check(&advice, rule, Action::Sync);
            assert_eq!(advice.not_before, Some(allowed));
            assert!(advice.reason.contains("2025-03-10 12:25 UTC"), "{}", advice.reason);
        }
    }

    #[test]
    fn not_before_only_when_in_the_future_and_only_for_sync() {
        let c = retried_conn(json!({"error": "sync_error"}));
        assert_eq!(advise(&c, &ctx().with_sync_allowed_at(now())).not_before, None);
        assert_eq!(advise(&c, &ctx().with_sync_allowed_at(now() - Duration::minutes(1))).not_before, None);
        let later = now() + Duration::hours(5);
        let reauth = conn(json!({"status": "error", "error": "credentials_error"}));
        let advice = advise(&reauth, &ctx().with_sync_allowed_at(later));
        check(&advice, 4, Action::Reauth);
        assert_eq!(advice.not_before, None);
        let retried = advise(&c, &retried_ctx().with_sync_allowed_at(later));
        check(&retried, 10, Action::Reconsent);
        assert_eq!(retried.not_before, None);
    }

    // ---- staleness through the context ---------------------------------------------------

    #[test]
    fn account_types_drive_staleness() {
        let c = conn(json!({"lastUpdated": ts(now() - Duration::days(10))}));
        let mortgage = ctx().with_account_types([AccountType::MortgageRepayment]);
        check(&advise(&c, &mortgage), 16, Action::None);
        let mixed = ctx().with_account_types([AccountType::MortgageRepayment, AccountType::CashCurrent]);
        check(&advise(&c, &mixed), 14, Action::Sync);
        let loans = ctx().with_account_types([AccountType::from("loans")]);
        check(&advise(&c, &loans), 16, Action::None);
        check(&advise(&c, &ctx()), 14, Action::Sync);
    }

    #[test]
    fn valuation_connections_without_account_types_allow_thirty_days() {
        let c = conn(json!({"type": "zoopla", "lastUpdated": ts(now() - Duration::days(20))}));
        check(&advise(&c, &ctx()), 16, Action::None);
        let old = conn(json!({"type": "zoopla", "lastUpdated": ts(now() - Duration::days(31))}));
        check(&advise(&old, &ctx()), 14, Action::Sync);
    }

    #[test]
    fn missing_last_updated_uses_connected_on_for_staleness() {
        // connectedOn is over two months before now.
        let c = conn(json!({"lastUpdated": null}));
        check(&advise(&c, &ctx()), 14, Action::Sync);
    }

    // ---- unknown values that do not decide -----------------------------------------------

    #[test]
    fn unknown_type_is_treated_as_api_like_and_reported() {
        let c = conn(json!({"type": "experian", "status": "error", "error": "mfa_required"}));
        assert_eq!(c.kind, ConnectionType::Unknown("experian".into()));
        let advice = advise(&c, &ctx());
        check(&advice, 5, Action::Reauth);
        assert!(advice.reason.contains("\"experian\""), "{}", advice.reason);
        let expiring = conn(json!({"type": "experian", "expiresAt": ts(now() + Duration::days(1))}));
        check(&advise(&expiring, &ctx()), 15, Action::Reconsent);
    }

    #[test]
    fn unknown_extended_status_is_ignored_and_reported() {
        let c = conn(json!({"extendedStatus": "frozen"}));
        let advice = advise(&c, &ctx());
        check(&advice, 16, Action::None);
        assert!(advice.reason.contains("\"frozen\""), "{}", advice.reason);
        let failing =
            conn(json!({"status": "error", "error": "credentials_error", "extendedStatus": "frozen"}));
        check(&advise(&failing, &ctx()), 4, Action::Reauth);
    }

    #[test]
    fn unknown_error_on_an_ok_connection_is_ignored_and_reported() {
        let advice = advise(&conn(json!({"error": "paused"})), &ctx());
        check(&advice, 16, Action::None);
        assert!(advice.reason.contains("\"paused\""), "{}", advice.reason);
    }

    #[test]
    fn unknown_values_are_escaped_in_the_reason() {
        let advice = advise(&conn(json!({"status": "error", "error": "line\nbreak \"q\""})), &ctx());
        check(&advice, 12, Action::ContactSupport);
        assert!(!advice.reason.contains('\n'), "{}", advice.reason);
        assert_eq!(advice.unknown.as_deref(), Some("error=line\nbreak \"q\""));
    }

    // ---- serialisation -------------------------------------------------------------------

    #[test]
    fn advice_serialises_camel_case_with_snake_case_actions() {
        let support = advise(&conn(json!({"status": "error", "error": "paused"})), &ctx());
        let value = serde_json::to_value(&support).unwrap();
        assert_eq!(value["action"], "contact_support");
        assert_eq!(value["rule"], 12);
        assert_eq!(value["unknown"], "error=paused");
        assert_eq!(value["reason"], json!(support.reason));
        assert!(value.get("notBefore").is_none());

        let allowed = now() + Duration::minutes(10);
        let sync = advise(
            &conn(json!({"status": "error", "error": "sync_partial"})),
            &ctx().with_sync_allowed_at(allowed),
        );
        let value = serde_json::to_value(&sync).unwrap();
        assert_eq!(
            value.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["action", "notBefore", "reason", "rule"]
        );
        assert_eq!(value["action"], "sync");
        assert_eq!(value["notBefore"], "2025-03-10T12:10:00.000Z");
    }

    // ---- totality ------------------------------------------------------------------------

    mod totality {
        use super::*;
        use moneyhub_types::ConnectionId;
        use proptest::prelude::*;

        fn open<T: From<String> + std::fmt::Debug>(
            known: &'static [&'static str],
        ) -> impl Strategy<Value = T> {
            prop_oneof![
                3 => proptest::sample::select(known).prop_map(|s| s.to_owned()),
                1 => "[a-zA-Z_:\" \n]{0,12}",
            ]
            .prop_map(T::from)
        }

        fn time() -> impl Strategy<Value = DateTime<Utc>> {
            let min = DateTime::<Utc>::MIN_UTC.timestamp();
            let max = DateTime::<Utc>::MAX_UTC.timestamp();
            let around = now().timestamp();
            prop_oneof![
                Just(DateTime::<Utc>::MIN_UTC),
                Just(DateTime::<Utc>::MAX_UTC),
                (min..=max).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
                (around - 90 * 86_400..around + 90 * 86_400)
                    .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
            ]
        }

        fn connection() -> impl Strategy<Value = Connection> {
            (
                (
                    open::<ConnectionType>(&["api", "legacy", "test", "zoopla", "mouseprice", "autotrader"]),
                    open::<ConnectionStatus>(&["ok", "error", "never"]),
                    proptest::option::of(open::<ConnectionError>(&[
                        "resync",
                        "sync_error",
                        "sync_partial",
                        "mfa_required",
                        "credentials_error",
                    ])),
                    proptest::option::of(open::<ExtendedStatus>(&["expired", "stoppedSyncing"])),
                ),
                (
                    time(),
                    proptest::option::of(time()),
                    proptest::option::of(time()),
                    proptest::option::of(time()),
                ),
                (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>())),
            )
                .prop_map(
                    |(
                        (kind, status, error, extended_status),
                        (connected_on, updated, synced, expires),
                        (tpp, single),
                    )| {
                        let mut c = conn(json!({}));
                        c.id = "b:1".parse::<ConnectionId>().unwrap();
                        c.kind = kind;
                        c.status = status;
                        c.error = error;
                        c.extended_status = extended_status;
                        c.connected_on = connected_on;
                        c.last_updated = updated;
                        c.last_synced_at = synced;
                        c.expires_at = expires;
                        c.tpp_consent = tpp;
                        c.single_sync_only = single;
                        c
                    },
                )
        }

        fn context() -> impl Strategy<Value = AdviceContext> {
            let types = proptest::collection::vec(
                open::<AccountType>(&[
                    "cash:current",
                    "savings",
                    "card",
                    "loan",
                    "loans",
                    "mortgage:repayment",
                    "mortgage:interestOnly",
                    "asset",
                    "properties:residential",
                    "pension",
                ]),
                0..5,
            );
            (time(), proptest::option::of(types), proptest::option::of(time()), proptest::option::of(time()))
                .prop_map(|(now, types, manual, allowed)| {
                    let mut context =
                        AdviceContext::new(now).with_last_manual_sync(manual).with_sync_allowed_at(allowed);
                    context.account_types = types;
                    context
                })
        }

        /// The actions each row may give.
        fn allowed(rule: u8) -> &'static [Action] {
            use Action::*;
            match rule {
                1 => &[Remove],
                2 => &[Reconsent],
                3 | 4 => &[Reauth],
                5 | 8 => &[Refresh, Reauth],
                6 | 10 => &[Refresh, Reconsent, Reauth],
                7 | 9 | 11 | 14 => &[Sync],
                12 | 17 => &[ContactSupport],
                13 => &[Refresh],
                15 => &[Reconsent, Reauth],
                16 => &[None],
                _ => &[],
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn advise_is_total(c in connection(), context in context()) {
                let advice = advise(&c, &context);
                prop_assert!((1..=17).contains(&advice.rule), "rule {}", advice.rule);
                prop_assert!(allowed(advice.rule).contains(&advice.action), "{:?}", advice);
                prop_assert!(!advice.reason.trim().is_empty());
                prop_assert!(advice.reason.ends_with('.') && !advice.reason.contains('\n'), "{:?}", advice.reason);
                prop_assert_eq!(advice.unknown.is_some(), advice.action == Action::ContactSupport);
                if let Some(at) = advice.not_before {
                    prop_assert_eq!(advice.action, Action::Sync);
                    prop_assert!(at > context.now);
                    prop_assert_eq!(Some(at), context.sync_allowed_at);
                }
                // Exactly one action, serialised as one of the seven names.
                let value = serde_json::to_value(&advice).unwrap();
                prop_assert!(Action::ALL.iter().any(|a| value["action"] == a.as_str()), "{}", value);
                // Spot checks of the precedence.
                if c.status == ConnectionStatus::Never {
                    prop_assert_eq!(advice.rule, 1);
                } else if c.extended_status == Some(ExtendedStatus::Expired) {
                    prop_assert!(advice.rule == 2 || advice.rule == 3);
                }
                // Deterministic.
                prop_assert_eq!(advise(&c, &context), advice);
            }
        }
    }
}
