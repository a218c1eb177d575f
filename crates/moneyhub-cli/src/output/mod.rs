//! Everything the CLI writes: stdout (tables or JSON) without ever panicking on a closed pipe,
//! one-line notices on stderr, progress on stderr only when it is a terminal, and the
//! formatting of times, amounts and ids in tables.
//!
//! **Nothing a server sends reaches the terminal raw.** [`sanitize`] is the one choke point:
//! [`emit`] (every line, JSON document and message on stdout), [`warn`] (every message on
//! stderr, errors included), the table renderer (each cell, note and heading, before the CLI's
//! own colours are added) and the progress messages all pass through it. See [`sanitize`] for
//! what it escapes and why.

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

/// Whether `c` must not reach a terminal raw: C0 controls other than line feed and tab (ESC,
/// BEL, CR, backspace…), DEL, the C1 controls U+0080–U+009F (U+009B is a one-character CSI,
/// U+009D an OSC), the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
/// U+2066–U+2069: they reorder what a line shows, "Trojan Source"), and the line and paragraph
/// separators U+2028/U+2029.
///
/// Decision (the issue left it open): the implicit marks U+200E (LRM), U+200F (RLM) and
/// U+061C (ALM) stay. They occur in real right-to-left text (bank and merchant names), and
/// they cannot reverse a run of text, only settle the direction of neutral characters next to
/// them.
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Text the CLI did not write itself, made safe for a terminal: each character for which
/// [`is_unsafe_char`] holds becomes the six visible characters `\uXXXX` (its code in
/// lower-case hex, as JSON writes it), so nothing is hidden and nothing is interpreted: no
/// OSC (window title, clipboard write, hyperlink), no CSI (clearing the screen, moving the
/// cursor), no C1 control, no bidi override. Line feeds and tabs are kept.
///
/// In JSON output such a character can only sit inside a string (serde_json escapes C0
/// itself), where `\uXXXX` is the JSON escape of the very same character: the document stays
/// valid and means the same. Applied to text already sanitized it changes nothing.
pub fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`sanitize`], except that SGR sequences (`ESC [ digits;… m`, colours and weights only)
/// stay: for the log lines, whose colours the formatter adds on a terminal.
fn sanitize_keeping_colours(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        out.push_str(&sanitize(&rest[..at]));
        let after = &rest[at + 1..];
        let sgr = after.strip_prefix('[').and_then(|p| {
            let params = p.find(|c: char| !(c.is_ascii_digit() || c == ';')).unwrap_or(p.len());
            p[params..].starts_with('m').then_some(params + 2)
        });
        match sgr {
            Some(len) => {
                out.push_str(&rest[at..at + 1 + len]);
                rest = &after[len..];
            }
            None => {
                out.push_str("\\u001b");
                rest = after;
            }
        }
    }
    out.push_str(&sanitize(rest));
    out
}

/// The log writer (`tracing`): stderr through [`sanitize`], keeping the formatter's own
/// colours when `colours` (on a terminal, see `main.rs`). A log line may quote what a server
/// sent (an error body), so it passes the same choke point as everything else.
#[derive(Debug, Clone, Copy)]
pub struct LogWriter {
    /// Whether the formatter writes colours.
    pub colours: bool,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter writes each event whole, in one call.
        let text = String::from_utf8_lossy(buf);
        let safe = if self.colours { sanitize_keeping_colours(&text) } else { sanitize(&text).into_owned() };
        std::io::stderr().lock().write_all(safe.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// [`sanitize`] for a single-line place (a table cell, a progress message): line feeds and
/// tabs become spaces as well.
pub fn sanitize_line(text: &str) -> String {
    sanitize(text).replace(['\n', '\t'], " ")
}

/// Writes to stdout, through [`sanitize`]. A closed pipe (`moneyhub ... | head`) ends the
/// process quietly with status 0; any other write error ends it with status 1 and one line on
/// stderr.
pub fn emit(text: &str) {
    emit_styled(&sanitize(text));
}

/// Writes text that carries the CLI's own colours and whose every piece from elsewhere has
/// been through [`sanitize`] already (the table renderer's output); see [`emit`].
pub fn emit_styled(text: &str) {
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

/// A writer to stdout for streamed output (`mirror export`): everything passes [`sanitize`]
/// (UTF-8 sequences split across writes are put back together first; bytes that are not UTF-8
/// become U+FFFD), and a closed pipe ends the process quietly with status 0, as [`emit`] does.
#[cfg(feature = "mirror")]
pub struct SafeStdout {
    out: std::io::BufWriter<std::io::Stdout>,
    pending: Vec<u8>,
}

#[cfg(feature = "mirror")]
impl SafeStdout {
    /// A writer to stdout.
    pub fn new() -> SafeStdout {
        SafeStdout { out: std::io::BufWriter::new(std::io::stdout()), pending: Vec::new() }
    }

    fn pass(&mut self, r: std::io::Result<()>) -> std::io::Result<()> {
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(crate::exit::OK),
            other => other,
        }
    }

    /// Writes what is left (an incomplete UTF-8 sequence as U+FFFD) and flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.pending.clear();
            let r = self.out.write_all("\u{fffd}".as_bytes());
            self.pass(r)?;
        }
        let r = self.out.flush();
        self.pass(r)
    }
}

#[cfg(feature = "mirror")]
impl Default for SafeStdout {
    fn default() -> Self {
        SafeStdout::new()
    }
}

#[cfg(feature = "mirror")]
impl Write for SafeStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let mut text = String::new();
        let mut start = 0;
        loop {
            match std::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    text.push_str(&sanitize(s));
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    let s = std::str::from_utf8(&self.pending[start..start + valid]).unwrap_or_default();
                    text.push_str(&sanitize(s));
                    start += valid;
                    match e.error_len() {
                        Some(n) => {
                            text.push('\u{fffd}');
                            start += n;
                        }
                        // An incomplete sequence at the end: wait for the rest.
                        None => break,
                    }
                }
            }
        }
        self.pending.drain(..start);
        let r = self.out.write_all(text.as_bytes());
        self.pass(r)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.out.flush();
        self.pass(r)
    }
}

/// Writes one line to stderr, through [`sanitize`] (errors ignored: there is nowhere left to
/// report them).
pub fn warn(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", sanitize(text));
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
    emit_styled(&t.render(width(), colour()));
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
    emit(&render_details(pairs, self::width()));
}

/// [`details`] fitted to `max` columns: every value starts in the same column, and a value
/// too long for the line wraps at spaces onto lines indented to that column. A value with a
/// word longer than that room (a full connection id) goes on the lines below its key,
/// indented by two, so that the column stays straight and the word whole (to be copied).
pub fn render_details(pairs: &[(&str, String)], max: usize) -> String {
    let width = pairs.iter().map(|(k, _)| table::width_of(k)).max().unwrap_or(0);
    let room = max.saturating_sub(width + 2).max(20);
    let wrap = |v: &str, room: usize| {
        let mut lines: Vec<String> = Vec::new();
        for word in v.split(' ').filter(|w| !w.is_empty()) {
            match lines.last_mut() {
                Some(line) if table::width_of(line) + 1 + table::width_of(word) <= room => {
                    line.push(' ');
                    line.push_str(word);
                }
                _ => lines.push(word.to_owned()),
            }
        }
        lines
    };
    let mut out = String::new();
    for (k, v) in pairs {
        let v = sanitize_line(v);
        if v.split(' ').any(|w| table::width_of(w) > room) {
            out.push_str(k);
            out.push('\n');
            for l in wrap(&v, max.saturating_sub(2)) {
                out.push_str("  ");
                out.push_str(&l);
                out.push('\n');
            }
            continue;
        }
        let mut lines = wrap(&v, room);
        if lines.is_empty() {
            lines.push(String::new());
        }
        for (i, l) in lines.iter().enumerate() {
            let key = if i == 0 { *k } else { "" };
            out.push_str(format!("{key:<width$}  {l}").trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_keep_their_column() {
        let long = "a value long enough to need more than one line at this width, with words";
        let s = render_details(
            &[
                ("id", "1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b".into()),
                ("note", long.into()),
                ("k", "v".into()),
            ],
            40,
        );
        let lines: Vec<&str> = s.lines().collect();
        // An id longer than the value column: on the next line, whole.
        assert_eq!(lines[0], "id", "{s}");
        assert_eq!(
            lines[1], "  1ffe704d39629a929c8e293880fb449a:cb126400-1d69-4242-b188-fc8b5c22783b",
            "{s}"
        );
        // Every other value starts at column 6 ("note" + 2), continuation lines too.
        for l in &lines[2..] {
            assert_eq!(l.char_indices().nth(6).map(|(_, c)| c != ' '), Some(true), "{s}");
            assert!(l.starts_with("note  ") || l.starts_with("k     ") || l.starts_with("      "), "{s}");
            assert!(l.chars().count() <= 40, "{s}");
        }
        assert!(lines.len() > 4, "{s}");
    }

    #[test]
    fn sanitizes() {
        let planted = "a\u{1b}]0;t\u{7}b\u{9b}2J\u{202e}c\td\ne\u{200f}";
        assert_eq!(sanitize(planted), "a\\u001b]0;t\\u0007b\\u009b2J\\u202ec\td\ne\u{200f}");
        assert_eq!(sanitize(&sanitize(planted)), sanitize(planted));
        assert_eq!(sanitize_line("a\tb\nc\u{1b}"), "a b c\\u001b");
        assert_eq!(
            sanitize_keeping_colours("\u{1b}[1;32mok\u{1b}[0m \u{1b}[2J\u{1b}]8;;x\u{1b}\\"),
            "\u{1b}[1;32mok\u{1b}[0m \\u001b[2J\\u001b]8;;x\\u001b\\"
        );
        // JSON stays valid and means the same.
        let json = serde_json::to_string(&serde_json::json!({"d": "x\u{9b}y\u{202e}"})).unwrap();
        let safe = sanitize(&json);
        assert!(!safe.contains('\u{9b}'));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["d"], "x\u{9b}y\u{202e}");
    }

    #[test]
    fn tables_escape_cells_but_keep_their_own_colours() {
        let mut t =
            table::Table::new(vec![table::Column::new("A").colour(|_| Some("32")), table::Column::new("B")]);
        t.row(vec!["\u{1b}[2Jx".into(), "y\u{9b}31m".into()]);
        let s = t.render(80, true);
        assert!(s.contains("\u{1b}[1mA"), "{s:?}");
        assert!(s.contains("\u{1b}[32m\\u001b[2Jx"), "{s:?}");
        assert!(!s.contains('\u{9b}') && !s.contains("\u{1b}[2J"), "{s:?}");
    }

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
