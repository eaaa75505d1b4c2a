"""MSAuthHealth: <callback>/health tells a load balancer whether this server can serve
logins (200) or not (503), guarded by Apache's own Require like any content."""

import json
import os
import time

import requests

from msauth import (FAKEMS_APP, Httpd, free_port, fresh_store_epoch, start_group, stop_group,
                    wait_port)

CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthHealth %s
%s
<Location /microsoft_auth/health>
    Require %s
</Location>
"""


def health(h):
    r = requests.get(h.url("/microsoft_auth/health"), timeout=30)
    return r.status_code, (r.json() if r.headers.get("Content-Type", "").startswith(
        "application/json") else None)


def test_off_by_default_and_guarded_by_require(request, fakems):
    h = Httpd(CONF % ("Off", "", "all granted"), fakems, name="health-off").start()
    request.addfinalizer(h.cleanup)
    assert requests.get(h.url("/microsoft_auth/health"), timeout=10).status_code == 404
    g = Httpd(CONF % ("On", "", "ip 192.0.2.1"), fakems, name="health-guarded").start()
    request.addfinalizer(g.cleanup)
    g.expect_error(r"AH01630")  # Apache's own refusal
    assert requests.get(g.url("/microsoft_auth/health"), timeout=10).status_code == 403
    g.check_log()
    h.check_log()


def test_healthy_local_store_and_keys_after_a_login(request, fakems):
    h = Httpd(CONF % ("On", "", "all granted"), fakems, name="health-local").start()
    request.addfinalizer(h.cleanup)
    status, doc = health(h)
    assert status == 200 and doc["status"] == "ok", doc
    assert doc["cache"] == {"store": "shmcb", "reachable": True, "epoch": doc["cache"]["epoch"]}
    assert doc["jwks"] == [{"tenant": "common", "fetched": False}], doc
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "configure.ac")) as f:
        assert '[%s]' % doc["version"] in f.read()
    # A login fetches the tenant's keys: the health shows their age.
    s = requests.Session()
    r = s.get(h.url("/microsoft_auth/login"), allow_redirects=False, timeout=30)
    r = s.get(fakems.pick_user(r.headers["Location"]), allow_redirects=False, timeout=30)
    assert r.status_code == 302 and s.cookies.get("msauth"), r.headers
    status, doc = health(h)
    assert status == 200 and doc["jwks"][0]["fetched"] is True, doc
    assert 0 <= doc["jwks"][0]["age"] < 60, doc
    assert requests.head(h.url("/microsoft_auth/health"), timeout=10).status_code == 200
    r = requests.post(h.url("/microsoft_auth/health"), timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    h.check_log()


def test_a_store_that_cannot_answer_is_503(request, fakems):
    port = free_port()
    cmd = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    mc = start_group(cmd + (["-u", "nobody"] if os.geteuid() == 0 else []))
    request.addfinalizer(lambda: stop_group(mc))
    assert wait_port(port, mc)
    h = Httpd(CONF % ("On", "MSAuthCache memcache:127.0.0.1:%d" % port, "all granted"), fakems,
              modules=["socache_memcache"], name="health-memcache").start()
    request.addfinalizer(h.cleanup)
    h.expect_warn(fresh_store_epoch("memcache:127.0.0.1:%d" % port))  # started empty
    status, doc = health(h)
    assert status == 200 and doc["cache"]["reachable"] is True, doc
    stop_group(mc)
    h.expect_error(r"msauth: cache_error|apr_memcache|socache")
    status, doc = health(h)
    assert status == 503 and doc["status"] == "unavailable", doc
    assert doc["cache"]["reachable"] is False, doc
    h.check_log()


def test_the_settings_file_state(request, fakems):
    extra = "MSAuthSettingsFile @DIR@/settings.json\nMSAuthAdminKey health-admin-key-0123456789abcdef"
    h = Httpd(CONF % ("On", extra, "all granted"), fakems, name="health-settings")
    path = os.path.join(h.dir, "settings.json")
    with open(path, "w") as f:
        json.dump({"apps": {}}, f)
    h.start()
    request.addfinalizer(h.cleanup)
    status, doc = health(h)
    assert status == 200 and doc["settings"] == "ok", doc
    # A damaged change: the last good settings still serve, and the health says so.
    with open(path, "w") as f:
        f.write("{not json")
    h.expect_error(r"msauth: settings_damaged")
    h.wait_log(r"msauth: settings_damaged", 10)
    # Every child has looked within the second (five looks a second each): all say so.
    time.sleep(1.0)
    for _ in range(6):
        status, doc = health(h)
        assert status == 200 and doc["settings"] == "damaged", doc
    # Each child reports the damage once, when its watcher next looks.
    time.sleep(0.5)
    h.check_log()


def test_settings_never_read_is_503(request, fakems):
    extra = "MSAuthSettingsFile @DIR@/settings.json\nMSAuthAdminKey health-admin-key-0123456789abcdef"
    h = Httpd(CONF % ("On", extra, "all granted"), fakems, name="health-unreadable")
    with open(os.path.join(h.dir, "settings.json"), "w") as f:
        f.write("[broken")
    h.expect_error(r"msauth: settings_damaged")
    h.start()
    request.addfinalizer(h.cleanup)
    status, doc = health(h)
    assert status == 503 and doc["settings"] == "unreadable", doc
    h.check_log()
