//! Integration tests of the mirror, over real HTTP against in-process sandboxes.

mod convergence;
mod scratch;
mod support;
