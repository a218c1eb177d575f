//! Integration tests of the sandbox over real HTTP (one test binary for the crate).

mod lifecycle;
mod support;
