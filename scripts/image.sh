#!/usr/bin/env bash
# Builds the runtime image on this machine (no registry needed): the release binary with the
# static Swift stdlib, the shared libraries ldd names, a non-root user, on `FROM scratch`.
# Tags reconcile:local and reconcile:<commit>. The root Dockerfile is the one users build.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-reconcile:local}
COMMIT=${RECONCILE_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
export RECONCILE_COMMIT=$COMMIT
STAGE=.build/image
ROOTFS=$STAGE/rootfs

echo "image: swift build -c release --static-swift-stdlib (commit $COMMIT)"
swift build -c release --static-swift-stdlib --product reconcile 2>&1 \
    | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Linking)' || true
BIN="$(swift build -c release --static-swift-stdlib --show-bin-path)/reconcile"
[ -x "$BIN" ] || { echo "image: the release build did not produce $BIN" >&2; exit 1; }

rm -rf "$STAGE"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc" "$ROOTFS/tmp" "$ROOTFS/work" "$ROOTFS/state"
install -m 0755 "$BIN" "$ROOTFS/usr/local/bin/reconcile"
strip "$ROOTFS/usr/local/bin/reconcile"

# Every shared library the binary loads, and the dynamic loader, at the paths ldd reports.
libraries=$(ldd "$ROOTFS/usr/local/bin/reconcile" | awk '/=> \//{print $3} /^[ \t]*\//{print $1}')
for library in $libraries; do
    mkdir -p "$ROOTFS$(dirname "$library")"
    cp -L "$library" "$ROOTFS$library"
done
echo "image: shared libraries: $(echo "$libraries" | xargs -n1 basename | tr '\n' ' ')"

printf 'root:x:0:0:root:/root:/sbin/nologin\nreconcile:x:10001:10001:reconcile:/work:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nreconcile:x:10001:\n' >"$ROOTFS/etc/group"
chmod 1777 "$ROOTFS/tmp"
chown 10001:10001 "$ROOTFS/state"

cp scripts/image/Dockerfile "$STAGE/Dockerfile"
version=$("$BIN" version | awk 'NR==1{print $2}')
tag=${COMMIT//+/-}  # a work tree with changes builds "<sha>+dirty"; tags cannot hold '+'
OCI=org.opencontainers.image
DOCKER_BUILDKIT=0 docker build --quiet \
    --label "$OCI.title=reconcile" --label "$OCI.version=$version" --label "$OCI.revision=$COMMIT" \
    --label "$OCI.source=https://github.com/reconcile-dev/reconcile" --label "$OCI.licenses=Apache-2.0" \
    -t "$IMAGE" -t "reconcile:$tag" "$STAGE" >/dev/null 2>"$STAGE/build.log" || {
    cat "$STAGE/build.log" >&2
    exit 1
}
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
echo "image: built $IMAGE and reconcile:$tag ($((size / 1000000)) MB)"
