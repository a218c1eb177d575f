//! `moneyhub catalog [--type all|api|legacy|payments|test]`.
//!
//! JSON: the catalogue as Moneyhub sends it, an array of `{id, name, type, country, bankRef,
//! accountTypes: [{name, beta}], payments, status: {sync, auth}, ...}`.

use moneyhub::Catalogue;

use crate::cli::{CatalogArgs, CatalogType};
use crate::context::Ctx;
use crate::exit::CmdResult;
use crate::output::table::{Column, Table};
use crate::output::{self, OutputFormat};

/// Runs the command.
pub async fn run(ctx: &Ctx, args: CatalogArgs) -> CmdResult {
    let which = match args.kind {
        CatalogType::All => Catalogue::All,
        CatalogType::Api => Catalogue::Api,
        CatalogType::Legacy => Catalogue::Legacy,
        CatalogType::Payments => Catalogue::Payments,
        CatalogType::Test => Catalogue::Test,
    };
    let entries = ctx.client.connections().catalogue(which).await.map_err(|e| ctx.fail(e))?;
    if ctx.output == OutputFormat::Json {
        output::json(&entries);
        return Ok(());
    }
    if entries.is_empty() {
        output::line(&format!("No providers in the {} catalogue.", which.as_str()));
        return Ok(());
    }
    let mut t = Table::new(vec![
        Column::new("BANK ID"),
        Column::new("NAME").elide_end(12),
        Column::new("TYPE"),
        Column::new("ACCOUNTS").elide_end(8),
    ]);
    for e in &entries {
        let mut name = e.name.clone();
        if e.is_beta == Some(true) {
            name.push_str(" (beta)");
        }
        let accounts: Vec<&str> = e.account_types.iter().map(|a| a.name.as_str()).collect();
        t.row(vec![e.id.to_string(), name, e.kind.to_string(), accounts.join(", ")]);
    }
    output::table(&t);
    output::line(&format!(
        "{} ({} catalogue)",
        output::count(entries.len(), "provider", "providers"),
        which.as_str()
    ));
    Ok(())
}
