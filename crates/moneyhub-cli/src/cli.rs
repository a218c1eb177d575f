//! Command-line grammar.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::output::OutputFormat;

/// Moneyhub's Open Finance API from a terminal: users, connections and their health,
/// transactions, and a local sandbox.
///
/// Configuration comes from the flags below, then MONEYHUB_* environment variables, then a
/// profile of the config file ($MONEYHUB_CONFIG or ~/.config/moneyhub/config.toml). With
/// nothing configured, commands run against an embedded sandbox (as with --sandbox).
#[derive(Debug, Parser)]
#[command(name = "moneyhub", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command (accepted before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: table (for people) or json (stable, for scripts); `mirror actions` and
    /// `mirror history` also print csv.
    #[arg(long = "output", short = 'o', global = true, value_enum, default_value_t, help_heading = "Output")]
    pub output_arg: OutputArg,
    /// The output format every command prints (`--output` without `csv`; set by the dispatch
    /// from [`GlobalArgs::output_arg`]).
    #[arg(skip)]
    pub output: OutputFormat,
    /// Format of the log lines on stderr: text or json (one object per line). The servers
    /// (`sandbox serve`, `mirror run`) log at info by default; MONEYHUB_LOG or RUST_LOG (a
    /// tracing filter such as `debug` or `moneyhub_mirror=debug`) choose what is logged
    /// [env: MONEYHUB_LOG_FORMAT].
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "MONEYHUB_LOG_FORMAT",
        hide_env = true,
        help_heading = "Output"
    )]
    pub log_format: LogFormat,
    /// Run against an embedded, seeded sandbox started inside this process (127.0.0.1 only,
    /// frozen clock at 2025-01-15 09:00 UTC, one sample user with three connections).
    #[arg(long, global = true, help_heading = "Connection")]
    pub sandbox: bool,
    /// Profile of the config file to use [env: MONEYHUB_PROFILE].
    #[arg(long, global = true, value_name = "NAME", help_heading = "Connection")]
    pub profile: Option<String>,
    /// The config file [env: MONEYHUB_CONFIG] [default: ~/.config/moneyhub/config.toml].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub config: Option<PathBuf>,
    /// Identity service URL [env: MONEYHUB_IDENTITY_URL] [default: production].
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection")]
    pub identity_url: Option<String>,
    /// Data API URL, ending in /v3 or /v2.0 [env: MONEYHUB_API_URL] [default: production v3].
    #[arg(long, global = true, value_name = "URL", help_heading = "Connection")]
    pub api_url: Option<String>,
    /// API client id [env: MONEYHUB_CLIENT_ID].
    #[arg(long, global = true, value_name = "ID", help_heading = "Connection")]
    pub client_id: Option<String>,
    /// Client secret, for client_secret_basic [env: MONEYHUB_CLIENT_SECRET]. Prefer the
    /// environment or a profile: flags show up in process listings.
    #[arg(long, global = true, value_name = "SECRET", help_heading = "Connection")]
    pub client_secret: Option<String>,
    /// Private key for private_key_jwt: a file, or an inline JWK or PEM
    /// [env: MONEYHUB_PRIVATE_KEY].
    #[arg(long, global = true, value_name = "KEY", help_heading = "Connection")]
    pub private_key: Option<String>,
    /// Redirect URI of the authorisation flows; a loopback http URI is listened on for the
    /// callback [env: MONEYHUB_REDIRECT_URI].
    #[arg(long, id = "redirect_uri", global = true, value_name = "URI", help_heading = "Connection")]
    pub redirect_uri: Option<String>,
    /// Request-object signing algorithm registered for the client: none (default), RS256,
    /// RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512; a signed one needs the
    /// private key [env: MONEYHUB_REQUEST_OBJECT_ALG].
    #[arg(long, global = true, value_name = "ALG", help_heading = "Connection")]
    pub request_object_alg: Option<String>,
    /// TLS client certificate (PEM file): alone, self_signed_tls_client_auth; beside a
    /// secret or private key, presented for certificate-bound tokens
    /// [env: MONEYHUB_TLS_CLIENT_CERT].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub tls_client_cert: Option<String>,
    /// The private key (PEM file) of --tls-client-cert [env: MONEYHUB_TLS_CLIENT_KEY].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub tls_client_key: Option<String>,
    /// Extra CA certificate(s) (PEM file) trusted for the servers [env: MONEYHUB_CA_CERT].
    #[arg(long, global = true, value_name = "FILE", help_heading = "Connection")]
    pub ca_cert: Option<String>,
}

/// The values of the global `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputArg {
    /// Aligned columns for people.
    #[default]
    Table,
    /// Stable JSON for scripts.
    Json,
    /// Comma-separated values with a header (`mirror actions`, `mirror history` only).
    Csv,
}

impl OutputArg {
    /// The format of commands that have no CSV (`csv` never reaches them: the dispatch refuses
    /// it first).
    pub fn format(self) -> OutputFormat {
        match self {
            OutputArg::Json => OutputFormat::Json,
            OutputArg::Table | OutputArg::Csv => OutputFormat::Table,
        }
    }
}

/// Top-level commands.
// Parsed once per process: the size of the largest variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local Moneyhub sandbox.
    Sandbox {
        /// What to do with it.
        #[command(subcommand)]
        command: SandboxCommand,
        /// The running sandbox the control commands drive (before or after the subcommand:
        /// `moneyhub sandbox --sandbox-url URL clock show` as well as `… clock show
        /// --sandbox-url URL`).
        #[command(flatten)]
        target: SandboxTarget,
    },
    /// List the providers (banks) a connection can be made to.
    Catalog(CatalogArgs),
    /// Create, show, list and delete users.
    Users {
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Connect a user to a bank through the authorisation flow.
    Connect(ConnectArgs),
    /// Re-authenticate a connection with the bank (expired consent without tppConsent,
    /// credentials_error; the connection id may change).
    Reauth(RenewArgs),
    /// Refresh a legacy connection that needs the user's input (MFA).
    Refresh(RenewArgs),
    /// Renew a connection's consent without going back to the bank (needs tppConsent).
    Reconsent(ReconsentArgs),
    /// List, inspect, sync and delete a user's connections.
    Connections {
        /// What to do.
        #[command(subcommand)]
        command: ConnectionsCommand,
    },
    /// Advise what to do about connections: sync, reauth, reconsent, refresh, remove...
    Doctor(DoctorArgs),
    /// Read transactions by id or list them with filters.
    Transactions {
        /// What to do.
        #[command(subcommand)]
        command: TransactionsCommand,
    },
    /// A narrated tour of the connection lifecycle on an embedded sandbox (a few seconds).
    Demo(DemoArgs),
    /// Show Moneyhub auth requests (the Auth Requests API; `connect --via auth-request`
    /// makes them).
    AuthRequests {
        /// What to do.
        #[command(subcommand)]
        command: AuthRequestsCommand,
    },
    /// A local mirror of transactions kept current from webhooks (SQLite or PostgreSQL).
    #[cfg(feature = "mirror")]
    Mirror {
        /// What to do.
        #[command(subcommand)]
        command: MirrorCommand,
    },
    /// A local mirror of transactions (not in this build: it needs the `mirror` feature).
    #[cfg(not(feature = "mirror"))]
    #[command(disable_help_flag = true)]
    Mirror {
        /// Ignored: the command is not in this build.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Print a shell completion script to stdout (e.g. `moneyhub completions bash >
    /// ~/.local/share/bash-completion/completions/moneyhub`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) to stdout (`moneyhub man | man -l -`), or write one page per
    /// command into a directory with --out-dir.
    Man(ManArgs),
    /// Probe a server's health endpoint (for a container's HEALTHCHECK, which has no curl):
    /// exit 0 when it answers 2xx within the timeout, 1 otherwise.
    Healthcheck(HealthcheckArgs),
}

/// `moneyhub healthcheck` arguments.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The URL to probe, such as http://127.0.0.1:8090/healthz [env:
    /// MONEYHUB_HEALTHCHECK_URL, which the container image sets].
    #[arg(value_name = "URL", env = "MONEYHUB_HEALTHCHECK_URL", hide_env = true)]
    pub url: String,
    /// Give up after this many seconds (1 to 300).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

/// `moneyhub completions` arguments.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `moneyhub man` arguments.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `moneyhub.1` and a page per subcommand (`moneyhub-users-get.1`, …) into this
    /// directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `moneyhub auth-requests ...`
#[derive(Debug, Subcommand)]
pub enum AuthRequestsCommand {
    /// List auth requests, oldest first.
    List {
        /// At most this many (default: all of them).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Show one auth request.
    Get {
        /// The auth request id.
        #[arg(long, value_name = "ID")]
        id: String,
    },
}

/// `moneyhub sandbox ...`
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a sandbox (loopback by default) until stopped (Ctrl-C or SIGTERM).
    Serve(ServeArgs),
    /// Show or move a running sandbox's virtual clock.
    Clock {
        /// What to do with it.
        #[command(subcommand)]
        command: ClockCommand,
    },
    /// Deliver a synthetic webhook event now (to the sandbox's webhook target).
    Trigger(TriggerArgs),
    /// Script a connection's state.
    Connection {
        /// What to do.
        #[command(subcommand)]
        command: SandboxConnectionCommand,
    },
    /// Add, list and clear fault rules (errors, latency, dropped connections on the public
    /// routes).
    Faults {
        /// What to do.
        #[command(subcommand)]
        command: FaultsCommand,
    },
    /// The webhook delivery log, oldest first (`deliveries resend N` delivers one again).
    Deliveries(DeliveriesArgs),
    /// Set, show or clear where the sandbox sends webhooks.
    Webhooks {
        /// What to do.
        #[command(subcommand)]
        command: WebhooksCommand,
    },
    /// Print each webhook delivery as it happens (event, user, ids, outcome) until stopped;
    /// with --forward-to, the sandbox delivers to that URL meanwhile (the previous target is
    /// put back on exit).
    Listen(ListenArgs),
    /// The sandbox's request log: method, path, status.
    Logs {
        /// What to do.
        #[command(subcommand)]
        command: LogsCommand,
    },
    /// Put the sandbox back in its seeded state (clock, users, connections, faults, webhook
    /// target and deliveries; a scenario it was started with is loaded again).
    Reset,
    /// Load a scenario file (TOML, or JSON when it ends in .json): the clock, users and
    /// their connections in given states, webhooks, faults.
    Load(LoadArgs),
}

/// Which running sandbox the control commands drive. Its control token, when it has one,
/// comes from MONEYHUB_SANDBOX_CONTROL_TOKEN.
#[derive(Debug, Args)]
pub struct SandboxTarget {
    /// The sandbox's URL [env: MONEYHUB_SANDBOX_URL] [default: the configured identity URL,
    /// as --identity-url, MONEYHUB_IDENTITY_URL or the profile give it].
    #[arg(long, global = true, env = "MONEYHUB_SANDBOX_URL", hide_env = true, value_name = "URL")]
    pub sandbox_url: Option<String>,
}

/// `moneyhub sandbox clock ...`
#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// The virtual time and whether the clock is frozen.
    Show,
    /// Move the clock on (running every sync, history fetch and reminder that falls due):
    /// a duration such as 90m, 36h, 3d or 1d12h, or an instant (RFC 3339) to move to.
    Advance {
        /// How far, or to when.
        #[arg(value_name = "DURATION|TIME")]
        by: String,
    },
    /// Stop the clock.
    Freeze,
    /// Let the clock follow the wall clock again from its reading.
    Resume,
}

/// `moneyhub sandbox trigger` arguments.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The event type (newTransactions, syncComplete, deletedAccount, ...: any name).
    #[arg(value_name = "EVENT_TYPE")]
    pub event_type: String,
    /// The user the event is about.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
    /// A JSON file with the event's payload; `-` reads stdin. Default: the payload Moneyhub
    /// would send, built by the sandbox from the user's real accounts, transactions and
    /// connections (aimed with --connection and --account).
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// The connection a default payload names (an id or a unique prefix).
    #[arg(long, value_name = "CONNECTION", conflicts_with = "payload")]
    pub connection: Option<String>,
    /// The account a default payload names (an id or a unique prefix).
    #[arg(long, value_name = "ACCOUNT", conflicts_with = "payload")]
    pub account: Option<String>,
}

/// `moneyhub sandbox webhooks ...`
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Send webhooks to URL (a loopback URL unless the sandbox allows remote ones).
    Set {
        /// The receiver, such as http://127.0.0.1:8080/webhooks (`moneyhub mirror run`).
        #[arg(value_name = "URL")]
        url: String,
        /// Signed JWTs (what Moneyhub sends; `mirror run` needs them) or plain JSON [default:
        /// the sandbox's].
        #[arg(long, value_enum)]
        format: Option<WebhookFormatArg>,
    },
    /// Where webhooks go.
    Show,
    /// Stop sending webhooks (events are no longer recorded).
    Clear,
}

/// `--format` of `sandbox webhooks set` and `sandbox listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormatArg {
    /// Signed JWTs (`application/jwt`), as Moneyhub sends them.
    Jwt,
    /// Unsigned JSON.
    Json,
}

impl WebhookFormatArg {
    /// The control API's name.
    #[cfg_attr(not(feature = "sandbox"), allow(dead_code))]
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormatArg::Jwt => "jwt",
            WebhookFormatArg::Json => "json",
        }
    }
}

/// `moneyhub sandbox listen` arguments.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Have the sandbox deliver to this URL while listening.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// The format of the forwarded webhooks.
    #[arg(long, value_enum, default_value = "jwt", requires = "forward_to")]
    pub format: WebhookFormatArg,
    /// Stop after this many deliveries (default: at Ctrl-C or SIGTERM).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

/// `moneyhub sandbox logs ...`
#[derive(Debug, Subcommand)]
pub enum LogsCommand {
    /// The latest requests; with --follow, then each new one as it comes.
    Tail {
        /// Keep printing new requests until stopped.
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many of the latest requests to show first (1 to 10000).
        #[arg(long, short = 'n', value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        lines: u64,
        /// Also show each request's body (the sandbox keeps its first 4 KiB, with client
        /// secrets, assertions, tokens, codes and passwords redacted).
        #[arg(long)]
        bodies: bool,
    },
}

/// `moneyhub sandbox connection ...`
#[derive(Debug, Subcommand)]
pub enum SandboxConnectionCommand {
    /// Put a connection in a state: healthy, failing, mfa-due, credentials-rejected,
    /// consent-ending (--days until), consent-lapsed (--days since, default 100) or
    /// provider-withdrawn (every connection to its bank).
    Set(ConnectionSetArgs),
}

/// How `sandbox serve` obtains consent at `/oidc/auth` (the grammar builds without the
/// `sandbox` feature, so it has its own enum; `commands/sandbox/serve.rs` maps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Consent {
    /// Redirect at once with a code (programs and tests).
    #[default]
    Instant,
    /// Consent pages a person clicks through in a browser.
    Interactive,
}

/// A connection's scripted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScriptedState {
    /// Syncs succeed.
    Healthy,
    /// Every sync from the next one fails (with --since: failing already, since then).
    Failing,
    /// Syncs ask for MFA.
    MfaDue,
    /// Syncs fail with credentials-error.
    CredentialsRejected,
    /// The consent ends in --days days.
    ConsentEnding,
    /// The consent ended --days days ago (tppConsent false from 90).
    ConsentLapsed,
    /// The provider is withdrawn for good.
    ProviderWithdrawn,
}

/// `moneyhub sandbox connection set` arguments.
#[derive(Debug, Args)]
pub struct ConnectionSetArgs {
    /// The connection id.
    #[arg(value_name = "CONNECTION")]
    pub connection: String,
    /// The state.
    #[arg(value_enum, value_name = "STATE")]
    pub state: ScriptedState,
    /// consent-ending: days until the consent ends; consent-lapsed: days since it ended.
    #[arg(long, value_name = "N")]
    pub days: Option<i64>,
    /// failing: since when (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// The provider allows one fetch only (its data goes stale): true or false.
    #[arg(long, value_name = "BOOL")]
    pub single_sync_only: Option<bool>,
}

/// `moneyhub sandbox faults ...`
#[derive(Debug, Subcommand)]
pub enum FaultsCommand {
    /// Add a rule: requests whose path starts with PATH get an error (503 unless --status),
    /// a delay, a dropped connection or a malformed body.
    Add(FaultAddArgs),
    /// The rules, with how often each matched and fired.
    List,
    /// Remove every rule.
    Clear,
}

/// `moneyhub sandbox faults add` arguments.
#[derive(Debug, Args)]
pub struct FaultAddArgs {
    /// The path (a prefix unless --exact; `*` matches one segment), e.g. /v3/transactions.
    #[arg(value_name = "PATH")]
    pub path: String,
    /// Only this method.
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Match the whole path only.
    #[arg(long)]
    pub exact: bool,
    /// Answer with this status (400 to 599).
    #[arg(long, value_name = "CODE")]
    pub status: Option<u16>,
    /// The error body's code.
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,
    /// The error body's message.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Retry-After, seconds.
    #[arg(long, value_name = "SECS")]
    pub retry_after: Option<u64>,
    /// Delay every matching request by this many milliseconds.
    #[arg(long, value_name = "MS")]
    pub latency: Option<u64>,
    /// Drop the connection without answering.
    #[arg(long)]
    pub drop: bool,
    /// Answer 200 with a body that is not JSON.
    #[arg(long)]
    pub malformed: bool,
    /// Share of matching requests it fires on (0 to 1).
    #[arg(long, value_name = "P")]
    pub rate: Option<f64>,
    /// Fire this many times, then stop.
    #[arg(long, value_name = "N")]
    pub times: Option<u64>,
}

/// `moneyhub sandbox deliveries` arguments.
#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// `resend N`: deliver the event of delivery N again.
    #[command(subcommand)]
    pub command: Option<DeliveriesCommand>,
    /// Only attempts after this sequence number.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub after: u64,
    /// At most this many (1 to 100000).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: u64,
}

/// `moneyhub sandbox deliveries ...`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Deliver the event of delivery N again, as it was (same webhook id and payload), to
    /// the current target.
    Resend {
        /// The delivery's number (`#` in `moneyhub sandbox deliveries`).
        #[arg(value_name = "N")]
        seq: u64,
    },
}

/// `moneyhub sandbox load` arguments.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The scenario file (examples/scenarios/ten-connections.toml shows every part).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Reset the sandbox first (needed when the scenario's clock starts before the
    /// sandbox's time).
    #[arg(long)]
    pub reset: bool,
}

/// `moneyhub sandbox serve` flags. Every flag can also come from a `MONEYHUB_SANDBOX_*`
/// environment variable (a flag given on the command line wins).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address needs --control-token.
    #[arg(long, env = "MONEYHUB_SANDBOX_HOST", default_value = "127.0.0.1", value_name = "IP")]
    pub host: std::net::IpAddr,
    /// Port to listen on. 0 picks a free one.
    #[arg(long, env = "MONEYHUB_SANDBOX_PORT", default_value_t = 8700)]
    pub port: u16,
    /// The URL clients reach the sandbox at, when it is not http://HOST:PORT (in a container:
    /// http://sandbox:8700). Discovery, the issuer and redirects use it.
    #[arg(long, env = "MONEYHUB_SANDBOX_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Every control request (/__sandbox/...) must carry this as a bearer token. Required
    /// when --host is not a loopback address.
    #[arg(long, env = "MONEYHUB_SANDBOX_CONTROL_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub control_token: Option<String>,
    /// Allow webhook targets that are not on a loopback address.
    #[arg(long, env = "MONEYHUB_SANDBOX_ALLOW_REMOTE_WEBHOOKS")]
    pub allow_remote_webhooks: bool,
    /// How /oidc/auth obtains consent: `instant` (redirect at once, for programs and tests) or
    /// `interactive` (consent pages a person clicks through in a browser).
    #[arg(long, env = "MONEYHUB_SANDBOX_CONSENT", value_enum, default_value_t = Consent::Instant, value_name = "MODE")]
    pub consent: Consent,
    /// On SIGTERM or SIGINT: seconds allowed for the requests in flight before exiting.
    #[arg(long, env = "MONEYHUB_SANDBOX_SHUTDOWN_TIMEOUT", default_value_t = 10, value_name = "SECS")]
    pub shutdown_timeout: u64,
    /// Seed of all generated data: same seed, same data.
    #[arg(long, env = "MONEYHUB_SANDBOX_SEED", default_value_t = 42)]
    pub seed: u64,
    /// The registered client's id.
    #[arg(long, env = "MONEYHUB_SANDBOX_CLIENT_ID", default_value = "sandbox-client")]
    pub client_id: String,
    /// The registered client's secret (client_secret_basic).
    #[arg(
        long,
        env = "MONEYHUB_SANDBOX_CLIENT_SECRET",
        hide_env_values = true,
        hide_default_value = false,
        default_value = "sandbox-secret"
    )]
    pub client_secret: String,
    /// A JSON file with the client's public JWK set, for private_key_jwt and signed request
    /// objects.
    #[arg(long, env = "MONEYHUB_SANDBOX_CLIENT_JWKS", value_name = "FILE")]
    pub client_jwks: Option<PathBuf>,
    /// Algorithm request objects (and jwt-bearer assertions) must be signed with: none,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or ES512 (default: the alg of
    /// the first key of --client-jwks, else RS256 with --client-jwks, else none). A signed
    /// algorithm makes PAR refuse plain parameters.
    #[arg(long, env = "MONEYHUB_SANDBOX_REQUEST_OBJECT_ALG", value_name = "ALG")]
    pub request_object_alg: Option<String>,
    /// Serve HTTPS on the same port with this certificate chain (PEM, leaf first).
    #[arg(long, env = "MONEYHUB_SANDBOX_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "MONEYHUB_SANDBOX_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Register this self-signed client certificate (PEM) for self_signed_tls_client_auth:
    /// the token and PAR endpoints then require it, and access tokens are bound to it.
    /// Needs --tls-cert and --tls-key.
    #[arg(long, env = "MONEYHUB_SANDBOX_CLIENT_CERT", value_name = "FILE", requires = "tls_cert")]
    pub client_cert: Option<PathBuf>,
    /// A registered redirect URI (repeatable; in the environment, comma-separated). Without
    /// any, every loopback http URL is accepted.
    #[arg(
        long = "redirect-uri",
        id = "redirect_uri",
        env = "MONEYHUB_SANDBOX_REDIRECT_URIS",
        value_delimiter = ',',
        value_name = "URI"
    )]
    pub redirect_uris: Vec<String>,
    /// Where webhooks are delivered.
    #[arg(long, env = "MONEYHUB_SANDBOX_WEBHOOK_URL", value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Webhook format: json or jwt.
    #[arg(long, env = "MONEYHUB_SANDBOX_WEBHOOK_FORMAT", default_value = "json", value_name = "FORMAT")]
    pub webhook_format: String,
    /// A scenario file loaded at start and again after every reset (TOML, or JSON when it
    /// ends in .json; examples/scenarios/ten-connections.toml shows every part).
    #[arg(long, env = "MONEYHUB_SANDBOX_SCENARIO", value_name = "FILE")]
    pub scenario: Option<PathBuf>,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which provider catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CatalogType {
    /// Every provider available to the client.
    #[default]
    All,
    /// Open-banking (API) providers.
    Api,
    /// Screen-scraping (legacy) providers.
    Legacy,
    /// Providers supporting payments.
    Payments,
    /// Mock providers for development.
    Test,
}

/// `moneyhub catalog` flags.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// Which catalogue.
    #[arg(long = "type", value_enum, default_value_t)]
    pub kind: CatalogType,
}

/// `moneyhub users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Create {
        /// Your own id for the user (1 to 256 characters).
        #[arg(long, value_name = "ID")]
        client_user_id: Option<String>,
    },
    /// Show a user.
    Get {
        /// The user id.
        #[arg(long, short = 'u', value_name = "USER")]
        user: String,
    },
    /// List the client's users.
    List {
        /// At most this many users (default: all of them).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Delete a user with all their connections and data.
    Delete {
        /// The user id.
        #[arg(long, short = 'u', value_name = "USER")]
        user: String,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// How an authorisation flow is completed.
#[derive(Debug, Args)]
pub struct FlowArgs {
    /// On a sandbox, go through the browser steps too (print the URL and wait for the
    /// callback) instead of completing the flow automatically.
    #[arg(long)]
    pub browser: bool,
    /// How long to wait for the callback, in seconds (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,
    /// How the authorisation is made: par (the client pushes the request and exchanges the
    /// code) or auth-request (Moneyhub's Auth Requests API builds the URL and exchanges the
    /// code).
    #[arg(long, value_enum, default_value_t)]
    pub via: Via,
}

/// How an authorisation flow is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Via {
    /// A pushed authorisation request and the client's own code exchange.
    #[default]
    Par,
    /// The Auth Requests API (`POST /auth-requests`, then `PATCH` with the callback).
    AuthRequest,
}

/// `moneyhub connect` flags.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The user to connect. Without it: one-time access (Moneyhub makes a user during
    /// consent, and the command says which).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// The provider: its bank id, or its name or bankRef as in `moneyhub catalog`.
    #[arg(long, short = 'b', value_name = "BANK", required_unless_present = "choose")]
    pub bank: Option<String>,
    /// Let the person pick the bank in the bank chooser instead (`id:all`, `id:api`,
    /// `id:legacy` or `id:test` scope; default all).
    #[arg(long, value_enum, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all", conflicts_with = "bank")]
    pub choose: Option<BankGroup>,
    /// Asynchronous connection: the exchange returns before the first fetch, which is then
    /// waited for.
    #[arg(long = "async")]
    pub enable_async: bool,
    /// How the flow is completed.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// The group of banks `connect --choose` offers in the chooser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BankGroup {
    /// Every provider.
    All,
    /// Open-banking providers.
    Api,
    /// Screen-scraping providers.
    Legacy,
    /// Test (mock) providers.
    Test,
}

impl BankGroup {
    /// The group's name in the `id:<group>` scope.
    pub fn scope_name(self) -> &'static str {
        match self {
            BankGroup::All => "all",
            BankGroup::Api => "api",
            BankGroup::Legacy => "legacy",
            BankGroup::Test => "test",
        }
    }
}

/// `moneyhub reauth|refresh` flags.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
    /// The connection: its id, or the short id tables show.
    #[arg(long, short = 'c', value_name = "CONNECTION")]
    pub connection: String,
    /// How the flow is completed.
    #[command(flatten)]
    pub flow: FlowArgs,
}

/// `moneyhub reconsent` flags.
#[derive(Debug, Args)]
pub struct ReconsentArgs {
    /// User, connection and flow.
    #[command(flatten)]
    pub renew: RenewArgs,
    /// The new consent expiry (RFC 3339, at most 90 days ahead; default: Moneyhub's, 90 days).
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
}

/// Selects one connection of a user.
#[derive(Debug, Args)]
pub struct ConnectionRef {
    /// The user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
    /// The connection: its id, or the short id tables show.
    #[arg(long, short = 'c', value_name = "CONNECTION")]
    pub connection: String,
}

/// `moneyhub connections ...`
#[derive(Debug, Subcommand)]
pub enum ConnectionsCommand {
    /// List a user's connections.
    List {
        /// The user.
        #[arg(long, short = 'u', value_name = "USER")]
        user: String,
    },
    /// Show one connection.
    Get(ConnectionRef),
    /// Show a connection's health and its latest syncs.
    Status(ConnectionRef),
    /// Start a manual sync (at most one every 30 minutes per connection).
    Sync {
        /// The connection.
        #[command(flatten)]
        target: ConnectionRef,
        /// Wait until the sync has finished (a spinner shows on a terminal).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, in seconds (1 to 86400).
        #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: u64,
    },
    /// Delete a connection with its accounts and transactions.
    Delete {
        /// The connection.
        #[command(flatten)]
        target: ConnectionRef,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `moneyhub doctor` flags.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["user", "all_users", "from_file", "mirror"])))]
pub struct DoctorArgs {
    /// Answer from a mirror's database (kept current by `mirror run`), with no API request
    /// (with --user: that user's connections only).
    #[arg(long, value_name = "DB", conflicts_with_all = ["all_users", "from_file"])]
    pub mirror: Option<String>,
    /// One user's connections (and their account types, for staleness).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Every user of the client, with bounded concurrency (account types are not fetched:
    /// one token request in all and one list request per user).
    #[arg(long, conflicts_with_all = ["user", "from_file"])]
    pub all_users: bool,
    /// A saved body of GET /users/{id}/connections (or a bare array); `-` reads stdin.
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub from_file: Option<PathBuf>,
    /// With --from-file: a saved body of GET /accounts, for the account types.
    #[arg(long, value_name = "FILE", requires = "from_file", conflicts_with_all = ["user", "all_users"])]
    pub accounts_file: Option<PathBuf>,
    /// Advise as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// With --all-users: how many users are examined at once (1 to 1024).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// Only connections that need an action (not `none`).
    #[arg(long)]
    pub actionable: bool,
}

/// `moneyhub transactions ...`
#[derive(Debug, Subcommand)]
pub enum TransactionsCommand {
    /// Read transactions by id (any number; fetched 50 at a time). JSON:
    /// {"data": [...], "missing": [...]}.
    #[command(group(ArgGroup::new("which").required(true).args(["ids", "ids_file"])))]
    Get {
        /// The user.
        #[arg(long, short = 'u', value_name = "USER")]
        user: String,
        /// Comma-separated transaction ids.
        #[arg(long, value_name = "IDS", value_delimiter = ',')]
        ids: Vec<String>,
        /// A file of transaction ids (whitespace, comma or newline separated, or a JSON
        /// array); `-` reads stdin.
        #[arg(long, value_name = "FILE")]
        ids_file: Option<PathBuf>,
    },
    /// List transactions, newest first, following every page.
    List {
        /// The user.
        #[arg(long, short = 'u', value_name = "USER")]
        user: String,
        /// On or after this day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// On or before this day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Only this account.
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
        /// Only this category (std:… or cus:…).
        #[arg(long, value_name = "CATEGORY")]
        category: Option<String>,
        /// Only transactions whose descriptions or notes contain this text.
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
        /// At most this many transactions (default: all).
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
}

/// `moneyhub demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {}

// ----- `moneyhub mirror` (feature `mirror`) ---------------------------------------------------

/// `moneyhub mirror ...`
#[cfg(feature = "mirror")]
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Receive webhooks and apply them until stopped (Ctrl-C): the receiver answers at
    /// once, workers apply events in order per user and reconcile after each sync.
    Run(RunArgs),
    /// List every transaction of connections never fully listed yet (all of them with
    /// --force), with a progress bar.
    Backfill(ScopeArgs),
    /// Compare every connection with Moneyhub and fix the mirror: upsert what differs, bury
    /// what Moneyhub no longer has, purge removed connections.
    Reconcile(ScopeArgs),
    /// Totals, inbox depth and lag, last event, and the first users (pending events first,
    /// oldest first; then by latest event): read from kept counts, cheap at any size.
    Status(StatusArgs),
    /// Write the mirrored transactions as CSV or JSON.
    Export(ExportArgs),
    /// Put events parked after repeated failures back in the queue (everyone's, or one
    /// user's), attempts reset, for `mirror run` to apply once the cause is fixed.
    Retry(RetryArgs),
    /// The current advice per connection, kept by `mirror run` (no API request): action,
    /// reason, not-before, since when, and the state it derives from.
    Actions(ActionsArgs),
    /// One connection's history of states kept by `mirror run` (no API request): each status,
    /// error and advised action it entered, when, and for how long.
    History(HistoryArgs),
}

/// `moneyhub mirror retry` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this user's parked events.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Re-queue parked notifications instead of parked events.
    #[arg(long, conflicts_with = "user")]
    pub notifications: bool,
}

/// `moneyhub mirror status` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this user's row (the totals still cover everyone).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// At most this many users listed (1 to 1000000); the totals cover everyone.
    #[arg(long, value_name = "N", default_value_t = 20, conflicts_with = "user",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub limit: u32,
}

/// The mirror's database.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The database: `sqlite:PATH` or a plain path (SQLite), or `postgres://user@host/db`
    /// (optionally `?schema=NAME`) [env: MONEYHUB_MIRROR_DB].
    #[arg(long, value_name = "URL", env = "MONEYHUB_MIRROR_DB", hide_env_values = true)]
    pub db: String,
}

/// `moneyhub mirror run` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Where the webhook receiver listens (`POST /webhooks`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: String,
    /// Processing workers (1 to 256). On PostgreSQL, several processes may run too.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Accept unsigned JSON webhooks too (anyone who can reach the endpoint can forge them:
    /// only behind your own authentication).
    #[arg(long)]
    pub allow_unsigned_json: bool,
    /// Refuse signed webhooks issued more than this many seconds from now (default 600; no
    /// limit when the target is a sandbox, whose virtual clock may jump ahead).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub max_webhook_age: Option<u64>,
    /// On SIGTERM or SIGINT: seconds allowed for answering the webhooks in flight and
    /// finishing the claimed work before the rest is released and the process exits 0.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_timeout: u64,
    /// SQLite: with less free disk space than this many MiB the workers pause, so that the
    /// space left goes to storing webhooks (0: off).
    #[arg(long, value_name = "MIB", default_value_t = 32)]
    pub pause_below_mib: u64,
    /// SQLite: with less free disk space than this many MiB the receiver answers 503 and
    /// `/readyz` is unready (0: off; keep it below `--pause-below-mib`).
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub refuse_below_mib: u64,
    /// Days applied webhooks and their ledger rows are kept before the workers purge them.
    #[arg(long, value_name = "DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub retention_days: u64,
    /// At most this many Moneyhub API requests per second for all the workers of this
    /// process together (backfills, look-ups by id, connections lists): set it below your
    /// Moneyhub rate limit (default: unlimited).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_requests_per_second: Option<u32>,
    /// The lifecycle loop's flags.
    #[command(flatten)]
    pub lifecycle: LifecycleRunArgs,
}

// ----- the lifecycle loop: `mirror run` notifications and auto-sync, `mirror actions` ------

/// `moneyhub mirror run` flags of the lifecycle loop.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct LifecycleRunArgs {
    /// POST every change of a connection's advised action here (JSON, signed with
    /// Moneyhub-Mirror-Signature; see the README).
    #[arg(long, value_name = "URL", requires = "notify_secret_file")]
    pub notify_url: Option<String>,
    /// A file holding the notification signing secret (at least 16 bytes).
    #[arg(long, value_name = "FILE", requires = "notify_url")]
    pub notify_secret_file: Option<PathBuf>,
    /// Start the manual syncs the advice asks for (`sync`), through the manual-sync guard kept
    /// in the mirror's database (shared by every process).
    #[arg(long)]
    pub auto_sync: bool,
    /// With --auto-sync: at most this many manual syncs per minute (per process).
    #[arg(long, value_name = "N", default_value_t = 60, requires = "auto_sync", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auto_sync_per_minute: u32,
}

/// Output formats of `mirror actions`.
#[cfg(feature = "mirror")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionsFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
    /// Comma-separated values with a header.
    Csv,
}

/// `moneyhub mirror actions` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct ActionsArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only connections advised this action (repeatable): none, sync, reauth, reconsent,
    /// refresh, remove, contact_support.
    #[arg(long, value_name = "ACTION")]
    pub action: Vec<String>,
    /// Only this user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Only connections with something to do within this span (e.g. `7d`, `12h`): an action
    /// whose not-before is inside it, or advice that time changes inside it.
    #[arg(long, value_name = "SPAN")]
    pub due_within: Option<String>,
    /// The former name of `--output table|json|csv`, kept (hidden) for scripts; when given it
    /// wins over --output.
    #[arg(long, value_enum, hide = true)]
    pub format: Option<ActionsFormat>,
    /// Removed connections too.
    #[arg(long)]
    pub include_removed: bool,
}

/// `moneyhub mirror history` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The connection: its full id, or a unique prefix of its UUID (at least 8 characters
    /// anywhere in the id also match).
    #[arg(long, short = 'c', value_name = "CONNECTION")]
    pub connection: String,
    /// Only look among this user's connections (for a prefix).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
}

/// Which users `backfill` and `reconcile` cover.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// Only this user (repeatable). Default: every user the mirror knows.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Vec<String>,
    /// Also every user of the API client (GET /users).
    #[arg(long, conflicts_with = "user")]
    pub all_users: bool,
    /// Users processed at once (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// `backfill`: list every connection, not only those never listed.
    #[arg(long)]
    pub force: bool,
}

/// Export formats.
#[cfg(feature = "mirror")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header.
    Csv,
    /// A JSON array.
    Json,
}

/// `moneyhub mirror export` flags.
#[cfg(feature = "mirror")]
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The database.
    #[command(flatten)]
    pub db: DbArgs,
    /// The format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Only this user.
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    /// Include transactions deleted at Moneyhub (tombstones).
    #[arg(long)]
    pub include_deleted: bool,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// CSV: write text cells exactly as stored. By default a text cell starting with `=`, `+`,
    /// `-`, `@`, a tab or a carriage return is prefixed with `'`, so a spreadsheet shows it
    /// as text instead of running it as a formula.
    #[arg(long)]
    pub raw: bool,
}
