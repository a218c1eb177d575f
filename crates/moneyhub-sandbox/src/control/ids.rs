//! Ids as people type them. Every control route that names a user, a connection or an
//! account accepts the full id or any unique prefix of it; a connection also by a prefix of
//! its uuid part (`<bankId>:<uuid>`: tables show the uuid's first 8 characters). A prefix
//! that fits several answers 400 naming a few of them; one that fits none, 404.

use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Store;

/// At most this many candidates are named in an "ambiguous" answer.
const NAMED: usize = 5;

fn pick(kind: &str, text: &str, mut candidates: Vec<String>) -> Result<String, ApiError> {
    match candidates.len() {
        0 => Err(ApiError::not_found(format!("no {kind} has the id {text:?} (nor an id starting with it)"))),
        1 => Ok(candidates.remove(0)),
        n => {
            candidates.sort();
            let named: Vec<&str> = candidates.iter().take(NAMED).map(String::as_str).collect();
            Err(ApiError::bad_request(format!(
                "the {kind} id prefix {text:?} is ambiguous: {n} {kind}s start with it ({}{}); give more characters",
                named.join(", "),
                if n > NAMED { ", …" } else { "" }
            )))
        }
    }
}

fn checked(kind: &str, text: &str) -> Result<(), ApiError> {
    if text.is_empty() {
        return Err(ApiError::bad_request(format!("the {kind} id is empty")));
    }
    if text.len() > 200 {
        return Err(ApiError::bad_request(format!("the {kind} id is longer than 200 bytes")));
    }
    Ok(())
}

/// A connection's full id from its id or a unique prefix (of the whole id or of its uuid).
pub fn connection(store: &Store, text: &str) -> Result<String, ApiError> {
    checked("connection", text)?;
    if store.connections.contains_key(text) {
        return Ok(text.to_owned());
    }
    let found = store
        .connections
        .keys()
        .filter(|id| {
            id.starts_with(text) || id.rsplit_once(':').is_some_and(|(_, uuid)| uuid.starts_with(text))
        })
        .cloned()
        .collect();
    pick("connection", text, found)
}

/// A user's id from their id or a unique prefix.
pub fn user(store: &Store, text: &str) -> Result<String, ApiError> {
    checked("user", text)?;
    if store.users.contains_key(text) {
        return Ok(text.to_owned());
    }
    pick("user", text, store.users.keys().filter(|id| id.starts_with(text)).cloned().collect())
}

/// An account's id from its id or a unique prefix.
pub fn account(store: &Store, text: &str) -> Result<Uuid, ApiError> {
    checked("account", text)?;
    let lower = text.to_ascii_lowercase();
    let found =
        store.accounts.keys().map(Uuid::to_string).filter(|id| id.starts_with(&lower)).collect::<Vec<_>>();
    let id = pick("account", text, found)?;
    Uuid::parse_str(&id).map_err(|e| ApiError::bad_request(format!("account {id}: {e}")))
}
