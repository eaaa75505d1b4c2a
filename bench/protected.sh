#!/bin/bash
# Throughput of a protected static file against the same file unprotected, on one
# httpd (mpm_event, loopback), measured with wrk in alternating rounds.
#
#   bench/protected.sh                 5 rounds x 10 s per path, 2 threads, 32 connections
#   ROUNDS=9 DURATION=20 CONNECTIONS=64 THREADS=2 bench/protected.sh
#   KEEP=1 bench/protected.sh          keeps /tmp/msauth-bench-* (config, error log, wrk output)
#
# Each round runs open then protected; one warm-up round comes first and is
# discarded. Both paths get the same request (the session cookie included), so
# the only difference is the module's check. Fails when a round saw a non-2xx/3xx
# answer or a socket error, when the paths read different bytes per request (a
# redirect counts as a success for wrk), or when the error log has an [error] line.
set -eu

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

. "$(dirname "$0")/lib.sh"

bench_need_wrk
bench_prepare
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_start_httpd

bench_login

echo "== httpd $("$BENCH_APACHE" -v | sed -n 's/^Server version: //p'), mpm_event, $BENCH_ORIGIN," \
    "module $BENCH_MODULE"
echo "== $(bench_module_id)"
echo "== $BENCH_SIZE-byte file; LogLevel warn; access log off; keep-alive unlimited"
echo "== $(nproc) cores; CPU busy with other work before the run: $(bench_cpu_busy)"
bench_check


# run_wrk NAME PATH ROUND: prints "req/s non-2xx/3xx bytes-per-request socket-errors".
run_wrk() {
    local out="$BENCH_DIR/wrk-$3-$1.txt"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H "Cookie: $BENCH_COOKIE" \
        "$BENCH_ORIGIN$2" >"$out" 2>&1
    local rps non2xx sockerr bpr
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    # Bytes read per request: a redirect or a 401 instead of the file would show.
    bpr=$(awk '/ requests in .* read$/ {
        v = $5; u = v; sub(/[0-9.]+/, "", v); sub(/[A-Za-z]+$/, "", u)
        m = (v == "GB") ? 2^30 : (v == "MB") ? 2^20 : (v == "KB") ? 2^10 : 1
        printf "%.0f", u * m / $1 }' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(sed -n 's/^ *Socket errors: *//p' "$out")
    non2xx=${non2xx:-0}
    if [ -z "$rps" ]; then
        echo "wrk failed:" >&2
        cat "$out" >&2
        exit 1
    fi
    printf '%s %s %s %s\n' "$rps" "$non2xx" "${bpr:-0}" "$(printf '%s' "${sockerr:-none}" | tr -d ' ')"
}

echo "== $ROUNDS rounds (+1 warm-up) x ${DURATION}s per path, $THREADS threads, $CONNECTIONS connections"
printf '%-8s %12s %12s %10s %12s %14s %10s\n' round "open req/s" "prot req/s" "prot/open" "non-2xx o/p" \
    "bytes/req o/p" "other CPU"
OPEN=""
PROT=""
NON2XX_TOTAL=0
BAD=0
OTHER_MAX=0
for round in $(seq 0 "$ROUNDS"); do
    # shellcheck disable=SC2046
    j0=$(bench_jiffies $(bench_httpd_pids))
    read -r o_rps o_bad o_bpr o_sock <<<"$(run_wrk open /open/file.txt "$round")"
    read -r p_rps p_bad p_bpr p_sock <<<"$(run_wrk protected /protected/file.txt "$round")"
    # shellcheck disable=SC2046
    other=$(bench_other_cpu "$j0" "$(bench_jiffies $(bench_httpd_pids))")
    label=$round
    [ "$round" = 0 ] && label=warm-up
    ratio=$("$BENCH_PYTHON" -c "print('%.3f' % ($p_rps / $o_rps))")
    printf '%-8s %12s %12s %10s %12s %14s %10s\n' "$label" "$o_rps" "$p_rps" "$ratio" "$o_bad/$p_bad" \
        "$o_bpr/$p_bpr" "$other"
    if [ "$o_sock" != none ] || [ "$p_sock" != none ]; then
        echo "         socket errors: open: $o_sock; protected: $p_sock"
        BAD=$((BAD + 1))
    fi
    if [ "$o_bad" != 0 ] || [ "$p_bad" != 0 ]; then
        BAD=$((BAD + 1))
    fi
    # Same file, same headers: bytes per request must match (wrk rounds its MB figure).
    if ! "$BENCH_PYTHON" -c "import sys; sys.exit(abs($p_bpr - $o_bpr) > 0.02 * $o_bpr)"; then
        echo "         bytes per request differ: open $o_bpr, protected $p_bpr" >&2
        BAD=$((BAD + 1))
    fi
    NON2XX_TOTAL=$((NON2XX_TOTAL + o_bad + p_bad))
    if [ "$round" != 0 ]; then
        [ "${other%\%}" -le "$OTHER_MAX" ] || OTHER_MAX=${other%\%}
        OPEN="$OPEN $o_rps"
        PROT="$PROT $p_rps"
    fi
done

"$BENCH_PYTHON" - "$OPEN" "$PROT" <<'EOF'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
p = [float(x) for x in sys.argv[2].split()]
mo, mp = statistics.median(o), statistics.median(p)
print("open      median %.0f req/s  (min %.0f, max %.0f)" % (mo, min(o), max(o)))
print("protected median %.0f req/s  (min %.0f, max %.0f)" % (mp, min(p), max(p)))
print("ratio %.3f" % (mp / mo))
# 1/throughput: wall time per request with the whole machine (wrk and httpd share it).
print("1/rate    open %.1f us, protected %.1f us (+%.1f us)" % (1e6 / mo, 1e6 / mp, 1e6 / mp - 1e6 / mo))
EOF

echo "CPU busy with other work after the run: $(bench_cpu_busy) (it lowers req/s)"
if [ "$OTHER_MAX" -gt 10 ]; then
    echo "NOTE: other work took up to $OTHER_MAX% of the CPU in a measured round:" \
        "req/s and the ratio are unreliable; rerun on a quiet machine"
fi

ERRORS=$(bench_errors)
NERR=$(printf '%s' "$ERRORS" | grep -c . || true)
echo "non-2xx/3xx responses (all rounds): $NON2XX_TOTAL"
echo "error-log [error] lines: $NERR"
if [ -n "$ERRORS" ]; then
    printf '%s\n' "$ERRORS" | head -20 >&2
fi
if [ "$BAD" != 0 ] || [ "$NERR" != 0 ]; then
    echo "FAILED: non-2xx answers, socket errors, unequal responses or error-log lines" >&2
    exit 1
fi
