//! Users (identity service): create, get, list, delete.

use serde_json::json;

use moneyhub_types::{User, UserId};

use crate::error::{Error, Result};
use crate::page::{self, Page, PageOptions, Pages};
use crate::transport::route::Route;
use crate::Client;

/// Longest `clientUserId` Moneyhub accepts.
const MAX_CLIENT_USER_ID: usize = 256;

/// User management (client-credentials tokens without a user, `user:*` scopes).
#[derive(Debug, Clone)]
pub struct Users {
    client: Client,
}

impl Users {
    pub(crate) fn new(client: Client) -> Self {
        Users { client }
    }

    /// Creates a client-managed user, optionally tagged with your own id (≤ 256 characters).
    /// `POST /users` is not retried (a retry could create a second user).
    pub async fn create(&self, client_user_id: Option<&str>) -> Result<User> {
        let inner = self.client.inner();
        let mut body = json!({});
        if let Some(id) = client_user_id {
            let n = id.chars().count();
            if n == 0 || n > MAX_CLIENT_USER_ID {
                return Err(Error::validation(format!(
                    "clientUserId must be 1 to {MAX_CLIENT_USER_ID} characters, got {n}"
                )));
            }
            body["clientUserId"] = json!(id);
        }
        let call = inner.request(Route::CreateUser)?.json(&body)?;
        inner.execute(call).await?.decode()
    }

    /// A user (`GET /users/{userId}`); unknown users are [`Error::is_not_found`].
    pub async fn get(&self, user_id: &UserId) -> Result<User> {
        let inner = self.client.inner();
        inner.execute(inner.request(Route::GetUser(user_id))?).await?.decode()
    }

    /// One page of the client's users (`GET /users?limit&offset`).
    pub async fn list(&self, page: PageOptions) -> Result<Page<User>> {
        let inner = self.client.inner();
        page::fetch(inner, inner.request(Route::ListUsers)?, page).await
    }

    /// Every page of the client's users from `first` on, as a `Stream`.
    pub fn pages(&self, first: PageOptions) -> Pages<User> {
        let users = self.clone();
        page::stream(first, move |options| {
            let users = users.clone();
            async move { users.list(options).await }
        })
    }

    /// Every user, walking the pages (100 at a time).
    pub async fn list_all(&self) -> Result<Vec<User>> {
        page::collect(self.pages(PageOptions::default())).await
    }

    /// Deletes a user with all their data and consents (`DELETE /users/{userId}`, 204).
    pub async fn delete(&self, user_id: &UserId) -> Result<()> {
        let inner = self.client.inner();
        inner.execute(inner.request(Route::DeleteUser(user_id))?).await?;
        Ok(())
    }
}
