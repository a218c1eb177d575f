//! The Auth Requests API (`client.auth_requests()`): a server-side alternative to building
//! authorisation URLs. Moneyhub builds the URL ([`AuthRequests::create`] →
//! `redirect_params.auth_url`), the user consents, and the callback's parameters go back to
//! Moneyhub ([`AuthRequests::complete`]), which exchanges the code itself and creates or
//! renews the connection.
//!
//! `complete` can create a connection and run its first sync: it is sent once, never
//! retried, and allowed the long timeout (120 s by default). On a transport error or timeout
//! the outcome is unknown ([`Error::sent`](crate::Error::sent) is `Maybe`): read the request
//! with [`AuthRequests::get`] to find out. Scopes: `auth_requests:write` to create and
//! complete, `auth_requests:read` to read (client credentials, no user).
//!
//! ```no_run
//! # async fn demo(client: moneyhub::Client, bank: moneyhub::BankId, user: moneyhub::UserId, callback_query: &str) -> moneyhub::Result<()> {
//! use moneyhub::NewAuthRequest;
//! let created = client.auth_requests().create(&NewAuthRequest::connect(bank).user(user)).await?;
//! // Send the user to created.redirect_params.auth_url; when they come back:
//! let done = client.auth_requests().complete_with_callback(&created.id, callback_query).await?;
//! println!("{:?} {:?}", done.status, done.connection_id);
//! # Ok(()) }
//! ```

use moneyhub_types::{AuthParams, AuthRequest, AuthRequestSync, BankId, ConnectionId, DataResponse, UserId};

use crate::error::{Error, Result};
use crate::page::{self, Page, PageOptions, Pages};
use crate::transport::route::{self, AuthRequestRef, Route};
use crate::Client;

/// Scope to create and complete auth requests.
pub const WRITE_SCOPE: &str = route::AUTH_REQUESTS_WRITE;
/// Scope to read them.
pub const READ_SCOPE: &str = route::AUTH_REQUESTS_READ;

/// What to ask for (the body of `POST /auth-requests`). Build one with
/// [`NewAuthRequest::connect`] or [`NewAuthRequest::renew`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthRequest {
    body: moneyhub_types::NewAuthRequest,
}

impl NewAuthRequest {
    /// A new connection to `bank_id` (`openid id:<bankId>`), returning to the client's
    /// redirect URI (or [`redirect_uri`](Self::redirect_uri)). Without [`user`](Self::user) it
    /// is one-time access: Moneyhub makes the user.
    pub fn connect(bank_id: BankId) -> Self {
        let mut body = moneyhub_types::NewAuthRequest::default();
        body.scope = format!("openid id:{bank_id}");
        NewAuthRequest { body }
    }

    /// Renews a connection: `flow` is `reauth`, `refresh` or `reconsent`.
    pub fn renew(flow: &str, user_id: UserId, connection_id: ConnectionId) -> Result<Self> {
        if !matches!(flow, "reauth" | "refresh" | "reconsent") {
            return Err(Error::validation(format!(
                "flow must be reauth, refresh or reconsent, not {flow:?}"
            )));
        }
        let mut body = moneyhub_types::NewAuthRequest::default();
        body.scope = format!("openid {flow}");
        body.user_id = Some(user_id);
        body.connection_id = Some(connection_id);
        Ok(NewAuthRequest { body })
    }

    /// Another redirect URI than the client's.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.body.redirect_uri = uri.into();
        self
    }

    /// For this client-managed user.
    pub fn user(mut self, user_id: UserId) -> Self {
        self.body.user_id = Some(user_id);
        self
    }

    /// Adds scopes to a new connection (data scopes for one-time access, `offline_access`).
    pub fn extra_scope(mut self, scope: &str) -> Self {
        for s in scope.split_whitespace() {
            self.body.scope.push(' ');
            self.body.scope.push_str(s);
        }
        self
    }

    /// As an asynchronous connection (the outcome names the running sync).
    pub fn enable_async(mut self, enable: bool) -> Self {
        self.body.sync = enable.then_some(AuthRequestSync { enable_async: true });
        self
    }

    /// The consent's expiry (new connections, reconsent).
    pub fn expires_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.body.expiration_date_time = Some(moneyhub_types::time::format_timestamp(&at));
        self
    }

    /// The body sent.
    pub fn body(&self) -> &moneyhub_types::NewAuthRequest {
        &self.body
    }
}

/// The Auth Requests API. Get one with [`Client::auth_requests`].
#[derive(Debug, Clone)]
pub struct AuthRequests {
    client: Client,
}

impl AuthRequests {
    pub(crate) fn new(client: Client) -> Self {
        AuthRequests { client }
    }

    /// `POST /auth-requests`: the request, with the URL to send the user to
    /// (`redirect_params.auth_url`). Not retried (each call makes a new request).
    pub async fn create(&self, request: &NewAuthRequest) -> Result<AuthRequest> {
        let inner = self.client.inner();
        let mut body = request.body.clone();
        if body.redirect_uri.is_empty() {
            body.redirect_uri =
                inner.config.redirect_uri.as_ref().map(|u| u.to_string()).ok_or_else(|| {
                    Error::validation("an auth request needs a redirect URI (none is configured)")
                })?;
        }
        let call = inner.request(Route::CreateAuthRequest)?.json(&body)?;
        Ok(inner.execute(call).await?.decode::<DataResponse<AuthRequest>>()?.data)
    }

    /// `GET /auth-requests/{id}`; unknown ids are [`Error::is_not_found`].
    pub async fn get(&self, id: &str) -> Result<AuthRequest> {
        let inner = self.client.inner();
        let call = inner.request(Route::GetAuthRequest(AuthRequestRef::new(id)?))?;
        Ok(inner.execute(call).await?.decode::<DataResponse<AuthRequest>>()?.data)
    }

    /// One page of `GET /auth-requests`.
    pub async fn list(&self, page: PageOptions) -> Result<Page<AuthRequest>> {
        let inner = self.client.inner();
        page::fetch(inner, inner.request(Route::ListAuthRequests)?, page).await
    }

    /// Every page of `GET /auth-requests` from `first` on, as a `Stream`.
    pub fn pages(&self, first: PageOptions) -> Pages<AuthRequest> {
        let requests = self.clone();
        page::stream(first, move |options| {
            let requests = requests.clone();
            async move { requests.list(options).await }
        })
    }

    /// Every auth request, page after page.
    pub async fn list_all(&self) -> Result<Vec<AuthRequest>> {
        page::collect(self.pages(PageOptions::default())).await
    }

    /// `PATCH /auth-requests/{id}` with the callback's parameters: Moneyhub exchanges the
    /// code and creates or renews the connection (or records the user's error). Sent once,
    /// never retried, with the long timeout.
    pub async fn complete(&self, id: &str, params: &AuthParams) -> Result<AuthRequest> {
        let id = AuthRequestRef::new(id)?;
        if params.state.is_none() {
            return Err(Error::validation("the completion needs the callback's state"));
        }
        if params.code.is_none() && params.error.is_none() {
            return Err(Error::validation("the completion needs the callback's code (or its error)"));
        }
        let inner = self.client.inner();
        // The route's classes: never retried, the long timeout.
        let call = inner
            .request(Route::CompleteAuthRequest(id))?
            .json(&serde_json::json!({ "authParams": params }))?;
        Ok(inner.execute(call).await?.decode::<DataResponse<AuthRequest>>()?.data)
    }

    /// [`complete`](Self::complete) from the raw callback URL or query string.
    pub async fn complete_with_callback(&self, id: &str, callback: &str) -> Result<AuthRequest> {
        self.complete(id, &auth_params_from_callback(callback)?).await
    }
}

/// The `authParams` of a callback URL (query or fragment) or query string.
pub fn auth_params_from_callback(callback: &str) -> Result<AuthParams> {
    let s = callback.trim();
    let query = if s.contains("://") {
        let url = url::Url::parse(s).map_err(|_| Error::validation("the callback is not a URL"))?;
        match (url.query(), url.fragment()) {
            (Some(q), _) if !q.is_empty() => q.to_owned(),
            (_, Some(f)) if !f.is_empty() => f.to_owned(),
            _ => return Err(Error::validation("the callback URL has no parameters")),
        }
    } else {
        s.trim_start_matches('?').to_owned()
    };
    let mut p = AuthParams::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = Some(v.into_owned());
        match &*k {
            "code" => p.code = v,
            "state" => p.state = v,
            "id_token" => p.id_token = v,
            "error" => p.error = v,
            "error_description" => p.error_description = v,
            _ => {}
        }
    }
    Ok(p)
}
