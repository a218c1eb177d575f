//! Property-based fuzzing over real HTTP: random methods, paths built from the real route
//! templates with real and garbage segments (percent-escapes, invalid UTF-8, very long
//! segments, unicode, `..`, empty segments), random query strings, random bodies (bytes,
//! JSON, forms) and random credentials, all against one shared sandbox. Whatever arrives,
//! the sandbox must answer (never drop the connection), never with a 5xx, and every 4xx
//! body must be JSON with a string `code` (or OAuth `error`).
//!
//! Requests go over a raw TCP socket rather than reqwest, so paths reach the server
//! byte for byte (an HTTP client would resolve `..` and re-encode escapes).
//!
//! The seed is fixed (`FUZZ_SEED` overrides it, as 64 hex digits) and printed on failure.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use moneyhub_sandbox::Sandbox;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

const MOCK: &str = "1ffe704d39629a929c8e293880fb449a";
const MODELO: &str = "b74f1a79f0be8bdb857d82d0f041d7d2";
const AVIVA: &str = "3c4637d3178c9a28ce655bfbf8e27a10";

const DEFAULT_SEED: [u8; 32] = *b"moneyhub-sandbox-fuzz-seed-v1.00";

fn seed() -> [u8; 32] {
    match std::env::var("FUZZ_SEED") {
        Ok(hex) => {
            let mut out = [0u8; 32];
            assert_eq!(hex.len(), 64, "FUZZ_SEED must be 64 hex digits");
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("FUZZ_SEED must be hex");
            }
            out
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn hex(seed: &[u8; 32]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}

// ----- a raw HTTP/1.1 client ---------------------------------------------------------------

/// One request, as sent on the wire.
#[derive(Clone)]
struct Req {
    method: String,
    target: String,
    /// Index into [`Fixture::auths`].
    auth: usize,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl fmt::Debug for Req {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target: String = if self.target.len() > 300 {
            format!("{}...({} bytes)", &self.target[..300.min(self.target.len())], self.target.len())
        } else {
            self.target.clone()
        };
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(300).collect();
        write!(
            f,
            "{} {target} auth#{} content-type {:?} body {body:?}",
            self.method, self.auth, self.content_type
        )
    }
}

/// A complete response.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the whole
/// response; `Err` when the server closed the connection without a complete answer.
async fn exchange(addr: SocketAddr, req: &Req, authorization: Option<&str>) -> Result<Resp, String> {
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n", req.method, req.target);
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    if let Some(ct) = &req.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if !req.body.is_empty() || matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    let io = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        let mut wire = head.into_bytes();
        wire.extend_from_slice(&req.body);
        s.write_all(&wire).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        // A server may answer and close before reading everything; reading still gets the
        // answer. A reset after a full answer is not a drop, so keep what arrived.
        let read = s.read_to_end(&mut buf).await;
        if buf.is_empty() {
            return Err(format!("no response at all ({read:?})"));
        }
        Ok(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(60), io)
        .await
        .map_err(|_| "no answer in 60 s".to_string())??;
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Result<Resp, String> {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete head: {:?}", String::from_utf8_lossy(buf)))?;
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "head is not UTF-8".to_string())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let body = if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad content-length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body cut short: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Resp { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or("chunked body cut short")?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("chunk cut short".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

// ----- the shared sandbox ------------------------------------------------------------------

/// What the strategies draw real values from, and the credentials cases pick by index.
struct Fixture {
    users: Vec<String>,
    conns: Vec<String>,
    accounts: Vec<String>,
    txs: Vec<String>,
    syncs: Vec<String>,
    /// `Authorization` header values (`None`: no header).
    auths: Vec<Option<String>>,
}

async fn fixture(sb: &Sandbox) -> Fixture {
    let mut users = Vec::new();
    let mut conns = Vec::new();
    let mut accounts = Vec::new();
    let mut txs = Vec::new();
    let mut syncs_ = Vec::new();
    for banks in [&[MOCK, AVIVA][..], &[MODELO][..], &[MOCK][..]] {
        let (u, cs) = user_with(sb, banks).await;
        let tok = data_token(sb, &u).await;
        let (_, a) = get_json(&format!("{}/v3/accounts", sb.base_url()), &tok).await;
        accounts.extend(a["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()));
        let (_, t) = get_json(&format!("{}/v3/transactions?limit=3", sb.base_url()), &tok).await;
        txs.extend(t["data"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()));
        syncs_.push(syncs(sb, &u, &cs[0]).await[0]["id"].as_str().unwrap().to_string());
        users.push(u);
        conns.extend(cs);
    }
    let mgmt =
        "user:create user:read user:update user:delete connection:read connection:update connection:delete";
    let data = "accounts:read accounts:write:all transactions:read:all accounts_details:read";
    let basic = {
        use base64::Engine;
        let raw = format!("{}:{}", sb.client_id(), sb.client_secret().unwrap());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    };
    let auths = vec![
        None,
        Some("Bearer garbage".to_string()),
        Some(format!("Bearer {}", token(sb, mgmt, None).await)),
        Some(format!("Bearer {}", token(sb, data, Some(&users[0])).await)),
        Some(format!("Bearer {}", token(sb, data, Some(&users[1])).await)),
        Some(format!("Bearer {}", token(sb, &format!("{mgmt} {data}"), Some(&users[2])).await)),
        Some(format!("Bearer {}", token(sb, "transactions:read:in", Some(&users[0])).await)),
        Some(basic),
        Some("Basic Zm9vOmJhcg==".to_string()),
        Some("Bearer".to_string()),
    ];
    Fixture { users, conns, accounts, txs, syncs: syncs_, auths }
}

// ----- strategies --------------------------------------------------------------------------

fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Characters legal unescaped in a path segment (RFC 3986 pchar, minus `%`).
const PCHAR: &str = "[A-Za-z0-9._~:@!$&'()*+,;=-]{0,24}";

/// A garbage path segment.
fn garbage_segment() -> BoxedStrategy<String> {
    prop_oneof![
        4 => PCHAR.prop_map(String::from),
        2 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| percent_encode(&b)),
        2 => any::<String>().prop_map(|s| percent_encode(s.as_bytes())),
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => prop_oneof![Just("%"), Just("%z"), Just("%zz"), Just("%4"), Just("%%41"), Just("%C3%28"), Just("%FF"), Just("%00")]
            .prop_map(String::from),
        1 => (1usize..9000).prop_map(|n| "a".repeat(n)),
        1 => (1usize..800).prop_map(|n| "%E2%82%AC".repeat(n)),
    ]
    .boxed()
}

fn pick(values: Vec<String>) -> BoxedStrategy<String> {
    proptest::sample::select(values).boxed()
}

/// A route template segment: literal, or a placeholder filled with a real value of its
/// kind (mostly) or garbage.
fn fill(kind: &str, fx: &Fixture) -> BoxedStrategy<String> {
    let escaped: Vec<String> = fx.conns.iter().map(|c| c.replace(':', "%3A")).collect();
    let real = match kind {
        "{u}" => pick(fx.users.clone()),
        "{c}" => pick(fx.conns.iter().cloned().chain(escaped).collect()),
        "{a}" => pick(fx.accounts.clone()),
        "{t}" => pick(fx.txs.clone()),
        "{s}" => pick(fx.syncs.clone()),
        "{v}" => pick(vec!["v2.0".into(), "v3".into(), "v3.0".into(), "v4".into()]),
        "{b}" => pick(vec![MODELO.into(), "ffffffffffffffffffffffffffffffff".into()]),
        "{listing}" => pick(
            ["all", "api", "legacy", "test", "payments", "beta", "zoopla", "nope"]
                .iter()
                .map(|l| format!("{l}-connections"))
                .collect(),
        ),
        "{x}" => garbage_segment(),
        literal => return Just(literal.to_string()).boxed(),
    };
    prop_oneof![3 => real, 1 => garbage_segment()].boxed()
}

/// Every route template (REST, Data API, OAuth, catalogues and the control API): its
/// methods, its path and how often to pick it.
const TEMPLATES: &[(&str, &str, u32)] = &[
    ("GET POST", "users", 3),
    ("GET DELETE", "users/{u}", 3),
    ("GET", "users/{u}/connections", 3),
    ("GET DELETE PATCH", "users/{u}/connections/{c}", 6),
    ("DELETE", "users/{u}/connection/{c}", 2),
    ("GET", "users/{u}/connections/{c}/syncs", 3),
    ("GET", "users/{u}/syncs", 2),
    ("GET", "users/{u}/syncs/{s}", 3),
    ("GET", "oidc/.well-known/{listing}", 2),
    ("GET", "oidc/.well-known/openid-configuration", 1),
    ("GET", "oidc/certs", 1),
    ("POST", "oidc/token", 2),
    ("POST", "oidc/request", 2),
    ("GET POST", "oidc/auth", 2),
    ("POST", "request", 1),
    ("GET", "bank-icons/{x}", 1),
    ("POST", "{v}/sync/{c}", 6),
    ("GET", "{v}/accounts", 5),
    ("GET", "{v}/accounts/syncs", 3),
    ("GET", "{v}/accounts/{a}", 4),
    ("GET", "{v}/accounts-list", 2),
    ("GET", "{v}/transactions", 8),
    ("GET", "{v}/transactions/{t}", 4),
    ("POST", "__sandbox/connections", 1),
    ("GET PATCH", "__sandbox/connections/{c}", 1),
    ("PUT", "__sandbox/connections/{c}/script", 1),
    ("GET DELETE", "__sandbox/requests", 1),
    ("GET", "__sandbox/stats", 1),
    ("GET", "__sandbox/clock", 1),
    ("POST", "__sandbox/clock/advance", 1),
    ("POST", "__sandbox/clock/freeze", 1),
    ("POST", "__sandbox/clock/resume", 1),
    ("POST", "__sandbox/providers/{b}/remove", 1),
    ("POST", "__sandbox/accounts/{a}/drop", 1),
    ("POST", "__sandbox/users", 1),
    ("GET PUT", "__sandbox/webhooks", 1),
    ("GET DELETE", "__sandbox/webhooks/deliveries", 1),
    ("GET PUT", "__sandbox/webhooks/chaos", 1),
    ("POST", "__sandbox/webhooks/flush", 1),
    ("POST", "__sandbox/webhooks/test", 1),
    ("GET POST DELETE", "__sandbox/faults", 1),
    ("DELETE", "__sandbox/faults/{x}", 1),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// A method and a path: a template's method (mostly) or any, and its segments filled in,
/// sometimes mangled (a segment added, dropped, doubled slashes, a trailing slash).
fn method_and_path(fx: &Fixture) -> BoxedStrategy<(String, String)> {
    type Weighted = (u32, BoxedStrategy<(String, Vec<String>)>);
    let templates: Vec<Weighted> = TEMPLATES
        .iter()
        .map(|(methods, t, weight)| {
            let own: Vec<String> = methods.split(' ').map(String::from).collect();
            let method =
                prop_oneof![3 => pick(own), 1 => pick(METHODS.iter().map(|m| m.to_string()).collect())];
            let segments = t.split('/').map(|seg| fill(seg, fx)).collect::<Vec<_>>();
            (*weight, (method, segments).boxed())
        })
        .collect();
    let chosen = proptest::strategy::Union::new_weighted(templates);
    (chosen, 0u8..20, garbage_segment(), any::<proptest::sample::Index>())
        .prop_map(|((method, mut segs), mangle, extra, at)| {
            let path = match mangle {
                0 => {
                    segs.insert(at.index(segs.len() + 1), extra);
                    format!("/{}", segs.join("/"))
                }
                1 if segs.len() > 1 => {
                    segs.remove(at.index(segs.len()));
                    format!("/{}", segs.join("/"))
                }
                2 => format!("//{}", segs.join("//")),
                3 => format!("/{}/", segs.join("/")),
                _ => format!("/{}", segs.join("/")),
            };
            (method, path)
        })
        .boxed()
}

const QUERY_KEYS: &[&str] = &[
    "limit",
    "offset",
    "ids",
    "ids[]",
    "ids%5B%5D",
    "startDate",
    "endDate",
    "startDateModified",
    "endDateModified",
    "onlyCount",
    "creditDebitIndicator",
    "showTransactionData",
    "showPerformanceScore",
    "accountId",
    "accountIds[]",
    "connectionId",
    "categoryId",
    "text",
    "hasProject",
    "projectId",
    "isDemo",
    "clientId",
    "undefined",
    "defaultIcon",
    "after",
    "client_id",
    "request_uri",
    "response_type",
    "scope",
    "redirect_uri",
    "claims",
    "request",
    "state",
];

fn query_value(fx: &Fixture) -> BoxedStrategy<String> {
    prop_oneof![
        (-5i64..2000).prop_map(|n| n.to_string()),
        Just("99999999999999999999999".to_string()),
        Just("1.5".to_string()),
        pick(
            vec!["2025-01-15", "2025-13-01", "2025-02-30", "0000-00-00", "2025-1-1", "15/01/2025"]
                .into_iter()
                .map(String::from)
                .collect()
        ),
        pick(
            vec!["true", "false", "maybe", "credit", "debit", "both", "code", "openid"]
                .into_iter()
                .map(String::from)
                .collect()
        ),
        pick(fx.txs.iter().chain(&fx.accounts).chain(&fx.conns).cloned().collect()),
        PCHAR.prop_map(|s| s.replace('&', "%26").replace('=', "%3D")),
        proptest::collection::vec(any::<u8>(), 0..10).prop_map(|b| percent_encode(&b)),
        Just("%zz".to_string()),
        Just(String::new()),
    ]
    .boxed()
}

fn query(fx: &Fixture) -> BoxedStrategy<String> {
    let key = prop_oneof![4 => proptest::sample::select(QUERY_KEYS).prop_map(String::from), 1 => PCHAR.prop_map(|s| s.replace(['&', '='], ""))];
    let pair = (key, proptest::option::weighted(0.85, query_value(fx))).prop_map(|(k, v)| match v {
        Some(v) => format!("{k}={v}"),
        None => k,
    });
    proptest::collection::vec(pair, 0..5)
        .prop_map(|pairs| if pairs.is_empty() { String::new() } else { format!("?{}", pairs.join("&")) })
        .boxed()
}

/// JSON keys the public routes read (and none that would let the control API run the clock
/// for years, create users by the thousand or install a fault).
const JSON_KEYS: &[&str] = &[
    "clientUserId",
    "expiresAt",
    "customerIpAddress",
    "customerLastLoggedTime",
    "enableAsync",
    "userId",
    "bankId",
    "outcomes",
    "thereafter",
    "append",
    "singleSyncOnly",
    "forceNewIdOnReauth",
    "format",
    "dropRate",
    "eventType",
    "status",
];

fn json_value(fx: &Fixture) -> BoxedStrategy<Value> {
    let strings = prop_oneof![
        PCHAR.prop_map(String::from),
        any::<String>(),
        pick(vec![
            "2025-02-01T10:00:00.000Z".into(),
            "2025-01-15".into(),
            "203.0.113.9".into(),
            "::1".into(),
            "success".into(),
            "error".into(),
            MOCK.into(),
        ]),
        pick(fx.users.iter().chain(&fx.conns).cloned().collect()),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        strings.prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![3 => proptest::sample::select(JSON_KEYS).prop_map(String::from), 1 => "[a-z]{1,8}".prop_map(String::from)];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key, inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

const FORM_KEYS: &[&str] = &[
    "grant_type",
    "scope",
    "sub",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "assertion",
    "client_assertion_type",
    "client_assertion",
    "request",
    "request_uri",
    "response_type",
    "response_mode",
    "state",
    "nonce",
    "prompt",
    "claims",
    "code_challenge",
    "code_challenge_method",
    "max_age",
];

fn form_value(fx: &Fixture) -> BoxedStrategy<String> {
    let claims = json_value(fx)
        .prop_map(|v| json!({"id_token": {"sub": {"essential": true, "value": v}}}).to_string());
    prop_oneof![
        pick(
            [
                "client_credentials",
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "openid",
                "openid id:1ffe704d39629a929c8e293880fb449a",
                "openid reauth",
                "openid refresh offline_access",
                "user:read accounts:read",
                "code",
                "code id_token",
                "form_post",
                "consent",
                "S256",
                "86400",
                REDIRECT_URI,
                "urn:ietf:params:oauth:request_uri:nope",
                "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.",
                "a.b.c",
                moneyhub_sandbox::DEFAULT_CLIENT_ID,
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        ),
        pick(fx.users.clone()),
        claims,
        json_value(fx).prop_map(|v| v.to_string()),
        PCHAR.prop_map(String::from),
        any::<String>(),
        (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

/// A random form (keys mostly the OAuth parameters).
fn form(fx: &Fixture) -> BoxedStrategy<Vec<u8>> {
    let key =
        prop_oneof![5 => proptest::sample::select(FORM_KEYS).prop_map(String::from), 1 => any::<String>()];
    proptest::collection::vec((key, form_value(fx)), 0..8)
        .prop_map(|pairs| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            s.finish().into_bytes()
        })
        .boxed()
}

fn body(fx: &Fixture) -> BoxedStrategy<(Option<String>, Vec<u8>)> {
    let ct = proptest::option::weighted(
        0.8,
        pick(
            [
                "application/json",
                "application/json; charset=utf-8",
                "application/x-www-form-urlencoded",
                "text/plain",
                "application/jws",
                "multipart/form-data; boundary=x",
                "\u{1}garbage",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ),
    );
    let bytes = prop_oneof![
        2 => Just(Vec::new()),
        2 => proptest::collection::vec(any::<u8>(), 0..300),
        4 => json_value(fx).prop_map(|v| v.to_string().into_bytes()),
        1 => Just(b"{}".to_vec()),
        2 => form(fx),
    ];
    (ct, bytes)
        .prop_map(|(ct, b)| {
            // A header value cannot carry control characters: such a request never leaves a
            // real client, so send the rest of it instead.
            (ct.filter(|c| !c.contains('\u{1}')), b)
        })
        .boxed()
}

// ----- the properties ----------------------------------------------------------------------

/// Runs one case: the answer must be complete, below 500, and a JSON error when 4xx.
fn check(rt: &tokio::runtime::Runtime, sb: &Sandbox, fx: &Fixture, req: &Req) -> Result<(), TestCaseError> {
    let addr = sb.addr();
    let auth = fx.auths[req.auth % fx.auths.len()].as_deref();
    let res =
        rt.block_on(exchange(addr, req, auth)).map_err(|e| TestCaseError::fail(format!("dropped: {e}")))?;
    let text = String::from_utf8_lossy(&res.body).into_owned();
    prop_assert!(res.status < 500, "status {} body {text:?}", res.status);
    if (400..500).contains(&res.status) {
        let ct = res.header("content-type").unwrap_or("");
        prop_assert!(ct.starts_with("application/json"), "{} with content-type {ct:?}: {text:?}", res.status);
        let v: Value = serde_json::from_slice(&res.body)
            .map_err(|e| TestCaseError::fail(format!("{} body is not JSON ({e}): {text:?}", res.status)))?;
        prop_assert!(
            v["code"].as_str().or(v["error"].as_str()).is_some_and(|c| !c.is_empty()),
            "{} body without a string code/error: {v}",
            res.status
        );
    }
    // Keep the shared sandbox sane: a fault rule the fuzzer managed to install is removed
    // before the next case (injected 5xx are the point of faults, not a bug).
    if req.target.starts_with("/__sandbox/faults") && (200..300).contains(&res.status) && req.method == "POST"
    {
        let clear = Req {
            method: "DELETE".into(),
            target: "/__sandbox/faults".into(),
            auth: 0,
            content_type: None,
            body: vec![],
        };
        rt.block_on(exchange(addr, &clear, None)).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

fn runner(cases: u32, seed: &[u8; 32]) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, seed))
}

fn report<T: fmt::Debug>(what: &str, seed: &[u8; 32], result: Result<(), TestError<T>>) {
    if let Err(e) = result {
        panic!("{what} failed with seed {} (rerun with FUZZ_SEED={}): {e}", hex(seed), hex(seed));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn fuzz_every_route_never_5xx_never_drops_and_4xx_is_json() {
    let rt = runtime();
    let sb = rt.block_on(sandbox());
    let fx = rt.block_on(fixture(&sb));
    let seed = seed();
    let strategy = (method_and_path(&fx), query(&fx), 0..fx.auths.len(), body(&fx)).prop_map(
        |((method, path), query, auth, (content_type, body))| Req {
            method,
            target: format!("{path}{query}"),
            auth,
            content_type,
            body,
        },
    );
    let result = runner(320, &seed).run(&strategy, |req| check(&rt, &sb, &fx, &req));
    report("route fuzz", &seed, result);
    drop(sb);
}

/// A valid request for `endpoint` (so that mutations reach the deeper checks).
fn base_form(endpoint: &str, fx: &Fixture, sb: &Sandbox) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = if endpoint == "/oidc/token" {
        vec![
            ("grant_type", "client_credentials".into()),
            ("scope", "accounts:read transactions:read:all".into()),
            ("sub", fx.users[0].clone()),
        ]
    } else {
        vec![
            ("client_id", sb.client_id().to_string()),
            ("redirect_uri", REDIRECT_URI.into()),
            ("response_type", "code".into()),
            ("scope", format!("openid id:{MOCK}")),
            ("state", "st".into()),
            ("nonce", "n".into()),
            ("prompt", "consent".into()),
            (
                "claims",
                json!({"id_token": {"sub": {"essential": true, "value": fx.users[0]}, "mh:con_id": {"essential": true}}})
                    .to_string(),
            ),
        ]
    };
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A compact JWS with `alg: none` carrying `pairs` as claims (JSON values kept as JSON).
fn request_object(pairs: &[(String, String)], sb: &Sandbox) -> Vec<u8> {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let mut claims = serde_json::Map::new();
    claims.insert("iss".into(), json!(sb.client_id()));
    claims.insert("aud".into(), json!(sb.issuer()));
    for (k, v) in pairs {
        claims.insert(k.clone(), serde_json::from_str(v).unwrap_or_else(|_| json!(v)));
    }
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&Value::Object(claims))).into_bytes()
}

#[test]
fn fuzz_oauth_endpoints_with_random_forms() {
    let rt = runtime();
    let sb = rt.block_on(sandbox());
    let fx = rt.block_on(fixture(&sb));
    let mut seed = seed();
    seed[0] ^= 0x5a;
    let endpoints = pick(
        ["/oidc/token", "/oidc/request", "/oidc/auth", "/request"].iter().map(|s| s.to_string()).collect(),
    );
    // Mostly the client's real credentials, so the parameters get looked at.
    let auth = prop_oneof![4 => Just(7usize), 1 => Just(0usize), 1 => Just(8usize), 1 => Just(1usize)];
    let ct = prop_oneof![
        6 => Just(None::<String>),
        1 => Just(Some("application/jws".to_string())),
        1 => Just(Some("application/json".to_string())),
        1 => Just(Some("text/plain".to_string())),
    ];
    let key =
        prop_oneof![5 => proptest::sample::select(FORM_KEYS).prop_map(String::from), 1 => any::<String>()];
    let overrides = proptest::collection::vec((key, form_value(&fx)), 0..4);
    let removals = proptest::collection::vec(proptest::sample::select(FORM_KEYS), 0..3);
    let strategy = (
        endpoints,
        proptest::bool::weighted(0.8),
        overrides,
        removals,
        auth,
        ct,
        proptest::bool::weighted(0.3),
    );
    let result = runner(150, &seed).run(&strategy, |(target, base, overrides, removals, auth, ct, get)| {
        let mut pairs = if base { base_form(&target, &fx, &sb) } else { Vec::new() };
        pairs.retain(|(k, _)| !removals.contains(&k.as_str()));
        for (k, v) in overrides {
            match pairs.iter_mut().find(|(pk, _)| *pk == k) {
                Some(p) => p.1 = v,
                None => pairs.push((k, v)),
            }
        }
        let encoded = {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &pairs {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let req = if target == "/request" {
            let content_type = Some(ct.unwrap_or_else(|| "application/jws".into()));
            Req { method: "POST".into(), target, auth, content_type, body: request_object(&pairs, &sb) }
        } else if target == "/oidc/auth" && get {
            // GET /oidc/auth takes the same parameters in the query string.
            Req {
                method: "GET".into(),
                target: format!("{target}?{encoded}"),
                auth,
                content_type: None,
                body: vec![],
            }
        } else {
            let content_type = Some(ct.unwrap_or_else(|| "application/x-www-form-urlencoded".into()));
            Req { method: "POST".into(), target, auth, content_type, body: encoded.into_bytes() }
        };
        check(&rt, &sb, &fx, &req)
    });
    report("OAuth fuzz", &seed, result);
    drop(sb);
}

/// The raw client itself: it must see a complete answer as complete, and a cut one as cut.
#[test]
fn the_raw_client_tells_complete_answers_from_cut_ones() {
    let ok = parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\n{\"a\"").unwrap();
    assert_eq!((ok.status, ok.body.as_slice()), (404, &b"{\"a\""[..]));
    assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}").is_err());
    assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-le").is_err());
    let chunked =
        parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").unwrap();
    assert_eq!(chunked.body, b"{}");
    assert!(parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{}").is_err());
}
