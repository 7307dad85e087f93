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

step "deploy workflow: only this repository's pushes deploy"
# A fork's pull request from a branch named main completes a `ci` workflow_run too; the staging
# job must check that the run was a push of this repository, and the plan job that the pull
# request comes from this repository (the runner holds the Docker socket).
for guard in "workflow_run.event == 'push'" "workflow_run.head_repository.full_name == github.repository" \
    "pull_request.head.repo.full_name == github.repository"; do
    grep -qF "$guard" examples/deploy.yml || { echo "examples/deploy.yml lacks the guard: $guard"; exit 1; }
done
echo "examples/deploy.yml guards its self-hosted jobs"

step "reconcile validate environments/"
# The same build flags as `make test`, so the test stage reuses this build.
swift build --enable-code-coverage --product reconcile 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
"$(swift build --enable-code-coverage --show-bin-path)/reconcile" validate environments/
