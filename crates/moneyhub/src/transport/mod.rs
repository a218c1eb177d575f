//! HTTP transport: requests with retries ([`retry`]), the token cache (`tokens`) and the
//! request plumbing (`http`).

pub(crate) mod http;
pub mod retry;
pub(crate) mod tokens;
