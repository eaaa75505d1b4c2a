"""What a login decides on and what the app receives: every group, no session token or
module cookie handed on, no login CSRF through /passwordless, and scripted clients (curl
with one cookie jar) that log in again and again. Against a real httpd and fakems."""

import json
import os
import subprocess
import tempfile
import uuid

import pytest
import requests

from msauth import Httpd, query_of, FAKEMS_APP

CURL = "/usr/bin/curl"
ADMIN = "hardening-admin-key-0123456789-abcdefgh"
# fakems builds a user's groups from its name; the list is known before the user exists.
MANY = 205
MANY_USER = "gwen"


def group_of(user, i):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:fakems:%s/group/%d" % (user, i)))


LAST_GROUP = group_of(MANY_USER, MANY - 1)

STORE = {"apps": {"shop": {"auth_cookie": "shopsession", "signin_success": "/shop/whoami.cgi"}}}

CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSigninSuccess /welcome?jwt=id
MSAuthSigninFailure /failed?cause=?
MSAuthSettingsFile @DIR@/settings.json
MSAuthAdminKey """ + ADMIN + """
<MSAuthApp manygroups>
    MSAuthGroups Token
</MSAuthApp>
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
    CGIPassAuth On
</Location>
Alias /groups/ @DIR@/htdocs/cgi/
<Location /groups/>
    AuthType Microsoft
    MSAuthApp manygroups
    Require ms-group """ + LAST_GROUP + """
</Location>
Alias /manygroups/ @DIR@/htdocs/cgi/
<Location /manygroups/>
    AuthType Microsoft
    MSAuthApp manygroups
    Require valid-user
</Location>
Alias /shop/ @DIR@/htdocs/cgi/
<Location /shop/>
    AuthType Microsoft
    MSAuthApp shop
    Require valid-user
</Location>
<Location /proxied/>
    AuthType Microsoft
    Require valid-user
    ProxyPass http://127.0.0.1:@PORT@/echo/
</Location>
Alias /echo/ @DIR@/htdocs/cgi/
<Location /echo/>
    CGIPassAuth On
</Location>
Alias /open/ @DIR@/htdocs/cgi/
<Location /open/>
    AuthType Microsoft
    Require all granted
    CGIPassAuth On
</Location>
Alias /either/ @DIR@/htdocs/cgi/
<Location /either/>
    AuthType Microsoft
    <RequireAny>
        Require ip 127.0.0.1
        Require valid-user
    </RequireAny>
    CGIPassAuth On
</Location>
<Location /openproxied/>
    AuthType Microsoft
    Require all granted
    ProxyPass http://127.0.0.1:@PORT@/echo/
</Location>
"""


def start(request, fakems, conf=CONF, store=STORE, name="hardening"):
    h = Httpd(conf, fakems, modules=["proxy", "proxy_http"], name=name)
    with open(os.path.join(h.dir, "settings.json"), "w") as f:
        json.dump(store, f)
    h.start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(scope="module")
def httpd(request, fakems):
    requests.post(fakems.base + "/_fakems/users", json={
        "name": MANY_USER, "displayName": "Gwen Manygroups", "group_count": MANY},
        timeout=5).raise_for_status()
    return start(request, fakems)


@pytest.fixture(autouse=True)
def _log(httpd):
    """httpd.new_log() in a test starts at that test's own lines."""
    httpd.new_log()


NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def login(httpd, fakems, path="/cgi/whoami.cgi", user="alice", session=None):
    """A browser's module-initiated login: returns the session and the callback's answer."""
    s = session or requests.Session()
    r = s.get(httpd.url(path), headers=NAV, allow_redirects=False, timeout=30)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    back = fakems.pick_user(r.headers["Location"], user)
    r = s.get(back, headers=NAV, allow_redirects=False, timeout=30)
    return s, r


def id_token(httpd, fakems, appid=None):
    """A jwt=id ID token, from a login that lands on the app's success URL."""
    s = requests.Session()
    r = s.get(httpd.url("/microsoft_auth/login" + ("?appid=" + appid if appid else "")),
              allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    r = s.get(fakems.pick_user(r.headers["Location"]), allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "jwt=" in r.headers["Location"], r.headers
    return query_of(r.headers["Location"])["jwt"][0]


def session_cookies(r):
    return [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith(("msauth=", "msauth-"))
            and "Max-Age=0" not in c]


def login_failures(httpd, cause):
    return [line for line in httpd.new_log().splitlines()
            if "login_failed: cause=%s" % cause in line]


# 6. Groups: every page of transitiveMemberOf, or no login -------------------------------

def test_every_group_reaches_the_app_with_graph_pages_of_two(httpd, fakems):
    """205 groups (over the id_token's 200: the overage), Graph answering 2 per page."""
    fakems.control("settings", {"graph_page_size": 2})
    s, r = login(httpd, fakems, "/groups/whoami.cgi", user=MANY_USER)
    assert r.status_code == 302 and r.headers["Location"] == "/groups/whoami.cgi", (
        r.status_code, r.headers.get("Location"))
    env = env_of(s.get(httpd.url("/manygroups/whoami.cgi"), timeout=30).text)
    assert env["MSAUTH_GROUPS_N"] == str(MANY)
    r = s.get(httpd.url("/groups/whoami.cgi"), timeout=30)
    assert r.status_code == 200, (r.status_code, "Require ms-group for the last group")
    env = env_of(r.text)
    assert len(set(env["MSAUTH_GROUPS"].split(","))) == MANY
    assert env["MSAUTH_GROUPS_%d" % (MANY - 1)] == LAST_GROUP
    calls = [q for q in fakems.requests() if "transitiveMemberOf" in q["path"]]
    assert len(calls) == (MANY + 1) // 2
    # One call per page: the module asks for 999 at a time and follows every nextLink.
    assert calls[0]["query"]["$top"] == "999", calls[0]["query"]


def test_a_group_list_over_the_bound_fails_the_login(httpd, fakems):
    """Past the bound (200 pages, 1,500 groups) the login fails: never a partial list."""
    httpd.expect_warn(r"msauth: login_failed: cause=profile_failed appid=manygroups: groups: "
                      r"Graph transitiveMemberOf: more than (200 pages|1500 groups) \(the bound\)")
    fakems.control("settings", {"graph_page_size": 1})
    _, r = login(httpd, fakems, "/groups/whoami.cgi", user=MANY_USER)
    assert r.status_code == 302 and r.headers["Location"] == "/failed?cause=profile_failed", (
        r.status_code, r.headers.get("Location"))
    assert not session_cookies(r)
    lines = login_failures(httpd, "profile_failed")
    assert lines and "[msauth:warn]" in lines[0] and "200 pages" in lines[0], lines
    assert len([q for q in fakems.requests() if "transitiveMemberOf" in q["path"]]) == 200

    fakems.reset()
    requests.post(fakems.base + "/_fakems/users", json={"name": "hugo", "group_count": 1501},
                  timeout=5).raise_for_status()
    _, r = login(httpd, fakems, "/groups/whoami.cgi", user="hugo")
    assert r.headers.get("Location") == "/failed?cause=profile_failed", (
        r.status_code, r.headers.get("Location"))
    lines = login_failures(httpd, "profile_failed")
    assert lines and "[msauth:warn]" in lines[0] and "1500 groups" in lines[0], lines


# 7. What the app receives -----------------------------------------------------------------

def test_a_stored_apps_cookie_never_reaches_an_app(httpd, fakems):
    """MSAuthStripCookie knows the cookie names of settings-store apps too."""
    s, r = login(httpd, fakems, "/shop/whoami.cgi")
    assert r.status_code == 302 and [c for c in r.raw.headers.getlist("Set-Cookie")
                                     if c.startswith("shopsession=")], r.headers
    s.cookies.set("theirs", "kept")
    for path in ("/shop/whoami.cgi", "/cgi/whoami.cgi"):
        if path == "/cgi/whoami.cgi":
            login(httpd, fakems, path, session=s)
        r = s.get(httpd.url(path), timeout=30)
        assert r.status_code == 200, (path, r.status_code)
        env = env_of(r.text)
        assert env["MSAUTH_APPID"] == ("shop" if path.startswith("/shop") else "default")
        assert env.get("HTTP_COOKIE") == "theirs=kept", (path, env.get("HTTP_COOKIE"))


def test_the_bearer_session_token_never_reaches_the_app_or_a_backend(httpd, fakems):
    s, _ = login(httpd, fakems)
    token = s.cookies["msauth"]
    bearer = {"Authorization": "Bearer " + token}
    for path in ("/cgi/whoami.cgi", "/proxied/whoami.cgi"):
        r = requests.get(httpd.url(path), headers=bearer, timeout=30)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
        env = env_of(r.text)
        if path.startswith("/cgi"):
            assert env["REMOTE_USER"] == "alice@contoso.example"
        assert "HTTP_AUTHORIZATION" not in env, (path, "the session token was handed on")
        assert token not in r.text
    # Another Authorization (the app's own) passes untouched next to the session cookie.
    for path in ("/cgi/whoami.cgi", "/proxied/whoami.cgi"):
        r = s.get(httpd.url(path), headers={"Authorization": "Basic YXBwOnNlY3JldA=="},
                  timeout=30)
        assert r.status_code == 200, (path, r.status_code)
        assert env_of(r.text).get("HTTP_AUTHORIZATION") == "Basic YXBwOnNlY3JldA==", path


@pytest.mark.parametrize("path", ["/open/whoami.cgi", "/either/whoami.cgi",
                                  "/openproxied/whoami.cgi"])
def test_nothing_of_the_module_reaches_an_app_whose_rules_need_no_user(httpd, fakems, path):
    """Under AuthType Microsoft a Require met without a user (all granted, an ip rule in a
    RequireAny) skips the session check; the app still never sees the module's cookies, its
    Bearer session token or identity headers the client made up."""
    s, _ = login(httpd, fakems)
    token = s.cookies["msauth"]
    r = requests.get(httpd.url(path), timeout=30, cookies={"msauth": token, "theirs": "kept",
                                                           "msauth_state_x": "y"},
                     headers={"Authorization": "Bearer " + token,
                              "X-MSAuth-Email": "boss@contoso.example",
                              "X_MS_CLIENT_PRINCIPAL_NAME": "boss@contoso.example"})
    assert r.status_code == 200, (r.status_code, r.text[:200])
    env = env_of(r.text)
    assert token not in r.text, "the session token reached the app"
    assert "HTTP_AUTHORIZATION" not in env
    assert env.get("HTTP_COOKIE") == "theirs=kept", env.get("HTTP_COOKIE")
    assert "boss@" not in r.text, "a made-up identity header reached the app"
    # The app's own Authorization still passes where the module takes no Bearer token.
    r = requests.get(httpd.url(path), timeout=30,
                     headers={"Authorization": "Basic YXBwOnNlY3JldA=="})
    assert env_of(r.text).get("HTTP_AUTHORIZATION") == "Basic YXBwOnNlY3JldA==", r.text


# 8. /passwordless: no login CSRF --------------------------------------------------------

def passwordless(httpd, method="POST", token=None, returnto=None, headers=None, session=None):
    fields = {k: v for k, v in (("token", token), ("returnto", returnto)) if v is not None}
    s = session or requests.Session()
    url = httpd.url("/microsoft_auth/passwordless")
    if method == "GET":
        return s.get(url, params=fields, headers=headers, allow_redirects=False, timeout=30)
    return s.request(method, url, data=fields, headers=headers, allow_redirects=False, timeout=30)


def test_passwordless_by_get_is_refused_by_default(httpd, fakems):
    """A link carrying someone's ID token must not sign the browser in as them."""
    token = id_token(httpd, fakems)
    r = passwordless(httpd, "GET", token, "/cgi/whoami.cgi")
    assert r.status_code == 405, (r.status_code, r.headers.get("Location"))
    assert r.headers["Allow"] == "POST"
    assert not r.raw.headers.getlist("Set-Cookie")
    # The token was not spent: the page the app serves can still post it.
    s = requests.Session()
    r = passwordless(httpd, token=token, returnto="/cgi/whoami.cgi",
                     headers={"Origin": httpd.origin}, session=s)
    assert r.status_code == 302 and r.headers["Location"] == "/cgi/whoami.cgi", r.headers
    assert "REMOTE_USER=alice@contoso.example" in s.get(httpd.url("/cgi/whoami.cgi"),
                                                        timeout=30).text


@pytest.mark.parametrize("headers,ok", [
    ({"Origin": "@ORIGIN@"}, True),
    ({"Referer": "@ORIGIN@/welcome?from=app"}, True),
    ({"Referer": "@ORIGIN@/welcome?jwt=@TOKEN@"}, True),  # the success page, as it posts
    ({"Origin": "@ORIGIN@", "Referer": "https://evil.example/"}, True),
    ({}, False),
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "null"}, False),
    ({"Origin": "@ORIGIN@.evil.example"}, False),
    ({"Origin": "https://evil.example", "Referer": "@ORIGIN@/welcome"}, False),
    ({"Referer": "https://evil.example/@ORIGIN@/"}, False),
    ({"Referer": "@ORIGIN@.evil.example/"}, False),
    ({"Referer": "/welcome"}, False),
])
def test_passwordless_post_is_same_origin_only(httpd, fakems, headers, ok):
    token = id_token(httpd, fakems)
    headers = {k: v.replace("@ORIGIN@", httpd.origin).replace("@TOKEN@", token)
               for k, v in headers.items()}
    r = passwordless(httpd, token=token, returnto="/cgi/whoami.cgi", headers=headers)
    assert r.status_code == 302
    if ok:
        assert r.headers["Location"] == "/cgi/whoami.cgi"
        assert len(session_cookies(r)) == 1
        assert token not in httpd.read_file("error.log")  # httpd logs the Referer too
    else:
        assert r.headers["Location"] == "/failed?cause=invalid_request"
        assert not session_cookies(r)
        lines = login_failures(httpd, "invalid_request")
        assert lines and "[msauth:info]" in lines[0] and "origin" in lines[0], lines


def test_passwordless_post_checks_its_body(httpd, fakems):
    origin = {"Origin": httpd.origin}
    r = passwordless(httpd, headers=origin)
    assert r.headers.get("Location") == "/failed?cause=invalid_request"
    r = requests.post(httpd.url("/microsoft_auth/passwordless"), allow_redirects=False,
                      data=json.dumps({"token": id_token(httpd, fakems)}), timeout=30,
                      headers=dict(origin, **{"Content-Type": "application/json"}))
    assert r.status_code == 302 and r.headers["Location"] == "/failed?cause=invalid_request"
    r = passwordless(httpd, token="not.a.token", headers=origin)
    assert r.status_code == 302 and "cause=" in r.headers["Location"]
    assert passwordless(httpd, "PUT", headers=origin).status_code == 405


def test_the_success_pages_referer_keeps_its_token_out_of_the_log(httpd, fakems):
    """httpd appends the Referer to error-log lines; the jwt=id page's URL holds a token."""
    token = id_token(httpd, fakems)
    r = requests.post(httpd.url("/jwt_auth"), json={"provider": "passwordless", "token": token},
                      headers={"Referer": httpd.url("/welcome?jwt=" + token)}, timeout=30)
    assert r.status_code == 200, r.text
    log = httpd.read_file("error.log")
    assert "token_issued" in log and "referer: %s/welcome?jwt=[redacted]" % httpd.origin in log
    assert token not in log


PARA_GET = CONF + """
<MSAuthApp paraget>
    MSAuthPasswordlessGET On
</MSAuthApp>
"""


def test_passwordless_by_get_for_apps_that_opt_in(request, fakems):
    """Para's GET ?token&returnto, for an app that sets MSAuthPasswordlessGET On or
    passwordless_get in the settings store; every other app still refuses it."""
    store = {"apps": dict(STORE["apps"], stored={"passwordless_get": True})}
    h = start(request, fakems, PARA_GET, store, name="paraget")
    request.addfinalizer(h.check_log)
    for appid in ("paraget", "stored"):
        s = requests.Session()
        r = passwordless(h, "GET", id_token(h, fakems, appid), "/cgi/whoami.cgi", session=s)
        assert r.status_code == 302 and r.headers["Location"] == "/cgi/whoami.cgi", (
            appid, r.status_code, r.headers.get("Location"))
        assert [c for c in r.raw.headers.getlist("Set-Cookie")
                if c.startswith("msauth-%s=" % appid)], appid
    r = passwordless(h, "GET", id_token(h, fakems), "/cgi/whoami.cgi")
    assert r.status_code == 405 and r.headers["Allow"] == "POST"
    r = requests.get(h.url("/microsoft_auth/_settings/stored/passwordless_get"),
                     headers={"Authorization": "Bearer " + ADMIN}, timeout=10)
    assert r.json() == {"value": True}


# 9. Scripted clients: one cookie jar, login after login -----------------------------------

def curl(jar, url, *extra):
    """curl as synthetic monitoring runs it: one cookie jar read and written every time."""
    p = subprocess.run([CURL, "-sS", "-o", "/dev/stdout", "-c", jar, "-b", jar,
                        "-H", "Accept: text/html", "-w", "\n%{http_code} %{redirect_url}",
                        *extra, url], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    body, _, tail = p.stdout.rpartition("\n")
    status, _, location = tail.partition(" ")
    return int(status), location, body


def jar_cookies(jar):
    names = []
    with open(jar) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 7:
                names.append(fields[5])
    return names


def test_sixty_curl_logins_in_one_cookie_jar(httpd, fakems):
    jar = os.path.join(tempfile.mkdtemp(prefix="msauth-jar-"), "jar")
    reached, piled = 0, 0
    for i in range(60):
        status, location, _ = curl(jar, httpd.url("/cgi/whoami.cgi"))
        assert status == 302 and location.startswith(fakems.base), (i, status, location)
        # fakems signs alice in without its page, as a scripted Microsoft login would.
        status, back, _ = curl(jar, location + "&login_hint=alice&fakems_auto=1")
        assert status == 302 and back.startswith(httpd.origin + "/microsoft_auth?"), (i, back)
        status, location, _ = curl(jar, back)
        assert status == 302 and location == httpd.url("/cgi/whoami.cgi"), (
            "login %d: %s %s; jar: %s" % (i + 1, status, location, jar_cookies(jar)))
        status, _, body = curl(jar, httpd.url("/cgi/whoami.cgi"))
        assert status == 200 and "REMOTE_USER=alice@contoso.example" in body, (i, status)
        reached += 1
        status, _, _ = curl(jar, httpd.url("/microsoft_auth/logout"))
        assert status == 302
        piled = max(piled, len([n for n in jar_cookies(jar) if n.startswith("msauth_state_")]))
    assert reached == 60
    assert piled == 0, "%d state cookies left in the jar after a finished login" % piled


def test_every_answer_clears_cookies_last(httpd, fakems):
    """The order curl 7.88 needs: sets first, then clears, in each answer."""
    def order(r):
        return ["clear" if "Max-Age=0" in c else "set" for c in r.raw.headers.getlist("Set-Cookie")]
    s = requests.Session()
    for i in range(5):
        s.cookies.set("msauth_state_stale%d" % i, "left-over")
    start = s.get(httpd.url("/microsoft_auth/login"), allow_redirects=False, timeout=30)
    assert order(start) == ["set", "clear", "clear"]  # four pending logins kept at most
    r = s.get(fakems.pick_user(start.headers["Location"]), allow_redirects=False, timeout=30)
    assert r.status_code == 302 and order(r) == ["set", "clear"]  # session, then the state
