#!/usr/bin/env bash
# Builds the local images that tests and the demo deploy, with `docker import` from a
# busybox root filesystem (no registry is needed). Each image carries a content label;
# an image whose label matches is left as it is, so a second run costs a few inspects.
#
#   reconcile-fixture:v1, :v2        healthy web servers on 8080 (/health, /items, /)
#   reconcile-fixture:unhealthy-404  no /health
#   reconcile-fixture:unhealthy-500  every request answers 500
#   reconcile-fixture:degraded       /health answers 200 with {"status":"degraded"}
#   reconcile-fixture:slow           serves only after 3 s
#   reconcile-fixture:crash          exits with code 3 after 1 s
#   reconcile-fixture:stall          answers its headers, then stalls mid-body for an hour
#   acme/devops-fastapi:latest, :v1, :v2, :broken   the demo's stand-in app on 8000
#   reconcile-proxy:2.6              HAProxy from Debian's package (binary and its libraries),
#                                    laid out as the official haproxy image: blue-green's proxy
# Every web server also answers /cgi-bin/slow after 3 s with its version (a request in flight).
set -euo pipefail

FIXTURE_VERSION=8
BUSYBOX=$(command -v busybox || echo /bin/busybox)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

current() {
    [ "$(docker image inspect --format '{{ index .Config.Labels "io.reconcile.fixture" }}' "$1" 2>/dev/null)" = "$FIXTURE_VERSION" ]
}

# rootfs VERSION HEALTH_BODY -> prints a fresh root filesystem directory
rootfs() {
    local dir
    dir=$(mktemp -d "$work/rootfs.XXXX")
    mkdir -p "$dir/bin" "$dir/www" "$dir/tmp"
    cp "$BUSYBOX" "$dir/bin/busybox"
    ln -s busybox "$dir/bin/sh"
    printf '<h1>devops-fastapi %s</h1>\n' "$1" >"$dir/www/index.html"
    printf '[{"id":1,"name":"first"}]\n' >"$dir/www/items"
    if [ -n "$2" ]; then printf '%s\n' "$2" >"$dir/www/health"; fi
    mkdir -p "$dir/www/cgi-bin"
    printf '#!/bin/sh\n/bin/busybox sleep 3\nprintf "Content-Type: text/plain\\r\\n\\r\\nslow %s\\n"\n' "$1" \
        >"$dir/www/cgi-bin/slow"
    chmod +x "$dir/www/cgi-bin/slow"
    printf '%s' "$dir"
}

# build TAG PORT ROOTFS SCRIPT: imports ROOTFS with SCRIPT run by sh as the command
build() {
    local tag=$1 port=$2 dir=$3 script=$4
    if current "$tag"; then return 0; fi
    tar -C "$dir" -cf "$work/rootfs.tar" .
    docker import \
        --change "LABEL io.reconcile.fixture=$FIXTURE_VERSION" \
        --change "EXPOSE $port" \
        --change "CMD [\"/bin/sh\", \"-c\", \"$script\"]" \
        "$work/rootfs.tar" "$tag" >/dev/null
    echo "fixture-images: built $tag"
}

# PID 1 traps TERM so that `docker stop` returns at once (busybox httpd ignores it).
serve() { printf 'trap \\"exit 0\\" TERM INT; %s /bin/busybox httpd -f -p %s -h /www & wait' "${2:-}" "$1"; }

for version in v1 v2; do
    build "reconcile-fixture:$version" 8080 \
        "$(rootfs "$version" "{\"status\":\"healthy\",\"version\":\"$version\"}")" "$(serve 8080)"
done
build reconcile-fixture:unhealthy-404 8080 "$(rootfs v3 "")" "$(serve 8080)"
build reconcile-fixture:degraded 8080 "$(rootfs v3 '{"status":"degraded"}')" "$(serve 8080)"
build reconcile-fixture:slow 8080 "$(rootfs v3 '{"status":"healthy","version":"slow"}')" \
    "$(serve 8080 '/bin/busybox sleep 3;')"
build reconcile-fixture:crash 8080 "$(rootfs v3 "")" \
    "/bin/busybox sleep 1; echo fatal: cannot connect to database >&2; exit 3"

dir500=$(rootfs v3 "")
printf '#!/bin/sh\nread -r line\nprintf "HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\nContent-Length: 6\\r\\n\\r\\nerror\\n"\n' \
    >"$dir500/respond"
chmod +x "$dir500/respond"
build reconcile-fixture:unhealthy-500 8080 "$dir500" \
    'trap \"exit 0\" TERM INT; /bin/busybox nc -ll -p 8080 -e /respond & wait'

dirstall=$(rootfs v3 "")
printf '#!/bin/sh\nread -r line\nprintf "HTTP/1.0 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 100\\r\\n\\r\\n{"\nexec /bin/busybox sleep 3600\n' \
    >"$dirstall/respond"
chmod +x "$dirstall/respond"
build reconcile-fixture:stall 8080 "$dirstall" \
    'trap \"exit 0\" TERM INT; /bin/busybox nc -ll -p 8080 -e /respond & wait'

for version in v1 v2; do
    build "acme/devops-fastapi:$version" 8000 \
        "$(rootfs "$version" "{\"status\":\"healthy\",\"service\":\"devops-fastapi\",\"version\":\"$version\"}")" \
        "$(serve 8000)"
done
if ! current acme/devops-fastapi:latest; then docker tag acme/devops-fastapi:v1 acme/devops-fastapi:latest; fi
build acme/devops-fastapi:broken 8000 "$(rootfs broken '{"status":"unhealthy"}')" "$(serve 8000)"

# The proxy: Debian's haproxy binary with the libraries it links, at the official image's paths;
# master-worker (-W -db) as the official image runs it: as PID 1 without it, SIGTERM is ignored.
if ! current reconcile-proxy:2.6; then
    haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
    dir=$(mktemp -d "$work/proxy.XXXX")
    mkdir -p "$dir/usr/local/sbin" "$dir/usr/local/etc/haproxy" "$dir/etc" "$dir/tmp" "$dir/var/lib/haproxy"
    cp "$haproxy" "$dir/usr/local/sbin/haproxy"
    for lib in $(ldd "$haproxy" | grep -o '/[^ ]*'); do
        mkdir -p "$dir$(dirname "$lib")"
        cp -L "$lib" "$dir$lib"
    done
    printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
    tar -C "$dir" -cf "$work/proxy.tar" .
    docker import \
        --change "LABEL io.reconcile.fixture=$FIXTURE_VERSION" \
        --change 'CMD ["/usr/local/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]' \
        "$work/proxy.tar" reconcile-proxy:2.6 >/dev/null
    echo "fixture-images: built reconcile-proxy:2.6"
fi
