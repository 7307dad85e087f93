#!/usr/bin/env bash
# The seed's stage 7, runtime container test: starts the image `make image` built with the host's
# Docker socket and this checkout mounted, and checks version, validate, status and diff inside it
# against the host engine, that it runs as a non-root user, and that its logs show no errors.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-reconcile:local}
SOCKET=/var/run/docker.sock
NAME="reconcile-runtime-test-$$"
LABEL="io.reconcile.test=runtime-$$"
WORK=$(mktemp -d)
SERVICE="rtimage$$"
cleanup() {
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    docker ps -aq --filter "label=io.reconcile.service=$SERVICE" | xargs -r docker rm -f >/dev/null
    docker network rm "$SERVICE-bluegreen-net" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "runtime-test: FAIL: $*" >&2
    exit 1
}
ok() { echo "runtime-test: ok: $*"; }
# has TEXT PATTERN: the text is read whole before grep looks, so grep -q leaving at the first match
# cannot break a pipe (and with pipefail fail a check that passed).
has() { grep -q -- "$2" <<<"$1"; }
# served PORT: the body of /health on 127.0.0.1:PORT, or nothing.
served() {
    python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$1/health', timeout=10).read().decode())" 2>/dev/null || true
}

docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "no image $IMAGE; run make image first"
user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || fail "the image runs as '$user', expected the non-root 10001:10001"
ok "runs as $user (non-root)"

# The socket's group, so the non-root user may talk to the engine.
group=$(stat -c %g "$SOCKET")
cp -r environments "$WORK/environments"
# mktemp makes a 0700 folder: the non-root user must be able to enter it.
chmod -R a+rX "$WORK"
# Every run: labelled as this test's, and allowed to reach the engine through the socket.
ENGINE=(--label "$LABEL" --group-add "$group" -v "$SOCKET:$SOCKET")
run() {
    docker run --rm "${ENGINE[@]}" -v "$WORK:/work:ro" "$IMAGE" "$@"
}

out=$(run version) || fail "reconcile version exited $?"
case "$out" in "reconcile "*" (commit "*) ok "version: $out" ;; *) fail "version printed '$out'" ;; esac

out=$(run validate 2>&1) || fail "validate environments/ exited $?: $out"
ok "validate: $(echo "$out" | tail -n 1)"

out=$(run status 2>&1) || fail "status exited $?: $out"
has "$out" '^ENVIRONMENT' || fail "status printed no table: $out"
ok "status: $(echo "$out" | wc -l) lines from the host engine"

set +e
out=$(run diff 2>&1)
code=$?
set -e
[ "$code" -eq 0 ] || [ "$code" -eq 2 ] || fail "diff exited $code: $out"
has "$out" '^Plan: ' || fail "diff printed no plan: $out"
ok "diff: exit $code, $(echo "$out" | grep '^Plan: ')"

# A broken file: the error names file, line and field, from inside the container.
printf 'service: app\nenvironment: staging\nimage: acme/app:v1\nport: 80001\n' >"$WORK/environments/broken.yml"
set +e
out=$(run validate environments/broken.yml 2>&1)
code=$?
set -e
rm "$WORK/environments/broken.yml"
[ "$code" -eq 1 ] || fail "validate of a broken file exited $code, expected 1"
has "$out" 'environments/broken.yml:4:7: port: must be between 1 and 65535' || fail "unexpected: $out"
ok "a broken file: $out"

# A checkout the non-root user cannot read: the error says so, instead of "no such file".
LOCKED=$(mktemp -d)
set +e
out=$(docker run --rm --label "$LABEL" -v "$LOCKED:/locked:ro" "$IMAGE" validate /locked 2>&1)
code=$?
inner=$(docker run --rm --label "$LABEL" -v "$LOCKED:/locked:ro" "$IMAGE" validate /locked/environments 2>&1)
set -e
rmdir "$LOCKED"
[ "$code" -eq 1 ] || fail "validate of an unreadable folder exited $code, expected 1"
has "$out" '^reconcile: error: /locked: cannot list this folder as uid 10001' || fail "unexpected: $out"
has "$inner" '^reconcile: error: /locked/environments: permission denied for uid 10001' ||
    fail "unexpected: $inner"
ok "an unreadable mount: $out"
ok "a folder inside it: $inner"

# Started detached like a cron job would run it; its logs must show no error or warning.
docker run -d --name "$NAME" "${ENGINE[@]}" -v "$WORK:/work:ro" "$IMAGE" diff --format json >/dev/null
code=$(docker wait "$NAME")
[ "$code" -eq 0 ] || [ "$code" -eq 2 ] || fail "detached diff exited $code: $(docker logs "$NAME" 2>&1)"
# stdout is the plan as JSON; stderr (errors and warnings of the run) must be empty.
errors=$(docker logs "$NAME" 2>&1 >/dev/null)
[ -z "$errors" ] || fail "the container's stderr shows a problem: $errors"
docker logs "$NAME" 2>/dev/null | python3 -m json.tool >/dev/null || fail "diff --format json printed no valid JSON"
ok "detached diff --format json: exit $code, valid JSON, nothing on stderr"
# apply from the container, as documented: --network host for the health gate, a state folder.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$WORK/apply/environments" "$WORK/state"
cat >"$WORK/apply/environments/staging.yml" <<YAML
service: $SERVICE
environment: staging
image: reconcile-fixture:v1
port: $port
container_port: 8080
stop_timeout: 1s
health: {path: /health, startup: 5s, interval: 300ms, attempts: 3}
YAML
chmod -R a+rX "$WORK/apply"
chown 10001:10001 "$WORK/state"
out=$(docker run --rm "${ENGINE[@]}" --network host -v "$WORK/apply:/work:ro" -v "$WORK/state:/state" "$IMAGE" apply 2>&1) || fail "apply exited $?: $out"
has "$out" 'staging: result converged' || fail "apply did not converge: $out"
body=$(served "$port")
has "$body" '"version":"v1"' || fail "nothing serves v1 on $port: '$body'"
[ -s "$WORK/state/journal.jsonl" ] || fail "apply wrote no journal in the mounted state folder"
ok "apply in the container: $(echo "$out" | grep 'staging: gate health')"

# Blue-green from the container: the state directory mounted at the same path as on the host (the
# proxy's folder in it is mounted into the proxy by that path), two deploys, the second behind the proxy.
BG="$WORK/bgstate"
mkdir -p "$BG" "$WORK/bg/environments"
chown 10001:10001 "$BG"
chmod 700 "$BG"
bgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_bg() {
    cat >"$WORK/bg/environments/bluegreen.yml" <<YAML
service: $SERVICE
environment: bluegreen
image: reconcile-fixture:$1
pull: never
port: $bgport
container_port: 8080
stop_timeout: 1s
health: {path: /health, startup: 5s, interval: 300ms, attempts: 3}
strategy: blue-green
proxy: {image: reconcile-proxy:2.6, drain_timeout: 5s}
YAML
    chmod -R a+rX "$WORK/bg"
}
bg_apply() {
    docker run --rm "${ENGINE[@]}" --network host -v "$WORK/bg:/work:ro" -v "$BG:$BG" -e RECONCILE_STATE_DIR="$BG" \
        "$IMAGE" apply 2>&1
}
write_bg v1
out=$(bg_apply) || fail "blue-green apply exited $?: $out"
write_bg v2
out=$(bg_apply) || fail "blue-green update exited $?: $out"
has "$out" 'bluegreen: switch the proxy sends new requests to' || fail "no switch: $out"
body=$(served "$bgport")
has "$body" '"version":"v2"' || fail "the proxy does not serve v2 on $bgport: '$body'"
ok "blue-green from the container: $(echo "$out" | grep 'bluegreen: switch')"

echo "runtime-test: all checks passed"
