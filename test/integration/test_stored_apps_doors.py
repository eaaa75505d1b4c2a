"""Apps from the settings store, as their settings change while requests run: a long
request never keeps a change out of service, a stored app's cookie (another port's, or
renamed since) never reaches an app, churn breaks nothing; and .htaccess, <If>,
MSAuthUnauthAction pass, HEAD and OPTIONS under AuthType Microsoft."""

import json
import os
import pwd
import socket
import threading
import time
import urllib.parse

import requests

from msauth import CLIENT_ID, CLIENT_SECRET, FABRIKAM_TID, FAKEMS_APP, Httpd, free_port
from test_internal_paths import API, NAV, Browser, env_of

ADMIN = "stored-doors-admin-key-0123456789-abcd"
APP_KEY = "stored-app-signing-key-0123456789-abcd"
APP = {"ms_app_id": CLIENT_ID, "ms_secret": CLIENT_SECRET, "signin_success": "/",
       "signin_failure": "/?cause=?", "session_timeout": 3600, "app_secret_key": APP_KEY}

SLOW_CGI = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\necho start\nsleep %d\necho done\n"


def write_cgi(h, name, body):
    path = os.path.join(h.htdocs, "cgi", name)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o755)


def own_dir(h, sub):
    """A directory the children (www-data) may write: a settings store's."""
    d = os.path.join(h.dir, sub)
    os.makedirs(d, exist_ok=True)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(d, www.pw_uid, www.pw_gid)
    return d


def seed_store(h, sub, apps):
    path = os.path.join(own_dir(h, sub), "settings.json")
    with open(path, "w") as f:
        json.dump({"apps": apps}, f)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(path, www.pw_uid, www.pw_gid)
    return path


def admin(h, method, path="", body=None, port=None):
    base = "http://127.0.0.1:%d" % (port or h.port)
    return requests.request(method, base + "/microsoft_auth/_settings" + path,
                            data=json.dumps(body) if body is not None else None,
                            headers={"Authorization": "Bearer " + ADMIN}, timeout=10)


def launch(request, conf, fakems, prepare=None, modules=(), name="atk10c"):
    h = Httpd(conf, fakems, modules=modules, name=name)
    if prepare:
        prepare(h)
    h.start()
    request.addfinalizer(h.cleanup)
    return h


# 1. A long request holds a snapshot: the watcher cannot publish the change after next ----

ONE_CHILD = """StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
MinSpareThreads 1
MaxSpareThreads 50
"""

SNAPSHOT_CONF = ONE_CHILD + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSettingsFile @DIR@/store/settings.json
MSAuthAdminKey """ + ADMIN + """
Alias /stored/ @DIR@/htdocs/cgi/
<Location /stored/>
    AuthType Microsoft
    MSAuthApp runtime
    Require valid-user
</Location>
Alias /open/ @DIR@/htdocs/cgi/
<Location /open/>
    AuthType Microsoft
    Require all granted
</Location>
"""


def test_a_long_request_does_not_keep_a_changed_tenant_rule_out_of_service(request, fakems):
    """INTERFACE 7: every server process serves the new settings within a second, however
    long other requests run. A request holds the snapshot it started with until its pool
    goes (here an anonymous GET of a slow CGI under `Require all granted`; in life a
    download to a slow reader, a long poll, SSE). Sequence: alice (contoso) signs in to
    stored app `runtime` (tenant common); the slow request starts; the admin PUTs
    signin_success, then ms_tenant_id=<fabrikam> to shut contoso out: 3 s later alice's
    session no longer opens /stored/ (401), while the slow request still runs."""
    def prepare(h):
        seed_store(h, "store", {"runtime": APP})
        write_cgi(h, "slow.cgi", SLOW_CGI % 12)
    h = launch(request, SNAPSHOT_CONF, fakems, prepare, name="atk-snap")
    b = Browser(h, fakems)
    b.login("alice", "/stored/whoami.cgi", cookie="msauth-runtime")
    r = b.get("/stored/whoami.cgi", API)
    assert r.status_code == 200 and "alice" in r.text, r.text
    slow = {}
    # A cookie of its own: the request reads the settings to find the module's cookies.
    t = threading.Thread(target=lambda: slow.setdefault(
        "r", requests.get(h.url("/open/slow.cgi"), cookies={"theirs": "1"}, timeout=30)))
    t.start()
    try:
        time.sleep(0.7)
        assert admin(h, "PUT", "/runtime/signin_success", {"value": "/x"}).status_code == 200
        time.sleep(2.2)
        assert admin(h, "PUT", "/runtime/ms_tenant_id", {"value": FABRIKAM_TID}).status_code \
            == 200
        time.sleep(3.0)
        r = b.get("/stored/whoami.cgi", API)
        late = r.status_code
    finally:
        t.join(40)
    # Once the slow request is gone, the rule arrives: the check below is the control.
    deadline = time.time() + 5
    while time.time() < deadline and b.get("/stored/whoami.cgi", API).status_code == 200:
        time.sleep(0.2)
    assert b.get("/stored/whoami.cgi", API).status_code == 401
    h.check_log()
    assert late == 401, "3 s after the tenant rule changed, alice still got %d" % late


# 2. A stored app's custom cookie name, seen from another port of the same host ----------

PORTS_STORE_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Listen 127.0.0.1:{other}
<VirtualHost 127.0.0.1:@PORT@>
    ServerName same.test
    Alias /cgi/ @DIR@/htdocs/cgi/
    <Location /cgi/>
        AuthType Microsoft
        Require valid-user
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:{other}>
    ServerName same.test
    MSAuthSettingsFile @DIR@/store/settings.json
    MSAuthAdminKey """ + ADMIN + """
    Alias /shop/ @DIR@/htdocs/cgi/
    <Location /shop/>
        AuthType Microsoft
        MSAuthApp shop
        Require valid-user
    </Location>
</VirtualHost>
"""


def _other_port(b, port):
    b.httpd = type("P", (), {"url": staticmethod(
        lambda path: "http://127.0.0.1:%d%s" % (port, path))})()
    return b


def test_a_stored_apps_cookie_from_another_port_never_reaches_the_app(request, fakems):
    """same.test:P1 (no settings store) and same.test:P2 (a settings store whose app `shop`
    sets `auth_cookie: shopsession`). Browsers send a host's cookies to all its ports, so
    alice's shopsession cookie from P2 reaches P1 as well. The fix for configured apps
    (test_internal_paths' test_another_ports_session_cookie_never_reaches_the_app) strips
    every configured app's cookie name on every virtual host, but stored names are only
    looked up in the request's own virtual host's store: P1's CGI (MSAuthStripCookie On)
    reads alice's live `shop` session token in HTTP_COOKIE (usable as a Bearer token at
    P2). Secure: the cookie is stripped as the configured names are."""
    other = free_port()
    h = launch(request, PORTS_STORE_CONF.format(other=other), fakems,
               lambda h: seed_store(h, "store", {"shop": dict(APP, auth_cookie="shopsession")}),
               name="atk-storeport")
    p2 = _other_port(Browser(h, fakems, "same.test:%d" % other), other)
    tok = p2.login("alice", "/shop/whoami.cgi", cookie="shopsession")
    r = p2.get("/shop/whoami.cgi", API)
    assert r.status_code == 200 and tok not in r.text, r.text  # its own vhost strips it
    p1 = Browser(h, fakems, "same.test:%d" % h.port)
    p1.login("alice", "/cgi/whoami.cgi")
    r = p1.get("/cgi/whoami.cgi", API, cookies={"msauth": p1.s.cookies.get("msauth"),
                                               "shopsession": tok})
    h.check_log()
    assert r.status_code == 200, r.status_code
    leaked = [l.split("=", 1)[0] for l in r.text.splitlines() if tok in l or "shopsession" in l]
    assert not leaked, leaked


# 3. A stored app's cookie renamed: the old cookie still holds a live session -------------

RENAME_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSettingsFile @DIR@/store/settings.json
MSAuthAdminKey """ + ADMIN + """
Alias /shop/ @DIR@/htdocs/cgi/
<Location /shop/>
    AuthType Microsoft
    MSAuthApp shop
    Require valid-user
</Location>
Alias /open/ @DIR@/htdocs/cgi/
<Location /open/>
    AuthType Microsoft
    Require all granted
</Location>
"""


def test_a_renamed_stored_cookie_still_never_reaches_the_app(request, fakems):
    """Stored app `shop` with auth_cookie `shopsession`; alice signs in. The admin renames
    the cookie (PUT /_settings/shop/auth_cookie {"value":"shop2"}). Browsers keep sending
    shopsession=<token> until it expires (Max-Age = session_timeout), and that token is
    still a live session of `shop` (same appid, client id, key: GET /shop/ with it as
    Bearer gives 200). MSAuthStripCookie only knows the names the snapshot lists now, so
    every app under AuthType Microsoft (here /open/, Require all granted) reads alice's live
    token in HTTP_COOKIE. Secure: a cookie that carries one of the module's tokens is the
    module's cookie whatever the store calls it today (or a rename is refused / the old
    name kept until the old sessions expire)."""
    h = launch(request, RENAME_CONF, fakems,
               lambda h: seed_store(h, "store", {"shop": dict(APP, auth_cookie="shopsession")}),
               name="atk-rename")
    b = Browser(h, fakems)
    tok = b.login("alice", "/shop/whoami.cgi", cookie="shopsession")
    assert tok not in b.get("/open/whoami.cgi", API).text  # stripped while the name is listed
    assert admin(h, "PUT", "/shop/auth_cookie", {"value": "shop2"}).status_code == 200
    time.sleep(2.5)
    bearer = requests.get(h.url("/shop/whoami.cgi"), timeout=30,
                          headers={"Authorization": "Bearer " + tok, **API})
    assert bearer.status_code == 200, bearer.status_code  # the old cookie's token lives on
    r = b.get("/open/whoami.cgi", API)
    h.check_log()
    assert r.status_code == 200
    leaked = [l.split("=", 1)[0] for l in r.text.splitlines() if tok in l]
    assert not leaked, leaked


# 4. Stored apps churned through the settings API while requests run ----------------------

def test_stored_apps_churned_while_requests_run(request, fakems):
    """The snapshot registry under concurrent churn: four threads GET /stored/ (alice's
    session of stored app `runtime`) and /open/ while the admin PUTs and DELETEs `runtime`
    40 times (10 a second). No child dies, no 500 (a deleted app's location answers 503),
    and every answer is alice's 200 or a refusal; once `runtime` is deleted for good her
    session opens nothing within about a second."""
    def prepare(h):
        seed_store(h, "store", {"runtime": APP})
    h = launch(request, SNAPSHOT_CONF.replace(ONE_CHILD, ""), fakems, prepare, name="atk-churn")
    b = Browser(h, fakems)
    tok = b.login("alice", "/stored/whoami.cgi", cookie="msauth-runtime")
    stop = threading.Event()
    seen = []

    def hammer():
        s = requests.Session()
        while not stop.is_set():
            for path in ("/stored/whoami.cgi", "/open/whoami.cgi"):
                r = s.get(h.url(path), headers=API, cookies={"msauth-runtime": tok}, timeout=30)
                seen.append((path, r.status_code, "alice" in r.text))
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            if i % 2:
                admin(h, "DELETE", "/runtime")
            else:
                admin(h, "PUT", "/runtime", dict(APP, signin_success="/v%d" % i))
            time.sleep(0.1)
        admin(h, "DELETE", "/runtime")
        time.sleep(2.5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    r = b.get("/stored/whoami.cgi", API)
    h.expect_error(r"app 'runtime' is not configured")  # the deleted app's location: 503
    log = h.read_file("error.log")
    assert "exit signal" not in log and "AH00052" not in log, log[-2000:]
    codes = {c for p, c, _ in seen}
    assert codes <= {200, 401, 503}, codes
    assert all(not alice for p, c, alice in seen if c != 200)
    assert all(not alice for p, c, alice in seen if p.startswith("/open/"))
    assert r.status_code != 200 and "alice" not in r.text
    h.check_log()


# 5. Doors not tried before: .htaccess, <If>, pass with forged headers, HEAD, OPTIONS -----

DOORS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
<Directory @DIR@/htdocs/ht>
    AllowOverride AuthConfig
    Options +ExecCGI
    AddHandler cgi-script .cgi
</Directory>
Alias /cond/ @DIR@/htdocs/cgi/
<Location /cond/>
    <If "%{QUERY_STRING} =~ /guarded/">
        AuthType Microsoft
        MSAuthPassClaims both
        Require valid-user
    </If>
</Location>
<Location /passing/>
    AuthType Microsoft
    MSAuthUnauthAction pass
    MSAuthPassClaims headers
    MSAuthEasyAuthHeaders On
    Require all granted
    ProxyPass http://127.0.0.1:@PORT@/echo/
</Location>
Alias /echo/ @DIR@/htdocs/cgi/
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
"""

HTACCESS = """AuthType Microsoft
MSAuthPassClaims both
MSAuthEasyAuthHeaders On
Require valid-user
"""

FORGED = {"X-MSAuth-Email": "boss@contoso.example", "X-MS-CLIENT-PRINCIPAL-NAME": "boss",
          "X-MSAuth-Id": "boss", "x_msauth_tid": "boss", "X-Ms-Client-Principal": "Ym9zcw=="}


def _htaccess(h):
    d = os.path.join(h.htdocs, "ht")
    os.makedirs(d)
    with open(os.path.join(d, ".htaccess"), "w") as f:
        f.write(HTACCESS)
    with open(os.path.join(h.htdocs, "cgi", "whoami.cgi")) as src, \
            open(os.path.join(d, "whoami.cgi"), "w") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(d, "whoami.cgi"), 0o755)


def test_htaccess_if_pass_head_and_options_hold(request, fakems):
    """AuthType Microsoft from an .htaccess (AllowOverride
    AuthConfig) and from an <If> block: anonymous gets 401, alice gets in with her own
    identity and no forged header, no session cookie reaches the CGI. MSAuthUnauthAction
    pass with MSAuthPassClaims headers and Easy Auth, proxied: forged X-MSAuth-* and
    X-MS-CLIENT-PRINCIPAL* (any case, `_` form) never reach the backend, anonymous or
    signed in. HEAD and OPTIONS of a protected CGI are refused like GET without a session
    (HEAD navigation: 302 to Microsoft; OPTIONS: 401) and answer alice."""
    h = launch(request, DOORS_CONF, fakems, _htaccess, modules=["proxy", "proxy_http"],
               name="atk-doors")
    b = Browser(h, fakems)
    tok = b.login("alice", "/cgi/whoami.cgi")
    for path in ("/ht/whoami.cgi", "/cond/whoami.cgi?guarded"):
        assert requests.get(h.url(path), headers={**API, **FORGED}, timeout=30).status_code \
            == 401, path
        r = b.get(path, {**API, **FORGED})
        assert r.status_code == 200, (path, r.status_code)
        env = env_of(r.text)
        assert env.get("REMOTE_USER") == "alice@contoso.example", (path, r.text)
        assert "boss" not in r.text and tok not in r.text, (path, r.text)
    assert "AUTH_TYPE" not in requests.get(h.url("/cond/whoami.cgi"), timeout=30).text
    for who in (None, b):
        r = (who.get if who else lambda p, hd: requests.get(h.url(p), headers=hd, timeout=30))(
            "/passing/whoami.cgi", {**API, **FORGED})
        assert r.status_code == 200, r.status_code
        assert "boss" not in r.text and "Ym9zcw" not in r.text, r.text
        assert tok not in r.text
    r = requests.head(h.url("/cgi/whoami.cgi"), headers=NAV, timeout=30, allow_redirects=False)
    assert r.status_code == 302 and "/oauth2/v2.0/authorize" in r.headers["Location"]
    r = requests.options(h.url("/cgi/whoami.cgi"), timeout=30)
    assert r.status_code == 401, r.status_code
    r = requests.head(h.url("/cgi/whoami.cgi"), cookies={"msauth": tok}, timeout=30)
    assert r.status_code == 200
    h.check_log()
