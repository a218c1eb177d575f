//! Carrying out what the user consented to: creating, re-authorising, refreshing or
//! re-consenting a connection in the store. Runs at the code exchange (Moneyhub creates the
//! connection there) or, for `response_type=id_token`, at authorisation time.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::authz::Flow;
use crate::error::OAuthError;
use crate::state::AppState;
use crate::store::Refusal;

/// The outcome the id_token reports.
#[derive(Debug, Clone)]
pub struct Completed {
    /// `mh:con_id`: the new or renewed connection.
    pub connection_id: String,
    /// `mh:sync`: the running first sync of an asynchronous connection.
    pub async_sync: Option<Uuid>,
}

fn refused(r: Refusal) -> OAuthError {
    OAuthError::invalid_grant(match r {
        Refusal::UnknownUser => "the user no longer exists".to_string(),
        Refusal::UnknownConnection => "the connection no longer exists".to_string(),
        Refusal::UnknownProvider => "the provider is not available".to_string(),
        Refusal::ConsentExpired => "the connection's consent has expired".to_string(),
        Refusal::TooSoon(s) => format!("try again in {s} seconds"),
        Refusal::Invalid(m) => m,
    })
}

/// Applies `flow` for `user_id` at `now`.
pub fn complete(
    state: &Arc<AppState>,
    user_id: &str,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<Completed, OAuthError> {
    match flow {
        Flow::New { bank_id, asynchronous, expires_at } => {
            let created = state
                .store
                .write()
                .create_connection(user_id, bank_id, *expires_at, *asynchronous, now)
                .map_err(refused)?;
            if *asynchronous {
                state.finish_sync_later(created.sync_id);
            }
            // The background history is a lifecycle event (see `lifecycle::next_due`).
            Ok(Completed {
                connection_id: created.connection_id,
                async_sync: asynchronous.then_some(created.sync_id),
            })
        }
        Flow::Reauth { connection_id, accounts } => {
            let (id, _sync) =
                state.store.write().reauth(user_id, connection_id, accounts.clone(), now).map_err(refused)?;
            Ok(Completed { connection_id: id, async_sync: None })
        }
        Flow::Refresh { connection_id } => {
            state.store.write().refresh(user_id, connection_id, now).map_err(refused)?;
            Ok(Completed { connection_id: connection_id.clone(), async_sync: None })
        }
        Flow::Reconsent { connection_id, expires_at } => {
            state.store.write().reconsent(user_id, connection_id, *expires_at, now).map_err(refused)?;
            Ok(Completed { connection_id: connection_id.clone(), async_sync: None })
        }
    }
}
