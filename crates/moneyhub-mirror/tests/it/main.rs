//! Integration tests of the mirror, over real HTTP against in-process sandboxes.

mod claiming;
mod convergence;
mod crash;
mod db;
mod faults;
#[cfg(unix)]
mod fleet;
mod group_commit;
mod lifecycle;
mod node;
mod observability;
mod one_time;
mod readiness;
mod retention;
mod security;
mod status;
mod storage_faults;
mod support;
mod tls;
mod workers;
