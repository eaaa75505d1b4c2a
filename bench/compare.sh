#!/bin/bash
# Throughput of the same static file unprotected, behind mod_msauth and behind
# mod_auth_openidc, on one httpd (mpm_event, loopback), measured with wrk in
# interleaved rounds.
#
#   bench/compare.sh                   5 rounds x 10 s per path, 2 threads, 32 connections
#   ROUNDS=9 DURATION=20 CONNECTIONS=64 THREADS=2 bench/compare.sh
#   KEEP=1 bench/compare.sh            keeps /tmp/msauth-bench-* (config, error log, wrk output)
#
# Locations: /open (Require all granted), /protected (AuthType Microsoft, Require
# valid-user: the root app) and /openidc (Debian's mod_auth_openidc, AuthType
# openid-connect, Require valid-user, its default shm session cache, fakems as the
# OpenID provider; installed with apt when missing). Both modules are signed in
# through fakems, and every path gets the same request: one Cookie header with
# both sessions. Each round runs open, msauth, openidc; one warm-up round comes
# first and is discarded. Fails when a run saw a non-2xx/3xx answer or a socket
# error, when the paths read different bytes per request (wrk counts a 302 to the
# provider as a success; it is smaller than the file), or when the error log has
# an [error] line.
set -eu

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
BENCH_OPENIDC=1

. "$(dirname "$0")/lib.sh"

bench_need_wrk
bench_prepare
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_start_httpd

bench_login
bench_login_openidc alice
COOKIE=$(bench_cookie_header)

echo "== httpd $("$BENCH_APACHE" -v | sed -n 's/^Server version: //p'), mpm_event, $BENCH_ORIGIN"
echo "== $(bench_module_id)"
echo "== $(bench_openidc_id)"
echo "== $BENCH_SIZE-byte file; LogLevel ${LOGLEVEL:-warn}; access log off; keep-alive unlimited;" \
    "request Cookie header ${#COOKIE} bytes (both sessions)"
echo "== $(nproc) cores; CPU busy with other work before the run: $(bench_cpu_busy)"
bench_check


# run_wrk NAME PATH ROUND: prints "req/s non-2xx/3xx bytes-per-request socket-errors".
run_wrk() {
    local out="$BENCH_DIR/wrk-$3-$1.txt"
    timeout $((DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H "$COOKIE" \
        "$BENCH_ORIGIN$2" >"$out" 2>&1 || true
    local rps non2xx sockerr bpr
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
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

echo "== $ROUNDS rounds (+1 warm-up) x ${DURATION}s per path, $THREADS threads, $CONNECTIONS connections;" \
    "order open, msauth, openidc"
printf '%-8s %10s %10s %10s %8s %8s %8s %9s %15s %9s\n' round "open" "msauth" "openidc" \
    "ms/open" "oidc/op" "ms/oidc" "non-2xx" "bytes/req" "other CPU"
OPEN=""
MSA=""
OIDC=""
NON2XX_TOTAL=0
BAD=0
OTHER_MAX=0
for round in $(seq 0 "$ROUNDS"); do
    # shellcheck disable=SC2046
    j0=$(bench_jiffies $(bench_httpd_pids))
    read -r o_rps o_bad o_bpr o_sock <<<"$(run_wrk open /open/file.txt "$round")"
    read -r m_rps m_bad m_bpr m_sock <<<"$(run_wrk msauth /protected/file.txt "$round")"
    read -r i_rps i_bad i_bpr i_sock <<<"$(run_wrk openidc /openidc/file.txt "$round")"
    # shellcheck disable=SC2046
    other=$(bench_other_cpu "$j0" "$(bench_jiffies $(bench_httpd_pids))")
    label=$round
    [ "$round" = 0 ] && label=warm-up
    ratios=$("$BENCH_PYTHON" -c "print('%.3f %.3f %.3f' % ($m_rps / $o_rps, $i_rps / $o_rps, $m_rps / $i_rps))")
    # shellcheck disable=SC2086
    printf '%-8s %10s %10s %10s %8s %8s %8s %9s %15s %9s\n' "$label" "$o_rps" "$m_rps" "$i_rps" $ratios \
        "$o_bad/$m_bad/$i_bad" "$o_bpr/$m_bpr/$i_bpr" "$other"
    if [ "$o_sock" != none ] || [ "$m_sock" != none ] || [ "$i_sock" != none ]; then
        echo "         socket errors: open: $o_sock; msauth: $m_sock; openidc: $i_sock"
        BAD=$((BAD + 1))
    fi
    if [ "$o_bad" != 0 ] || [ "$m_bad" != 0 ] || [ "$i_bad" != 0 ]; then
        BAD=$((BAD + 1))
    fi
    # Same file, same headers: bytes per request must match (wrk rounds its MB figure).
    for b in "$m_bpr" "$i_bpr"; do
        if ! "$BENCH_PYTHON" -c "import sys; sys.exit(abs($b - $o_bpr) > 0.02 * $o_bpr)"; then
            echo "         bytes per request differ: open $o_bpr, msauth $m_bpr, openidc $i_bpr" >&2
            BAD=$((BAD + 1))
        fi
    done
    NON2XX_TOTAL=$((NON2XX_TOTAL + o_bad + m_bad + i_bad))
    if [ "$round" != 0 ]; then
        [ "${other%\%}" -le "$OTHER_MAX" ] || OTHER_MAX=${other%\%}
        OPEN="$OPEN $o_rps"
        MSA="$MSA $m_rps"
        OIDC="$OIDC $i_rps"
    fi
done

"$BENCH_PYTHON" - "$OPEN" "$MSA" "$OIDC" <<'PY'
import statistics, sys
rows = [("open", sys.argv[1]), ("msauth", sys.argv[2]), ("openidc", sys.argv[3])]
med = {}
print()
print("%-8s %12s %10s %10s %12s" % ("path", "median req/s", "min", "max", "1/rate"))
for name, vals in rows:
    v = [float(x) for x in vals.split()]
    med[name] = statistics.median(v)
    print("%-8s %12.0f %10.0f %10.0f %9.1f us" % (name, med[name], min(v), max(v), 1e6 / med[name]))
print("ratio msauth/open   %.3f" % (med["msauth"] / med["open"]))
print("ratio openidc/open  %.3f" % (med["openidc"] / med["open"]))
print("ratio msauth/openidc %.3f" % (med["msauth"] / med["openidc"]))
PY

echo "CPU busy with other work after the run: $(bench_cpu_busy) (it lowers req/s)"
if [ "$OTHER_MAX" -gt 10 ]; then
    echo "NOTE: other work took up to $OTHER_MAX% of the CPU in a measured round:" \
        "req/s and the ratios are unreliable; rerun on a quiet machine"
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
