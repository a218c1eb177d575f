//! `GET /oidc/.well-known/<x>-connections`: the provider catalogues (bare JSON arrays), and
//! the bank icons they point to.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::ApiError;
use crate::http::query::Query;
use crate::http::{ok, Path};
use crate::seed::catalogue::Listing;
use crate::state::DataApi;

/// The catalogue listing. Unknown and valueless query keys (`?undefined`, `?clientId=...`)
/// are ignored, as the official client sends both.
pub async fn list(State(state): State<DataApi>, Path(listing): Path<String>) -> Response {
    let Some(kind) = listing.strip_suffix("-connections").and_then(Listing::parse) else {
        return ApiError::not_found("Not Found").into_response();
    };
    let store = state.data.store.read();
    let entries: Vec<Value> = state
        .core
        .catalogue
        .all()
        .iter()
        .filter(|p| kind.includes(p) && !store.removed_providers.contains(&p.id))
        .map(|p| p.to_json(&state.core.base_url))
        .collect();
    ok(Value::Array(entries))
}

/// A provider icon (a plain SVG badge); 404 for an unknown `bankRef` unless
/// `?defaultIcon=true`.
pub async fn icon(
    State(state): State<DataApi>,
    Path(bank_ref): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = Query::parse(q.as_deref());
    let known = state.core.catalogue.all().iter().find(|p| p.bank_ref == bank_ref);
    let label = match (known, q.get("defaultIcon")) {
        (Some(p), _) => p.name.chars().next().unwrap_or('?'),
        (None, Some("true")) => '?',
        (None, _) => return ApiError::not_found("Icon not found").into_response(),
    };
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\"><rect width=\"64\" height=\"64\" rx=\"12\" fill=\"#2b3a67\"/><text x=\"32\" y=\"42\" font-size=\"30\" text-anchor=\"middle\" fill=\"#fff\" font-family=\"sans-serif\">{}</text></svg>",
        xml_escape(label)
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

fn xml_escape(c: char) -> String {
    match c {
        '<' => "&lt;".into(),
        '>' => "&gt;".into(),
        '&' => "&amp;".into(),
        '"' => "&quot;".into(),
        c => c.to_string(),
    }
}
