//! Integration tests of the `moneyhub` client against an in-process sandbox over real HTTP.

mod accounts;
mod auth;
mod auth_matrix;
mod browser;
mod concurrency;
mod config;
mod connect_ways;
mod connections;
mod errors;
mod paging;
mod private_key_jwt;
mod redaction;
mod support;
mod sync;
mod transactions;
mod users;
mod webhooks;
