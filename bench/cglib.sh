# shellcheck shell=bash
# httpd -X under callgrind, shared by bench/callgrind.sh and bench/scaling.sh
# (sourced after lib.sh and bench_prepare, not run).
#
# cg_start NAME valgrind-options...  starts httpd -X under callgrind, signs in
#                                   (bench_login; bench_login_openidc with BENCH_OPENIDC)
# cg_requests PATH COUNT            COUNT GETs on one connection; exits unless all 200
# cg_control ARGS...                callgrind_control ARGS on the running httpd (-z, -d name)
# cg_stop                           stops it (the profile is written at exit)
# cg_totals FILE                    the total Ir of a dump
#
# As root, valgrind, httpd and callgrind_control run as www-data (runuser):
# httpd -X still drops to User www-data after valgrind opened its files as root,
# and then can write neither the profile nor vgdb's control pipes.

command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }

CG_AS=()
CG_RUNNER_PID=""
CG_VG_PID=""

cg_own_dir() {
    if [ "$(id -u)" = 0 ]; then
        chown -R www-data:www-data "$BENCH_DIR"
        CG_AS=(runuser -u www-data --)
    fi
}

cg_cleanup() {
    if [ -n "$CG_VG_PID" ] && kill -0 "$CG_VG_PID" 2>/dev/null; then
        kill -TERM "$CG_VG_PID" 2>/dev/null || true
    fi
    if [ -n "$CG_RUNNER_PID" ]; then
        wait "$CG_RUNNER_PID" 2>/dev/null || true
    fi
    CG_VG_PID=""
    CG_RUNNER_PID=""
}

cg_configtest() {
    "$BENCH_APACHE" -t -f "$BENCH_DIR/httpd.conf" >"$BENCH_DIR/configtest.log" 2>&1 ||
        { cat "$BENCH_DIR/configtest.log" >&2; exit 1; }
}

cg_requests() {
    local args=() _ codes
    for _ in $(seq "$2"); do
        args+=("$BENCH_ORIGIN$1" -o /dev/null)
    done
    codes=$(curl -s --max-time 300 -H "$(bench_cookie_header)" -w '%{http_code}\n' "${args[@]}" |
        sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
    if [ "$codes" != "200 x$2" ]; then
        echo "$1: want 200 x$2, got $codes" >&2
        exit 1
    fi
}

cg_control() { "${CG_AS[@]}" timeout 120 callgrind_control "$@" "$CG_VG_PID" >/dev/null 2>&1; }

cg_start() {
    local name=$1
    shift
    cg_configtest
    [ "$(id -u)" != 0 ] || chown -R www-data:www-data "$BENCH_DIR"
    rm -f "$BENCH_DIR/httpd.pid"
    "${CG_AS[@]}" valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/callgrind.out.$name" \
        "$@" "$BENCH_APACHE" -f "$BENCH_DIR/httpd.conf" -X >"$BENCH_DIR/valgrind-$name.log" 2>&1 &
    CG_RUNNER_PID=$!
    local _
    for _ in $(seq 1800); do
        [ -s "$BENCH_DIR/httpd.pid" ] && break
        kill -0 "$CG_RUNNER_PID" 2>/dev/null || break
        sleep 0.1
    done
    CG_VG_PID=$(cat "$BENCH_DIR/httpd.pid" 2>/dev/null || true)
    if [ -z "$CG_VG_PID" ] || ! bench_wait_port "$CG_VG_PID" 120; then
        echo "httpd -X under valgrind did not start:" >&2
        cat "$BENCH_DIR/valgrind-$name.log" "$BENCH_DIR/error.log" >&2 2>/dev/null || true
        exit 1
    fi
    bench_login
    if [ -n "${BENCH_OPENIDC:-}" ]; then
        bench_login_openidc
    fi
}

cg_stop() {
    kill -TERM "$CG_VG_PID"
    wait "$CG_RUNNER_PID" || true
    CG_VG_PID=""
    CG_RUNNER_PID=""
}

cg_totals() { sed -n 's/^totals: *//p' "$1"; }

# cg_requests_turn PATH COUNT COOKIE...: COUNT GETs on one connection, each with the
# next COOKIE in turn (then "; $BENCH_OIDC_COOKIE" when set); exits unless every
# answer is 200 with the file.
cg_requests_turn() {
    local path=$1 count=$2
    shift 2
    "$BENCH_PYTHON" - "$BENCH_PORT" "$path" "$count" "$BENCH_SIZE" "${BENCH_OIDC_COOKIE:-}" \
        "curl/$(curl --version | awk 'NR == 1 {print $2}')" "$@" <<'PY'
import http.client, sys
port, path, count, size, oidc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ua, cookies = sys.argv[6], sys.argv[7:]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
for i in range(count):
    c = cookies[i % len(cookies)] + ("; " + oidc if oidc else "")
    # The request curl sends (cg_requests), header for header.
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.putheader("User-Agent", ua)
    conn.putheader("Accept", "*/*")
    conn.putheader("Cookie", c)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or len(body) != size:
        sys.exit("%s: request %d answered %d with %d bytes" % (path, i, resp.status, len(body)))
conn.close()
PY
}
