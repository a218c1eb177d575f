//! Everything the CLI writes: stdout (tables or JSON) without ever panicking on a closed pipe,
//! one-line notices on stderr, progress on stderr only when it is a terminal, and the
//! formatting of times, amounts and ids in tables.

pub mod progress;
pub mod table;
pub mod views;

use std::io::{IsTerminal, Write};

use chrono::{DateTime, Duration, Utc};
use clap::ValueEnum;
use serde::Serialize;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people, fitted to the terminal's width (80 when stdout is not a
    /// terminal; `COLUMNS` overrides).
    #[default]
    Table,
    /// Stable JSON for scripts (camelCase keys; see the README).
    Json,
}

/// Writes to stdout. A closed pipe (`moneyhub ... | head`) ends the process quietly with
/// status 0; any other write error ends it with status 1 and one line on stderr.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(crate::exit::OK);
        }
        warn(&format!("moneyhub: could not write the output: {e}"));
        std::process::exit(crate::exit::INTERNAL);
    }
}

/// Writes a line to stdout (see [`emit`]).
pub fn line(text: &str) {
    let mut s = String::with_capacity(text.len() + 1);
    s.push_str(text);
    s.push('\n');
    emit(&s);
}

/// Writes a value as pretty JSON, with a final newline.
pub fn json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            emit(&s);
        }
        Err(e) => {
            warn(&format!("moneyhub: could not encode the output as JSON: {e}"));
            std::process::exit(crate::exit::INTERNAL);
        }
    }
}

/// Writes one line to stderr (errors ignored: there is nowhere left to report them).
pub fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Whether stderr is a terminal (progress bars and spinners are drawn only then).
pub fn stderr_is_tty() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether tables may use colours: stdout is a terminal, `NO_COLOR` is unset and `TERM` is
/// not `dumb`.
pub fn colour() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// The width tables are fitted to, in display columns: `COLUMNS` when it is a number from 40
/// to 1000, else the width of the terminal stdout is (at least 40), else 80 (a pipe or a file).
pub fn width() -> usize {
    let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok());
    fit_width(columns, terminal_width())
}

/// The width of the terminal on stdout, if it is one.
fn terminal_width() -> Option<usize> {
    let out = console::Term::stdout();
    if !out.is_term() {
        return None;
    }
    out.size_checked().map(|(_rows, cols)| usize::from(cols))
}

/// [`width`] from `COLUMNS` and the terminal's width.
pub fn fit_width(columns: Option<usize>, terminal: Option<usize>) -> usize {
    match (columns.filter(|w| (40..=1000).contains(w)), terminal.filter(|w| *w > 0)) {
        (Some(w), _) => w,
        (None, Some(t)) => t.clamp(40, 1000),
        (None, None) => 80,
    }
}

/// Prints a table fitted to the terminal width.
pub fn table(t: &table::Table) {
    emit(&t.render(width(), colour()));
}

/// Moneyhub's timestamp format (`2025-01-15T09:30:00.000Z`), for JSON.
pub fn ts(t: &DateTime<Utc>) -> String {
    moneyhub_types::time::format_timestamp(t)
}

/// A time in a table: `2025-01-15 09:30` (UTC).
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// A time in a table, as short as is unambiguous next to `now`: `09:30` on the same day,
/// else `2025-01-16 09:30` (UTC).
pub fn when_short(now: DateTime<Utc>, t: &DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        when(t)
    }
}

/// A day in a table: `2025-01-15`.
pub fn day(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// A duration for people: `45 s`, `29 min`, `3 h 5 min`, `2 days 4 h`.
pub fn span(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", (secs + 59) / 60)
    } else if secs < 86_400 {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    } else {
        let (d, h) = (secs / 86_400, (secs % 86_400) / 3600);
        let days = if d == 1 { "1 day".to_owned() } else { format!("{d} days") };
        if h == 0 {
            days
        } else {
            format!("{days} {h} h")
        }
    }
}

/// How long from `now` until `t` (`0 s` when past).
pub fn until(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    span(t - now)
}

/// A connection id as tables show it: the first 8 characters of its uuid part
/// (`1ffe…:cb126400-…` → `cb126400`), enough to pass back as `--connection`.
pub fn short_connection(id: &str) -> String {
    match id.rsplit_once(':') {
        Some((_, uuid)) if uuid.len() >= 8 => uuid.chars().take(8).collect(),
        _ => table::elide(id, 12, table::Elide::Middle),
    }
}

/// A UUID as tables show it: its first 8 characters.
pub fn short_uuid(id: &str) -> String {
    if id.len() > 8 && id.is_char_boundary(8) {
        id[..8].to_owned()
    } else {
        id.to_owned()
    }
}

/// An amount in minor units: `-23.23 GBP`.
pub fn money(value: i64, currency: &str) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", group(abs / 100), abs % 100)
}

/// `1234567` → `1,234,567`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `-` for a missing table value.
pub fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Pluralises: `1 user`, `2 users`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", group(n as u64), if n == 1 { one } else { many })
}

/// Prints a single object as aligned `key  value` lines.
pub fn details(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| table::width_of(k)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let padded = format!("{k:<width$}  {v}");
        // A long value (a full connection id) is not pushed past the table width.
        let line = if table::width_of(&padded) > self::width() { format!("{k}  {v}") } else { padded };
        out.push_str(line.trim_end());
        out.push('\n');
    }
    emit(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(money(-232_323, "GBP"), "-2,323.23 GBP");
        assert_eq!(money(5, "GBP"), "0.05 GBP");
        assert_eq!(span(Duration::minutes(29) + Duration::seconds(1)), "30 min");
        assert_eq!(span(Duration::hours(50)), "2 days 2 h");
        assert_eq!(
            short_connection("1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b"),
            "cb126400"
        );
        assert_eq!(group(1000), "1,000");
    }
}
