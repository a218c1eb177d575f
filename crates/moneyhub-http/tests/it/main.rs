//! Integration tests of the hardened accept loop, over real sockets on loopback.

mod serve;
mod support;
mod tls;
