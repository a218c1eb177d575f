//! Test fixtures shared by the health rules' unit tests (`advice`, `next_change`): one
//! fixed "now" and one healthy connection to vary, so both test suites describe the same
//! connection.

use chrono::{DateTime, Duration, TimeZone, Utc};
use moneyhub_types::Connection;
use serde_json::{json, Value};

/// The fixed "now" of these tests.
pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 10, 12, 0, 0).unwrap()
}

/// `at` as Moneyhub writes a timestamp.
pub(super) fn ts(at: DateTime<Utc>) -> Value {
    moneyhub_types::time::format_timestamp(&at).into()
}

/// A healthy, fresh API connection (updated and synced an hour ago, consent 60 days left,
/// `tppConsent: true`), with `overrides` applied (`null` clears a field).
pub(super) fn conn(overrides: Value) -> Connection {
    let mut value = json!({
        "id": "b74f1a79f0be8bdb857d82d0f041d7d2:7d235ab0-e951-487f-acde-73cae1a18be0",
        "name": "Modelo Open Banking Mock",
        "type": "api",
        "connectedOn": "2025-01-01T09:00:00.000Z",
        "lastUpdated": ts(now() - Duration::hours(1)),
        "lastSyncedAt": ts(now() - Duration::hours(1)),
        "expiresAt": ts(now() + Duration::days(60)),
        "accountIds": [],
        "status": "ok",
        "error": null,
        "tppConsent": true,
    });
    for (key, v) in overrides.as_object().expect("overrides must be an object") {
        value[key] = v.clone();
    }
    serde_json::from_value(value).expect("test connection must decode")
}
