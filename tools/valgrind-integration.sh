#!/bin/sh
# valgrind-integration.sh - runs the integration suite (tests/integration) once with every daemon
# process under valgrind memcheck, and fails on any memcheck error or leak.
#
#   tools/valgrind-integration.sh [pytest args...]      e.g. -x, or -k registration
#
# The daemon is $SGXDEVPLUGIN (default build/sgxdevplugin; a plain build, not the ASan one). The
# fixtures start whatever $SGXDEVPLUGIN names, so the suite runs a wrapper that execs valgrind on
# the real binary. Each process writes its own memcheck log (never to stderr: tests read the
# daemon's stderr); memcheck's exit code 99 on an error fails the test that ran that process, and
# the logs are checked again at the end, so an error fails this script even where a test does not
# look at the exit code. Timeouts are scaled by $SGXDEVPLUGIN_TIMEOUT_SCALE (default 6).
# Logs of a failed run are kept and named; set VALGRIND_KEEP=1 to keep them anyway.
set -eu

cd "$(dirname "$0")/.."
PY=/usr/bin/python3
BIN=$(realpath "${SGXDEVPLUGIN:-build/sgxdevplugin}")

if ! command -v valgrind >/dev/null 2>&1; then
        echo "valgrind-integration: valgrind is not installed (apt-get install valgrind)" >&2
        exit 2
fi
if [ ! -x "$BIN" ]; then
        echo "valgrind-integration: no daemon binary at $BIN (build it, or set SGXDEVPLUGIN)" >&2
        exit 2
fi
if grep -q __asan_init "$BIN"; then
        echo "valgrind-integration: $BIN is an ASan build; valgrind needs a plain one" >&2
        exit 2
fi

WORK=$(mktemp -d /tmp/sdp-valgrind.XXXXXX)
cat >"$WORK/sgxdevplugin" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \\
        --show-leak-kinds=definite,indirect,possible \\
        --errors-for-leak-kinds=definite,indirect,possible \\
        --track-origins=yes --num-callers=30 \\
        --log-file="$WORK/memcheck.%p.log" "$BIN" "\$@"
EOF
chmod +x "$WORK/sgxdevplugin"

start=$(date +%s)
rc=0
SGXDEVPLUGIN="$WORK/sgxdevplugin" SGXDEVPLUGIN_VALGRIND=1 \
SGXDEVPLUGIN_TIMEOUT_SCALE="${SGXDEVPLUGIN_TIMEOUT_SCALE:-6}" \
        $PY -m pytest -q -p no:cacheprovider tests/integration "$@" || rc=$?
took=$(( $(date +%s) - start ))

n_logs=$(find "$WORK" -name 'memcheck.*.log' | wc -l)
# A log with errors says "ERROR SUMMARY: N errors" with N > 0; a process killed before its summary
# still has each error's own report line.
bad=$(grep -lE "ERROR SUMMARY: [1-9]|Invalid (read|write|free)|uninitialised|Mismatched free|\
overlap|(definitely|indirectly|possibly) lost in loss record" "$WORK"/memcheck.*.log || true)
for f in $bad; do
        echo "==== memcheck errors: $f" >&2
        cat "$f" >&2
done

echo "valgrind-integration: $n_logs daemon processes under memcheck, $(echo $bad | wc -w) with" \
     "errors; pytest exit $rc; ${took} s"
if [ -n "$bad" ] || [ "$rc" -ne 0 ] || [ -n "${VALGRIND_KEEP:-}" ]; then
        echo "valgrind-integration: memcheck logs kept in $WORK" >&2
else
        rm -rf "$WORK"
fi
[ -z "$bad" ] && [ "$rc" -eq 0 ]
