#!/usr/bin/env bash
# Benchmark (not a test) of what reconcile asks git: `history` over a file with 1,000 commits,
# and the two git commands an apply runs per environment (the last commit that changed the file,
# and whether it has changes). Usage: bench-git.sh RECONCILE_BINARY [COMMITS] [RUNS]
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BIN=${1:?usage: bench-git.sh RECONCILE_BINARY [COMMITS] [RUNS]}
COMMITS=${2:-1000}
RUNS=${3:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"
mkdir -p "$repo/environments"
git -C "$repo" init -q
# fast-import writes the 1,000 commits in well under a second.
{
    for i in $(seq 1 "$COMMITS"); do
        content="service: bench
environment: staging
image: acme/app:v$i
port: 18001
"
        printf 'commit refs/heads/master\ncommitter Bench <b@example.com> %d +0000\ndata <<END\nrelease %d\nEND\n' \
            "$((1700000000 + i))" "$i"
        printf 'M 100644 inline environments/staging.yml\ndata %d\n%s\n' "${#content}" "$content"
    done
} | git -C "$repo" fast-import --quiet
git -C "$repo" checkout -q master
file="$repo/environments/staging.yml"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

history=$(for _ in $(seq "$RUNS"); do ms "$BIN" history --limit "$COMMITS" --state-dir "$work/state" "$file"; done | median)
rows=$("$BIN" history --limit "$COMMITS" --state-dir "$work/state" "$file" 2>/dev/null | wc -l)
git_apply=$(for _ in $(seq "$RUNS"); do
    ms bash -c "git -C '$repo/environments' log -1 --format=%H -- staging.yml && git -C '$repo/environments' status --porcelain -- staging.yml"
done | median)
version=$(for _ in $(seq "$RUNS"); do ms "$BIN" version; done | median)
echo "history over $COMMITS commits: median ${history} ms ($((rows - 2)) revisions listed, $RUNS runs; the process itself starts in ${version} ms)"
echo "git per environment in apply (log -1 + status): median ${git_apply} ms ($RUNS runs)"
