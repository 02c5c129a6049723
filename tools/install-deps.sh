#!/bin/sh
# Installs the Debian packages sgxdevplugin needs to build and test, if any is missing.
# Usage: install-deps.sh [EXTRA-PACKAGE...]. Run as root, or as a user with sudo. Idempotent and quiet when everything is there.
set -eu

PKGS="gcc libc6-dev make meson ninja-build pkg-config
libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libssl-dev
python3 python3-grpcio python3-grpc-tools python3-protobuf python3-pytest python3-h2 python3-yaml openssl"
# extra packages for one target only (e.g. the image test: podman runc)
PKGS="$PKGS $*"

missing=""
for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
[ -z "$missing" ] && exit 0

echo "installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
else
        SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
