//! Token responses: decoding and redacted `Debug`.

use moneyhub_types::*;

#[test]
fn debug_redacts_every_token() {
    let t: TokenResponse = decode(
        br#"{"access_token":"AT-secret-1","token_type":"Bearer","expires_in":7200,
            "scope":"openid accounts:read","id_token":"ID-secret-2","refresh_token":"RT-secret-3"}"#,
    )
    .unwrap();
    assert_eq!(t.access_token, "AT-secret-1");
    assert_eq!(t.expires_in, Some(7200));
    assert_eq!(t.scopes().collect::<Vec<_>>(), vec!["openid", "accounts:read"]);

    let debug = format!("{t:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert_eq!(debug.matches("[redacted]").count(), 3, "{debug}");
    assert!(debug.contains("Bearer"), "{debug}");
    assert!(debug.contains("7200"), "{debug}");
    assert!(debug.contains("openid accounts:read"), "{debug}");

    let pretty = format!("{t:#?}");
    assert!(!pretty.contains("secret"), "{pretty}");

    // Serialisation is not redacted: the struct still carries the real tokens.
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains("AT-secret-1") && json.contains("RT-secret-3"));
}

#[test]
fn debug_shows_absent_optional_tokens_as_none() {
    let t: TokenResponse =
        decode(br#"{"access_token":"AT-secret","token_type":"Bearer","expires_in":600}"#).unwrap();
    let debug = format!("{t:?}");
    assert!(!debug.contains("AT-secret"), "{debug}");
    assert!(debug.contains("id_token: None"), "{debug}");
    assert!(debug.contains("refresh_token: None"), "{debug}");
    assert_eq!(debug.matches("[redacted]").count(), 1, "{debug}");
    assert_eq!(t.scopes().count(), 0);
}

#[test]
fn oauth_error_body() {
    let e: OAuthErrorBody =
        decode(br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#).unwrap();
    assert_eq!(e.error, "invalid_grant");
    assert_eq!(e.error_description.as_deref(), Some("grant request is invalid"));
    let e: OAuthErrorBody = crate::assert_round_trip(br#"{"error":"invalid_client"}"#);
    assert_eq!(e.error_description, None);
}
