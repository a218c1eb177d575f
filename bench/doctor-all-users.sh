#!/usr/bin/env bash
# `moneyhub doctor --all-users` over 10,000 users with 3 connections each, on an in-process
# sandbox (loopback only): wall time and the requests made (token, list, other), read back
# from the sandbox's request log. Release build. Bounded: one run, then it stops.
#
#   bench/doctor-all-users.sh [users] [concurrency]      # defaults: 10000 32
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p moneyhub-cli --bin moneyhub --example doctor_bench
./target/release/examples/doctor_bench "${1:-10000}" "${2:-32}"
