//! The discovery document, modelled on Moneyhub's production one with the sandbox's URLs.

use serde_json::{json, Value};

use crate::seed::catalogue::Catalogue;

/// Generic (non-provider) scopes the sandbox advertises, in Moneyhub's order.
const SCOPES: &[&str] = &[
    "openid",
    "offline_access",
    "transactions:read:all",
    "transactions:read:in",
    "transactions:read:out",
    "transactions_unenriched:read:all",
    "transactions:write",
    "transactions:write:all",
    "accounts:read",
    "accounts:write",
    "accounts:write:all",
    "accounts_details:read",
    "categories:read",
    "reauth",
    "refresh",
    "reconsent",
    "user:create",
    "user:delete",
    "connection:read",
    "connection:update",
    "connection:delete",
    "user:read",
    "user:update",
    "auth_requests:read",
    "auth_requests:write",
    "standing_orders:read",
    "standing_orders_detail:read",
    "beneficiaries:read",
    "beneficiaries_detail:read",
    "statements_basic:read",
    "statements_detail:read",
    "consent_history:read",
    "id:all",
    "id:api",
    "id:legacy",
    "id:test",
    "id:zoopla",
    "id:mouseprice",
    "id:autotrader",
];

const ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

/// The document served at `/oidc/.well-known/openid-configuration`.
pub fn discovery_document(base_url: &str, catalogue: &Catalogue) -> Value {
    let issuer = format!("{base_url}/oidc");
    let mut scopes: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
    scopes.extend(catalogue.all().iter().map(|p| format!("id:{}", p.id)));
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
        "self_signed_tls_client_auth"
    ]);
    let mut doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/certs"),
        "pushed_authorization_request_endpoint": format!("{issuer}/request"),
        "claims_parameter_supported": true,
        "claims_supported": ["sub", "sid", "auth_time", "iss", "mh:con_id", "mh:sync", "mh:cat_type", "mh:payment",
            "mh:reverse_payment", "mh:recurring_payment", "mh:standing_order", "mh:pay_file_consent",
            "mh:account_verification", "mh:benefits_check", "mh:counterparties_check", "tenant_id"],
        "claim_types_supported": ["normal"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "request_object_signing_alg_values_supported":
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "none"],
        "request_parameter_supported": true,
        "request_uri_parameter_supported": true,
        "require_request_uri_registration": true,
        "authorization_response_iss_parameter_supported": true,
        "response_modes_supported": ["form_post", "fragment", "query"],
        "response_types_supported": ["code", "code id_token", "id_token", "none"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ALGS,
        "tls_client_certificate_bound_access_tokens": true,
    });
    for kind in ["all", "api", "legacy", "test", "beta", "payments", "zoopla", "mouseprice", "autotrader"] {
        doc[format!("{kind}_connections_endpoint")] =
            json!(format!("{issuer}/.well-known/{kind}-connections"));
    }
    doc
}
