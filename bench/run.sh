#!/bin/sh
# run.sh - what `make bench` runs: builds the daemon (dynamic and static), the benchmark tools
# (bench/build.sh: the grpc-go load generator and baseline plugin, the nghttp2 floor, the
# server-time probe), then runs every measurement of issue 5 section 1 against sgxdevplugin, the
# grpc-go plugin and the floor on simulated nodes, and prints medians, ratios and PASS/MISS per
# target. A benchmark, never a test: it fails only when a measurement could not be made.
#
#   sh bench/run.sh            (as root: the simulated nodes are made with mknod)
# Environment: BUILD (default build), STATIC_BUILD (build-static), BENCH_OUT (build-bench),
# RUNS (5), DRA_RUNS (3; 0 skips the DRA benchmark). Extra arguments go to `loadgen bench` (e.g.
# --only ours,grpc-go, --keep). Results: BENCH_OUT/results.md (the table for BENCHMARKS.md) and
# BENCH_OUT/results.json (every sample); the DRA driver's (bench/dra_bench.py) in
# BENCH_OUT/dra.md and dra.json. Takes about 4 minutes on 2 CPUs, plus about 30 s for DRA.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
build=${BUILD:-build}
static=${STATIC_BUILD:-build-static}
out=${BENCH_OUT:-build-bench}
runs=${RUNS:-5}
dra_runs=${DRA_RUNS:-3}

if [ "$(id -u)" != 0 ]; then
        echo "bench/run.sh: needs root (the simulated nodes' devices are made with mknod)" >&2
        exit 1
fi

echo "==> building $build/sgxdevplugin and the static $static/sgxdevplugin"
[ -f "$build/build.ninja" ] || meson setup "$build" >/dev/null
if [ -f "$static/build.ninja" ]; then
        meson configure "$static" -Dstatic=true >/dev/null
else
        meson setup "$static" -Dstatic=true >/dev/null
fi
ninja -C "$build" sgxdevplugin >/dev/null
ninja -C "$static" sgxdevplugin >/dev/null

echo "==> building the benchmark tools into $out"
sh "$here/build.sh" "$out"

echo "==> measuring ($runs runs; the plugins take turns within each run)"
work=$(mktemp -d "${TMPDIR:-/tmp}/sgxbench-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
rc=0
"$out/loadgen" bench \
        --ours "$build/sgxdevplugin" --ours-static "$static/sgxdevplugin" \
        --goplugin "$out/goplugin" --floor "$out/floor" --srvtime "$out/srvtime.so" \
        --runs "$runs" --work "$work" \
        --json "$out/results.json" --md "$out/results.md" "$@" || rc=$?
echo
echo "table for BENCHMARKS.md: $out/results.md; every sample: $out/results.json"

# The DRA driver (issue 12 section 3): NodePrepareResources latency and slice publication after
# a hotplug, against the Python test API server and test kubelets (bench/dra_bench.py).
if [ "$dra_runs" -gt 0 ]; then
        echo
        echo "==> DRA: NodePrepareResources and slice publication ($dra_runs runs)"
        /usr/bin/python3 "$here/dra_bench.py" --binary "$build/sgxdevplugin" --runs "$dra_runs" \
                --md "$out/dra.md" --json "$out/dra.json" || rc=$?
        echo "DRA table for BENCHMARKS.md: $out/dra.md; every sample: $out/dra.json"
fi
exit $rc
