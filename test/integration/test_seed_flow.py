"""The seed's Microsoft login, end to end, against a real httpd and fakems.

The browser is played by `requests`: it opens the authorize URL exactly as
the seed's JavaScript button builds it, picks a user on fakems's page, and
follows Microsoft's redirect to /microsoft_auth.
"""

import re
import socket
import threading
import time
import urllib.parse

import pytest
import requests

from msauth import (CLIENT_ID, CLIENT_SECRET, CONTOSO_TID, KEY, SEED_SCOPE, callback_path,
                    hs256_valid, jwt_parts, query_of, seed_authorize_url, FAKEMS_APP)

APP2_CLIENT = "22222222-3333-4444-5555-666666666666"
APP2_SECRET = "second-app-secret-abcdefghijklmnop"
APP2_KEY = "app2-signing-key-0123456789-abcdefghij"

CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninSuccess /?jwt=id
MSAuthSigninFailure /?cause=?
<MSAuthApp app1>
    MSAuthSigninSuccess /app1/welcome?jwt=id
    MSAuthSigninFailure /app1/failed?cause=?
</MSAuthApp>
<MSAuthApp app2>
    MSAuthClientID %s
    MSAuthClientSecret %s
    MSAuthSecretKey %s
    MSAuthSigninSuccess @ORIGIN@/app2/home?lang=en&jwt=?
    MSAuthSigninFailure @ORIGIN@/app2/oops?cause=?&x=1
    MSAuthSessionTimeout 7200
    MSAuthIDTokenTTL 120
</MSAuthApp>
<MSAuthApp strict>
    MSAuthLegacyState Off
    MSAuthSigninFailure /strict/failed?cause=?
</MSAuthApp>
""" % (APP2_CLIENT, APP2_SECRET, APP2_KEY)


@pytest.fixture(scope="module")
def httpd(request, fakems):
    from msauth import Httpd
    requests.post(fakems.base + "/_fakems/clients", json={
        "client_id": APP2_CLIENT, "secret": APP2_SECRET}, timeout=5).raise_for_status()
    h = Httpd(CONF, fakems, name="seed").start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(autouse=True)
def _log(httpd):
    """httpd.new_log() in a test starts at that test's own lines."""
    httpd.new_log()


def login(fakems, httpd, appid=None, user="alice", scope=SEED_SCOPE, client_id=CLIENT_ID,
          session=None):
    """The seed flow: button → Microsoft's page → callback. Returns the callback's answer."""
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, appid, scope, client_id), user)
    assert back.startswith(httpd.origin + "/microsoft_auth?"), back
    return (session or requests).get(back, allow_redirects=False, timeout=30)


def landing(r):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return r.headers["Location"]


def set_cookies(r):
    """Set-Cookie headers of a response, as name -> full header value."""
    out = {}
    for value in r.raw.headers.getlist("Set-Cookie"):
        out[value.split("=", 1)[0]] = value
    return out


def cause(r, prefix="/?cause="):
    loc = landing(r)
    assert loc.startswith(prefix), loc
    return urllib.parse.unquote(loc[len(prefix):].split("&")[0])


# The happy paths ------------------------------------------------------------------

def test_root_app_login_lands_on_success_with_id_token(fakems, httpd):
    before = time.time()
    r = login(fakems, httpd)
    loc = landing(r)
    assert loc.startswith("/?jwt="), loc
    token = query_of(loc)["jwt"][0]
    assert hs256_valid(token, KEY)
    header, claims, _ = jwt_parts(token)
    assert header["alg"] == "HS256"
    assert claims["token_use"] == "id"
    assert claims["appid"] == "default"
    assert claims["exp"] - claims["iat"] == 60
    assert before - 2 <= claims["iat"] <= time.time() + 2
    assert claims["name"] == "Alice Example"
    assert claims["email"] == "alice@contoso.example"
    assert claims["identifier"] == "ms:" + claims["sub"]
    assert re.fullmatch(r"[0-9a-f-]{36}", claims["sub"]), claims["sub"]
    assert len(claims["jti"]) >= 16


def test_session_cookie_attributes(fakems, httpd):
    r = login(fakems, httpd)
    cookies = set_cookies(r)
    assert "msauth" in cookies, cookies
    c = cookies["msauth"]
    attrs = [a.strip() for a in c.split(";")]
    assert "HttpOnly" in attrs
    assert "Path=/" in attrs
    assert "SameSite=Lax" in attrs
    assert "Max-Age=86400" in attrs
    assert "Secure" not in attrs  # plain http under MSAuthCookieSecure Auto
    value = attrs[0].split("=", 1)[1]
    assert len(attrs[0]) < 4096
    assert hs256_valid(value, KEY)
    _, claims, _ = jwt_parts(value)
    assert claims["token_use"] == "session"
    assert claims["idp"] == "microsoft"
    assert claims["exp"] - claims["iat"] == 86400
    assert claims["refresh"] == (claims["iat"] + 3600) * 1000
    assert claims["upn"] == "alice@contoso.example"
    assert claims["tid"] == CONTOSO_TID  # the seed's Graph-only login asks Graph for it


def test_named_app_login(fakems, httpd):
    r = login(fakems, httpd, appid="app1")
    loc = landing(r)
    assert loc.startswith("/app1/welcome?jwt="), loc
    _, claims, _ = jwt_parts(query_of(loc)["jwt"][0])
    assert claims["appid"] == "app1"
    cookies = set_cookies(r)
    assert set(cookies) == {"msauth-app1"}, cookies


def test_two_named_apps_side_by_side(fakems, httpd):
    s = requests.Session()
    r1 = login(fakems, httpd, appid="app1", session=s)
    r2 = login(fakems, httpd, appid="app2", client_id=APP2_CLIENT, user="bob", session=s)
    assert landing(r1).startswith("/app1/welcome?jwt=")
    loc2 = landing(r2)
    # jwt=? is the session token; the rest of the URL is kept as written.
    assert loc2.startswith(httpd.origin + "/app2/home?lang=en&jwt="), loc2
    token = query_of(loc2)["jwt"][0]
    assert hs256_valid(token, APP2_KEY) and not hs256_valid(token, KEY)
    _, claims, _ = jwt_parts(token)
    assert claims["token_use"] == "session" and claims["appid"] == "app2"
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["name"] == "Bob Personal"
    assert re.fullmatch(r"[0-9a-f]{16}", claims["sub"]), claims["sub"]  # personal account id
    # Both sessions live in the same browser, each under its app's cookie.
    assert {"msauth-app1", "msauth-app2"} <= set(s.cookies.keys())
    assert "Max-Age=7200" in set_cookies(r2)["msauth-app2"]
    # app2 redeemed its code with its own credentials.
    token_calls = [q for q in fakems.requests() if q["path"].endswith("/oauth2/v2.0/token")]
    assert token_calls[-1]["form"]["client_id"] == APP2_CLIENT


def test_token_request_as_the_seed_makes_it(fakems, httpd):
    login(fakems, httpd, appid="app1")
    calls = [q for q in fakems.requests() if q["path"].endswith("/oauth2/v2.0/token")]
    assert len(calls) == 1
    form = calls[0]["form"]
    assert calls[0]["path"] == "/common/oauth2/v2.0/token"
    assert form["grant_type"] == "authorization_code"
    assert form["client_id"] == CLIENT_ID
    assert form["redirect_uri"] == httpd.origin + "/microsoft_auth"
    assert "code_verifier" not in form  # a client-built login has no PKCE
    assert calls[0]["auth"] == "post"
    me = [q for q in fakems.requests() if q["path"] == "/v1.0/me"]
    assert len(me) == 1


def test_profile_email_falls_back_to_upn(fakems, httpd):
    loc = landing(login(fakems, httpd, user="carol"))
    _, claims, _ = jwt_parts(query_of(loc)["jwt"][0])
    assert claims["email"] == "carol@fabrikam.example"
    assert claims["name"] == "Carol NoMail"


def test_para_host_alias_state_counts_as_client_built(fakems, httpd):
    loc = landing(login(fakems, httpd, appid="app1|1234567"))
    assert loc.startswith("/app1/welcome?jwt="), loc


# Refusals -------------------------------------------------------------------------

def test_legacy_state_off_refuses_client_built_login(fakems, httpd):
    r = login(fakems, httpd, appid="strict")
    assert cause(r, "/strict/failed?cause=") == "unsolicited_login"
    assert "Set-Cookie" not in r.headers or "msauth" not in r.headers["Set-Cookie"]
    assert not [q for q in fakems.requests() if q["path"].endswith("/token")]


def test_module_state_without_its_cookie_is_refused(fakems, httpd):
    r = httpd.get("/microsoft_auth?code=abc&state=app1%7CZm9vYmFyYmF6cXV4")
    assert cause(r, "/app1/failed?cause=") == "invalid_state"


def test_user_cancels(fakems, httpd):
    back = fakems.cancel(seed_authorize_url(fakems, httpd, "app1"))
    r = requests.get(back, allow_redirects=False, timeout=10)
    assert cause(r, "/app1/failed?cause=") == "access_denied"


def test_unknown_app_uses_root_failure_url(fakems, httpd):
    r = httpd.get("/microsoft_auth?code=abc&state=nosuchapp")
    assert cause(r) == "unknown_app"


@pytest.mark.parametrize("query", [
    "state=app1",                       # no code
    "state=app1&code=a&code=b",         # repeated code
    "state=app1&code=",                 # empty code
])
def test_bad_code_parameter(httpd, query):
    r = httpd.get("/microsoft_auth?" + query)
    assert cause(r, "/app1/failed?cause=") == "invalid_request"


@pytest.mark.parametrize("query", [
    "code=abc&state=%zzapp1",           # broken escape
    "code=abc&state=app1%",             # truncated escape
    "code=%ff%fe&state=app1",           # not UTF-8
    "code=abc%00&state=app1",           # encoded NUL
])
def test_broken_query_string(httpd, query):
    r = httpd.raw_get("/microsoft_auth?" + query)
    assert r.status == 302
    assert r.getheader("Location") == "/?cause=invalid_request"


def test_huge_state(httpd):
    # Within Apache's LimitRequestLine (8190) the module answers with a failure redirect.
    r = httpd.get("/microsoft_auth?code=abc&state=" + "a" * 8000)
    assert cause(r) == "invalid_state"
    r = httpd.get("/microsoft_auth?code=abc&state=app1%7C" + "b" * 8000)
    assert cause(r) == "invalid_state"
    # Beyond it Apache itself refuses the request line: a 414, not a 500.
    r = httpd.get("/microsoft_auth?code=abc&state=" + "a" * 10240)
    assert r.status_code == 414


def test_repeated_state(httpd):
    r = httpd.get("/microsoft_auth?code=abc&state=app1&state=app2")
    assert cause(r) == "invalid_state"


def test_code_used_twice(fakems, httpd):
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "app1"))
    first = requests.get(back, allow_redirects=False, timeout=10)
    assert landing(first).startswith("/app1/welcome")
    second = requests.get(back, allow_redirects=False, timeout=10)
    assert cause(second, "/app1/failed?cause=") == "token_exchange_failed"


@pytest.mark.parametrize("knob", ["500", "garbage", "truncated", "html", "empty", "big",
                                  "invalid_grant"])
def test_token_endpoint_failures(fakems, httpd, knob):
    # Microsoft failing. (invalid_grant is its answer to any made-up code: not a WARN line.)
    if knob != "invalid_grant":
        httpd.expect_warn(r"msauth: login_failed: cause=token_exchange_failed appid=app1: "
                          r"token endpoint")
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "app1"))
    fakems.faults(token=knob)
    r = requests.get(back, allow_redirects=False, timeout=10)
    assert cause(r, "/app1/failed?cause=") == "token_exchange_failed"
    assert "msauth-app1" not in set_cookies(r)


@pytest.mark.parametrize("knob", ["hang", "reset"])
def test_token_endpoint_unreachable(fakems, httpd, knob):
    httpd.expect_warn(r"msauth: login_failed: cause=idp_unreachable appid=app1: token endpoint: "
                      r"POST http://127\.0\.0\.1:\d+/common/oauth2/v2\.0/token: ")
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "app1"))
    fakems.faults(token=knob)
    start = time.time()
    r = requests.get(back, allow_redirects=False, timeout=30)
    elapsed = time.time() - start
    assert cause(r, "/app1/failed?cause=") == "idp_unreachable"
    assert elapsed < 3 + 1, elapsed  # MSAuthHTTPTimeout 3, plus a second


def test_microsoft_not_listening(request, fakems):
    from msauth import Httpd
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = "http://127.0.0.1:%d" % s.getsockname()[1]
    conf = CONF.replace("@FAKEMS@", dead)
    h = Httpd(conf, fakems, name="dead").start()
    request.addfinalizer(h.cleanup)
    r = h.get("/microsoft_auth?code=abc&state=app1")
    assert cause(r, "/app1/failed?cause=") == "idp_unreachable"
    h.expect_warn(r"msauth: login_failed: cause=idp_unreachable appid=app1: token endpoint: "
                  r"POST %s/common/oauth2/v2\.0/token: Failed to connect" % re.escape(dead))
    h.check_log()


@pytest.mark.parametrize("knob,expected", [
    ("401", "profile_failed"), ("500", "profile_failed"), ("garbage", "profile_failed"),
    ("no_id", "profile_failed"), ("hang", "idp_unreachable"),
])
def test_graph_failures(fakems, httpd, knob, expected):
    httpd.expect_warn(r"msauth: login_failed: cause=%s appid=app1: Graph /me" % expected)
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "app1"))
    fakems.faults(graph=knob)
    start = time.time()
    r = requests.get(back, allow_redirects=False, timeout=30)
    assert cause(r, "/app1/failed?cause=") == expected
    assert time.time() - start < 4


def test_failure_url_keeps_its_other_parameters(fakems, httpd):
    r = httpd.get("/microsoft_auth?state=app2")
    assert landing(r) == httpd.origin + "/app2/oops?cause=invalid_request&x=1"


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/microsoft_auth?code=a&state=app1", "GET, HEAD"),
    ("OPTIONS", "/microsoft_auth", "GET, HEAD"),
    ("PUT", "/microsoft_auth/login", "GET, HEAD"),
    ("DELETE", "/microsoft_auth/logout", "GET, HEAD, POST"),
    ("POST", "/microsoft_auth/me", "GET, HEAD"),
])
def test_endpoints_answer_only_their_methods(httpd, method, path, allow):
    r = requests.request(method, httpd.url(path), timeout=10, allow_redirects=False)
    assert r.status_code == 405 and r.headers["Allow"] == allow, (r.status_code, r.headers)


def test_no_token_code_or_secret_in_logs(fakems, httpd):
    s = requests.Session()
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "app1"))
    code = query_of(back)["code"][0]
    r = s.get(back, allow_redirects=False, timeout=10)
    token = query_of(landing(r))["jwt"][0]
    session = s.cookies["msauth-app1"]
    # a failing exchange logs too
    s.get(back, allow_redirects=False, timeout=10)
    # Both callbacks (one session_state) are in the access log, written after each answer.
    httpd.wait_log(re.escape(query_of(back)["session_state"][0]), name="access.log", count=2)
    httpd.wait_log(r"login_ok")
    logs = httpd.read_file("error.log") + httpd.read_file("access.log")
    for secret in (code, token, session, CLIENT_SECRET, KEY):
        assert secret not in logs
