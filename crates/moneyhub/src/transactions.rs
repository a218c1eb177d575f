//! Transactions (Data API, token bound to the user with `transactions:read:all`): look-ups by
//! id in batches, filtered listings (one page, or every page as a `Stream`), one by id.
//!
//! Look-ups and listings come typed ([`Transaction`]) or, for stores that must keep exactly
//! what Moneyhub sent (fields this version does not model included), as [`RawTransaction`]:
//! the typed value next to the JSON object it was decoded from
//! ([`Transactions::by_ids_raw`], [`Transactions::pages_raw`]).

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use url::Url;

use moneyhub_types::{
    AccountId, CategoryId, DataResponse, Transaction, TransactionId, TransactionStatus, TransactionsMeta,
    UnenrichedTransaction, UserId,
};

use crate::error::{Error, Result};
use crate::transport::http::Reply;
use crate::transport::route::{self, Route};
use crate::Client;

/// Ids per `GET /transactions?ids=` request (Moneyhub's maximum).
pub const IDS_PER_REQUEST: usize = 50;
pub use crate::page::MAX_LIMIT;

/// Credits or debits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditDebit {
    /// Money in.
    Credit,
    /// Money out.
    Debit,
}

/// Filters of a transaction listing. Dates are inclusive calendar days (`YYYY-MM-DD`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransactionFilter {
    /// Transactions on or after this day (`startDate`).
    pub start_date: Option<NaiveDate>,
    /// Transactions on or before this day (`endDate`).
    pub end_date: Option<NaiveDate>,
    /// Modified on or after this day (`startDateModified`), for incremental reads.
    pub start_date_modified: Option<NaiveDate>,
    /// Modified on or before this day (`endDateModified`).
    pub end_date_modified: Option<NaiveDate>,
    /// One account (`accountId`).
    pub account_id: Option<AccountId>,
    /// Several accounts (`accountIds`, repeated).
    pub account_ids: Vec<AccountId>,
    /// A category (`categoryId`).
    pub category_id: Option<CategoryId>,
    /// Text in the descriptions or notes (`text`).
    pub text: Option<String>,
    /// Credits or debits only (`creditDebitIndicator`).
    pub credit_debit: Option<CreditDebit>,
    /// Page size, at most 1000 (default 1000; always sent).
    pub limit: Option<u32>,
    /// Rows to skip.
    pub offset: Option<u64>,
}

impl TransactionFilter {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `startDate` and `endDate`.
    pub fn dates(mut self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Self {
        self.start_date = start;
        self.end_date = end;
        self
    }

    /// Sets `startDateModified` and `endDateModified`.
    pub fn modified(mut self, start: Option<NaiveDate>, end: Option<NaiveDate>) -> Self {
        self.start_date_modified = start;
        self.end_date_modified = end;
        self
    }

    /// One account.
    pub fn account(mut self, account_id: AccountId) -> Self {
        self.account_id = Some(account_id);
        self
    }

    /// Several accounts.
    pub fn accounts(mut self, account_ids: impl IntoIterator<Item = AccountId>) -> Self {
        self.account_ids = account_ids.into_iter().collect();
        self
    }

    /// A category.
    pub fn category(mut self, category_id: CategoryId) -> Self {
        self.category_id = Some(category_id);
        self
    }

    /// Text search.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Credits or debits only.
    pub fn credit_debit(mut self, which: CreditDebit) -> Self {
        self.credit_debit = Some(which);
        self
    }

    /// Page size (≤ 1000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Rows to skip.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    fn check(&self) -> Result<()> {
        if let Some(limit) = self.limit {
            crate::page::check_limit(limit)?;
        }
        if let (Some(s), Some(e)) = (self.start_date, self.end_date) {
            if s > e {
                return Err(Error::validation(format!("startDate {s} is after endDate {e}")));
            }
        }
        if let (Some(s), Some(e)) = (self.start_date_modified, self.end_date_modified) {
            if s > e {
                return Err(Error::validation(format!("startDateModified {s} is after endDateModified {e}")));
            }
        }
        Ok(())
    }

    fn apply(&self, url: &mut Url) {
        let day = |d: &NaiveDate| d.format("%Y-%m-%d").to_string();
        let mut q = url.query_pairs_mut();
        for (key, value) in [
            ("startDate", self.start_date.as_ref().map(day)),
            ("endDate", self.end_date.as_ref().map(day)),
            ("startDateModified", self.start_date_modified.as_ref().map(day)),
            ("endDateModified", self.end_date_modified.as_ref().map(day)),
            ("accountId", self.account_id.as_ref().map(|a| a.as_str().to_owned())),
            ("categoryId", self.category_id.as_ref().map(|c| c.as_str().to_owned())),
            ("text", self.text.clone()),
            (
                "creditDebitIndicator",
                self.credit_debit.map(|c| match c {
                    CreditDebit::Credit => "credit".to_owned(),
                    CreditDebit::Debit => "debit".to_owned(),
                }),
            ),
        ] {
            if let Some(v) = value {
                q.append_pair(key, &v);
            }
        }
        for a in &self.account_ids {
            q.append_pair("accountIds", a.as_str());
        }
        q.append_pair("limit", &self.limit.unwrap_or(MAX_LIMIT).to_string());
        q.append_pair("offset", &self.offset.unwrap_or(0).to_string());
    }
}

/// A transaction with the JSON object Moneyhub sent for it, byte for byte.
///
/// The JSON keeps what the typed [`Transaction`] cannot: fields this version of the crate
/// does not model, and the exact formatting. Stores that promise "what Moneyhub sent" keep
/// [`json`](Self::json); everything else reads [`transaction`](Self::transaction).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RawTransaction {
    /// The decoded transaction.
    pub transaction: Transaction,
    /// The transaction's JSON object as received.
    pub json: Box<serde_json::value::RawValue>,
}

impl PartialEq for RawTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.transaction == other.transaction && self.json.get() == other.json.get()
    }
}

impl<'de> serde::Deserialize<'de> for RawTransaction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let json = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let transaction = serde_json::from_str(json.get()).map_err(serde::de::Error::custom)?;
        Ok(RawTransaction { transaction, json })
    }
}

/// What a store keys a transaction by, decoded, next to the JSON object Moneyhub sent for it,
/// byte for byte ([`Transactions::by_ids_records`], [`Transactions::pages_records`]).
///
/// Cheaper than [`RawTransaction`] for stores that keep the JSON and only index a few
/// fields: the rest of the object is checked to be JSON but not decoded into a
/// [`Transaction`] (so a field the typed model requires may be missing or malformed without
/// failing the listing; what is kept is what Moneyhub sent).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransactionRecord {
    /// Transaction id.
    pub id: TransactionId,
    /// The account it belongs to.
    pub account_id: Option<AccountId>,
    /// When it happened.
    pub date: DateTime<Utc>,
    /// Last change of any kind.
    pub date_modified: DateTime<Utc>,
    /// Posted or pending.
    pub status: TransactionStatus,
    /// The transaction's JSON object as received.
    pub json: Box<serde_json::value::RawValue>,
}

impl PartialEq for TransactionRecord {
    fn eq(&self, other: &Self) -> bool {
        self.json.get() == other.json.get()
    }
}

impl<'de> serde::Deserialize<'de> for TransactionRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        /// The keys, read from the object; every other field is skipped.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Keys {
            id: TransactionId,
            #[serde(default)]
            account_id: Option<AccountId>,
            #[serde(with = "moneyhub_types::time::timestamp")]
            date: DateTime<Utc>,
            #[serde(with = "moneyhub_types::time::timestamp")]
            date_modified: DateTime<Utc>,
            status: TransactionStatus,
        }
        let json = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let k: Keys = serde_json::from_str(json.get()).map_err(serde::de::Error::custom)?;
        Ok(TransactionRecord {
            id: k.id,
            account_id: k.account_id,
            date: k.date,
            date_modified: k.date_modified,
            status: k.status,
            json,
        })
    }
}

/// What a listing or look-up returns per transaction: [`Transaction`], [`RawTransaction`] or
/// [`TransactionRecord`].
pub trait TransactionItem: serde::de::DeserializeOwned + Send + 'static + sealed::Sealed {
    /// The transaction's id.
    fn id(&self) -> &TransactionId;
    /// Whether the listing is the unenriched one (`/transactions/unenriched`).
    #[doc(hidden)]
    const UNENRICHED: bool = false;
    /// Decodes a `{data, meta, links}` body, naming the failing field on error.
    #[doc(hidden)]
    fn decode_body(
        body: &[u8],
    ) -> std::result::Result<DataResponse<Vec<Self>, TransactionsMeta>, moneyhub_types::Error>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Transaction {}
    impl Sealed for super::RawTransaction {}
    impl Sealed for super::TransactionRecord {}
    impl Sealed for super::UnenrichedTransaction {}
}

impl TransactionItem for UnenrichedTransaction {
    const UNENRICHED: bool = true;
    fn id(&self) -> &TransactionId {
        &self.id
    }
    fn decode_body(
        body: &[u8],
    ) -> std::result::Result<DataResponse<Vec<Self>, TransactionsMeta>, moneyhub_types::Error> {
        moneyhub_types::decode(body)
    }
}

impl TransactionItem for Transaction {
    fn id(&self) -> &TransactionId {
        &self.id
    }
    fn decode_body(
        body: &[u8],
    ) -> std::result::Result<DataResponse<Vec<Self>, TransactionsMeta>, moneyhub_types::Error> {
        moneyhub_types::decode(body)
    }
}

impl TransactionItem for RawTransaction {
    fn id(&self) -> &TransactionId {
        &self.transaction.id
    }
    fn decode_body(
        body: &[u8],
    ) -> std::result::Result<DataResponse<Vec<Self>, TransactionsMeta>, moneyhub_types::Error> {
        match serde_json::from_slice(body) {
            Ok(decoded) => Ok(decoded),
            // Decoding the typed form again names the field that failed.
            Err(raw_error) => {
                match moneyhub_types::decode::<DataResponse<Vec<Transaction>, TransactionsMeta>>(body) {
                    Err(typed_error) => Err(typed_error),
                    Ok(_) => Err(moneyhub_types::Error::Decode { path: ".".into(), source: raw_error }),
                }
            }
        }
    }
}

impl TransactionItem for TransactionRecord {
    fn id(&self) -> &TransactionId {
        &self.id
    }
    fn decode_body(
        body: &[u8],
    ) -> std::result::Result<DataResponse<Vec<Self>, TransactionsMeta>, moneyhub_types::Error> {
        moneyhub_types::decode(body)
    }
}

/// One page of a listing: of [`Transaction`]s, or of [`RawTransaction`]s from
/// [`Transactions::pages_raw`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TransactionPage<T = Transaction> {
    /// The transactions, in Moneyhub's order (newest first).
    pub transactions: Vec<T>,
    /// `meta` (e.g. `count`).
    pub meta: TransactionsMeta,
    /// Where the next page is: Moneyhub's `links.next` when it points at the Data API,
    /// else the same query with the offset moved on when this page was full.
    pub next: Option<Url>,
}

/// The result of [`Transactions::by_ids`] (of [`RawTransaction`]s from
/// [`Transactions::by_ids_raw`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TransactionsByIds<T = Transaction> {
    /// The transactions found, in the order their ids were first given.
    pub transactions: Vec<T>,
    /// Ids Moneyhub does not know (`meta.missingTransactionIds`), in the order given.
    pub missing: Vec<TransactionId>,
}

impl<T> Default for TransactionsByIds<T> {
    fn default() -> Self {
        TransactionsByIds { transactions: Vec::new(), missing: Vec::new() }
    }
}

type PageStream<T> = Pin<Box<dyn Stream<Item = Result<TransactionPage<T>>> + Send>>;

/// Transactions.
#[derive(Debug, Clone)]
pub struct Transactions {
    client: Client,
    concurrency: usize,
}

impl Transactions {
    pub(crate) fn new(client: Client) -> Self {
        let concurrency = client.inner().config.batch_concurrency;
        Transactions { client, concurrency }
    }

    /// How many batches [`by_ids`](Self::by_ids) fetches at once (default from the builder, 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Fetches transactions by id, any number of them: ids are checked locally first (a
    /// malformed one is refused, named in the error, and nothing is sent), de-duplicated,
    /// split into batches of 50 fetched concurrently (bounded by
    /// [`concurrency`](Self::concurrency)) and merged in the order given. Unknown ids come back
    /// in [`TransactionsByIds::missing`].
    pub async fn by_ids<I, S>(&self, user_id: &UserId, ids: I) -> Result<TransactionsByIds>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.by_ids_as(user_id, ids).await
    }

    /// [`by_ids`](Self::by_ids), each transaction with the JSON Moneyhub sent for it.
    pub async fn by_ids_raw<I, S>(
        &self,
        user_id: &UserId,
        ids: I,
    ) -> Result<TransactionsByIds<RawTransaction>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.by_ids_as(user_id, ids).await
    }

    /// [`by_ids`](Self::by_ids), each transaction as its keys and the JSON Moneyhub sent for
    /// it, the rest not decoded ([`TransactionRecord`]).
    pub async fn by_ids_records<I, S>(
        &self,
        user_id: &UserId,
        ids: I,
    ) -> Result<TransactionsByIds<TransactionRecord>>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.by_ids_as(user_id, ids).await
    }

    async fn by_ids_as<T, I, S>(&self, user_id: &UserId, ids: I) -> Result<TransactionsByIds<T>>
    where
        T: TransactionItem,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        // De-duplicated on the 16-byte UUID value, not a copy of each id.
        let mut seen: HashSet<u128> = HashSet::new();
        let mut wanted: Vec<TransactionId> = Vec::new();
        for (i, raw) in ids.into_iter().enumerate() {
            let raw = raw.as_ref();
            let id: TransactionId = raw.parse().map_err(|e: moneyhub_types::Error| {
                Error::validation(format!("transaction id #{i} is malformed, nothing was sent: {e}"))
            })?;
            if seen.insert(id.uuid().as_u128()) {
                wanted.push(id);
            }
        }
        // Only needed while validating: freed before the results pile up.
        drop(seen);
        if wanted.is_empty() {
            return Ok(TransactionsByIds::default());
        }
        // Batches come back in order (`buffered`), and each batch is reordered on its own as it
        // arrives: no map of every transaction, and the output is allocated once.
        let mut out =
            TransactionsByIds { transactions: Vec::with_capacity(wanted.len()), missing: Vec::new() };
        let mut reported_missing = 0;
        let batches = wanted.chunks(IDS_PER_REQUEST).map(<[_]>::to_vec);
        let mut replies =
            stream::iter(batches).map(|batch| self.fetch_batch(user_id, batch)).buffered(self.concurrency);
        while let Some((batch, transactions, missing)) = replies.try_next().await? {
            reported_missing += missing.len();
            let mut by_id: HashMap<TransactionId, T> =
                transactions.into_iter().map(|t: T| (t.id().clone(), t)).collect();
            for id in batch {
                match by_id.remove(&id) {
                    Some(t) => out.transactions.push(t),
                    // Not returned: missing, whether or not the server listed it.
                    None => out.missing.push(id),
                }
            }
        }
        if reported_missing != out.missing.len() {
            tracing::debug!(
                reported_missing,
                missing = out.missing.len(),
                "meta.missingTransactionIds disagrees with the data returned"
            );
        }
        Ok(out)
    }

    async fn fetch_batch<T: TransactionItem>(
        &self,
        user_id: &UserId,
        batch: Vec<TransactionId>,
    ) -> Result<(Vec<TransactionId>, Vec<T>, Vec<TransactionId>)> {
        let inner = self.client.inner();
        let mut call = inner.request(Route::ListTransactions(user_id))?;
        for id in &batch {
            call = call.query("ids", id.as_str());
        }
        let body = decode_list::<T>(&inner.execute(call).await?)?;
        let missing = body.meta.and_then(|m| m.missing_transaction_ids).unwrap_or_default();
        Ok((batch, body.data, missing))
    }

    /// How many transactions match `filter` (`onlyCount=true`: Moneyhub answers the count
    /// in `meta` and no transactions). `None` when the answer carries no count. The filter's
    /// `limit` and `offset` do not apply.
    pub async fn count(&self, user_id: &UserId, filter: &TransactionFilter) -> Result<Option<u64>> {
        filter.check()?;
        let inner = self.client.inner();
        let mut call = inner.request(Route::ListTransactions(user_id))?;
        filter.apply(&mut call.url);
        let call = call.query("onlyCount", "true");
        let reply = inner.execute(call).await?;
        // `data` is empty (or absent); only `meta.count` matters.
        #[derive(serde::Deserialize)]
        struct CountOnly {
            #[serde(default)]
            meta: Option<TransactionsMeta>,
        }
        let body: CountOnly = reply.decode()?;
        Ok(body.meta.and_then(|m| m.count))
    }

    /// One page of a filtered listing (`GET /transactions`).
    pub async fn list(&self, user_id: &UserId, filter: &TransactionFilter) -> Result<TransactionPage> {
        filter.check()?;
        let mut url = self.client.inner().route_url(&Route::ListTransactions(user_id))?;
        filter.apply(&mut url);
        fetch_page(&self.client, user_id, url).await
    }

    /// Every page of a filtered listing, following `links.next` (or the offset) until the
    /// last page.
    pub fn pages(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<TransactionPage>> + Send + 'static {
        self.pages_as(user_id, filter)
    }

    /// [`pages`](Self::pages), each transaction with the JSON Moneyhub sent for it.
    pub fn pages_raw(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<TransactionPage<RawTransaction>>> + Send + 'static {
        self.pages_as(user_id, filter)
    }

    /// [`pages`](Self::pages), each transaction as its keys and the JSON Moneyhub sent for
    /// it, the rest not decoded ([`TransactionRecord`]).
    pub fn pages_records(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<TransactionPage<TransactionRecord>>> + Send + 'static {
        self.pages_as(user_id, filter)
    }

    fn pages_as<T: TransactionItem>(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<TransactionPage<T>>> + Send + 'static {
        let start: Result<Url> = filter.check().and_then(|()| {
            let mut url = self.client.inner().route_url(&listing::<T>(user_id))?;
            filter.apply(&mut url);
            Ok(url)
        });
        let client = self.client.clone();
        let user_id = user_id.clone();
        let pages: PageStream<T> = match start {
            Err(e) => Box::pin(stream::once(async move { Err(e) })),
            Ok(url) => Box::pin(stream::try_unfold(Some(url), move |next| {
                let client = client.clone();
                let user_id = user_id.clone();
                async move {
                    let Some(url) = next else { return Ok(None) };
                    let page = fetch_page(&client, &user_id, url).await?;
                    let next = page.next.clone();
                    Ok(Some((page, next)))
                }
            })),
        };
        pages
    }

    /// Every transaction of a filtered listing, page after page, as a `Stream`.
    ///
    /// ```no_run
    /// use futures_util::TryStreamExt;
    /// # async fn demo(client: moneyhub::Client, user: moneyhub::UserId) -> moneyhub::Result<()> {
    /// let all: Vec<_> = client.transactions().stream(&user, Default::default()).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn stream(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<Transaction>> + Send + 'static {
        self.pages(user_id, filter)
            .map_ok(|page| stream::iter(page.transactions.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The provider's view (`GET /transactions/unenriched…`): what the bank sent, without
    /// Moneyhub's enrichment.
    pub fn unenriched(&self) -> Unenriched {
        Unenriched { inner: self.clone() }
    }

    /// One transaction (`GET /transactions/{transactionId}`); unknown ids are
    /// [`Error::is_not_found`].
    pub async fn get(&self, user_id: &UserId, transaction_id: &TransactionId) -> Result<Transaction> {
        let inner = self.client.inner();
        let call = inner.request(Route::GetTransaction(user_id, transaction_id))?;
        Ok(inner.execute(call).await?.decode::<DataResponse<Transaction>>()?.data)
    }
}

fn decode_list<T: TransactionItem>(reply: &Reply) -> Result<DataResponse<Vec<T>, TransactionsMeta>> {
    T::decode_body(&reply.body).map_err(|e| reply.decode_error(e))
}

fn query_value(url: &Url, key: &str) -> Option<u64> {
    url.query_pairs().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok())
}

/// The listing of `T`s.
fn listing<T: TransactionItem>(user_id: &UserId) -> Route<'_> {
    if T::UNENRICHED {
        Route::ListUnenriched(user_id)
    } else {
        Route::ListTransactions(user_id)
    }
}

/// Fetches a page at `url` (the listing's, or a `links.next`) and works out where the next
/// one is.
async fn fetch_page<T: TransactionItem>(
    client: &Client,
    user_id: &UserId,
    url: Url,
) -> Result<TransactionPage<T>> {
    let inner = client.inner();
    let call = inner.request_at(listing::<T>(user_id), url.clone());
    let body = decode_list::<T>(&inner.execute(call).await?)?;
    let received = body.data.len() as u64;
    let limit = query_value(&url, "limit").unwrap_or(u64::from(MAX_LIMIT));
    let offset = query_value(&url, "offset").unwrap_or(0);
    let api = &inner.config.api_url;
    // Follow `links.next` only where the bearer token may go: the Data API itself.
    let linked = body
        .links
        .as_ref()
        .and_then(|l| l.next.as_deref())
        .and_then(|n| Url::parse(n).ok())
        .filter(|n| n.origin() == api.origin() && n.path().starts_with(api.path()) && n != &url);
    let next = if received == 0 {
        None
    } else if let Some(link) = linked {
        Some(link)
    } else if received >= limit {
        let mut next = url.clone();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "offset")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        next.query_pairs_mut()
            .clear()
            .extend_pairs(kept)
            .append_pair("offset", &(offset + received).to_string());
        Some(next)
    } else {
        None
    };
    Ok(TransactionPage { transactions: body.data, meta: body.meta.unwrap_or_default(), next })
}

/// Scope of the unenriched routes requested with client credentials (Moneyhub also accepts
/// `transactions:read:all` there; a user's own token is sent whatever its scope).
pub const UNENRICHED_SCOPE: &str = route::UNENRICHED;

/// Unenriched transactions (`GET /transactions/unenriched`, `…/{id}`): the same filters and
/// paging as [`Transactions`], the provider's view ([`UnenrichedTransaction`]: no category,
/// short description, notes, counterparty, splits or projects). Get one with
/// [`Transactions::unenriched`].
#[derive(Debug, Clone)]
pub struct Unenriched {
    inner: Transactions,
}

impl Unenriched {
    /// One page of a filtered listing.
    pub async fn list(
        &self,
        user_id: &UserId,
        filter: &TransactionFilter,
    ) -> Result<TransactionPage<UnenrichedTransaction>> {
        filter.check()?;
        let mut url = self.inner.client.inner().route_url(&Route::ListUnenriched(user_id))?;
        filter.apply(&mut url);
        fetch_page(&self.inner.client, user_id, url).await
    }

    /// Every page of a filtered listing.
    pub fn pages(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<TransactionPage<UnenrichedTransaction>>> + Send + 'static {
        self.inner.pages_as(user_id, filter)
    }

    /// Every transaction of a filtered listing, as a `Stream`.
    pub fn stream(
        &self,
        user_id: &UserId,
        filter: TransactionFilter,
    ) -> impl Stream<Item = Result<UnenrichedTransaction>> + Send + 'static {
        self.pages(user_id, filter)
            .map_ok(|page| stream::iter(page.transactions.into_iter().map(Ok)))
            .try_flatten()
    }

    /// One transaction (`GET /transactions/unenriched/{transactionId}`); unknown ids are
    /// [`Error::is_not_found`].
    pub async fn get(
        &self,
        user_id: &UserId,
        transaction_id: &TransactionId,
    ) -> Result<UnenrichedTransaction> {
        let inner = self.inner.client.inner();
        let call = inner.request(Route::GetUnenriched(user_id, transaction_id))?;
        Ok(inner.execute(call).await?.decode::<DataResponse<UnenrichedTransaction>>()?.data)
    }
}
