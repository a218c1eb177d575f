//! Integration tests of the mirror, over real HTTP against in-process sandboxes.

mod convergence;
mod crash;
mod db;
mod faults;
mod one_time;
mod observability;
mod security;
mod storage_faults;
mod support;
mod tls;
mod workers;
