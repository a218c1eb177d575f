//! Transactions: listing with Moneyhub's filters and paging, fetching by up to 50 ids (with
//! `meta.missingTransactionIds` for unknown ones), and by id; the same under
//! `/transactions/unenriched` for the provider's view (scope `transactions_unenriched:read:all`
//! or `transactions:read:all`; the swagger's `TransactionUnenriched` shape).

use axum::extract::{OriginalUri, RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use serde_json::{json, Map, Value};

use super::self_link;
use crate::auth::BearerGrant;
use crate::auth::Grant;
use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{ok, Path};
use crate::state::DataApi;
use crate::store::model::{Account, Tx, TxView};

/// At most this many ids per request.
pub const MAX_IDS: usize = 50;

/// Which side of the ledger a token may read (`transactions:read:all|in|out`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    All,
    In,
    Out,
}

fn direction(grant: &Grant) -> Result<Direction, ApiError> {
    if grant.has("transactions:read:all") {
        Ok(Direction::All)
    } else if grant.has("transactions:read:in") {
        Ok(Direction::In)
    } else if grant.has("transactions:read:out") {
        Ok(Direction::Out)
    } else {
        Err(ApiError::forbidden("Missing required scope: one of transactions:read:all, transactions:read:in, transactions:read:out"))
    }
}

/// Which view a route serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    /// Moneyhub's enriched transaction.
    Enriched,
    /// The provider's view.
    Unenriched,
}

impl View {
    fn direction(self, grant: &Grant) -> Result<Direction, ApiError> {
        match self {
            View::Enriched => direction(grant),
            View::Unenriched => {
                grant.require_any(&["transactions_unenriched:read:all", "transactions:read:all"])?;
                Ok(Direction::All)
            }
        }
    }

    fn of<'a>(self, acc: &'a Account, t: &'a Tx) -> TxView<'a> {
        match self {
            View::Enriched => acc.tx_view(t),
            View::Unenriched => acc.tx_unenriched_view(t),
        }
    }
}

fn allowed(dir: Direction, t: &Tx) -> bool {
    match dir {
        Direction::All => true,
        Direction::In => t.amount > 0,
        Direction::Out => t.amount < 0,
    }
}

/// Listing filters, parsed and checked up front so a bad one is a 400 naming it.
struct Filters {
    start: Option<i64>,
    end: Option<i64>,
    start_modified: Option<i64>,
    end_modified: Option<i64>,
    text: Option<String>,
    category: Option<String>,
    accounts: Option<Vec<String>>,
    credit: Option<bool>,
    /// Projects do not exist in the sandbox: filtering on one matches nothing.
    nothing: bool,
}

fn day_start_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or(i64::MIN)
}

fn day_end_ms(d: NaiveDate) -> i64 {
    day_start_ms(d).saturating_add(Duration::days(1).num_milliseconds() - 1)
}

impl Filters {
    fn parse(q: &Query) -> Result<Self, ApiError> {
        let accounts: Vec<String> =
            q.all("accountId").into_iter().chain(q.all("accountIds")).map(str::to_string).collect();
        let credit = match q.get("creditDebitIndicator") {
            None => None,
            Some("credit") => Some(true),
            Some("debit") => Some(false),
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "\"creditDebitIndicator\" must be credit or debit, got {o:?}"
                )))
            }
        };
        let has_project = q.bool("hasProject", false)?;
        let projects = !q.all("projectId").is_empty() || !q.all("projectIds").is_empty();
        let (start, end) = (q.date("startDate")?, q.date("endDate")?);
        let (start_modified, end_modified) = (q.date("startDateModified")?, q.date("endDateModified")?);
        Ok(Filters {
            start: start.map(day_start_ms),
            end: end.map(day_end_ms),
            start_modified: start_modified.map(day_start_ms),
            end_modified: end_modified.map(day_end_ms),
            text: q.get("text").filter(|t| !t.is_empty()).map(|t| t.to_lowercase()),
            category: q.get("categoryId").map(str::to_string),
            accounts: (!accounts.is_empty()).then_some(accounts),
            credit,
            nothing: projects || (q.get("hasProject").is_some() && has_project),
        })
    }

    fn matches(&self, acc: &Account, t: &Tx) -> bool {
        let m = t.merchant();
        !self.nothing
            && self.start.is_none_or(|s| t.date_ms >= s)
            && self.end.is_none_or(|e| t.date_ms <= e)
            && self.start_modified.is_none_or(|s| t.modified_ms >= s)
            && self.end_modified.is_none_or(|e| t.modified_ms <= e)
            && self.category.as_deref().is_none_or(|c| c == m.category)
            && self.credit.is_none_or(|c| (t.amount > 0) == c)
            && self.accounts.as_ref().is_none_or(|a| a.iter().any(|id| *id == acc.id.to_string()))
            && self.text.as_deref().is_none_or(|needle| {
                t.long_description().to_lowercase().contains(needle)
                    || m.short.to_lowercase().contains(needle)
            })
    }
}

/// The Data API envelope, serialised straight from borrowed views (no intermediate JSON).
#[derive(serde::Serialize)]
struct Envelope<'a, T: serde::Serialize + ?Sized> {
    data: &'a T,
    links: Value,
    meta: Value,
}

fn enveloped<T: serde::Serialize + ?Sized>(data: &T, links: Value, meta: Value) -> Response {
    axum::Json(Envelope { data, links, meta }).into_response()
}

/// `GET /transactions`.
pub async fn list(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    list_view(&state, &grant, &uri, raw.as_deref(), View::Enriched)
}

/// `GET /transactions/unenriched`: the same filters and paging, the provider's view.
pub async fn list_unenriched(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    RawQuery(raw): RawQuery,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    list_view(&state, &grant, &uri, raw.as_deref(), View::Unenriched)
}

fn list_view(
    state: &DataApi,
    grant: &Grant,
    uri: &axum::http::Uri,
    raw: Option<&str>,
    view: View,
) -> Result<Response, ApiError> {
    let dir = view.direction(grant)?;
    let user_id = grant.user()?;
    super::accessed(state, user_id);
    let q = Query::parse(raw);
    // Every parameter is checked, also when `ids` makes the others moot: a bad value is a
    // 400 whatever it sits beside.
    let limit = q.int("limit", 0, 1000, 1000)? as usize;
    let offset = q.int("offset", 0, 1_000_000_000, 0)? as usize;
    let only_count = q.bool("onlyCount", false)?;
    let filters = Filters::parse(&q)?;
    let ids = q.all("ids");
    if !ids.is_empty() {
        return by_ids(state, user_id, dir, &ids, uri, view);
    }
    let store = state.data.read_user(user_id);
    let mut rows: Vec<(&Account, &Tx)> = Vec::new();
    for conn in store.connections_of(user_id) {
        for acc in conn.account_ids.iter().filter_map(|a| store.accounts.get(a)) {
            rows.extend(
                acc.txs
                    .iter()
                    .filter(|t| !t.is_deleted() && allowed(dir, t) && filters.matches(acc, t))
                    .map(|t| (acc, t)),
            );
        }
    }
    let total = rows.len();
    if only_count {
        return Ok(ok(
            json!({"data": [], "links": {"self": self_link(state, uri)}, "meta": {"count": total}}),
        ));
    }
    // Newest first, ties broken by id so pages are stable.
    rows.sort_unstable_by(|a, b| b.1.date_ms.cmp(&a.1.date_ms).then(a.1.id.cmp(&b.1.id)));
    let data: Vec<TxView> = rows.iter().skip(offset).take(limit).map(|(a, t)| view.of(a, t)).collect();
    let mut links = Map::new();
    links.insert("self".into(), json!(self_link(state, uri)));
    if limit > 0 && offset.saturating_add(limit) < total {
        links.insert("next".into(), json!(page_link(state, uri, offset + limit, limit)));
    }
    if offset > 0 {
        links.insert("prev".into(), json!(page_link(state, uri, offset.saturating_sub(limit), limit)));
    }
    Ok(enveloped(&data, Value::Object(links), json!({"count": total})))
}

fn page_link(state: &DataApi, uri: &axum::http::Uri, offset: usize, limit: usize) -> String {
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("offset=") && !p.starts_with("limit="))
        .collect();
    let mut q = kept.join("&");
    if !q.is_empty() {
        q.push('&');
    }
    format!("{}{}?{q}limit={limit}&offset={offset}", state.core.base_url, uri.path())
}

fn by_ids(
    state: &DataApi,
    user_id: &str,
    dir: Direction,
    ids: &[&str],
    uri: &axum::http::Uri,
    view: View,
) -> Result<Response, ApiError> {
    if ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_IDS} ids may be requested at once, got {}",
            ids.len()
        )));
    }
    let mut parsed = Vec::with_capacity(ids.len());
    for id in ids {
        let u = crate::http::uuid_param("ids", id)?;
        // A repeated id names one transaction: answer it once.
        if !parsed.iter().any(|(p, _)| *p == u) {
            parsed.push((u, *id));
        }
    }
    let store = state.data.read_user(user_id);
    let mut data = Vec::new();
    let mut missing = Vec::new();
    for (u, raw) in parsed {
        let found = store.tx_index.get(&u).and_then(|(acc_id, pos)| {
            let acc = store.accounts.get(acc_id).filter(|a| a.user_id == user_id)?;
            let t = acc.txs.get(*pos as usize).filter(|t| !t.is_deleted() && allowed(dir, t))?;
            Some(view.of(acc, t))
        });
        match found {
            Some(v) => data.push(v),
            None => missing.push(raw.to_string()),
        }
    }
    let mut meta = Map::new();
    if !missing.is_empty() {
        meta.insert("missingTransactionIds".into(), json!(missing));
    }
    Ok(enveloped(&data, json!({"self": self_link(state, uri)}), Value::Object(meta)))
}

/// `GET /transactions/{id}`: 404 when unknown, deleted or another user's.
pub async fn get(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    Path(transaction_id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    get_view(&state, &grant, &uri, &transaction_id, View::Enriched)
}

/// `GET /transactions/unenriched/{id}`: the provider's view of one transaction.
pub async fn get_unenriched(
    State(state): State<DataApi>,
    OriginalUri(uri): OriginalUri,
    Path(transaction_id): Path<String>,
    BearerGrant { grant, .. }: BearerGrant,
) -> Result<Response, ApiError> {
    get_view(&state, &grant, &uri, &transaction_id, View::Unenriched)
}

fn get_view(
    state: &DataApi,
    grant: &Grant,
    uri: &axum::http::Uri,
    transaction_id: &str,
    view: View,
) -> Result<Response, ApiError> {
    let dir = view.direction(grant)?;
    let user_id = grant.user()?;
    super::accessed(state, user_id);
    let id = crate::http::uuid_param("transactionId", transaction_id)?;
    let store = state.data.read_user(user_id);
    let (acc_id, pos) =
        store.tx_index.get(&id).ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    let acc = store
        .accounts
        .get(acc_id)
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    let t = acc
        .txs
        .get(*pos as usize)
        .filter(|t| !t.is_deleted() && allowed(dir, t))
        .ok_or_else(|| ApiError::not_found("Transaction not found"))?;
    Ok(enveloped(&view.of(acc, t), json!({"self": self_link(state, uri)}), json!({})))
}
