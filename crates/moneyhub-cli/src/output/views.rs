//! How connections and transactions show in tables, for every command that shows them.

use moneyhub::{Connection, Transaction};

use crate::output;
use crate::output::table::{Column, Table};

/// `ok`, `error: credentials_error`, `error: sync_error (expired)`, `never`.
pub fn health_text(c: &Connection) -> String {
    let mut s = c.status.to_string();
    if let Some(e) = &c.error {
        s.push_str(": ");
        s.push_str(e.as_str());
    }
    if let Some(x) = &c.extended_status {
        s.push_str(&format!(" ({x})"));
    }
    s
}

/// The table cell for a connection's error: its `extendedStatus` when it has one (the more
/// specific), else its `error`, else `-`.
pub fn error_cell(c: &Connection) -> String {
    match (&c.extended_status, &c.error) {
        (Some(x), _) => x.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "-".to_owned(),
    }
}

/// Colours of a status cell.
pub fn status_colour(s: &str) -> Option<&'static str> {
    match s {
        "ok" => Some("32"),
        "error" => Some("31"),
        "never" => Some("35"),
        _ => Some("33"),
    }
}

/// A transactions table: short id, date, amount, status, description.
pub fn transactions_table(transactions: &[Transaction]) -> Table {
    let mut t = Table::new(vec![
        Column::new("ID"),
        Column::new("DATE"),
        Column::new("AMOUNT").right(),
        Column::new("STATUS"),
        Column::new("DESCRIPTION").elide_end(12),
    ]);
    for tx in transactions {
        let description =
            if tx.short_description.trim().is_empty() { &tx.long_description } else { &tx.short_description };
        t.row(vec![
            output::short_uuid(tx.id.as_str()),
            output::day(&tx.date),
            output::money(tx.amount.value, &tx.amount.currency),
            tx.status.to_string(),
            description.clone(),
        ]);
    }
    t
}
