//! Offset paging: [`PageOptions`] in, [`Page`] out.

use serde_json::Value;

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
        if !(1..=1000).contains(&self.limit) {
            return Err(crate::Error::validation(format!(
                "limit must be between 1 and 1000, got {}",
                self.limit
            )));
        }
        Ok(())
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

/// One page of a listing.
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
