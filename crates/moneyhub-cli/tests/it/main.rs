//! Integration tests of the `moneyhub` binary: each runs the real binary against an in-process
//! sandbox (frozen clock, fixed seed) started by the test, or with `--sandbox`.

mod support;

mod basics;
mod browser;
mod catalog;
mod config;
mod connect;
mod connect_ways;
mod connections;
mod demo;
mod doctor;
mod errors;
mod files;
mod habits;
mod lifecycle;
mod mirror;
mod redaction;
mod sandbox_control;
mod sandbox_serve;
mod servers;
mod terminal;
mod transactions;
mod users;
