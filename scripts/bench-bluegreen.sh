#!/usr/bin/env bash
# Stop-first against blue-green on the same machine and run (bench.sh calls this with the
# release binary): for each strategy, RUNS updates v1 <-> v2 while a client opens a new
# connection every 20 ms. Per update: failed requests, the longest gap between two good answers,
# and the wall time of `reconcile apply`. Then the proxy's switch itself: the two runtime
# commands of a switch (and of a switch back, the same two reversed), timed over the admin socket.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BIN=$1
RUNS=${BENCH_BLUEGREEN_RUNS:-5}
PORT=${BENCH_BLUEGREEN_PORT:-18120}
work=$(mktemp -d)
export RECONCILE_STATE_DIR="$work/state"
service="bench-bg-$$"
client=0
cleanup() {
    if [ "$client" -gt 0 ]; then kill "$client" 2>/dev/null || true; fi
    docker ps -aq --filter "name=^${service}-" | xargs -r docker rm -f >/dev/null
    docker network rm "${service}-bench-net" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
docker ps -aq --filter "name=^bench-bg-" | xargs -r docker rm -f >/dev/null


env_file() { # IMAGE STRATEGY
    local strategy=""
    if [ "$2" = blue-green ]; then
        strategy=$'strategy: blue-green\nproxy: {image: reconcile-proxy:2.6, drain_timeout: 10s}'
    fi
    cat >"$work/bench.yml" <<YAML
service: $service
environment: bench
image: reconcile-fixture:$1
pull: never
port: $PORT
container_port: 8080
stop_timeout: 2s
health: {path: /health, expect_json: {status: healthy}, startup: 2s, interval: 300ms, attempts: 4, timeout: 1s}
smoke: [{path: /items}, {path: /}]
$strategy
YAML
}

apply() {
    local code=0
    "$BIN" apply "$work/bench.yml" >"$work/apply.log" 2>&1 || code=$?
    if [ "$code" -ne 0 ]; then
        echo "bench-bluegreen: apply exited $code:" >&2
        tail -n 5 "$work/apply.log" >&2
        exit 1
    fi
}

start_client() {
    : >"$work/client.log"
    (while :; do
        if curl -s -o /dev/null -m 1 -f "http://127.0.0.1:$PORT/health"; then echo "$(now_ms) ok"; else echo "$(now_ms) fail"; fi
        sleep 0.02
    done >>"$work/client.log") &
    client=$!
}
stop_client() {
    if [ "$client" -gt 0 ]; then kill "$client" 2>/dev/null || true; wait "$client" 2>/dev/null || true; fi
    client=0
}
failed() { grep -c ' fail$' "$work/client.log" || true; }
gap() { awk '$2 == "ok" { if (last) { d = $1 - last; if (d > max) max = d } last = $1 } END { print max + 0 }' "$work/client.log"; }

for strategy in stop-first blue-green; do
    env_file v1 "$strategy" && apply
    walls=() fails=() gaps=()
    for i in $(seq 1 "$RUNS"); do
        env_file "$([ $((i % 2)) -eq 1 ] && echo v2 || echo v1)" "$strategy"
        start_client
        sleep 0.3
        t0=$(now_ms)
        apply
        t1=$(now_ms)
        sleep 0.3
        stop_client
        walls+=($((t1 - t0))) fails+=("$(failed)") gaps+=("$(gap)")
    done
    echo "$strategy, $RUNS updates: failed requests ${fails[*]}; longest gap ms ${gaps[*]} (median $(printf '%s\n' "${gaps[@]}" | median)); apply wall ms ${walls[*]} (median $(printf '%s\n' "${walls[@]}" | median))"
done

socket="$RECONCILE_STATE_DIR/proxy/${service}-bench-proxy/admin.sock"
address=$(docker inspect -f "{{(index .NetworkSettings.Networks \"${service}-bench-net\").IPAddress}}" "${service}-bench")
switches=()
for _ in $(seq 1 20); do
    t0=$(date +%s%N)
    printf 'set server app/next addr %s port 8080; set server app/next state ready; set server app/live state maint\n' "$address" |
        socat - "UNIX-CONNECT:$socket" >/dev/null
    t1=$(date +%s%N)
    printf 'set server app/live state ready; set server app/next state maint\n' | socat - "UNIX-CONNECT:$socket" >/dev/null
    switches+=($(((t1 - t0) / 1000)))
done
echo "proxy switch (and switch back: the same commands), 20 runs: median $(printf '%s\n' "${switches[@]}" | median) µs, max $(printf '%s\n' "${switches[@]}" | sort -n | tail -1) µs"
