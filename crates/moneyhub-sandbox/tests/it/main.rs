//! Integration tests of the sandbox over real HTTP (one test binary for the crate).

mod identity;
mod lifecycle;
mod lifecycle_webhooks;
mod node_conformance;
mod scenarios;
mod support;
// Swagger conformance, hostile input and fuzzing.
mod as_moneyhub;
mod bad_input;
mod bounds;
mod connect_ways;
mod consent_pages;
mod control_gate;
mod control_types;
mod faults;
mod fuzz;
mod schema;
mod swagger;
mod webhooks;
