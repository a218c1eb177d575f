//! Integration tests of the mirror, over real HTTP against in-process sandboxes.

mod convergence;
mod crash;
mod db;
mod faults;
mod observability;
mod security;
mod support;
mod workers;
