#!/bin/sh
# build.sh - builds the benchmark tools into OUT (default build-bench/, git-ignored), offline,
# from Debian's packages only:
#   OUT/loadgen    the kubelet's side in grpc-go: smoke test, load generator, benchmark driver
#   OUT/goplugin   the grpc-go baseline device plugin
#   OUT/floor      the floor: canned Allocate answers over nghttp2 (C)
#   OUT/srvtime.so LD_PRELOAD probe timing our daemon from request read to response written
# The Go stubs are generated from proto/api.proto into OUT/gopath (never committed), and the Go
# code builds in GOPATH mode against Debian's sources in /usr/share/gocode.
#
#   sh bench/build.sh [OUT]
# Needs: golang-go golang-google-grpc-dev golang-goprotobuf-dev protobuf-compiler gcc pkg-config
# libnghttp2-dev.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${1:-$repo/build-bench}
mkdir -p "$out"
out=$(cd "$out" && pwd)

missing=
for tool in go protoc protoc-gen-go cc pkg-config; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
        echo "bench/build.sh: missing:$missing (apt-get install golang-go golang-google-grpc-dev" \
             "golang-goprotobuf-dev protobuf-compiler gcc pkg-config libnghttp2-dev)" >&2
        exit 1
fi
if [ ! -d /usr/share/gocode/src/google.golang.org/grpc ]; then
        echo "bench/build.sh: grpc-go sources missing (apt-get install golang-google-grpc-dev)" >&2
        exit 1
fi

# v1beta1 stubs: protoc-gen-go 1.3 with its grpc plugin; the import path is given with an M
# flag because proto/api.proto has no go_package option.
gen=$out/gopath/src/sgxbench/v1beta1
if [ ! -f "$gen/api.pb.go" ] || [ "$repo/proto/api.proto" -nt "$gen/api.pb.go" ]; then
        tmp=$(mktemp -d "$out/.gen-XXXXXX")
        protoc -I"$repo/proto" \
                --go_out=plugins=grpc,Mapi.proto=sgxbench/v1beta1:"$tmp" "$repo/proto/api.proto"
        mkdir -p "$gen"
        # protoc-gen-go 1.3 puts the file by the proto's name here, newer ones by import path.
        mv "$(find "$tmp" -name api.pb.go)" "$gen/api.pb.go"
        rm -rf "$tmp"
fi

export GO111MODULE=off GOFLAGS= CGO_ENABLED=0
export GOPATH="/usr/share/gocode:$out/gopath" GOCACHE="$out/gocache"
for prog in loadgen goplugin; do
        (cd "$here/$prog" && go build -o "$out/$prog" .)
done

cflags="-std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
-Wmissing-prototypes -Wvla -Wformat=2 -Wno-unused-parameter"
# shellcheck disable=SC2046,SC2086
cc $cflags -o "$out/floor" "$here/floor/floor.c" $(pkg-config --cflags --libs libnghttp2)
# shellcheck disable=SC2086
cc $cflags -fPIC -shared -o "$out/srvtime.so" "$here/srvtime/srvtime.c" -ldl
