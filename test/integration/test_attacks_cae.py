"""MSAuthCAE attacked from outside: what an app's claims challenges (or a client) can make
the module do to the browser, the site and the user's Microsoft tokens — against a real
httpd and fakems.

- Each challenge a page answers starts a sign-in with a state cookie of its own: the
  browser that does not come back from Microsoft (a disabled user stays on Microsoft's
  error page) must not pile them up until its Cookie header is too big for the server.
- The cp1 capability goes on every request for tokens, the refresh-token grant too: a
  refreshed access token without it is no CAE token, and Graph serves a revoked user with
  it until it expires instead of challenging at once.
- A form's POST handed on to a challenged page by a local redirect is still no navigation.
- The loop guard finds its own cookie among others of its name sent before it.
- Claims, however hostile or deep, reach Microsoft as one claims parameter of the
  authorize URL or not at all, and no trace of them or of a token reaches the error log
  at msauth:trace8.
"""

import json
import urllib.parse

import pytest

from msauth import FAKEMS_APP, Httpd, install_cgi
from test_cae import (CHALLENGE_CGI, CP1, NAV, Browser, b64, cae_httpd, challenge,
                      challenge_path, claims_sent, nbf_claims)

STATE_COOKIE_MAX = 4   # MSA_STATE_COOKIE_MAX: parallel logins a browser keeps

# An app calling Graph with the user's access token (MSAuthPassTokens access), passing
# Graph's 401 and its WWW-Authenticate on as its own answer.
GRAPH_CGI = r'''#!/usr/bin/python3
import json, os, sys, urllib.error, urllib.request
token = os.environ.get("HTTP_X_MS_TOKEN_AAD_ACCESS_TOKEN", "")
req = urllib.request.Request("@FAKEMS@/v1.0/me", headers={"Authorization": "Bearer " + token})
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        me = json.load(r)
    sys.stdout.write("Content-Type: text/html\r\n\r\n<p>Mail of %s</p>\n" % me["displayName"])
except urllib.error.HTTPError as e:
    www = e.headers.get("WWW-Authenticate")
    sys.stdout.write("Status: %d Graph refused\r\n" % e.code)
    if www:
        sys.stdout.write("WWW-Authenticate: %s\r\n" % www)
    sys.stdout.write("Content-Type: text/plain\r\n\r\nGraph said no\n")
'''

# A form's action that answers with a local Location: httpd runs that page as a GET of
# the same request (mod_cgid's internal redirect).
POST_CGI = r'''#!/usr/bin/python3
import os, sys, urllib.parse
sys.stdin.read(int(os.environ.get("CONTENT_LENGTH") or 0))
q = urllib.parse.parse_qs(os.environ.get("QUERY_STRING", ""))
sys.stdout.write("Location: %s\r\n\r\n" % q["next"][0])
'''

CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthCAE On
MSAuthSigninFailure /failed?cause=?
<MSAuthApp off>
    MSAuthCAE Off
</MSAuthApp>
Alias /app/ @DIR@/htdocs/cgi/
<Location /app/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /tok/ @DIR@/htdocs/cgi/
<Location /tok/>
    AuthType Microsoft
    MSAuthPassTokens access
    Require valid-user
</Location>
Alias /offtok/ @DIR@/htdocs/cgi/
<Location /offtok/>
    AuthType Microsoft
    MSAuthApp off
    MSAuthPassTokens access
    Require valid-user
</Location>
"""


@pytest.fixture(scope="module")
def httpd(request, fakems):
    return cae_httpd(request, fakems, CONF, "caeattacks",
                     **{"graph.cgi": GRAPH_CGI, "post.cgi": POST_CGI})


@pytest.fixture(autouse=True)
def _log(httpd):
    httpd.new_log()


def state_cookies(b):
    return [c for c in b.s.cookies if c.name.startswith("msauth_state_")]


def token_requests(fakems, grant):
    return [e for e in fakems.requests()
            if e["path"].endswith("/token") and e["form"].get("grant_type") == grant]


def refresh(b, httpd, appid=None):
    """POST <callback>/refresh: the app's access token refreshed at Microsoft now."""
    query = "?appid=" + appid if appid else ""
    r = b.s.post(httpd.url("/microsoft_auth/refresh" + query), headers={"Origin": httpd.origin},
                 timeout=30)
    assert r.status_code == 200, (r.status_code, r.text[:300])


# Login state cookies ------------------------------------------------------------------------

def test_challenges_never_pile_up_login_state_cookies(httpd, fakems):
    """Every challenged page the user leaves at Microsoft leaves its state cookie behind.
    A module-started login keeps the newest few; a challenge's login must too, or some
    eleven pages later the browser's Cookie header is over httpd's limit and every page of
    the host (the sign-in too) answers 400 for the ten minutes the cookies live."""
    b = Browser(httpd, fakems)
    b.login()
    for n in range(14):
        page = challenge_path(challenge(b64(nbf_claims(n))), page="/app/challenge.cgi/p%d" % n)
        b.to_microsoft(b.get(page))
        assert len(state_cookies(b)) <= STATE_COOKIE_MAX, (n, len(state_cookies(b)))
    assert b.get("/").status_code == 200
    assert "Quarterly figures" in b.get("/app/cae.cgi").text
    # The newest login still runs its course.
    page = challenge_path(challenge(b64(nbf_claims(99))), page="/app/challenge.cgi/last")
    auth = b.to_microsoft(b.get(page))
    back = fakems.pick_user(auth, "alice")
    r = b.get(back)
    assert r.status_code == 302 and r.headers["Location"] == page, (r.status_code, r.headers)


# What is no navigation ----------------------------------------------------------------------

def test_a_post_turned_into_a_challenged_page_is_no_navigation(httpd, fakems):
    """A form posted to an action that hands the request on to a challenged page (a local
    Location: httpd runs it as a GET) is still a POST: its 401 goes to the browser, rather
    than a sign-in that brings the browser back to the form's action with a GET."""
    b = Browser(httpd, fakems)
    b.login()
    field = challenge(b64(nbf_claims(31)))
    action = "/app/post.cgi?" + urllib.parse.urlencode({"next": challenge_path(field)})
    r = b.s.post(httpd.url(action), headers=NAV, data={"amount": "100"}, allow_redirects=False,
                 timeout=30)
    assert r.status_code == 401, (r.status_code, r.headers.get("Location"))
    assert "the app's own 401 body" in r.text
    assert r.headers["WWW-Authenticate"] == field
    # The same page reached by a GET is sent to sign in.
    b.to_microsoft(b.get(action))


# The loop guard --------------------------------------------------------------------------

def test_loop_guard_not_blinded_by_a_tossed_cookie(httpd, fakems):
    """A msauth_cae cookie planted with a narrower path (a sibling host's Domain cookie, or
    another app's guard on the same host) is sent before the module's own: the guard must
    still find its own among them, or the page that keeps asking for the same claims sends
    the browser to Microsoft again after every sign-in, without end."""
    b = Browser(httpd, fakems)
    b.login()
    b.s.cookies.set("msauth_cae", "1.1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAA",
                    path="/app/")
    field = challenge(b64(nbf_claims(4242)))
    page = challenge_path(field)
    r = b.sign_in(b.to_microsoft(b.get(page)), page)
    assert r.status_code == 401, ("sent to Microsoft again after signing in with the claims "
                                  "asked for", r.status_code, r.headers.get("Location"))
    assert "the app's own 401 body" in r.text
    httpd.wait_log(r"cae_loop.*sent to sign in with these claims")


# cp1 on the refresh-token grant -------------------------------------------------------------

def test_cp1_declared_on_the_refresh_grant_only_when_on(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/tok/whoami.cgi")
    refresh(b, httpd)
    grant = token_requests(fakems, "refresh_token")[-1]
    assert json.loads(grant["form"].get("claims", "null")) == CP1, grant["form"]

    off = Browser(httpd, fakems)
    off.login("/offtok/whoami.cgi")
    assert "claims" not in token_requests(fakems, "authorization_code")[-1]["form"]
    refresh(off, httpd, appid="off")
    assert "claims" not in token_requests(fakems, "refresh_token")[-1]["form"]


def test_refreshed_access_token_is_still_challenged_after_revocation(httpd, fakems):
    """The user is revoked after the app's access token was refreshed: Graph challenges
    the app at once (the token declares cp1), and the page sends the user to sign in —
    rather than Graph serving the revoked user until the refreshed token expires."""
    b = Browser(httpd, fakems)
    assert "Mail of Alice" in b.login("/tok/graph.cgi").text
    refresh(b, httpd)
    fakems.control("cae", {"user": "alice"})
    r = b.get("/tok/graph.cgi")
    auth = b.to_microsoft(r)
    assert "nbf" in claims_sent(auth)["access_token"]
    assert "Mail of Alice" in b.sign_in(auth, "/tok/graph.cgi").text


# Hostile claims -----------------------------------------------------------------------------

def test_hostile_claims_stay_one_claims_parameter(httpd, fakems):
    """Claims names and values carrying &, #, quotes, CR LF, U+2028, NUL, or naming other
    authorize parameters: the authorize URL still has each parameter once, the Location is
    one header line, and the claims arrive as the JSON the app sent (cp1 added)."""
    b = Browser(httpd, fakems)
    b.login()
    hostile = {"access_token": {
        "x&state=evil#f\r\nLocation: https://evil.example/": {"value": "a&b=c\u2028\"'<>\u00e9"},
        "xms_cc": {"values": ["cp2\u0000&redirect_uri=https://evil.example/"]}},
        "redirect_uri": "https://evil.example/", "state": "evil"}
    r = b.get(challenge_path(challenge(b64(hostile))))
    auth = b.to_microsoft(r)
    assert "\r" not in auth and "\n" not in auth and " " not in auth
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(auth).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in q.values()), q
    assert sorted(q) == ["claims", "client_id", "code_challenge", "code_challenge_method",
                         "nonce", "redirect_uri", "response_mode", "response_type", "scope",
                         "state"]
    assert q["redirect_uri"] == [httpd.origin + "/microsoft_auth"]
    assert q["state"][0] != "evil"
    sent = claims_sent(auth)
    assert sent["redirect_uri"] == "https://evil.example/" and sent["state"] == "evil"
    assert "cp1" in sent["access_token"]["xms_cc"]["values"]


def test_deeply_nested_claims_refused_cleanly(httpd, fakems):
    """Claims nested a thousand arrays deep (under the length limit) are no claims: the
    app's 401 goes to the browser, logged, and the server goes on serving."""
    b = Browser(httpd, fakems)
    b.login()
    deep = b'{"access_token":' + b"[" * 1000 + b"]" * 1000 + b"}"
    field = challenge(b64(deep))
    r = b.get(challenge_path(field))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == field
    httpd.wait_log(r"cae_refused.*the claims are not a JSON object")
    assert "Quarterly figures" in b.get("/app/cae.cgi").text


def test_nothing_of_the_claims_or_tokens_at_trace8(fakems):
    h = Httpd(CONF + "LogLevel warn msauth:trace8\n", fakems, name="caetrace")
    install_cgi(h, "challenge.cgi", CHALLENGE_CGI)
    h.start()
    try:
        b = Browser(h, fakems)
        b.login("/app/whoami.cgi")
        mark = "c1-claims-value-only-the-app-knows"
        enc = b64({"access_token": {"acrs": {"essential": True, "value": mark}}})
        page = challenge_path(challenge(enc))
        b.sign_in(b.to_microsoft(b.get(page)), page)   # then the loop guard's 401
        h.wait_log(r"cae_loop")
    finally:
        log = h.read_file("error.log")
        h.cleanup()
    assert "cae_challenge" in log
    for secret in (mark, enc, b.s.cookies.get("msauth"), b.s.cookies.get("msauth_cae")):
        assert secret and secret not in log
