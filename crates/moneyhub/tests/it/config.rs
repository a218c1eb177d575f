//! Configuration: the builder, `from_env`, URLs and discovery.

use moneyhub::{ApiVersion, Client, ClientAuth, ErrorKind, Sent};

use crate::support::{env, test_key};

#[test]
fn builder_requires_client_id_and_credentials() {
    let e = Client::builder().client_auth(ClientAuth::secret("x")).build().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Config { .. }), "{e}");
    assert_eq!(e.sent(), Sent::Never);
    let e = Client::builder().client_id("c").build().unwrap_err();
    assert!(e.to_string().contains("client authentication"), "{e}");
    let e = Client::builder()
        .client_id("c")
        .client_auth(ClientAuth::secret("x"))
        .identity_url("not a url")
        .build();
    assert!(e.is_err());
    let c = Client::builder()
        .client_id("c")
        .client_auth(ClientAuth::secret("x"))
        .api_url("https://api.example.com/v2.0")
        .build()
        .unwrap();
    assert_eq!(c.api_version(), ApiVersion::V2);
    let c = Client::builder().client_id("c").client_auth(ClientAuth::secret("x")).build().unwrap();
    assert_eq!(c.api_version(), ApiVersion::V3);
}

#[test]
fn environment_variables() {
    // `from_env` is `from_lookup` over `std::env::var`; a map stands in for the environment so
    // that no test mutates the process environment while others run.
    use std::collections::HashMap;
    let build = |vars: &HashMap<&str, String>| {
        moneyhub::ClientBuilder::from_lookup(|name| vars.get(name).cloned()).and_then(|b| b.build())
    };
    let mut vars: HashMap<&str, String> = HashMap::new();
    assert!(build(&vars).unwrap_err().to_string().contains("MONEYHUB_CLIENT_ID"));
    vars.insert("MONEYHUB_IDENTITY_URL", "http://127.0.0.1:1".into());
    vars.insert("MONEYHUB_API_URL", "http://127.0.0.1:1/v2.0".into());
    vars.insert("MONEYHUB_CLIENT_ID", "env-client".into());
    vars.insert("MONEYHUB_REDIRECT_URI", "http://127.0.0.1:9/cb".into());
    assert!(build(&vars).unwrap_err().to_string().contains("MONEYHUB_CLIENT_SECRET"));
    vars.insert("MONEYHUB_CLIENT_SECRET", "env-secret-value".into());
    let c = build(&vars).unwrap();
    assert_eq!(c.client_id(), "env-client");
    assert_eq!(c.api_version(), ApiVersion::V2);
    assert!(!format!("{c:?}").contains("env-secret-value"));

    // Inline JWK, with alg and kid overrides.
    vars.insert("MONEYHUB_PRIVATE_KEY", test_key(0).jwk_private.clone());
    assert!(build(&vars).unwrap_err().to_string().contains("only one"));
    vars.remove("MONEYHUB_CLIENT_SECRET");
    vars.insert("MONEYHUB_PRIVATE_KEY_ALG", "PS256".into());
    vars.insert("MONEYHUB_PRIVATE_KEY_KID", "env-kid".into());
    let shown = format!("{:?}", build(&vars).unwrap());
    assert!(shown.contains("PS256") && shown.contains("env-kid"), "{shown}");
    assert!(!shown.contains(&test_key(0).d_b64));

    // Inline PEM, then a PEM file path.
    vars.insert("MONEYHUB_PRIVATE_KEY", test_key(0).pem_pkcs8.clone());
    assert!(build(&vars).is_ok());
    let path = std::env::temp_dir().join(format!("moneyhub-it-key-{}.pem", std::process::id()));
    std::fs::write(&path, &test_key(0).pem_pkcs8).unwrap();
    vars.insert("MONEYHUB_PRIVATE_KEY", path.display().to_string());
    assert!(build(&vars).is_ok());
    vars.insert("MONEYHUB_PRIVATE_KEY", "/nonexistent/key.pem".into());
    assert!(build(&vars).unwrap_err().to_string().contains("could not read"));
    vars.insert("MONEYHUB_PRIVATE_KEY", path.display().to_string());
    vars.insert("MONEYHUB_PRIVATE_KEY_ALG", "HS256".into());
    assert!(build(&vars).unwrap_err().to_string().contains("unsupported signing algorithm"));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn discovery_is_fetched_once_and_cached() {
    let e = env().await;
    let seq = crate::support::last_seq(&e.sandbox).await;
    let m1 = e.client.provider_metadata().await.unwrap();
    let m2 = e.client.provider_metadata().await.unwrap();
    assert_eq!(m1.issuer, e.sandbox.issuer());
    assert_eq!(m1.identity_base(), e.sandbox.identity_url());
    assert_eq!(m1, m2);
    let log = crate::support::requests_after(&e.sandbox, seq).await;
    assert_eq!(crate::support::matching(&log, "GET", "/oidc/.well-known/openid-configuration").len(), 1);
}
