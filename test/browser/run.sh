#!/bin/sh
# The browser tier: Debian's Chromium, driven by playwright-core, signs in through a real
# httpd with the module and fakems. Installs what it needs (as root), then runs pytest;
# the last line printed is pytest's summary, the exit status is pytest's. A browser that
# cannot start fails the run: nothing here skips.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

# Debian's packages: the browser (never a downloaded one), the seed page's jQuery, pytest.
missing=""
for p in chromium libjs-jquery python3-pytest python3-requests; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test/browser/run.sh: missing Debian packages:$missing (apt-get install -y$missing as root)" >&2
        exit 1
    fi
    echo "test/browser/run.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y --no-install-recommends $missing ||
        { apt-get update && apt-get install -y --no-install-recommends $missing; }
fi
[ -x /usr/bin/chromium ] || { echo "test/browser/run.sh: /usr/bin/chromium is missing" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "test/browser/run.sh: node is missing" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "test/browser/run.sh: npm is missing" >&2; exit 1; }

# playwright-core from the npm registry (no browser download: it has none to run).
cd "$here"
if [ ! -d node_modules/playwright-core ] || [ package.json -nt node_modules ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund
    touch node_modules
fi

cd "$top"
if [ ! -f .libs/mod_msauth.so ] && [ -f Makefile ]; then
    make -j2
fi
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider test/browser
