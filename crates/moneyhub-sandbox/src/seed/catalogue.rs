//! The sandbox's provider catalogue.

use serde_json::{json, Value};

use crate::rng::{label, Rng};

/// The kind of connection a provider gives (the connection and catalogue `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderType {
    /// Open-banking API provider.
    Api,
    /// Screen-scraping provider.
    Legacy,
    /// Mock open-banking provider for development (behaves like `api`).
    Test,
    /// Property valuation.
    Zoopla,
    /// Property valuation.
    Mouseprice,
    /// Vehicle valuation.
    Autotrader,
}

impl ProviderType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Api => "api",
            ProviderType::Legacy => "legacy",
            ProviderType::Test => "test",
            ProviderType::Zoopla => "zoopla",
            ProviderType::Mouseprice => "mouseprice",
            ProviderType::Autotrader => "autotrader",
        }
    }

    /// Valuation providers sync monthly.
    pub fn is_valuation(self) -> bool {
        matches!(self, ProviderType::Zoopla | ProviderType::Mouseprice | ProviderType::Autotrader)
    }
}

/// The kinds of account the generator knows how to fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// `cash:current`.
    Current,
    /// `savings`.
    Savings,
    /// `card`.
    Card,
    /// `mortgage:repayment`.
    Mortgage,
    /// `loan`.
    Loan,
    /// `properties:residential`.
    Property,
    /// `pension:definedContribution`.
    Pension,
    /// `investment`.
    Investment,
}

impl AccountKind {
    /// The Data API account `type`.
    pub fn type_str(self) -> &'static str {
        match self {
            AccountKind::Current => "cash:current",
            AccountKind::Savings => "savings",
            AccountKind::Card => "card",
            AccountKind::Mortgage => "mortgage:repayment",
            AccountKind::Loan => "loan",
            AccountKind::Property => "properties:residential",
            AccountKind::Pension => "pension:definedContribution",
            AccountKind::Investment => "investment",
        }
    }

    /// The coarse name used in the catalogue's `accountTypes`.
    pub fn coarse(self) -> &'static str {
        match self {
            AccountKind::Current => "cash",
            AccountKind::Savings => "savings",
            AccountKind::Card => "card",
            AccountKind::Mortgage => "mortgage",
            AccountKind::Loan => "loan",
            AccountKind::Property => "properties",
            AccountKind::Pension => "pension",
            AccountKind::Investment => "investment",
        }
    }

    /// Staleness threshold in days (lifecycle spec §2): 40 for properties, asset, mortgages and
    /// loans, 2 for everything else.
    pub fn stale_after_days(self) -> i64 {
        match self {
            AccountKind::Mortgage | AccountKind::Loan | AccountKind::Property => 40,
            _ => 2,
        }
    }

    /// A display name for an account of this kind.
    pub fn display_name(self) -> &'static str {
        match self {
            AccountKind::Current => "Current Account",
            AccountKind::Savings => "Instant Saver",
            AccountKind::Card => "Credit Card",
            AccountKind::Mortgage => "Mortgage",
            AccountKind::Loan => "Personal Loan",
            AccountKind::Property => "Home",
            AccountKind::Pension => "Pension",
            AccountKind::Investment => "Stocks & Shares ISA",
        }
    }
}

/// One provider of the catalogue.
#[derive(Debug, Clone)]
pub struct Provider {
    /// 32-hex bank id.
    pub id: String,
    /// Display name.
    pub name: &'static str,
    /// Connection type.
    pub kind: ProviderType,
    /// Catalogue `bankRef`.
    pub bank_ref: &'static str,
    /// Accounts a new connection to this provider gets.
    pub accounts: &'static [AccountKind],
    /// Connections to this provider never carry `expiresAt` (Handelsbanken, PensionBee, Société
    /// Générale; every legacy provider).
    pub no_expiry: bool,
    /// At most this many manual syncs per connection per day (Triodos: 4).
    pub daily_sync_cap: Option<u32>,
    /// Supports payment initiation (listed in `payments-connections`).
    pub payments: bool,
    /// How far back the background history fetch goes, in months.
    pub history_months: u32,
    /// Listed in `beta-connections`.
    pub beta: bool,
    /// Meant to be removed by tests (still listed until removed).
    pub removable: bool,
    /// Card-payment volume multiplier of its current accounts.
    pub volume: u8,
}

impl Provider {
    /// The catalogue entry JSON.
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut types: Vec<&str> = self.accounts.iter().map(|a| a.coarse()).collect();
        types.dedup();
        let account_types: Vec<Value> = types.iter().map(|t| json!({"name": t, "beta": false})).collect();
        let mut v = json!({
            "id": self.id,
            "name": self.name,
            "type": self.kind.as_str(),
            "country": "GB",
            "bankRef": self.bank_ref,
            "parentRef": self.bank_ref,
            "isBeta": self.beta,
            "accountTypes": account_types,
            "iconUrl": format!("{base_url}/bank-icons/{}", self.bank_ref),
            "userTypes": ["personal", "business"],
            "payments": if self.payments { json!(["domestic"]) } else { json!([]) },
            "status": {"sync": "AVAILABLE", "auth": "AVAILABLE"},
        });
        if self.history_months < 36 {
            v["monthsInitialConsent"] = json!(self.history_months);
        }
        v
    }
}

struct Spec {
    id: Option<&'static str>,
    name: &'static str,
    kind: ProviderType,
    bank_ref: &'static str,
    accounts: &'static [AccountKind],
    no_expiry: bool,
    cap: Option<u32>,
    payments: bool,
    history: u32,
    beta: bool,
    removable: bool,
    volume: u8,
}

use AccountKind::*;
use ProviderType::*;

const fn p(
    name: &'static str,
    kind: ProviderType,
    bank_ref: &'static str,
    accounts: &'static [AccountKind],
) -> Spec {
    Spec {
        id: None,
        name,
        kind,
        bank_ref,
        accounts,
        no_expiry: matches!(kind, Legacy),
        cap: None,
        payments: false,
        history: 36,
        beta: false,
        removable: false,
        volume: 1,
    }
}

/// Bank id of "Moneyhub Open Banking Mock".
pub const MONEYHUB_MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
/// Bank id of "Modelo Open Banking Mock".
pub const MODELO_MOCK: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
/// Bank id of Aviva (legacy).
pub const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            id: Some(MONEYHUB_MOCK),
            payments: true,
            ..p("Moneyhub Open Banking Mock", Test, "moneyhub-mock", &[Current, Savings, Card])
        },
        Spec {
            id: Some(MODELO_MOCK),
            payments: true,
            ..p("Modelo Open Banking Mock", Test, "modelo-mock", &[Current, Savings, Mortgage, Loan])
        },
        Spec { id: Some(AVIVA), ..p("Aviva", Legacy, "aviva", &[Pension, Investment]) },
        Spec { payments: true, ..p("Barclays", Api, "barclays", &[Current, Savings, Card]) },
        Spec { payments: true, ..p("HSBC UK", Api, "hsbc", &[Current, Savings]) },
        Spec { payments: true, ..p("Lloyds Bank", Api, "lloyds", &[Current, Card]) },
        Spec { payments: true, ..p("Monzo", Api, "monzo", &[Current, Savings]) },
        Spec { payments: true, ..p("Nationwide", Api, "nationwide", &[Current, Mortgage]) },
        Spec { payments: true, ..p("NatWest", Api, "natwest", &[Current, Savings, Loan]) },
        Spec { payments: true, ..p("Starling Bank", Api, "starling", &[Current]) },
        p("American Express", Api, "amex", &[Card]),
        Spec { cap: Some(4), ..p("Triodos Bank", Api, "triodos", &[Current, Savings]) },
        Spec { no_expiry: true, ..p("Handelsbanken", Api, "handelsbanken", &[Current]) },
        Spec { no_expiry: true, history: 12, ..p("PensionBee", Api, "pensionbee", &[Pension]) },
        Spec {
            no_expiry: true, history: 12, ..p("Société Générale", Api, "societe-generale", &[Current])
        },
        Spec { beta: true, ..p("Chase UK", Api, "chase", &[Current, Savings]) },
        Spec { removable: true, ..p("Northwind Building Society", Api, "northwind", &[Current, Savings]) },
        p("Hargreaves Lansdown", Legacy, "hargreaves-lansdown", &[Investment, Pension]),
        p("Scottish Widows", Legacy, "scottish-widows", &[Pension]),
        // A mock bank whose current account is ~8x busier than usual: its background history
        // fetch exceeds 6000 transactions for one account (the webhook split).
        Spec { volume: 8, ..p("Sandbox High Volume Bank", Test, "sandbox-high-volume", &[Current]) },
        Spec { history: 3, ..p("Zoopla", Zoopla, "zoopla", &[Property]) },
        Spec { history: 3, ..p("Mouseprice", Mouseprice, "mouseprice", &[Property]) },
    ]
}

/// The catalogue: every provider the sandbox knows, in a stable order.
#[derive(Debug, Clone)]
pub struct Catalogue {
    providers: Vec<Provider>,
}

impl Catalogue {
    /// Builds the catalogue. Bank ids are fixed (documented ids for the mocks and Aviva, a hash
    /// of the name for the rest), so they are the same for every seed and every release.
    pub fn new() -> Self {
        let providers = specs()
            .into_iter()
            .map(|s| Provider {
                id: s.id.map(str::to_string).unwrap_or_else(|| Rng::derive(0, &[label(s.name)]).hex(32)),
                name: s.name,
                kind: s.kind,
                bank_ref: s.bank_ref,
                accounts: s.accounts,
                no_expiry: s.no_expiry || s.kind == Legacy,
                daily_sync_cap: s.cap,
                payments: s.payments,
                history_months: s.history,
                beta: s.beta,
                removable: s.removable,
                volume: s.volume,
            })
            .collect();
        Catalogue { providers }
    }

    /// All providers.
    pub fn all(&self) -> &[Provider] {
        &self.providers
    }

    /// The provider with this bank id.
    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// The provider whose `bankRef` or name matches (case-insensitive): handy for CLIs.
    pub fn find(&self, name_or_ref: &str) -> Option<&Provider> {
        let n = name_or_ref.to_ascii_lowercase();
        self.providers.iter().find(|p| p.id == n || p.bank_ref == n || p.name.to_ascii_lowercase() == n)
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Self::new()
    }
}

/// Which catalogue listing was asked for (`/oidc/.well-known/<x>-connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Everything.
    All,
    /// Open-banking providers (api and test? no: `api` only).
    Api,
    /// Screen-scraping providers.
    Legacy,
    /// Mock providers.
    Test,
    /// Payment-capable providers.
    Payments,
    /// Beta providers.
    Beta,
    /// One valuation type.
    Of(ProviderType),
}

impl Listing {
    /// Parses the `<x>` of `<x>-connections`.
    pub fn parse(s: &str) -> Option<Listing> {
        Some(match s {
            "all" => Listing::All,
            "api" => Listing::Api,
            "legacy" => Listing::Legacy,
            "test" => Listing::Test,
            "payments" => Listing::Payments,
            "beta" => Listing::Beta,
            "zoopla" => Listing::Of(Zoopla),
            "mouseprice" => Listing::Of(Mouseprice),
            "autotrader" => Listing::Of(Autotrader),
            _ => return None,
        })
    }

    /// Whether `p` belongs in this listing.
    pub fn includes(self, p: &Provider) -> bool {
        match self {
            Listing::All => true,
            Listing::Api => p.kind == Api,
            Listing::Legacy => p.kind == Legacy,
            Listing::Test => p.kind == Test,
            Listing::Payments => p.payments,
            Listing::Beta => p.beta,
            Listing::Of(t) => p.kind == t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_the_documented_providers() {
        let c = Catalogue::new();
        assert_eq!(c.get(MONEYHUB_MOCK).unwrap().name, "Moneyhub Open Banking Mock");
        assert_eq!(c.get(MODELO_MOCK).unwrap().kind, Test);
        assert_eq!(c.get(AVIVA).unwrap().kind, Legacy);
        assert!(c.get(AVIVA).unwrap().no_expiry);
        assert_eq!(c.find("triodos").unwrap().daily_sync_cap, Some(4));
        for name in ["handelsbanken", "pensionbee", "societe-generale"] {
            assert!(c.find(name).unwrap().no_expiry, "{name}");
        }
        assert!(c.all().iter().any(|p| p.removable));
        assert!(c.all().iter().any(|p| p.kind == Zoopla));
        let mut ids: Vec<&str> = c.all().iter().map(|p| p.id.as_str()).collect();
        assert!(ids.iter().all(|i| i.len() == 32 && i.chars().all(|c| c.is_ascii_hexdigit())));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), c.all().len(), "bank ids are unique");
    }
}
