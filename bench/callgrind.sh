#!/bin/bash
# Instruction counts of the protected path: the bench httpd (same config as
# bench/protected.sh) in -X (one process) under valgrind --tool=callgrind.
#
#   bench/callgrind.sh            N=200 requests per path
#   N=500 TOP=25 bench/callgrind.sh
#   KEEP=1 bench/callgrind.sh     keeps /tmp/msauth-bench-* with the callgrind.out.* files
#
# Two valgrind runs, each: warm-up requests, counters zeroed (callgrind_control -z),
# then N requests on one keep-alive connection (one curl), then a dump
# (callgrind_control -d):
#   1. whole process, everything collected: Ir per open and per protected request
#      (the whole server: parsing, the file, the response, the module);
#   2. --collect-atstart=no --toggle-collect=msa_check_authn: only what runs
#      inside msa_check_authn (AuthType Microsoft's check_authn hook), so the
#      function list is the subtree of the check, not its callers.
# As root, valgrind, httpd and callgrind_control run as www-data (runuser):
# httpd -X still drops to User www-data after valgrind opened its files as root,
# and then can write neither the profile nor vgdb's control pipes.
set -eu

N=${N:-200}
TOP=${TOP:-15}
WARMUP=${WARMUP:-5}

. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

bench_prepare
AS=()
if [ "$(id -u)" = 0 ]; then
    chown -R www-data:www-data "$BENCH_DIR"
    AS=(runuser -u www-data --)
fi

RUNNER_PID=""
VG_PID=""
cleanup() {
    bench_stop_fakems
    if [ -n "$VG_PID" ] && kill -0 "$VG_PID" 2>/dev/null; then
        kill -TERM "$VG_PID" 2>/dev/null || true
    fi
    if [ -n "$RUNNER_PID" ]; then
        wait "$RUNNER_PID" 2>/dev/null || true
    fi
    if [ -z "${KEEP:-}" ]; then
        rm -rf "$BENCH_DIR"
    else
        echo "kept $BENCH_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BENCH_APACHE" -t -f "$BENCH_DIR/httpd.conf" >"$BENCH_DIR/configtest.log" 2>&1 ||
    { cat "$BENCH_DIR/configtest.log" >&2; exit 1; }

# requests PATH COUNT: COUNT GETs with the cookie on one connection; fails unless all 200.
requests() {
    local args=() _ codes
    for _ in $(seq "$2"); do
        args+=("$BENCH_ORIGIN$1" -o /dev/null)
    done
    codes=$(curl -s --max-time 120 -H "Cookie: $BENCH_COOKIE" -w '%{http_code}\n' "${args[@]}" |
        sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
    if [ "$codes" != "200 x$2" ]; then
        echo "$1: want 200 x$2, got $codes" >&2
        exit 1
    fi
}

control() { "${AS[@]}" timeout 60 callgrind_control "$@" "$VG_PID" >/dev/null 2>&1; }

# start NAME valgrind-options...: starts httpd -X under callgrind.
start() {
    local name=$1
    shift
    rm -f "$BENCH_DIR/httpd.pid"
    "${AS[@]}" valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/callgrind.out.$name" \
        "$@" "$BENCH_APACHE" -f "$BENCH_DIR/httpd.conf" -X >"$BENCH_DIR/valgrind-$name.log" 2>&1 &
    RUNNER_PID=$!
    local _
    for _ in $(seq 300); do
        [ -s "$BENCH_DIR/httpd.pid" ] && break
        sleep 0.1
    done
    VG_PID=$(cat "$BENCH_DIR/httpd.pid" 2>/dev/null || true)
    if [ -z "$VG_PID" ] || ! bench_wait_port "$VG_PID" 120; then
        echo "httpd -X under valgrind did not start:" >&2
        cat "$BENCH_DIR/valgrind-$name.log" "$BENCH_DIR/error.log" >&2 2>/dev/null || true
        exit 1
    fi
    bench_login
}

stop() {
    kill -TERM "$VG_PID"
    wait "$RUNNER_PID" || true
    VG_PID=""
    RUNNER_PID=""
}

totals() { sed -n 's/^totals: *//p' "$1"; }

SECONDS=0
echo "== httpd -X under callgrind, $BENCH_ORIGIN, N=$N requests per path (+$WARMUP warm-up)"
echo "== $(bench_module_id)"

# 1. The whole process.
start whole
bench_check
requests /open/file.txt "$WARMUP"
requests /protected/file.txt "$WARMUP"
control -z
requests /open/file.txt "$N"
control -d open
requests /protected/file.txt "$N"
control -d protected
stop
WHOLE_OPEN=$(totals "$BENCH_DIR/callgrind.out.whole.1")
WHOLE_PROT=$(totals "$BENCH_DIR/callgrind.out.whole.2")

# 2. Only inside msa_check_authn.
start authn --collect-atstart=no --toggle-collect=msa_check_authn
requests /protected/file.txt "$WARMUP"
control -z
requests /protected/file.txt "$N"
control -d protected
stop
AUTHN_FILE="$BENCH_DIR/callgrind.out.authn.1"
AUTHN=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root-only "$AUTHN_FILE")

CHECK_WHOLE=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root-only "$BENCH_DIR/callgrind.out.whole.2")

"$BENCH_PYTHON" - "$N" "$WHOLE_OPEN" "$WHOLE_PROT" "$AUTHN" "$CHECK_WHOLE" <<'EOF'
import sys
n, whole_open, whole_prot, authn, check_whole = (int(x) for x in sys.argv[1:6])
print()
print("Ir per request, whole httpd process (run 1):")
print("  open       %9.0f" % (whole_open / n))
print("  protected  %9.0f   (+%.0f, x%.2f)" % (whole_prot / n, (whole_prot - whole_open) / n,
                                             whole_prot / whole_open))
print("msa_check_authn, inclusive Ir per protected request:")
print("  %9.0f   run 2 (--toggle-collect=msa_check_authn)" % (authn / n))
print("  %9.0f   run 1 (its call tree in the whole-process profile)" % (check_whole / n))
print("  = %.0f%% of a protected request, %.0f%% of what protected costs over open"
      % (100.0 * check_whole / whole_prot, 100.0 * check_whole / max(1, whole_prot - whole_open)))
print()
print("run 2 in detail:")
EOF
"$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --requests "$N" --top "$TOP" "$AUTHN_FILE"

ERRORS=$(bench_errors)
echo
echo "error-log [error] lines: $(printf '%s' "$ERRORS" | grep -c . || true); ${SECONDS}s"
if [ -n "$ERRORS" ]; then
    printf '%s\n' "$ERRORS" | head -20 >&2
    exit 1
fi
