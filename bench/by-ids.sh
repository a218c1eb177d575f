#!/usr/bin/env bash
# Fetch 10,000 transactions by ids for one user, with moneyhub-rs and with Moneyhub's official
# Node client (getTransactions({ids}) in batches of 50), against the same release sandbox on
# loopback. Prints each run as JSON and the ratios.
#
#   bench/by-ids.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-10000}
PORT=${PORT:-18792}
B=http://127.0.0.1:$PORT
NODE_DIR=target/node-conformance
command -v node >/dev/null || { echo "node not found"; exit 2; }
if [ ! -d "$NODE_DIR/node_modules/@mft/moneyhub-api-client" ]; then
  mkdir -p "$NODE_DIR" && cp crates/moneyhub-sandbox/tests/node/package.json "$NODE_DIR/"
  (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error)
fi
cp bench/node-by-ids.js "$NODE_DIR/"
cargo build --release -q -p moneyhub-cli --bins
cargo build --release -q -p moneyhub --example by_ids_bench
./target/release/moneyhub sandbox serve --port "$PORT" >/tmp/moneyhub-byids-sandbox.log 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$B/__sandbox/stats" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "$B/__sandbox/clock/freeze" >/dev/null
HV=$(curl -sf "$B/oidc/.well-known/all-connections" | python3 -c 'import sys,json; print([p["id"] for p in json.load(sys.stdin) if p["name"]=="Sandbox High Volume Bank"][0])')
USER_ID=$(curl -sf -H 'content-type: application/json' -d "{\"count\":1,\"banks\":[\"$HV\",\"1ffe704d39629a929c8e293880fb449a\"]}" "$B/__sandbox/users" | python3 -c 'import sys,json; print(json.load(sys.stdin)[0]["userId"])')
curl -sf -H 'content-type: application/json' -d '{"seconds":2}' "$B/__sandbox/clock/advance" >/dev/null
TOKEN=$(curl -sf -u sandbox-client:sandbox-secret -d grant_type=client_credentials -d scope=transactions:read:all -d sub="$USER_ID" "$B/oidc/token" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
IDS=/tmp/moneyhub-byids.txt
python3 - "$B" "$TOKEN" "$COUNT" "$IDS" <<'PY'
import json, sys, urllib.request
base, token, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ids, offset = [], 0
while len(ids) < count:
    req = urllib.request.Request(f"{base}/v3/transactions?limit=1000&offset={offset}", headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(req))["data"]
    if not page: break
    ids += [t["id"] for t in page]; offset += 1000
open(out, "w").write("\n".join(ids[:count]) + "\n")
print(f"user {sys.argv[0] and ''}{len(ids[:count])} ids collected", file=sys.stderr)
PY
export MH_BASE=$B MH_USER=$USER_ID MH_IDS=$IDS
RUST_SEQ=$(MH_CONCURRENCY=1 ./target/release/examples/by_ids_bench)
RUST=$(MH_CONCURRENCY=4 ./target/release/examples/by_ids_bench)
NODE_SEQ=$(cd "$NODE_DIR" && MH_CONCURRENCY=1 node node-by-ids.js)
NODE_CONC=$(cd "$NODE_DIR" && MH_CONCURRENCY=4 node node-by-ids.js)
printf '%s\n%s\n%s\n%s\n' "$RUST_SEQ" "$RUST" "$NODE_SEQ" "$NODE_CONC"
python3 - "$RUST" "$NODE_SEQ" "$NODE_CONC" "$RUST_SEQ" <<'PY'
import json, sys
r, ns, nc, rs = (json.loads(a) for a in sys.argv[1:5])
for n in (ns, nc):
    print(f"vs node concurrency {n['concurrency']}: {n['ms']/r['ms']:.1f}x faster, {n['peakRssKiB']/r['peakRssKiB']:.1f}x less peak memory (moneyhub-rs concurrency {r['concurrency']})")
print(f"moneyhub-rs sequential vs node sequential: {ns['ms']/rs['ms']:.1f}x faster, {ns['peakRssKiB']/rs['peakRssKiB']:.1f}x less peak memory")
PY
