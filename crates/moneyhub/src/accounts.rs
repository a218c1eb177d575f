//! Accounts (Data API, token bound to the user with `accounts:read`).

use reqwest::Method;

use moneyhub_types::{Account, AccountId, ConnectionId, DataResponse, UserId};

use crate::error::{Error, Result};
use crate::transport::http::Call;
use crate::transport::tokens::TokenKey;
use crate::Client;

/// Options of an account listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountFilter {
    /// Only this connection's accounts (`connectionId`).
    pub connection_id: Option<ConnectionId>,
    /// Include `transactionData` (default per API version: v2.0 yes, v3 no).
    pub show_transaction_data: Option<bool>,
    /// Page size, at most 1000 (default 1000; always sent).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

impl AccountFilter {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only this connection's accounts.
    pub fn connection(mut self, connection_id: ConnectionId) -> Self {
        self.connection_id = Some(connection_id);
        self
    }

    /// Include (or not) `transactionData`.
    pub fn show_transaction_data(mut self, show: bool) -> Self {
        self.show_transaction_data = Some(show);
        self
    }
}

/// Accounts.
#[derive(Debug, Clone)]
pub struct Accounts {
    client: Client,
}

impl Accounts {
    pub(crate) fn new(client: Client) -> Self {
        Accounts { client }
    }

    fn key(&self, user_id: &UserId) -> TokenKey {
        TokenKey::new(Some(user_id), &self.client.inner().config.scopes.accounts)
    }

    /// The user's accounts (`GET /accounts`), optionally of one connection.
    pub async fn list(&self, user_id: &UserId, filter: &AccountFilter) -> Result<Vec<Account>> {
        let limit = filter.limit.unwrap_or(1000);
        if !(1..=1000).contains(&limit) {
            return Err(Error::validation(format!("limit must be between 1 and 1000, got {limit}")));
        }
        let inner = self.client.inner();
        let mut call = Call::new(inner, Method::GET, "/accounts", inner.api_url(&["accounts"])?)
            .bearer(self.key(user_id))
            .query("limit", limit.to_string())
            .query("offset", filter.offset.unwrap_or(0).to_string());
        if let Some(c) = &filter.connection_id {
            call = call.query("connectionId", c.as_str());
        }
        if let Some(show) = filter.show_transaction_data {
            call = call.query("showTransactionData", show.to_string());
        }
        Ok(inner.execute(call).await?.decode::<DataResponse<Vec<Account>>>()?.data)
    }

    /// One account (`GET /accounts/{accountId}`); unknown ids are [`Error::is_not_found`].
    pub async fn get(&self, user_id: &UserId, account_id: &AccountId) -> Result<Account> {
        let inner = self.client.inner();
        let url = inner.api_url(&["accounts", account_id.as_str()])?;
        let call = Call::new(inner, Method::GET, "/accounts/{accountId}", url).bearer(self.key(user_id));
        Ok(inner.execute(call).await?.decode::<DataResponse<Account>>()?.data)
    }
}
