#!/usr/bin/env bash
# Builds the root Dockerfile (the one users build) on a machine that reaches no image registry,
# and runs the runtime test on the result. The two base images are made locally and passed as
# the Dockerfile's build arguments:
#   - runtime: Debian bookworm (debootstrap --variant=minbase), standing in for debian:bookworm-slim;
#   - builder: the same plus what the official swift:<version>-bookworm image installs, this
#     machine's toolchain (/opt/swift) and its package mirror (/opt/swift-packages, which git
#     reads for github.com), standing in for swift:6.3-bookworm.
# Not a CI stage: it takes about 15 minutes on 2 cores (debootstrap, a 3.5 GB import, a release
# build inside the image). Run it with `make dockerfile-check` after changing the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${DOCKERFILE_CHECK_DIR:-/tmp/reconcile-dockerfile-check}
RUNTIME=reconcile-check/debian:bookworm-slim
BUILDER=reconcile-check/swift:bookworm
log() { printf 'dockerfile-check: %s\n' "$*"; }

[ "$(id -u)" -eq 0 ] || { log "run as root (debootstrap)"; exit 1; }
[ -x /opt/swift/usr/bin/swift ] || { log "no toolchain at /opt/swift"; exit 1; }
command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null

if ! docker image inspect "$RUNTIME" >/dev/null 2>&1; then
    log "debootstrap bookworm (minbase) for the runtime base"
    rm -rf "$WORK/runtime"
    debootstrap --variant=minbase bookworm "$WORK/runtime" http://deb.debian.org/debian >"$WORK.runtime.log" 2>&1
    tar -C "$WORK/runtime" -c . | docker import - "$RUNTIME" >/dev/null
fi

if ! docker image inspect "$BUILDER" >/dev/null 2>&1; then
    log "debootstrap bookworm with the swift image's packages for the builder base"
    rm -rf "$WORK/builder"
    packages=binutils,gcc,libc6-dev,libstdc++-12-dev,libcurl4-openssl-dev,libxml2-dev,libedit2,libsqlite3-0
    packages=$packages,libncurses6,uuid-dev,zlib1g-dev,git,pkg-config,tzdata,ca-certificates,libpython3.11
    debootstrap --variant=minbase --include="$packages" bookworm "$WORK/builder" http://deb.debian.org/debian \
        >"$WORK.builder.log" 2>&1
    mkdir -p "$WORK/builder/opt"
    cp -a /opt/swift "$WORK/builder/opt/swift"
    cp -a /opt/swift-packages "$WORK/builder/opt/swift-packages"
    ln -sf /opt/swift/usr/bin/swift "$WORK/builder/usr/local/bin/swift"
    printf '[url "/opt/swift-packages/"]\n\tinsteadOf = https://github.com/\n[safe]\n\tdirectory = *\n' \
        >"$WORK/builder/etc/gitconfig"
    log "importing the builder base ($(du -sh "$WORK/builder" | cut -f1))"
    tar -C "$WORK/builder" -c . | docker import --change 'ENV PATH=/opt/swift/usr/bin:/usr/local/bin:/usr/bin:/bin' - "$BUILDER" >/dev/null
    rm -rf "$WORK/builder"
fi

commit=$(git rev-parse --short=12 HEAD)
log "docker build . with SWIFT_IMAGE=$BUILDER RUNTIME_IMAGE=$RUNTIME"
started=$(date +%s)
DOCKER_BUILDKIT=0 docker build --build-arg SWIFT_IMAGE="$BUILDER" --build-arg RUNTIME_IMAGE="$RUNTIME" \
    --build-arg VERSION=check --build-arg REVISION="$commit" -t reconcile:dockerfile-check . >"$WORK.build.log" 2>&1 || {
    tail -n 40 "$WORK.build.log" >&2
    exit 1
}
log "built reconcile:dockerfile-check in $(($(date +%s) - started)) s ($(($(docker image inspect --format '{{.Size}}' reconcile:dockerfile-check) / 1000000)) MB)"
docker image inspect --format '{{json .Config.Labels}}' reconcile:dockerfile-check
IMAGE=reconcile:dockerfile-check bash scripts/runtime-test.sh
