# syntax=docker/dockerfile:1
# reconcile in a container: diff, apply and status against the host's Docker engine.
#
#   docker build -t reconcile .
#   docker run --rm -v /var/run/docker.sock:/var/run/docker.sock \
#       --group-add "$(stat -c %g /var/run/docker.sock)" -v "$PWD:/work:ro" reconcile diff
#
# Base images are build arguments, so the image can be built where registries differ:
#   docker build --build-arg SWIFT_IMAGE=registry.example/swift:6.3-bookworm \
#                --build-arg RUNTIME_IMAGE=registry.example/debian:bookworm-slim .
ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# Dependencies first: this layer is reused while only the sources change.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
ARG REVISION=unknown
ENV RECONCILE_COMMIT=${REVISION}
RUN swift build -c release --static-swift-stdlib --product reconcile \
    && install -D -m 0755 "$(swift build -c release --show-bin-path)/reconcile" /out/reconcile \
    && strip /out/reconcile

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/reconcile-dev/reconcile
LABEL org.opencontainers.image.title="reconcile" \
      org.opencontainers.image.description="Declarative environment reconciler for Docker hosts" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# The static Swift stdlib leaves libc, libm, libstdc++, libgcc_s and libz: all in bookworm-slim.
COPY --from=build /out/reconcile /usr/local/bin/reconcile
RUN useradd --system --uid 10001 --home-dir /work --no-create-home reconcile
USER 10001:10001
WORKDIR /work
ENV RECONCILE_STATE_DIR=/state
ENTRYPOINT ["/usr/local/bin/reconcile"]
CMD ["diff"]
