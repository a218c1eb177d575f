//! The sandbox's virtual clock.
//!
//! Everything time-dependent (token expiry, consent expiry, sync schedules, staleness, pending
//! transactions posting) reads this clock, never the system clock, so a test can move a
//! connection through 90 days in milliseconds. In real-time mode it is the wall clock plus an
//! offset that only grows when told to advance; in frozen mode it stands still.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use parking_lot::Mutex;

use crate::config::ClockMode;

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
            ClockMode::Frozen(at) => State::Frozen { at: truncate_ms(at) },
        };
        Clock { state: Mutex::new(state) }
    }

    /// The current virtual time, at millisecond precision (as Moneyhub's timestamps are).
    pub fn now(&self) -> DateTime<Utc> {
        match *self.state.lock() {
            State::Following { offset } => truncate_ms(Utc::now() + offset),
            State::Frozen { at } => at,
        }
    }

    /// Moves the clock forward. Negative durations are refused: time never runs backwards in
    /// the sandbox, because schedules and expiry decisions already taken could not be undone.
    pub fn advance(&self, by: Duration) -> Result<DateTime<Utc>, String> {
        if by < Duration::zero() {
            return Err("the sandbox clock cannot move backwards".into());
        }
        let mut st = self.state.lock();
        *st = match *st {
            State::Following { offset } => State::Following { offset: offset + by },
            State::Frozen { at } => State::Frozen { at: at + by },
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
        *self.state.lock() = State::Following { offset: now - Utc::now() };
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
pub fn london_hour(t: DateTime<Utc>) -> u32 {
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
