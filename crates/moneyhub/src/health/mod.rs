//! Connection health advice: what to do about a connection, from its status fields (lifecycle
//! spec §3), its staleness (§2) and what this client knows about its own manual syncs.
//!
//! * [`advise`] turns a [`Connection`](moneyhub_types::Connection) and an [`AdviceContext`] into
//!   one [`Advice`]: an [`Action`], a plain-sentence reason, an optional not-before time, the
//!   deciding table row and, for `contact_support`, the unrecognised value.
//! * [`staleness_threshold`], [`is_stale`] and [`last_data_at`] expose spec §2's staleness rules.
//! * [`next_change_at`]: the next instant time alone changes the advice (for callers that keep
//!   advice current, such as the mirror, without re-evaluating everything on a timer).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use moneyhub::health::{advise, Action, AdviceContext};
//! use moneyhub_types::Connection;
//!
//! let connection: Connection = serde_json::from_value(serde_json::json!({
//!     "id": "3c4637d3178c9a28ce655bfbf8e27a10:0b4e5a30-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
//!     "name": "Aviva", "type": "legacy", "connectedOn": "2025-01-02T10:00:00.000Z",
//!     "accountIds": [], "status": "error", "error": "mfa_required"
//! }))?;
//! let advice = advise(&connection, &AdviceContext::new(Utc.with_ymd_and_hms(2025, 1, 3, 9, 0, 0).unwrap()));
//! assert_eq!(advice.action, Action::Refresh);
//! assert_eq!(advice.rule, 5);
//! assert_eq!(serde_json::to_value(&advice)?["action"], "refresh");
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! ## The table (lifecycle spec §3), first matching row wins
//!
//! | # | condition | action |
//! | --- | --- | --- |
//! | 1 | `status == never` | `remove` |
//! | 2 | `extendedStatus == expired`, API-like, `tppConsent` | `reconsent` |
//! | 3 | `extendedStatus == expired` (otherwise) | `reauth` |
//! | 4 | `error == credentials_error` | `reauth` |
//! | 5 | `error == mfa_required` | legacy: `refresh`; API-like: `reauth` |
//! | 6 | `extendedStatus == stoppedSyncing` | legacy: `refresh`; API-like: `reconsent` if `tppConsent`, else `reauth` |
//! | 7 | `error == resync`, not yet retried | `sync` |
//! | 8 | `error == resync`, retried | legacy: `refresh`; API-like: `reauth` |
//! | 9 | `error == sync_error`, not yet retried | `sync` |
//! | 10 | `error == sync_error`, retried | legacy: `refresh`; API-like: `reconsent` if `tppConsent`, else `reauth` |
//! | 11 | `error == sync_partial` | `sync` |
//! | 12 | `status == error` with an unknown `error` | `contact_support` |
//! | 13 | `status == ok`, `singleSyncOnly`, stale | `refresh` |
//! | 14 | `status == ok`, stale | `sync` |
//! | 15 | `status == ok`, `expiresAt` within 5 days, API-like | `reconsent` if `tppConsent`, else `reauth` |
//! | 16 | `status == ok` | `none` |
//! | 17 | unknown `status` | `contact_support` |
//!
//! *Retried* (rows 7–10): [`AdviceContext::last_manual_sync`] is later than `lastUpdated`, and
//! `lastSyncedAt` is at or after it (that manual sync has finished and the error is still there).
//! Without a known last manual sync, or without `lastSyncedAt`, the connection is not retried and
//! the advice is `sync` first.
//!
//! Whenever the action is `sync` and [`AdviceContext::sync_allowed_at`] is after
//! [`AdviceContext::now`], the action stays `sync` and [`Advice::not_before`] is that time.
//!
//! ## Decisions where the spec is silent
//!
//! Unknown values are kept and reported, never rejected (spec §1):
//!
//! * **Unknown connection `type`**: decided as API-like (the open-banking remedies: reauth,
//!   reconsent, row 15 applies), because every kind Moneyhub has added since `legacy` is API
//!   based and legacy is being phased out; the reason names the unknown type. Known types
//!   follow [`ConnectionType::is_api_like`](moneyhub_types::ConnectionType::is_api_like).
//! * **Unknown `extendedStatus`**: ignored by rows 2, 3 and 6 (the decision continues with the
//!   other fields); the reason names it.
//! * **Unknown `error`**: with `status == error`, row 12 (`contact_support`, `unknown` =
//!   `"error=<value>"`). With any other status the table has no row for it (rows 4–11 only match
//!   known codes, row 12 needs `status == error`), so it is ignored and named in the reason.
//! * **`status == error` without an `error` code** (and no earlier row applying): row 12 with
//!   `unknown = "error=null"`: an error Moneyhub did not name is as unknown as an unrecognised one.
//! * Rows 4–11 match on `error` whatever the `status` (the table does not require
//!   `status == error` there), so e.g. an unknown status with `credentials_error` is row 4.
//!
//! Missing values:
//!
//! * **`tppConsent` missing** = `false`: the client cannot renew consent itself, so `reauth`.
//! * **`singleSyncOnly` missing** = `false`.
//! * **`lastUpdated` missing**: staleness and "retried" use `connectedOn` instead (the data
//!   fetched when connecting is the newest there is). `connectedOn` is required by the model, so
//!   there is always a time to measure from.
//! * **`lastSyncedAt` missing**: never "retried" (no sync is known to have finished).
//! * **Account types** unknown or an empty list: the per-connection-type fallback of spec §2 (30 days
//!   for zoopla, mouseprice and autotrader, 2 days otherwise, unknown types included).
//!
//! Times:
//!
//! * **Stale** means `now - lastUpdated` strictly exceeds the threshold; a `lastUpdated` in the
//!   future is not stale.
//! * **Row 15**: `expiresAt` at most 5 days ahead (`expiresAt - now <= 5 days`), for API-like
//!   connections only: a legacy connection with an `expiresAt` falls through to row 16. An
//!   `expiresAt` already in the past while `status == ok` (Moneyhub not yet reporting
//!   `extendedStatus: expired`) is row 15 too: the consent has lapsed, so renewing it is the
//!   advice, not "nothing to do".
//! * A `sync_allowed_at` at or before `now` means "allowed now": no `not_before`.
//!
//! [`Advice::unknown`] is set only with [`Action::ContactSupport`]; unrecognised values that did
//! not decide the action are named in [`Advice::reason`] only.

mod advice;
mod context;
#[cfg(test)]
mod fixtures;
mod next_change;
mod staleness;
mod thresholds;

pub use advice::{advise, Action, Advice};
pub use context::AdviceContext;
pub use next_change::next_change_at;
pub use staleness::{is_stale, last_data_at, staleness_threshold};
