#!/usr/bin/env bash
# Issue 21's fleet figures side by side in one run, on loopback only, bounded in time:
#
#   * backfill of first-seen users (36 months of history, ~5,500 transactions each) into
#     SQLite and PostgreSQL, beside the raw-insert ceiling the same run measures, with the
#     API requests per user (and the floor: one connections list + one request per page of
#     1,000 per connection);
#   * durable webhook acknowledgements per second (wrk, 16 connections, unsigned JSON
#     webhooks with unique ids) into SQLite and PostgreSQL, with p99 latency;
#   * /readyz and /metrics latency with PROBE_ROWS inbox rows (half applied, with their
#     ledger rows);
#   * the sandbox loading a scenario of SCENARIO_USERS users (POST /__sandbox/scenario);
#   * time per webhook with 2 and with 6 workers, one webhook per claim (CLAIM_EVENTS per
#     backfilled user, webhooks that need no API request: the claim and its writes alone);
#
# and the machine's core count.
#
#   bench/fleet.sh
#   USERS=200 WORKERS=2 ACK_SECONDS=10 PROBE_ROWS=10000000 SCENARIO_USERS=100000 bench/fleet.sh
#   BACKFILL=0 bench/fleet.sh        # the durable acks alone
#
# PostgreSQL: MONEYHUB_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test; the
# bench works in schemas of its own and drops them). Needs wrk (Debian package `wrk`).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-200}
WORKERS=${WORKERS:-2}
ACK_SECONDS=${ACK_SECONDS:-10}
ACK_CONNS=${ACK_CONNS:-16}
PROBE_ROWS=${PROBE_ROWS:-10000000}
SCENARIO_USERS=${SCENARIO_USERS:-100000}
CLAIM_EVENTS=${CLAIM_EVENTS:-30}
PORT=${PORT:-18791}
export MONEYHUB_TEST_PG_URL=${MONEYHUB_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)"; exit 2; }
TARGET=${CARGO_TARGET_DIR:-target}

echo "fleet bench: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release -q -p moneyhub-mirror --example ingest_bench --example mirror_node

if [[ ${BACKFILL:-1} != 0 ]]; then
  echo "== backfill beside the raw-insert ceiling, requests per user, claims with 2 and 6 workers, probes, scenario load"
  timeout 1800 "$TARGET/release/examples/ingest_bench" --users "$USERS" --workers "$WORKERS" --skip-webhooks \
    --probe-rows "$PROBE_ROWS" --scenario-users "$SCENARIO_USERS" --claim-events "$CLAIM_EVENTS"
fi

echo "== durable acks: wrk -t2 -c$ACK_CONNS -d${ACK_SECONDS}s, unsigned JSON webhooks with unique ids"
cat > /tmp/moneyhub-fleet-webhook.lua <<'LUA'
-- Each request a new webhook id (thread prefix + counter) for one of 1,000 users.
local prefix, n = 0, 0
function setup(thread) thread:set("seed", math.random(0, 0xffffff)) end
function init(args) prefix = seed or math.random(0, 0xffffff) end
function request()
  n = n + 1
  local id = string.format("%08x-0000-4000-8000-%012x", prefix, n)
  local user = string.format("5c79210bbac25ecb%08x", n % 1000)
  local body = '{"id":"' .. id .. '","eventType":"deletedAccount","userId":"' .. user ..
    '","payload":{"accountId":"4f2a9c1e-8b7d-4e3a-9c51-2d6e0f8a7b13"}}'
  return wrk.format("POST", "/webhooks", { ["Content-Type"] = "application/json" }, body)
end
LUA
ack_run() {
  local name=$1 db=$2
  # The workers wait an hour before taking anything (coalescing window): the receiver alone.
  "$TARGET/release/examples/mirror_node" --db "$db" --listen "127.0.0.1:$PORT" \
    --identity "http://127.0.0.1:9/" --api "http://127.0.0.1:9/v3" --client-id bench --client-secret bench \
    --workers 1 --allow-unsigned-json --coalesce-ms 3600000 >/tmp/moneyhub-fleet-node.log 2>&1 &
  local node=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  local out
  out=$(wrk -t2 -c"$ACK_CONNS" -d"${ACK_SECONDS}s" --latency -s /tmp/moneyhub-fleet-webhook.lua \
    "http://127.0.0.1:$PORT/webhooks")
  [[ -n ${WRK_FULL:-} ]] && echo "$out" >&2
  kill -INT "$node" 2>/dev/null || true
  wait "$node" 2>/dev/null || true
  printf '%-10s acks %8s/s  p50 %s  p99 %s  non-2xx %s\n' "$name" \
    "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
    "$(echo "$out" | awk '$1 == "50%" {print $2}')" \
    "$(echo "$out" | awk '$1 == "99%" {print $2}')" \
    "$(echo "$out" | awk '/Non-2xx/ {print $5}' | grep . || echo 0)"
}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
ack_run SQLite "sqlite:$DIR/acks.db"
SCHEMA=fleet_acks_$$
SEP='?'; [[ $MONEYHUB_TEST_PG_URL == *\?* ]] && SEP='&'
ack_run PostgreSQL "$MONEYHUB_TEST_PG_URL${SEP}schema=$SCHEMA"
psql -q "$MONEYHUB_TEST_PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
