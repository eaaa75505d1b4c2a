"""Two servers, one shared cache: a real memcached or redis started on loopback.

An ID token spent on one server is refused by the other; a revocation on one
is honoured by the other within REVOCATION_BOUND (at once on the server that
wrote it); a cache that goes away fails closed (503) within the same bound, never open.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from msauth import (REVOCATION_BOUND, Httpd, free_port, fresh_store_epoch, query_of,
                    seed_authorize_url, start_group, stop_group, wait_port, FAKEMS_APP)

# Requests that reach every child of a test server (and its remembered verdict).
WARM = 24
# Loopback, the poll's own step and a loaded machine on top of the bound.
SLACK = 0.6

CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninSuccess /?jwt=id
MSAuthSigninFailure /?cause=?
MSAuthCache %s
Alias /api/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    Require valid-user
</Location>
"""


class Store:
    """A real memcached or redis on loopback."""

    def __init__(self, kind):
        binary = "memcached" if kind == "memcache" else "redis-server"
        assert shutil.which(binary), binary + " is not installed (scripts/deps test installs it)"
        self.kind = kind
        self.port = free_port()
        if kind == "memcache":
            cmd = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no"]
        self.proc = start_group(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc):
            self.stop()
            raise AssertionError("%s did not start" % kind)

    @property
    def spec(self):
        return "%s:127.0.0.1:%d" % (self.kind, self.port)

    def stop(self):
        if self.proc is not None:
            left = stop_group(self.proc)
            self.proc = None
            assert not left, "%s left processes behind: %s" % (self.kind, left)


def two_servers(request, fakems, kind, name="cluster", conf=CONF):
    """A fresh memcached or redis and two servers a and b sharing it (app.test:443), each
    checked for unexpected log lines when the test ends: (store, a, b)."""
    store = Store(kind)
    request.addfinalizer(store.stop)
    servers = []
    for n in ("a", "b"):
        h = Httpd(conf % store.spec, fakems, modules=["socache_" + kind],
                  name="%s-%s" % (name, n), server_name="app.test:443").start()
        h.expect_warn(fresh_store_epoch(store.spec))  # the store starts empty
        request.addfinalizer(h.cleanup)
        servers.append(h)
    request.addfinalizer(lambda: [h.check_log() for h in servers])
    return store, servers[0], servers[1]


@pytest.fixture(params=["memcache", "redis"])
def cluster(request, fakems):
    return two_servers(request, fakems, request.param)


def id_token(fakems, httpd):
    back = fakems.pick_user(seed_authorize_url(fakems, httpd))
    r = requests.get(back, allow_redirects=False, timeout=10)
    return query_of(r.headers["Location"])["jwt"][0]


def post(httpd, token):
    return requests.post(httpd.url("/jwt_auth"), timeout=15,
                         headers={"Content-Type": "application/json"},
                         data=json.dumps({"provider": "passwordless", "token": token}))


def bearer_get(httpd, path, jwt):
    return requests.get(httpd.url(path), timeout=15,
                        headers={"Authorization": "Bearer " + jwt, "Accept": "application/json"})


def test_id_token_spent_on_one_is_refused_by_the_other(fakems, cluster):
    store, a, b = cluster
    token = id_token(fakems, a)
    assert post(a, token).status_code == 200
    r = post(b, token)
    assert r.status_code == 401, r.text
    # and the other way round
    token = id_token(fakems, b)
    assert post(b, token).status_code == 200
    assert post(a, token).status_code == 401


def warm(httpd, jwt):
    """Every child of httpd has checked jwt lately and remembers it live."""
    codes = {bearer_get(httpd, "/api/whoami.cgi", jwt).status_code for _ in range(WARM)}
    assert codes == {200}, codes


def settled(*servers_and_jwt):
    """The store's generation records made by the first requests of a fresh store are
    read by every child (one bound later), and each remembers jwt live under them: what
    a revocation then has to undo."""
    *servers, jwt = servers_and_jwt
    for h in servers:
        warm(h, jwt)
    time.sleep(REVOCATION_BOUND + 0.1)
    for h in servers:
        warm(h, jwt)


def refused_after(httpd, jwt, since, limit):
    """Polls httpd (bounded) until jwt is refused; the seconds from `since`, or fails."""
    seen = []
    while time.time() - since < limit:
        code = bearer_get(httpd, "/api/whoami.cgi", jwt).status_code
        if code == 401:
            return time.time() - since
        seen.append(code)
        time.sleep(0.05)
    raise AssertionError("still %s %.1f s after the revocation" % (seen[-3:], limit))


def refused_everywhere(a, b, jwt, since):
    """At once on a, the server that wrote the revocation (every child), and within the
    bound on b; returns how long b took."""
    codes = [bearer_get(a, "/api/whoami.cgi", jwt).status_code for _ in range(WARM)]
    assert set(codes) == {401}, "the revoking server let the token in again: %s" % codes
    took = refused_after(b, jwt, since, REVOCATION_BOUND + SLACK)
    # Once refused, refused on every child: nothing remembered it live past the bound.
    time.sleep(max(0.0, since + REVOCATION_BOUND - time.time()))
    codes = [bearer_get(b, "/api/whoami.cgi", jwt).status_code for _ in range(WARM)]
    assert set(codes) == {401}, "a child of the other server still let it in: %s" % codes
    return took


def test_session_and_revocation_cross_servers(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    # One app, one key: b accepts a's session token, and both remember it live.
    settled(b, a, jwt)
    r = requests.delete(a.url("/jwt_auth"), headers={"Authorization": "Bearer " + jwt}, timeout=10)
    assert r.status_code == 200
    took = refused_everywhere(a, b, jwt, time.time())
    print("DELETE /jwt_auth on one server: refused by the other after %.3f s" % took)
    assert bearer_get(b, "/jwt_auth", jwt).status_code == 401


def test_logout_on_one_is_honoured_by_the_other(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    settled(b, a, jwt)
    r = requests.get(a.url("/microsoft_auth/logout"), cookies={"msauth": jwt},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302
    took = refused_everywhere(a, b, jwt, time.time())
    print("logout on one server: refused by the other after %.3f s" % took)


def test_an_unrelated_revocation_costs_a_live_session_nothing(fakems, cluster):
    """Another user's logout makes the servers ask the store again: the live session
    still passes, on both."""
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    other = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    warm(b, jwt)
    r = requests.get(a.url("/microsoft_auth/logout"), cookies={"msauth": other},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302
    refused_after(b, other, time.time(), REVOCATION_BOUND + SLACK)
    warm(b, jwt)
    warm(a, jwt)


def test_cache_down_fails_closed(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    token = id_token(fakems, a)
    warm(b, jwt)
    store.stop()
    gone = time.time()
    for h in (a, b):
        h.expect_error(r"msauth: cache_error")
        h.expect_error(r"\[socache_(memcache|redis):error\]")  # the provider logs its own failure
    # A live verdict read before the store went away holds for the bound, then 503.
    time.sleep(max(0.0, gone + REVOCATION_BOUND - time.time()))
    codes = {bearer_get(b, "/api/whoami.cgi", jwt).status_code for _ in range(WARM)}
    assert codes == {503}, codes
    r = post(a, token)
    assert r.status_code == 503 and r.json()["code"] == 503
    # Nothing was let through that could not be checked.
    assert "cache_error" in a.read_file("error.log") + b.read_file("error.log")


@pytest.mark.parametrize("kind", ["shmcb", "memcache", "redis"])
def test_a_remembered_session_is_refused_at_once_after_its_logout(request, fakems, kind):
    """One server, its children all remembering the session live: the logout ends it on
    every child before the logout's answer is sent, whatever the store."""
    spec = "shmcb"
    if kind != "shmcb":
        store = Store(kind)
        request.addfinalizer(store.stop)
        spec = store.spec
    h = Httpd(CONF % spec, fakems, modules=[] if kind == "shmcb" else ["socache_" + kind],
              name="remembered-" + kind, server_name="app.test:443").start()
    request.addfinalizer(h.cleanup)
    if kind != "shmcb":
        h.expect_warn(fresh_store_epoch(spec))
    for how in ("logout", "delete"):
        jwt = post(h, id_token(fakems, h)).json()["jwt"]["access_token"]
        warm(h, jwt)
        if how == "logout":
            r = requests.get(h.url("/microsoft_auth/logout"), cookies={"msauth": jwt},
                             allow_redirects=False, timeout=10)
            assert r.status_code == 302
        else:
            r = requests.delete(h.url("/jwt_auth"), headers={"Authorization": "Bearer " + jwt},
                                timeout=10)
            assert r.status_code == 200
        codes = [bearer_get(h, "/api/whoami.cgi", jwt).status_code for _ in range(WARM)]
        assert set(codes) == {401}, "%s: a child let the token in again: %s" % (how, codes)
    h.check_log()
