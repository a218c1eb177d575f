//! Where the client's settings come from: flags, then `MONEYHUB_*` environment variables, then
//! a profile of the config file (TOML at `--config`, `$MONEYHUB_CONFIG` or
//! `~/.config/moneyhub/config.toml`).
//!
//! ```toml
//! default_profile = "production"      # used when neither --profile nor MONEYHUB_PROFILE is set
//!
//! [profiles.production]
//! client_id = "898c529b-c062-4f26-a136-fd8bc462d583"
//! private_key = "~/keys/moneyhub.pem" # a file, or an inline JWK or PEM
//! private_key_alg = "PS256"           # RS/PS 256/384/512, ES256/384/512 (default: from the key)
//! request_object_alg = "PS256"        # none (default) or an algorithm above
//! # tls_client_cert = "~/keys/client.pem"   # mTLS: with tls_client_key; alone (no secret or
//! # tls_client_key = "~/keys/client.key"    # key) it is self_signed_tls_client_auth
//! # ca_cert = "~/keys/corporate-ca.pem"     # extra CA roots
//! redirect_uri = "http://127.0.0.1:8765/callback"
//!
//! [profiles.local]                    # a `moneyhub sandbox serve` on this machine
//! identity_url = "http://127.0.0.1:8700"
//! api_url = "http://127.0.0.1:8700/v3"
//! client_id = "sandbox-client"
//! client_secret = "sandbox-secret"
//! ```
//!
//! With nothing configured at all (no setting from any source and no profile), commands run
//! against an embedded sandbox, as with `--sandbox`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::exit::{CmdResult, Failure};

/// One profile of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Identity service URL.
    pub identity_url: Option<String>,
    /// Data API URL.
    pub api_url: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
    /// Private key: a file, or an inline JWK or PEM.
    pub private_key: Option<String>,
    /// RS256/384/512, PS256/384/512, ES256/384/512.
    pub private_key_alg: Option<String>,
    /// The key's `kid`.
    pub private_key_kid: Option<String>,
    /// Redirect URI of the authorisation flows.
    pub redirect_uri: Option<String>,
    /// Request-object signing algorithm (`none` or an algorithm above).
    pub request_object_alg: Option<String>,
    /// TLS client certificate (PEM file).
    pub tls_client_cert: Option<String>,
    /// Its private key (PEM file).
    pub tls_client_key: Option<String>,
    /// Extra CA certificates (PEM file).
    pub ca_cert: Option<String>,
}

/// The config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The profile used when none is named.
    pub default_profile: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// A setting and where it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The value.
    pub value: String,
    /// `--client-id`, `MONEYHUB_CLIENT_ID` or `profile "prod"`.
    pub source: String,
}

/// The resolved settings of a remote (non-embedded) target.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Identity service URL.
    pub identity_url: Option<Setting>,
    /// Data API URL.
    pub api_url: Option<Setting>,
    /// Client id.
    pub client_id: Option<Setting>,
    /// Client secret.
    pub client_secret: Option<Setting>,
    /// Private key.
    pub private_key: Option<Setting>,
    /// Private key algorithm.
    pub private_key_alg: Option<Setting>,
    /// Private key id.
    pub private_key_kid: Option<Setting>,
    /// Redirect URI.
    pub redirect_uri: Option<Setting>,
    /// Request-object signing algorithm.
    pub request_object_alg: Option<Setting>,
    /// TLS client certificate file.
    pub tls_client_cert: Option<Setting>,
    /// Its key file.
    pub tls_client_key: Option<Setting>,
    /// Extra CA certificates file.
    pub ca_cert: Option<Setting>,
}

/// What the commands run against.
#[derive(Debug, Clone)]
pub enum Target {
    /// An embedded sandbox; `notice` when it was chosen because nothing is configured.
    Embedded {
        /// Whether to print the "nothing configured" notice.
        notice: bool,
    },
    /// A Moneyhub (or a sandbox elsewhere) described by these settings.
    Remote(Box<Settings>),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The config file's path and whether it was named explicitly (a named file must exist).
fn config_path(global: &GlobalArgs) -> Option<(PathBuf, bool)> {
    if let Some(p) = &global.config {
        return Some((p.clone(), true));
    }
    if let Some(p) = env("MONEYHUB_CONFIG") {
        return Some((expand_home(&p), true));
    }
    Some((config_dir()?.join("config.toml"), false))
}

/// The directory of the config file by the platform's convention: `$XDG_CONFIG_HOME/moneyhub`
/// or `~/.config/moneyhub` on Linux and the other Unixes, macOS included (as for most
/// command-line tools); `%APPDATA%\moneyhub` (the roaming profile) on Windows.
pub fn config_dir() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.config_dir().join("moneyhub"))
}

/// Reads and parses the config file, if there is one.
pub fn load_file(global: &GlobalArgs) -> CmdResult<Option<(PathBuf, ConfigFile)>> {
    let Some((path, explicit)) = config_path(global) else { return Ok(None) };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => return Err(Failure::usage(format!("config file {}: {e}", path.display()))),
    };
    let file: ConfigFile = toml::from_str(&text).map_err(|e| {
        let place = e
            .span()
            .map(|span| line_column(&text, span.start))
            .map_or_else(String::new, |(line, column)| format!(", line {line}, column {column}"));
        Failure::usage(format!("config file {}{place}: {}", path.display(), e.message().trim_end()))
    })?;
    warn_if_readable_by_others(&path, &file);
    Ok(Some((path, file)))
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Whether a `private_key` setting holds the key itself (a PEM or a JWK) rather than a path.
fn is_inline_key(value: &str) -> bool {
    let v = value.trim_start();
    v.starts_with('{') || v.contains("-----BEGIN")
}

/// Warns on stderr, as ssh does for keys, when the config file holds a client secret or an
/// inline private key and others than its owner may read or write it (any group or other
/// permission bit, as ssh checks): the message names the file, the profile and the fix
/// (`chmod 600 FILE`). A warning, not a refusal: the file is still used.
#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, file: &ConfigFile) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return;
    }
    let holders: Vec<String> = file
        .profiles
        .iter()
        .filter_map(|(name, p)| {
            let secret = p.client_secret.as_deref().is_some_and(|s| !s.trim().is_empty());
            let key = p.private_key.as_deref().is_some_and(is_inline_key);
            match (secret, key) {
                (true, true) => Some(format!("a client secret and a private key in profile {name:?}")),
                (true, false) => Some(format!("a client secret in profile {name:?}")),
                (false, true) => Some(format!("a private key in profile {name:?}")),
                (false, false) => None,
            }
        })
        .collect();
    if holders.is_empty() {
        return;
    }
    crate::output::warn(&format!(
        "moneyhub: warning: {} holds {} but its permissions ({mode:04o}) let others read it; \
         run `chmod 600 {}`",
        path.display(),
        holders.join(", "),
        path.display()
    ));
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path, _file: &ConfigFile) {}

/// Resolves what to run against: flags > environment > profile.
pub fn resolve(global: &GlobalArgs) -> CmdResult<Target> {
    if global.sandbox {
        return Ok(Target::Embedded { notice: false });
    }
    let file = load_file(global)?;
    let profile = chosen_profile(global, file.as_ref())?;
    let settings = settings(global, profile.as_ref())?;
    let nothing = profile.is_none()
        && settings.identity_url.is_none()
        && settings.api_url.is_none()
        && settings.client_id.is_none()
        && settings.client_secret.is_none()
        && settings.private_key.is_none();
    if nothing {
        return Ok(Target::Embedded { notice: true });
    }
    check_complete(&settings)?;
    Ok(Target::Remote(Box::new(settings)))
}

/// The profile named by `--profile`, `MONEYHUB_PROFILE` or the file's `default_profile`.
fn chosen_profile(
    global: &GlobalArgs,
    file: Option<&(PathBuf, ConfigFile)>,
) -> CmdResult<Option<(String, Profile)>> {
    let wanted = global
        .profile
        .clone()
        .map(|p| (p, "--profile"))
        .or_else(|| env("MONEYHUB_PROFILE").map(|p| (p, "MONEYHUB_PROFILE")));
    let profile = match (file, wanted) {
        (None, Some((name, from))) => {
            return Err(Failure::usage(format!(
                "{from} names profile {name:?}, but there is no config file (--config, MONEYHUB_CONFIG or ~/.config/moneyhub/config.toml)"
            )))
        }
        (Some((path, f)), Some((name, from))) => match f.profiles.get(&name) {
            Some(p) => Some((name, p.clone())),
            None => {
                let known: Vec<&str> = f.profiles.keys().map(String::as_str).collect();
                return Err(Failure::usage(format!(
                    "{from} names profile {name:?}, which {} does not define (profiles: {})",
                    path.display(),
                    if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                )));
            }
        },
        (Some((path, f)), None) => match &f.default_profile {
            Some(name) => match f.profiles.get(name) {
                Some(p) => Some((name.clone(), p.clone())),
                None => {
                    return Err(Failure::usage(format!(
                        "{}: default_profile {name:?} is not defined under [profiles]",
                        path.display()
                    )))
                }
            },
            None => None,
        },
        (None, None) => None,
    };
    Ok(profile)
}

/// Each setting from the first source that gives it: flag, environment, profile.
fn settings(global: &GlobalArgs, profile: Option<&(String, Profile)>) -> CmdResult<Settings> {
    let pick = |flag: &Option<String>,
                flag_name: &str,
                var: &str,
                from_profile: Option<&String>|
     -> Option<Setting> {
        if let Some(v) = flag.as_ref().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            return Some(Setting { value: v.to_owned(), source: flag_name.to_owned() });
        }
        if let Some(v) = env(var) {
            return Some(Setting { value: v, source: var.to_owned() });
        }
        let (name, _) = profile?;
        from_profile
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| Setting { value: v.to_owned(), source: format!("profile {name:?}") })
    };
    let p = profile.map(|(_, p)| p.clone()).unwrap_or_default();
    // Credentials are one unit: the first source (flags, environment, profile) naming a
    // secret or a key provides them, so a flag overrides a secret set in the environment.
    let (client_secret, private_key) = credentials(global, profile.map(|(n, _)| n.as_str()), &p)?;
    Ok(Settings {
        identity_url: pick(
            &global.identity_url,
            "--identity-url",
            "MONEYHUB_IDENTITY_URL",
            p.identity_url.as_ref(),
        ),
        api_url: pick(&global.api_url, "--api-url", "MONEYHUB_API_URL", p.api_url.as_ref()),
        client_id: pick(&global.client_id, "--client-id", "MONEYHUB_CLIENT_ID", p.client_id.as_ref()),
        client_secret,
        private_key,
        private_key_alg: pick(&None, "", "MONEYHUB_PRIVATE_KEY_ALG", p.private_key_alg.as_ref()),
        private_key_kid: pick(&None, "", "MONEYHUB_PRIVATE_KEY_KID", p.private_key_kid.as_ref()),
        redirect_uri: pick(
            &global.redirect_uri,
            "--redirect-uri",
            "MONEYHUB_REDIRECT_URI",
            p.redirect_uri.as_ref(),
        ),
        request_object_alg: pick(
            &global.request_object_alg,
            "--request-object-alg",
            "MONEYHUB_REQUEST_OBJECT_ALG",
            p.request_object_alg.as_ref(),
        ),
        tls_client_cert: pick(
            &global.tls_client_cert,
            "--tls-client-cert",
            "MONEYHUB_TLS_CLIENT_CERT",
            p.tls_client_cert.as_ref(),
        ),
        tls_client_key: pick(
            &global.tls_client_key,
            "--tls-client-key",
            "MONEYHUB_TLS_CLIENT_KEY",
            p.tls_client_key.as_ref(),
        ),
        ca_cert: pick(&global.ca_cert, "--ca-cert", "MONEYHUB_CA_CERT", p.ca_cert.as_ref()),
    })
}

/// A remote target needs a client id and credentials, and a TLS certificate its key.
fn check_complete(settings: &Settings) -> CmdResult<()> {
    if settings.client_id.is_none() {
        return Err(Failure::usage(
            "no client id: set --client-id, MONEYHUB_CLIENT_ID or client_id in the profile (or use --sandbox)",
        ));
    }
    match (&settings.tls_client_cert, &settings.tls_client_key) {
        (Some(c), None) => {
            return Err(Failure::usage(format!(
                "{} sets a TLS client certificate without its key (--tls-client-key, MONEYHUB_TLS_CLIENT_KEY, tls_client_key)",
                c.source
            )))
        }
        (None, Some(k)) => {
            return Err(Failure::usage(format!(
                "{} sets a TLS client key without its certificate (--tls-client-cert, MONEYHUB_TLS_CLIENT_CERT, tls_client_cert)",
                k.source
            )))
        }
        _ => {}
    }
    if settings.client_secret.is_none()
        && settings.private_key.is_none()
        && settings.tls_client_cert.is_none()
    {
        return Err(Failure::usage(
            "no client credentials: set a client secret (--client-secret, MONEYHUB_CLIENT_SECRET, client_secret), \
             a private key (--private-key, MONEYHUB_PRIVATE_KEY, private_key) \
             or a TLS client certificate (--tls-client-cert, MONEYHUB_TLS_CLIENT_CERT, tls_client_cert)",
        ));
    }
    Ok(())
}

type Credentials = (Option<Setting>, Option<Setting>);

/// The client secret or private key, from the first source that names either.
fn credentials(global: &GlobalArgs, profile_name: Option<&str>, p: &Profile) -> CmdResult<Credentials> {
    let clean = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let levels: [(Option<String>, Option<String>, String, String); 3] = [
        (
            clean(global.client_secret.clone()),
            clean(global.private_key.clone()),
            "--client-secret".into(),
            "--private-key".into(),
        ),
        (
            env("MONEYHUB_CLIENT_SECRET"),
            env("MONEYHUB_PRIVATE_KEY"),
            "MONEYHUB_CLIENT_SECRET".into(),
            "MONEYHUB_PRIVATE_KEY".into(),
        ),
        (
            clean(p.client_secret.clone()).filter(|_| profile_name.is_some()),
            clean(p.private_key.clone()).filter(|_| profile_name.is_some()),
            format!("client_secret in profile {:?}", profile_name.unwrap_or_default()),
            format!("private_key in profile {:?}", profile_name.unwrap_or_default()),
        ),
    ];
    for (secret, key, secret_source, key_source) in levels {
        match (secret, key) {
            (None, None) => continue,
            (Some(_), Some(_)) => {
                return Err(Failure::usage(format!(
                    "both {secret_source} and {key_source} are set: keep only one way of authenticating"
                )))
            }
            (Some(s), None) => return Ok((Some(Setting { value: s, source: secret_source }), None)),
            (None, Some(k)) => return Ok((None, Some(Setting { value: k, source: key_source }))),
        }
    }
    Ok((None, None))
}
