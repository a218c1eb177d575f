//! The Auth Requests API (`/auth-requests`, identity host root): the integrator's server asks
//! Moneyhub for an authorisation URL and later hands back the callback parameters; Moneyhub
//! exchanges the code itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{ConnectionId, SyncId, UserId};

open_enum! {
    /// Where an auth request stands (`status`).
    pub enum AuthRequestStatus {
        /// Created; the user has not come back yet (or the completion has not been sent).
        Pending => "pending",
        /// Completed: the connection was created or renewed.
        Complete => "complete",
        /// Completed with an error (the user's, or the code exchange's).
        Error => "error",
        /// Deleted.
        Deleted => "deleted",
    }
}

/// Where to send the user (`redirectParams`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectParams {
    /// The authorisation URL for the user's browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// Where the user returns (payments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// The `state` the callback will carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// An auth request (`{"data": AuthRequest}` of every `/auth-requests` route).
///
/// Moneyhub does not publish the names of the outcome fields; `connection_id`, `sync_id`,
/// `completed_at`, `error` and `error_description` are read at the top level and anything
/// else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuthRequest {
    /// The auth request id.
    pub id: String,
    /// The redirect URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Creation time.
    #[serde(with = "crate::time::timestamp")]
    pub created_at: DateTime<Utc>,
    /// The provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_id: Option<String>,
    /// The user (for one-time access: set once completed, to the user Moneyhub made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The scope.
    pub scope: String,
    /// The connection renewed, or once completed the connection created or renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// Status.
    pub status: AuthRequestStatus,
    /// Where to send the user.
    #[serde(default)]
    pub redirect_params: RedirectParams,
    /// The first sync of an asynchronous connection, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<SyncId>,
    /// When it was completed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The error of an `error` completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Payments: the payment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The body of `POST /auth-requests` (fields left `None` are not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewAuthRequest {
    /// Where Moneyhub sends the user back (required).
    pub redirect_uri: String,
    /// The scope: `openid id:<bankId>` (+ data scopes, `offline_access`), or
    /// `openid reauth|refresh|reconsent` with `connection_id` (required).
    pub scope: String,
    /// The user (required for renewals; `None` for a new connection means one-time access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The connection to renew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<ConnectionId>,
    /// Consent expiry (`YYYY-MM-DDTHH:MM:SS.sssZ`, at most 90 days ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<String>,
    /// History start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_from_date_time: Option<String>,
    /// Asynchronous connection: `{"enableAsync": true}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<AuthRequestSync>,
    /// Categorisation type (`personal`, `business`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorisation_type: Option<String>,
    /// Extra consent permissions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

/// `sync` of [`NewAuthRequest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthRequestSync {
    /// Whether the connection is asynchronous.
    pub enable_async: bool,
}

/// The `authParams` of `PATCH /auth-requests/{id}`: the callback's parameters.
///
/// `Debug` redacts the code and id_token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthParams {
    /// The authorisation code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The echoed `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The front-channel id_token (hybrid flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The error the user came back with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl std::fmt::Debug for AuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |o: &Option<String>| o.as_ref().map(|_| "[redacted]");
        f.debug_struct("AuthParams")
            .field("code", &redact(&self.code))
            .field("state", &self.state)
            .field("id_token", &redact(&self.id_token))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

impl AuthParams {
    /// A successful callback's code and state.
    pub fn code(code: impl Into<String>, state: impl Into<String>) -> Self {
        AuthParams { code: Some(code.into()), state: Some(state.into()), ..Default::default() }
    }

    /// A callback that carried an error.
    pub fn error(error: impl Into<String>, description: Option<String>, state: Option<String>) -> Self {
        AuthParams { error: Some(error.into()), error_description: description, state, ..Default::default() }
    }
}
