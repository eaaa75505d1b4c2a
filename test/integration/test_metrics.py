"""MSAuthMetrics: Prometheus counters shared by all children, guarded by Require."""

import re

import pytest
import requests

from msauth import Httpd, seed_authorize_url, FAKEMS_APP

CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninFailure /?cause=?
MSAuthMetrics %s
StartServers 3
<Location /microsoft_auth/metrics>
    Require %s
</Location>
Alias /api/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    Require valid-user
</Location>
"""


def metrics(h):
    r = requests.get(h.url("/microsoft_auth/metrics"), timeout=10)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_counters(request, fakems):
    h = Httpd(CONF % ("On", "ip 127.0.0.1"), fakems, name="metrics").start()
    request.addfinalizer(h.cleanup)
    before = metrics(h)
    assert before["msauth_logins_total{result=\"ok\"}"] == 0
    for _ in range(3):
        back = fakems.pick_user(seed_authorize_url(fakems, h))
        assert requests.get(back, allow_redirects=False, timeout=10).status_code == 302
    requests.get(h.url("/microsoft_auth?state=nosuchapp&code=x"), allow_redirects=False,
                 timeout=10)
    for _ in range(4):
        requests.get(h.url("/api/whoami.cgi"), headers={"Authorization": "Bearer a.b.c"},
                     timeout=10)
    r = requests.get(h.url("/api/whoami.cgi"), headers={"Accept": "text/html"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302
    # Many requests, several children: the counts are the server's, not one child's.
    seen = [metrics(h) for _ in range(6)]
    for m in seen:
        assert m['msauth_logins_total{result="ok"}'] == 3
        assert m['msauth_logins_total{result="failed",cause="unknown_app"}'] == 1
        assert m['msauth_tokens_refused_total{reason="invalid"}'] == 4
        assert m["msauth_logins_started_total"] == 1
        assert m["msauth_tokens_issued_total"] == 3
        # each login: one token call, Graph /me and Graph /organization (the tenant)
        assert m["msauth_outgoing_call_seconds_count"] == 9
        assert m['msauth_outgoing_call_seconds_bucket{le="+Inf"}'] == 9
        assert m["msauth_outgoing_calls_failed_total"] == 0
    h.check_log()


def test_guarded_by_require(request, fakems):
    h = Httpd(CONF % ("On", "all denied"), fakems, name="metrics-denied").start()
    request.addfinalizer(h.cleanup)
    assert requests.get(h.url("/microsoft_auth/metrics"), timeout=10).status_code == 403
    h.expect_error(r"AH01630")
    h.check_log()


def test_off_by_default(request, fakems):
    h = Httpd((CONF % ("Off", "all granted")).replace("MSAuthMetrics Off\n", ""), fakems,
              name="metrics-off").start()
    request.addfinalizer(h.cleanup)
    assert requests.get(h.url("/microsoft_auth/metrics"), timeout=10).status_code == 404
    h.expect_error(r"AH00128")
    h.check_log()
