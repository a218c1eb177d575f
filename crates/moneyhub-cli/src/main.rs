//! The `moneyhub` command-line tool.
fn main() {}
