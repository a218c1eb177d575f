#!/usr/bin/env bash
# Load figures for the sandbox, on loopback only: requests/s and latency percentiles of the
# connections list, GET /v3/transactions?limit=1000 and the token endpoint, measured with wrk
# against a release build of `moneyhub sandbox serve`.
#
#   bench/sandbox-load.sh [duration_seconds] [connections]
#
# Needs wrk (Debian package `wrk`). Bounded: each run lasts `duration` seconds and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=${2:-64}
PORT=${PORT:-18790}
B=http://127.0.0.1:$PORT
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)"; exit 2; }

cargo build --release -q -p moneyhub-cli
./target/release/moneyhub sandbox serve --port "$PORT" >/tmp/moneyhub-bench-sandbox.log 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$B/oidc/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done

tok() { curl -sf -u sandbox-client:sandbox-secret -d grant_type=client_credentials --data-urlencode "scope=$1" ${2:+-d sub=$2} "$B/oidc/token" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])'; }
USER_ID=$(curl -sf -H 'content-type: application/json' -d '{"count":1,"banks":["1ffe704d39629a929c8e293880fb449a","b74f1a79f0be8bdb857d82d0f041d7d2","3c4637d3178c9a28ce655bfbf8e27a10"]}' "$B/__sandbox/users" | python3 -c 'import sys,json; print(json.load(sys.stdin)[0]["userId"])')
# Background history (36 months) lands a virtual second after connecting.
curl -sf -H 'content-type: application/json' -d '{"seconds":2}' "$B/__sandbox/clock/advance" >/dev/null
MGMT=$(tok connection:read)
DATA=$(tok "transactions:read:all" "$USER_ID")
COUNT=$(curl -sf -H "Authorization: Bearer $DATA" "$B/v3/transactions?onlyCount=true" | python3 -c 'import sys,json; print(json.load(sys.stdin)["meta"]["count"])')
echo "user $USER_ID with 3 connections and $COUNT transactions; wrk -t2 -c$CONNS -d${DURATION}s"

cat > /tmp/moneyhub-bench-token.lua <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&scope=user%3Aread"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ="
LUA

run() {
  local name=$1; shift
  echo "== $name"
  wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$@" | grep -E "Requests/sec|Latency  |  50%|  90%|  99%|Non-2xx|Socket errors"
}
run "GET /users/{id}/connections" -H "Authorization: Bearer $MGMT" "$B/users/$USER_ID/connections"
run "GET /v3/transactions?limit=1000" -H "Authorization: Bearer $DATA" "$B/v3/transactions?limit=1000"
run "POST /oidc/token (client_credentials, client_secret_basic)" -s /tmp/moneyhub-bench-token.lua "$B/oidc/token"
