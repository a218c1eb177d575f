//! Configuration: flags > environment > profile, the config file, and credential errors.

use crate::support::{command, run_command, Env};

fn write_config(env: &Env, secret: &str) -> std::path::PathBuf {
    let dir = env.dir.join(".config/moneyhub");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    let s = env.sandbox();
    std::fs::write(
        &path,
        format!(
            "default_profile = \"local\"\n\n[profiles.local]\nidentity_url = \"{}\"\napi_url = \"{}\"\nclient_id = \"sandbox-client\"\nclient_secret = \"{secret}\"\n\n[profiles.broken]\nidentity_url = \"{}\"\nclient_id = \"sandbox-client\"\nclient_secret = \"wrong\"\n",
            s.identity_url(),
            s.api_url_v3(),
            s.identity_url()
        ),
    )
    .unwrap();
    // As the README says to keep a file with a secret (a readable one draws a warning).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

fn run(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> crate::support::Run {
    let mut cmd = command(&env.dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args);
    run_command(cmd)
}

#[test]
fn default_profile_from_the_home_config_file() {
    let env = Env::new();
    write_config(&env, "sandbox-secret");
    env.user_with(&[crate::support::banks::MOCK]);
    let r = run(&env, &[], &["users", "list", "-o", "json"]);
    r.ok();
    assert!(r.stderr.is_empty(), "no embedded-sandbox notice: {}", r.stderr);
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
}

#[test]
fn precedence_is_flags_then_environment_then_profile() {
    let env = Env::new();
    write_config(&env, "sandbox-secret");
    // The "broken" profile's secret is wrong: authentication fails (exit 4).
    let r = run(&env, &[], &["--profile", "broken", "users", "list"]);
    r.code(4);
    assert!(r.stderr.contains("authentication failed"), "{}", r.stderr);
    // The environment overrides the profile...
    run(&env, &[("MONEYHUB_CLIENT_SECRET", "sandbox-secret")], &["--profile", "broken", "users", "list"])
        .ok();
    // ...a wrong secret in the environment overrides a right one in the profile...
    run(&env, &[("MONEYHUB_CLIENT_SECRET", "nope")], &["users", "list"]).code(4);
    // ...and a flag overrides the environment.
    run(&env, &[("MONEYHUB_CLIENT_SECRET", "nope")], &["--client-secret", "sandbox-secret", "users", "list"])
        .ok();
    // MONEYHUB_PROFILE selects a profile too.
    run(&env, &[("MONEYHUB_PROFILE", "broken")], &["users", "list"]).code(4);
}

#[test]
fn configuration_errors_are_usage_errors() {
    let env = Env::new();
    let path = write_config(&env, "sandbox-secret");
    let r = run(&env, &[], &["--profile", "missing", "users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("\"missing\"") && r.stderr.contains("local"), "{}", r.stderr);
    std::fs::write(&path, "[profiles.local]\nclient_idd = \"x\"\n").unwrap();
    let r = run(&env, &[], &["--profile", "local", "users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("client_idd"), "{}", r.stderr);
    std::fs::write(&path, "this is = = not toml").unwrap();
    let r = run(&env, &[], &["users", "list"]);
    r.code(2);
    // Issue 23 #14: the place, as line and column.
    assert!(r.stderr.contains("line 1, column "), "{}", r.stderr);
    let r = run(&env, &[("MONEYHUB_CONFIG", "/nonexistent/moneyhub.toml")], &["users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("/nonexistent/moneyhub.toml"), "{}", r.stderr);
    // A client id without credentials, and credentials without a client id.
    let r = run(&env, &[("MONEYHUB_CONFIG", "/dev/null"), ("MONEYHUB_CLIENT_ID", "x")], &["users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("credentials"), "{}", r.stderr);
    let r =
        run(&env, &[("MONEYHUB_CONFIG", "/dev/null"), ("MONEYHUB_CLIENT_SECRET", "x")], &["users", "list"]);
    r.code(2);
    assert!(r.stderr.contains("client id"), "{}", r.stderr);
    let r = run(
        &env,
        &[
            ("MONEYHUB_CONFIG", "/dev/null"),
            ("MONEYHUB_CLIENT_ID", "x"),
            ("MONEYHUB_CLIENT_SECRET", "s"),
            ("MONEYHUB_PRIVATE_KEY", "/k.pem"),
        ],
        &["users", "list"],
    );
    r.code(2);
    assert!(r.stderr.contains("only one"), "{}", r.stderr);
    // An unreadable private key names its source.
    let r = run(
        &env,
        &[
            ("MONEYHUB_CONFIG", "/dev/null"),
            ("MONEYHUB_CLIENT_ID", "x"),
            ("MONEYHUB_PRIVATE_KEY", "/nonexistent/key.pem"),
        ],
        &["users", "list"],
    );
    r.code(2);
    assert!(r.stderr.contains("MONEYHUB_PRIVATE_KEY"), "{}", r.stderr);
    // A bad URL.
    let r = run(
        &env,
        &[
            ("MONEYHUB_CONFIG", "/dev/null"),
            ("MONEYHUB_CLIENT_ID", "x"),
            ("MONEYHUB_CLIENT_SECRET", "s"),
            ("MONEYHUB_API_URL", "ftp://x"),
        ],
        &["users", "list"],
    );
    r.code(2);
}

#[test]
fn unreachable_api_is_an_api_error() {
    let env = Env::new();
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let r = run(
        &env,
        &[
            ("MONEYHUB_IDENTITY_URL", url.as_str()),
            ("MONEYHUB_CLIENT_ID", "x"),
            ("MONEYHUB_CLIENT_SECRET", "s"),
        ],
        &["users", "list"],
    );
    r.code(3);
    assert!(r.stderr.contains("request failed"), "{}", r.stderr);
}
