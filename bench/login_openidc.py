#!/usr/bin/python3
"""Signs in to mod_auth_openidc on a bench server through fakems; prints its session cookie.

bench/login_openidc.py URL [USER]: GETs URL (a location under `AuthType openid-connect`)
as a browser would and follows the redirects by hand: openidc's 302 to fakems's
authorize endpoint (with `login_hint=USER&fakems_auto=1` added, so fakems signs USER,
default alice, in without its login page), fakems's 302 back to OIDCRedirectURI with a
code, openidc's 302 to URL with its session cookie, then URL itself, which must answer
200. Prints "name=value" of openidc's session cookie (mod_auth_openidc_session).
"""

import sys
import urllib.parse

import requests

url = sys.argv[1]
user = sys.argv[2] if len(sys.argv) > 2 else "alice"
COOKIE = "mod_auth_openidc_session"

s = requests.Session()
s.headers["Accept"] = "text/html,application/xhtml+xml"
target = url
seen_authorize = False
for hop in range(10):
    resp = s.get(target, allow_redirects=False, timeout=120)
    if resp.status_code == 200 and target == url:
        break
    if resp.status_code not in (301, 302, 303, 307):
        sys.exit("%s answered %d (hop %d)" % (urllib.parse.urlsplit(target).path,
                                              resp.status_code, hop))
    target = urllib.parse.urljoin(target, resp.headers["Location"])
    if "/oauth2/v2.0/authorize" in target and not seen_authorize:
        seen_authorize = True
        target += "&" + urllib.parse.urlencode({"login_hint": user, "fakems_auto": "1"})
else:
    sys.exit("no 200 from %s after 10 redirects" % url)
if not seen_authorize:
    sys.exit("openidc never sent the browser to fakems's authorize endpoint")
value = s.cookies.get(COOKIE)
if not value:
    sys.exit("no %s cookie after the login" % COOKIE)
print("%s=%s" % (COOKIE, value))
