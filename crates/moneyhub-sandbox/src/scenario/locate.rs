//! Where a value stands in a TOML scenario: line and column for error messages.

use toml::de::{DeTable, DeValue};

/// One step of a path from the top of a scenario.
#[derive(Debug, Clone, Copy)]
pub enum Step<'a> {
    /// A table's key.
    Key(&'a str),
    /// An array's index.
    Index(usize),
}

/// The 1-based line and column where the value at `path` starts in `text`, or the nearest
/// enclosing value that is there.
pub fn line_column(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    let top = DeTable::parse(text).ok()?;
    let mut span = top.span();
    let mut value = DeValue::Table(top.into_inner());
    for step in path {
        let next = match step {
            Step::Key(k) => value.get(*k),
            Step::Index(i) => value.get(*i),
        };
        let Some(next) = next else { break };
        span = next.span();
        value = next.get_ref().clone();
    }
    let before = text.get(..span.start)?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, column))
}

/// `users[0].connections[2].bank`.
pub fn path_text(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_in_both_table_styles() {
        let text = "[clock]\nfrozen = true\n\n[[users]]\nclientUserId = \"a\"\nconnections = [\n  { bank = \"x\" },\n  { bank = \"Nope\" },\n]\n";
        let path =
            [Step::Key("users"), Step::Index(0), Step::Key("connections"), Step::Index(1), Step::Key("bank")];
        assert_eq!(line_column(text, &path), Some((8, 12)));
        assert_eq!(path_text(&path), "users[0].connections[1].bank");
        let text = "[[users]]\nclientUserId = \"a\"\n[[users.connections]]\nbank = \"b\"\n";
        let path =
            [Step::Key("users"), Step::Index(0), Step::Key("connections"), Step::Index(0), Step::Key("bank")];
        assert_eq!(line_column(text, &path), Some((4, 8)));
    }
}
