//! Accounts (Data API, token bound to the user with `accounts:read`).

use moneyhub_types::{Account, AccountId, ConnectionId, DataResponse, UserId};

use crate::error::Result;
use crate::page::{self, Page, PageOptions, Pages};
use crate::transport::route::Route;
use crate::Client;

/// Options of an account listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountFilter {
    /// Only this connection's accounts (`connectionId`).
    pub connection_id: Option<ConnectionId>,
    /// Include `transactionData` (default per API version: v2.0 yes, v3 no).
    pub show_transaction_data: Option<bool>,
    /// Page size, 1 to 1000 (default 1000; always sent).
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

    /// Page size, 1 to 1000 (checked before anything is sent).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Rows to skip.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
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

    /// One page of the user's accounts (`GET /accounts`), optionally of one connection: 1000
    /// accounts from the filter's offset unless it says otherwise. The page derefs to its
    /// accounts and says where the next page starts ([`Page::next`]).
    pub async fn list(&self, user_id: &UserId, filter: &AccountFilter) -> Result<Page<Account>> {
        let options = PageOptions::new(filter.limit.unwrap_or(page::MAX_LIMIT), filter.offset.unwrap_or(0));
        options.check()?;
        let inner = self.client.inner();
        let mut call = inner.request(Route::ListAccounts(user_id))?;
        if let Some(c) = &filter.connection_id {
            call = call.query("connectionId", c.as_str());
        }
        if let Some(show) = filter.show_transaction_data {
            call = call.query("showTransactionData", show.to_string());
        }
        page::fetch(inner, call, options).await
    }

    /// Every page of the user's accounts (from the filter's offset on), as a `Stream`.
    pub fn pages(&self, user_id: &UserId, filter: AccountFilter) -> Pages<Account> {
        let accounts = self.clone();
        let user_id = user_id.clone();
        let first = PageOptions::new(filter.limit.unwrap_or(page::MAX_LIMIT), filter.offset.unwrap_or(0));
        page::stream(first, move |options| {
            let (accounts, user_id) = (accounts.clone(), user_id.clone());
            let filter =
                AccountFilter { limit: Some(options.limit), offset: Some(options.offset), ..filter.clone() };
            async move { accounts.list(&user_id, &filter).await }
        })
    }

    /// One account (`GET /accounts/{accountId}`); unknown ids are
    /// [`Error::is_not_found`](crate::Error::is_not_found).
    pub async fn get(&self, user_id: &UserId, account_id: &AccountId) -> Result<Account> {
        let inner = self.client.inner();
        let call = inner.request(Route::GetAccount(user_id, account_id))?;
        Ok(inner.execute(call).await?.decode::<DataResponse<Account>>()?.data)
    }
}
