//! Users (`POST /users`, `GET /users`, `GET /users/{userId}`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::{ClientId, ConnectionId, UserId};

open_enum! {
    /// Who manages a user (`managedBy`).
    pub enum ManagedBy {
        /// The API client manages the user (client-managed users).
        Client => "client",
        /// The end user manages their own account.
        User => "user",
    }
}

open_enum! {
    /// The kind of user (`userType`).
    pub enum UserType {
        /// A test user.
        Test => "test",
        /// A demo user (accounts report `providerId: "DEMO"`).
        Demo => "demo",
        /// A live user.
        Live => "live",
    }
}

/// A Moneyhub user, as returned at top level by `POST /users` and `GET /users/{userId}` and as
/// the elements of `GET /users`' `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct User {
    /// The user id.
    pub user_id: UserId,
    /// The API client's own id for this user (≤ 256 characters), when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<String>,
    /// The API client the user belongs to.
    pub client_id: ClientId,
    /// Creation time.
    #[serde(with = "crate::time::timestamp")]
    pub created_at: DateTime<Utc>,
    /// Last modification time.
    #[serde(with = "crate::time::timestamp")]
    pub updated_at: DateTime<Utc>,
    /// Last time the user was accessed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub last_accessed: Option<DateTime<Utc>>,
    /// Deletion time, for deleted users.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::time::timestamp_opt")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Space-separated scopes granted for the user; see [`User::iter_scopes`].
    #[serde(default)]
    pub scopes: String,
    /// Who manages the user.
    pub managed_by: ManagedBy,
    /// The kind of user.
    pub user_type: UserType,
    /// The API client's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The user's connections.
    #[serde(default)]
    pub connection_ids: Vec<ConnectionId>,
}

impl User {
    /// The granted scopes, split on whitespace.
    pub fn iter_scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.split_whitespace()
    }
}
