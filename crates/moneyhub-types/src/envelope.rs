//! Response envelopes: `{"data": …, "links": {…}, "meta": {…}}`.

use serde::{Deserialize, Serialize};

use crate::TransactionId;

/// Pagination links (swagger `Links`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Links {
    /// URL of the current resource(s) (wire `self`).
    #[serde(rename = "self")]
    pub self_link: String,
    /// URL of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// URL of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// The success envelope of the Data API and of the identity service's list routes.
///
/// `M` is the type of `meta`: raw JSON by default, [`TransactionsMeta`] for transaction lists.
/// `links` and `meta` are left out when `None`.
///
/// ```
/// use moneyhub_types::{decode, DataResponse, SyncResponse, ConnectionStatus};
/// let body: DataResponse<SyncResponse> = decode(br#"{"data":{"status":"ok"},"meta":{}}"#)?;
/// assert_eq!(body.data.status, ConnectionStatus::Ok);
/// # Ok::<(), moneyhub_types::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DataResponse<T, M = serde_json::Value> {
    /// The payload: an object or an array.
    pub data: T,
    /// Pagination links.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Metadata.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub meta: Option<M>,
}

// `#[serde(default)]` on a field of a generic struct would add `M: Default` bounds; a function
// avoids that.
fn none<X>() -> Option<X> {
    None
}

impl<T> DataResponse<T> {
    /// An envelope holding only `data`.
    pub fn new(data: T) -> Self {
        Self { data, links: None, meta: None }
    }
}

/// `meta` of `GET /transactions`.
///
/// Keys other than the typed ones are kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TransactionsMeta {
    /// Requested ids (`ids=`) that were valid UUIDs but not found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_transaction_ids: Option<Vec<TransactionId>>,
    /// Number of matching transactions (`onlyCount=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Any other keys, verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}
