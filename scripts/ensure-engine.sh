#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine: installs Debian's docker.io,
# busybox-static, docker-registry and apache2-utils (the tests' private registry and its
# htpasswd logins), and OpenSSH (the tests' ssh:// engine) when they are missing, starts dockerd in the background when the
# socket does not answer, and waits for it. Safe to run again.
set -euo pipefail

log() { printf 'ensure-engine: %s\n' "$*" >&2; }

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need_install+=(busybox-static)
command -v socat >/dev/null 2>&1 || need_install+=(socat)
command -v openssl >/dev/null 2>&1 || need_install+=(openssl)
[ -x /usr/bin/docker-registry ] || need_install+=(docker-registry)
[ -x /usr/bin/htpasswd ] || need_install+=(apache2-utils)
[ -x /usr/sbin/sshd ] || need_install+=(openssh-server)
[ -x /usr/bin/ssh ] || need_install+=(openssh-client)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_install+=(haproxy)
if [ ${#need_install[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing ${need_install[*]}; run as root or install them with apt-get"
        exit 1
    fi
    log "installing ${need_install[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

# The watch tests parse /metrics with Prometheus' own text parser (from PyPI).
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
    log "installing prometheus_client from PyPI (the watch tests parse /metrics with it)"
    python3 -m pip install --quiet --root-user-action=ignore prometheus_client
fi

if docker version >/dev/null 2>&1; then
    exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer and is not a local socket; start that engine first"
    exit 1
fi

log "no engine answers; starting dockerd (log: /tmp/reconcile-dockerd.log)"
nohup dockerd >/tmp/reconcile-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
    if docker version >/dev/null 2>&1; then
        log "dockerd is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
        exit 0
    fi
    sleep 0.5
done
log "dockerd did not answer within 30 s; last lines of its log:"
tail -n 20 /tmp/reconcile-dockerd.log >&2 || true
exit 1
