#!/bin/bash
# Instruction counts of the protected path: the bench httpd (same config as
# bench/compare.sh: /open, /protected behind mod_msauth, /openidc behind
# mod_auth_openidc) in -X (one process) under valgrind --tool=callgrind.
#
#   bench/callgrind.sh            N=200 requests per path
#   N=500 TOP=25 bench/callgrind.sh
#   OPENIDC=0 bench/callgrind.sh  without mod_auth_openidc (not loaded, not installed)
#   KEEP=1 bench/callgrind.sh     keeps /tmp/msauth-bench-* with the callgrind.out.* files
#
# Two valgrind runs, each: warm-up requests, counters zeroed (callgrind_control -z),
# then N requests on one keep-alive connection (one curl), then a dump
# (callgrind_control -d):
#   1. whole process, everything collected: Ir per open, per mod_msauth and per
#      mod_auth_openidc request (the whole server: parsing, the file, the
#      response, the module), and each module's added Ir (its path minus open);
#      every path gets the same request (one Cookie header with both sessions);
#      then mod_msauth with FIRST (40) sessions of alice, each presented once: a
#      token the server has not verified yet on every request (MAC computed,
#      payload decoded, the revocation asked of the store), per request of those;
#   2. --collect-atstart=no --toggle-collect=msa_check_authn: only what runs
#      inside msa_check_authn (AuthType Microsoft's check_authn hook), so the
#      function list is the subtree of the check, not its callers.
# As root, valgrind, httpd and callgrind_control run as www-data (bench/cglib.sh).
set -eu

N=${N:-200}
TOP=${TOP:-15}
WARMUP=${WARMUP:-5}
FIRST=${FIRST:-40}
# Run 2's function: what it collects and the tables are of (another of the module's hooks,
# e.g. msa_hide_credentials).
ROOT=${ROOT:-msa_check_authn}
# One worker thread: every request meets the same thread's memo of the 4 tokens it
# verified last (src/core/msa_jose.c), so a repeated cookie is a hit on every
# request after the warm-up. With 64 threads, which thread takes a request is
# chance, and the count moved by 25k Ir per request between runs.
BENCH_THREADS=${CG_THREADS:-1}
if [ "${OPENIDC:-1}" != 0 ]; then
    BENCH_OPENIDC=1
fi

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cglib.sh"

bench_prepare
cg_own_dir

cleanup() {
    bench_stop_fakems
    cg_cleanup
    if [ -z "${KEEP:-}" ]; then
        rm -rf "$BENCH_DIR"
    else
        echo "kept $BENCH_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SECONDS=0
echo "== httpd -X under callgrind, $BENCH_ORIGIN, N=$N requests per path (+$WARMUP warm-up)," \
    "$BENCH_THREADS worker thread(s)"
echo "== $(bench_module_id)"
[ -z "${BENCH_OPENIDC:-}" ] || echo "== $(bench_openidc_id)"

# 1. The whole process.
cg_start whole
bench_check
FIRST_COOKIE=$BENCH_COOKIE
FIRST_COOKIES=()
for _ in $(seq "$FIRST"); do
    bench_login
    FIRST_COOKIES+=("$BENCH_COOKIE")
done
BENCH_COOKIE=$FIRST_COOKIE
COOKIE=$(bench_cookie_header)
echo "== request Cookie header: ${#COOKIE} bytes (both sessions)"
cg_requests /open/file.txt "$WARMUP"
cg_requests /protected/file.txt "$WARMUP"
[ -z "${BENCH_OPENIDC:-}" ] || cg_requests /openidc/file.txt "$WARMUP"
cg_control -z
cg_requests /open/file.txt "$N"
cg_control -d open
cg_requests /protected/file.txt "$N"
cg_control -d protected
WHOLE_OIDC=0
if [ -n "${BENCH_OPENIDC:-}" ]; then
    cg_requests /openidc/file.txt "$N"
    cg_control -d openidc
fi
cg_requests_turn /protected/file.txt "$FIRST" "${FIRST_COOKIES[@]}"
cg_control -d first
cg_stop
WHOLE_OPEN=$(cg_totals "$BENCH_DIR/callgrind.out.whole.1")
WHOLE_PROT=$(cg_totals "$BENCH_DIR/callgrind.out.whole.2")
if [ -n "${BENCH_OPENIDC:-}" ]; then
    WHOLE_OIDC=$(cg_totals "$BENCH_DIR/callgrind.out.whole.3")
    WHOLE_TURN=$(cg_totals "$BENCH_DIR/callgrind.out.whole.4")
else
    WHOLE_TURN=$(cg_totals "$BENCH_DIR/callgrind.out.whole.3")
fi

# 2. Only inside msa_check_authn (no openidc login: its module stays loaded, the
# config and the Cookie header are those of run 1, but only /protected is asked for).
OIDC_SAVED=${BENCH_OPENIDC:-}
BENCH_OPENIDC=""
cg_start authn --collect-atstart=no --toggle-collect="$ROOT"
cg_requests /protected/file.txt "$WARMUP"
cg_control -z
cg_requests /protected/file.txt "$N"
cg_control -d protected
cg_stop
BENCH_OPENIDC=$OIDC_SAVED
AUTHN_FILE="$BENCH_DIR/callgrind.out.authn.1"
AUTHN=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root "$ROOT" --root-only "$AUTHN_FILE")

CHECK_WHOLE=$("$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root "$ROOT" --root-only \
    "$BENCH_DIR/callgrind.out.whole.2")

"$BENCH_PYTHON" - "$N" "$WHOLE_OPEN" "$WHOLE_PROT" "$AUTHN" "$CHECK_WHOLE" "$WHOLE_OIDC" "$WHOLE_TURN" \
    "$FIRST" "$ROOT" <<'EOF'
import sys
n, whole_open, whole_prot, authn, check_whole, whole_oidc, whole_turn, first = \
    (int(x) for x in sys.argv[1:9])
root = sys.argv[9]
print()
print("Ir per request, whole httpd process (run 1):")
print("  %-26s %9s %9s %7s" % ("path", "Ir/req", "added", "x open"))
rows = [("open", whole_open), ("msauth (/protected)", whole_prot)]
if whole_oidc:
    rows.append(("openidc (/openidc)", whole_oidc))
# Per request of its own run: first requests, each a token not seen before.
whole_turn = whole_turn * n // max(1, first)
rows.append(("msauth, first-seen (%d)" % first, whole_turn))
for i, (name, total) in enumerate(rows):
    added = "-" if i == 0 else "+%.0f" % ((total - whole_open) / n)
    print("  %-26s %9.0f %9s %7.2f" % (name, total / n, added, total / whole_open))
if whole_oidc:
    print("  added Ir, msauth / openidc: %.3f (repeated cookie), %.3f (first-seen token)"
          % ((whole_prot - whole_open) / max(1, whole_oidc - whole_open),
             (whole_turn - whole_open) / max(1, whole_oidc - whole_open)))
print("  added Ir / open request's Ir: msauth %.1f%% (repeated cookie), %.1f%% (first-seen token)"
      % (100.0 * (whole_prot - whole_open) / whole_open, 100.0 * (whole_turn - whole_open) / whole_open))
print("%s, inclusive Ir per protected request:" % root)
print("  %9.0f   run 2 (--toggle-collect=%s)" % (authn / n, root))
print("  %9.0f   run 1 (its call tree in the whole-process profile)" % (check_whole / n))
print("  = %.0f%% of a protected request, %.0f%% of what protected costs over open"
      % (100.0 * check_whole / whole_prot, 100.0 * check_whole / max(1, whole_prot - whole_open)))
print()
print("run 2 in detail:")
EOF
"$BENCH_PYTHON" "$BENCH_ROOT/bench/cgtree.py" --root "$ROOT" --requests "$N" --top "$TOP" "$AUTHN_FILE"

ERRORS=$(bench_errors)
echo
echo "error-log [error] lines: $(printf '%s' "$ERRORS" | grep -c . || true); ${SECONDS}s"
if [ -n "$ERRORS" ]; then
    printf '%s\n' "$ERRORS" | head -20 >&2
    exit 1
fi
