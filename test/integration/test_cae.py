"""MSAuthCAE: the cp1 client capability on every authorize and token request, and an app's
claims challenge (401 WWW-Authenticate: Bearer error="insufficient_claims", claims=...) on a
signed-in page turned into a new Microsoft sign-in with those claims — against a real httpd
and fakems, whose /_fakems/cae revokes a user's session."""

import base64
import json
import re
import time
import urllib.parse

import pytest
import requests

from msauth import CAE_CGI, FAKEMS_APP, Httpd, install_cgi, query_of

CP1 = {"access_token": {"xms_cc": {"values": ["cp1"]}}}
NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}

# An app that answers 401 with the WWW-Authenticate fields its query names (www=, repeated).
CHALLENGE_CGI = r'''#!/usr/bin/python3
import os, sys, urllib.parse
q = urllib.parse.parse_qs(os.environ.get("QUERY_STRING", ""))
sys.stdin.read(int(os.environ.get("CONTENT_LENGTH") or 0))
out = "Status: 401 Unauthorized\r\n"
for v in q.get("www", []):
    out += "WWW-Authenticate: %s\r\n" % v.replace("\r", " ").replace("\n", " ")
sys.stdout.write(out + "Content-Type: text/plain\r\n\r\nthe app's own 401 body\n")
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
Alias /other/ @DIR@/htdocs/cgi/
<Location /other/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /offapp/ @DIR@/htdocs/cgi/
<Location /offapp/>
    AuthType Microsoft
    MSAuthApp off
    Require valid-user
</Location>
Alias /open/ @DIR@/htdocs/cgi/
"""


def cae_httpd(request, fakems, conf, name, **cgis):
    """A started server of conf with the Graph-calling and the challenging CGIs (and cgis,
    name to text), stopped with the module."""
    h = Httpd(conf, fakems, name=name)
    for cgi, text in dict({"cae.cgi": CAE_CGI, "challenge.cgi": CHALLENGE_CGI}, **cgis).items():
        install_cgi(h, cgi, text)
    h.start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(scope="module")
def httpd(request, fakems):
    return cae_httpd(request, fakems, CONF, "cae")


@pytest.fixture(autouse=True)
def _log(httpd):
    httpd.new_log()


class Browser:
    """A cookie jar that navigates like a browser, one redirect at a time."""

    def __init__(self, httpd, fakems):
        self.httpd, self.fakems = httpd, fakems
        self.s = requests.Session()

    def get(self, path, headers=None, **kw):
        h = dict(NAV)
        h.update(headers or {})
        url = path if path.startswith("http") else self.httpd.url(path)
        return self.s.get(url, headers=h, allow_redirects=False, timeout=30, **kw)

    def to_microsoft(self, r):
        assert r.status_code == 302, (r.status_code, r.headers, r.text[:300])
        loc = r.headers["Location"]
        assert loc.startswith(self.fakems.base + "/common/oauth2/v2.0/authorize?"), loc
        return loc

    def sign_in(self, authorize_url, page):
        """Alice picks her account; the browser ends back on page."""
        back = self.fakems.pick_user(authorize_url, "alice")
        assert back.startswith(self.httpd.origin + "/microsoft_auth?"), back
        r = self.get(back)
        assert r.status_code == 302, (r.status_code, r.headers, r.text[:300])
        assert r.headers["Location"] == page
        return self.get(page)

    def login(self, page="/app/cae.cgi"):
        r = self.sign_in(self.to_microsoft(self.get(page)), page)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r


def claims_sent(url):
    return json.loads(query_of(url)["claims"][0])


def last_token_request(fakems):
    return [e for e in fakems.requests() if e["path"].endswith("/token")][-1]


def b64(obj, url=False, pad=True):
    raw = json.dumps(obj).encode() if not isinstance(obj, bytes) else obj
    s = (base64.urlsafe_b64encode if url else base64.b64encode)(raw).decode()
    return s if pad else s.rstrip("=")


def challenge(claims_b64, extra=""):
    return ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", error="insufficient_claims", claims="%s"%s' % (claims_b64, extra))


def challenge_path(*fields, page="/app/challenge.cgi", **more):
    q = [("www", f) for f in fields] + list(more.items())
    return page + "?" + urllib.parse.urlencode(q)


def nbf_claims(nbf):
    return {"access_token": {"nbf": {"essential": True, "value": str(nbf)}}}


# cp1 on every request for tokens ---------------------------------------------------------

def test_cp1_declared_on_authorize_and_token_requests_only_when_on(httpd, fakems):
    b = Browser(httpd, fakems)
    auth = b.to_microsoft(b.get("/app/cae.cgi"))
    assert claims_sent(auth) == CP1
    assert b.sign_in(auth, "/app/cae.cgi").status_code == 200
    assert json.loads(last_token_request(fakems)["form"]["claims"]) == CP1

    off = Browser(httpd, fakems)
    auth = off.to_microsoft(off.get("/offapp/cae.cgi"))
    assert "claims" not in query_of(auth)
    assert off.sign_in(auth, "/offapp/cae.cgi").status_code == 200
    assert "claims" not in last_token_request(fakems)["form"]
    # /login starts the same sign-in
    r = requests.get(httpd.url("/microsoft_auth/login?return_to=/app/cae.cgi"),
                     allow_redirects=False, timeout=10)
    assert claims_sent(r.headers["Location"]) == CP1


def test_configtest_names_a_bad_value(httpd, fakems):
    bad = Httpd(FAKEMS_APP + "MSAuthSecretKey @KEY@\nMSAuthCAE Maybe\n", fakems, name="caebad")
    try:
        rc, out = bad.configtest()
    finally:
        bad.cleanup()
    assert rc != 0
    assert "MSAuthCAE: unknown value 'Maybe'" in out, out


# The round trip ---------------------------------------------------------------------------

def test_claims_challenge_round_trip(httpd, fakems):
    b = Browser(httpd, fakems)
    assert "Quarterly figures for alice@contoso.example" in b.login("/app/cae.cgi?q=1").text
    pending = fakems.control("cae", {"user": "alice"})["pending"]

    r = b.get("/app/cae.cgi?q=1")
    auth = b.to_microsoft(r)
    assert "WWW-Authenticate" not in r.headers
    assert r.headers["Cache-Control"] == "no-store"
    assert "the app's own 401 body" not in r.text
    # The challenge's claims, merged with cp1, on a login of its own (state, PKCE, nonce).
    assert claims_sent(auth) == {"access_token": {
        "nbf": {"essential": True, "value": pending["nbf"]}, "xms_cc": {"values": ["cp1"]}}}
    q = query_of(auth)
    assert q["code_challenge_method"] == ["S256"] and q["nonce"] and q["state"]
    assert [c for c in b.s.cookies if c.name.startswith("msauth_state_")]
    httpd.wait_log(r"cae_challenge.*appid=default: the app asked for claims \(\d+ characters\)")

    r = b.sign_in(auth, "/app/cae.cgi?q=1")
    assert r.status_code == 200, (r.status_code, r.text[:300])
    assert "Quarterly figures for alice@contoso.example" in r.text
    assert fakems.control("cae?user=alice")["pending"] is None
    assert json.loads(last_token_request(fakems)["form"]["claims"]) == CP1
    # The loop guard's cookie is the module's: the app never sees it.
    env = b.get("/app/whoami.cgi").text
    assert "msauth" not in env, env


def test_head_is_sent_to_sign_in_too(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    fakems.control("cae", {"user": "alice"})
    r = b.s.head(httpd.url("/app/cae.cgi"), headers=NAV, allow_redirects=False, timeout=30)
    b.to_microsoft(r)


@pytest.mark.parametrize("form", ["standard", "urlsafe", "unpadded"])
def test_base64_forms_and_several_challenges(httpd, fakems, form):
    """The claims in either alphabet, padded or not, in the third challenge of two fields."""
    b = Browser(httpd, fakems)
    b.login()
    # "~~~?" makes both '+'/'/' (standard) and '-'/'_' (URL-safe) appear; 1 byte of padding
    claims = {"access_token": {"acrs": {"essential": True, "value": "~~~?"}}, "id_token": {}}
    enc = b64(claims, url=form != "standard", pad=form != "unpadded")
    assert ("=" in enc) == (form != "unpadded")
    path = challenge_path('Basic realm="legacy", Negotiate',
                          'Bearer error="invalid_token", ' + challenge(enc), form=form)
    auth = b.to_microsoft(b.get(path))
    claims["access_token"]["xms_cc"] = {"values": ["cp1"]}
    assert claims_sent(auth) == claims


def test_existing_capabilities_kept_without_duplicates(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    claims = {"access_token": {"xms_cc": {"values": ["cp1", "cp2", "cp1"]}}}
    auth = b.to_microsoft(b.get(challenge_path(challenge(b64(claims)))))
    assert claims_sent(auth) == {"access_token": {"xms_cc": {"values": ["cp1", "cp2"]}}}


# What is passed on as the app sent it ----------------------------------------------------

def assert_passed_on(r, fields):
    assert r.status_code == 401, (r.status_code, r.headers, r.text[:300])
    assert "the app's own 401 body" in r.text
    assert "Location" not in r.headers
    got = r.raw.headers.getlist("WWW-Authenticate") if hasattr(r.raw.headers, "getlist") else \
        [r.headers.get("WWW-Authenticate")]
    assert ", ".join(got) == ", ".join(fields)


def test_api_clients_get_the_401(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    field = challenge(b64(nbf_claims(1)))
    path = challenge_path(field)
    for headers in ({"Accept": "application/json", "Sec-Fetch-Mode": "cors"},
                    {"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"},
                    {"Accept": "*/*", "Sec-Fetch-Mode": "no-cors"},
                    {"Accept": "text/html", "Sec-Fetch-Mode": "cors"}):
        assert_passed_on(b.s.get(httpd.url(path), headers=headers, allow_redirects=False,
                                 timeout=30), [field])
    # A form's POST is no page to come back to.
    assert_passed_on(b.s.post(httpd.url(path), headers=NAV, data={"a": "b"},
                              allow_redirects=False, timeout=30), [field])
    # A client signed in by Authorization: Bearer gets the 401 too, navigation or not.
    token = b.s.cookies.get("msauth")
    r = requests.get(httpd.url(path), headers=dict(NAV, Authorization="Bearer " + token),
                     allow_redirects=False, timeout=30)
    assert_passed_on(r, [field])
    assert "cae_challenge" not in httpd.new_log()


LONG = {"access_token": {"nbf": {"essential": True, "value": "x" * 3100}}}
MALFORMED = {
    "not_base64": (challenge("not*base64"), "the claims are not base64"),
    "mixed_alphabets": (challenge("e3+_"), "the claims are not base64"),
    "bad_padding": (challenge("e30=="), "the claims are not base64"),
    "not_json": (challenge(b64(b"access_token: cp1")), "the claims are not a JSON object"),
    "json_array": (challenge(b64([1, 2])), "the claims are not a JSON object"),
    "trailing": (challenge(b64(b'{"a":1} {}')), "the claims are not a JSON object"),
    "not_utf8": (challenge(b64(b'{"a":"\xff"}')), "the claims are not a JSON object"),
    "access_token_string": (challenge(b64({"access_token": "cp1"})), "is not an object"),
    "values_not_strings": (challenge(b64({"access_token": {"xms_cc": {"values": [1]}}})),
                           "values are not strings"),
    "oversized": (challenge(b64(LONG)), "longer than 4096 characters"),
    "no_claims": ('Bearer realm="", error="insufficient_claims"', "without its claims"),
    "repeated": (challenge(b64({}), ', claims="e30"'), "repeats a parameter"),
    "unterminated": ('Bearer error="insufficient_claims", claims="e30', "quoted string"),
    "no_comma": ('Bearer error="insufficient_claims" claims="e30"', "list of challenges"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_challenge_passed_on_and_logged(httpd, fakems, case):
    field, why = MALFORMED[case]
    b = Browser(httpd, fakems)
    b.login()
    httpd.new_log()
    assert_passed_on(b.get(challenge_path(field)), [field])
    line = httpd.wait_log(r"cae_refused.*" + re.escape(why))[-1]
    assert "the 401 goes to the browser" in line
    # The log names a length, never the claims.
    m = re.search(r'claims="([^"]*)', field)
    if m and len(m.group(1)) > 4:
        assert m.group(1) not in httpd.read_file("error.log")
    if case == "oversized":
        assert "(%d characters)" % len(m.group(1)) in line


def test_other_401s_passed_on_untouched(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    for fields in (['Bearer realm="app", error="invalid_token"'],
                   ['Basic realm="x"', 'Bearer realm=""'],
                   ['Basic error="insufficient_claims", claims="e30="'],
                   []):
        assert_passed_on(b.get(challenge_path(*fields)), fields)
    assert "cae_" not in httpd.new_log()


def test_cae_off_passes_the_challenge_on(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/offapp/cae.cgi")
    field = fakems.control("cae", {"user": "alice"})["www_authenticate"]
    assert_passed_on(b.get("/offapp/cae.cgi"), [field])
    assert "cae_" not in httpd.new_log()


def test_unprotected_location_ignored(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()   # a session cookie the browser sends everywhere on the host
    field = challenge(b64(nbf_claims(2)))
    assert_passed_on(b.get(challenge_path(field, page="/open/challenge.cgi")), [field])
    assert "cae_" not in httpd.new_log()


# The loop guard ---------------------------------------------------------------------------

def test_loop_guard_same_claims_after_sign_in(httpd, fakems):
    """Microsoft signs the user in with the claims, but the app keeps asking for the same
    ones: the page's second challenge is the app's 401, not another trip to Microsoft."""
    b = Browser(httpd, fakems)
    b.login()
    field = challenge(b64(nbf_claims(12345)))
    page = challenge_path(field)
    auth = b.to_microsoft(b.get(page))
    assert_passed_on(b.sign_in(auth, page), [field])
    httpd.wait_log(r"cae_loop.*appid=default: the page was sent to sign in with these claims "
                   r"\d+s ago and is challenged again: the 401 goes to the browser")
    # Another page of the site is challenged on its own.
    b.to_microsoft(b.get(challenge_path(field, page="/other/challenge.cgi")))
    # A guard cookie forged (or of another app) counts for nothing.
    forged = Browser(httpd, fakems)
    forged.login()
    parts = b.s.cookies.get("msauth_cae", path="/").split(".")
    assert len(parts) == 5
    forged.s.cookies.set("msauth_cae", ".".join(parts[:4] + ["A" * 16]), path="/")
    forged.to_microsoft(forged.get(page))


def test_still_revoked_after_sign_in_fails_closed(httpd, fakems):
    """Microsoft still refuses the user (Graph challenges the new token too): the sign-in
    ends at the failure URL, never on the page."""
    b = Browser(httpd, fakems)
    b.login()
    fakems.control("cae", {"user": "alice", "sticky": True})
    auth = b.to_microsoft(b.get("/app/cae.cgi"))
    httpd.expect_warn(r"login_failed: cause=profile_failed .*Graph /me answered 401")
    back = fakems.pick_user(auth, "alice")
    r = b.get(back)
    assert r.status_code == 302 and r.headers["Location"] == "/failed?cause=profile_failed"


def test_loop_guard_bounds_fresh_challenges_of_a_page(httpd, fakems):
    """An app asking for new claims every time sends the browser to Microsoft at most three
    times within the window; then its 401 is passed on."""
    b = Browser(httpd, fakems)
    b.login()
    for n in range(3):
        b.to_microsoft(b.get(challenge_path(challenge(b64(nbf_claims(100 + n))))))
    field = challenge(b64(nbf_claims(200)))
    assert_passed_on(b.get(challenge_path(field)), [field])
    httpd.wait_log(r"cae_loop.*the page was challenged 3 times in \d+s")
    # The guard is per page: another one is still sent to sign in.
    b.to_microsoft(b.get(challenge_path(field, page="/other/challenge.cgi")))


# A revocation challenge ends the module's session issued before it ----------------------

def _copy_of_session(b):
    """Another client holding a copy of the browser's session cookie."""
    other = requests.Session()
    for c in b.s.cookies:
        if c.name == "msauth":
            other.cookies.set(c.name, c.value)
    assert other.cookies.get("msauth")
    return other


def _whoami(httpd, s):
    return s.get(httpd.url("/other/whoami.cgi"), headers={"Accept": "*/*"},
                 allow_redirects=False, timeout=30)


def test_revocation_challenge_ends_the_session_issued_before_it(httpd, fakems):
    """Microsoft's challenge after a revocation event (access_token.nbf later than the
    session's issue) ends the module's session everywhere: a page that never calls Graph
    refuses it too, and so does a copy of its cookie. Signing in again gives a session that
    the same challenge leaves alone."""
    b = Browser(httpd, fakems)
    b.login()
    copy = _copy_of_session(b)
    assert _whoami(httpd, copy).status_code == 200
    time.sleep(1.1)
    nbf = int(time.time())
    page = challenge_path(challenge(b64(nbf_claims(nbf))))
    auth = b.to_microsoft(b.get(page))
    r = _whoami(httpd, copy)
    assert r.status_code == 401, (r.status_code, r.text[:200])
    r = b.get("/other/whoami.cgi")
    assert r.status_code == 302, (r.status_code, r.text[:200])  # sent to sign in
    httpd.wait_log(r"cae_revoked.*appid=.* user=.*: the session was issued \d+s before the "
                   r"revocation the app's claims name: ended")
    # Signed in again (after the event): the page's same challenge now goes to the browser.
    back = fakems.pick_user(auth, "alice")
    assert b.get(back).status_code == 302
    assert_passed_on(b.get(page), [challenge(b64(nbf_claims(nbf)))])
    assert b.get("/other/whoami.cgi", headers={"Accept": "*/*"}).status_code == 200


@pytest.mark.parametrize("claims", [
    {"access_token": {"acrs": {"essential": True, "value": "c1"}}},  # step-up: no time
    "before",  # a revocation before the session was issued
], ids=["step-up", "revoked-before-issue"])
def test_challenge_without_a_later_revocation_keeps_the_session(httpd, fakems, claims):
    b = Browser(httpd, fakems)
    b.login()
    copy = _copy_of_session(b)
    if claims == "before":
        claims = nbf_claims(int(time.time()) - 3600)
    b.to_microsoft(b.get(challenge_path(challenge(b64(claims)))))
    assert _whoami(httpd, copy).status_code == 200
    log = httpd.new_log()
    assert "cae_challenge" in log and "cae_revoked" not in log, log[-1000:]
