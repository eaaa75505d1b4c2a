#!/bin/bash
# Does a protected request cost more as the server grows? The instructions a
# mod_msauth request adds (protected minus open, whole httpd -X process under
# callgrind, as in bench/callgrind.sh run 1) with more apps, groups and cookies,
# the throughput ratio with 1 and 8 children, and the login callback's cost.
#
#   bench/scaling.sh                     every case, N=200 requests per path
#   CASES="base apps-10000 cookies-20" bench/scaling.sh
#   N=100 NLOGIN=10 CHILDREN=0 bench/scaling.sh
#   KEEP=1 bench/scaling.sh              keeps /tmp/msauth-bench-* (configs, profiles)
#
# Cases (each a fresh httpd -X under valgrind with its own config and login):
#   base          the root app only, no settings store, alice without groups
#                 (MSAuthGroups Off), the session cookie alone in the request; every
#                 case signs in with scope "openid profile email User.Read"
#   apps-100      100 configured apps: the root app and 99 <MSAuthApp appN> blocks,
#   apps-10000    each with its own MSAuthClientID and a <Location /apps/appN>
#                 (AuthType Microsoft, MSAuthApp appN); the request is the root app's
#   store-1       MSAuthSettingsFile holding 1, 100, 10,000 apps (ms_app_id each;
#   store-100     their session cookies msauth-<appid>), checked through
#   store-10000   GET /_settings with MSAuthAdminKey
#   groups-40     MSAuthGroups Token, a fakems user with 40 groups: they ride in the cookie
#   groups-250    MSAuthGroups Token, erin (250 groups: Microsoft's overage, read from
#                 Graph): too big for the cookie, kept in MSAuthCache (groups_cached);
#                 /me is checked to list them all
#   cookies-20    19 unrelated cookies (name=value, 24-byte values) after the session's
#   apps-10000+cookies-20   both: MSAuthStripCookie looks at every cookie
#   children      not instructions: httpd -X is one process, and a request runs start
#                 to end on one thread of one child whatever the number of children
#                 (the module's shared state is one shmcb segment behind one mutex:
#                 contention costs waiting and futex calls in the kernel, which
#                 callgrind does not count). So wrk: median protected/open ratio of
#                 CH_ROUNDS x CH_DURATION s rounds with 1 child and with 8 (64
#                 threads each), on the base config. CHILDREN=0 leaves it out.
#   callback      the login callback: --toggle-collect=msa_callback_handler over
#                 NLOGIN logins through fakems (after two warm-up logins: the
#                 first fetches the JWKS), so fakems and the wait for it are not
#                 counted; the handler's Ir per login, its libcurl and OpenSSL
#                 calls (token exchange, RS256 verify, Graph /me) included.
# Prints one table: case, Ir per open and protected request, added Ir (protected
# minus open), growth of the added Ir against the base case. Fails when a check
# fails (a 401 where a 200 was expected, an app or group count that is not the
# case's, a login that does not come back with a session).
set -eu
# shellcheck disable=SC2034  # BENCH_* settings are read by bench/lib.sh

N=${N:-200}
WARMUP=${WARMUP:-5}
NLOGIN=${NLOGIN:-20}
CHILDREN=${CHILDREN:-1}
CH_ROUNDS=${CH_ROUNDS:-3}
CH_DURATION=${CH_DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
# One worker thread under callgrind, as in bench/callgrind.sh: the same thread's memo
# of verified tokens serves every request after the warm-up (repeated cookie).
CG_THREADS=${CG_THREADS:-1}
ALL_CASES="base apps-100 apps-10000 store-1 store-100 store-10000 groups-40 groups-250 cookies-20
apps-10000+cookies-20 children callback"
CASES=${CASES:-$ALL_CASES}

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cglib.sh"

for c in $CASES; do
    case " $(echo "$ALL_CASES" | tr '\n' ' ') " in
    *" $c "*) ;;
    *) echo "unknown case $c (cases: $ALL_CASES)" >&2; exit 1 ;;
    esac
done
case " $CASES " in
*" base "*) ;;
*) CASES="base $CASES" ;;   # the reference of the growth column
esac
[ "$CHILDREN" != 0 ] || CASES=$(echo "$CASES" | tr ' ' '\n' | grep -vx children | tr '\n' ' ')
case " $CASES " in *" children "*) bench_need_wrk ;; esac

bench_prepare
cg_own_dir
cleanup() {
    cg_cleanup
    bench_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every case signs in with an id_token (the groups claim comes in it), the base case too.
BENCH_SCOPE="openid profile email https://graph.microsoft.com/user.read"
ADMIN_KEY="bench-admin-key-0123456789-abcdefghijkl"
# The module's per-request hooks (mod_msauth.c): their inclusive Ir is the module's
# own cost, whatever httpd spends around it (10,000 <Location> sections cost httpd's
# location walk more than the module's whole check, and not equally for every URI).
MSA_HOOKS="msa_quick_handler,msa_redact_request_line,msa_scrub_request,msa_check_authn"
MSA_HOOKS="$MSA_HOOKS,msa_hide_credentials,msa_before_handler,msa_restore_users,msa_metrics_handler"
MSA_HOOKS="$MSA_HOOKS,msa_health_handler,msa_note_auth_failure,msa_insert_error_filter"
ROWS="$BENCH_DIR/rows.txt"
: >"$ROWS"

# A fakems user with 40 groups (fakems's built-in client sends a groups claim).
curl -s --max-time 10 -o /dev/null -X POST -H 'Content-Type: application/json' \
    -d '{"name": "gina", "group_count": 40}' "$BENCH_FAKEMS/_fakems/users" ||
    { echo "fakems refused the user gina" >&2; exit 1; }

# apps_conf COUNT: the server-level lines of COUNT-1 named apps and their locations.
apps_conf() {
    "$BENCH_PYTHON" - "$1" <<'EOF'
import sys
for i in range(1, int(sys.argv[1])):
    print("<MSAuthApp app%d>\n    MSAuthClientID 00000000-0000-4000-8000-%012d\n</MSAuthApp>\n"
          "<Location /apps/app%d>\n    AuthType Microsoft\n    MSAuthApp app%d\n"
          "    Require valid-user\n</Location>" % (i, i, i, i))
EOF
}

# store_file COUNT: a settings store of COUNT apps.
store_file() {
    "$BENCH_PYTHON" - "$1" "$BENCH_DIR/store/settings.json" <<'EOF'
import json, sys
n, path = int(sys.argv[1]), sys.argv[2]
apps = {"s%d" % i: {"ms_app_id": "00000000-0000-4000-9000-%012d" % i} for i in range(1, n + 1)}
with open(path, "w") as f:
    json.dump({"apps": apps}, f)
EOF
}

more_cookies() { # COUNT unrelated cookies, "; name=value" each
    local i out=""
    for i in $(seq "$1"); do
        out="$out; pref$i=$(printf 'v%023d' "$i")"
    done
    printf '%s' "$out"
}

# setup CASE: the settings of one case (config lines, user, extra cookies).
setup() {
    BENCH_SERVER_EXTRA=""
    BENCH_USER=alice
    BENCH_MORE_COOKIES=""
    BENCH_THREADS=$CG_THREADS
    WANT_APPS=""
    WANT_STORE=""
    WANT_GROUPS=""
    case "$1" in
    base | children | callback) ;;
    apps-100) BENCH_SERVER_EXTRA=$(apps_conf 100); WANT_APPS=100 ;;
    apps-10000) BENCH_SERVER_EXTRA=$(apps_conf 10000); WANT_APPS=10000 ;;
    store-*)
        WANT_STORE=${1#store-}
        rm -rf "$BENCH_DIR/store"
        mkdir -p "$BENCH_DIR/store"
        store_file "$WANT_STORE"
        BENCH_SERVER_EXTRA="MSAuthSettingsFile $BENCH_DIR/store/settings.json
MSAuthAdminKey $ADMIN_KEY"
        ;;
    groups-40) BENCH_SERVER_EXTRA="MSAuthGroups Token"; BENCH_USER=gina; WANT_GROUPS=40 ;;
    groups-250) BENCH_SERVER_EXTRA="MSAuthGroups Token"; BENCH_USER=erin; WANT_GROUPS=250 ;;
    cookies-20) BENCH_MORE_COOKIES=$(more_cookies 19) ;;
    apps-10000+cookies-20)
        BENCH_SERVER_EXTRA=$(apps_conf 10000)
        WANT_APPS=10000
        BENCH_MORE_COOKIES=$(more_cookies 19)
        ;;
    esac
    bench_write_conf
}

# The checks of a case beyond bench_check, on the running server.
check_case() {
    if [ -n "$WANT_APPS" ]; then
        local last=$((WANT_APPS - 1)) st
        st=$(bench_status "/apps/app$last/file.txt" -H 'Accept: application/json')
        echo "check: /apps/app$last without a cookie: $st"
        [ "$st" = 401 ] || { echo "check FAILED: app$last does not protect its location" >&2; exit 1; }
    fi
    if [ -n "$WANT_STORE" ]; then
        local n
        n=$(curl -s --max-time 60 -H "Authorization: Bearer $ADMIN_KEY" \
            "$BENCH_ORIGIN/microsoft_auth/_settings" |
            "$BENCH_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["apps"]))') || n="?"
        echo "check: the settings store lists $n apps"
        [ "$n" = "$WANT_STORE" ] || { echo "check FAILED: want $WANT_STORE stored apps" >&2; exit 1; }
    fi
    local me
    me=$(curl -s --max-time 60 -H "Cookie: $BENCH_COOKIE" "$BENCH_ORIGIN/microsoft_auth/me" |
        "$BENCH_PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin).get("groups") or []))') ||
        me="?"
    local cached
    cached=$("$BENCH_PYTHON" - "$BENCH_TOKEN" <<'EOF'
import base64, json, sys
p = sys.argv[1].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
print("in MSAuthCache (groups_cached)" if c.get("groups_cached") else
      "%d in the cookie" % len(c.get("groups") or []))
EOF
)
    echo "check: /me lists $me groups ($cached); cookie ${#BENCH_COOKIE} bytes;" \
        "request Cookie header $(bench_cookie_header | wc -c) bytes"
    [ "$me" = "${WANT_GROUPS:-0}" ] || { echo "check FAILED: want ${WANT_GROUPS:-0} groups" >&2; exit 1; }
    if [ "${WANT_GROUPS:-0}" = 250 ] && [ "$cached" != "in MSAuthCache (groups_cached)" ]; then
        echo "check FAILED: 250 groups should be kept in MSAuthCache" >&2
        exit 1
    fi
}

# A case in instructions: N open, then N protected requests on one connection.
instr_case() {
    local name=$1 t0=$SECONDS
    setup "$name"
    echo "== $name"
    cg_start "$name"
    bench_check
    check_case
    cg_requests /open/file.txt "$WARMUP"
    cg_requests /protected/file.txt "$WARMUP"
    cg_control -z
    cg_requests /open/file.txt "$N"
    cg_control -d open
    cg_requests /protected/file.txt "$N"
    cg_control -d protected
    cg_stop
    local f1="$BENCH_DIR/callgrind.out.$name.1" f2="$BENCH_DIR/callgrind.out.$name.2"
    echo "$name $(cg_totals "$f1") $(cg_totals "$f2")" \
        "$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --sum "$MSA_HOOKS" "$f1")" \
        "$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --sum "$MSA_HOOKS" "$f2")" >>"$ROWS"
    echo "   ($((SECONDS - t0)) s)"
}

# The login callback: msa_callback_handler's inclusive Ir per login.
callback_case() {
    setup callback
    echo "== callback: $NLOGIN logins through fakems"
    cg_start callback --collect-atstart=no --toggle-collect=msa_callback_handler
    bench_login   # a second warm-up login (cg_start's own fetched the JWKS)
    cg_control -z
    local i
    for i in $(seq "$NLOGIN"); do
        bench_login
        [ "$(bench_status /protected/file.txt -H "Cookie: $BENCH_COOKIE")" = 200 ] ||
            { echo "check FAILED: login $i gave a session that is refused" >&2; exit 1; }
    done
    cg_control -d logins
    cg_stop
    CALLBACK_FILE="$BENCH_DIR/callgrind.out.callback.1"
    local ir
    ir=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root msa_callback_handler --root-only \
        "$CALLBACK_FILE")
    echo "callback $ir $NLOGIN" >>"$ROWS"
}

# children: protected/open throughput with 1 and with 8 children (base config).
children_case() {
    setup children
    BENCH_THREADS=64
    local procs
    for procs in 1 8; do
        BENCH_PROCS=$procs
        bench_write_conf
        unset BENCH_PROCS
        echo "== children: $procs x 64 threads, $CH_ROUNDS rounds (+1 warm-up) x ${CH_DURATION}s per path"
        bench_start_httpd
        local n
        n=$(pgrep -P "$BENCH_HTTPD_PID" | wc -l)
        bench_login
        bench_check
        echo "   children running: $n"
        [ "$n" = "$procs" ] || { echo "check FAILED: want $procs children" >&2; exit 1; }
        local r rs="" o p
        for r in $(seq 0 "$CH_ROUNDS"); do
            o=$(ch_wrk /open/file.txt)
            p=$(ch_wrk /protected/file.txt)
            echo "   round $r: open $o req/s, protected $p req/s$([ "$r" = 0 ] && echo ' (warm-up)')"
            [ "$r" = 0 ] || rs="$rs $o:$p"
        done
        echo "children-$procs$rs" >>"$ROWS"
        bench_stop_httpd
    done
}

ch_wrk() { # PATH: req/s; exits on a non-2xx answer or a socket error
    local out="$BENCH_DIR/wrk.txt"
    timeout $((CH_DURATION + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${CH_DURATION}s" \
        -H "Cookie: $BENCH_COOKIE" "$BENCH_ORIGIN$1" >"$out" 2>&1 || true
    if grep -q 'Non-2xx\|Socket errors' "$out" || ! grep -q '^Requests/sec:' "$out"; then
        echo "wrk on $1: errors or no result:" >&2
        cat "$out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ {print $2}' "$out"
}

SECONDS=0
echo "== scaling of a protected request, $BENCH_ORIGIN; N=$N requests per path (+$WARMUP warm-up)"
echo "== $(bench_module_id)"
# shellcheck disable=SC2086  # one line of case names
echo "== cases:" $CASES
for c in $CASES; do
    case "$c" in
    children) children_case ;;
    callback) callback_case ;;
    *) instr_case "$c" ;;
    esac
done

echo
echo "mod_msauth: $(bench_module_id)"
"$BENCH_PYTHON" - "$N" "$ROWS" <<'EOF'
import statistics, sys
n, rows = int(sys.argv[1]), [l.split() for l in open(sys.argv[2]) if l.strip()]
base = next(r for r in rows if r[0] == "base")
base_added = (int(base[2]) - int(base[1])) / n
base_mod = int(base[4]) / n
print("%-22s %11s %11s %9s %8s %10s %8s %9s" % ("case", "open Ir/req", "Ir/request", "added Ir",
      "growth", "module Ir", "growth", "mod. open"))
for r in rows:
    if r[0] == "callback" or r[0].startswith("children-"):
        continue
    o, p, mo, mp = (int(x) / n for x in r[1:5])
    print("%-22s %11.0f %11.0f %9.0f %+7.1f%% %10.0f %+7.1f%% %9.0f"
          % (r[0], o, p, p - o, 100.0 * ((p - o) / base_added - 1), mp, 100.0 * (mp / base_mod - 1), mo))
for r in rows:
    if r[0].startswith("children-"):
        pairs = [tuple(float(x) for x in v.split(":")) for v in r[1:]]
        ratios = [p / o for o, p in pairs]
        print("%-22s protected/open median %.3f (rounds %s; median req/s open %.0f, protected %.0f;"
              " wrk, not instructions)" % (r[0] + " (wrk)", statistics.median(ratios),
                                          " ".join("%.3f" % x for x in ratios),
                                          statistics.median(o for o, _ in pairs),
                                          statistics.median(p for _, p in pairs)))
for r in rows:
    if r[0] == "callback":
        print("%-22s %11s %11.0f %9s %8s   (msa_callback_handler inclusive, per login, %s logins)"
              % ("login callback", "-", int(r[1]) / int(r[2]), "-", "-", r[2]))
print("added Ir: protected minus open, whole process; module Ir: the inclusive Ir of the")
print("module's hooks on a protected request (mod. open: on an open one); growth against base")
EOF
if [ -n "${CALLBACK_FILE:-}" ]; then
    echo
    echo "login callback in detail:"
    "$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root msa_callback_handler --requests "$NLOGIN" \
        --top 12 "$CALLBACK_FILE"
fi

ERRORS=$(bench_errors)
echo
echo "error-log [error] lines: $(printf '%s' "$ERRORS" | grep -c . || true); ${SECONDS}s"
if [ -n "$ERRORS" ]; then
    printf '%s\n' "$ERRORS" | head -20 >&2
    exit 1
fi
