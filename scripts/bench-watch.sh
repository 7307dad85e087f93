#!/usr/bin/env bash
# watch's figures (bench.sh calls this with the release binary):
#   1. heal time: `docker rm -f` of a live container until it serves again, under watch, 5 runs;
#   2. idle cost: watch over 20 environments in sync for BENCH_WATCH_SECONDS (600): CPU time used
#      (utime + stime from /proc) and resident memory after the first pass and at the end.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BIN=$1
SECONDS_IDLE=${BENCH_WATCH_SECONDS:-600}
BASE=${BENCH_WATCH_PORT:-18800}
work=$(mktemp -d)
export RECONCILE_STATE_DIR="$work/state"
service="bench-watch-$$"
watch=0
cleanup() {
    if [ "$watch" -gt 0 ]; then kill "$watch" 2>/dev/null || true; fi
    docker ps -aq --filter "name=^${service}-" | xargs -r docker rm -f >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
docker ps -aq --filter "name=^bench-watch-" | xargs -r docker rm -f >/dev/null

mkdir -p "$work/environments"
for i in $(seq 0 19); do
    cat >"$work/environments/e$i.yml" <<YAML
service: $service
environment: e$i
image: reconcile-fixture:v1
pull: never
port: $((BASE + i))
container_port: 8080
stop_timeout: 1s
health: {path: /health, startup: 2s, interval: 200ms, attempts: 5, timeout: 1s}
YAML
done
"$BIN" watch "$work/environments" --interval 60s >"$work/watch.log" 2>&1 &
watch=$!
for _ in $(seq 1 600); do
    [ "$(grep -c 'converged (start' "$work/watch.log" || true)" -ge 20 ] && break
    sleep 0.1
done

heals=()
for run in 1 2 3 4 5; do
    port=$((BASE + run))
    t0=$(now_ms)
    docker rm -f "${service}-e$run" >/dev/null
    until curl -sf -m 1 "http://127.0.0.1:$port/health" >/dev/null; do sleep 0.05; done
    heals+=($(($(now_ms) - t0)))
done
echo "heal after docker rm -f under watch, 5 runs: ms ${heals[*]} (median $(printf '%s\n' "${heals[@]}" | median))"
sleep 3

cpu() { awk '{ print $14 + $15 }' "/proc/$watch/stat"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$watch/status"; }
ticks=$(getconf CLK_TCK)
cpu0=$(cpu) rss0=$(rss)
sleep "$SECONDS_IDLE"
cpu1=$(cpu) rss1=$(rss)
echo "idle over 20 environments for ${SECONDS_IDLE} s (interval 60s): CPU $(awk -v a="$cpu0" -v b="$cpu1" -v t="$ticks" 'BEGIN { printf "%.2f", (b - a) / t }') s; RSS ${rss0} kB after the first pass, ${rss1} kB at the end"
