//! Exporting the mirror: CSV (one line per transaction, the usual columns) or JSON (an array
//! of `{userId, connectionId, deleted, transaction}` with the stored transaction JSON).
//!
//! CSV and spreadsheets: a cell that starts with `=`, `+`, `-` or `@` is run as a formula by
//! Excel, LibreOffice and Google Sheets (CSV injection: a transaction description such as
//! `=HYPERLINK(…)` comes from a bank, not from you). Unless [`ExportOptions::raw`] is set, every
//! text cell starting with one of those, or with a tab or a carriage return (which some
//! spreadsheets skip before looking), is prefixed with a single quote `'`, which spreadsheets
//! show as text. The numeric `amount_minor` column (`-250`) is never changed. JSON is always
//! exported as stored.

use std::io::Write;

use moneyhub::UserId;
use serde_json::Value;

use crate::db::{Db, StoredTx};
use crate::error::{Error, Result};

/// Rows read per database page.
const PAGE: usize = 2_000;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
    /// A JSON array.
    Json,
}

impl std::str::FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(ExportFormat::Csv),
            "json" => Ok(ExportFormat::Json),
            other => Err(Error::Invalid(format!("unknown export format {other:?}: expected csv or json"))),
        }
    }
}

/// What to export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Only this user.
    pub user_id: Option<UserId>,
    /// Include tombstones (transactions deleted at Moneyhub).
    pub include_deleted: bool,
    /// CSV: write text cells as stored, without neutralising spreadsheet formulas (see the
    /// [module docs](self)).
    pub raw: bool,
}

impl ExportOptions {
    /// Everything live.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only one user.
    pub fn user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Include tombstones.
    pub fn include_deleted(mut self, include: bool) -> Self {
        self.include_deleted = include;
        self
    }

    /// CSV: keep text cells exactly as stored, formulas included (default: neutralised).
    pub fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }
}

const CSV_HEADER: &str = "id,user_id,account_id,connection_id,date,date_modified,status,amount_minor,currency,category_id,short_description,long_description,deleted";

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A text cell a spreadsheet would not take as a formula: `'` before a leading `=`, `+`, `-`,
/// `@`, tab or carriage return.
fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn csv_line(t: &StoredTx, raw: bool) -> String {
    let v: Value = serde_json::from_str(&t.raw).unwrap_or(Value::Null);
    let amount = v.get("amount");
    let value = amount
        .and_then(|a| a.get("value"))
        .and_then(Value::as_i64)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let currency = amount.map(|a| text(a, "currency")).unwrap_or("");
    let fields = [
        t.id.as_str(),
        t.user_id.as_str(),
        t.account_id.as_deref().unwrap_or(""),
        t.connection_id.as_deref().unwrap_or(""),
        text(&v, "date"),
        text(&v, "dateModified"),
        t.status.as_str(),
        value.as_str(),
        currency,
        text(&v, "categoryId"),
        text(&v, "shortDescription"),
        text(&v, "longDescription"),
        if t.deleted { "true" } else { "false" },
    ];
    /// The position of `amount_minor`, the only numeric column (a minus sign is its sign).
    const AMOUNT: usize = 7;
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| if raw || i == AMOUNT { csv_field(f) } else { csv_field(&neutralise(f)) })
        .collect::<Vec<_>>()
        .join(",")
}

fn json_item(t: &StoredTx) -> Result<String> {
    let raw: Value =
        serde_json::from_str(&t.raw).map_err(|e| Error::data(format!("transaction {}: {e}", t.id)))?;
    let item = serde_json::json!({
        "userId": t.user_id,
        "connectionId": t.connection_id,
        "deleted": t.deleted,
        "transaction": raw,
    });
    serde_json::to_string(&item).map_err(|e| Error::data(e.to_string()))
}

/// Writes the export to `out`; returns the number of transactions written.
pub async fn export(
    db: &Db,
    format: ExportFormat,
    options: &ExportOptions,
    out: &mut (dyn Write + Send),
) -> Result<u64> {
    let mut n: u64 = 0;
    let mut after: Option<(String, String)> = None;
    match format {
        ExportFormat::Csv => writeln!(out, "{CSV_HEADER}")?,
        ExportFormat::Json => write!(out, "[")?,
    }
    loop {
        let page = db
            .transactions_page(
                options.user_id.as_ref().map(UserId::as_str),
                after.as_ref().map(|(u, i)| (u.as_str(), i.as_str())),
                options.include_deleted,
                PAGE,
            )
            .await?;
        for t in &page {
            match format {
                ExportFormat::Csv => writeln!(out, "{}", csv_line(t, options.raw))?,
                ExportFormat::Json => {
                    let sep = if n == 0 { "\n" } else { ",\n" };
                    write!(out, "{sep}{}", json_item(t)?)?;
                }
            }
            n += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some((last.user_id.clone(), last.id.clone())),
            _ => break,
        }
    }
    if format == ExportFormat::Json {
        writeln!(out, "{}]", if n == 0 { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_line_reads_the_raw_json() {
        let t = StoredTx {
            id: "t1".into(),
            user_id: "u".into(),
            account_id: Some("a".into()),
            connection_id: None,
            date_ms: 0,
            modified_ms: 0,
            status: "posted".into(),
            deleted: false,
            raw: r#"{"amount":{"value":-250,"currency":"GBP"},"shortDescription":"Tesco, Camden","date":"2025-01-01T12:00:00.000Z"}"#.into(),
        };
        let line = csv_line(&t, false);
        assert!(
            line.starts_with("t1,u,a,,2025-01-01T12:00:00.000Z,,posted,-250,GBP,,\"Tesco, Camden\","),
            "{line}"
        );
        assert!(line.ends_with(",false"));
        // A corrupt row still exports its columns.
        let bad = StoredTx { raw: "not json".into(), ..t };
        assert!(csv_line(&bad, false).starts_with("t1,u,a,"));
    }

    #[test]
    fn csv_neutralises_formulas_unless_raw() {
        let t = StoredTx {
            id: "t1".into(),
            user_id: "u".into(),
            account_id: None,
            connection_id: None,
            date_ms: 0,
            modified_ms: 0,
            status: "posted".into(),
            deleted: false,
            raw: r#"{"amount":{"value":-250,"currency":"GBP"},"shortDescription":"=HYPERLINK(\"http://x\",\"y\")","longDescription":"@SUM(A1)","categoryId":"+1"}"#.into(),
        };
        let line = csv_line(&t, false);
        assert!(
            line.contains(",-250,GBP,'+1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@SUM(A1),"),
            "{line}"
        );
        let raw = csv_line(&t, true);
        assert!(raw.contains(",-250,GBP,+1,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",@SUM(A1),"), "{raw}");
        for (cell, expected) in
            [("-5", "'-5"), ("\tx", "'\tx"), ("\r=1", "'\r=1"), ("a=b", "a=b"), ("", ""), ("Tesco", "Tesco")]
        {
            assert_eq!(neutralise(cell), expected);
        }
    }
}
