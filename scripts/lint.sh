#!/usr/bin/env bash
# The lint stage: swift format, shellcheck on every shell script, hadolint on the Dockerfiles,
# actionlint on the workflows, and `reconcile validate environments/`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/lint-tools.sh
TOOLS=.build-tools/venv/bin

step() { printf -- '-- %s\n' "$*"; }

step "swift format lint --strict"
swift format lint --strict --recursive Package.swift Sources Tests

step "shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run)
shellcheck "${scripts[@]}"
echo "${#scripts[@]} scripts clean"

step "hadolint"
"$TOOLS/hadolint" Dockerfile scripts/image/Dockerfile
echo "Dockerfile, scripts/image/Dockerfile clean"

step "actionlint"
mapfile -t workflows < <(git ls-files '.github/workflows/*.yml' 'examples/*.yml')
"$TOOLS/actionlint" -shellcheck "$(command -v shellcheck)" "${workflows[@]}"
echo "${#workflows[@]} workflows clean"

step "reconcile validate environments/"
# The same build flags as `make test`, so the test stage reuses this build.
swift build --enable-code-coverage --product reconcile 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
"$(swift build --enable-code-coverage --show-bin-path)/reconcile" validate environments/
