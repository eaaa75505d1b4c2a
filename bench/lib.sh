# shellcheck shell=bash disable=SC2034
# Shared by the bench/*.sh scripts (sourced, not run).
#
# bench_prepare   builds the module if needed, makes $BENCH_DIR with the content,
#                 the httpd config, and fakems started
# bench_login     signs in through fakems: $BENCH_COOKIE for the running server
# bench_check     one curl round trip per case: open 200, protected 200 with the
#                 cookie, protected 401 without it
# bench_errors    the [error]/[crit]/[alert]/[emerg] lines of the error log
#
# The server: one apache2 with mpm_event on 127.0.0.1:<free port>, LogLevel warn,
# no access log (no CustomLog at all: both paths skip the same I/O), keep-alive
# without a per-connection request limit, and the same 1 KiB file at
#   /open/file.txt        Require all granted
#   /protected/file.txt   AuthType Microsoft + Require valid-user (the root app)
# MSAuthLoginHost/GraphHost point at fakems, used once per server start to sign
# in (bench_login); a valid session cookie never makes the module call out.
#
# Set before bench_prepare:
#   BENCH_OPENIDC=1     also /openidc/file.txt behind mod_auth_openidc (AuthType
#                       openid-connect, Require valid-user, default shm session cache,
#                       fakems as the provider); bench_login_openidc signs in to it
#   BENCH_SERVER_EXTRA  lines added at server level (more apps, MSAuthSettingsFile, ...)
#   BENCH_PROT_EXTRA    lines added inside <Location /protected>
BENCH_OPENIDC_MODULE=/usr/lib/apache2/modules/mod_auth_openidc.so
BENCH_OPENIDC_PKG=libapache2-mod-auth-openidc
# alice's tenant (fakems's built-in directory): the provider openidc is pointed at.
BENCH_TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47

BENCH_ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_MODULE=${MSAUTH_MODULE:-$BENCH_ROOT/.libs/mod_msauth.so}
BENCH_APACHE=/usr/sbin/apache2
BENCH_MODDIR=/usr/lib/apache2/modules
BENCH_PYTHON=/usr/bin/python3
BENCH_KEY="bench-secret-key-0123456789-abcdefghijklmnop"
BENCH_SIZE=${FILE_SIZE:-1024}

bench_free_port() {
    "$BENCH_PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fakems (the Microsoft stand-in) on a free port: the bench signs in through it once per
# server start, since session tokens carry the epoch of the server's MSAuthCache.
bench_start_fakems() {
    "$BENCH_PYTHON" "$BENCH_ROOT/test/fakems/fakems.py" --port 0 >"$BENCH_DIR/fakems.out" \
        2>"$BENCH_DIR/fakems.log" &
    BENCH_FAKEMS_PID=$!
    local _
    for _ in $(seq 100); do
        BENCH_FAKEMS=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$BENCH_DIR/fakems.out")
        [ -n "$BENCH_FAKEMS" ] && return 0
        sleep 0.1
    done
    echo "fakems did not start" >&2
    cat "$BENCH_DIR/fakems.log" >&2
    return 1
}

bench_stop_fakems() {
    if [ -n "${BENCH_FAKEMS_PID:-}" ]; then
        kill "$BENCH_FAKEMS_PID" 2>/dev/null || true
        wait "$BENCH_FAKEMS_PID" 2>/dev/null || true
        BENCH_FAKEMS_PID=""
    fi
}

# A real session for the running server: $BENCH_COOKIE ("msauth=<token>"), of
# $BENCH_USER (fakems's login name; default alice), asking for $BENCH_SCOPE (default
# Graph's user.read alone, as the seed's login does).
bench_login() {
    BENCH_COOKIE=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/login.py" "$BENCH_ORIGIN" "$BENCH_FAKEMS" \
        11111111-2222-3333-4444-555555555555 "${BENCH_USER:-alice}" \
        "${BENCH_SCOPE:-https://graph.microsoft.com/user.read}") ||
        { echo "could not sign in to the bench server" >&2; return 1; }
    BENCH_TOKEN=${BENCH_COOKIE#msauth=}
}

# Installs wrk when it is missing.
bench_need_wrk() {
    command -v wrk >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "wrk is missing: apt-get install wrk (as root)" >&2
        exit 1
    fi
    echo "== installing wrk"
    local apt=(apt-get install -y -q -o DPkg::Lock::Timeout=300 wrk)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; }
    command -v wrk >/dev/null 2>&1 || { echo "no wrk after apt-get" >&2; exit 1; }
}

# Installs Debian's mod_auth_openidc when it is missing (waits for another apt's lock).
bench_need_openidc() {
    [ -f "$BENCH_OPENIDC_MODULE" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "mod_auth_openidc is missing: apt-get install $BENCH_OPENIDC_PKG (as root)" >&2
        exit 1
    fi
    echo "== installing $BENCH_OPENIDC_PKG"
    local apt=(apt-get install -y -q -o DPkg::Lock::Timeout=300 "$BENCH_OPENIDC_PKG")
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; }
    [ -f "$BENCH_OPENIDC_MODULE" ] || { echo "no $BENCH_OPENIDC_MODULE after apt-get" >&2; exit 1; }
}

bench_openidc_id() {
    echo "mod_auth_openidc $(dpkg-query -W -f='${Version}' "$BENCH_OPENIDC_PKG" 2>/dev/null || echo '?')" \
        "($BENCH_OPENIDC_PKG), $(basename "$BENCH_OPENIDC_MODULE") sha256" \
        "$(sha256sum "$BENCH_OPENIDC_MODULE" | cut -c1-12)"
}

# A session of mod_auth_openidc for the running server: $BENCH_OIDC_COOKIE
# ("mod_auth_openidc_session=<id>"), through its redirect flow and fakems.
bench_login_openidc() {
    BENCH_OIDC_COOKIE=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/login_openidc.py" \
        "$BENCH_ORIGIN/openidc/file.txt" "${1:-alice}") ||
        { echo "could not sign in to mod_auth_openidc" >&2; return 1; }
}

# Which module is measured: the .so's hash and time, the commit, and whether the
# sources differ from it (read-only git: --no-optional-locks never touches the index).
bench_module_id() {
    local sha when head src dirty=""
    sha=$(sha256sum "$BENCH_MODULE" | cut -c1-12)
    when=$(date -r "$BENCH_MODULE" '+%Y-%m-%d %H:%M:%S')
    head=$(git -C "$BENCH_ROOT" --no-optional-locks rev-parse --short HEAD 2>/dev/null || echo "?")
    src=$(git -C "$BENCH_ROOT" --no-optional-locks log -1 --format=%h -- src include mod_msauth.c \
        2>/dev/null || echo "?")
    if ! git -C "$BENCH_ROOT" --no-optional-locks diff --quiet HEAD -- src include mod_msauth.c \
        2>/dev/null; then
        dirty=" + uncommitted changes in src"
    fi
    echo "mod_msauth.so sha256 $sha built $when; source: $head (sources last changed in $src)$dirty"
}

bench_build() {
    if [ ! -f "$BENCH_MODULE" ]; then
        echo "== building the module (scripts/build)"
        "$BENCH_ROOT/scripts/build" >/dev/null
    fi
    [ -f "$BENCH_MODULE" ] || { echo "no module at $BENCH_MODULE" >&2; exit 1; }
}

# Makes $BENCH_DIR with the content and httpd.conf, $BENCH_PORT, and starts fakems.
bench_prepare() {
    bench_build
    [ -z "${BENCH_OPENIDC:-}" ] || bench_need_openidc
    BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/msauth-bench-XXXXXX")
    chmod 755 "$BENCH_DIR"
    # httpd loads a copy: a concurrent rebuild of .libs cannot change the module mid-run.
    cp "$BENCH_MODULE" "$BENCH_DIR/mod_msauth.so"
    BENCH_PORT=$(bench_free_port)
    bench_start_fakems
    BENCH_ORIGIN="http://127.0.0.1:$BENCH_PORT"
    mkdir -p "$BENCH_DIR/htdocs/open" "$BENCH_DIR/htdocs/protected" "$BENCH_DIR/htdocs/openidc"
    head -c "$BENCH_SIZE" /dev/zero | tr '\0' 'x' >"$BENCH_DIR/htdocs/open/file.txt"
    cp "$BENCH_DIR/htdocs/open/file.txt" "$BENCH_DIR/htdocs/protected/file.txt"
    cp "$BENCH_DIR/htdocs/open/file.txt" "$BENCH_DIR/htdocs/openidc/file.txt"
    chmod -R a+rX "$BENCH_DIR/htdocs"
    bench_write_conf
}

# (Re)writes $BENCH_DIR/httpd.conf from the settings above; $BENCH_PROCS, when set,
# is the number of children, $BENCH_THREADS the threads of each (default 64).
bench_write_conf() {
    local user=""
    if [ "$(id -u)" = 0 ]; then
        user="User www-data
Group www-data"
    fi
    local loads="" m procs
    procs=$(((2 * ${CONNECTIONS:-32} + 63) / 64))
    [ "$procs" -ge 2 ] || procs=2
    procs=${BENCH_PROCS:-$procs}
    local threads=${BENCH_THREADS:-64}
    for m in mpm_event authn_core authz_core authz_user mime socache_shmcb; do
        loads="$loads
LoadModule ${m}_module $BENCH_MODDIR/mod_${m}.so"
    done
    local openidc_load="" openidc_loc=""
    if [ -n "${BENCH_OPENIDC:-}" ]; then
        openidc_load="LoadModule auth_openidc_module $BENCH_OPENIDC_MODULE"
        # Defaults otherwise (OIDCCacheType shm, claims passed as headers and env);
        # the session timeouts only keep the one login valid for the whole run.
        openidc_loc="OIDCProviderMetadataURL $BENCH_FAKEMS/$BENCH_TENANT/v2.0/.well-known/openid-configuration
OIDCClientID 11111111-2222-3333-4444-555555555555
OIDCClientSecret fakems-client-secret-0123456789
OIDCRedirectURI $BENCH_ORIGIN/openidc/redirect_uri
OIDCCryptoPassphrase bench-openidc-passphrase-0123456789
OIDCScope \"openid email profile\"
OIDCSessionInactivityTimeout 86400
OIDCSessionMaxDuration 86400
<Location /openidc>
    AuthType openid-connect
    Require valid-user
</Location>"
    fi
    cat >"$BENCH_DIR/httpd.conf" <<EOF
ServerRoot "$BENCH_DIR"
DefaultRuntimeDir "$BENCH_DIR"
PidFile "$BENCH_DIR/httpd.pid"
Listen 127.0.0.1:$BENCH_PORT
ServerName 127.0.0.1:$BENCH_PORT
$loads
LoadModule msauth_module $BENCH_DIR/mod_msauth.so
$openidc_load
$user
ErrorLog "$BENCH_DIR/error.log"
LogLevel ${LOGLEVEL:-warn}
# No CustomLog: no access log for either path.
TypesConfig /etc/mime.types
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
Timeout 30
# A fixed pool, at least twice as many workers as connections: no child is
# started or stopped during a run, and a worker is always free (when all are
# busy, mpm_event closes keep-alive connections, which wrk counts as errors).
StartServers $procs
ServerLimit $procs
ThreadLimit 64
ThreadsPerChild $threads
MinSpareThreads 1
MaxSpareThreads $((procs * threads))
MaxRequestWorkers $((procs * threads))
MaxConnectionsPerChild 0

MSAuthLoginHost $BENCH_FAKEMS
MSAuthGraphHost $BENCH_FAKEMS
MSAuthLegacyState On
MSAuthClientID 11111111-2222-3333-4444-555555555555
MSAuthClientSecret fakems-client-secret-0123456789
MSAuthSecretKey $BENCH_KEY

DocumentRoot "$BENCH_DIR/htdocs"
<Directory "$BENCH_DIR/htdocs">
    Options None
    AllowOverride None
    Require all granted
</Directory>
${BENCH_SERVER_EXTRA:-}
<Location /protected>
    AuthType Microsoft
    Require valid-user
${BENCH_PROT_EXTRA:-}
</Location>
$openidc_loc
EOF
}

bench_wait_port() { # $1: pid, $2: timeout in seconds
    local deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        kill -0 "$1" 2>/dev/null || return 1
        if curl -s -o /dev/null --max-time 2 "$BENCH_ORIGIN/open/file.txt" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

bench_status() { # $1: path, then curl options
    local path=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" "$BENCH_ORIGIN$path"
}

# The cookie header every path gets: $BENCH_COOKIE, and openidc's session when signed in.
bench_cookie_header() {
    echo "Cookie: $BENCH_COOKIE${BENCH_OIDC_COOKIE:+; $BENCH_OIDC_COOKIE}${BENCH_MORE_COOKIES:-}"
}

bench_check() {
    local a b c d e cookie
    cookie=$(bench_cookie_header)
    a=$(bench_status /open/file.txt -H "$cookie")
    b=$(bench_status /protected/file.txt -H "$cookie")
    c=$(bench_status /protected/file.txt -H 'Accept: application/json')
    if [ -n "${BENCH_OPENIDC:-}" ]; then
        d=$(bench_status /openidc/file.txt -H "$cookie")
        e=$(bench_status /openidc/file.txt -H 'Accept: text/html')
        echo "check: open=$a protected+cookie=$b protected-without-cookie=$c" \
            "openidc+cookie=$d openidc-without-cookie=$e"
        if [ "$a" != 200 ] || [ "$b" != 200 ] || [ "$c" != 401 ] || [ "$d" != 200 ] ||
            [ "$e" != 302 ]; then
            echo "check FAILED: want 200, 200, 401, 200 and 302" >&2
            return 1
        fi
        return 0
    fi
    echo "check: open=$a protected+cookie=$b protected-without-cookie=$c"
    if [ "$a" != 200 ] || [ "$b" != 200 ] || [ "$c" != 401 ]; then
        echo "check FAILED: want 200, 200 and 401" >&2
        return 1
    fi
}

bench_errors() {
    grep -E '\[[a-z_]*:(error|crit|alert|emerg)\]' "$BENCH_DIR/error.log" || true
}

# Share of the machine's CPU time that was busy over the next second (other work
# on the machine lowers req/s; instruction counts do not care).
bench_cpu_busy() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    echo "$a $b" | awk '{busy = $3 - $1; idle = $4 - $2; printf "%.0f%%", 100 * busy / (busy + idle)}'
}

# "busy all ours" in clock ticks: the machine's busy and total CPU time, and the
# CPU time of this script's reaped children (wrk) plus the processes given as
# arguments (httpd and its children). Two samples give the share of the machine
# that other work took in between (bench_other_cpu).
bench_jiffies() {
    local ours=0 pid t
    for pid in "$@"; do
        t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        ours=$((ours + t))
    done
    t=$(awk '{print $16 + $17}' /proc/$$/stat)
    ours=$((ours + t))
    # irq and softirq time is left out of "busy": loopback traffic is mostly ours.
    awk -v ours="$ours" '/^cpu / {b = $2+$3+$4+$9; print b, b + $5 + $6 + $7 + $8, ours}' /proc/stat
}

bench_other_cpu() { # two bench_jiffies samples, 6 numbers
    echo "$@" | awk '{o = ($4 - $1) - ($6 - $3); if (o < 0) o = 0
        printf "%.0f%%", 100 * o / ($5 - $2 > 0 ? $5 - $2 : 1)}'
}

# The running server of compare.sh, protected.sh and scaling.sh (bench_start_httpd).
BENCH_HTTPD_PID=""

# Starts httpd from $BENCH_DIR/httpd.conf after a configtest; fails with its output.
bench_start_httpd() {
    "$BENCH_APACHE" -t -f "$BENCH_DIR/httpd.conf" >"$BENCH_DIR/configtest.log" 2>&1 ||
        { cat "$BENCH_DIR/configtest.log" >&2; exit 1; }
    "$BENCH_APACHE" -f "$BENCH_DIR/httpd.conf" -DFOREGROUND >"$BENCH_DIR/stdout.log" 2>&1 &
    BENCH_HTTPD_PID=$!
    if ! bench_wait_port "$BENCH_HTTPD_PID" 20; then
        echo "httpd did not start:" >&2
        cat "$BENCH_DIR/stdout.log" "$BENCH_DIR/error.log" >&2 2>/dev/null || true
        exit 1
    fi
}

# httpd and its children, for bench_jiffies.
bench_httpd_pids() { echo "$BENCH_HTTPD_PID" "$(pgrep -P "$BENCH_HTTPD_PID" | tr '\n' ' ' || true)"; }

bench_stop_httpd() {
    if [ -n "$BENCH_HTTPD_PID" ] && kill -0 "$BENCH_HTTPD_PID" 2>/dev/null; then
        kill -TERM "$BENCH_HTTPD_PID" 2>/dev/null || true
        wait "$BENCH_HTTPD_PID" 2>/dev/null || true
    fi
    BENCH_HTTPD_PID=""
}

# The EXIT trap of the scripts: fakems and httpd stopped, $BENCH_DIR removed (KEEP=1 keeps it).
bench_cleanup() {
    bench_stop_fakems
    bench_stop_httpd
    if [ -z "${KEEP:-}" ]; then
        rm -rf "$BENCH_DIR"
    else
        echo "kept $BENCH_DIR"
    fi
}
