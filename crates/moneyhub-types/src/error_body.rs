//! Error bodies of the Data API, the identity service's REST routes and the OIDC endpoints.

use serde::{Deserialize, Serialize};

/// Error body of the Data API and the identity REST routes (swagger `Error` and `InternalError`,
/// plus `details` and `retryAfterSecs`). Everything except `code` is optional.
///
/// ```
/// use moneyhub_types::{decode, ApiErrorBody};
/// let body: ApiErrorBody = decode(
///     br#"{"code":"TooManyRequests","message":"Too Many Requests","retryAfterSecs":60}"#,
/// )?;
/// assert!(body.is_too_many_requests());
/// assert_eq!(body.retry_after_secs, Some(60));
/// # Ok::<(), moneyhub_types::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiErrorBody {
    /// Error code, e.g. `TooManyRequests`, `InternalServer`, `ExternalProvider`, `BadGateway`.
    pub code: String,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Request id to quote to Moneyhub support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Further details, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Seconds to wait before retrying (429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
    /// The provider's HTTP status, for `ExternalProvider` errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Id of the resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// User id of the resource concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl ApiErrorBody {
    /// A body with only `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: Some(message.into()),
            correlation_id: None,
            details: None,
            retry_after_secs: None,
            status_code: None,
            id: None,
            user_id: None,
        }
    }

    /// `code == "TooManyRequests"`.
    pub fn is_too_many_requests(&self) -> bool {
        self.code == "TooManyRequests"
    }
}

/// Error body of the OIDC endpoints (token, PAR, …): RFC 6749 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthErrorBody {
    /// OAuth error code, e.g. `invalid_grant`, `invalid_client`, `invalid_scope`.
    pub error: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Link to a page about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_uri: Option<String>,
}
