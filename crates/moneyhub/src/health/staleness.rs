//! Staleness (lifecycle spec §2): how old a connection's data may get before it needs a sync.

use chrono::{DateTime, Duration, Utc};
use moneyhub_types::{AccountType, Connection};

use super::thresholds;

/// How old a connection's data may get before it counts as stale (lifecycle spec §2).
///
/// * Account types known (and at least one): the smallest of their thresholds
///   ([`AccountType::staleness_threshold`]: 40 days for `properties:*`, `asset`, `mortgage:*`,
///   `loan` and `loans`, 2 days for every other type, unknown ones included). One current
///   account beside a mortgage makes it 2 days.
/// * Otherwise (`None` or an empty list): 30 days for zoopla, mouseprice and autotrader
///   connections (they sync monthly), 2 days for every other connection type, unknown types
///   included.
///
/// ```
/// use chrono::Duration;
/// use moneyhub::health::staleness_threshold;
/// use moneyhub_types::{AccountType, Connection};
///
/// let connection: Connection = serde_json::from_value(serde_json::json!({
///     "id": "b:1", "name": "Zoopla", "type": "zoopla", "connectedOn": "2025-01-02T10:00:00.000Z",
///     "accountIds": [], "status": "ok", "error": null
/// }))?;
/// assert_eq!(staleness_threshold(&connection, None), Duration::days(30));
/// let types = [AccountType::PropertiesResidential];
/// assert_eq!(staleness_threshold(&connection, Some(&types)), Duration::days(40));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn staleness_threshold(connection: &Connection, account_types: Option<&[AccountType]>) -> Duration {
    match account_types.and_then(|types| types.iter().map(AccountType::staleness_threshold).min()) {
        Some(threshold) => threshold,
        None if connection.kind.is_valuation() => Duration::days(thresholds::VALUATION_STALE_DAYS),
        None => Duration::days(thresholds::STALE_DAYS),
    }
}

/// When the connection's data last arrived: `lastUpdated`, or `connectedOn` when Moneyhub has
/// not reported a successful fetch yet (the data fetched at connection time is the newest).
pub fn last_data_at(connection: &Connection) -> DateTime<Utc> {
    connection.last_updated.unwrap_or(connection.connected_on)
}

/// Whether the connection's data is stale at `now`: `now - lastUpdated` strictly exceeds
/// [`staleness_threshold`]. A missing `lastUpdated` falls back to `connectedOn`
/// ([`last_data_at`]); a `lastUpdated` in the future (clock skew) is never stale.
///
/// ```
/// use chrono::{Duration, TimeZone, Utc};
/// use moneyhub::health::is_stale;
/// use moneyhub_types::Connection;
///
/// let connection: Connection = serde_json::from_value(serde_json::json!({
///     "id": "b:1", "name": "Bank", "type": "api", "connectedOn": "2025-01-01T00:00:00.000Z",
///     "lastUpdated": "2025-01-02T00:00:00.000Z", "accountIds": [], "status": "ok", "error": null
/// }))?;
/// let updated = Utc.with_ymd_and_hms(2025, 1, 2, 0, 0, 0).unwrap();
/// assert!(!is_stale(&connection, None, updated + Duration::days(2)));
/// assert!(is_stale(&connection, None, updated + Duration::days(2) + Duration::seconds(1)));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn is_stale(connection: &Connection, account_types: Option<&[AccountType]>, now: DateTime<Utc>) -> bool {
    now.signed_duration_since(last_data_at(connection)) > staleness_threshold(connection, account_types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use moneyhub_types::ConnectionType;

    fn connection(kind: &str, last_updated: Option<&str>) -> Connection {
        let mut value = serde_json::json!({
            "id": "b74f1a79f0be8bdb857d82d0f041d7d2:1", "name": "Bank", "type": kind,
            "connectedOn": "2025-01-01T00:00:00.000Z", "accountIds": [], "status": "ok", "error": null
        });
        if let Some(at) = last_updated {
            value["lastUpdated"] = at.into();
        }
        serde_json::from_value(value).unwrap()
    }

    fn types(names: &[&str]) -> Vec<AccountType> {
        names.iter().map(|name| AccountType::from(*name)).collect()
    }

    #[test]
    fn mixed_current_and_mortgage_is_two_days() {
        let c = connection("api", None);
        let mixed = types(&["cash:current", "mortgage:repayment"]);
        assert_eq!(staleness_threshold(&c, Some(&mixed)), Duration::days(2));
        let reversed = types(&["mortgage:repayment", "cash:current"]);
        assert_eq!(staleness_threshold(&c, Some(&reversed)), Duration::days(2));
    }

    #[test]
    fn long_types_only_are_forty_days() {
        let c = connection("api", None);
        for names in [
            &["mortgage:repayment"][..],
            &["mortgage:interestOnly", "mortgage:repayment"],
            &["properties:residential", "properties:buyToLet", "properties:somethingNew"],
            &["asset"],
            &["loan"],
            &["loans"],
            &["loan", "loans", "asset", "mortgage:x"],
        ] {
            assert_eq!(staleness_threshold(&c, Some(&types(names))), Duration::days(40), "{names:?}");
        }
    }

    #[test]
    fn loans_spelling_is_a_forty_day_type_even_beside_loan() {
        let c = connection("legacy", None);
        let loans = types(&["loans"]);
        assert!(loans[0].is_unknown(), "`loans` is not a known variant, it must still count");
        assert_eq!(staleness_threshold(&c, Some(&loans)), Duration::days(40));
        assert_eq!(staleness_threshold(&c, Some(&types(&["loans", "savings"]))), Duration::days(2));
    }

    #[test]
    fn unknown_and_other_account_types_are_two_days() {
        let c = connection("zoopla", None);
        assert_eq!(staleness_threshold(&c, Some(&types(&["brand:new"]))), Duration::days(2));
        assert_eq!(staleness_threshold(&c, Some(&types(&["pension", "asset"]))), Duration::days(2));
    }

    #[test]
    fn unknown_account_types_fall_back_per_connection_type() {
        for (kind, days) in [
            ("zoopla", 30),
            ("mouseprice", 30),
            ("autotrader", 30),
            ("api", 2),
            ("test", 2),
            ("legacy", 2),
            ("experian", 2),
        ] {
            let c = connection(kind, None);
            assert_eq!(staleness_threshold(&c, None), Duration::days(days), "{kind}");
            // An empty list is "not known" too.
            assert_eq!(staleness_threshold(&c, Some(&[])), Duration::days(days), "{kind} []");
        }
        assert!(connection("experian", None).kind == ConnectionType::Unknown("experian".into()));
    }

    #[test]
    fn stale_only_strictly_beyond_the_threshold() {
        let c = connection("api", Some("2025-02-01T12:00:00.000Z"));
        let updated = Utc.with_ymd_and_hms(2025, 2, 1, 12, 0, 0).unwrap();
        assert!(!is_stale(&c, None, updated));
        assert!(!is_stale(&c, None, updated + Duration::days(2)));
        assert!(is_stale(&c, None, updated + Duration::days(2) + Duration::milliseconds(1)));
        let mortgage = types(&["mortgage:repayment"]);
        assert!(!is_stale(&c, Some(&mortgage), updated + Duration::days(39)));
        assert!(is_stale(&c, Some(&mortgage), updated + Duration::days(41)));
        // lastUpdated in the future: not stale.
        assert!(!is_stale(&c, None, updated - Duration::days(400)));
    }

    #[test]
    fn missing_last_updated_falls_back_to_connected_on() {
        let c = connection("api", None);
        let connected = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(last_data_at(&c), connected);
        assert!(!is_stale(&c, None, connected + Duration::days(1)));
        assert!(is_stale(&c, None, connected + Duration::days(3)));
        let updated = connection("api", Some("2025-03-01T00:00:00.000Z"));
        assert_eq!(last_data_at(&updated), Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let mut c = connection("api", None);
        c.last_updated = Some(DateTime::<Utc>::MIN_UTC);
        assert!(is_stale(&c, None, DateTime::<Utc>::MAX_UTC));
        c.last_updated = Some(DateTime::<Utc>::MAX_UTC);
        assert!(!is_stale(&c, None, DateTime::<Utc>::MIN_UTC));
    }
}
