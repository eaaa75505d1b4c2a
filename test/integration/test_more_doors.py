"""More doors into an app: MultiViews (mod_negotiation picks the file in type_checker,
before fixups), a shared cache (mod_cache) in front of a protected page, a CGI's local
redirect into the app (REDIRECT_HTTP_COOKIE), two Cookie header lines joined by httpd with
", ", return_to placeholders, and CORS look-alike origins."""

import urllib.parse

import os
import socket
import time

import requests

from msauth import FABRIKAM_TID, FAKEMS_APP
from test_internal_paths import API, Browser, env_of, start


def write_cgi(h, sub, name, body):
    os.makedirs(os.path.join(h.htdocs, sub), exist_ok=True)
    path = os.path.join(h.htdocs, sub, name)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o755)


def whoami(h):
    with open(os.path.join(h.htdocs, "cgi", "whoami.cgi")) as f:
        return f.read()


ENV_CGI = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | sort\n"


# MultiViews: mod_negotiation's fast redirect happens in type_checker ---------------------

MULTIVIEWS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /mv/ @DIR@/htdocs/mv/
<Directory @DIR@/htdocs/mv>
    Options +MultiViews +ExecCGI
    MultiviewsMatch Handlers
    AddHandler cgi-script .cgi
    <Files "secret.cgi">
        AuthType Microsoft
        MSAuthPassClaims both
        MSAuthEasyAuthHeaders On
        Require valid-user
    </Files>
</Directory>
"""


def test_multiviews_into_a_protected_file_drops_forged_identity_headers(request, fakems):
    """<Files secret.cgi> under AuthType Microsoft (MSAuthPassClaims both, Easy Auth), in a
    directory with Options +MultiViews. GET /mv/secret: mod_negotiation checks secret.cgi in
    a subrequest (alice's session is valid there) and fast-redirects the main request into
    secret.cgi's configuration during type_checker, i.e. before fixups. The module's fixup
    then marks the request as vetted under that configuration, so the before-handler
    re-check is skipped: the main request's headers never went through scrub_headers, and
    alice's forged X-MSAuth-Email / X-MS-CLIENT-PRINCIPAL-NAME reach the app, while the
    module's own identity headers and REMOTE_USER are missing. Direct GET /mv/secret.cgi
    holds (checked first)."""
    h = start(request, MULTIVIEWS_CONF, fakems, modules=["negotiation"],
              prepare=lambda h: write_cgi(h, "mv", "secret.cgi", whoami(h)), name="atk-mv")
    b = Browser(h, fakems)
    b.login("alice", "/mv/secret.cgi")
    forged = {"X-MSAuth-Email": "boss@contoso.example",
              "X-MS-CLIENT-PRINCIPAL-NAME": "boss@contoso.example"}
    r = b.get("/mv/secret.cgi", {**API, **forged})
    assert r.status_code == 200 and "boss" not in r.text, r.text  # the direct door holds
    r = b.get("/mv/secret", {**API, **forged})
    h.check_log()
    assert r.status_code in (200, 401, 403, 404), (r.status_code, r.text[:300])
    assert "boss" not in r.text, r.text  # forged identity headers reached the app
    if r.status_code == 200:
        env = env_of(r.text)
        assert env.get("HTTP_X_MSAUTH_EMAIL") == "alice@contoso.example", r.text
        assert env.get("REMOTE_USER") == "alice@contoso.example", r.text


MULTIVIEWS_TWO_APPS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
<MSAuthApp b>
    MSAuthTenant %s
</MSAuthApp>
Alias /mv/ @DIR@/htdocs/mv/
<Directory @DIR@/htdocs/mv>
    Options +MultiViews +ExecCGI
    MultiviewsMatch Handlers
    AddHandler cgi-script .cgi
    AuthType Microsoft
    Require valid-user
    <Files "other.cgi">
        MSAuthApp b
        Require all granted
    </Files>
</Directory>
""" % FABRIKAM_TID


def test_multiviews_into_another_app_does_not_borrow_the_session(request, fakems):
    """The MultiViews twin of test_internal_paths'
    test_a_directory_index_under_another_app_does_not_borrow_the_session. The directory
    belongs to the root app (alice signed in), other.cgi to app b (fabrikam only, Require
    all granted: b vouches for nobody). GET /mv/other.cgi holds: no identity. GET /mv/other
    (negotiated to other.cgi in type_checker): the main request was authenticated under the
    root app, its configuration becomes b's before fixups, the fixup sees a token already
    on the request and vets it; b's CGI gets REMOTE_USER=alice, AUTH_TYPE=Microsoft and
    the root app's MSAUTH_*."""
    h = start(request, MULTIVIEWS_TWO_APPS_CONF, fakems, modules=["negotiation"],
              prepare=lambda h: write_cgi(h, "mv", "other.cgi", whoami(h)), name="atk-mv2")
    b = Browser(h, fakems)
    b.login("alice", "/microsoft_auth/login?return_to=/")
    r = b.get("/mv/other.cgi", API)
    assert r.status_code == 200 and "alice" not in r.text, r.text  # b itself holds
    r = b.get("/mv/other", API)
    h.check_log()
    assert r.status_code in (200, 401, 403, 404), (r.status_code, r.text[:300])
    assert "alice" not in r.text and "MSAUTH_" not in r.text and "AUTH_TYPE" not in r.text, \
        r.text


# mod_cache: a protected page served before any authentication ----------------------------

CACHE_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
CacheEnable disk /
CacheRoot @DIR@/cache
Alias /p/ @DIR@/htdocs/priv/
<Location /p/>
    AuthType Microsoft
    Require valid-user
</Location>
"""


def _private_report(h):
    os.makedirs(os.path.join(h.dir, "cache"))
    os.chmod(os.path.join(h.dir, "cache"), 0o777)
    os.makedirs(os.path.join(h.htdocs, "priv"))
    path = os.path.join(h.htdocs, "priv", "report.txt")
    with open(path, "w") as f:
        f.write("TOP SECRET report\n")
    old = time.time() - 10 * 86400  # heuristic freshness (10% of its age): a day
    os.utime(path, (old, old))


def test_a_protected_page_is_never_served_from_a_shared_cache(request, fakems):
    """mod_cache (CacheEnable disk /, default CacheQuickHandler On) in front of a
    <Location /p/> under AuthType Microsoft / Require valid-user. alice reads
    /p/report.txt (a static file, Last-Modified ten days ago, so heuristically fresh). The
    module marks the response neither private nor no-store, and the cookie that authorized
    it is not an Authorization header that mod_cache (or any shared cache, RFC 9111 3.5)
    would respect: the page is stored, and the next request without any session gets it
    from the cache, 200, before AuthType Microsoft is consulted. With Basic auth the same
    configuration is safe. Secure: the anonymous request gets 401/302, never the page."""
    h = start(request, CACHE_CONF, fakems, modules=["cache", "cache_disk"],
              prepare=_private_report, name="atk-cache")
    b = Browser(h, fakems)
    b.login("alice", "/p/report.txt")
    for _ in range(2):
        r = b.get("/p/report.txt", API)
        assert r.status_code == 200 and "TOP SECRET" in r.text, r.status_code
    r = requests.get(h.url("/p/report.txt"), headers=API, timeout=30)
    h.check_log()
    assert r.status_code in (401, 302), (r.status_code, r.text[:100])
    assert "TOP SECRET" not in r.text


# A CGI's local redirect: REDIRECT_HTTP_COOKIE -------------------------------------------

ROUTER_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /front/ @DIR@/htdocs/front/
<Directory @DIR@/htdocs/front>
    Options +ExecCGI
    AddHandler cgi-script .cgi
</Directory>
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
"""

ROUTER_CGI = "#!/bin/sh\nprintf 'Location: /cgi/env.cgi\\r\\n\\r\\n'\n"


def test_a_local_redirect_into_the_app_does_not_carry_the_session_cookie(request, fakems):
    """A front router outside AuthType Microsoft (/front/go.cgi) answers with a local
    `Location: /cgi/env.cgi`, which httpd follows as an internal redirect into the protected
    app. httpd renames the router's environment to REDIRECT_*, and that environment holds
    HTTP_COOKIE as the browser sent it. The module strips the session cookie from the
    protected request's Cookie header and drops REDIRECT_REMOTE_USER / REDIRECT_MSAUTH_*,
    but not REDIRECT_HTTP_COOKIE: the app behind MSAuthStripCookie On reads alice's session
    token (the same with REDIRECT_HTTP_AUTHORIZATION for a Bearer token under
    CGIPassAuth would be the same path; not tested here)."""
    h = start(request, ROUTER_CONF, fakems,
              prepare=lambda h: write_cgi(h, "front", "go.cgi", ROUTER_CGI), name="atk-router")
    b = Browser(h, fakems)
    tok = b.login("alice", "/cgi/env.cgi")
    r = b.get("/cgi/env.cgi", API)
    assert r.status_code == 200 and tok not in r.text, r.text  # directly: stripped
    r = b.get("/front/go.cgi", API)
    h.check_log()
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert "REMOTE_USER=alice@contoso.example" in r.text, r.text  # the protected app ran
    leaked = [l.split("=", 1)[0] for l in r.text.splitlines() if tok in l]
    assert not leaked, leaked


# Two Cookie header lines ----------------------------------------------------------------

OPEN_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /open/ @DIR@/htdocs/cgi/
<Location /open/>
    AuthType Microsoft
    Require all granted
</Location>
"""


def _raw(h, target, lines):
    s = socket.create_connection(("127.0.0.1", h.port), timeout=30)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                   "Accept: application/json\r\n%s\r\n\r\n" % (
                       target, h.port, "\r\n".join(lines))).encode())
        out = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            d = s.recv(65536)
            if not d:
                break
            out += d
        return out.decode(errors="replace")
    finally:
        s.close()


def test_a_session_cookie_in_a_second_cookie_line_never_reaches_the_app(request, fakems):
    """Two `Cookie:` lines (`a=1`, then `msauth=<session>`), as some proxies and HTTP/1.1
    clients send them. httpd joins repeated headers with ", ", so the app's HTTP_COOKIE is
    `a=1, msauth=<token>`. The module splits on ';' only: it neither accepts that session
    (401 under Require valid-user) nor strips it, and under Require all granted the app
    reads the session token that MSAuthStripCookie promises to hide."""
    h = start(request, OPEN_CONF, fakems, name="atk-cookie2")
    b = Browser(h, fakems)
    tok = b.login("alice", "/cgi/whoami.cgi")
    out = _raw(h, "/open/whoami.cgi", ["Cookie: a=1", "Cookie: msauth=" + tok])
    h.check_log()
    assert out.startswith("HTTP/1.1 200"), out[:200]
    assert tok not in out, [l[:40] for l in out.splitlines() if tok in l]


# Placeholders and origins -------------------------------------------------------------

ORIGINS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthCORSOrigins https://good.example
MSAuthRedirectAllow https://partner.example.com/apps
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
"""


def test_return_to_placeholders_are_never_filled(request, fakems):
    """INTERFACE 4.3: only MSAuthSigninSuccess is rewritten. A login link whose
    return_to (same host, or an allowed MSAuthRedirectAllow prefix) carries jwt=? or jwt=id
    would otherwise put the victim's session or ID token into a URL the attacker chose
    (Referer, logs): the placeholders come back as written."""
    h = start(request, ORIGINS_CONF, fakems, name="held-rt")
    for rt in ("/static.txt?jwt=?", "/static.txt?jwt=id", "/static.txt?a=1&jwt=%3F",
               "https://partner.example.com/apps?jwt=?"):
        b = Browser(h, fakems)
        r = b.get("/microsoft_auth/login?return_to=" + urllib.parse.quote(rt, safe=""),
                  {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"})
        back = urllib.parse.urlsplit(fakems.pick_user(r.headers["Location"], "alice"))
        r = b.get(back.path + "?" + back.query, {"Accept": "text/html"})
        assert r.status_code == 302 and r.headers["Location"] == rt, (rt, r.headers)
        assert b.s.cookies.get("msauth") not in r.headers["Location"]
    h.check_log()


def test_cors_look_alike_origins_get_no_credentials(request, fakems):
    """MSAuthCORSOrigins https://good.example: a suffix look-alike, another case, a
    trailing slash and `null` get no Access-Control-Allow-Origin on GET /jwt_auth (Bearer)
    or its preflight, so no page of theirs reads a fresh session token."""
    h = start(request, ORIGINS_CONF, fakems, name="held-cors")
    tok = Browser(h, fakems).login("alice", "/cgi/whoami.cgi")
    for origin in ("https://good.example.evil.com", "https://good.examplE", "null",
                   "https://good.example/", "http://good.example"):
        for method in ("GET", "OPTIONS"):
            r = requests.request(method, h.url("/jwt_auth"), timeout=30, headers={
                "Origin": origin, "Authorization": "Bearer " + tok,
                "Access-Control-Request-Method": "GET"})
            assert "Access-Control-Allow-Origin" not in r.headers, (origin, method)
            assert "Access-Control-Allow-Credentials" not in r.headers, (origin, method)
    r = requests.get(h.url("/jwt_auth"), timeout=30, headers={
        "Origin": "https://good.example", "Authorization": "Bearer " + tok})
    assert r.headers.get("Access-Control-Allow-Origin") == "https://good.example"
    h.check_log()
