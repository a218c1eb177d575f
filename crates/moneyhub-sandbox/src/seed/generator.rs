//! The provider world: what a bank would return for an account on a given day.
//!
//! Pure functions of (seed, account seed, day). Each generated transaction has a stable
//! *provider key* (its identity at the bank) from which its Moneyhub ids are derived, so two
//! syncs of the same day agree, and the same seed gives the same data.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};

use super::catalogue::AccountKind;
use crate::rng::Rng;

/// Standard categories (`std:` ids are fixed so categories are the same in every sandbox).
pub mod category {
    /// Groceries.
    pub const GROCERIES: &str = "std:4b0255f0-0309-4509-9e05-4b4e386f9b0d";
    /// Eating out.
    pub const EATING_OUT: &str = "std:39577c49-350f-45a4-8ec3-48ce205585fb";
    /// Transport.
    pub const TRANSPORT: &str = "std:6e7b5f4c-8d1a-4d0b-9c2e-1f3a5b7c9d01";
    /// Bills and utilities.
    pub const BILLS: &str = "std:2a6f1c3e-5b7d-4e9f-8a1c-3e5b7d9f1a2c";
    /// Mortgage or rent.
    pub const HOUSING: &str = "std:8c1e3a5f-7b9d-4f1a-8c3e-5a7b9d1f3c5e";
    /// Salary.
    pub const SALARY: &str = "std:5d7f9b1c-3e5a-4c7e-9f1b-3d5f7a9c1e3b";
    /// Shopping.
    pub const SHOPPING: &str = "std:9e1a3c5e-7f9b-4d1f-8e3a-5c7e9b1d3f5a";
    /// Entertainment.
    pub const ENTERTAINMENT: &str = "std:1b3d5f7a-9c1e-4a3c-8b5d-7f9a1c3e5b7d";
    /// Transfers between own accounts.
    pub const TRANSFERS: &str = "std:7a9c1e3b-5d7f-4b9d-8a1c-3e5f7b9d1a3c";
    /// Loan and card repayments.
    pub const REPAYMENTS: &str = "std:3f5b7d9a-1c3e-4f5a-8d7b-9c1e3a5f7b9d";
    /// Interest.
    pub const INTEREST: &str = "std:0c2e4a6c-8e0a-4c2e-9a4c-6e8a0c2e4a6c";
    /// Pension and investment contributions.
    pub const INVESTMENTS: &str = "std:d4f6b8d0-2f4b-4d6f-8b0d-2f4b6d8f0b2d";
}

/// A merchant or counterparty the generator can use.
#[derive(Debug, Clone, Copy)]
pub struct Merchant {
    /// The long (raw bank) description once posted.
    pub long: &'static str,
    /// The cleaned short description.
    pub short: &'static str,
    /// Category id.
    pub category: &'static str,
    /// Amount range in minor units (magnitude); the sign comes from `credit`.
    pub min: i64,
    /// Upper bound (exclusive) of the amount magnitude.
    pub max: i64,
    /// Money in (true) or out (false).
    pub credit: bool,
    /// Card payments show as pending for about two days before they post.
    pub card: bool,
}

const fn spend(
    long: &'static str,
    short: &'static str,
    category: &'static str,
    min: i64,
    max: i64,
) -> Merchant {
    Merchant { long, short, category, min, max, credit: false, card: true }
}

const fn fixed(
    long: &'static str,
    short: &'static str,
    category: &'static str,
    min: i64,
    max: i64,
    credit: bool,
) -> Merchant {
    Merchant { long, short, category, min, max, credit, card: false }
}

use category::*;

/// Every merchant the generator uses; transactions store an index into this table.
pub static MERCHANTS: &[Merchant] = &[
    // 0..12: everyday card spending
    spend("CARD PAYMENT TO TESCO STORES 2041 LONDON", "Tesco", GROCERIES, 350, 9_500),
    spend("CARD PAYMENT TO SAINSBURYS S/MKTS CAMDEN", "Sainsbury's", GROCERIES, 400, 11_000),
    spend("CARD PAYMENT TO LIDL GB ISLINGTON", "Lidl", GROCERIES, 300, 6_500),
    spend("CARD PAYMENT TO PRET A MANGER KINGS X", "Pret A Manger", EATING_OUT, 320, 1_400),
    spend("CARD PAYMENT TO COSTA COFFEE 43312", "Costa Coffee", EATING_OUT, 260, 900),
    spend("CARD PAYMENT TO DELIVEROO.CO.UK", "Deliveroo", EATING_OUT, 1_500, 4_500),
    spend("CARD PAYMENT TO TFL TRAVEL CH TFL.GOV.UK", "TfL", TRANSPORT, 175, 1_200),
    spend("CARD PAYMENT TO TRAINLINE.COM", "Trainline", TRANSPORT, 1_200, 9_800),
    spend("CARD PAYMENT TO AMAZON.CO.UK*MK2PL", "Amazon", SHOPPING, 599, 8_999),
    spend("CARD PAYMENT TO BOOTS 1123 OXFORD ST", "Boots", SHOPPING, 250, 3_500),
    spend("CARD PAYMENT TO SPOTIFY P1C2E3", "Spotify", ENTERTAINMENT, 1_199, 1_200),
    spend("CARD PAYMENT TO VUE CINEMAS ISLINGTON", "Vue Cinemas", ENTERTAINMENT, 900, 2_800),
    // 12..: regular payments and income
    fixed("SALARY ACME WIDGETS LTD", "Acme Widgets Ltd", SALARY, 240_000, 320_000, true),
    fixed("DIRECT DEBIT HALIFAX MORTGAGE", "Mortgage payment", HOUSING, 95_000, 95_001, false),
    fixed("DIRECT DEBIT OCTOPUS ENERGY", "Octopus Energy", BILLS, 8_000, 16_000, false),
    fixed("DIRECT DEBIT LONDON BORO CAMDEN CTAX", "Council Tax", BILLS, 15_200, 15_201, false),
    fixed("DIRECT DEBIT VODAFONE LTD", "Vodafone", BILLS, 2_400, 2_401, false),
    fixed("STANDING ORDER TO INSTANT SAVER", "Transfer to savings", TRANSFERS, 10_000, 25_000, false),
    fixed("TRANSFER FROM CURRENT ACCOUNT", "Transfer from current account", TRANSFERS, 10_000, 25_000, true),
    fixed("GROSS INTEREST", "Interest", INTEREST, 150, 1_900, true),
    fixed("PAYMENT RECEIVED - THANK YOU", "Card repayment", REPAYMENTS, 20_000, 60_000, true),
    fixed("MORTGAGE PAYMENT RECEIVED", "Mortgage payment", REPAYMENTS, 95_000, 95_001, true),
    fixed("LOAN REPAYMENT RECEIVED", "Loan repayment", REPAYMENTS, 21_450, 21_451, true),
    fixed("EMPLOYER CONTRIBUTION", "Pension contribution", INVESTMENTS, 25_000, 40_000, true),
    fixed("REGULAR INVESTMENT", "Monthly investment", INVESTMENTS, 10_000, 50_000, true),
];

/// The provider's proprietary transaction code of a current-account transaction with this
/// merchant (UK banks' usual type codes: `POS` card payment, `DD` direct debit, `SO` standing
/// order, `BGC` bank giro credit, `TFR` transfer, `INT` interest), or `None` when the bank
/// sends none.
pub fn proprietary_code(m: &Merchant) -> Option<&'static str> {
    let prefixes: [(&str, &'static str); 6] = [
        ("CARD PAYMENT", "POS"),
        ("DIRECT DEBIT", "DD"),
        ("STANDING ORDER", "SO"),
        ("SALARY", "BGC"),
        ("TRANSFER", "TFR"),
        ("GROSS INTEREST", "INT"),
    ];
    prefixes.iter().find(|(p, _)| m.long.starts_with(p)).map(|(_, c)| *c)
}

const SALARY_IDX: u16 = 12;
const MORTGAGE_DD: u16 = 13;
const ENERGY: u16 = 14;
const COUNCIL_TAX: u16 = 15;
const PHONE: u16 = 16;
const TO_SAVINGS: u16 = 17;
const FROM_CURRENT: u16 = 18;
const INTEREST_IDX: u16 = 19;
const CARD_REPAYMENT: u16 = 20;
const MORTGAGE_IN: u16 = 21;
const LOAN_IN: u16 = 22;
const PENSION_IN: u16 = 23;
const INVEST_IN: u16 = 24;
const CARD_SPEND_END: u16 = 12;

/// One transaction as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenTx {
    /// Stable identity at the provider: `day number * 64 + slot`.
    pub key: u64,
    /// When it happened (midday when the provider gives no time).
    pub date: DateTime<Utc>,
    /// Signed minor units.
    pub amount: i64,
    /// Index into [`MERCHANTS`].
    pub merchant: u16,
    /// The provider withdraws it for a few days (a "deleted" and later "restored"
    /// transaction), starting this many days after its date.
    pub withdrawn: Option<(u8, u8)>,
    /// When it posts, Moneyhub cannot match it and it reappears under a new id.
    pub replaced_on_post: bool,
}

impl GenTx {
    /// The merchant.
    pub fn merchant(&self) -> &'static Merchant {
        &MERCHANTS[self.merchant as usize % MERCHANTS.len()]
    }

    /// Whether the provider still reports it as pending at `now`.
    pub fn pending_at(&self, now: DateTime<Utc>) -> bool {
        self.merchant().card && now < self.date + pending_period()
    }

    /// Whether the provider is hiding it at `now` (withdrawn and not yet back).
    pub fn withdrawn_at(&self, now: DateTime<Utc>) -> bool {
        match self.withdrawn {
            Some((from, len)) => {
                let start = self.date + Duration::days(from as i64);
                now >= start && now < start + Duration::days(len as i64)
            }
            None => false,
        }
    }
}

/// How long card payments stay pending: "after a couple of days they change to posted".
pub fn pending_period() -> Duration {
    Duration::days(2)
}

/// What a generator needs to know about an account.
#[derive(Debug, Clone, Copy)]
pub struct AccountSeed {
    /// The sandbox seed.
    pub seed: u64,
    /// A stable label of the account (derived from its id).
    pub label: u64,
    /// What kind of account it is.
    pub kind: AccountKind,
    /// Share of card payments that post under a new id.
    pub replace_ratio: f64,
    /// Card-payment volume multiplier (1 for ordinary accounts; the high-volume test bank
    /// uses more, so one fetch can exceed the 6000-id webhook cap).
    pub volume: u8,
}

/// Days since 1970-01-01 of a date.
pub fn day_number(d: NaiveDate) -> i64 {
    d.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN)).num_days()
}

/// The provider's transactions dated on `day`, whatever the time of the asking.
pub fn transactions_on(acc: &AccountSeed, day: NaiveDate) -> Vec<GenTx> {
    let dn = day_number(day);
    let mut rng = Rng::derive(acc.seed, &[acc.label, dn as u64]);
    let mut out = Vec::new();
    let mut slot = 0u64;
    let noon = Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap_or_default());
    let mut push = |rng: &mut Rng, merchant: u16, at: DateTime<Utc>| {
        let m = &MERCHANTS[merchant as usize];
        let magnitude = rng.range(m.min, m.max);
        let withdrawn =
            if rng.chance(0.004) { Some((rng.range(3, 6) as u8, rng.range(2, 5) as u8)) } else { None };
        let replaced_on_post = m.card && rng.chance(acc.replace_ratio);
        out.push(GenTx {
            key: (dn as u64) << 6 | slot,
            date: at,
            amount: if m.credit { magnitude } else { -magnitude },
            merchant,
            withdrawn,
            replaced_on_post,
        });
        slot += 1;
    };
    let dom = day.day();
    let weekday = day.weekday();
    match acc.kind {
        AccountKind::Current => {
            // About 3 to 4 card payments a day: 100+ transactions a month with the bills.
            let n = rng.range(1, 7) * acc.volume.max(1) as i64;
            for _ in 0..n {
                let m = rng.range(0, CARD_SPEND_END as i64) as u16;
                let secs = rng.range(7 * 3600, 22 * 3600);
                let at = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
                    + Duration::seconds(secs)
                    + Duration::milliseconds(rng.range(0, 1000));
                push(&mut rng, m, at);
            }
            match dom {
                1 => push(&mut rng, MORTGAGE_DD, noon),
                5 => push(&mut rng, COUNCIL_TAX, noon),
                10 => push(&mut rng, ENERGY, noon),
                15 => push(&mut rng, PHONE, noon),
                25 => push(&mut rng, SALARY_IDX, noon),
                _ => {}
            }
            if weekday == Weekday::Fri {
                push(&mut rng, TO_SAVINGS, noon);
            }
        }
        AccountKind::Savings => {
            if weekday == Weekday::Fri {
                push(&mut rng, FROM_CURRENT, noon);
            }
            if dom == 1 {
                push(&mut rng, INTEREST_IDX, noon);
            }
        }
        AccountKind::Card => {
            let n = rng.range(0, 3);
            for _ in 0..n {
                let m = rng.range(0, CARD_SPEND_END as i64) as u16;
                let at = noon + Duration::seconds(rng.range(-5 * 3600, 9 * 3600));
                push(&mut rng, m, at);
            }
            if dom == 20 {
                push(&mut rng, CARD_REPAYMENT, noon);
            }
        }
        AccountKind::Mortgage => {
            if dom == 1 {
                push(&mut rng, MORTGAGE_IN, noon);
            }
        }
        AccountKind::Loan => {
            if dom == 3 {
                push(&mut rng, LOAN_IN, noon);
            }
        }
        AccountKind::Pension => {
            if dom == 28 {
                push(&mut rng, PENSION_IN, noon);
            }
        }
        AccountKind::Investment => {
            if dom == 2 {
                push(&mut rng, INVEST_IN, noon);
            }
        }
        AccountKind::Property => {}
    }
    out
}

/// The provider's opening balance for an account (before any generated transaction), in
/// minor units. Debts are negative.
pub fn base_balance(acc: &AccountSeed) -> i64 {
    let mut rng = Rng::derive(acc.seed, &[acc.label, 0xba1a_11ce]);
    match acc.kind {
        AccountKind::Current => rng.range(50_000, 400_000),
        AccountKind::Savings => rng.range(500_000, 2_500_000),
        AccountKind::Card => -rng.range(10_000, 150_000),
        AccountKind::Mortgage => -rng.range(15_000_000, 32_000_000),
        AccountKind::Loan => -rng.range(300_000, 1_500_000),
        AccountKind::Property => rng.range(25_000_000, 65_000_000),
        AccountKind::Pension => rng.range(2_000_000, 9_000_000),
        AccountKind::Investment => rng.range(500_000, 4_000_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(kind: AccountKind) -> AccountSeed {
        AccountSeed { seed: 1, label: 99, kind, replace_ratio: 0.5, volume: 1 }
    }

    #[test]
    fn current_accounts_are_busy_and_deterministic() {
        let a = acc(AccountKind::Current);
        let start = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        let month: Vec<GenTx> =
            (0..31).flat_map(|i| transactions_on(&a, start + Duration::days(i))).collect();
        assert!(month.len() >= 70, "only {} transactions in a month", month.len());
        assert!(month.iter().any(|t| t.amount > 0), "salary arrives");
        assert!(month.iter().filter(|t| t.amount < 0).count() > 50);
        assert!(month.iter().any(|t| t.replaced_on_post));
        let again: Vec<GenTx> =
            (0..31).flat_map(|i| transactions_on(&a, start + Duration::days(i))).collect();
        assert_eq!(month, again);
        let mut keys: Vec<u64> = month.iter().map(|t| t.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), month.len(), "provider keys are unique");
    }

    #[test]
    fn card_payments_pend_for_two_days() {
        let a = acc(AccountKind::Current);
        let day = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
        let tx = transactions_on(&a, day).into_iter().find(|t| t.merchant().card).unwrap();
        assert!(tx.pending_at(tx.date + Duration::hours(1)));
        assert!(!tx.pending_at(tx.date + Duration::days(2)));
    }

    #[test]
    fn property_has_no_transactions_and_debts_are_negative() {
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        assert!(transactions_on(&acc(AccountKind::Property), d).is_empty());
        assert!(base_balance(&acc(AccountKind::Mortgage)) < 0);
        assert!(base_balance(&acc(AccountKind::Property)) > 0);
    }
}
