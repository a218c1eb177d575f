//! The one HTML toolkit of the sandbox's pages (consent pages and dashboard): escaping, the
//! page shell, the security headers and cookie helpers.
//!
//! Decision: pages are written with `format!` and [`escape`] rather than a template crate. The
//! pages are few and small, a template engine (askama, maud...) would add a proc-macro stack
//! to a crate that is also a library, and one escaping function that every reflected value
//! goes through is easy to audit: every `{}` in a page's `format!` is either a constant, a
//! number, or the result of [`escape`] (or of a function here that escapes).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value for a URL query, percent-encoded (then still [`escape`]d where it goes in HTML).
pub fn query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The only stylesheet. Inline, allowed by its hash in the Content-Security-Policy.
const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f4f5f9;color:#1d2333}\
header{background:#2b3a67;color:#fff;padding:12px 24px;font-weight:600}\
main{max-width:1100px;margin:24px auto;padding:0 16px}\
section{background:#fff;border-radius:10px;padding:16px 20px;margin-bottom:16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
h1{font-size:1.4em;margin:0 0 12px}h2{font-size:1.1em;margin:0 0 10px}\
.muted{color:#667}.err{background:#fdecea;color:#8a1c12;padding:8px 12px;border-radius:6px}\
.ok{color:#17663a}.bad{color:#a31d12}\
ul.banks{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:8px}\
ul.banks li{border:1px solid #dde;border-radius:8px;padding:8px;display:flex;align-items:center;gap:10px}\
ul.banks li.off{background:#eceef3;color:#3b4150}ul.banks li.off .muted{color:#3b4150}\
button{background:#2b3a67;color:#fff;border:0;border-radius:6px;padding:6px 12px;cursor:pointer;font:inherit}\
button.secondary{background:#e4e6ee;color:#1d2333}button.danger{background:#a31d12}\
input,select{font:inherit;padding:4px 6px;border:1px solid #bbc;border-radius:5px;max-width:100%;box-sizing:border-box}\
label{display:block;margin:6px 0}table{border-collapse:collapse;width:100%;font-size:.9em}\
td,th{border-bottom:1px solid #e4e6ee;padding:4px 6px;text-align:left;vertical-align:top}\
form.inline{display:inline-block;margin:2px}pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:.85em}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{color:#667}dd{margin:0}\
ul.syncs{margin:2px 0;padding-left:16px;font-size:.85em}td.actions{border-bottom:2px solid #c9cde0;padding-bottom:8px}\
.row{display:flex;gap:8px;flex-wrap:wrap;align-items:center}.row label{display:inline;margin:0}\
h3{font-size:1em;margin:16px 0 6px}.ts{white-space:nowrap}.tablewrap{overflow-x:auto;max-width:100%}\
td{overflow-wrap:anywhere}section.done{background:#e8f4ec;color:#17423a}.scripted{color:#8a4b00;font-weight:600}\
textarea{width:100%;box-sizing:border-box;font:inherit;font-family:monospace}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
details.magic ul{margin:6px 0;padding-left:18px}\
@media (max-width:600px){main{margin:12px auto;padding:0 8px}section{padding:12px}}";

fn style_hash() -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, STYLE.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The Content-Security-Policy of every page: nothing is loaded from anywhere (no scripts at
/// all, the one inline stylesheet by hash, images only as inline `data:`), forms submit only
/// to the sandbox itself and to `form_target` (the origin a consent page's answer redirects
/// to: browsers apply `form-action` to the redirect after a submission), and no framing.
pub fn content_security_policy(form_target: Option<&str>) -> String {
    let extra = form_target.map(|t| format!(" {t}")).unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src data:; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'",
        style_hash()
    )
}

/// The origin (`scheme://host:port`) of a URL, for [`content_security_policy`]; `None` when
/// it has none a policy could name.
pub fn origin_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    match u.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// A whole page: `body` must already be HTML (built with [`escape`]).
pub fn page(status: StatusCode, title: &str, body: &str, form_target: Option<&str>) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\
         <header>Moneyhub sandbox</header><main>{body}</main></body></html>",
        escape(title)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(form_target)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it, browsers send `Origin: null` on the pages' own form POSTs,
    // which the Origin checks must refuse. `same-origin` still keeps the pages' URLs from
    // every other site (the client's callback included).
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An error message as the pages show it: announced (`role="alert"`) and focused when the
/// page loads (`autofocus` on a `tabindex="-1"` element: no script needed), `id="error"`.
pub fn alert(text: &str) -> String {
    format!("<p class=\"err\" id=\"error\" role=\"alert\" tabindex=\"-1\" autofocus>{}</p>", escape(text))
}

/// A short page with a heading and a message (errors, refusals). A client error (4xx) is an
/// [`alert`], and the page links back to the dashboard when `back` names it.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    message_with_back(status, title, text, None)
}

/// [`message`] with a way back: a link to `back` (a path of the sandbox).
pub fn message_with_back(status: StatusCode, title: &str, text: &str, back: Option<&str>) -> Response {
    let text = if status.is_client_error() || status.is_server_error() {
        alert(text)
    } else {
        format!("<p>{}</p>", escape(text))
    };
    let back = back
        .map(|b| format!("<p><a id=\"back\" href=\"{}\">Back to the dashboard</a></p>", escape(b)))
        .unwrap_or_default();
    page(status, title, &format!("<section><h1>{}</h1>{text}{back}</section>", escape(title)), None)
}

/// A `303 See Other` to a path of the sandbox (after a form's POST).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Adds a `Set-Cookie` for a cookie only this site's own pages send back: `HttpOnly` (no
/// script reads it; there is no script anyway), `SameSite=Strict` (no other site's page or
/// link makes the browser send it), limited to `path`.
pub fn set_cookie(res: &mut Response, name: &str, value: &str, path: &str, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let c = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A provider's icon as inline SVG: its initial on the catalogue icon's colours (the same
/// picture `GET /bank-icons/{bankRef}` serves), so pages load nothing.
pub fn icon(name: &str) -> String {
    let initial = name.chars().next().unwrap_or('?').to_string();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"32\" height=\"32\" viewBox=\"0 0 64 64\" \
         aria-hidden=\"true\"><rect width=\"64\" height=\"64\" rx=\"12\" fill=\"#2b3a67\"/>\
         <text x=\"32\" y=\"42\" font-size=\"30\" text-anchor=\"middle\" fill=\"#fff\" \
         font-family=\"sans-serif\">{}</text></svg>",
        escape(&initial)
    )
}

/// Constant-time comparison of two secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_break_out() {
        assert_eq!(
            escape("\"><script>alert('1')</script>&"),
            "&quot;&gt;&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;"
        );
    }

    #[test]
    fn reads_cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; mh=two; c=3"));
        assert_eq!(cookie(&h, "mh"), Some("two"));
        assert_eq!(cookie(&h, "m"), None);
    }
}
