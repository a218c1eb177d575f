//! Carrying out what the user consented to: creating, re-authorising, refreshing or
//! re-consenting a connection in the store. Runs at the code exchange (Moneyhub creates the
//! connection there) or, for `response_type=id_token`, at authorisation time.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::authz::Flow;
use super::interaction::Magic;
use super::Oidc;
use crate::error::OAuthError;
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
    state: &Oidc,
    user_id: &str,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<Completed, OAuthError> {
    match flow {
        Flow::New { bank_id, asynchronous, expires_at, accounts, magic } => {
            let created = match accounts {
                None => state
                    .data
                    .store
                    .write()
                    .create_connection(user_id, bank_id, *expires_at, *asynchronous, now)
                    .map_err(refused)?,
                Some(keep) => {
                    create_with_accounts(state, user_id, bank_id, *expires_at, keep, *asynchronous, now)?
                }
            };
            if let Some(magic) = magic {
                apply_magic(state, &created.connection_id, *magic, *asynchronous, now);
            }
            if *asynchronous {
                state.data.finish_sync_later(&state.core, created.sync_id);
            }
            // The background history is a lifecycle event (see `lifecycle::next_due`).
            Ok(Completed {
                connection_id: created.connection_id,
                async_sync: asynchronous.then_some(created.sync_id),
            })
        }
        Flow::Reauth { connection_id, accounts, magic } => {
            let (id, _sync) = state
                .data
                .store
                .write()
                .reauth(user_id, connection_id, accounts.clone(), now)
                .map_err(refused)?;
            if let Some(magic) = magic {
                apply_magic(state, &id, *magic, false, now);
            }
            Ok(Completed { connection_id: id, async_sync: None })
        }
        Flow::Refresh { connection_id, magic } => {
            state.data.store.write().refresh(user_id, connection_id, now).map_err(refused)?;
            if let Some(magic) = magic {
                apply_magic(state, connection_id, *magic, false, now);
            }
            Ok(Completed { connection_id: connection_id.clone(), async_sync: None })
        }
        Flow::Reconsent { connection_id, expires_at, magic } => {
            state.data.store.write().reconsent(user_id, connection_id, *expires_at, now).map_err(refused)?;
            if let Some(magic) = magic {
                apply_magic(state, connection_id, *magic, false, now);
            }
            Ok(Completed { connection_id: connection_id.clone(), async_sync: None })
        }
    }
}

/// Scripts a new or renewed (reauth, refresh, reconsent) connection as its magic password
/// asked (see [`Magic`]): from the next sync on, as for a new connection. An asynchronous new
/// connection's first fetch is still to run: it succeeds, and the script starts after it
/// (`resync` then has nothing to do: the first fetch brings fresh data).
fn apply_magic(state: &Oidc, connection_id: &str, magic: Magic, first_pending: bool, now: DateTime<Utc>) {
    use crate::store::model::FetchStatus;
    let mut store = state.data.store.write();
    let script =
        |once: Option<FetchStatus>, lasting: Option<FetchStatus>| (once.into_iter().collect(), lasting);
    let (mut once, lasting): (Vec<FetchStatus>, Option<FetchStatus>) = match magic {
        Magic::CredentialsError => script(None, Some(FetchStatus::CredentialsError)),
        Magic::MfaRequired => script(None, Some(FetchStatus::MfaRequired)),
        Magic::SyncError => script(Some(FetchStatus::Error), None),
        Magic::SyncPartial => script(Some(FetchStatus::Partial), None),
        Magic::ProviderOutage => script(None, Some(FetchStatus::Error)),
        Magic::Resync => {
            if let Some(c) = store.connections.get_mut(connection_id) {
                let back = chrono::Duration::days(c.stale_after_days.saturating_add(1));
                c.last_updated = Some(now - back);
            }
            return;
        }
    };
    if first_pending {
        once.insert(0, FetchStatus::Success);
    }
    let _ = store.script(connection_id, once, lasting, false);
}

/// A new connection that holds only the accounts the user ticked (positions in the
/// provider's account list): the connection is made with its first sync left running, the
/// other accounts are removed before anything is fetched (so no webhook ever names them), and
/// then the first fetch runs as usual. The kept accounts get the same data they would have in
/// a connection with all accounts (data depends on the position, not on what else is shared).
fn create_with_accounts(
    state: &Oidc,
    user_id: &str,
    bank_id: &str,
    expires_at: Option<DateTime<Utc>>,
    keep: &[usize],
    asynchronous: bool,
    now: DateTime<Utc>,
) -> Result<crate::store::NewConnection, OAuthError> {
    let mut store = state.data.store.write();
    let created = store.create_connection(user_id, bank_id, expires_at, true, now).map_err(refused)?;
    let all =
        store.connections.get(&created.connection_id).map(|c| c.account_ids.clone()).unwrap_or_default();
    let dropped: Vec<Uuid> =
        all.iter().enumerate().filter(|(i, _)| !keep.contains(i)).map(|(_, id)| *id).collect();
    for id in &dropped {
        store.accounts.remove(id);
    }
    let stale_after = all
        .iter()
        .filter(|id| !dropped.contains(id))
        .filter_map(|id| store.accounts.get(id))
        .map(|a| a.kind.stale_after_days())
        .min();
    if let Some(c) = store.connections.get_mut(&created.connection_id) {
        c.account_ids.retain(|a| !dropped.contains(a));
        if let Some(days) = stale_after {
            c.stale_after_days = days;
        }
    }
    if let Some(rec) = store.syncs.get_mut(&created.sync_id) {
        rec.accounts.retain(|(a, _)| !dropped.contains(a));
    }
    if !asynchronous {
        store.finish_sync(created.sync_id, now);
    }
    Ok(created)
}
