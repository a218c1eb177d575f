//! Integration tests of the mirror, over real HTTP against in-process sandboxes.

mod convergence;
mod crash;
mod db;
mod faults;
mod group_commit;
mod observability;
mod one_time;
mod security;
mod storage_faults;
mod support;
mod tls;
mod workers;
