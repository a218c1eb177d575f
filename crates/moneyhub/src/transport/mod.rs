//! HTTP transport: the request table (`route`: one value per route, from which every request
//! is built), requests with retries ([`retry`]), the token cache (`tokens`) and the request
//! plumbing (`http`).

pub(crate) mod http;
pub mod retry;
pub(crate) mod route;
pub(crate) mod tokens;
