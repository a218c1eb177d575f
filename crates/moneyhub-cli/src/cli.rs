//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Moneyhub's Open Finance API from a terminal: users, connections, health, transactions,
/// and a local sandbox.
#[derive(Debug, Parser)]
#[command(name = "moneyhub", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a local Moneyhub sandbox.
    Sandbox {
        /// What to do with it.
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

/// `moneyhub sandbox ...`
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a sandbox on loopback until stopped (Ctrl-C).
    Serve(ServeArgs),
}

/// `moneyhub sandbox serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on (127.0.0.1). 0 picks a free one.
    #[arg(long, default_value_t = 8700)]
    pub port: u16,
    /// Seed of all generated data: same seed, same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The registered client's id.
    #[arg(long, default_value = "sandbox-client")]
    pub client_id: String,
    /// The registered client's secret (client_secret_basic).
    #[arg(long, default_value = "sandbox-secret")]
    pub client_secret: String,
    /// A JSON file with the client's public JWK set, for private_key_jwt and signed request
    /// objects.
    #[arg(long, value_name = "FILE")]
    pub client_jwks: Option<PathBuf>,
    /// Algorithm request objects must be signed with: none, RS256 or PS256 (default: RS256
    /// when --client-jwks is given, else none).
    #[arg(long, value_name = "ALG")]
    pub request_object_alg: Option<String>,
    /// A registered redirect URI (repeatable). Without any, every loopback http URL is accepted.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Where webhooks are delivered.
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Webhook format: json or jwt.
    #[arg(long, default_value = "json", value_name = "FORMAT")]
    pub webhook_format: String,
}
