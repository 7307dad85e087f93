#!/usr/bin/env bash
# Apply benchmarks against the local engine (bench.sh calls this with the release binary):
#   1. v1 -> v2 on an image that is ready at once: wall time of the whole `reconcile apply`.
#   2. what a client polling every 20 ms sees during that switch: the span of failed requests.
#   3. a failed deploy (unhealthy image): time until v1 serves again, against the declared budget.
#   4. a crashing image: time from the crash (the engine's die event) until v1 serves again.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BIN=$1
RUNS=${BENCH_APPLY_RUNS:-5}
PORT=${BENCH_PORT:-18100}
work=$(mktemp -d)
export RECONCILE_STATE_DIR="$work/state"
service="bench-apply-$$"
client=0
cleanup() {
    if [ "$client" -gt 0 ]; then kill "$client" 2>/dev/null || true; fi
    docker ps -aq --filter "name=^${service}-" | xargs -r docker rm -f >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT


env_file() { # IMAGE [EXTRA]
    cat >"$work/bench.yml" <<YAML
service: $service
environment: bench
image: reconcile-fixture:$1
port: $PORT
container_port: 8080
stop_timeout: 2s
health: {path: /health, expect_json: {status: healthy}, startup: 2s, interval: 500ms, attempts: 4, timeout: 1s}
smoke: [{path: /items}, {path: /}]
${2:-}
YAML
}

# apply EXPECTED-EXIT: runs apply and stops the benchmark if it ends otherwise.
apply() {
    local code=0
    "$BIN" apply "$work/bench.yml" >"$work/apply.log" 2>&1 || code=$?
    if [ "$code" -ne "$1" ]; then
        echo "bench-apply: apply exited $code, expected $1:" >&2
        tail -n 5 "$work/apply.log" >&2
        exit 1
    fi
}

# Containers of an earlier benchmark run that was interrupted.
docker ps -aq --filter "name=^bench-apply-" | xargs -r docker rm -f >/dev/null

# A client hitting /health every 20 ms, one line per request: "<ms> ok|fail".
start_client() {
    : >"$work/client.log"
    ( while :; do
        if curl -s -o /dev/null -m 0.25 -f "http://127.0.0.1:$PORT/health"; then echo "$(now_ms) ok"; else echo "$(now_ms) fail"; fi
        sleep 0.02
    done >>"$work/client.log" ) &
    client=$!
}
stop_client() {
    if [ "$client" -gt 0 ]; then kill "$client" 2>/dev/null || true; wait "$client" 2>/dev/null || true; fi
    client=0
}
# First successful request after the last failure that follows T0: when the service was back.
back_after() { awk -v t0="$1" '$1 > t0 && $2 == "fail" { last = $1 } $1 > t0 && $2 == "ok" && last && $1 > last && !back { back = $1 } END { print back }' "$work/client.log"; }

# Span of failed requests in the client log (first failure to the first success after the last one).
outage() {
    awk '$2 == "fail" { if (!first) first = $1; last = $1 }
         $2 == "ok" && last && !after && $1 > last { after = $1 }
         END { if (!first) print 0; else print ((after ? after : last) - first) }' "$work/client.log"
}


env_file v1 && apply 0
switch_ms=(); outage_ms=()
for i in $(seq 1 "$RUNS"); do
    image=$([ $((i % 2)) -eq 1 ] && echo v2 || echo v1)
    env_file "$image"
    start_client; sleep 0.3
    t0=$(now_ms); apply 0; t1=$(now_ms)
    sleep 0.3; stop_client
    switch_ms+=($((t1 - t0))); outage_ms+=("$(outage)")
done
echo "apply v1<->v2 (ready at once), $RUNS runs: wall ms ${switch_ms[*]} (median $(printf '%s\n' "${switch_ms[@]}" | median))"
echo "client every 20 ms during the switch: failed span ms ${outage_ms[*]} (median $(printf '%s\n' "${outage_ms[@]}" | median))"

env_file v1 && apply 0
env_file unhealthy-500
start_client; sleep 0.3
t0=$(now_ms); apply 3; t1=$(now_ms)
sleep 1; stop_client  # longer than curl's timeout, so the first success is logged
restored=$(back_after "$t0")
echo "failed deploy (500): apply wall $((t1 - t0)) ms; v1 serving again $((restored - t0)) ms after apply started (declared budget 2s + 4 x 500ms = 4000 ms, bound budget + 2 s = 6000 ms)"

env_file v1 && apply 0
env_file crash
since=$(date +%s)
start_client; sleep 0.3
apply 3
sleep 1; stop_client
die_ns=$(docker events --since "$since" --until "$(($(date +%s) + 1))" --filter type=container --filter event=die \
    --format '{{.TimeNano}} {{index .Actor.Attributes "image"}}' | awk '$2 == "reconcile-fixture:crash" { print $1; exit }')
die_ms=$((${die_ns:-0} / 1000000))
back=$(back_after "$die_ms")
echo "crashing image: v1 serving again $((back - die_ms)) ms after the crash"
