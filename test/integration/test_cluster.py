"""Two servers, one shared cache: a real memcached or redis started on loopback.

An ID token spent on one server is refused by the other; a revocation on one
is honoured by the other; a cache that goes away fails closed (503), never open.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
import requests

from msauth import (Httpd, free_port, fresh_store_epoch, query_of, seed_authorize_url,
                    start_group, stop_group, wait_port, FAKEMS_APP)

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
    def __init__(self, kind):
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
        left = stop_group(self.proc)
        assert not left, "%s left processes behind: %s" % (self.kind, left)


@pytest.fixture(params=["memcache", "redis"])
def cluster(request, fakems):
    binary = "memcached" if request.param == "memcache" else "redis-server"
    assert shutil.which(binary), binary + " is not installed (scripts/deps test installs it)"
    store = Store(request.param)
    request.addfinalizer(store.stop)
    servers = []
    for name in ("a", "b"):
        h = Httpd(CONF % store.spec, fakems, modules=["socache_" + request.param],
                  name="cluster-" + name, server_name="app.test:443").start()
        h.expect_warn(fresh_store_epoch(store.spec))  # the store starts empty
        request.addfinalizer(h.cleanup)
        servers.append(h)
    yield store, servers[0], servers[1]
    for h in servers:
        h.check_log()


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


def test_session_and_revocation_cross_servers(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    # One app, one key: b accepts a's session token.
    assert bearer_get(b, "/api/whoami.cgi", jwt).status_code == 200
    r = requests.delete(a.url("/jwt_auth"), headers={"Authorization": "Bearer " + jwt}, timeout=10)
    assert r.status_code == 200
    assert bearer_get(b, "/api/whoami.cgi", jwt).status_code == 401
    assert bearer_get(b, "/jwt_auth", jwt).status_code == 401


def test_logout_on_one_is_honoured_by_the_other(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    r = requests.get(a.url("/microsoft_auth/logout"), cookies={"msauth": jwt},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302
    assert bearer_get(b, "/api/whoami.cgi", jwt).status_code == 401


def test_cache_down_fails_closed(fakems, cluster):
    store, a, b = cluster
    jwt = post(a, id_token(fakems, a)).json()["jwt"]["access_token"]
    token = id_token(fakems, a)
    assert bearer_get(b, "/api/whoami.cgi", jwt).status_code == 200
    store.stop()
    for h in (a, b):
        h.expect_error(r"msauth: cache_error")
        h.expect_error(r"\[socache_(memcache|redis):error\]")  # the provider logs its own failure
    r = bearer_get(b, "/api/whoami.cgi", jwt)
    assert r.status_code == 503
    r = post(a, token)
    assert r.status_code == 503 and r.json()["code"] == 503
    # Nothing was let through that could not be checked.
    assert "cache_error" in a.read_file("error.log") + b.read_file("error.log")
