#!/bin/sh
# fuzz/run.sh [SECONDS] - builds the libFuzzer targets (ASan + UBSan, clang) in build-fuzz if
# needed, and runs each one for SECONDS (default 30) on a scratch copy of its seed corpus
# (fuzz/corpus/<target>/ is never grown). Exits non-zero if any target finds a crash, a leak, a
# timeout or an out-of-memory, printing the sanitizer report and the reproducer's path. The last
# line is the summary: "fuzz: 9 targets, 0 crashes". `make fuzz` runs this.
#
# Environment: BUILD (default build-fuzz), FUZZ_TARGETS (default: all nine, space-separated),
# FUZZ_ARGS (extra libFuzzer flags, e.g. "-seed=1"). Reproducers are kept in $BUILD/fuzz-artifacts/.
set -eu

SECONDS_PER_TARGET=${1:-30}
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz}
TARGETS=${FUZZ_TARGETS:-"fuzz_h2_server fuzz_h2_client fuzz_deframer fuzz_frame_misc fuzz_handlers
fuzz_cli fuzz_caps fuzz_apiclient fuzz_uevent"}

case "$SECONDS_PER_TARGET" in
''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;;
esac

if ! command -v clang >/dev/null 2>&1; then
        echo "fuzz: clang not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
        exit 2
fi
if [ ! -f "$BUILD/build.ninja" ]; then
        CC=clang meson setup "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
                >"${TMPDIR:-/tmp}/fuzz-setup.$$.log" 2>&1 || {
                cat "${TMPDIR:-/tmp}/fuzz-setup.$$.log" >&2
                rm -f "${TMPDIR:-/tmp}/fuzz-setup.$$.log"
                exit 2
        }
        rm -f "${TMPDIR:-/tmp}/fuzz-setup.$$.log"
fi
ninja_targets=""
for t in $TARGETS; do
        ninja_targets="$ninja_targets fuzz/$t"
done
# shellcheck disable=SC2086
ninja -C "$BUILD" $ninja_targets >/dev/null || ninja -C "$BUILD" $ninja_targets

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
artifacts="$BUILD/fuzz-artifacts"
mkdir -p "$artifacts"

# UBSan findings are fatal (libFuzzer then keeps the input); leaks are checked after every input.
# -close_fd_mask=2 discards what the targets write to stderr (the daemon's log lines); libFuzzer
# and the sanitizers still report on a duplicate of it.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

n=0
crashes=0
for t in $TARGETS; do
        n=$((n + 1))
        mkdir -p "$scratch/$t" "$artifacts/$t"
        if [ -d "fuzz/corpus/$t" ]; then
                cp -R "fuzz/corpus/$t/." "$scratch/$t/"
        fi
        extra=""
        if [ -f "fuzz/$t.dict" ]; then
                extra="-dict=fuzz/$t.dict"
        fi
        case "$t" in
        # Room for a burst of frames read at once (more than one 16 KiB read).
        fuzz_h2_server | fuzz_h2_client) extra="$extra -max_len=40000" ;;
        esac
        log="$artifacts/$t/last-run.log"
        set +e
        # shellcheck disable=SC2086
        "$BUILD/fuzz/$t" "$scratch/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
                -rss_limit_mb=2048 -close_fd_mask=2 -print_final_stats=1 \
                -artifact_prefix="$artifacts/$t/" \
                $extra ${FUZZ_ARGS:-} >"$log" 2>&1
        rc=$?
        set -e
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 |
                sed -n 's/.*cov: \([0-9]*\).*/\1/p')
        if [ "$rc" -ne 0 ]; then
                crashes=$((crashes + 1))
                echo "fuzz: $t FAILED (exit $rc) after ${runs:-?} runs; report:"
                grep -E -A 40 '^==[0-9]+==ERROR|runtime error|^==[0-9]+== ERROR|ERROR: libFuzzer' \
                        "$log" | head -n 60
                repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
                echo "fuzz: $t reproducer: ${repro:-none written, see $log}"
                echo "fuzz: $t reproduce with: $BUILD/fuzz/$t ${repro:-<input>}"
        else
                echo "fuzz: $t ok, ${runs:-?} runs in ${SECONDS_PER_TARGET} s, coverage ${cov:-?}"
        fi
done

if [ "$crashes" -eq 1 ]; then
        echo "fuzz: $n targets, 1 crash"
else
        echo "fuzz: $n targets, $crashes crashes"
fi
[ "$crashes" -eq 0 ]
