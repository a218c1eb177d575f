//! HTTP transport: the request table (`route`: one value per route, from which every request
//! is built), requests with retries ([`retry`]), the token cache (`tokens`), the request
//! plumbing (`http`) and TLS (`tls`).

pub(crate) mod http;
pub mod retry;
pub(crate) mod route;
pub(crate) mod tls;
pub(crate) mod tokens;
