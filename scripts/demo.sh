#!/usr/bin/env bash
# The local demo: runs reconcile against this machine's Docker engine with the shipped
# environments/ and the locally built stand-in image acme/devops-fastapi (see
# scripts/fixture-images.sh). `make demo` builds everything first.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN="$(swift build --show-bin-path)/reconcile"

show() {
    printf '\n$ reconcile %s\n' "$*"
    "$BIN" "$@"
    printf '(exit %s)\n' "$?"
}

show version
show validate environments/
show diff environments/staging.yml
show diff --format markdown environments/staging.yml
show status environments/
printf '\nExit codes: 0 in sync / valid, 1 error (nothing changed), 2 diff: changes pending.\n'
