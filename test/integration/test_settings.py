"""Runtime app settings: the settings API and its store, against a real httpd."""

import json
import os
import pwd
import signal
import subprocess
import threading
import time

import pytest
import requests

from msauth import CLIENT_ID, CLIENT_SECRET, Httpd, query_of, seed_authorize_url, FAKEMS_APP

ADMIN = "settings-admin-key-0123456789-abcdefgh"
APP_KEY = "stored-app-signing-key-0123456789-abcd"
CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninFailure /?cause=?
MSAuthSettingsFile @DIR@/store/settings.json
MSAuthAdminKey %s
<MSAuthApp configured>
    MSAuthSigninSuccess /configured?jwt=id
</MSAuthApp>
Alias /stored/ @DIR@/htdocs/cgi/
<Location /stored/>
    AuthType Microsoft
    MSAuthApp runtime
    Require valid-user
</Location>
""" % ADMIN


def make(request, fakems, name="settings", before_start=None):
    h = Httpd(CONF, fakems, name=name)
    store = os.path.join(h.dir, "store")
    os.makedirs(store)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(store, www.pw_uid, www.pw_gid)
    if before_start:
        before_start(os.path.join(store, "settings.json"))
    h.start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture
def httpd(request, fakems):
    h = make(request, fakems)
    request.addfinalizer(h.check_log)  # runs before the cleanup registered in make()
    return h


def admin(httpd, method, path="", body=None, key=ADMIN, raw=None):
    headers = {"Authorization": "Bearer " + key} if key else {}
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, httpd.url("/microsoft_auth/_settings" + path), data=data,
                            headers=headers, timeout=10)


APP = {"ms_app_id": CLIENT_ID, "ms_secret": CLIENT_SECRET, "signin_success": "/landed?jwt=id",
       "signin_failure": "/runtime-failed?cause=?", "session_timeout": 3600,
       "app_secret_key": APP_KEY}


def login(fakems, httpd, appid):
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, appid))
    return requests.get(back, allow_redirects=False, timeout=10)


def wait_until(fn, seconds=3.0):
    """What fn first gives that is true, within `seconds`; else its last answer."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    return fn()


def landing(fakems, httpd, appid, prefix, logins=1):
    """The last of `logins` logins in a row when every one lands on `prefix`, else None.

    Each child looks at the file on its own (five times a second), so a login served by
    one child that sees a change says nothing of the next one's child."""
    r = None
    for _ in range(logins):
        r = login(fakems, httpd, appid)
        if not r.headers["Location"].startswith(prefix):
            return None
    return r


def test_create_login_change_delete_without_restart(fakems, httpd):
    r = login(fakems, httpd, "runtime")
    assert r.headers["Location"] == "/?cause=unknown_app"
    r = admin(httpd, "PUT", "/runtime", APP)
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["ms_secret"] == "********" and stored["app_secret_key"] == "********"
    assert stored["ms_app_id"] == CLIENT_ID and stored["session_timeout"] == 3600
    # Every child sees it within its next looks: soon, logins in a row all land.
    r = wait_until(lambda: landing(fakems, httpd, "runtime", "/landed?jwt=", logins=6), 2.5)
    assert r is not None
    assert "msauth-runtime" in r.cookies
    # Change the success URL: the next login lands there.
    r = admin(httpd, "PUT", "/runtime/signin_success", {"value": "/elsewhere?jwt=id"})
    assert r.status_code == 200 and r.json()["signin_success"] == "/elsewhere?jwt=id"
    assert wait_until(lambda: landing(fakems, httpd, "runtime", "/elsewhere?jwt=", logins=6), 2.5)
    # The protected location of a stored app works.
    s = requests.Session()
    s.get(fakems.pick_user(seed_authorize_url(fakems, httpd, "runtime")), allow_redirects=False,
          timeout=10)
    assert "REMOTE_USER=alice@contoso.example" in s.get(httpd.url("/stored/whoami.cgi"),
                                                        timeout=10).text
    # Delete it: logins fail with unknown_app.
    r = admin(httpd, "DELETE", "/runtime")
    assert r.status_code == 200
    assert wait_until(lambda: login(fakems, httpd, "runtime").headers["Location"]
                      == "/?cause=unknown_app", 2.5)


def test_read_api(fakems, httpd):
    assert admin(httpd, "GET").json() == {"apps": []}
    admin(httpd, "PUT", "/b", APP)
    admin(httpd, "PUT", "/a", dict(APP, ms_tenant_id="organizations"))
    assert admin(httpd, "GET").json() == {"apps": ["a", "b"]}
    assert admin(httpd, "GET", "/a").json()["ms_tenant_id"] == "organizations"
    assert admin(httpd, "GET", "/a/ms_tenant_id").json() == {"value": "organizations"}
    assert admin(httpd, "GET", "/a/ms_secret").json() == {"value": "********"}
    assert admin(httpd, "GET", "/nope").status_code == 404
    assert admin(httpd, "GET", "/a/auth_cookie").status_code == 404
    r = admin(httpd, "DELETE", "/a/ms_tenant_id")
    assert r.status_code == 200 and "ms_tenant_id" not in r.json()
    assert admin(httpd, "DELETE", "/a/ms_tenant_id").status_code == 404
    assert admin(httpd, "DELETE", "/nope").status_code == 404


def test_stored_app_overrides_configured_one(fakems, httpd):
    assert login(fakems, httpd, "configured").headers["Location"].startswith("/configured?jwt=")
    admin(httpd, "PUT", "/configured", APP)
    assert wait_until(lambda: login(fakems, httpd, "configured").headers["Location"]
                      .startswith("/landed?jwt="), 2.5)
    admin(httpd, "DELETE", "/configured")
    assert wait_until(lambda: login(fakems, httpd, "configured").headers["Location"]
                      .startswith("/configured?jwt="), 2.5)


@pytest.mark.parametrize("body,key", [
    (dict(APP, colour="blue"), "colour"),
    (dict(APP, signin_success="javascript:alert(1)"), "signin_success"),
    (dict(APP, signin_failure="//evil.example/"), "signin_failure"),
    (dict(APP, app_secret_key="short"), "app_secret_key"),
    (dict(APP, session_timeout="soon"), "session_timeout"),
    (dict(APP, session_timeout=5), "session_timeout"),
    (dict(APP, ms_tenant_id="not a tenant"), "ms_tenant_id"),
    (dict(APP, auth_cookie="bad;name"), "auth_cookie"),
    (dict(APP, ms_app_id=""), "ms_app_id"),
    (dict(APP, ms_secret=42), "ms_secret"),
    (dict(APP, passwordless_get="On"), "passwordless_get"),
])
def test_bad_values_are_refused_and_store_unchanged(httpd, body, key):
    admin(httpd, "PUT", "/keep", APP)
    before = open(os.path.join(httpd.dir, "store", "settings.json")).read()
    r = admin(httpd, "PUT", "/keep", body)
    assert r.status_code == 400, r.text
    assert key in r.json()["message"]
    assert open(os.path.join(httpd.dir, "store", "settings.json")).read() == before
    r = admin(httpd, "PUT", "/keep/" + key, {"value": body.get(key, "x")})
    assert r.status_code == 400
    assert open(os.path.join(httpd.dir, "store", "settings.json")).read() == before


@pytest.mark.parametrize("raw", ["", "not json", "[]", '{"ms_app_id": "x"', '"text"'])
def test_bad_bodies(httpd, raw):
    r = admin(httpd, "PUT", "/x", raw=raw)
    assert r.status_code == 400 and r.json()["code"] == 400


def test_incomplete_app_refused(httpd, request, fakems):
    # The root app gives a client id, secret and key: a stored app may set none of them.
    assert admin(httpd, "PUT", "/minimal", {"signin_success": "/m"}).status_code == 200


@pytest.mark.parametrize("key", [None, "wrong-admin-key-0123456789-abcdefghij", ADMIN + "x",
                                 ADMIN[:-1]])
def test_wrong_or_missing_admin_key(httpd, key):
    httpd.expect_warn(r"msauth: settings_forbidden: (GET|PUT|DELETE) /microsoft_auth/_settings"
                      r"[^ ]* refused: %s admin key" % ("wrong" if key else "no"))
    for method, path in (("GET", ""), ("PUT", "/x"), ("DELETE", "/x"), ("GET", "/x/ms_secret")):
        r = admin(httpd, method, path, APP if method == "PUT" else None, key=key)
        assert r.status_code == 403
    log = httpd.read_file("error.log")
    assert "settings_forbidden" in log
    if key:
        assert key not in log


def test_without_store_settings_api_is_404(request, fakems):
    conf = CONF.replace("MSAuthSettingsFile @DIR@/store/settings.json\n", "")
    conf = conf.replace("MSAuthApp runtime", "MSAuthApp configured")
    h = Httpd(conf, fakems, name="nostore").start()
    request.addfinalizer(h.cleanup)
    r = requests.get(h.url("/microsoft_auth/_settings"),
                     headers={"Authorization": "Bearer " + ADMIN}, timeout=10)
    assert r.status_code == 404


def test_file_is_0600_and_valid_json(httpd):
    admin(httpd, "PUT", "/a", APP)
    path = os.path.join(httpd.dir, "store", "settings.json")
    assert os.stat(path).st_mode & 0o777 == 0o600
    doc = json.load(open(path))
    assert doc["apps"]["a"]["ms_secret"] == CLIENT_SECRET


def test_concurrent_puts_leave_one_write_whole(httpd):
    results = []

    def put(i):
        body = dict(APP, signin_success="/writer-%d" % i, session_timeout=3600 + i)
        results.append(admin(httpd, "PUT", "/race", body).status_code)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 16
    doc = json.load(open(os.path.join(httpd.dir, "store", "settings.json")))
    app = doc["apps"]["race"]
    i = int(app["signin_success"].split("-")[1])
    assert app["session_timeout"] == 3600 + i  # one write, whole
    assert not [f for f in os.listdir(os.path.join(httpd.dir, "store"))
                if f.startswith("settings.json.") and f != "settings.json.lock"]


def test_kill_9_of_children_mid_write_never_truncates(httpd):
    stop = time.time() + 3
    errors = []

    def writer(n):
        i = 0
        while time.time() < stop:
            i += 1
            try:
                admin(httpd, "PUT", "/k%d" % n, dict(APP, signin_success="/w%d" % i))
            except requests.RequestException as e:
                errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    killed = 0
    while time.time() < stop:
        kids = subprocess.run(["pgrep", "-P", str(httpd.proc.pid)], capture_output=True,
                              text=True).stdout.split()
        for pid in kids:
            try:
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.3)
    for t in threads:
        t.join()
    assert killed > 0
    path = os.path.join(httpd.dir, "store", "settings.json")
    doc = json.load(open(path))  # never a torn file
    for app in doc["apps"].values():
        assert app["ms_app_id"] == CLIENT_ID
    httpd.expect_error(r"AH00052|child pid \d+ exit signal")
    httpd.expect_error(r"AH01239: cgid daemon process died")  # killed with the others
    httpd.expect_warn(r"AH10392: children are killed successively")  # the MPM notices


def test_corrupt_file_reported_and_last_good_kept(request, fakems):
    def seed(path):
        with open(path, "w") as f:
            json.dump({"apps": {"runtime": APP}}, f)
        if os.geteuid() == 0:
            www = pwd.getpwnam("www-data")
            os.chown(path, www.pw_uid, www.pw_gid)

    h = make(request, fakems, "corrupt", seed)
    assert login(fakems, h, "runtime").headers["Location"].startswith("/landed?jwt=")
    path = os.path.join(h.dir, "store", "settings.json")
    with open(path, "w") as f:
        f.write('{"apps": {"runtime": {"ms_app_id": "x",,}}}\n')
    time.sleep(1.2)
    # The last good settings stay in service.
    assert login(fakems, h, "runtime").headers["Location"].startswith("/landed?jwt=")
    line = h.wait_log(r"settings_damaged")[0]
    assert path in line and "line 1, column" in line, line
    # Writes are refused until it is fixed by hand.
    assert admin(h, "PUT", "/other", APP).status_code == 503
    h.expect_error(r"settings_damaged|settings_write")
    h.check_log()


def test_corrupt_file_at_startup_is_reported(request, fakems):
    def seed(path):
        with open(path, "w") as f:
            f.write('{"apps": [1, 2\n')

    h = make(request, fakems, "corrupt-start", seed)
    line = h.wait_log(r"settings_damaged")[0]
    assert "settings.json" in line and "line 2" in line, line
    h.expect_error(r"settings_damaged")
    h.check_log()
