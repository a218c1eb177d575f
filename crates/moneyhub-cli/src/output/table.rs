//! A small table renderer for terminals: aligned columns, two spaces apart, fitted to a width
//! (the terminal's, or 80 columns, unless `COLUMNS` says otherwise; measured in display columns) by shrinking the widest shrinkable columns and
//! eliding their cells with `…`, plus an optional wrapped note line under each row.

/// How a column's cells are shortened when the table is too wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elide {
    /// Keep the start: `Moneyhub Open B…`.
    End,
    /// Keep both ends: `1ffe704d…a183b`.
    Middle,
    /// Never shortened.
    Never,
}

/// A column.
#[derive(Debug, Clone)]
pub struct Column {
    header: &'static str,
    right: bool,
    elide: Elide,
    min: usize,
    colour: Option<fn(&str) -> Option<&'static str>>,
}

impl Column {
    /// A left-aligned column that is never shortened.
    pub fn new(header: &'static str) -> Self {
        Column { header, right: false, elide: Elide::Never, min: width_of(header), colour: None }
    }

    /// Right-aligned (numbers).
    pub fn right(mut self) -> Self {
        self.right = true;
        self
    }

    /// Shortened from the end, down to `min` characters.
    pub fn elide_end(mut self, min: usize) -> Self {
        self.elide = Elide::End;
        self.min = min.max(2);
        self
    }

    /// Colours a cell (an ANSI SGR code such as `"32"`) when colours are on.
    pub fn colour(mut self, f: fn(&str) -> Option<&'static str>) -> Self {
        self.colour = Some(f);
        self
    }
}

/// A line of the table body.
#[derive(Debug, Clone)]
enum Line {
    /// Cells, and a note printed below them.
    Row(Vec<String>, Option<String>),
    /// A heading line across the table (e.g. `user 5c79…`).
    Group(String),
}

/// A table being built.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Line>,
}

/// The display width of `s` in terminal columns (East Asian wide characters and most emoji
/// take two, combining marks none), as `unicode-width` measures it.
pub fn width_of(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// The longest prefix of `s` at most `width` columns wide.
fn take_columns(s: &str, width: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let w = char_width(c);
        if used + w > width {
            return &s[..i];
        }
        used += w;
    }
    s
}

/// The longest suffix of `s` at most `width` columns wide.
fn take_last_columns(s: &str, width: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices().rev() {
        let w = char_width(c);
        if used + w > width {
            return &s[i + c.len_utf8()..];
        }
        used += w;
    }
    s
}

/// Shortens `s` to `width` display columns with `…`.
pub fn elide(s: &str, width: usize, how: Elide) -> String {
    let n = width_of(s);
    if n <= width || how == Elide::Never {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    match how {
        Elide::End | Elide::Never => {
            let mut out = take_columns(s, width - 1).trim_end().to_owned();
            out.push('…');
            out
        }
        Elide::Middle => {
            let keep = width - 1;
            let head = keep.div_ceil(2);
            let tail = keep - head;
            let mut out = take_columns(s, head).to_owned();
            out.push('…');
            out.push_str(take_last_columns(s, tail));
            out
        }
    }
}

/// Wraps `text` into lines of at most `width` display columns (words longer than that are
/// cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while width_of(&word) > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head = take_columns(&word, width).to_owned();
            // A character wider than the whole line still makes progress.
            let head = if head.is_empty() { word.chars().take(1).collect() } else { head };
            word = word[head.len()..].to_owned();
            lines.push(head);
        }
        if line.is_empty() {
            line = word;
        } else if width_of(&line) + 1 + width_of(&word) <= width {
            line.push(' ');
            line.push_str(&word);
        } else {
            lines.push(std::mem::replace(&mut line, word));
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

impl Table {
    /// A table with these columns.
    pub fn new(columns: Vec<Column>) -> Self {
        Table { columns, rows: Vec::new() }
    }

    /// Adds a row (missing cells are empty, extra ones ignored).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(Line::Row(cells, None));
    }

    /// Adds a heading line across the table, before the rows that follow.
    pub fn group(&mut self, title: impl Into<String>) {
        self.rows.push(Line::Group(title.into()));
    }

    /// Adds a row with a note printed, wrapped and indented, on the lines below it.
    pub fn row_with_note(&mut self, cells: Vec<String>, note: impl Into<String>) {
        self.rows.push(Line::Row(cells, Some(note.into())));
    }

    /// The column widths that fit `max` characters (as well as the minimums allow).
    fn widths(&self, max: usize) -> Vec<usize> {
        let mut widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = self.rows.iter().map(|l| match l {
                    Line::Row(r, _) => r.get(i).map_or(0, |s| width_of(s)),
                    Line::Group(_) => 0,
                });
                cells.fold(width_of(c.header), usize::max)
            })
            .collect();
        let gaps = 2 * self.columns.len().saturating_sub(1);
        loop {
            let total: usize = widths.iter().sum::<usize>() + gaps;
            if total <= max {
                break;
            }
            // Shrink the widest column that may still shrink.
            let candidate = self
                .columns
                .iter()
                .enumerate()
                .filter(|(i, c)| c.elide != Elide::Never && widths[*i] > c.min)
                .max_by_key(|(i, _)| (widths[*i], usize::MAX - *i))
                .map(|(i, _)| i);
            match candidate {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        widths
    }

    /// Renders the table, fitted to `max` columns, with ANSI colours when `colour`. Every
    /// cell, note and heading passes [`super::sanitize_line`] first (they are measured that
    /// way too): the only escape sequences in the result are the colours added here.
    pub fn render(&self, max: usize, colour: bool) -> String {
        let mut safe = self.clone();
        for row in &mut safe.rows {
            match row {
                Line::Row(cells, note) => {
                    for c in cells.iter_mut() {
                        *c = super::sanitize_line(c);
                    }
                    if let Some(n) = note {
                        *n = super::sanitize_line(n);
                    }
                }
                Line::Group(title) => *title = super::sanitize_line(title),
            }
        }
        safe.render_safe(max, colour)
    }

    fn render_safe(&self, max: usize, colour: bool) -> String {
        let widths = self.widths(max);
        let mut out = String::new();
        let last = self.columns.len().saturating_sub(1);
        let line = |cells: &[String], header: bool, out: &mut String| {
            let mut text = String::new();
            for (i, col) in self.columns.iter().enumerate() {
                let raw = cells.get(i).map(String::as_str).unwrap_or("");
                let cell =
                    if header { elide(raw, widths[i], Elide::End) } else { elide(raw, widths[i], col.elide) };
                let pad = widths[i].saturating_sub(width_of(&cell));
                let padded = if col.right {
                    format!("{}{cell}", " ".repeat(pad))
                } else if i == last {
                    cell.clone()
                } else {
                    format!("{cell}{}", " ".repeat(pad))
                };
                let styled = match (colour, header, col.colour.and_then(|f| f(raw))) {
                    (true, true, _) => format!("\x1b[1m{padded}\x1b[0m"),
                    (true, false, Some(code)) => format!("\x1b[{code}m{padded}\x1b[0m"),
                    _ => padded,
                };
                text.push_str(&styled);
                if i != last {
                    text.push_str("  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        let headers: Vec<String> = self.columns.iter().map(|c| c.header.to_owned()).collect();
        line(&headers, true, &mut out);
        for (i, row) in self.rows.iter().enumerate() {
            let first = i == 0;
            match row {
                Line::Group(title) => {
                    if !first {
                        out.push('\n');
                    }
                    out.push_str(&elide(title, max, Elide::End));
                    out.push('\n');
                }
                Line::Row(cells, note) => {
                    line(cells, false, &mut out);
                    if let Some(note) = note {
                        for l in wrap(note, max.saturating_sub(4)) {
                            out.push_str("    ");
                            out.push_str(&l);
                            out.push('\n');
                        }
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elides() {
        assert_eq!(elide("abcdefghij", 5, Elide::End), "abcd…");
        assert_eq!(elide("abcdefghij", 5, Elide::Middle), "ab…ij");
        assert_eq!(elide("abc", 5, Elide::Middle), "abc");
        assert_eq!(elide("Société Générale", 8, Elide::End), "Société…");
    }

    #[test]
    fn fits_the_width() {
        let mut t =
            Table::new(vec![Column::new("ID"), Column::new("NAME").elide_end(4), Column::new("N").right()]);
        t.row(vec!["a".into(), "a very long name indeed".into(), "12".into()]);
        let s = t.render(20, false);
        assert!(s.lines().all(|l| l.chars().count() <= 20), "{s}");
        assert!(s.contains("a very long …") || s.contains('…'), "{s}");
    }

    #[test]
    fn measures_display_columns() {
        // Wide characters take two columns, combining marks none.
        assert_eq!(width_of("日本銀行"), 8);
        assert_eq!(width_of("e\u{301}"), 1);
        assert_eq!(elide("日本銀行株式会社", 7, Elide::End), "日本銀…");
        assert_eq!(elide("日本銀行株式会社", 7, Elide::Middle), "日…社");
        let mut t = Table::new(vec![Column::new("BANK").elide_end(4), Column::new("N").right()]);
        t.row(vec!["みずほ銀行 普通預金口座".into(), "12".into()]);
        t.row(vec!["Monzo".into(), "3".into()]);
        let s = t.render(16, false);
        assert!(s.lines().all(|l| width_of(l) <= 16), "{s}");
        // The numbers line up in display columns.
        let ends: Vec<usize> = s.lines().skip(1).map(width_of).collect();
        assert_eq!(ends[0], ends[1], "{s}");
    }

    #[test]
    fn wraps() {
        assert_eq!(wrap("one two three four", 10), vec!["one two", "three four"]);
        assert_eq!(wrap("", 10), Vec::<String>::new());
    }
}
