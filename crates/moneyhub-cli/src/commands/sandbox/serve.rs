//! `moneyhub sandbox serve`.

use std::net::SocketAddr;

use moneyhub_sandbox::{ClientRegistration, SandboxConfig, WebhookFormat, WebhookTarget};

use crate::cli::ServeArgs;
use crate::exit::Failure;
use crate::output;

/// Builds the sandbox configuration from the flags (every problem is a usage error).
pub fn config(args: &ServeArgs) -> Result<SandboxConfig, Failure> {
    let jwks = client_jwks(args)?;
    let alg = request_object_alg(args, jwks.as_ref())?;
    let http = http_config(args)?;
    let tls_client_cert = client_cert(args)?;
    for uri in &args.redirect_uris {
        url::Url::parse(uri).map_err(|e| Failure::usage(format!("--redirect-uri {uri:?}: {e}")))?;
    }
    let webhook = webhook_target(args)?;
    if args.client_id.trim().is_empty() {
        return Err(Failure::usage("--client-id must not be empty"));
    }
    let scenario = args
        .scenario
        .as_deref()
        .map(moneyhub_sandbox::scenario::Scenario::from_file)
        .transpose()
        .map_err(|e| Failure::usage(format!("--scenario {e}")))?;
    let control_token = exposure(args)?;
    Ok(SandboxConfig {
        bind: SocketAddr::new(args.host, args.port),
        control_token,
        allow_remote_webhooks: args.allow_remote_webhooks,
        public_url: args.public_url.clone(),
        consent: match args.consent {
            crate::cli::Consent::Instant => moneyhub_sandbox::ConsentMode::Instant,
            crate::cli::Consent::Interactive => moneyhub_sandbox::ConsentMode::Interactive,
        },
        seed: args.seed,
        clients: vec![ClientRegistration {
            client_id: args.client_id.clone(),
            client_secret: Some(args.client_secret.clone()),
            jwks,
            redirect_uris: args.redirect_uris.clone(),
            request_object_signing_alg: alg,
            tls_client_cert,
        }],
        webhook,
        http,
        scenario,
        ..SandboxConfig::default()
    })
}

/// Reads a file a flag names (its problems are usage errors naming the flag).
fn read_flag_file(path: &std::path::Path, flag: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{flag} {}: {e}", path.display())))
}

/// `--client-jwks`: a public JWK set with at least one key (never a private one).
fn client_jwks(args: &ServeArgs) -> Result<Option<serde_json::Value>, Failure> {
    let Some(path) = &args.client_jwks else { return Ok(None) };
    let text = read_flag_file(path, "--client-jwks")?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("--client-jwks {}: not JSON: {e}", path.display())))?;
    let keys = v.get("keys").and_then(|k| k.as_array());
    if keys.is_none_or(|k| k.is_empty()) {
        return Err(Failure::usage(format!(
            "--client-jwks {}: expected a JWK set {{\"keys\": [...]}} with at least one key",
            path.display()
        )));
    }
    if keys.into_iter().flatten().any(|k| k.get("d").is_some()) {
        return Err(Failure::usage(format!(
            "--client-jwks {}: contains a private key; register only the public keys",
            path.display()
        )));
    }
    Ok(Some(v))
}

/// `--request-object-alg`, or the first key's `alg` (RS256 when it names none), or `none`
/// without keys; a signing algorithm needs `--client-jwks`.
fn request_object_alg(args: &ServeArgs, jwks: Option<&serde_json::Value>) -> Result<String, Failure> {
    const ALGS: [&str; 10] =
        ["none", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];
    let alg = match &args.request_object_alg {
        Some(a) => match ALGS.iter().find(|x| x.eq_ignore_ascii_case(a)) {
            Some(x) => (*x).to_string(),
            None => {
                return Err(Failure::usage(format!(
                    "--request-object-alg must be one of {}, got {a:?}",
                    ALGS.join(", ")
                )))
            }
        },
        None => match jwks {
            Some(v) => {
                v["keys"][0]["alg"].as_str().filter(|a| ALGS[1..].contains(a)).unwrap_or("RS256").to_string()
            }
            None => "none".to_string(),
        },
    };
    if alg != "none" && jwks.is_none() {
        return Err(Failure::usage(format!(
            "--request-object-alg {alg} needs --client-jwks (the keys that verify the request objects)"
        )));
    }
    Ok(alg)
}

/// The HTTP server's settings: the shutdown bound and, with `--tls-cert`/`--tls-key`, TLS.
fn http_config(args: &ServeArgs) -> Result<moneyhub_http::ServeConfig, Failure> {
    let mut http = moneyhub_http::ServeConfig::default()
        .shutdown_timeout(std::time::Duration::from_secs(args.shutdown_timeout));
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let (cert_pem, key_pem) = (read_flag_file(cert, "--tls-cert")?, read_flag_file(key, "--tls-key")?);
        // Client certificates are asked for (optional at the TLS layer); the token endpoint
        // decides whether the one presented is the registered one.
        let tls = moneyhub_http::tls::server_config_from_pem(
            cert_pem.as_bytes(),
            key_pem.as_bytes(),
            moneyhub_http::tls::ClientAuth::Optional,
        )
        .map_err(|e| Failure::usage(format!("--tls-cert/--tls-key: {e}")))?;
        http = http.tls(tls);
    }
    Ok(http)
}

/// `--client-cert`: the PEM certificate the client registers for mTLS.
fn client_cert(args: &ServeArgs) -> Result<Option<String>, Failure> {
    let Some(path) = &args.client_cert else { return Ok(None) };
    let pem = read_flag_file(path, "--client-cert")?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(Failure::usage(format!("--client-cert {}: not a PEM certificate", path.display())));
    }
    Ok(Some(pem))
}

/// `--webhook-url` and `--webhook-format`: an http(s) URL, on loopback unless
/// `--allow-remote-webhooks`.
fn webhook_target(args: &ServeArgs) -> Result<Option<WebhookTarget>, Failure> {
    let format: WebhookFormat = args.webhook_format.parse().map_err(Failure::usage)?;
    let Some(u) = &args.webhook_url else { return Ok(None) };
    let parsed = url::Url::parse(u).map_err(|e| Failure::usage(format!("--webhook-url {u:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Failure::usage(format!("--webhook-url {u:?}: must be an http(s) URL")));
    }
    if !args.allow_remote_webhooks && !moneyhub_sandbox::webhooks_on_loopback(u) {
        return Err(Failure::usage(format!(
            "--webhook-url {u:?} is not on a loopback address: add --allow-remote-webhooks"
        )));
    }
    Ok(Some(WebhookTarget { url: u.clone(), format }))
}

/// Who may reach the sandbox: a non-loopback `--host` needs a control token, and
/// `--public-url` must be an http(s) URL with a host. Returns the control token.
fn exposure(args: &ServeArgs) -> Result<Option<String>, Failure> {
    let control_token = args.control_token.clone().filter(|t| !t.trim().is_empty());
    if !args.host.is_loopback() && control_token.is_none() {
        return Err(Failure::usage(format!(
            "--host {} is not a loopback address: give --control-token (or \
             MONEYHUB_SANDBOX_CONTROL_TOKEN) so that only you can drive the control API",
            args.host
        )));
    }
    if let Some(u) = &args.public_url {
        let parsed = url::Url::parse(u).map_err(|e| Failure::usage(format!("--public-url {u:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(Failure::usage(format!("--public-url {u:?}: must be an http(s) URL with a host")));
        }
    }
    Ok(control_token)
}

/// Serves until SIGTERM or SIGINT (Ctrl-C), then stops gracefully and exits 0.
pub async fn serve(args: ServeArgs) -> Result<(), Failure> {
    let config = config(&args)?;
    // Before anything is announced: a signal from then on is a graceful stop.
    let shutdown = crate::signals::shutdown();
    let secret_note =
        if args.client_secret == moneyhub_sandbox::DEFAULT_CLIENT_SECRET { " (default)" } else { "" };
    let sandbox = moneyhub_sandbox::spawn(config).await.map_err(|e| Failure::usage(e.to_string()))?;
    output::line(&format!("moneyhub sandbox listening on {}", sandbox.base_url()));
    output::line(&format!("  identity service  {}  (issuer {})", sandbox.identity_url(), sandbox.issuer()));
    output::line(&format!("  data API          {}  and  {}", sandbox.api_url_v3(), sandbox.api_url_v2()));
    output::line(&format!(
        "  client            {}{}",
        args.client_id,
        if args.client_id == moneyhub_sandbox::DEFAULT_CLIENT_ID { " (default)" } else { "" }
    ));
    output::line(&format!(
        "  client secret     {}{secret_note}",
        if secret_note.is_empty() { "[as given]" } else { moneyhub_sandbox::DEFAULT_CLIENT_SECRET }
    ));
    output::line(&format!("  seed              {}", args.seed));
    match &args.webhook_url {
        Some(u) => output::line(&format!("  webhooks          {u} ({})", args.webhook_format)),
        None => output::line("  webhooks          off (--webhook-url to enable)"),
    }
    if let Some(path) = &args.scenario {
        output::line(&format!(
            "  scenario          {} (loaded again by `moneyhub sandbox reset`)",
            path.display()
        ));
    }
    output::line(&format!(
        "  control API       {}/__sandbox{}",
        sandbox.base_url(),
        if args.control_token.is_some() { " (bearer token required)" } else { "" }
    ));
    output::line(&format!(
        "  dashboard         {}/__sandbox/ui{}",
        sandbox.base_url(),
        if args.control_token.is_some() { "?token=<control token> (once; then a cookie)" } else { "" }
    ));
    output::line(&format!(
        "  consent           {}",
        match args.consent {
            crate::cli::Consent::Interactive =>
                "interactive: /oidc/auth shows consent pages to click through",
            crate::cli::Consent::Instant =>
                "instant: /oidc/auth consents at once (--consent interactive for pages)",
        }
    ));
    output::line("Press Ctrl-C to stop.");
    tracing::info!(listening = %sandbox.addr(), base_url = sandbox.base_url(), "sandbox serve started");
    shutdown.await;
    sandbox.shutdown().await;
    tracing::info!("sandbox serve stopped");
    Ok(())
}
