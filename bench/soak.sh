#!/bin/sh
# Soak test: bench/soak.sh [seconds] (default 60). See bench/soak.py.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null 2>&1 || "$top/scripts/deps" test
[ -f "$top/.libs/mod_msauth.so" ] || "$top/scripts/build"
exec /usr/bin/python3 "$top/bench/soak.py" "$@"
