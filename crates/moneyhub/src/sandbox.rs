//! A client of a local sandbox (`moneyhub-sandbox`) in one call: [`ClientBuilder::sandbox`].

use crate::{ClientAuth, ClientBuilder};

/// The client id every sandbox registers unless told otherwise (`moneyhub-sandbox`'s
/// `DEFAULT_CLIENT_ID`; this crate does not depend on the sandbox, so it is written here).
pub const SANDBOX_CLIENT_ID: &str = "sandbox-client";
/// The secret of [`SANDBOX_CLIENT_ID`]. Not a secret: the sandbox is local.
pub const SANDBOX_CLIENT_SECRET: &str = "sandbox-secret";
/// The redirect URI [`ClientBuilder::sandbox`] sets: a sandbox accepts any loopback `http` URL
/// for a client that registered none.
pub const SANDBOX_REDIRECT_URI: &str = "http://127.0.0.1:8080/callback";

impl ClientBuilder {
    /// Points the builder at the sandbox whose base URL is `base_url` (`http://127.0.0.1:PORT`,
    /// what `moneyhub sandbox serve` prints and `Sandbox::base_url` answers): identity service
    /// there, Data API at `/v3`, the sandbox's default client and secret, and a loopback
    /// redirect URI. Every setting can still be changed after it (another client, a key, a
    /// clock that follows the sandbox's).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sandbox = moneyhub_sandbox::spawn(Default::default()).await?;
    /// let client = moneyhub::Client::builder().sandbox(sandbox.base_url()).build()?;
    /// let user = client.users().create(Some("customer-1")).await?;
    /// assert!(!user.user_id.as_str().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn sandbox(self, base_url: &str) -> ClientBuilder {
        let base = base_url.trim_end_matches('/');
        self.identity_url(base)
            .api_url(format!("{base}/v3"))
            .client_id(SANDBOX_CLIENT_ID)
            .client_auth(ClientAuth::secret(SANDBOX_CLIENT_SECRET))
            .redirect_uri(SANDBOX_REDIRECT_URI)
    }
}
