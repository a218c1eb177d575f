//! What the identity service remembers between requests: pushed authorisation requests,
//! authorisation codes, client-assertion ids already seen and refresh tokens.
//!
//! Every entry carries an expiry in virtual time and is pruned opportunistically (every few
//! dozen insertions), so memory stays bounded by traffic within the entries' lifetimes.

use std::collections::HashMap;

use super::authz::Flow;
use super::interaction::Interaction;
use super::params::Params;
use crate::config::ConsentMode;

/// How many insertions happen between two prunes.
const PRUNE_EVERY: u64 = 64;

/// At most this many assertion ids are remembered. Beyond it the soonest-expiring ones are
/// forgotten: with a frozen virtual clock nothing expires, and a sandbox must not grow without
/// bound under a load test. (A replay of a forgotten id would then pass; acceptable locally.)
const MAX_JTIS: usize = 200_000;

/// The most bytes one pushed request may hold (its parameters, request object merged in):
/// 256 KiB.
pub const MAX_PUSHED_BYTES: usize = 256 * 1024;

/// The most bytes all pushed requests not yet used or expired may hold together: 32 MiB
/// (with a frozen clock nothing expires). Beyond it a new one is refused (429) until some are
/// used or expire.
pub const MAX_PUSHED_TOTAL_BYTES: usize = 32 * 1024 * 1024;

/// A pushed (PAR) or posted (legacy `POST /request`) authorisation request.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The client that pushed it (or whose request object it was).
    pub client_id: String,
    /// The authorisation parameters, request object already merged in.
    pub params: Params,
    /// Expiry, virtual seconds.
    pub expires_at: i64,
    /// The auth request (`POST /auth-requests`) this request was made for: its code can only
    /// be redeemed by completing that auth request.
    pub auth_request: Option<String>,
}

impl Pushed {
    /// Bytes held, as counted against [`MAX_PUSHED_BYTES`] and [`MAX_PUSHED_TOTAL_BYTES`].
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Pushed>()
            + self.client_id.len()
            + self.params.bytes()
            + self.auth_request.as_ref().map_or(0, String::len)
    }
}

/// Why a pushed request was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushRefused {
    /// The request alone is over [`MAX_PUSHED_BYTES`].
    TooLarge(usize),
    /// Stored ones hold [`MAX_PUSHED_TOTAL_BYTES`] already.
    Full(usize),
}

impl PushRefused {
    /// The answer's status: 413 for one request too large, 429 while the store is full.
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            PushRefused::TooLarge(_) => axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            PushRefused::Full(_) => axum::http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// As an OAuth error (`invalid_request`, with [`PushRefused::status`]).
    pub fn oauth(&self) -> crate::error::OAuthError {
        crate::error::OAuthError {
            status: self.status(),
            ..crate::error::OAuthError::invalid_request(self.to_string())
        }
    }
}

impl std::fmt::Display for PushRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushRefused::TooLarge(n) => write!(
                f,
                "the authorisation request holds {n} bytes of parameters (at most {MAX_PUSHED_BYTES})"
            ),
            PushRefused::Full(n) => write!(
                f,
                "the sandbox holds {n} bytes of pushed authorisation requests not yet used (at most \
                 {MAX_PUSHED_TOTAL_BYTES}): use them or let them expire, then push again"
            ),
        }
    }
}

/// An authorisation code and everything the exchange needs.
#[derive(Debug, Clone)]
pub struct Code {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI of the authorisation request (the exchange must repeat it).
    pub redirect_uri: String,
    /// The user who (auto-)consented.
    pub user_id: String,
    /// What the exchange does to the user's connections.
    pub flow: Flow,
    /// The granted scope.
    pub scope: String,
    /// The request's nonce, echoed in the id_token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge, if one was sent.
    pub code_challenge: Option<String>,
    /// Session id (`sid`).
    pub sid: String,
    /// Authentication time, when the request carried `max_age` (then `auth_time` is in the id_token).
    pub auth_time: Option<i64>,
    /// Expiry, virtual seconds.
    pub expires_at: i64,
    /// Already exchanged (kept until expiry to answer a replay precisely).
    pub used: bool,
    /// The auth request the code belongs to (Moneyhub exchanges it itself, in
    /// `PATCH /auth-requests/{id}`; the token endpoint refuses it).
    pub auth_request: Option<String>,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct Refresh {
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The scope of the tokens it renews.
    pub scope: String,
    /// The connection of the authorisation it came from.
    pub connection_id: Option<String>,
    /// Session id.
    pub sid: String,
    /// Expiry, virtual seconds.
    pub expires_at: i64,
}

/// Identity-service state: pushed authorisation requests, authorisation codes, client
/// assertion ids already used, refresh tokens.
#[derive(Debug, Default)]
pub struct IdentityState {
    pushed: HashMap<String, Pushed>,
    /// Bytes the pushed requests hold ([`Pushed::weight`]).
    pushed_bytes: usize,
    codes: HashMap<String, Code>,
    jtis: HashMap<(String, String), i64>,
    refresh: HashMap<String, Refresh>,
    interactions: HashMap<String, Interaction>,
    consent_mode: Option<ConsentMode>,
    inserts: u64,
}

impl IdentityState {
    fn inserted(&mut self, now: i64) {
        self.inserts += 1;
        if self.inserts.is_multiple_of(PRUNE_EVERY) {
            self.prune(now);
        }
    }

    /// Drops every expired entry.
    pub fn prune(&mut self, now: i64) {
        self.pushed.retain(|_, p| p.expires_at > now);
        self.pushed_bytes = self.pushed.values().map(Pushed::weight).sum();
        self.codes.retain(|_, c| c.expires_at > now);
        self.refresh.retain(|_, r| r.expires_at > now);
        self.interactions.retain(|_, i| i.expires_at > now);
        // An assertion id must be kept while the assertion could still be accepted.
        let keep_until = now - super::jose::LEEWAY_SECS;
        self.jtis.retain(|_, exp| *exp >= keep_until);
        if self.jtis.len() > MAX_JTIS {
            let mut exps: Vec<i64> = self.jtis.values().copied().collect();
            exps.sort_unstable();
            let cut = exps[self.jtis.len() - MAX_JTIS];
            self.jtis.retain(|_, exp| *exp > cut);
        }
    }

    /// Stores a pushed request under `request_uri`, unless it is over [`MAX_PUSHED_BYTES`] or
    /// the stored ones (expired ones pruned first) would go over [`MAX_PUSHED_TOTAL_BYTES`].
    pub fn push(&mut self, request_uri: String, pushed: Pushed, now: i64) -> Result<(), PushRefused> {
        let weight = pushed.weight();
        if weight > MAX_PUSHED_BYTES {
            return Err(PushRefused::TooLarge(weight));
        }
        if self.pushed_bytes + weight > MAX_PUSHED_TOTAL_BYTES {
            self.prune(now);
            if self.pushed_bytes + weight > MAX_PUSHED_TOTAL_BYTES {
                return Err(PushRefused::Full(self.pushed_bytes));
            }
        }
        self.pushed_bytes += weight;
        if let Some(old) = self.pushed.insert(request_uri, pushed) {
            self.pushed_bytes = self.pushed_bytes.saturating_sub(old.weight());
        }
        self.inserted(now);
        Ok(())
    }

    /// Takes a pushed request (request URIs are single use, RFC 9126 §4), if still valid.
    pub fn take_pushed(&mut self, request_uri: &str, now: i64) -> Option<Pushed> {
        let taken = self.pushed.remove(request_uri)?;
        self.pushed_bytes = self.pushed_bytes.saturating_sub(taken.weight());
        Some(taken).filter(|p| p.expires_at > now)
    }

    /// The consent mode set at runtime (`PUT /__sandbox/consent`), if any: it wins over the
    /// configuration's.
    pub fn consent_mode(&self) -> Option<ConsentMode> {
        self.consent_mode
    }

    /// Sets the consent mode at runtime.
    pub fn set_consent_mode(&mut self, mode: ConsentMode) {
        self.consent_mode = Some(mode);
    }

    /// Stores a consent interaction (the pages of one authorisation request) under its id.
    pub fn add_interaction(&mut self, id: String, interaction: Interaction, now: i64) {
        self.interactions.insert(id, interaction);
        self.inserted(now);
    }

    /// A live interaction.
    pub fn interaction(&self, id: &str, now: i64) -> Option<&Interaction> {
        self.interactions.get(id).filter(|i| i.expires_at > now)
    }

    /// A live interaction, to change it (the MFA step).
    pub fn interaction_mut(&mut self, id: &str, now: i64) -> Option<&mut Interaction> {
        self.interactions.get_mut(id).filter(|i| i.expires_at > now)
    }

    /// Ends an interaction (approved or cancelled: its pages answer no more).
    pub fn take_interaction(&mut self, id: &str, now: i64) -> Option<Interaction> {
        self.interactions.remove(id).filter(|i| i.expires_at > now)
    }

    /// Stores an authorisation code.
    pub fn add_code(&mut self, code: String, entry: Code, now: i64) {
        self.codes.insert(code, entry);
        self.inserted(now);
    }

    /// A live code (used or not).
    pub fn code(&self, code: &str, now: i64) -> Option<&Code> {
        self.codes.get(code).filter(|c| c.expires_at > now)
    }

    /// Marks a code used.
    pub fn use_code(&mut self, code: &str) {
        if let Some(c) = self.codes.get_mut(code) {
            c.used = true;
        }
    }

    /// Records an assertion id; false when the client already used it.
    pub fn use_jti(&mut self, client_id: &str, jti: &str, exp: i64, now: i64) -> bool {
        let key = (client_id.to_string(), jti.to_string());
        if self.jtis.get(&key).is_some_and(|e| *e >= now - super::jose::LEEWAY_SECS) {
            return false;
        }
        self.jtis.insert(key, exp);
        self.inserted(now);
        true
    }

    /// Stores a refresh token.
    pub fn add_refresh(&mut self, token: String, entry: Refresh, now: i64) {
        self.refresh.insert(token, entry);
        self.inserted(now);
    }

    /// Takes a live refresh token (rotation: each is used once).
    pub fn take_refresh(&mut self, token: &str, now: i64) -> Option<Refresh> {
        self.refresh.remove(token).filter(|r| r.expires_at > now)
    }

    /// Puts a refresh token back (when it was taken but the request failed for another reason).
    pub fn restore_refresh(&mut self, token: String, entry: Refresh) {
        self.refresh.insert(token, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jtis_are_single_use_until_expiry_and_pruned() {
        let mut s = IdentityState::default();
        assert!(s.use_jti("c", "j", 100, 50));
        assert!(!s.use_jti("c", "j", 100, 60));
        assert!(s.use_jti("other", "j", 100, 60));
        s.prune(200);
        assert!(s.jtis.is_empty());
        assert!(s.use_jti("c", "j", 300, 200));
    }

    #[test]
    fn pushed_requests_are_single_use_and_expire() {
        let mut s = IdentityState::default();
        let p =
            Pushed { client_id: "c".into(), params: Params::default(), expires_at: 100, auth_request: None };
        s.push("u".into(), p.clone(), 0).unwrap();
        assert!(s.take_pushed("u", 10).is_some());
        assert!(s.take_pushed("u", 10).is_none());
        s.push("v".into(), p, 0).unwrap();
        assert!(s.take_pushed("v", 100).is_none());
    }
}
