#!/bin/sh
# Runs protoc-c on the messages of one of our .proto files only (api.proto, pluginregistration.proto,
# dra_v1.proto). protoc-c would also generate service
# descriptors, and the Registration service's "Register" method becomes a struct member named
# "register", a C keyword; our gRPC layer routes by path and never uses them.
# usage: protoc-c-messages.sh PROTOC_C INPUT.proto OUTDIR
set -eu
protoc_c=$1 in=$2 out=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=$(basename "$in")
sed '/^service /,/^}/d' "$in" >"$tmp/$name"
"$protoc_c" --proto_path="$tmp" --c_out="$out" "$tmp/$name"
