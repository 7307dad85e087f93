#!/usr/bin/env bash
# Runs every test (unit and real-engine integration) with coverage, fails under the coverage
# floor for Sources/, then lints. `make test` runs it after the engine and fixtures are ready.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN_COVERAGE=${MIN_COVERAGE:-80}

step() { printf '\n== %s\n' "$*"; }

# Containers left by an earlier run that was killed (every test container carries this label).
docker ps -aq --filter label=io.reconcile.test | xargs -r docker rm -f >/dev/null
docker images -q --filter label=io.reconcile.test | sort -u | xargs -r docker rmi -f >/dev/null

step "swift test --enable-code-coverage"
# A hard limit so that a hung test fails the run instead of eating CI's time.
timeout -s KILL 1500 swift test --enable-code-coverage 2>&1 | tee /tmp/reconcile-test.log | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking)' || {
    echo "tests failed (full log: /tmp/reconcile-test.log)"
    exit 1
}

step "line coverage of Sources/"
BIN=$(swift build --show-bin-path)
LLVM_COV=$(dirname "$(readlink -f "$(command -v swift)")")/llvm-cov
"$LLVM_COV" report "$BIN/reconcilePackageTests.xctest" -instr-profile="$BIN/codecov/default.profdata" \
    -ignore-filename-regex='(\.build|Tests)/' >/tmp/reconcile-coverage.txt
awk '/^Filename/ { printf "%-50s %7s %7s %8s\n", "file", "lines", "missed", "cover"; next } !/^-/ && NF >= 10 { printf "%-50s %7s %7s %8s\n", $1, $8, $9, $10 }' /tmp/reconcile-coverage.txt
total=$(awk '/^TOTAL/ { printf "%.1f", 100 * ($8 - $9) / $8 }' /tmp/reconcile-coverage.txt)
echo "line coverage of Sources/: ${total}% (floor ${MIN_COVERAGE}%)"
awk -v t="$total" -v m="$MIN_COVERAGE" 'BEGIN { exit !(t >= m) }' || {
    echo "coverage ${total}% is under ${MIN_COVERAGE}%"
    exit 1
}

step "swift format lint --strict"
swift format lint --strict --recursive Package.swift Sources Tests
echo "lint clean"
