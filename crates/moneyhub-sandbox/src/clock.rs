//! The sandbox's virtual clock.
//!
//! Everything time-dependent (token expiry, consent expiry, sync schedules, staleness, pending
//! transactions posting) reads this clock, never the system clock, so a test can move a
//! connection through 90 days in milliseconds. In real-time mode it is the wall clock plus an
//! offset that only grows when told to advance; in frozen mode it stands still.
//!
//! **Dates are range-checked where they come in, so that no date arithmetic can overflow.**
//! The clock itself stays between [`earliest`] (1970-01-01) and [`latest`]
//! (9999-12-31T23:59:59.999Z): advancing past the end is refused. Every date the control
//! API, a scenario file or the dashboard accepts must lie in that range and within
//! [`MAX_SPAN_DAYS`] (20 years, the most the clock moves at once) of the clock
//! ([`check_date`]); anything else is a 400 naming the field. Dates from the public API are
//! RFC 3339 (four-digit years) and checked against the consent periods. The sandbox adds at
//! most a few years to any of these, far inside chrono's ±262,000-year range, and the few
//! sums over wall-clock time saturate.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use parking_lot::Mutex;

use crate::config::ClockMode;

/// The most days the clock moves at once, and the farthest from the clock a date given to
/// the control API or in a scenario may lie: 20 years.
pub const MAX_SPAN_DAYS: i64 = 20 * 365;

/// The earliest time the clock may show or a date may name: 1970-01-01T00:00:00Z.
pub fn earliest() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// The latest time the clock may reach or a date may name: 9999-12-31T23:59:59.999Z (the last
/// instant an RFC 3339 date can write).
pub fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.checked_add_signed(Duration::milliseconds(999)).unwrap_or(t))
}

/// Whether `t` lies between [`earliest`] and [`latest`].
pub fn in_range(t: DateTime<Utc>) -> bool {
    t >= earliest() && t <= latest()
}

/// Checks a date given as `field`: between [`earliest`] and [`latest`], and at most
/// [`MAX_SPAN_DAYS`] from `now`. The error names the field and the bounds.
pub fn check_date(field: &str, t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let span = Duration::days(MAX_SPAN_DAYS);
    let near = now.checked_sub_signed(span).is_none_or(|lo| t >= lo)
        && now.checked_add_signed(span).is_none_or(|hi| t <= hi);
    if in_range(t) && near {
        Ok(t)
    } else {
        Err(format!(
            "{field} must lie between 1970-01-01 and 9999-12-31 and within 20 years of the sandbox's              time ({})",
            iso(now)
        ))
    }
}

/// A controllable clock.
#[derive(Debug)]
pub struct Clock {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Wall clock plus an offset.
    Following { offset: Duration },
    /// Standing still.
    Frozen { at: DateTime<Utc> },
}

impl Clock {
    /// A clock in the given mode.
    pub fn new(mode: ClockMode) -> Self {
        let state = match mode {
            ClockMode::RealTime => State::Following { offset: Duration::zero() },
            // Kept in range whatever the caller gave (`spawn` refuses such a start first).
            ClockMode::Frozen(at) => State::Frozen { at: truncate_ms(at.clamp(earliest(), latest())) },
        };
        Clock { state: Mutex::new(state) }
    }

    /// The current virtual time, at millisecond precision (as Moneyhub's timestamps are).
    pub fn now(&self) -> DateTime<Utc> {
        match *self.state.lock() {
            State::Following { offset } => {
                truncate_ms(Utc::now().checked_add_signed(offset).unwrap_or_else(latest).min(latest()))
            }
            State::Frozen { at } => at,
        }
    }

    /// Moves the clock forward. Negative durations are refused: time never runs backwards in
    /// the sandbox, because schedules and expiry decisions already taken could not be undone.
    /// So is a move past [`latest`].
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, String> {
        if by < Duration::zero() {
            return Err("the sandbox clock cannot move backwards".into());
        }
        let past_the_end = || "the sandbox clock cannot move past 9999-12-31T23:59:59.999Z".to_string();
        let mut st = self.state.lock();
        let reading = match *st {
            State::Following { offset } => Utc::now().checked_add_signed(offset),
            State::Frozen { at } => Some(at),
        };
        if reading.and_then(|t| t.checked_add_signed(by)).is_none_or(|t| t > latest()) {
            return Err(past_the_end());
        }
        *st = match *st {
            State::Following { offset } => {
                State::Following { offset: offset.checked_add(&by).ok_or_else(past_the_end)? }
            }
            State::Frozen { at } => State::Frozen { at: at.checked_add_signed(by).ok_or_else(past_the_end)? },
        };
        drop(st);
        Ok(self.now())
    }

    /// Freezes the clock at its current reading.
    pub fn freeze(&self) -> DateTime<Utc> {
        let now = self.now();
        *self.state.lock() = State::Frozen { at: now };
        now
    }

    /// Lets a frozen clock follow the wall clock again from its current reading.
    pub fn resume(&self) -> DateTime<Utc> {
        let now = self.now();
        *self.state.lock() = State::Following { offset: now.signed_duration_since(Utc::now()) };
        now
    }

    /// Puts the clock back in `mode`, as a new sandbox's clock starts: the only way it moves
    /// backwards, for a reset (`POST /__sandbox/reset`) or a scenario loaded onto a reset
    /// sandbox, when nothing scheduled on the old time line is left.
    pub fn reset(&self, mode: ClockMode) {
        *self.state.lock() = Clock::new(mode).state.into_inner();
    }

    /// Whether the clock is frozen.
    pub fn is_frozen(&self) -> bool {
        matches!(*self.state.lock(), State::Frozen { .. })
    }
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    let ms = t.timestamp_millis();
    Utc.timestamp_millis_opt(ms).single().unwrap_or(t)
}

/// Formats an instant the way Moneyhub does: `2019-09-27T14:29:43.687Z`.
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The UK civil-time offset from UTC at `t`: one hour during British Summer Time (from 01:00
/// UTC on the last Sunday of March to 01:00 UTC on the last Sunday of October), else zero.
/// Moneyhub's schedule (syncs between 06:00 and 23:00) is read in Europe/London; this rule has
/// been the UK's since 1996 and saves a time-zone database dependency.
pub fn london_offset(t: DateTime<Utc>) -> Duration {
    let year = t.year();
    let start = last_sunday(year, 3).and_hms_opt(1, 0, 0).map(|d| d.and_utc());
    let end = last_sunday(year, 10).and_hms_opt(1, 0, 0).map(|d| d.and_utc());
    match (start, end) {
        (Some(s), Some(e)) if t >= s && t < e => Duration::hours(1),
        _ => Duration::zero(),
    }
}

/// The hour of day (0-23) in Europe/London at `t`.
#[cfg(test)]
fn london_hour(t: DateTime<Utc>) -> u32 {
    use chrono::Timelike;
    (t + london_offset(t)).hour()
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next_month = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let mut d = next_month.and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MIN);
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().unwrap_or(NaiveDate::MIN);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn frozen_clock_only_moves_when_advanced() {
        let c = Clock::new(ClockMode::Frozen(t("2025-01-01T00:00:00Z")));
        assert_eq!(c.now(), t("2025-01-01T00:00:00Z"));
        c.advance(Duration::days(90)).unwrap();
        assert_eq!(c.now(), t("2025-04-01T00:00:00Z"));
        assert!(c.advance(Duration::seconds(-1)).is_err());
    }

    #[test]
    fn the_clock_never_moves_past_the_last_rfc3339_instant() {
        let c = Clock::new(ClockMode::Frozen(t("9999-12-01T00:00:00Z")));
        assert!(c.advance(Duration::days(31)).is_err());
        assert_eq!(c.now(), t("9999-12-01T00:00:00Z"));
        assert!(c.advance(Duration::days(30)).is_ok());
        let c = Clock::new(ClockMode::RealTime);
        assert!(c.advance(Duration::days(3_000_000)).is_err());
        assert!(check_date("x", t("2045-02-01T00:00:00Z"), t("2025-01-15T00:00:00Z")).is_err());
        assert!(check_date("x", t("2044-01-01T00:00:00Z"), t("2025-01-15T00:00:00Z")).is_ok());
    }

    #[test]
    fn real_time_clock_keeps_its_offset() {
        let c = Clock::new(ClockMode::RealTime);
        c.advance(Duration::days(3)).unwrap();
        let diff = c.now() - Utc::now();
        assert!(diff > Duration::days(3) - Duration::seconds(5), "{diff}");
        assert!(diff < Duration::days(3) + Duration::seconds(5), "{diff}");
    }

    #[test]
    fn british_summer_time() {
        assert_eq!(london_hour(t("2025-01-15T05:30:00Z")), 5);
        assert_eq!(london_hour(t("2025-07-15T05:30:00Z")), 6);
        // 2025: BST from 30 March 01:00 UTC to 26 October 01:00 UTC.
        assert_eq!(london_offset(t("2025-03-30T00:59:59Z")), Duration::zero());
        assert_eq!(london_offset(t("2025-03-30T01:00:00Z")), Duration::hours(1));
        assert_eq!(london_offset(t("2025-10-26T00:59:59Z")), Duration::hours(1));
        assert_eq!(london_offset(t("2025-10-26T01:00:00Z")), Duration::zero());
    }

    #[test]
    fn iso_has_milliseconds_and_z() {
        assert_eq!(iso(t("2019-09-27T14:29:43.687Z")), "2019-09-27T14:29:43.687Z");
        assert_eq!(iso(t("2019-09-27T14:29:43Z")), "2019-09-27T14:29:43.000Z");
    }
}
