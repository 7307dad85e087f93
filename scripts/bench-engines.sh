#!/usr/bin/env bash
# Several engines (issue 13; bench.sh calls this with the release binary): 20 environments, 10 on
# the shared engine and 10 on a dockerd this script starts (its own socket, data root and bridge),
# converged once; then `diff` and a no-op `apply` over all 20, BENCH_ENGINE_RUNS (10) runs each,
# wall time. Then a one-replica Swarm update on that dockerd made a one-node swarm, and a
# three-replica rolling update once two workers (dockerds in network namespaces) have joined it:
# host-mode ports need a node per replica, and ingress needs IPVS, which these kernels lack.
set -euo pipefail
# shellcheck source=scripts/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"
BIN=$1
RUNS=${BENCH_ENGINE_RUNS:-10}
BASE=${BENCH_ENGINE_PORT:-18900}
work=$(mktemp -d)
id=$$
bridge="rbe$id"
sock="$work/dd/d.sock"
export RECONCILE_STATE_DIR="$work/state"
service="bench-engines-$id"
cleanup() {
    docker ps -aq --filter "name=^${service}-" | xargs -r docker rm -f >/dev/null
    if [ -f "$work/dd/pid" ]; then
        # A swarm manager takes a while to stop: wait for it, then make sure.
        pid=$(cat "$work/dd/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    for w in 1 2; do
        if [ -f "$work/w$w/pid" ]; then
            pid=$(cat "$work/w$w/pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        fi
        ip netns del "bns$w-$id" 2>/dev/null || true
        ip link del "bv$w-$id" 2>/dev/null || true
    done
    grep " $work/" /proc/mounts | awk '{ print $2 }' | sort -r | xargs -r umount -l 2>/dev/null || true
    ip link del "$bridge" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/dd" "$work/environments"
ip link add "$bridge" type bridge
ip addr add "10.250.$((id % 250)).1/24" dev "$bridge"
ip link set "$bridge" up
dockerd --data-root "$work/dd/data" --exec-root "$work/dd/exec" --pidfile "$work/dd/pid" -H "unix://$sock" \
    --bridge "$bridge" --iptables=false >"$work/dd/log" 2>&1 &
for _ in $(seq 1 120); do docker -H "unix://$sock" version >/dev/null 2>&1 && break; sleep 0.25; done
docker save reconcile-fixture:v1 reconcile-fixture:v2 | docker -H "unix://$sock" load >/dev/null

for i in $(seq 0 19); do
    engine=""
    if [ "$i" -ge 10 ]; then engine="engine: unix://$sock"; fi
    cat >"$work/environments/e$i.yml" <<YAML
service: $service
environment: e$i
image: reconcile-fixture:v1
pull: never
port: $((BASE + i))
container_port: 8080
stop_timeout: 1s
health: {path: /health, startup: 2s, interval: 200ms, attempts: 5, timeout: 1s}
$engine
YAML
done
"$BIN" apply "$work/environments" >/dev/null

for command in diff apply; do
    times=()
    for _ in $(seq 1 "$RUNS"); do
        t0=$(now_ms)
        "$BIN" "$command" "$work/environments" >/dev/null
        times+=($(($(now_ms) - t0)))
    done
    echo "$command over 20 environments on 2 engines, nothing to change, $RUNS runs: ms ${times[*]} (median $(printf '%s\n' "${times[@]}" | median))"
done

# Swarm: a one-node swarm on the script's dockerd, one replica on a host-mode port.
docker -H "unix://$sock" swarm init --advertise-addr "10.250.$((id % 250)).1" --listen-addr "10.250.$((id % 250)).1:$((BASE + 30))" >/dev/null
swarm() {
    cat >"$work/swarm.yml" <<YAML
service: $service
environment: swarm
image: reconcile-fixture:$1
pull: never
port: $((BASE + 20))
container_port: 8080
stop_timeout: 1s
engine: unix://$sock
platform: swarm
publish: {mode: host}
update: {parallelism: 1, delay: 0s, monitor: 1s, order: stop-first}
health: {path: /health, startup: 1s, interval: 200ms, attempts: 10, timeout: 1s}
replicas: ${3:-1}
YAML
    t0=$(now_ms)
    "$BIN" apply "$work/swarm.yml" >/dev/null
    echo "swarm: apply of $1 ($2): $(($(now_ms) - t0)) ms"
}
swarm v1 "create the service"
swarm v2 "rolling update, 1 replica"

# Two workers, each a dockerd in a network namespace with a veth pair to this host (no default
# route: pulls fail at once and the loaded images are used), and a host name of its own.
manager="10.250.$((id % 250)).1"
for w in 1 2; do
    ns="bns$w-$id"
    here="10.247.$((id % 250)).$((w * 4 + 1))"
    there="10.247.$((id % 250)).$((w * 4 + 2))"
    mkdir -p "$work/w$w"
    ip netns add "$ns"
    ip link add "bv$w-$id" type veth peer name "bw$w-$id"
    ip addr add "$here/30" dev "bv$w-$id"
    ip link set "bv$w-$id" up
    ip link set "bw$w-$id" netns "$ns"
    ip netns exec "$ns" ip addr add "$there/30" dev "bw$w-$id"
    ip netns exec "$ns" ip link set "bw$w-$id" up
    ip netns exec "$ns" ip link set lo up
    # Only the manager and the other worker: a route to the resolver would make each pull wait.
    ip netns exec "$ns" ip route add "$manager/32" via "$here"
    ip netns exec "$ns" ip route add "10.247.$((id % 250)).0/24" via "$here"
    ip netns exec "$ns" ip link add "bb$w" type bridge
    ip netns exec "$ns" ip addr add "10.246.$w.1/24" dev "bb$w"
    ip netns exec "$ns" ip link set "bb$w" up
    nsenter --net="/var/run/netns/$ns" unshare -u sh -c "hostname bench-worker$w && exec dockerd \
        --data-root $work/w$w/data --exec-root $work/w$w/exec --pidfile $work/w$w/pid \
        -H unix://$work/w$w/d.sock --bridge bb$w --iptables=false" >"$work/w$w/log" 2>&1 &
    for _ in $(seq 1 120); do docker -H "unix://$work/w$w/d.sock" version >/dev/null 2>&1 && break; sleep 0.25; done
    docker save reconcile-fixture:v1 reconcile-fixture:v2 | docker -H "unix://$work/w$w/d.sock" load >/dev/null
    token=$(docker -H "unix://$sock" swarm join-token -q worker)
    docker -H "unix://$work/w$w/d.sock" swarm join --token "$token" --advertise-addr "$there" \
        --listen-addr "$there:$((BASE + 30))" "$manager:$((BASE + 30))" >/dev/null
done
docker -H "unix://$sock" service rm "$service-swarm" >/dev/null
for _ in $(seq 1 60); do [ -z "$(docker -H "unix://$sock" ps -q --filter "name=$service-swarm")" ] && break; sleep 0.5; done
swarm v1 "create the service, 3 replicas on 3 nodes" 3
swarm v2 "rolling update, 3 replicas, one at a time" 3
