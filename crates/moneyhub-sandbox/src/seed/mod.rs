//! Deterministic data: the provider catalogue and the "provider world" of transactions.
//!
//! A provider's transactions are a pure function of (sandbox seed, account, day): the sandbox
//! does not store what a bank holds, it recomputes it when a sync asks. What Moneyhub has
//! *fetched* so far lives in the store; the difference between the two is what a sync brings.

pub mod catalogue;
pub mod generator;
