//! The fault middleware, layered inside the request log so injected faults are logged (with
//! a note naming the rule).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Faults;
use super::{Applied, Effect};
use crate::error::ApiError;
use crate::request_log::LogNote;

/// Marks a response that must not be sent: the server closes the connection instead (see
/// `moneyhub_http::serve`), as a network failure or a crashed gateway would.
pub use moneyhub_http::DropConnection;

/// Whether a path belongs to the control API (never faulted).
fn is_control(path: &str) -> bool {
    path.starts_with("/__sandbox")
}

/// OAuth endpoints answer errors as `{error, error_description}`; everything else (including
/// the catalogues under `/oidc/.well-known/`) as Moneyhub's `{code, message, ...}`.
fn is_oauth(path: &str) -> bool {
    path.starts_with("/oidc/") && !path.starts_with("/oidc/.well-known/")
}

/// The middleware: applies the first rule that fires for the request.
pub async fn fault_layer(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_control(path) {
        return next.run(req).await;
    }
    let Some(fault) = faults.pick(req.method().as_str(), path) else {
        return next.run(req).await;
    };
    let oauth = is_oauth(path);
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    let mut res = match &fault.effect {
        Effect::Error { status, code, message, retry_after } => {
            error_response(*status, code.as_deref(), message, *retry_after, oauth)
        }
        Effect::Drop => {
            // The route does not run: the request is lost before it reaches "Moneyhub".
            let mut res = Response::new(Body::empty());
            res.extensions_mut().insert(DropConnection);
            res
        }
        Effect::Malformed => malformed(next.run(req).await).await,
        Effect::None => next.run(req).await,
    };
    add_note(&mut res, &fault);
    res
}

fn add_note(res: &mut Response, fault: &Applied) {
    let note = match res.extensions().get::<LogNote>() {
        Some(LogNote(existing)) => format!("{existing}; {}", fault.note()),
        None => fault.note(),
    };
    res.extensions_mut().insert(LogNote(note));
}

fn error_response(
    status: StatusCode,
    code: Option<&str>,
    message: &str,
    retry_after: Option<u64>,
    oauth: bool,
) -> Response {
    let mut body = if oauth {
        let error = code.unwrap_or(match status.as_u16() {
            503 => "temporarily_unavailable",
            401 => "invalid_client",
            s if s >= 500 => "server_error",
            _ => "invalid_request",
        });
        json!({"error": error, "error_description": message})
    } else {
        // ApiError builds the body (correlationId and all); the code may be any string here.
        let mut body = ApiError::custom(status, default_code(status), message).body();
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        body
    };
    if let (Some(secs), Value::Object(map)) = (retry_after, &mut body) {
        map.insert("retryAfterSecs".into(), json!(secs));
    }
    let mut res = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    res
}

/// Moneyhub's codes for the statuses it uses (reference §12), a generic one otherwise.
fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        429 => "TooManyRequests",
        500 => "InternalServer",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        s if s >= 500 => "InternalServer",
        _ => "BadRequest",
    }
}

/// A 200 whose JSON body stops halfway, as when a proxy cuts a response short.
async fn malformed(res: Response) -> Response {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap_or_default();
    let mut cut = bytes.slice(..bytes.len() / 2).to_vec();
    // Half of a tiny body can still parse (half of `12` is `1`): never hand out valid JSON.
    if cut.is_empty() || serde_json::from_slice::<Value>(&cut).is_ok() {
        cut = br#"{"data": [{"id": "#.to_vec();
    }
    let mut out = Response::new(Body::from(cut));
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_bodies_never_parse() {
        for body in [&b""[..], b"12", b"{}", br#"{"a":[1,2,3]}"#] {
            let res = malformed(Response::new(Body::from(body.to_vec()))).await;
            assert_eq!(res.status(), StatusCode::OK);
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
            assert!(serde_json::from_slice::<Value>(&bytes).is_err(), "{body:?}");
        }
    }

    #[test]
    fn paths() {
        assert!(is_control("/__sandbox/faults"));
        assert!(!is_control("/users"));
        assert!(is_oauth("/oidc/token"));
        assert!(!is_oauth("/oidc/.well-known/test-connections"));
    }
}
