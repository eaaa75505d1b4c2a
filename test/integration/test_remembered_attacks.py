"""Trying to get a revoked session past the remembered verdicts (README "Remembered
verdicts, and the bound") and the revocation records behind them.

Each test revokes a session the way a user or an administrator would, then checks that
no server lets it in again: at once on the server that wrote the revocation, within
REVOCATION_BOUND on the others sharing the store, and for as long as the token lives.
"""

import json
import os
import pwd
import subprocess
import time

import pytest
import requests

from msauth import (CLIENT_ID, CLIENT_SECRET, FAKEMS_APP, REVOCATION_BOUND, Httpd, jwt_parts,
                    seed_authorize_url)
from test_cluster import (SLACK, WARM, bearer_get, id_token, post, settled, two_servers)


def codes_of(httpd, jwt, n=WARM):
    return [bearer_get(httpd, "/api/whoami.cgi", jwt).status_code for _ in range(n)]


# --- two servers, one redis that takes nothing but the revocation records -----------------

def redis_cli(store, *args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(store.port)] + list(args),
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture
def redis_pair(request, fakems):
    return two_servers(request, fakems, "redis", name="attack")


def test_a_logout_needs_no_record_but_its_own_to_be_honoured_by_the_other_server(
        fakems, redis_pair):
    """A remembered verdict rests on nothing but the token's own records, asked again
    within the bound: a logout that could write its revocation record and nothing else
    (redis refusing every other key; in production a store reaching maxmemory or a
    connection breaking after that write) is honoured by the other server within the
    bound, and for as long as the token lives."""
    store, a, b = redis_pair
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    settled(b, a, jwt)
    # Writes to the generation record fail; the revocation records still go in.
    redis_cli(store, "ACL", "SETUSER", "default", "resetkeys", "%R~*", "%W~msauth:revoked*",
              "%W~msauth:epoch", "%W~msauth:idjti*")
    a.expect_error(r"msauth: cache_error")
    try:
        r = requests.get(a.url("/microsoft_auth/logout"), cookies={"msauth": jwt},
                         allow_redirects=False, timeout=10)
        first = r.status_code
    finally:
        redis_cli(store, "ACL", "SETUSER", "default", "resetkeys", "~*")
    # The store works again; the user (or the app) logs out again until it says done.
    for _ in range(10):
        r = requests.get(a.url("/microsoft_auth/logout"), cookies={"msauth": jwt},
                         allow_redirects=False, timeout=10)
        if r.status_code == 302:
            break
        time.sleep(0.2)
    assert r.status_code == 302, r.status_code
    done = time.time()
    assert set(codes_of(a, jwt)) == {401}
    # The logout said done: within the bound, the other server refuses the token too.
    time.sleep(REVOCATION_BOUND + SLACK)
    seen = codes_of(b, jwt)
    # and keeps refusing it.
    time.sleep(REVOCATION_BOUND)
    seen += codes_of(b, jwt)
    assert set(seen) == {401}, (
        "first logout answered %d, the last 302; %.1f s later the other server still "
        "serves a remembered live verdict: %s" % (first, time.time() - done, sorted(set(seen))))


# --- one server, a stored app: DELETE /jwt_auth after the session timeout was shortened --

ADMIN = "settings-admin-key-0123456789-abcdefgh"
APP_KEY = "stored-app-signing-key-0123456789-abcd"
SETTINGS_CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninFailure /?cause=?
MSAuthClockSkew 1
MSAuthSettingsFile @DIR@/store/settings.json
MSAuthAdminKey %s
Alias /stored/ @DIR@/htdocs/cgi/
<Location /stored/>
    AuthType Microsoft
    MSAuthApp runtime
    Require valid-user
</Location>
""" % ADMIN

APP = {"ms_app_id": CLIENT_ID, "ms_secret": CLIENT_SECRET, "signin_success": "/landed",
       "signin_failure": "/runtime-failed?cause=?", "session_timeout": 3600,
       "app_secret_key": APP_KEY}


def admin(httpd, method, path, body=None):
    return requests.request(method, httpd.url("/microsoft_auth/_settings" + path), json=body,
                            headers={"Authorization": "Bearer " + ADMIN}, timeout=10)


def stored_login(fakems, httpd):
    """A login to the stored app: its session token (from the cookie), or None."""
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "runtime"))
    r = requests.get(back, allow_redirects=False, timeout=10)
    return r.cookies.get("msauth-runtime")


def lifetime(jwt):
    claims = jwt_parts(jwt)[1]
    return claims["exp"] - claims["iat"]


def until(fn, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    return fn()


@pytest.fixture
def settings_httpd(request, fakems):
    h = Httpd(SETTINGS_CONF, fakems, name="attack-settings")
    store = os.path.join(h.dir, "store")
    os.makedirs(store)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(store, www.pw_uid, www.pw_gid)
    h.start()
    request.addfinalizer(h.cleanup)
    yield h
    h.check_log()


def test_delete_jwt_auth_outlives_a_shortened_session_timeout(fakems, settings_httpd):
    """DELETE /jwt_auth keeps the user's revocation time for the app's *current*
    MSAuthSessionTimeout (+ skew), but a token issued before the timeout was shortened
    lives for the old one: once the record expires, the revoked token is let in again."""
    h = settings_httpd
    assert admin(h, "PUT", "/runtime", APP).status_code == 200
    old = until(lambda: stored_login(fakems, h), 3)
    assert old and lifetime(old) == 3600
    cookie = {"msauth-runtime": old}
    # A child that has not read the settings since the PUT (at most a second) refuses the
    # app it does not know yet, and says so.
    h.expect_error(r"app 'runtime' is not configured in this server")
    assert until(lambda: requests.get(h.url("/stored/whoami.cgi"), cookies=cookie,
                                      timeout=10).status_code == 200, 3)
    # The administrator shortens the app's sessions (the minimum, a minute).
    r = admin(h, "PUT", "/runtime/session_timeout", {"value": 60})
    assert r.status_code == 200, r.text
    assert until(lambda: (lambda t: t and lifetime(t) == 60)(stored_login(fakems, h)), 3)
    # The user revokes all their sessions with the old (hour-long) token.
    r = requests.delete(h.url("/jwt_auth"), headers={"Authorization": "Bearer " + old},
                        timeout=10)
    assert r.status_code == 200, r.text
    revoked = time.time()
    assert requests.get(h.url("/stored/whoami.cgi"), cookies=cookie,
                        timeout=10).status_code == 401
    # A bounded wait past the new timeout + skew: the old token still has ~58 minutes.
    time.sleep(max(0.0, revoked + 60 + 1 + 3 - time.time()))
    codes = [requests.get(h.url("/stored/whoami.cgi"), cookies=cookie, timeout=10).status_code
             for _ in range(5)]
    assert 200 not in codes, (
        "a token revoked by DELETE /jwt_auth is accepted again %.0f s later (%s): the "
        "revocation was kept for the shortened session timeout, the token lives for the "
        "old one (exp in %.0f s)" % (time.time() - revoked, codes,
                                     jwt_parts(old)[1]["exp"] - time.time()))


# --- two servers: a refresh inside the bound mints a session the revocation never ends ---

@pytest.fixture(params=["memcache", "redis"])
def pair(request, fakems):
    return two_servers(request, fakems, request.param, name="attack")


def test_a_refresh_on_another_server_after_delete_jwt_auth_does_not_survive_it(fakems, pair):
    """DELETE /jwt_auth on one server: "all tokens revoked for user". The other server may
    let the old token in for up to the bound; but if what it lets in is GET /jwt_auth, it
    mints a fresh token, issued after the revocation time, that no revocation covers: the
    session the user ended lives on for the whole MSAuthSessionTimeout. Whatever a request
    inside the bound may do, a token it mints must not outlive the bound."""
    store, a, b = pair
    minted = []
    for attempt in range(4):  # bounded: each attempt is a fresh session
        jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
        settled(b, a, jwt)
        # b's children look at the store again (their views are a bound old by now) late in
        # a second; the revocation lands just after, so that a refresh early in the next
        # second (still inside the bound) gets an iat after the user's revocation time.
        time.sleep(REVOCATION_BOUND + 0.1)
        while not 0.75 <= time.time() % 1.0 < 0.8:
            time.sleep(0.005)
        for _ in range(WARM):
            assert bearer_get(b, "/microsoft_auth/me", jwt).status_code == 200
        r = requests.delete(a.url("/jwt_auth"), headers={"Authorization": "Bearer " + jwt},
                            timeout=10)
        assert r.status_code == 200
        revoked = time.time()
        # The stolen token, refreshed on the other server right after the answer.
        while time.time() - revoked < REVOCATION_BOUND + SLACK:
            r = bearer_get(b, "/jwt_auth", jwt)
            if r.status_code == 200:
                minted.append(r.json()["jwt"]["access_token"])
            elif r.status_code != 401:
                raise AssertionError("refresh answered %d" % r.status_code)
            time.sleep(0.02)
        if minted:
            break
    if not minted:
        return  # every refresh after the revocation was refused: nothing to outlive it
    time.sleep(REVOCATION_BOUND + SLACK)
    alive = [t for t in minted
             if 200 in (bearer_get(a, "/api/whoami.cgi", t).status_code,
                        bearer_get(b, "/api/whoami.cgi", t).status_code)]
    assert not alive, (
        "%d of %d tokens minted by GET /jwt_auth on the other server with a token revoked by "
        "DELETE /jwt_auth (refreshed after the revocation's answer, inside the bound) still "
        "open the app %.1f s after the revocation: iat %s > revocation time %d"
        % (len(alive), len(minted), time.time() - revoked,
           [jwt_parts(t)[1]["iat"] for t in alive], int(revoked)))


# --- a child the MPM starts after a settings change: the startup settings, for a while ---

NEW_KEY = "stored-app-rotated-key-9876543210-wxyz"


def test_a_key_rotated_out_through_the_settings_api_opens_no_new_child(fakems, request):
    """The administrator replaces a stored app's signing key (say it leaked): tokens
    signed with the old key must die in every process "within a second". A child the MPM
    starts afterwards (MaxConnectionsPerChild, load) begins with the settings of the
    server's startup and only looks at the settings file after its watcher's first
    sleep (0.2 s): meanwhile it accepts the old key's tokens."""
    h = Httpd(SETTINGS_CONF + "MaxConnectionsPerChild 3\n", fakems, name="attack-newchild")
    store = os.path.join(h.dir, "store")
    os.makedirs(store)
    path = os.path.join(store, "settings.json")
    with open(path, "w") as f:
        json.dump({"apps": {"runtime": APP}}, f)
    if os.geteuid() == 0:
        www = pwd.getpwnam("www-data")
        os.chown(store, www.pw_uid, www.pw_gid)
        os.chown(path, www.pw_uid, www.pw_gid)
    h.start()
    request.addfinalizer(h.cleanup)
    old = until(lambda: stored_login(fakems, h), 3)
    assert old
    cookie = {"msauth-runtime": old}
    assert requests.get(h.url("/stored/whoami.cgi"), cookies=cookie,
                        timeout=10).status_code == 200
    r = admin(h, "PUT", "/runtime/app_secret_key", {"value": NEW_KEY})
    assert r.status_code == 200, r.text
    time.sleep(1.5)  # every child serves the new key by now
    seen = {}
    deadline = time.time() + 12
    while time.time() < deadline:  # new connections: children come and go
        code = requests.get(h.url("/microsoft_auth/me?appid=runtime"), cookies=cookie,
                            timeout=10).status_code
        seen[code] = seen.get(code, 0) + 1
        if code == 200:
            break
    h.check_log()
    assert 200 not in seen, (
        "a token signed with the key the settings API replaced %.0f s earlier was accepted "
        "by a child started since (answers: %s)" % (time.time() - deadline + 13.5, seen))
