#!/usr/bin/env bash
# Benchmarks (not tests): whole-process timings of the release binary against the local engine.
# `make bench` builds the release binary and the fixture images first. Record results in
# docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(swift build -c release --show-bin-path)
echo "machine: $(nproc) cores, $(uname -r), $(docker version --format 'dockerd {{.Server.Version}} (API {{.Server.APIVersion}})')"
"$BIN/reconcile-bench" "$BIN/reconcile" "${BENCH_ENVIRONMENTS:-20}" "${BENCH_RUNS:-30}"
"$(dirname "$0")/bench-apply.sh" "$BIN/reconcile"
"$(dirname "$0")/bench-bluegreen.sh" "$BIN/reconcile"
"$(dirname "$0")/bench-watch.sh" "$BIN/reconcile"
"$(dirname "$0")/bench-engines.sh" "$BIN/reconcile"
"$(dirname "$0")/bench-git.sh" "$BIN/reconcile" 1000 15
