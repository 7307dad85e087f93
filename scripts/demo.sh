#!/usr/bin/env bash
# The local demo: runs reconcile against this machine's Docker engine with the shipped
# environments/ and the locally built stand-in image acme/devops-fastapi (see
# scripts/fixture-images.sh). `make demo` builds everything first. Safe to run again.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN="$(swift build --show-bin-path)/reconcile"
export RECONCILE_STATE_DIR="$PWD/.build/demo-state"

show() {
    printf '\n$ reconcile %s\n' "$*"
    "$BIN" "$@"
    printf '(exit %s)\n' "$?"
}

show version
show validate environments/
show diff environments/staging.yml
show apply environments/staging.yml
show status environments/staging.yml
printf '\n$ curl http://127.0.0.1:8001/health\n'
curl -s http://127.0.0.1:8001/health
show apply environments/staging.yml

printf '\n# A deploy that fails its health gate is rolled back; the previous version keeps serving.\n'
broken=$(mktemp -d)
sed -e 's/:latest/:broken/' -e 's/startup: 15s/startup: 2s/' -e 's/attempts: 10/attempts: 2/' -e 's/interval: 5s/interval: 1s/' \
    environments/staging.yml >"$broken/staging.yml"
show diff "$broken/staging.yml"
# --retry: a second run of the demo tries it again instead of skipping it as known bad.
show apply --retry "$broken/staging.yml"
printf '\n$ curl http://127.0.0.1:8001/health\n'
curl -s http://127.0.0.1:8001/health
printf '\n# Cron applying the same broken file again touches nothing: it is known bad (exit 6).\n'
show apply --quiet "$broken/staging.yml"
rm -rf "$broken"
show status environments/staging.yml

printf '\n# Staging moves to blue-green: a managed HAProxy takes port 8001 and the next version starts\n'
printf '# beside the running one. (reconcile-proxy:2.6 is the fixture build of Debian'"'"'s haproxy; the\n'
printf '# default proxy image, haproxy:2.8, needs a registry.)\n'
bluegreen=$(mktemp -d)
{
    cat environments/staging.yml
    printf 'strategy: blue-green\nproxy:\n  image: reconcile-proxy:2.6\n  drain_timeout: 10s\n'
} >"$bluegreen/staging.yml"
show diff "$bluegreen/staging.yml"
show apply "$bluegreen/staging.yml"
printf '\n# A new version (latest -> v2) while a client sends a request every 20 ms on a new connection:\n'
sed -i 's/:latest/:v2/' "$bluegreen/staging.yml"
: >"$bluegreen/client.log"
(while :; do
    curl -s -o /dev/null -m 2 -w '%{http_code}\n' http://127.0.0.1:8001/health >>"$bluegreen/client.log"
    sleep 0.02
done) &
client=$!
sleep 0.5
show apply "$bluegreen/staging.yml"
sleep 0.5
kill "$client"
wait "$client" 2>/dev/null
printf '\nclient: %s requests during the deploy, %s failed\n' "$(wc -l <"$bluegreen/client.log")" \
    "$(grep -vc '^200$' "$bluegreen/client.log")"
printf '\n$ curl http://127.0.0.1:8001/health\n'
curl -s http://127.0.0.1:8001/health
show status "$bluegreen/staging.yml"
rm -rf "$bluegreen"
printf '\n# Back to the shipped file (stop-first): the proxy goes, the container takes port 8001 again.\n'
show apply environments/staging.yml
printf '\nJournal (%s):\n' "$RECONCILE_STATE_DIR/journal.jsonl"
tail -n 3 "$RECONCILE_STATE_DIR/journal.jsonl"
printf '\nExit codes: 0 converged / in sync, 1 error (nothing changed), 2 diff: changes pending,\n3 apply: failed and rolled back, 4 apply: rollback failed too, 6 apply: known bad, skipped.\n'
# shellcheck disable=SC2016 # the command is printed for the reader, not run
printf 'Remove the demo containers with: docker rm -f $(docker ps -aq --filter label=io.reconcile.service=devops-fastapi)\n'
printf 'and its network with: docker network rm devops-fastapi-staging-net\n'
