//! Scenario files: a sandbox's starting story in one TOML (or JSON) file: the clock's start,
//! users by `clientUserId` with their connections by bank and the state each is in, the
//! webhook target and its chaos, and fault rules.
//!
//! ```toml
//! [clock]
//! start = "2025-01-15T09:00:00Z"   # where the clock stands after loading
//! frozen = true                     # stand still (true) or follow the wall clock (false)
//!
//! [webhooks]
//! url = "http://127.0.0.1:9000/hook"
//! format = "json"                   # or "jwt"
//! chaos = { drop = 0.1, duplicate = 0.05 }
//!
//! [[faults]]                        # the body of POST /__sandbox/faults
//! path = "/v3/transactions"
//! status = 503
//! times = 2
//!
//! [[users]]
//! clientUserId = "customer-42"
//! connections = [
//!   { key = "main", bank = "Moneyhub Open Banking Mock" },             # healthy
//!   { bank = "NatWest", state = "failing" },
//!   { bank = "Aviva", state = "mfa-due" },
//!   { bank = "HSBC", state = "consent-ending", days = 1 },
//! ]
//! ```
//!
//! Decisions where nothing else said:
//!
//! * **Merging.** Loading applies on top of what the sandbox holds: a user whose
//!   `clientUserId` (of the same API client) already exists is reused, and so is that user's
//!   connection to the same bank (each existing connection once per load); everything else is
//!   created. So `moneyhub demo` connects ten banks through the real flow and then loads its
//!   scenario to put them in their states. Load with `reset` to start from the seeded state.
//! * **The clock** only moves forward on a plain load (to `start`, running whatever falls due
//!   on the way); a `start` earlier than the sandbox's time is refused unless the load resets
//!   the sandbox first (or the scenario is given at start-up), which sets the clock outright.
//! * **States** (`state`, default `healthy`), applied at the clock's time after loading:
//!   `healthy` (no scripted outcome), `failing` (every sync from the next one fails with
//!   `error`; with `since = <instant>` the connection is failing already, since then),
//!   `mfa-due` (the next and every later sync asks for MFA), `credentials-rejected` (they fail
//!   with `credentials-error`), `consent-ending` (`days`: the consent ends that many days on),
//!   `consent-lapsed` (`days`, default 100: the consent ended that long ago; at 90 days or more
//!   `tppConsent` is false), `provider-withdrawn` (the bank is withdrawn for good: every
//!   connection to it). `singleSyncOnly = true` works beside any state.
//! * **Banks** are named by bank id, `bankRef` or name (case-insensitive), as the catalogue
//!   lists them.
//!
//! Errors name the place: TOML syntax errors and every check of a value carry the line and
//! column; JSON syntax errors too, and JSON value errors the path (`users[0].connections[2]`).

mod apply;
mod locate;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) use apply::{apply, load, reset, set_state};
pub use apply::{LoadedConnection, LoadedScenario, LoadedUser};

use crate::kit::types::FaultSpec;
use crate::webhooks::chaos::ChaosRequest;

/// A parsed scenario (see the module docs). Build one with [`Scenario::parse`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// Where the clock stands after loading.
    #[serde(default)]
    pub clock: Option<ClockSetting>,
    /// The webhook target and its chaos.
    #[serde(default)]
    pub webhooks: Option<WebhookSetting>,
    /// Fault rules, as `POST /__sandbox/faults` takes them.
    #[serde(default)]
    faults: Vec<FaultSpec>,
    /// Users and their connections.
    #[serde(default)]
    pub users: Vec<ScenarioUser>,
    /// Where the scenario came from (for error messages), and its text when TOML (for line
    /// numbers of value errors).
    #[serde(skip)]
    source: Source,
}

#[derive(Debug, Clone, Default)]
struct Source {
    name: String,
    toml: Option<String>,
}

/// `[clock]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClockSetting {
    /// The instant the clock shows after loading (default: where it is).
    #[serde(default)]
    pub start: Option<DateTime<Utc>>,
    /// Stand still (`true`) or follow the wall clock (`false`); default: as it is.
    #[serde(default)]
    pub frozen: Option<bool>,
}

/// `[webhooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookSetting {
    /// The receiver's URL (loopback unless the sandbox allows remote webhooks).
    pub url: String,
    /// `json` (default) or `jwt`.
    #[serde(default)]
    pub format: Option<String>,
    /// Drop, duplicate and reorder probabilities, as `PUT /__sandbox/webhooks/chaos` takes them.
    #[serde(default)]
    chaos: Option<ChaosRequest>,
}

/// `[[users]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioUser {
    /// The client's own id for the user; also how a load finds an existing user.
    pub client_user_id: String,
    /// The API client the user belongs to (default: the first registered).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The user's connections.
    #[serde(default)]
    pub connections: Vec<ScenarioConnection>,
}

/// One of a user's connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioConnection {
    /// A name for the connection in the load's answer (default: the bank's name).
    #[serde(default)]
    pub key: Option<String>,
    /// Bank id, `bankRef` or provider name.
    pub bank: String,
    /// What state it is in.
    #[serde(default)]
    pub state: ConnectionState,
    /// `consent-ending`: days until the consent ends; `consent-lapsed`: days since it ended.
    #[serde(default)]
    pub days: Option<i64>,
    /// `failing`: since when it has been failing.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// The provider allows one fetch only, so the data goes stale.
    #[serde(default)]
    pub single_sync_only: bool,
}

/// A connection's scripted state (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionState {
    /// Syncs succeed.
    #[default]
    Healthy,
    /// Syncs fail with `error`.
    Failing,
    /// Syncs ask for MFA.
    MfaDue,
    /// Syncs fail with `credentials-error`.
    CredentialsRejected,
    /// The consent ends in `days` days.
    ConsentEnding,
    /// The consent ended `days` days ago.
    ConsentLapsed,
    /// The provider is withdrawn.
    ProviderWithdrawn,
}

impl ConnectionState {
    /// The name scenario files use.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Healthy => "healthy",
            ConnectionState::Failing => "failing",
            ConnectionState::MfaDue => "mfa-due",
            ConnectionState::CredentialsRejected => "credentials-rejected",
            ConnectionState::ConsentEnding => "consent-ending",
            ConnectionState::ConsentLapsed => "consent-lapsed",
            ConnectionState::ProviderWithdrawn => "provider-withdrawn",
        }
    }
}

/// The body of `PUT /__sandbox/connections/{id}/state`: one connection put in a state, as a
/// scenario's connection would be.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StateRequest {
    /// The state.
    pub state: ConnectionState,
    /// `consent-ending`: days until the consent ends; `consent-lapsed`: days since it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<i64>,
    /// `failing`: since when it has been failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// Whether the provider allows one fetch only (unchanged when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_sync_only: Option<bool>,
}

impl StateRequest {
    /// The same rules as a scenario's connection: `days` and `since` only with their states.
    pub(crate) fn check(&self) -> Result<(), ScenarioError> {
        check_since(self.since).map_err(ScenarioError)?;
        check_state(self.state, self.days, self.since.is_some()).map_err(ScenarioError)
    }
}

/// The longest `clientUserId` (Moneyhub's own limit) or connection `key` a scenario may give.
const MAX_TEXT_CHARS: usize = 256;

/// `since` lies in the clock's range.
fn check_since(since: Option<DateTime<Utc>>) -> Result<(), String> {
    match since {
        Some(t) if !crate::clock::in_range(t) => {
            Err("since must lie between 1970-01-01 and 9999-12-31".into())
        }
        _ => Ok(()),
    }
}

/// Whether `days` and `since` fit `state`; the message says why not.
fn check_state(state: ConnectionState, days: Option<i64>, since: bool) -> Result<(), String> {
    let days_wanted = matches!(state, ConnectionState::ConsentEnding | ConnectionState::ConsentLapsed);
    if days.is_some() && !days_wanted {
        return Err(format!("days goes with consent-ending or consent-lapsed, not {}", state.as_str()));
    }
    if since && state != ConnectionState::Failing {
        return Err("since goes with state = \"failing\"".to_owned());
    }
    match (state, days) {
        (ConnectionState::ConsentEnding, None) => {
            Err("consent-ending needs days (until the consent ends)".to_owned())
        }
        (ConnectionState::ConsentEnding, Some(d)) if !(0..=3650).contains(&d) => {
            Err("days must be between 0 and 3650".to_owned())
        }
        (ConnectionState::ConsentLapsed, Some(d)) if !(1..=3650).contains(&d) => {
            Err("days must be between 1 and 3650".to_owned())
        }
        _ => Ok(()),
    }
}

/// The format of a scenario's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioFormat {
    /// TOML (the default).
    Toml,
    /// JSON, the same keys.
    Json,
}

impl ScenarioFormat {
    /// JSON for a file name ending in `.json`, TOML otherwise.
    pub fn for_file_name(name: &str) -> ScenarioFormat {
        if name.to_ascii_lowercase().ends_with(".json") {
            ScenarioFormat::Json
        } else {
            ScenarioFormat::Toml
        }
    }
}

/// A scenario that could not be read or does not fit the sandbox. Its message names the
/// source and, where known, the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScenarioError(pub(crate) String);

impl Scenario {
    /// Parses a scenario's text; `name` names it in error messages (a file name).
    pub fn parse(text: &str, format: ScenarioFormat, name: &str) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = match format {
            ScenarioFormat::Toml => toml::from_str(text)
                .map_err(|e| ScenarioError(format!("{name}: {}", e.to_string().trim_end())))?,
            ScenarioFormat::Json => {
                serde_json::from_str(text).map_err(|e| ScenarioError(format!("{name}: {e}")))?
            }
        };
        scenario.source =
            Source { name: name.to_owned(), toml: (format == ScenarioFormat::Toml).then(|| text.to_owned()) };
        scenario.check_shape()?;
        Ok(scenario)
    }

    /// The name it was parsed under (a file name).
    pub fn name(&self) -> &str {
        &self.source.name
    }

    /// Reads a scenario file (TOML, or JSON when the name ends in `.json`).
    pub fn from_file(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError(format!("{name}: {e}")))?;
        Scenario::parse(&text, ScenarioFormat::for_file_name(&name), &name)
    }

    /// An error about the value at `path` (keys and indexes from the top), with its line and
    /// column when the source is TOML.
    pub(crate) fn error_at(
        &self,
        path: &[locate::Step<'_>],
        message: impl std::fmt::Display,
    ) -> ScenarioError {
        let place = self
            .source
            .toml
            .as_deref()
            .and_then(|text| locate::line_column(text, path))
            .map(|(line, column)| format!("line {line}, column {column}"))
            .unwrap_or_else(|| locate::path_text(path));
        ScenarioError(format!("{}: {place}: {message}", self.source.name))
    }

    /// Checks that need no sandbox: each state has the fields it needs and no others, texts
    /// keep to the API's own limits (`clientUserId` at most 256 characters, as `POST /users`
    /// takes it; a connection's `key` too) and dates to the clock's range
    /// ([`crate::clock::in_range`]).
    fn check_shape(&self) -> Result<(), ScenarioError> {
        use locate::Step::{Index, Key};
        if let Some(start) = self.clock.as_ref().and_then(|c| c.start) {
            if !crate::clock::in_range(start) {
                return Err(self.error_at(
                    &[Key("clock"), Key("start")],
                    "start must lie between 1970-01-01 and 9999-12-31",
                ));
            }
        }
        for (u, user) in self.users.iter().enumerate() {
            if user.client_user_id.trim().is_empty() {
                return Err(self.error_at(&[Key("users"), Index(u)], "clientUserId must not be empty"));
            }
            if user.client_user_id.chars().count() > MAX_TEXT_CHARS {
                return Err(self.error_at(
                    &[Key("users"), Index(u), Key("clientUserId")],
                    format!("clientUserId must be at most {MAX_TEXT_CHARS} characters"),
                ));
            }
            for (c, conn) in user.connections.iter().enumerate() {
                let at = |field| [Key("users"), Index(u), Key("connections"), Index(c), Key(field)];
                if conn.key.as_ref().is_some_and(|k| k.chars().count() > MAX_TEXT_CHARS) {
                    return Err(
                        self.error_at(&at("key"), format!("key must be at most {MAX_TEXT_CHARS} characters"))
                    );
                }
                if let Err(message) = check_since(conn.since) {
                    return Err(self.error_at(&at("since"), message));
                }
                if let Err(message) = check_state(conn.state, conn.days, conn.since.is_some()) {
                    let field = if conn.since.is_some() && message.starts_with("since") {
                        "since"
                    } else if conn.days.is_some() {
                        "days"
                    } else {
                        "state"
                    };
                    return Err(self.error_at(&at(field), message));
                }
            }
        }
        Ok(())
    }
}
