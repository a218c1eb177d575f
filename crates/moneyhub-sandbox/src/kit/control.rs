//! [`Control`]: the control API over HTTP.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::types::*;

/// A client of one sandbox's control API (`<base>/__sandbox/...`). Cheap to clone.
///
/// Every method answers the sandbox's answer typed, or a [`ControlError`] carrying the HTTP
/// status and the sandbox's message. [`Control::call`] reaches any control route untyped,
/// for tests of the control API itself.
#[derive(Clone)]
pub struct Control {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// A control call that failed: not sent, not answered, refused (with the status and the
/// sandbox's message), or answered with something unexpected.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request could not be sent or its answer read.
    #[error("sandbox control {method} {path}: {message}")]
    Transport {
        /// The method.
        method: Method,
        /// The control path (`/clock/advance`).
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The sandbox refused the request.
    #[error("sandbox control {method} {path}: HTTP {status}: {message}")]
    Refused {
        /// The method.
        method: Method,
        /// The control path.
        path: String,
        /// The status.
        status: StatusCode,
        /// The sandbox's `message` (or the body).
        message: String,
    },
    /// The answer was not what the route answers.
    #[error("sandbox control {method} {path}: unexpected answer: {message}")]
    Unexpected {
        /// The method.
        method: Method,
        /// The control path.
        path: String,
        /// Why it did not fit.
        message: String,
    },
}

impl ControlError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ControlError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl Control {
    /// A client of the sandbox at `base_url` (`http://127.0.0.1:PORT`, its identity URL).
    pub fn new(base_url: impl Into<String>) -> Control {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Control { http, base_url: base_url.into().trim_end_matches('/').to_owned(), token: None }
    }

    /// A client of a sandbox running in this process.
    pub fn of(sandbox: &crate::Sandbox) -> Control {
        Control::new(sandbox.base_url())
    }

    /// Sends requests through `http` (one that trusts a test CA, say).
    pub fn with_http(mut self, http: reqwest::Client) -> Control {
        self.http = http;
        self
    }

    /// The control token (`Authorization: Bearer`) of a sandbox that wants one.
    pub fn with_token(mut self, token: Option<String>) -> Control {
        self.token = token.filter(|t| !t.trim().is_empty());
        self
    }

    /// The sandbox's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Any control route, untyped: `(status, JSON)` (`null` for an empty body), whatever the
    /// status. Fails only when nothing came back.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), ControlError> {
        let transport = |e: reqwest::Error| ControlError::Transport {
            method: method.clone(),
            path: path.to_owned(),
            message: e.to_string(),
        };
        let mut req = self.http.request(method.clone(), format!("{}/__sandbox{path}", self.base_url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.map_err(transport)?;
        let status = res.status();
        let text = res.text().await.map_err(transport)?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// A call that must succeed; its answer typed.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ControlError> {
        let (status, value) = self.call(method.clone(), path, body).await?;
        if !status.is_success() {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            return Err(ControlError::Refused { method, path: path.to_owned(), status, message });
        }
        serde_json::from_value(value).map_err(|e| ControlError::Unexpected {
            method,
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    async fn send_empty(&self, method: Method, path: &str, body: Option<Value>) -> Result<(), ControlError> {
        self.send::<Value>(method, path, body).await.map(drop)
    }

    fn body<T: Serialize>(value: &T) -> Option<Value> {
        Some(serde_json::to_value(value).unwrap_or(Value::Null))
    }

    // ----- clock ---------------------------------------------------------------------------

    /// The virtual time.
    pub async fn clock(&self) -> Result<ClockReading, ControlError> {
        self.send(Method::GET, "/clock", None).await
    }

    /// Moves the clock forward, running everything that falls due on the way.
    pub async fn advance(&self, by: Advance) -> Result<Advanced, ControlError> {
        self.send(Method::POST, "/clock/advance", Self::body(&by)).await
    }

    /// Stops the clock.
    pub async fn freeze(&self) -> Result<ClockReading, ControlError> {
        self.send(Method::POST, "/clock/freeze", None).await
    }

    /// Lets the clock follow the wall clock again from its reading.
    pub async fn resume(&self) -> Result<ClockReading, ControlError> {
        self.send(Method::POST, "/clock/resume", None).await
    }

    // ----- set-up --------------------------------------------------------------------------

    /// `count` users of the first registered client, each connected to every bank of
    /// `bank_ids`.
    pub async fn create_users(
        &self,
        count: usize,
        bank_ids: &[&str],
    ) -> Result<Vec<CreatedUser>, ControlError> {
        let new =
            NewUsers { count, client_id: None, banks: bank_ids.iter().map(|b| (*b).to_owned()).collect() };
        self.send(Method::POST, "/users", Self::body(&new)).await
    }

    /// One user connected to `bank_ids`.
    pub async fn create_user(&self, bank_ids: &[&str]) -> Result<CreatedUser, ControlError> {
        let mut users = self.create_users(1, bank_ids).await?;
        users.pop().ok_or_else(|| ControlError::Unexpected {
            method: Method::POST,
            path: "/users".to_owned(),
            message: "no user in the answer".to_owned(),
        })
    }

    /// A connection, as a completed authorisation would make it.
    pub async fn create_connection(&self, new: &NewConnection) -> Result<CreatedConnection, ControlError> {
        self.send(Method::POST, "/connections", Self::body(new)).await
    }

    /// The sandbox's view of a connection.
    pub async fn connection(&self, connection_id: &str) -> Result<ConnectionView, ControlError> {
        self.send(Method::GET, &format!("/connections/{}", segment(connection_id)), None).await
    }

    /// Scripts a connection's next fetches.
    pub async fn script(&self, connection_id: &str, script: &Script) -> Result<(), ControlError> {
        let path = format!("/connections/{}/script", segment(connection_id));
        self.send_empty(Method::PUT, &path, Self::body(script)).await
    }

    /// Puts a connection in a scenario state (failing, MFA due, consent ending...).
    pub async fn set_state(&self, connection_id: &str, wanted: &StateRequest) -> Result<(), ControlError> {
        let path = format!("/connections/{}/state", segment(connection_id));
        self.send_empty(Method::PUT, &path, Self::body(wanted)).await
    }

    /// Changes a connection directly (single-sync-only, new id on reauth, consent expiry).
    pub async fn tweak(&self, connection_id: &str, tweak: &Tweak) -> Result<(), ControlError> {
        let path = format!("/connections/{}", segment(connection_id));
        self.send_empty(Method::PATCH, &path, Self::body(tweak)).await
    }

    /// Withdraws a provider for good.
    pub async fn remove_provider(&self, bank_id: &str) -> Result<(), ControlError> {
        self.send_empty(Method::POST, &format!("/providers/{}/remove", segment(bank_id)), None).await
    }

    /// The provider stops reporting an account.
    pub async fn drop_account(&self, account_id: &str) -> Result<(), ControlError> {
        self.send_empty(Method::POST, &format!("/accounts/{}/drop", segment(account_id)), None).await
    }

    // ----- faults --------------------------------------------------------------------------

    /// Adds a fault rule.
    pub async fn add_fault(&self, spec: &FaultSpec) -> Result<FaultRule, ControlError> {
        self.send(Method::POST, "/faults", Self::body(spec)).await
    }

    /// The fault rules.
    pub async fn faults(&self) -> Result<Vec<FaultRule>, ControlError> {
        Ok(self.send::<Listing<FaultRule>>(Method::GET, "/faults", None).await?.data)
    }

    /// Removes one fault rule.
    pub async fn remove_fault(&self, id: &str) -> Result<(), ControlError> {
        self.send_empty(Method::DELETE, &format!("/faults/{}", segment(id)), None).await
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) -> Result<(), ControlError> {
        self.send_empty(Method::DELETE, "/faults", None).await
    }

    // ----- webhooks ------------------------------------------------------------------------

    /// The webhook target.
    pub async fn webhook_target(&self) -> Result<WebhookSettings, ControlError> {
        self.send(Method::GET, "/webhooks", None).await
    }

    /// Sets the webhook target (`None` clears it) and its format (`json`, `jwt`).
    pub async fn set_webhook_target(
        &self,
        url: Option<&str>,
        format: Option<&str>,
    ) -> Result<WebhookSettings, ControlError> {
        let mut body = json!({"url": url});
        if let Some(f) = format {
            body["format"] = json!(f);
        }
        self.send(Method::PUT, "/webhooks", Some(body)).await
    }

    /// Webhook chaos.
    pub async fn chaos(&self) -> Result<Chaos, ControlError> {
        self.send(Method::GET, "/webhooks/chaos", None).await
    }

    /// Sets webhook chaos.
    pub async fn set_chaos(&self, chaos: Chaos) -> Result<Chaos, ControlError> {
        self.send(Method::PUT, "/webhooks/chaos", Self::body(&chaos)).await
    }

    /// Delivery attempts after sequence number `after`, at most `limit`.
    pub async fn deliveries(&self, after: u64, limit: usize) -> Result<Deliveries, ControlError> {
        let path = format!("/webhooks/deliveries?after={after}&limit={limit}");
        let page: Listing<Delivery> = self.send(Method::GET, &path, None).await?;
        let meta = page.meta.unwrap_or(ListingMeta { last_seq: 0, pending: None });
        Ok(Deliveries { data: page.data, last_seq: meta.last_seq, pending: meta.pending.unwrap_or(0) })
    }

    /// Forgets the delivery log.
    pub async fn clear_deliveries(&self) -> Result<(), ControlError> {
        self.send_empty(Method::DELETE, "/webhooks/deliveries", None).await
    }

    /// Delivers everything pending now.
    pub async fn flush(&self) -> Result<FlushReport, ControlError> {
        self.send(Method::POST, "/webhooks/flush", None).await
    }

    /// Delivers a synthetic event of `event_type` for `user_id` now (payload `{}` by default).
    pub async fn fire(
        &self,
        user_id: &str,
        event_type: &str,
        payload: Option<Value>,
    ) -> Result<FiredEvent, ControlError> {
        let event = TestEvent {
            user_id: user_id.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            ..Default::default()
        };
        self.fire_event(&event).await
    }

    /// Delivers a synthetic event (see [`TestEvent`]): a realistic payload from the user's
    /// data unless the event carries one.
    pub async fn fire_event(&self, event: &TestEvent) -> Result<FiredEvent, ControlError> {
        self.send(Method::POST, "/webhooks/test", Self::body(event)).await
    }

    /// Delivers the event of delivery `seq` again, as it was (same webhook id and payload).
    pub async fn resend(&self, seq: u64) -> Result<FiredEvent, ControlError> {
        self.send(Method::POST, &format!("/webhooks/deliveries/{seq}/resend"), None).await
    }

    // ----- state ---------------------------------------------------------------------------

    /// Back to the seeded state (see `POST /__sandbox/reset`).
    pub async fn reset(&self) -> Result<ClockReading, ControlError> {
        self.send(Method::POST, "/reset", None).await
    }

    /// Loads a scenario's text (TOML, or JSON when `name` ends in `.json`), after a reset
    /// when `reset`.
    pub async fn load_scenario(
        &self,
        text: &str,
        name: &str,
        reset: bool,
    ) -> Result<LoadedScenario, ControlError> {
        self.send(Method::POST, "/scenario", Some(json!({"text": text, "name": name, "reset": reset}))).await
    }

    /// How `/oidc/auth` obtains consent now: `instant` or `interactive`.
    pub async fn consent_mode(&self) -> Result<ConsentSetting, ControlError> {
        self.send(Method::GET, "/consent", None).await
    }

    /// Sets how `/oidc/auth` obtains consent, from the next authorisation on: `instant` or
    /// `interactive`.
    pub async fn set_consent_mode(&self, mode: &str) -> Result<ConsentSetting, ControlError> {
        self.send(Method::PUT, "/consent", Self::body(&ConsentSetting { mode: mode.to_owned() })).await
    }

    /// How much the sandbox holds.
    pub async fn stats(&self) -> Result<Stats, ControlError> {
        self.send(Method::GET, "/stats", None).await
    }

    /// Request-log entries after sequence number `after`, at most `limit`.
    pub async fn requests(&self, after: u64, limit: usize) -> Result<RequestLog, ControlError> {
        let path = format!("/requests?after={after}&limit={limit}");
        let page: Listing<LogEntry> = self.send(Method::GET, &path, None).await?;
        Ok(RequestLog { data: page.data, last_seq: page.meta.map_or(0, |m| m.last_seq) })
    }

    /// Forgets the request log.
    pub async fn clear_requests(&self) -> Result<(), ControlError> {
        self.send_empty(Method::DELETE, "/requests", None).await
    }

    // ----- the public routes tests call by hand ---------------------------------------------

    /// A client-credentials access token from the sandbox's token endpoint
    /// (`client_secret_basic`), for tests that call the API by hand: `scope` as the token
    /// request takes it, `sub` for a user's token.
    pub async fn client_token(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        scope: &str,
        sub: Option<&str>,
    ) -> Result<String, ControlError> {
        let path = "/oidc/token";
        let fail = |status: Option<StatusCode>, message: String| match status {
            Some(status) => {
                ControlError::Refused { method: Method::POST, path: path.to_owned(), status, message }
            }
            None => ControlError::Unexpected { method: Method::POST, path: path.to_owned(), message },
        };
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(s) = sub {
            form.push(("sub", s));
        }
        let res = self
            .http
            .post(format!("{}{path}", self.base_url))
            .basic_auth(client_id, client_secret)
            .form(&form)
            .send()
            .await
            .map_err(|e| fail(None, e.to_string()))?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| fail(None, e.to_string()))?;
        if !status.is_success() {
            return Err(fail(Some(status), body.to_string()));
        }
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| fail(None, "no access_token".to_owned()))
    }

    /// A provider's bank id by name, `bankRef` or id (case-insensitive), from the public
    /// catalogue (`/oidc/.well-known/all-connections`).
    pub async fn bank_id(&self, name: &str) -> Result<String, ControlError> {
        let path = "/oidc/.well-known/all-connections";
        let unexpected = |message: String| ControlError::Unexpected {
            method: Method::GET,
            path: path.to_owned(),
            message,
        };
        let all: Vec<Value> = self
            .http
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| unexpected(e.to_string()))?
            .json()
            .await
            .map_err(|e| unexpected(e.to_string()))?;
        let wanted = name.to_ascii_lowercase();
        all.iter()
            .find(|p| {
                ["name", "bankRef", "id"]
                    .iter()
                    .any(|k| p[k].as_str().is_some_and(|v| v.to_ascii_lowercase() == wanted))
            })
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| unexpected(format!("no provider {name:?} in the catalogue")))
    }
}

/// A path segment, percent-encoded (ids hold `:`, which is fine, but never `/` or `?`).
fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%3A", ":")
        .replace("%2D", "-")
        .replace("%5F", "_")
        .replace("%2E", ".")
}
