"""MSAuthPassTokens under attack: a client, a page of another site, another app, or a
refresh answer that is not the session's own tries to get a user's Microsoft tokens to
where they were not asked for, or to have the app take forged ones.

Real httpd processes (mod_include, mod_proxy, mod_cgid), a real memcached, fakems, and a
loopback backend that records the headers mod_proxy hands it.
"""

import concurrent.futures
import http.server
import os
import socket
import threading
import time
import urllib.parse

import pytest
import requests

from msauth import Httpd, fresh_store_epoch, install_cgi, jwt_parts, remember
from test_cluster import Store
from test_frontchannel import Browser
from test_pass_tokens import (ACCESS, CLIENT, EXPIRES, ID, REFRESH, SECRET, env, lifetime,
                              post_refresh, refresh_grants, wait_past)

BACKEND = {"port": None, "seen": []}

CONF = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID """ + CLIENT + """
MSAuthClientSecret """ + SECRET + """
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /
MSAuthSigninFailure /?cause=?
MSAuthCache %s
LogLevel warn msauth:debug
MSAuthMetrics On
MSAuthHealth On
<MSAuthApp b>
    MSAuthCookieName msauth-b
    MSAuthSigninSuccess /?jwt=id
</MSAuthApp>
<Directory @DIR@/htdocs/di>
    Options +ExecCGI
    AddHandler cgi-script .cgi
    DirectoryIndex index.cgi
    MSAuthPassTokens all
    <Files "index.cgi">
        MSAuthPassTokens id
    </Files>
</Directory>
Alias /di/ @DIR@/htdocs/di/
<Location /di/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
<Directory @DIR@/htdocs/ssi>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
Alias /all/ @DIR@/htdocs/cgi/
Alias /open/ @DIR@/htdocs/cgi/
Alias /none/ @DIR@/htdocs/cgi/
Alias /nested/off/ @DIR@/htdocs/cgi/
Alias /nested/ @DIR@/htdocs/cgi/
Alias /rev/on/ @DIR@/htdocs/cgi/
Alias /rev/ @DIR@/htdocs/cgi/
Alias /ssi-all/ @DIR@/htdocs/ssi/
Alias /ssi-none/ @DIR@/htdocs/ssi/
Alias /b-all/ @DIR@/htdocs/cgi/
<Location /all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
    ErrorDocument 404 /open/envall.cgi
</Location>
<Location /none/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
<Location /nested/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
</Location>
<Location /nested/off/>
    MSAuthPassTokens off
</Location>
<Location /rev/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
<Location /rev/on/>
    MSAuthPassTokens id
</Location>
<Location /ssi-all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
</Location>
<Location /ssi-none/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
<Location /b-all/>
    AuthType Microsoft
    MSAuthApp b
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
</Location>
<Location /px-all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
    ProxyPass http://127.0.0.1:@BACKEND@/all/
</Location>
<Location /px-none/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
    ProxyPass http://127.0.0.1:@BACKEND@/none/
</Location>
<Location /px-open/>
    ProxyPass http://127.0.0.1:@BACKEND@/open/
</Location>
"""

MODULES = ["socache_memcache", "include", "proxy", "proxy_http"]


class Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        BACKEND["seen"].append((self.path, list(self.headers.items())))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def backend():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    BACKEND["port"] = srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield BACKEND
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def registration(fakems):
    fakems.control("clients", {"client_id": CLIENT, "secret": SECRET,
                               "optional_claims": ["sid"]})


@pytest.fixture(scope="module")
def store():
    s = Store("memcache")
    yield s
    s.stop()


def start_server(store, fakems, backend, name="atk-tokens", extra=""):
    conf = (CONF % store.spec).replace("@BACKEND@", str(backend["port"])) + extra
    h = Httpd(conf, fakems, modules=MODULES, name=name)
    ssi = os.path.join(h.htdocs, "ssi")
    os.makedirs(ssi, exist_ok=True)
    with open(os.path.join(ssi, "in-open.shtml"), "w") as f:
        # A page that passes tokens, including a page of a location that passes none.
        f.write('HERE:<!--#if expr="-n %{HTTP:X-MS-TOKEN-AAD-ACCESS-TOKEN}" -->present'
                '<!--#else -->absent<!--#endif -->\n'
                '<!--#include virtual="/open/envall.cgi" -->\n'
                '<!--#include virtual="/none/envall.cgi" -->\n')
    with open(os.path.join(ssi, "in-all.shtml"), "w") as f:
        # A page that passes none, including one that does, then looking at its own headers.
        f.write('<!--#include virtual="/all/whoami.cgi" -->\n'
                'AFTER:<!--#if expr="-n %{HTTP:X-MS-TOKEN-AAD-ACCESS-TOKEN}" -->LEAKED'
                '<!--#else -->clean<!--#endif -->\n'
                '<!--#include virtual="/open/envall.cgi" -->\n')
    os.makedirs(os.path.join(h.htdocs, "di"), exist_ok=True)
    with open(os.path.join(h.htdocs, "cgi", "whoami.cgi")) as f:
        whoami = f.read()
    for name in ("index.cgi", "all.cgi"):
        with open(os.path.join(h.htdocs, "di", name), "w") as f:
            f.write(whoami)
        os.chmod(os.path.join(h.htdocs, "di", name), 0o755)
    install_cgi(h, "redirect.cgi", "#!/bin/sh\nprintf 'Location: /open/envall.cgi\\r\\n\\r\\n'\n")
    # Every variable that names a token, under any prefix (REDIRECT_HTTP_..., say).
    install_cgi(h, "envall.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                "echo ENVALL\nenv | grep -i 'ms_token' | sort\n")
    h.expect_warn(fresh_store_epoch(store.spec))
    h.start()
    return h


@pytest.fixture(scope="module")
def server(store, fakems, backend):
    h = start_server(store, fakems, backend)
    yield h
    h.cleanup()


def get(httpd, path, token, headers=None, cookie="msauth"):
    h = {"Accept": "application/json"}
    h.update(headers or {})
    return requests.get(httpd.url(path), cookies={cookie: token} if token else {}, headers=h,
                        timeout=30, allow_redirects=False)


def token_lines(text):
    return [line for line in text.splitlines() if "X_MS_TOKEN" in line.upper()
            or "X-MS-TOKEN" in line.upper()]


# -- refresh answers that are not the session's ---------------------------------------------

@pytest.mark.parametrize("knob", ["wrong_key", "wrong_tid", "wrong_aud", "expired",
                                  "other_user"])
def test_refresh_answer_with_an_id_token_not_the_sessions_is_not_passed_on(fakems, server,
                                                                        knob):
    """Microsoft's answer to a refresh is checked as a login's is (OpenID Connect Core
    12.2): an id_token signed by no key of Microsoft's, for another tenant or app,
    expired, or of another user, reaches no app, and neither does the access token that
    came with it."""
    token = Browser(fakems).sign_in(server)
    first = env(server, "/all/", token)
    fakems.faults(id_token=knob, count=1)
    server.expect_warn(r"msauth: tokens: appid=default user=.*: the Microsoft tokens could not "
                       r"be refreshed \(.*id_token.*\)")
    r = post_refresh(server, token)
    seen = env(server, "/all/", token)
    assert seen.get(ID) == first[ID], (knob, "the refreshed id_token was passed on")
    assert seen.get(ACCESS) == first[ACCESS], knob
    assert r.status_code == 502, (knob, r.status_code, r.text)
    server.check_log()


# -- what a client sends ------------------------------------------------------------------------

FORGED = [("X-MS-TOKEN-AAD-ACCESS-TOKEN", "forged-dash"),
          ("X_MS_TOKEN_AAD_ACCESS_TOKEN", "forged-underscore"),
          ("x-ms-token-aad-id-token", "forged-lower"),
          ("X-Ms-Token_Aad-Expires-On", "forged-mixed"),
          ("X-MS-TOKEN-AAD-ACCESS-TOKEN", "forged-duplicate"),
          ("X-MS-TOKEN-AAD-REFRESH-TOKEN", "forged-refresh")]


def raw_request(httpd, target, headers):
    """A GET with headers exactly as given (duplicates and underscores kept)."""
    lines = ["GET %s HTTP/1.1" % target, "Host: 127.0.0.1:%d" % httpd.port,
             "Connection: close", "Accept: application/json"]
    lines += ["%s: %s" % kv for kv in headers]
    with socket.create_connection(("127.0.0.1", httpd.port), timeout=30) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("latin-1")


def test_forged_token_headers_in_any_spelling_reach_no_cgi_and_no_backend(fakems, server,
                                                                          backend):
    token = Browser(fakems).sign_in(server)
    cookie = [("Cookie", "msauth=" + token)]
    for path in ("/open/whoami.cgi", "/none/whoami.cgi", "/all/whoami.cgi",
                 "/nested/off/whoami.cgi", "/rev/on/whoami.cgi"):
        code, body = raw_request(server, path, FORGED + cookie)
        assert code == 200, (path, code, body[:200])
        assert "forged" not in body, (path, token_lines(body))
    backend["seen"].clear()
    for path in ("/px-open/x", "/px-none/x", "/px-all/x"):
        code, body = raw_request(server, path, FORGED + cookie)
        assert code == 200, (path, code, body[:200])
    assert len(backend["seen"]) == 3, backend["seen"]
    for path, headers in backend["seen"]:
        names = [k for k, _ in headers if k.upper().replace("_", "-").startswith("X-MS-TOKEN")]
        assert not [v for k, v in headers if "forged" in v], (path, names)
        if path.startswith("/all/"):
            # The real ones, once each.
            assert sorted(n.upper() for n in names) == sorted(
                ["X-MS-TOKEN-AAD-ACCESS-TOKEN", "X-MS-TOKEN-AAD-EXPIRES-ON",
                 "X-MS-TOKEN-AAD-ID-TOKEN"]), names
            for k, v in headers:
                remember(v if k.upper().startswith("X-MS-TOKEN") else None)
        else:
            assert not names, (path, names)


# -- locations: only where asked --------------------------------------------------------------

def test_nested_locations_pass_tokens_only_where_asked(fakems, server):
    token = Browser(fakems).sign_in(server)
    outer = env(server, "/nested/", token)
    assert outer[ACCESS] and outer[ID]
    inner = env(server, "/nested/off/", token)
    assert inner["REMOTE_USER"] and ACCESS not in inner and ID not in inner, inner.keys()
    rev = env(server, "/rev/", token)
    assert ACCESS not in rev and ID not in rev
    on = env(server, "/rev/on/", token)
    assert on[ID] and ACCESS not in on and EXPIRES not in on


def test_subrequests_and_internal_redirects_carry_no_tokens_out_of_their_location(fakems,
                                                                                  server):
    token = Browser(fakems).sign_in(server)
    env(server, "/all/", token)
    # An SSI page that passes tokens, including pages of locations that pass none.
    r = get(server, "/ssi-all/in-open.shtml", token)
    assert r.status_code == 200 and r.text.count("ENVALL") == 2, r.text[:300]
    assert "HERE:present" in r.text, r.text[:300]   # the probe below sees a token set
    assert not token_lines(r.text), token_lines(r.text)
    # A page that passes none including one that does: the included CGI has its tokens, and
    # the including page, and whatever it includes next, none.
    r = get(server, "/ssi-none/in-all.shtml", token)
    assert r.status_code == 200, r.text[:300]
    assert "AFTER:clean" in r.text, r.text
    lines = token_lines(r.text)
    for line in lines:
        remember(line.partition("=")[2])
    assert len([x for x in lines if x.startswith(ACCESS + "=")]) == 1, lines
    # A CGI's local Location: an internal redirect out of /all/ into /open/.
    r = get(server, "/all/redirect.cgi", token)
    assert r.status_code == 200 and "ENVALL" in r.text, (r.status_code, r.text[:300])
    assert not token_lines(r.text), token_lines(r.text)
    # ErrorDocument of /all/ served by /open/.
    r = get(server, "/all/missing.txt", token)
    assert r.status_code == 404 and "ENVALL" in r.text, (r.status_code, r.text[:300])
    assert not token_lines(r.text), token_lines(r.text)


# -- another app ------------------------------------------------------------------------------

def test_another_apps_session_gets_no_tokens_of_this_one(fakems, server):
    b = Browser(fakems)
    root = b.sign_in(server)
    other = b.sign_in(server, appid="b")
    mine = env(server, "/all/", root)
    theirs = requests.get(server.url("/b-all/whoami.cgi"), cookies={"msauth-b": other},
                          headers={"Accept": "application/json"}, timeout=30)
    assert theirs.status_code == 200
    for line in token_lines(theirs.text):
        remember(line.partition("=")[2])
    assert mine[ACCESS] not in theirs.text and mine[ID] not in theirs.text
    # app b's session at the root app's /refresh, and the root's at b's.
    assert post_refresh(server, other).status_code == 401
    r = requests.post(server.url(REFRESH + "?appid=b"), cookies={"msauth": root},
                      headers={"Origin": server.origin}, timeout=30)
    assert r.status_code == 401, r.text
    r = requests.post(server.url(REFRESH + "?appid=b"), cookies={"msauth-b": other},
                      headers={"Origin": server.origin}, timeout=30)
    assert r.status_code == 200, r.text
    # The root session presented as b's cookie at b's location: not b's session.
    r = requests.get(server.url("/b-all/whoami.cgi"), cookies={"msauth-b": root},
                     headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 401


# -- /refresh from elsewhere -------------------------------------------------------------------

def test_refresh_refuses_other_origins_and_methods(fakems, server):
    token = Browser(fakems).sign_in(server)
    env(server, "/all/", token)
    before = refresh_grants(fakems)
    o = server.origin
    for headers in ({"Origin": "null"}, {"Origin": o + "1"},
                    {"Origin": "http://127.0.0.1:%d" % (server.port + 1)},
                    {"Origin": o + ".evil.example"}, {"Origin": o.replace("http:", "https:")},
                    {"Origin": o + "/"}, {"Origin": "%s, %s" % (o, "https://evil.example")},
                    {"Referer": o + ".evil.example/"}, {"Referer": o + "@evil.example/"},
                    {"Referer": o + "1/"}, {"Referer": "https://evil.example/?" + o},
                    {"Origin": "https://evil.example", "Referer": o + "/"}):
        r = post_refresh(server, token, origin=False, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
    for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE"):
        r = requests.request(method, server.url(REFRESH), cookies={"msauth": token},
                             headers={"Origin": o}, timeout=15)
        assert r.status_code == 405, (method, r.status_code)
    assert refresh_grants(fakems) == before


def test_refresh_with_a_bearer_an_id_token_or_a_dead_session(fakems, server):
    b = Browser(fakems)
    token = b.sign_in(server)
    env(server, "/all/", token)
    # A Bearer session token, same origin: like the cookie.
    r = requests.post(server.url(REFRESH), headers={"Origin": server.origin,
                                                    "Authorization": "Bearer " + token},
                      timeout=15)
    assert r.status_code == 200, r.text
    # A forged token: 401.
    claims = jwt_parts(token)[1]
    assert claims["sub"]
    r = post_refresh(server, token[:-4] + "AAAA")
    assert r.status_code == 401
    # Logged out: 401, no grant.
    before = refresh_grants(fakems)
    requests.get(server.url("/microsoft_auth/logout"), cookies={"msauth": token}, timeout=15,
                 allow_redirects=False)
    assert post_refresh(server, token).status_code == 401
    assert refresh_grants(fakems) == before


def test_many_requests_at_an_expired_token_make_one_refresh(fakems, server):
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(server)
    first = env(server, "/all/", token)
    fakems.control("settings", {"refresh_delay": 1.0})
    wait_past(first[EXPIRES])
    before = refresh_grants(fakems)
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        jobs = [pool.submit(env, server, "/all/", token) for _ in range(10)]
        results = [j.result() for j in jobs]
    assert refresh_grants(fakems) - before == 1
    seen = {r.get(ACCESS) for r in results}
    assert len(seen) == 1 and first[ACCESS] not in seen and None not in seen, len(seen)
    # Forced refreshes at once: one grant, all answered with its expiry.
    before = refresh_grants(fakems)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        answers = [j.result() for j in [pool.submit(post_refresh, server, token)
                                        for _ in range(4)]]
    assert refresh_grants(fakems) - before == 1
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert len({a.json()[0]["expires_on"] for a in answers}) == 1


def test_a_directory_index_under_another_configuration_gets_only_its_kinds(fakems, server):
    """/di/ passes all; its DirectoryIndex file index.cgi (a <Files> of its own) passes only
    the id_token: mod_dir moves the request to the file's configuration after the access
    token was set for the directory's."""
    token = Browser(fakems).sign_in(server)
    r = get(server, "/di/all.cgi", token)
    assert r.status_code == 200 and ACCESS + "=" in r.text, r.text[:300]
    for line in token_lines(r.text):
        remember(line.partition("=")[2])
    for path in ("/di/", "/di/index.cgi"):
        r = get(server, path, token)
        assert r.status_code == 200 and "REMOTE_USER=" in r.text, (path, r.text[:300])
        for line in token_lines(r.text):
            remember(line.partition("=")[2])
        assert ID + "=" in r.text, (path, token_lines(r.text))
        assert ACCESS + "=" not in r.text and EXPIRES + "=" not in r.text, (
            path, [x.partition("=")[0] for x in token_lines(r.text)])


@pytest.mark.parametrize("knob", ["garbage", "html", "empty", "truncated", "big", "500",
                                  "no_access_token"])
def test_refresh_answers_that_are_no_tokens(fakems, server, knob):
    """Whatever the token endpoint answers a refresh with, /refresh says 502 (never a 500
    or a crash) and the app keeps the valid token it had."""
    token = Browser(fakems).sign_in(server)
    first = env(server, "/all/", token)
    fakems.faults(token=knob, count=1)
    server.expect_warn(r"msauth: tokens: appid=default user=.*: the Microsoft tokens could not "
                       r"be refreshed")
    r = post_refresh(server, token)
    assert r.status_code == 502, (knob, r.status_code, r.text[:200])
    seen = env(server, "/all/", token)
    assert seen[ACCESS] == first[ACCESS] and seen[ID] == first[ID]
    server.check_log()


def test_an_id_token_is_no_session_at_refresh(fakems, server):
    """app b lands on /?jwt=<ID token>: that short-lived exchange token is not a session."""
    b = Browser(fakems)
    r = b.sites.get(server.url("/microsoft_auth/login?appid=b"), allow_redirects=False,
                    timeout=15)
    authorize = r.headers["Location"]
    fields = {k: v[0] for k, v in
              urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query).items()}
    fields["user"] = "alice"
    r = b.ms.post(fakems.base + urllib.parse.urlsplit(authorize).path, data=fields,
                  allow_redirects=False, timeout=10)
    r = b.sites.get(r.headers["Location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302, r.text[:200]
    landing = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)
    idt = landing["jwt"][0]
    remember(idt)
    before = refresh_grants(fakems)
    for cookies, headers in (({"msauth-b": idt}, {}), ({}, {"Authorization": "Bearer " + idt})):
        headers = dict(headers, Origin=server.origin)
        r = requests.post(server.url(REFRESH + "?appid=b"), cookies=cookies, headers=headers,
                          timeout=15)
        assert r.status_code == 401, (cookies.keys(), headers.keys(), r.status_code)
    r = requests.get(server.url("/b-all/whoami.cgi"), headers={"Authorization": "Bearer " + idt,
                                                               "Accept": "application/json"},
                     timeout=15)
    assert r.status_code == 401 and not token_lines(r.text)
    assert refresh_grants(fakems) == before


def test_no_token_in_metrics_health_or_the_refresh_answer(fakems, server):
    token = Browser(fakems).sign_in(server)
    seen = env(server, "/all/", token)
    r = post_refresh(server, token)
    assert r.status_code == 200
    later = env(server, "/all/", token)
    rts = [t["token"] for t in fakems.control("refresh_tokens")["refresh_tokens"]]
    for t in rts:
        remember(t)
    pages = [r.text, str(r.headers)]
    for path in ("/microsoft_auth/metrics", "/microsoft_auth/health"):
        page = requests.get(server.url(path), timeout=15)
        assert page.status_code in (200, 503), (path, page.status_code)
        pages += [page.text, str(page.headers)]
    for secret in [seen[ACCESS], seen[ID], later[ACCESS], later[ID]] + rts:
        for text in pages:
            assert secret[-40:] not in text


def test_one_refresh_when_two_servers_share_redis(request, fakems):
    from test_cluster import two_servers
    from test_pass_tokens import CONF as PASS_CONF
    store, a, b = two_servers(request, fakems, "redis", name="atk-redis", conf=PASS_CONF)
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(a)
    first = env(a, "/access/", token)
    assert env(b, "/access/", token)[ACCESS] == first[ACCESS]
    fakems.control("settings", {"refresh_delay": 1.0})
    wait_past(first[EXPIRES])
    before = refresh_grants(fakems)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(env, h, "/access/", token) for h in (a, b) * 4]
        seen = [j.result() for j in jobs]
    assert refresh_grants(fakems) - before == 1
    tokens = {s.get(ACCESS) for s in seen}
    assert len(tokens) == 1 and None not in tokens and first[ACCESS] not in tokens


@pytest.mark.parametrize("how", ["logout", "revoke"])
def test_a_logout_during_a_refresh_leaves_no_tokens_in_the_store(fakems, server, store, how):
    """The user signs out while a request refreshes the access token: the refresh answered
    after the sign-out does not bring the tokens (and the refresh token) back."""
    from test_pass_tokens import record_of
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(server, user="erin" if how == "revoke" else "alice")
    first = env(server, "/all/", token)
    fakems.control("settings", {"refresh_delay": 2.0})
    wait_past(first[EXPIRES])
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(get, server, "/all/whoami.cgi", token)
        time.sleep(0.8)       # the refresh is at Microsoft now
        if how == "logout":
            r = requests.get(server.url("/microsoft_auth/logout"), cookies={"msauth": token},
                             timeout=15, allow_redirects=False)
            assert r.status_code == 302
        else:
            r = requests.delete(server.url("/jwt_auth"),
                                headers={"Authorization": "Bearer " + token}, timeout=15)
            assert r.status_code == 200, r.text
        assert record_of(store, token) == "-"
        done = job.result()
    for line in token_lines(done.text):
        remember(line.partition("=")[2])
    assert refresh_grants(fakems) >= 1
    for t in fakems.control("refresh_tokens")["refresh_tokens"]:
        remember(t["token"])
    assert record_of(store, token) == "-", "the refreshed tokens are back in the store"
    assert post_refresh(server, token).status_code == 401


@pytest.mark.parametrize("mail", [
    "adelaide.vanderbilt-montgomery.of.the.finance.department@subsidiary.contoso.example",
    'quote\\"x@contoso.example', "back\\@contoso.example"])
def test_refresh_answer_is_json_with_the_whole_user_id(fakems, server, mail):
    """The user's address as Microsoft gave it, whole, and valid JSON whatever it holds."""
    name = "u%d" % (abs(hash(mail)) % 100000)
    fakems.control("users", {"name": name, "mail": mail, "upn": name + "@contoso.example"})
    token = Browser(fakems).sign_in(server, user=name)
    env(server, "/all/", token)
    r = post_refresh(server, token)
    assert r.status_code == 200, r.text
    try:
        body = r.json()
    except ValueError:
        raise AssertionError("not JSON: %r" % r.text)
    assert body[0]["user_id"] == mail, body


def test_the_store_lost_during_a_refresh(fakems, backend):
    """The store goes while Microsoft answers a refresh: that request is served (with the
    new token, or none), never a 500; the next ones are 503 and carry no token."""
    s = Store("memcache")
    h = start_server(s, fakems, backend, name="atk-lost")
    try:
        lifetime(fakems, 3)
        token = Browser(fakems).sign_in(h)
        first = env(h, "/all/", token)
        fakems.control("settings", {"refresh_delay": 1.5})
        wait_past(first[EXPIRES])
        h.expect_warn(r"MSAuthCache|cache|not kept")
        h.expect_error(r"cache_error: MSAuthCache .* cannot answer")
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            job = pool.submit(get, h, "/all/whoami.cgi", token)
            time.sleep(0.6)
            s.stop()
            done = job.result()
        assert done.status_code in (200, 503), done.status_code
        for line in token_lines(done.text):
            remember(line.partition("=")[2])
        assert first[ACCESS] not in done.text
        r = get(h, "/all/whoami.cgi", token)
        assert r.status_code == 503 and not token_lines(r.text), r.status_code
        assert post_refresh(h, token).status_code == 503
    finally:
        h.cleanup()
        s.stop()


def test_tokens_end_with_the_session_timeout(fakems, backend):
    """MSAuthSessionTimeout: once the session token expires, no tokens, no refresh, and the
    store has forgotten the record."""
    from test_pass_tokens import record_of
    s = Store("memcache")
    h = start_server(s, fakems, backend, name="atk-timeout",
                     extra="MSAuthClockSkew 0\nMSAuthSessionTimeout 60\n")
    try:
        token = Browser(fakems).sign_in(h)
        assert env(h, "/all/", token)[ACCESS]
        assert record_of(s, token).startswith("v1.")
        time.sleep(max(0.0, jwt_parts(token)[1]["exp"] - time.time() + 1.5))
        assert get(h, "/all/whoami.cgi", token).status_code == 401
        before = refresh_grants(fakems)
        assert post_refresh(h, token).status_code == 401
        assert refresh_grants(fakems) == before
        assert record_of(s, token) is None
    finally:
        h.cleanup()
        s.stop()


# -- logs -------------------------------------------------------------------------------------

def test_no_token_in_a_trace8_log(fakems, store, backend):
    # The module's own trace and the modules that handle the tokens after it (httpd's core
    # traces every Set-Cookie and request line at trace4 and trace5, whatever they hold).
    h = start_server(store, fakems, backend, name="atk-trace",
                     extra="LogLevel warn msauth:trace8 proxy:trace8 proxy_http:trace8 "
                           "cgid:trace8 include:trace8 socache_memcache:trace8\n")
    try:
        lifetime(fakems, 3)
        token = Browser(fakems).sign_in(h)
        first = env(h, "/all/", token)
        wait_past(first[EXPIRES])
        later = env(h, "/all/", token)
        assert later[ACCESS] != first[ACCESS]
        assert post_refresh(h, token).status_code == 200
        raw_request(h, "/px-all/x", [("Cookie", "msauth=" + token)])
        log = h.read_file("error.log")
        rts = [t["token"] for t in fakems.control("refresh_tokens")["refresh_tokens"]]
        for t in rts:
            remember(t)
        for secret in [first[ACCESS], first[ID], later[ACCESS], later[ID]] + rts:
            assert secret[-40:] not in log, "a token in the trace8 log"
    finally:
        h.cleanup()


# -- the store down -----------------------------------------------------------------------------

def test_store_down_refresh_is_503_and_no_token_passes(fakems, backend):
    s = Store("memcache")
    h = start_server(s, fakems, backend, name="atk-down")
    try:
        token = Browser(fakems).sign_in(h)
        assert env(h, "/all/", token)[ACCESS]
        s.stop()
        h.expect_warn(r"MSAuthCache|cache")
        h.expect_error(r"cache_error: MSAuthCache .* cannot answer")
        r = post_refresh(h, token)
        assert r.status_code == 503, (r.status_code, r.text)
        r = get(h, "/all/whoami.cgi", token)
        assert r.status_code in (503, 200), r.status_code
        assert not token_lines(r.text), token_lines(r.text)
    finally:
        h.cleanup()
        s.stop()


def test_offline_access_asked_only_when_tokens_are_passed(fakems, backend):
    s = Store("memcache")
    conf = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthClientID """ + CLIENT + """
MSAuthClientSecret """ + SECRET + """
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /
MSAuthCache """ + s.spec + """
Alias /none/ @DIR@/htdocs/cgi/
<Location /none/>
    AuthType Microsoft
    MSAuthPassTokens off
    Require valid-user
</Location>
"""
    h = Httpd(conf, fakems, modules=["socache_memcache"], name="atk-noofl")
    h.expect_warn(fresh_store_epoch(s.spec))
    h.start()
    try:
        r = requests.get(h.url("/microsoft_auth/login"), allow_redirects=False, timeout=15)
        assert r.status_code == 302
        assert "offline_access" not in requests.utils.unquote(r.headers["Location"])
    finally:
        h.cleanup()
        s.stop()
