//! Users (identity service): create, get, list, delete.

use reqwest::Method;
use serde_json::json;

use moneyhub_types::{DataResponse, User, UserId};

use crate::error::{Error, Result};
use crate::page::{Page, PageOptions};
use crate::transport::http::Call;
use crate::transport::tokens::TokenKey;
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
        let key = TokenKey::new(None, &inner.config.scopes.user_create);
        let call = Call::new(inner, Method::POST, "/users", inner.identity_url(&["users"])?)
            .bearer(key)
            .json(&body)?;
        inner.execute(call).await?.decode()
    }

    /// A user (`GET /users/{userId}`); unknown users are [`Error::is_not_found`].
    pub async fn get(&self, user_id: &UserId) -> Result<User> {
        let inner = self.client.inner();
        let key = TokenKey::new(None, &inner.config.scopes.user_read);
        let url = inner.identity_url(&["users", user_id.as_str()])?;
        inner.execute(Call::new(inner, Method::GET, "/users/{userId}", url).bearer(key)).await?.decode()
    }

    /// One page of the client's users (`GET /users?limit&offset`).
    pub async fn list(&self, page: PageOptions) -> Result<Page<User>> {
        page.check()?;
        let inner = self.client.inner();
        let key = TokenKey::new(None, &inner.config.scopes.user_read);
        let call = Call::new(inner, Method::GET, "/users", inner.identity_url(&["users"])?)
            .bearer(key)
            .query("limit", page.limit.to_string())
            .query("offset", page.offset.to_string());
        let body: DataResponse<Vec<User>> = inner.execute(call).await?.decode()?;
        Ok(Page::new(body.data, body.meta.as_ref(), page))
    }

    /// Every user, walking the pages (100 at a time).
    pub async fn list_all(&self) -> Result<Vec<User>> {
        let mut all = Vec::new();
        let mut next = Some(PageOptions::default());
        while let Some(options) = next {
            let page = self.list(options).await?;
            next = page.next;
            all.extend(page.items);
        }
        Ok(all)
    }

    /// Deletes a user with all their data and consents (`DELETE /users/{userId}`, 204).
    pub async fn delete(&self, user_id: &UserId) -> Result<()> {
        let inner = self.client.inner();
        let key = TokenKey::new(None, &inner.config.scopes.user_delete);
        let url = inner.identity_url(&["users", user_id.as_str()])?;
        inner.execute(Call::new(inner, Method::DELETE, "/users/{userId}", url).bearer(key)).await?;
        Ok(())
    }
}
