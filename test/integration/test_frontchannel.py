"""Single sign-out: Microsoft's front-channel logout, `<callback>/logout/frontchannel?sid=…`.

When a user signs out at Microsoft, its sign-out page frames the front-channel logout URL
of every app signed in through that browser's session, with the session's `sid`. The
session token carries the id_token's `sid` (an optional claim of the app registration,
as fakems issues it); the endpoint ends every session of that sid on every server sharing
MSAuthCache, and answers 200 with an empty page only Microsoft's origin may frame,
whatever it was asked, never a redirect.

Servers here are real httpd processes with fakems, alone (shmcb) or two sharing a real
memcached or redis. Then what an attacker would try: sids that are not theirs, a flood of
made-up sids, values of other records as a sid, a redirect, the sid in the logs.
"""

import html
import re
import socket
import time
import urllib.parse
import uuid

import pytest
import requests

from msauth import REVOCATION_BOUND, Httpd, fresh_store_epoch, jwt_parts, remember
from test_cluster import Store as cluster_store

# An app registration whose token configuration asks for the optional claim sid.
SSO_CLIENT = "5f5f5f5f-0000-4000-8000-00000000005f"
SSO_SECRET = "frontchannel-client-secret-0123456789"
# The same without it: its logins have no sid.
PLAIN_CLIENT = "6e6e6e6e-0000-4000-8000-00000000006e"
remember(SSO_SECRET)

CONF = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID %(client)s
MSAuthClientSecret """ + SSO_SECRET + """
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /
MSAuthSigninFailure /?cause=?
%(cache)s
<MSAuthApp shop>
    MSAuthSigninSuccess /shop/
</MSAuthApp>
Alias /api/ @DIR@/htdocs/cgi/
Alias /shop/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
<Location /shop/>
    AuthType Microsoft
    MSAuthApp shop
    MSAuthUnauthAction 401
    Require valid-user
</Location>
"""

FC = "/microsoft_auth/logout/frontchannel"


@pytest.fixture(scope="module", autouse=True)
def registrations(fakems):
    for client, claims in ((SSO_CLIENT, ["sid", "xms_edov"]), (PLAIN_CLIENT, ["xms_edov"])):
        fakems.control("clients", {"client_id": client, "secret": SSO_SECRET,
                                   "optional_claims": claims})


class Store(cluster_store):
    """A real memcached or redis on loopback (test_cluster's), and what it holds."""

    def items(self):
        """How many records the store holds."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"stats\r\n" if self.kind == "memcache" else b"DBSIZE\r\n")
            out = b""
            while not out.endswith(b"END\r\n" if self.kind == "memcache" else b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        text = out.decode()
        if self.kind == "memcache":
            return int(next(l.split()[2] for l in text.splitlines() if " curr_items " in l))
        return int(text.strip().lstrip(":"))


def server(request, fakems, cache=None, client=SSO_CLIENT, name="fc"):
    line, modules = "", []
    if cache is not None:
        line = "MSAuthCache " + cache.spec
        modules = ["socache_" + cache.kind]
    h = Httpd(CONF % {"client": client, "cache": line}, fakems, modules=modules, name=name,
              server_name="app.test:443")
    if cache is not None:
        h.expect_warn(fresh_store_epoch(cache.spec))
    h.start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(params=["memcache", "redis"])
def cluster(request, fakems):
    store = Store(request.param)
    request.addfinalizer(store.stop)
    a = server(request, fakems, store, name="fc-a")
    b = server(request, fakems, store, name="fc-b")
    yield store, a, b
    for h in (a, b):
        if h.proc is not None:
            h.check_log()


class Browser:
    """One browser: its cookies for our servers, and its sign-in session at Microsoft."""

    def __init__(self, fakems):
        self.fakems = fakems
        self.ms = requests.Session()    # fakems's ESTSAUTH cookie: the Microsoft session
        self.sites = requests.Session()

    def sign_in(self, httpd, appid=None, user="alice"):
        """A module-initiated login; the session token its cookie holds."""
        query = "?appid=" + appid if appid else ""
        r = self.sites.get(httpd.url("/microsoft_auth/login" + query), allow_redirects=False,
                           timeout=15)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        authorize = r.headers["Location"]
        assert self.ms.get(authorize, timeout=10).status_code == 200   # the account picker
        fields = {k: v[0] for k, v in
                  urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query).items()}
        fields["user"] = user
        r = self.ms.post(self.fakems.base + urllib.parse.urlsplit(authorize).path, data=fields,
                         allow_redirects=False, timeout=10)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        r = self.sites.get(r.headers["Location"], allow_redirects=False, timeout=15)
        assert r.status_code == 302, (r.status_code, r.headers, r.text[:200])
        cookie = "msauth-" + appid if appid else "msauth"
        token = r.cookies.get(cookie)
        assert token, "no session cookie after the login: %s" % r.headers
        self.sites.cookies.clear()   # each session is presented explicitly below
        return token


def sid_of(token):
    return jwt_parts(token)[1].get("sid")


def opens(httpd, token, path="/api/whoami.cgi"):
    """The status of a protected request with token as its Bearer."""
    return requests.get(httpd.url(path), timeout=15, allow_redirects=False,
                        headers={"Authorization": "Bearer " + token,
                                 "Accept": "application/json"}).status_code


def cookie_opens(httpd, token, cookie="msauth", path="/api/whoami.cgi"):
    return requests.get(httpd.url(path), timeout=15, allow_redirects=False,
                        cookies={cookie: token}, headers={"Accept": "text/html"}).status_code


def frontchannel(httpd, query="", method="GET", headers=None):
    return requests.request(method, httpd.url(FC) + query, timeout=15, allow_redirects=False,
                            headers=headers or {"Sec-Fetch-Dest": "iframe"})


def assert_empty_framable_page(r, fakems):
    """What a front-channel logout answers, whatever it was asked."""
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.content == b""
    assert "Location" not in r.headers and "Set-Cookie" not in r.headers
    assert "X-Frame-Options" not in r.headers
    csp = r.headers["Content-Security-Policy"]
    ancestors = [d.strip() for d in csp.split(";") if d.strip().startswith("frame-ancestors")]
    # fakems is this configuration's MSAuthLoginHost: its origin alone may frame the page.
    assert ancestors == ["frame-ancestors " + fakems.base], csp
    assert "no-store" in r.headers["Cache-Control"]
    assert r.headers["Content-Type"].startswith("text/html")


# Across servers -----------------------------------------------------------------------

def test_frontchannel_on_one_server_ends_the_session_on_the_other(fakems, cluster):
    store, a, b = cluster
    alice = Browser(fakems)
    on_a = alice.sign_in(a)
    shop_on_b = alice.sign_in(b, appid="shop")   # another app, the same Microsoft session
    sid = sid_of(on_a)
    remember(sid)
    assert sid and sid_of(shop_on_b) == sid
    again = Browser(fakems).sign_in(a)           # alice in another browser: another sid
    bob = Browser(fakems).sign_in(a, user="bob")
    assert len({sid, sid_of(again), sid_of(bob)}) == 3
    for h in (a, b):
        assert opens(h, on_a) == 200 and opens(h, shop_on_b, "/shop/whoami.cgi") == 200

    # alice signs out at Microsoft: its page frames the registration's front-channel logout
    # URL (here server b's) with the sid, and the browser loads it.
    fakems.control("clients", {"client_id": SSO_CLIENT, "frontchannel_logout_url": b.url(FC)})
    try:
        page = alice.ms.get(fakems.base + "/common/oauth2/v2.0/logout", timeout=10)
    finally:
        fakems.control("clients", {"client_id": SSO_CLIENT, "frontchannel_logout_url": None})
    frames = re.findall(r'<iframe class="frontchannel" src="([^"]+)"', page.text)
    assert frames == [html.escape(b.url(FC) + "?sid=" + sid)], page.text
    r = alice.sites.get(html.unescape(frames[0]), timeout=15, allow_redirects=False,
                        headers={"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site"})
    assert_empty_framable_page(r, fakems)
    b.wait_log(r"msauth: logout: front-channel logout: the sessions of a Microsoft sign-in "
               r"ended \(2 users' records\)")
    # Both apps' sessions of that sid are over on both servers, by Bearer and by cookie: at
    # once on b, which wrote the revocation (every child), and on a within the bound a
    # server may serve a remembered live verdict from a shared store.
    for _ in range(6):
        assert opens(b, on_a) == 401 and opens(b, shop_on_b, "/shop/whoami.cgi") == 401
    time.sleep(REVOCATION_BOUND + 0.2)
    for h in (a, b):
        assert opens(h, on_a) == 401
        assert opens(h, shop_on_b, "/shop/whoami.cgi") == 401
        assert cookie_opens(h, on_a) == 401
    r = requests.get(a.url("/microsoft_auth/me"), cookies={"msauth": on_a}, timeout=10)
    assert r.status_code == 401
    # Other sessions of alice's and bob's stay.
    for h in (a, b):
        assert opens(h, again) == 200 and opens(h, bob) == 200
    # Microsoft calling again changes nothing; the next sign-in is another Microsoft session.
    assert_empty_framable_page(frontchannel(a, "?sid=" + urllib.parse.quote(sid)), fakems)
    fresh = alice.sign_in(a)
    assert sid_of(fresh) != sid and opens(b, fresh) == 200


def test_frontchannel_with_the_store_down_fails_closed(fakems, cluster):
    store, a, b = cluster
    token = Browser(fakems).sign_in(a)
    store.stop()
    for h in (a, b):
        h.expect_error(r"msauth: cache_error")
        h.expect_error(r"\[socache_(memcache|redis):error\]")
    r = frontchannel(b, "?sid=" + urllib.parse.quote(sid_of(token)))
    # Not a 200 that would tell Microsoft the session ended: an answer it may try again.
    assert r.status_code == 503, r.status_code
    assert "Location" not in r.headers
    b.wait_log(r"msauth: cache_error: MSAuthCache \S+ cannot answer a front-channel logout")


def test_made_up_sids_write_nothing_to_the_store(fakems, cluster):
    """Anyone can call the endpoint: only a sid the store knows leads to a write, so a
    flood of made-up sids can neither fill the store nor sign anybody out."""
    store, a, b = cluster
    token = Browser(fakems).sign_in(a)
    before = store.items()
    with requests.Session() as s:
        for i in range(300):
            r = s.get(b.url(FC) + "?sid=" + str(uuid.uuid4()), timeout=10, allow_redirects=False)
            assert r.status_code == 200 and r.content == b""
    assert store.items() == before
    assert opens(a, token) == 200


# One server, the local store ------------------------------------------------------------

@pytest.fixture
def local(request, fakems):
    h = server(request, fakems, name="fc-local")
    yield h
    if h.proc is not None:
        h.check_log()


def test_frontchannel_with_the_local_store(fakems, local):
    alice = Browser(fakems)
    root, shop = alice.sign_in(local), alice.sign_in(local, appid="shop")
    other = Browser(fakems).sign_in(local)
    assert sid_of(root) == sid_of(shop) != sid_of(other)
    # A token refreshed through the JWT API keeps its Microsoft session, and dies with it.
    r = requests.get(local.url("/jwt_auth"), headers={"Authorization": "Bearer " + root},
                     timeout=10)
    assert r.status_code == 200, r.text
    refreshed = r.json()["jwt"]["access_token"]
    assert sid_of(refreshed) == sid_of(root)
    assert_empty_framable_page(frontchannel(local, "?sid=" + sid_of(root)), fakems)
    assert opens(local, root) == 401 and opens(local, refreshed) == 401
    assert opens(local, shop, "/shop/whoami.cgi") == 401
    assert opens(local, other) == 200


def test_answers_whatever_it_is_asked(fakems, local):
    """The same empty 200 for a known, an unknown, an odd or a missing sid; a missing one
    says why in the log (INFO); HEAD too; other methods 405; a broken query 400."""
    for query in ("?sid=" + str(uuid.uuid4()), "?sid=", "", "?sid=" + "x" * 300,
                  "?sid=a%20b", "?sid=" + str(uuid.uuid4()) + "&return_to=https://evil.example/",
                  "?sid=" + str(uuid.uuid4()) + "&iss=https://evil.example/x/v2.0"):
        assert_empty_framable_page(frontchannel(local, query), fakems)
    local.wait_log(r"msauth: logout: front-channel logout without a sid")
    r = frontchannel(local, "?sid=x", method="HEAD")
    assert r.status_code == 200 and r.content == b"" and "Location" not in r.headers
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        r = frontchannel(local, "?sid=x", method=method)
        assert r.status_code == 405, (method, r.status_code)
        assert r.headers["Allow"] == "GET, HEAD"
    for query in ("?sid=%zz", "?sid=a&sid=b", "?sid=a%00b"):
        assert local.raw_get(FC + query).status == 400, query


def test_an_iss_of_another_cloud_signs_nobody_out(fakems, local):
    """Entra sends only sid; an iss, when there is one, must be an issuer of MSAuthLoginHost."""
    token = Browser(fakems).sign_in(local)
    sid = urllib.parse.quote(sid_of(token))
    foreign = "https://login.evil.example/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
    for iss in (foreign, fakems.base + "/common/v2.0", fakems.base + "/x"):
        assert_empty_framable_page(
            frontchannel(local, "?sid=%s&iss=%s" % (sid, urllib.parse.quote(iss))), fakems)
        assert opens(local, token) == 200
    own = fakems.base + "/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"
    assert_empty_framable_page(
        frontchannel(local, "?sid=%s&iss=%s" % (sid, urllib.parse.quote(own))), fakems)
    assert opens(local, token) == 401


def test_a_login_without_sid_works_and_no_sid_names_it(request, fakems):
    """A registration without the optional claim: the session has no sid, and no
    front-channel logout (its user's other values as the sid included) ends it."""
    h = server(request, fakems, client=PLAIN_CLIENT, name="fc-plain")
    token = Browser(fakems).sign_in(h)
    claims = jwt_parts(token)[1]
    assert "sid" not in claims
    for value in ("", claims["sub"], claims["jti"], "default:" + claims["sub"], claims["oid"]):
        assert_empty_framable_page(frontchannel(h, "?sid=" + urllib.parse.quote(value)), fakems)
    assert opens(h, token) == 200
    h.check_log()


def test_what_an_attacker_gets_from_a_sid(fakems, local):
    """A sid is no secret from its own browser (Microsoft puts it in the URL it frames),
    but it opens nothing: it only ends its own Microsoft session's sessions. Other values
    of the victim's (its jti, its user's record name) as a sid end nothing; the sid never
    reaches a log, /me or the app."""
    victim = Browser(fakems).sign_in(local)
    attacker = Browser(fakems).sign_in(local, user="bob")
    v = jwt_parts(victim)[1]
    for value in (v["jti"], v["sub"], "default:" + v["sub"], v["sid"] + "/0", v["sid"] + " ",
                  v["sid"].upper() if v["sid"] != v["sid"].upper() else v["sid"].lower()):
        assert_empty_framable_page(frontchannel(local, "?sid=" + urllib.parse.quote(value)),
                                   fakems)
    assert opens(local, victim) == 200
    # The attacker's own sid ends the attacker's own session only.
    assert_empty_framable_page(frontchannel(local, "?sid=" + sid_of(attacker)), fakems)
    assert opens(local, attacker) == 401 and opens(local, victim) == 200
    # No sid in /me or the CGI environment: a page of the app cannot read it to sign its
    # user out everywhere.
    me = requests.get(local.url("/microsoft_auth/me"), cookies={"msauth": victim}, timeout=10)
    assert me.status_code == 200 and "sid" not in me.json()
    env = requests.get(local.url("/api/whoami.cgi"), cookies={"msauth": victim}, timeout=10)
    assert env.status_code == 200 and v["sid"] not in env.text
    # Nor in the access log: its reader could sign users out with it.
    local.wait_log(r'GET /microsoft_auth/logout/frontchannel\?sid=', name="access.log")
    assert sid_of(attacker) not in local.read_file("access.log")
    assert v["sid"] not in local.read_file("error.log")
