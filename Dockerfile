# sgxdevplugin release image: one fully static binary, nothing else (FROM scratch).
#
# One file, two ways to get the binary, one final stage:
#
#   builder  Debian 12: installs the build dependencies with tools/install-deps.sh, builds the
#            Meson option -Dstatic=true and strips the result to /sgxdevplugin. The release way.
#   host     FROM scratch plus a COPY of a static binary built outside (on the host, by
#            `meson setup build-static -Dstatic=true && ninja -C build-static`); the build
#            context is then a directory holding just that binary, named `sgxdevplugin`. Pulls
#            nothing and needs no network: CI uses it (tests/image/test_podman.py), since a base
#            image cannot be pulled there.
#   binary   the stage named by the build argument BINARY_SOURCE: builder (the default) or host.
#
# The final stage copies /sgxdevplugin from `binary`, so both ways ship the very same final stage.
# Stages the final one does not need are not built (BuildKit and buildah skip unused stages), so
# the host way never touches debian:12. The default is written in the FROM line,
# ${BINARY_SOURCE:-builder}, not in the ARG: buildah 1.28 (Debian 12's podman 4.3) decides which
# stages to skip before it applies ARG defaults, and would skip the builder.
#
#   docker build -t sgxdevplugin .                                      # release, in Debian 12
#   podman build -t sgxdevplugin .                                      # the same with podman
#   mkdir ctx && strip -o ctx/sgxdevplugin build-static/sgxdevplugin   # CI, offline:
#   podman build --build-arg BINARY_SOURCE=host -f Dockerfile -t sgxdevplugin ctx
#
# The daemon needs no shell, no libc files, no /etc and no /tmp: it looks for devices under
# --dev-root and serves unix sockets in --kubelet-dir. It runs as uid 0, the owner of the
# kubelet's device-plugin directory, with every capability dropped (the Helm chart's job).

ARG BINARY_SOURCE

FROM debian:12 AS builder
COPY . /src
RUN sh /src/tools/install-deps.sh \
    && meson setup /tmp/build /src -Dstatic=true \
    && ninja -C /tmp/build sgxdevplugin \
    && /tmp/build/sgxdevplugin --version \
    && strip -o /sgxdevplugin /tmp/build/sgxdevplugin

FROM scratch AS host
COPY sgxdevplugin /sgxdevplugin

FROM ${BINARY_SOURCE:-builder} AS binary

FROM scratch
COPY --from=binary /sgxdevplugin /sgxdevplugin
LABEL org.opencontainers.image.title="sgxdevplugin" \
      org.opencontainers.image.description="Kubernetes device plugin for Intel SGX" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/sgxdevplugin"]
