//! The run-time context of a command: the client, its clock and manual-sync guard, the output
//! format, and the sandbox it talks to when it is one (embedded in this process, or found at a
//! loopback identity URL).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use moneyhub::guard::{DefaultSyncGuard, GuardRules};
use moneyhub::{Client, ClientAuth, PrivateKey, SigningAlg};
#[cfg(feature = "sandbox")]
use moneyhub_sandbox::kit::{Control, ControlError, NewConnection};
#[cfg(feature = "sandbox")]
use moneyhub_sandbox::{ClockMode, Sandbox, SandboxConfig};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::config::{expand_home, Settings, Target};
use crate::exit::{CmdResult, Failure};
use crate::guard_store::CliGuardStore;
use crate::output::{self, OutputFormat};

/// The instant an embedded sandbox's frozen clock shows: a Wednesday morning in winter
/// (London time = UTC), so that examples and snapshots are the same on every run.
pub fn embedded_epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 9, 0, 0).single().unwrap_or_default()
}

/// Seed of the embedded sandbox's data.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub const EMBEDDED_SEED: u64 = 42;
/// Redirect URI used with an embedded sandbox unless `--redirect-uri` says otherwise.
pub const EMBEDDED_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";
/// `clientUserId` of the embedded sandbox's sample user.
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub const SAMPLE_USER: &str = "sandbox-sample-user";
/// Banks the sample user is connected to: the two open-banking mocks and Aviva (legacy).
#[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
pub const SAMPLE_BANKS: [&str; 3] = [
    "1ffe704d39629a929c8e293880fb449a",
    "b74f1a79f0be8bdb857d82d0f041d7d2",
    "3c4637d3178c9a28ce655bfbf8e27a10",
];

/// The embedded sandbox.
#[cfg(feature = "sandbox")]
pub type EmbeddedSandbox = Sandbox;
/// Without the `sandbox` feature there is no embedded sandbox: no value of this type exists.
#[cfg(not(feature = "sandbox"))]
#[derive(Debug)]
pub enum EmbeddedSandbox {}

/// The time source: the system clock, an embedded sandbox's virtual clock, or a remote
/// sandbox's virtual clock as last read ([`FollowedClock`]).
#[derive(Clone)]
pub enum CliClock {
    /// `Utc::now()`.
    System,
    /// The embedded sandbox's clock.
    #[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
    Embedded(Arc<EmbeddedSandbox>),
    /// A remote sandbox's clock, read at start-up and kept current by
    /// [`Ctx::follow_sandbox_clock`].
    Followed(Arc<FollowedClock>),
}

impl CliClock {
    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            CliClock::System => Utc::now(),
            #[cfg(feature = "sandbox")]
            CliClock::Embedded(s) => s.now(),
            #[cfg(not(feature = "sandbox"))]
            CliClock::Embedded(s) => match **s {},
            CliClock::Followed(c) => c.now(),
        }
    }
}

/// A remote sandbox's virtual clock as this process sees it: the sandbox's time at the last
/// reading of `GET /__sandbox/clock` plus the time elapsed since (on the monotonic clock, so a
/// step of the system clock does not move it), **never earlier than a time it has already
/// answered**.
///
/// Why never earlier: this clock used to be the system clock plus the offset of the last
/// reading (`sandbox now − Utc::now()` when the answer came), which each re-read (every
/// 200 ms, [`Ctx::follow_sandbox_clock`]) moved back by the error of the previous estimate.
/// Against a frozen sandbox that is a sawtooth: each answer is the sandbox's time plus the
/// age of the reading, and each re-read takes it back to the sandbox's time, for good.
/// `mirror run` stamps rows with one answer and compares a later answer with it: a
/// notification was due at the time of the evaluation that wrote it, and a reading taken
/// late in a long interval (the process descheduled for a second on a loaded machine) was
/// ahead of every reading after the next re-read, so the notification was never sent (the
/// flaky CLI test `lifecycle::notifications_survive_sigkill_mid_delivery_postgres`; the
/// mirror now writes notifications due at once, `FIRST_ATTEMPT_MS` in `moneyhub-mirror`'s
/// `db/lifecycle.rs`, since another process's clock may be behind too). A connection
/// `--auto-sync` wants synced is due at `now` and a failed delivery retried at `now` plus
/// its back-off in the same way, so within a process this clock no longer runs backwards,
/// as the sandbox's own never does. Against a frozen sandbox it is ahead of the sandbox's
/// time by at most the longest interval between two readings, as before (ahead by the age
/// of the reading); reading a frozen sandbox's time exactly would make the mirror's manual
/// sync and the sandbox's last automatic one the same instant, which the advice takes for
/// the manual sync's outcome (spec §3 row 10).
#[derive(Debug)]
pub struct FollowedClock {
    state: parking_lot::Mutex<Followed>,
}

#[derive(Debug, Clone, Copy)]
struct Followed {
    /// The sandbox's time at the last reading.
    read: DateTime<Utc>,
    /// When that reading was taken, on this process's monotonic clock.
    at: std::time::Instant,
    /// The latest time this clock has answered.
    latest: DateTime<Utc>,
}

impl FollowedClock {
    /// A clock from a first reading: the sandbox's time was `read` at `at`.
    pub fn new(read: DateTime<Utc>, at: std::time::Instant) -> FollowedClock {
        FollowedClock { state: parking_lot::Mutex::new(Followed { read, at, latest: read }) }
    }

    /// A newer reading: the sandbox's time was `read` at `at`.
    pub fn observe(&self, read: DateTime<Utc>, at: std::time::Instant) {
        let mut s = self.state.lock();
        s.read = read;
        s.at = at;
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.now_at(std::time::Instant::now())
    }

    /// The time at `at` (this process's monotonic clock), never earlier than a time already
    /// answered.
    fn now_at(&self, at: std::time::Instant) -> DateTime<Utc> {
        let mut s = self.state.lock();
        let elapsed =
            Duration::from_std(at.saturating_duration_since(s.at)).unwrap_or_else(|_| Duration::zero());
        let estimate = s.read.checked_add_signed(elapsed).unwrap_or(s.read);
        s.latest = s.latest.max(estimate);
        s.latest
    }
}

/// Reads a sandbox's clock (`GET /__sandbox/clock` at `url`): its time, and when the answer
/// came (the monotonic clock). `None` when it does not answer as a sandbox.
async fn read_sandbox_clock(
    http: &reqwest::Client,
    url: &str,
) -> Option<(DateTime<Utc>, std::time::Instant)> {
    let resp = http.get(url).timeout(StdDuration::from_secs(3)).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body: Value = resp.json().await.ok()?;
    let now = body.get("now").and_then(Value::as_str).and_then(moneyhub_types::time::parse_timestamp)?;
    Some((now, std::time::Instant::now()))
}

/// A sandbox the commands talk to.
#[derive(Clone)]
pub struct SandboxLink {
    /// Its base URL (identity service and `/__sandbox` control API).
    #[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
    pub base_url: String,
    /// Whether it is the embedded sandbox this process runs (`mirror run` wires its webhooks).
    #[cfg_attr(not(feature = "mirror"), allow(dead_code))]
    pub embedded: bool,
    /// A remote sandbox's clock as the client's clock reads it.
    #[cfg_attr(not(feature = "mirror"), allow(dead_code))]
    pub clock: Option<Arc<FollowedClock>>,
}

/// Everything a command needs.
#[derive(Clone)]
pub struct Ctx {
    /// The Moneyhub client.
    pub client: Client,
    /// `--output`.
    pub output: OutputFormat,
    /// The sandbox, when the target is one.
    pub sandbox: Option<SandboxLink>,
    /// Plain HTTP (no redirects followed) for the sandbox's control API and auto-consent.
    pub http: reqwest::Client,
    /// The hosts (`host:port`) of the configured identity and API URLs, named when they
    /// cannot be reached.
    pub hosts: Vec<String>,
}

#[cfg(feature = "sandbox")]
fn plain_http() -> CmdResult<reqwest::Client> {
    plain_http_with(None)
}

/// The HTTP client of the sandbox probe and of the browser the CLI plays, trusting the extra
/// CA certificates (PEM) too.
fn plain_http_with(ca_pem: Option<&[u8]>) -> CmdResult<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(StdDuration::from_secs(60));
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|_| Failure::usage("the CA certificate file holds no usable PEM certificate"))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| Failure::internal(format!("could not build an HTTP client: {e}")))
}

/// What is wrong with a server certificate the client refused, from the TLS stack's words
/// (rustls's `CertificateError` names).
fn certificate_problem(chain: &str) -> Option<&'static str> {
    let problems = [
        ("CaUsedAsEndEntity", "the server presents a certificate authority's certificate as its own"),
        ("UnknownIssuer", "it was issued by a certificate authority this machine does not know"),
        ("NotValidForName", "it is not valid for this host name"),
        ("Expired", "it has expired"),
        ("NotValidYet", "it is not valid yet"),
        ("invalid peer certificate", "the server's certificate was refused"),
    ];
    problems.iter().find(|(word, _)| chain.contains(word)).map(|(_, what)| *what)
}

fn client_error(e: moneyhub::Error, now: DateTime<Utc>) -> Failure {
    Failure::from_client(&e, now)
}

impl Ctx {
    /// Now, on the client's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.client.now()
    }

    /// Maps a client error to a failure (exit code and message). A request that never got an
    /// answer names the host it was for; a TLS certificate the client does not trust says
    /// what is wrong with it and points to `--ca-cert`.
    pub fn fail(&self, e: moneyhub::Error) -> Failure {
        let unreachable =
            matches!(e.kind(), moneyhub::ErrorKind::Transport { .. } | moneyhub::ErrorKind::Timeout { .. });
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push_str(&format!(": {s}"));
            source = s.source();
        }
        let mut failure = client_error(e, self.now());
        if unreachable && !self.hosts.is_empty() {
            let hosts = self.hosts.join(" or ");
            failure.message = match certificate_problem(&chain) {
                Some(problem) => format!(
                    "{}: the TLS certificate of {hosts} is not trusted: {problem}. If the server uses \
                     your own certificate authority, pass its certificate with --ca-cert FILE (or \
                     MONEYHUB_CA_CERT, or ca_cert in the profile)",
                    failure.message
                ),
                None => format!("{} (could not reach {hosts})", failure.message),
            };
        }
        failure
    }

    /// Maps a client error about one user: a 404 names the user and the command that lists
    /// the users.
    pub fn fail_for_user(&self, e: moneyhub::Error, user: &impl std::fmt::Display) -> Failure {
        let not_found = e.status() == Some(404);
        let mut failure = self.fail(e);
        if not_found {
            failure.message = format!(
                "no user {user} for this client ({}); `moneyhub users list` shows the client's users",
                failure.message
            );
        }
        failure
    }

    /// Keeps the client's clock on a remote sandbox's virtual clock for as long as the process
    /// runs (the reading taken at start-up goes stale when the sandbox's clock is moved):
    /// `GET /__sandbox/clock` every 200 ms. For long-running commands (`mirror run`). No-op
    /// for an embedded sandbox (read directly) or no sandbox.
    #[cfg_attr(not(feature = "mirror"), allow(dead_code))]
    pub fn follow_sandbox_clock(&self) {
        let Some(link) = &self.sandbox else { return };
        let Some(clock) = link.clock.clone() else { return };
        let (http, url) = (self.http.clone(), format!("{}/__sandbox/clock", link.base_url));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(StdDuration::from_millis(200)).await;
                if let Some((now, at)) = read_sandbox_clock(&http, &url).await {
                    clock.observe(now, at);
                }
            }
        });
    }

    /// Whether the target is a sandbox (flows can then complete without a browser).
    pub fn is_sandbox(&self) -> bool {
        self.sandbox.is_some()
    }

    /// Whether the sandbox this context talks to serves consent pages for a person
    /// (`sandbox serve --consent interactive`, `GET /__sandbox/consent`). The flows then hand
    /// the authorisation URL to the person (as `--browser` does) instead of playing the
    /// browser themselves, which would spend the single-use request on a page nobody sees.
    /// `false` when the target is not a sandbox or does not say.
    pub async fn sandbox_shows_consent_pages(&self) -> bool {
        let Some(link) = &self.sandbox else { return false };
        let mut request =
            self.http.get(format!("{}/__sandbox/consent", link.base_url)).timeout(StdDuration::from_secs(3));
        if let Ok(token) = std::env::var("MONEYHUB_SANDBOX_CONTROL_TOKEN") {
            request = request.bearer_auth(token);
        }
        let Ok(resp) = request.send().await else { return false };
        if !resp.status().is_success() {
            return false;
        }
        let body: Value = resp.json().await.unwrap_or_default();
        body.get("mode").and_then(Value::as_str) == Some("interactive")
    }

    /// The context for the configured target.
    pub async fn new(global: &GlobalArgs) -> CmdResult<Ctx> {
        match crate::config::resolve(global)? {
            #[cfg(not(feature = "sandbox"))]
            Target::Embedded { notice: true } => Err(crate::exit::Failure::usage(
                "nothing configured (no MONEYHUB_CLIENT_ID, flags or profile), and this build has no \
                 embedded sandbox to fall back on (the `sandbox` feature): set MONEYHUB_CLIENT_ID and \
                 MONEYHUB_CLIENT_SECRET, the flags, or a profile of the config file",
            )),
            Target::Embedded { notice } => {
                if notice {
                    output::warn(
                        "moneyhub: nothing configured (no MONEYHUB_CLIENT_ID, flags or profile): using an embedded sandbox (--sandbox)",
                    );
                }
                let ctx = Ctx::embedded(global, embedded_epoch()).await?;
                #[cfg(feature = "sandbox")]
                ctx.seed_sample_user().await?;
                Ok(ctx)
            }
            Target::Remote(settings) => Ctx::remote(global, &settings).await,
        }
    }

    /// Without the `sandbox` feature there is no embedded sandbox: a clear usage error.
    #[cfg(not(feature = "sandbox"))]
    pub async fn embedded(_global: &GlobalArgs, _epoch: DateTime<Utc>) -> CmdResult<Ctx> {
        Err(crate::commands::missing_feature(
            "sandbox",
            "an embedded sandbox (--sandbox, `demo`, or running with nothing configured)",
        ))
    }

    /// A context on a fresh embedded sandbox whose clock is frozen at `epoch` (no sample user).
    #[cfg(feature = "sandbox")]
    pub async fn embedded(global: &GlobalArgs, epoch: DateTime<Utc>) -> CmdResult<Ctx> {
        let config = SandboxConfig {
            seed: EMBEDDED_SEED,
            clock: ClockMode::Frozen(epoch),
            ..SandboxConfig::default()
        };
        let sandbox = Arc::new(
            moneyhub_sandbox::spawn(config)
                .await
                .map_err(|e| Failure::internal(format!("could not start the embedded sandbox: {e}")))?,
        );
        let clock = CliClock::Embedded(sandbox.clone());
        let redirect = global.redirect_uri.clone().unwrap_or_else(|| EMBEDDED_REDIRECT_URI.to_owned());
        let now_clock = clock.clone();
        let client = Client::builder()
            .identity_url(sandbox.identity_url())
            .api_url(sandbox.api_url_v3())
            .client_id(sandbox.client_id())
            .client_auth(ClientAuth::secret(
                sandbox.client_secret().unwrap_or(moneyhub_sandbox::DEFAULT_CLIENT_SECRET),
            ))
            .redirect_uri(redirect)
            .user_agent(concat!("moneyhub-cli/", env!("CARGO_PKG_VERSION")))
            .clock(move || now_clock.now())
            .sync_guard(DefaultSyncGuard::with_store(GuardRules::default(), CliGuardStore::memory()))
            .build()
            .map_err(|e| client_error(e, epoch))?;
        Ok(Ctx {
            client,
            output: global.output,
            sandbox: Some(SandboxLink {
                base_url: sandbox.base_url().to_owned(),
                embedded: true,
                clock: None,
            }),
            http: plain_http()?,
            hosts: Vec::new(),
        })
    }

    async fn remote(global: &GlobalArgs, s: &Settings) -> CmdResult<Ctx> {
        let (ca_pem, tls_identity) = tls_files(s)?;
        let http = plain_http_with(ca_pem.as_deref())?;
        let identity =
            s.identity_url.as_ref().map_or(moneyhub::config::DEFAULT_IDENTITY_URL, |v| v.value.as_str());
        let auth = client_auth(s, tls_identity.is_some())?;
        let request_object_alg = request_object_alg(s, &auth)?;
        let sandbox_clock = probe_sandbox(&http, identity).await;
        let followed = sandbox_clock.as_ref().map(|(c, _)| c.clone());
        let clock = match &followed {
            Some(c) => CliClock::Followed(c.clone()),
            None => CliClock::System,
        };
        let client_id = s.client_id.as_ref().map(|c| c.value.clone()).unwrap_or_default();
        let store = if sandbox_clock.is_some() {
            // A sandbox's ids and clock restart with it: keep its guard history per process
            // (the sandbox itself answers 429 to a sync that comes too soon).
            CliGuardStore::memory()
        } else {
            CliGuardStore::persistent(identity, &client_id)
        };
        let now_clock = clock.clone();
        let mut builder = Client::builder()
            .identity_url(identity)
            .client_id(client_id)
            .client_auth(auth)
            .user_agent(concat!("moneyhub-cli/", env!("CARGO_PKG_VERSION")))
            .clock(move || now_clock.now())
            .sync_guard(DefaultSyncGuard::with_store(GuardRules::default(), store));
        if let Some(api) = &s.api_url {
            builder = builder.api_url(api.value.clone());
        }
        builder = builder.request_object_signing_alg(request_object_alg);
        if let Some(identity) = tls_identity {
            builder = builder.tls_client_identity(identity);
        }
        if let Some(pem) = ca_pem {
            builder = builder.add_root_certificates_pem(pem);
        }
        let redirect = match &s.redirect_uri {
            Some(r) => Some(r.value.clone()),
            // A sandbox accepts any loopback redirect URI.
            None if sandbox_clock.is_some() => Some(EMBEDDED_REDIRECT_URI.to_owned()),
            None => None,
        };
        if let Some(r) = redirect {
            builder = builder.redirect_uri(r);
        }
        let client = builder.build().map_err(|e| client_error(e, clock.now()))?;
        let sandbox =
            sandbox_clock.map(|(_, base_url)| SandboxLink { base_url, embedded: false, clock: followed });
        let mut hosts: Vec<String> = Vec::new();
        for url in std::iter::once(identity).chain(s.api_url.as_ref().map(|a| a.value.as_str())) {
            if let Some(h) = url::Url::parse(url).ok().and_then(|u| {
                u.host_str()
                    .map(|h| u.port_or_known_default().map_or_else(|| h.to_owned(), |p| format!("{h}:{p}")))
            }) {
                if !hosts.contains(&h) {
                    hosts.push(h);
                }
            }
        }
        Ok(Ctx { client, output: global.output, sandbox, http, hosts })
    }

    /// Creates the embedded sandbox's sample user and its three connections.
    #[cfg(feature = "sandbox")]
    async fn seed_sample_user(&self) -> CmdResult {
        let user = self.client.users().create(Some(SAMPLE_USER)).await.map_err(|e| self.fail(e))?;
        let control = self.control()?;
        for bank in SAMPLE_BANKS {
            let new = NewConnection {
                user_id: user.user_id.to_string(),
                bank_id: bank.to_owned(),
                ..Default::default()
            };
            control.create_connection(&new).await.map_err(control_failure)?;
        }
        Ok(())
    }

    /// The control client of the sandbox this context talks to. Fails when the target is not
    /// a sandbox.
    #[cfg(feature = "sandbox")]
    pub fn control(&self) -> CmdResult<Control> {
        let link = self.sandbox.as_ref().ok_or_else(|| Failure::usage("this needs a sandbox"))?;
        Ok(sandbox_control(&link.base_url, Some(self.http.clone())))
    }
}

/// A control client of the sandbox at `base_url` (through `http` when given), with
/// `MONEYHUB_SANDBOX_CONTROL_TOKEN` as its bearer token when set: a sandbox served beyond
/// loopback (`sandbox serve --control-token`) wants it.
#[cfg(feature = "sandbox")]
pub fn sandbox_control(base_url: &str, http: Option<reqwest::Client>) -> Control {
    let control = Control::new(base_url).with_token(std::env::var("MONEYHUB_SANDBOX_CONTROL_TOKEN").ok());
    match http {
        Some(http) => control.with_http(http),
        None => control,
    }
}

/// A failed control call as a failure: the sandbox's refusals and unexpected answers are API
/// failures (exit 3); a sandbox that cannot be reached says so.
#[cfg(feature = "sandbox")]
pub fn control_failure(e: ControlError) -> Failure {
    match e {
        ControlError::Transport { .. } => Failure::api(format!("{e} (is a sandbox running there?)")),
        _ => Failure::api(e.to_string()),
    }
}

/// Whether a URL's host is a loopback address (or `localhost`).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// When the identity service is on loopback, asks whether it is a sandbox
/// (`GET /__sandbox/clock`) and returns its virtual clock as read then, and its base URL.
///
/// `MONEYHUB_SANDBOX_PROBE=0` turns this off: a loopback sandbox is then treated like Moneyhub
/// itself (flows wait for the browser, the guard history is kept on disk).
async fn probe_sandbox(http: &reqwest::Client, identity: &str) -> Option<(Arc<FollowedClock>, String)> {
    if std::env::var("MONEYHUB_SANDBOX_PROBE").is_ok_and(|v| matches!(v.trim(), "0" | "false" | "no" | "off"))
    {
        return None;
    }
    let base = url::Url::parse(identity).ok()?;
    if !is_loopback(&base) {
        return None;
    }
    let mut url = base.clone();
    let path = url.path().trim_end_matches('/').trim_end_matches("/oidc").to_owned();
    url.set_path(&format!("{path}/__sandbox/clock"));
    let (now, at) = read_sandbox_clock(http, url.as_str()).await?;
    let base_url = format!("{}{}", base.origin().ascii_serialization(), path);
    Some((Arc::new(FollowedClock::new(now, at)), base_url))
}

/// The CA certificate and the TLS client identity the settings name, read from their files.
fn tls_files(s: &Settings) -> CmdResult<(Option<Vec<u8>>, Option<moneyhub::TlsIdentity>)> {
    let read_file = |setting: &crate::config::Setting| {
        std::fs::read(expand_home(&setting.value))
            .map_err(|e| Failure::usage(format!("{} {}: {e}", setting.source, setting.value)))
    };
    let ca_pem = s.ca_cert.as_ref().map(read_file).transpose()?;
    let tls_identity = match (&s.tls_client_cert, &s.tls_client_key) {
        (Some(cert), Some(key)) => {
            let key_pem = String::from_utf8(read_file(key)?)
                .map_err(|_| Failure::usage(format!("{}: the TLS client key is not PEM text", key.source)))?;
            Some(moneyhub::TlsIdentity::from_pem(read_file(cert)?, key_pem))
        }
        _ => None,
    };
    Ok((ca_pem, tls_identity))
}

/// The client's authentication: a secret, a private key (with its algorithm and kid), or a TLS
/// client certificate alone (`has_tls_identity`).
fn client_auth(s: &Settings, has_tls_identity: bool) -> CmdResult<ClientAuth> {
    let auth = match (&s.client_secret, &s.private_key) {
        (Some(secret), _) => ClientAuth::secret(secret.value.clone()),
        (None, Some(key)) => {
            let text = key.value.trim_start();
            let parsed = if text.starts_with('{') || text.starts_with("-----BEGIN") {
                PrivateKey::parse(&key.value)
            } else {
                PrivateKey::from_file(expand_home(&key.value))
            };
            let mut pk =
                parsed.map_err(|e| Failure::usage(format!("private key from {}: {e}", key.source)))?;
            if let Some(setting) = &s.private_key_alg {
                let alg: SigningAlg =
                    setting.value.parse().map_err(|e| Failure::usage(format!("{}: {e}", setting.source)))?;
                pk = pk.with_alg(alg).map_err(|e| Failure::usage(format!("{}: {e}", setting.source)))?;
            }
            if let Some(kid) = &s.private_key_kid {
                pk = pk.with_kid(kid.value.clone());
            }
            ClientAuth::private_key(pk)
        }
        // A client certificate alone: self_signed_tls_client_auth.
        (None, None) if has_tls_identity => ClientAuth::tls(),
        (None, None) => return Err(Failure::usage("no client credentials")),
    };
    Ok(auth)
}

/// The request-object signing algorithm (`none` for unsigned), refused before anything is
/// sent when Moneyhub would refuse it with this authentication.
fn request_object_alg(s: &Settings, auth: &ClientAuth) -> CmdResult<Option<SigningAlg>> {
    let request_object_alg = match &s.request_object_alg {
        None => None,
        Some(setting) if setting.value.eq_ignore_ascii_case("none") => None,
        Some(setting) => Some(
            setting
                .value
                .parse::<SigningAlg>()
                .map_err(|e| Failure::usage(format!("{}: {e}", setting.source)))?,
        ),
    };
    // Combinations Moneyhub would refuse are usage errors before anything is sent (the
    // sandbox probe included).
    if let (Some(alg), Some(setting)) = (request_object_alg, &s.request_object_alg) {
        match auth {
            ClientAuth::PrivateKey(pk) if pk.key_type() != alg.key_type() => {
                return Err(Failure::usage(format!(
                    "{}: request objects signed with {alg} need {}, but the private key is {}",
                    setting.source,
                    alg.key_type(),
                    pk.key_type()
                )))
            }
            ClientAuth::PrivateKey(_) => {}
            other => {
                return Err(Failure::usage(format!(
                    "{}: a request-object algorithm ({alg}) needs a private key (--private-key), but the client uses {}",
                    setting.source,
                    other.method()
                )))
            }
        }
    }
    Ok(request_object_alg)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration as Std, Instant};

    use super::*;

    fn ms(n: u64) -> Std {
        Std::from_millis(n)
    }

    fn plus(t: DateTime<Utc>, n: i64) -> DateTime<Utc> {
        t + Duration::milliseconds(n)
    }

    /// The flaky `mirror run` notification: against a frozen sandbox, a time answered late in
    /// a long interval between readings is never later than the answers after the next ones.
    #[test]
    fn a_frozen_sandbox_clock_never_runs_backwards() {
        let t0 = Instant::now();
        let frozen = embedded_epoch() + Duration::hours(47);
        let clock = FollowedClock::new(frozen, t0);
        assert_eq!(clock.now_at(t0 + ms(150)), plus(frozen, 150));
        // The process stalls for a second: the lifecycle loop's evaluation reads the clock
        // just before the overdue re-read answers; the re-reads go on every 200 ms.
        let evaluated = clock.now_at(t0 + ms(1007));
        assert_eq!(evaluated, plus(frozen, 1007));
        clock.observe(frozen, t0 + ms(1009));
        let mut later = Vec::new();
        for n in 0..50 {
            let at = t0 + ms(1010 + n * 100);
            later.push(clock.now_at(at));
            if n % 2 == 0 {
                clock.observe(frozen, at);
            }
        }
        assert!(
            later.iter().all(|t| *t >= evaluated),
            "the clock ran backwards after {evaluated}: {later:?}"
        );
        // Ahead of the frozen sandbox by the longest interval between readings, no more.
        assert_eq!(later.last(), Some(&evaluated));
        // The sandbox's clock moved (an advance): so does this one.
        clock.observe(frozen + Duration::days(1), t0 + ms(6000));
        assert_eq!(clock.now_at(t0 + ms(6100)), plus(frozen + Duration::days(1), 100));
    }

    #[test]
    fn a_running_sandbox_clock_runs_on_and_never_backwards() {
        let t0 = Instant::now();
        let start = embedded_epoch();
        let clock = FollowedClock::new(start, t0);
        assert_eq!(clock.now_at(t0 + ms(300)), plus(start, 300));
        // A re-read whose answer puts the sandbox's time a little behind this estimate (the
        // request's time in flight): the clock holds still until it catches up.
        clock.observe(plus(start, 250), t0 + ms(290));
        assert_eq!(clock.now_at(t0 + ms(295)), plus(start, 300));
        assert_eq!(clock.now_at(t0 + ms(400)), plus(start, 360));
        // An instant taken before the reading it is compared with counts as no time elapsed.
        assert_eq!(clock.now_at(t0), plus(start, 360));
    }
}
