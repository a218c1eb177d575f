#!/usr/bin/env bash
# Loading a fleet-sized scenario into the sandbox (issue 21): for each size, the time of
# POST /__sandbox/scenario (reset first; one connection per user, to the Mock bank) and the
# slowest answer to GET /oidc/certs and to GET /users?limit=1 (which needs the store) asked
# back to back while the load runs. Release build, loopback only, bounded: one load per size.
#
#   bench/scenario-load.sh [sizes...]        # default: 10000 20000 40000 100000
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("${@:-10000 20000 40000 100000}")
read -r -a SIZES <<<"${SIZES[*]}"
PORT=${PORT:-18793}
B=http://127.0.0.1:$PORT
cargo build --release -q -p moneyhub-cli --bin moneyhub
TARGET=${CARGO_TARGET_DIR:-target}
"$TARGET/release/moneyhub" sandbox serve --port "$PORT" >/tmp/moneyhub-scenario-load.log 2>&1 &
SB=$!
trap 'kill $SB 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "$B/__sandbox/stats" >/dev/null && break; sleep 0.1; done
echo "cores: $(nproc)"
python3 - "$B" "${SIZES[@]}" <<'PY'
import json, sys, threading, time, urllib.request
base, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
def call(method, path, body=None, headers=None):
    req = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()
tok = json.loads(call("POST", "/oidc/token", b"grant_type=client_credentials&scope=user%3Aread",
    {"Authorization": "Basic c2FuZGJveC1jbGllbnQ6c2FuZGJveC1zZWNyZXQ=",
     "Content-Type": "application/x-www-form-urlencoded"}))["access_token"]
for n in sizes:
    users = [{"clientUserId": f"fleet-{i}", "connections": [{"bank": "Moneyhub Open Banking Mock"}]} for i in range(n)]
    body = json.dumps({"text": json.dumps({"users": users}), "name": "fleet.json", "reset": True}).encode()
    done, worst = threading.Event(), {"certs": 0.0, "users": 0.0}
    count = [0]
    def probe():
        while not done.is_set():
            for name, path, h in (("certs", "/oidc/certs", {}), ("users", "/users?limit=1", {"Authorization": "Bearer " + tok})):
                t = time.monotonic(); call("GET", path, None, h)
                worst[name] = max(worst[name], time.monotonic() - t); count[0] += 1
    p = threading.Thread(target=probe); p.start()
    t = time.monotonic()
    answer = call("POST", "/__sandbox/scenario", body, {"Content-Type": "application/json"})
    took = time.monotonic() - t
    done.set(); p.join()
    loaded = len(json.loads(answer)["users"])
    print(f"{n:>7} users: load {took:6.2f} s ({len(body)/1e6:.1f} MB in, {len(answer)/1e6:.1f} MB out, {loaded} loaded); "
          f"{count[0]} requests meanwhile, slowest GET /oidc/certs {worst['certs']*1000:.0f} ms, GET /users {worst['users']*1000:.0f} ms")
PY
