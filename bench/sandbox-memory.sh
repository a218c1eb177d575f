#!/usr/bin/env bash
# Memory per stored transaction: fills a release sandbox with >= 1,000,000 transactions
# (users on the Moneyhub mock bank, 36 months of history each) and reads the process's
# resident set size (VmRSS from /proc) before and after.
#
#   bench/sandbox-memory.sh [target_transactions]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-1000000}
PORT=${PORT:-18791}
B=http://127.0.0.1:$PORT
cargo build --release -q -p moneyhub-cli
./target/release/moneyhub sandbox serve --port "$PORT" >/tmp/moneyhub-mem-sandbox.log 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$B/__sandbox/stats" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$SB/status; }
echo "empty sandbox: RSS $(( $(rss) / 1024 )) MiB"
curl -sf -X POST "$B/__sandbox/clock/freeze" >/dev/null
count=0
while [ "$count" -lt "$TARGET" ]; do
  curl -sf -H 'content-type: application/json' -d '{"count":50,"banks":["1ffe704d39629a929c8e293880fb449a"]}' "$B/__sandbox/users" >/dev/null
  # History arrives in the background a virtual second after connecting.
  curl -sf -H 'content-type: application/json' -d '{"minutes":3}' "$B/__sandbox/clock/advance" >/dev/null
  count=$(curl -sf "$B/__sandbox/stats" | python3 -c 'import sys,json; print(json.load(sys.stdin)["transactionsStored"])')
done
curl -sf "$B/__sandbox/stats"; echo
kb=$(rss)
echo "RSS with $count stored transactions: $(( kb / 1024 )) MiB ($(( kb * 1024 / count )) bytes per transaction, everything included)"
