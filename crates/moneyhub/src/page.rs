//! Offset paging, one type for every paged list: [`PageOptions`] in, [`Page`] out, and a
//! `pages()` stream on each listing (users, a connection's or a user's syncs, accounts, auth
//! requests) that walks the pages until the last. The page-size rule (1 to [`MAX_LIMIT`]) is
//! checked here and nowhere else.
//!
//! Transaction listings page differently: Moneyhub's `links.next` says where the next page
//! is, so [`TransactionPage`](crate::TransactionPage) carries that URL.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{self, Stream};
use serde::de::DeserializeOwned;
use serde_json::Value;

use moneyhub_types::DataResponse;

use crate::transport::http::Call;
use crate::ClientInner;

/// Largest page Moneyhub serves.
pub const MAX_LIMIT: u32 = 1000;

/// Refuses a page size outside 1 to [`MAX_LIMIT`] before anything is sent.
pub(crate) fn check_limit(limit: u32) -> crate::Result<()> {
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(crate::Error::validation(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(())
}

/// A stream of pages: `fetch` is called with `first`, then with each page's
/// [`next`](Page::next), until a page has none. An error ends the stream.
pub(crate) fn stream<T, F, Fut>(first: PageOptions, fetch: F) -> Pages<T>
where
    T: Send + 'static,
    F: Fn(PageOptions) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = crate::Result<Page<T>>> + Send + 'static,
{
    Box::pin(stream::try_unfold(Some(first), move |next| {
        let fetched = next.map(&fetch);
        async move {
            let Some(fetched) = fetched else { return Ok(None) };
            let page = fetched.await?;
            let next = page.next;
            Ok(Some((page, next)))
        }
    }))
}

/// One page of a `{data, meta}` listing: `call` (a listing's request, with its filters) for
/// the page `options` names.
pub(crate) async fn fetch<T: DeserializeOwned>(
    inner: &ClientInner,
    call: Call,
    options: PageOptions,
) -> crate::Result<Page<T>> {
    let body: DataResponse<Vec<T>> = inner.execute(options.apply(call)?).await?.decode()?;
    Ok(Page::new(body.data, body.meta.as_ref(), options))
}

/// The stream a listing's `pages()` returns.
pub type Pages<T> = Pin<Box<dyn Stream<Item = crate::Result<Page<T>>> + Send>>;

/// Which page to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageOptions {
    /// Items per page, 1–1000 (default 100). Always sent: Moneyhub's defaults differ between
    /// its own documents.
    pub limit: u32,
    /// Items to skip (default 0).
    pub offset: u64,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions { limit: 100, offset: 0 }
    }
}

impl PageOptions {
    /// `limit` items from `offset`.
    pub fn new(limit: u32, offset: u64) -> Self {
        PageOptions { limit, offset }
    }

    pub(crate) fn check(&self) -> crate::Result<()> {
        check_limit(self.limit)
    }

    /// `call` asking for this page (`limit` and `offset`), once the page size is checked.
    pub(crate) fn apply(&self, call: Call) -> crate::Result<Call> {
        self.check()?;
        Ok(call.query("limit", self.limit.to_string()).query("offset", self.offset.to_string()))
    }

    /// The options of the page after a page of `received` items (`None` when that page was
    /// the last).
    pub(crate) fn after(&self, received: usize, total: Option<u64>) -> Option<PageOptions> {
        let next = self.offset + received as u64;
        let full = received as u64 >= u64::from(self.limit);
        let more = match total {
            Some(total) => next < total && received > 0,
            None => full,
        };
        more.then_some(PageOptions { limit: self.limit, offset: next })
    }
}

/// One page of a listing. It derefs to its items (`page.len()`, `page[0]`, `page.iter()`),
/// and iterating it by value yields them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Total number of items, when the server says (`meta.total`).
    pub total: Option<u64>,
    /// The options this page was fetched with.
    pub options: PageOptions,
    /// The options of the next page, when there is one.
    pub next: Option<PageOptions>,
}

impl<T> Page<T> {
    pub(crate) fn new(items: Vec<T>, meta: Option<&Value>, options: PageOptions) -> Self {
        let total = meta.and_then(|m| m.get("total")).and_then(Value::as_u64);
        let next = options.after(items.len(), total);
        Page { items, total, options, next }
    }
}

impl<T> std::ops::Deref for Page<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a Page<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// Every item of a stream of pages, in order.
pub(crate) async fn collect<T>(mut pages: Pages<T>) -> crate::Result<Vec<T>> {
    use futures_util::TryStreamExt;
    let mut all = Vec::new();
    while let Some(page) = pages.try_next().await? {
        all.extend(page.items);
    }
    Ok(all)
}
