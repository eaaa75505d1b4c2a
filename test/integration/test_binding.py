"""Binding: a token opens only the app that issued it (its virtual host, appid and
client id), and a subrequest is checked against the app that protects it."""

import os
import re
import time
import urllib.parse

import pytest
import requests

from msauth import (CLIENT_ID, CONTOSO_TID, FABRIKAM_TID, FAKEMS_APP, Httpd, free_port, hs256_sign,
                    jwt_parts)

B_CLIENT = "44444444-5555-6666-7777-888888888888"
B_SECRET = "b-test-client-secret-0123456789"
NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
API = {"Accept": "application/json"}

VHOST = """
<VirtualHost 127.0.0.1:@PORT@>
    ServerName {name}
    {app}
    Alias /cgi/ @DIR@/htdocs/cgi/
    <Location /cgi/>
        AuthType Microsoft
        Require valid-user
    </Location>
</VirtualHost>
"""

# Name-based virtual hosts on one port: a.test and b.test each with its own
# client id and tenant rule, c.test with a.test's client id and any tenant;
# every root app is "default" and inherits one key.
VHOSTS_CONF = FAKEMS_APP + "MSAuthSecretKey @KEY@\n" + VHOST.format(
    name="a.test", app="MSAuthClientID @CLIENT_ID@\n    MSAuthTenant %s" % CONTOSO_TID
) + VHOST.format(
    name="b.test", app="MSAuthClientID %s\n    MSAuthClientSecret %s\n    MSAuthTenant %s" % (
        B_CLIENT, B_SECRET, FABRIKAM_TID)) + VHOST.format(name="c.test", app="")


@pytest.fixture(scope="module")
def vhosts(request, fakems):
    requests.post(fakems.base + "/_fakems/clients", json={
        "client_id": B_CLIENT, "secret": B_SECRET, "tenant": FABRIKAM_TID},
        timeout=5).raise_for_status()
    h = Httpd(VHOSTS_CONF, fakems, name="binding").start()
    request.addfinalizer(h.cleanup)
    return h


class Host:
    """A browser of one virtual host: requests go to 127.0.0.1 with its Host header."""

    def __init__(self, httpd, fakems, name):
        self.httpd, self.fakems = httpd, fakems
        self.host = "%s:%d" % (name, httpd.port)
        self.s = requests.Session()

    def get(self, target, headers=None, cookies=None):
        h = {"Host": self.host}
        h.update(headers or {})
        # Given cookies are sent alone, not with the jar's.
        send = requests.get if cookies is not None else self.s.get
        return send(self.httpd.url(target), headers=h, cookies=cookies, allow_redirects=False,
                    timeout=30)

    def login(self, user, path="/cgi/whoami.cgi"):
        r = self.get(path, NAV)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        back = self.fakems.pick_user(r.headers["Location"], user)
        parts = urllib.parse.urlsplit(back)
        assert parts.netloc == self.host, back
        r = self.get(parts.path + "?" + parts.query, NAV)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        token = self.s.cookies.get("msauth")
        assert token
        return token


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_session_opens_only_the_vhost_app_that_issued_it(vhosts, fakems):
    a, b = Host(vhosts, fakems, "a.test"), Host(vhosts, fakems, "b.test")
    alice = a.login("alice")
    # Its own app takes it.
    r = a.get("/cgi/whoami.cgi", API)
    assert r.status_code == 200 and env_of(r.text)["REMOTE_USER"] == "alice@contoso.example"
    claims = jwt_parts(alice)[1]
    # The other virtual host's app does not, whichever way it comes.
    other = Host(vhosts, fakems, "b.test")
    assert other.get("/cgi/whoami.cgi", API, {"msauth": alice}).status_code == 401
    bearer = {"Authorization": "Bearer " + alice, **API}
    assert other.get("/cgi/whoami.cgi", bearer).status_code == 401
    assert other.get("/microsoft_auth/me", bearer).status_code == 401
    assert other.get("/jwt_auth", bearer).status_code == 401
    assert claims["aud"] == "%s:default@a.test:%d" % (CLIENT_ID, vhosts.port)
    # Nor does a virtual host with the same client id whose rules would take alice.
    c = Host(vhosts, fakems, "c.test")
    assert c.get("/cgi/whoami.cgi", API, {"msauth": alice}).status_code == 401
    assert c.get("/microsoft_auth/me", bearer).status_code == 401
    # A token naming b's app, but whose tenant b's rule refuses: refused too.
    forged = hs256_sign(dict(claims, aud="%s:default@b.test:%d" % (B_CLIENT, vhosts.port),
                             jti="forged-tid"))
    assert other.get("/cgi/whoami.cgi", API, {"msauth": forged}).status_code == 401
    # A token without aud: refused.
    bare = dict(claims, jti="no-aud")
    del bare["aud"]
    assert a.get("/cgi/whoami.cgi", API, {"msauth": hs256_sign(bare)}).status_code == 401
    # b's own users still get in.
    carol = b.login("carol")
    assert jwt_parts(carol)[1]["aud"] == "%s:default@b.test:%d" % (B_CLIENT, vhosts.port)
    r = b.get("/cgi/whoami.cgi", API)
    assert r.status_code == 200 and env_of(r.text)["REMOTE_USER"] == "carol@fabrikam.example"
    assert a.get("/cgi/whoami.cgi", API, {"msauth": carol}).status_code == 401


# One server name on two ports: two virtual hosts, one client id, one key, the same rules.
PORTS_CONF = FAKEMS_APP + "MSAuthSecretKey @KEY@\nListen 127.0.0.1:%d\n" + VHOST.format(
    name="same.test", app="") + VHOST.replace("@PORT@", "%d").format(name="same.test", app="")


def test_a_session_of_one_port_does_not_open_the_same_name_on_another(request, fakems):
    other = free_port()
    h = Httpd(PORTS_CONF % (other, other), fakems, name="binding-ports").start()
    request.addfinalizer(h.cleanup)
    first = Host(h, fakems, "same.test")
    alice = first.login("alice")
    assert first.get("/cgi/whoami.cgi", API).status_code == 200
    # Browsers send cookies to every port of a host: the other port's app refuses them.
    for cookies, headers in (({"msauth": alice}, API),
                             ({}, {"Authorization": "Bearer " + alice, **API})):
        r = requests.get("http://127.0.0.1:%d/cgi/whoami.cgi" % other, cookies=cookies,
                         headers={"Host": "same.test:%d" % other, **headers}, timeout=30)
        assert r.status_code == 401, (r.status_code, r.text[:200])
    assert jwt_parts(alice)[1]["aud"] == "%s:default@same.test:%d" % (CLIENT_ID, h.port)
    h.check_log()


# Subrequests ------------------------------------------------------------------

SSI_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
<MSAuthApp b>
    MSAuthTenant %s
</MSAuthApp>
<Directory @DIR@/htdocs/ssi>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
Alias /a/ @DIR@/htdocs/ssi/
<Location /a/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /b/ @DIR@/htdocs/cgi/
<Location /b/>
    AuthType Microsoft
    MSAuthApp b
    Require valid-user
</Location>
Alias /same/ @DIR@/htdocs/cgi/
<Location /same/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /plain/ @DIR@/htdocs/ssi/
Alias /bopen/ @DIR@/htdocs/cgi/
<Location /bopen/>
    AuthType Microsoft
    MSAuthApp b
    Require all granted
</Location>
Alias /sameadmin/ @DIR@/htdocs/cgi/
<Location /sameadmin/>
    AuthType Microsoft
    Require ms-user carol@fabrikam.example
</Location>
""" % FABRIKAM_TID


@pytest.fixture(scope="module")
def ssi(request, fakems):
    h = Httpd(SSI_CONF, fakems, modules=["include"], name="binding-ssi")
    os.makedirs(os.path.join(h.htdocs, "ssi"))
    for page, target in (("other", "/b/"), ("same", "/same/"), ("admin", "/sameadmin/"),
                         ("open", "/bopen/")):
        with open(os.path.join(h.htdocs, "ssi", page + ".shtml"), "w") as f:
            f.write('<p>%s</p>\n<!--#include virtual="%swhoami.cgi"-->\n' % (page, target))
    h.start()
    request.addfinalizer(h.cleanup)
    return h


def test_subrequest_is_checked_against_the_app_that_protects_it(ssi, fakems):
    ssi.expect_error(r"AH01631|AH01215|unable to include")  # refused includes
    host = Host(ssi, fakems, "127.0.0.1")
    host.login("alice", "/same/whoami.cgi")
    # The same app: the main request's session serves the subrequest...
    r = host.get("/a/same.shtml", NAV)
    assert r.status_code == 200 and "REMOTE_USER=alice@contoso.example" in r.text, r.text
    # ...whose own Require rules still apply.
    r = host.get("/a/admin.shtml", NAV)
    assert r.status_code == 200 and "REMOTE_USER" not in r.text, r.text
    # Another app, which refuses alice's tenant: nothing of /b/ is shown.
    for headers in (NAV, API):
        r = host.get("/a/other.shtml", headers)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        assert "<p>other</p>" in r.text
        assert "REMOTE_USER" not in r.text and "MSAUTH_" not in r.text, r.text
    # The page's own answer starts no login on the subrequest's behalf.
    assert "msauth_state_" not in r.headers.get("Set-Cookie", "")
    # Another app whose rules need no user: it is shown, but with nothing of alice's session.
    r = host.get("/a/open.shtml", NAV)
    assert r.status_code == 200 and "<p>open</p>" in r.text, (r.status_code, r.text[:300])
    assert "alice" not in r.text and "MSAUTH_" not in r.text, r.text
    # A page outside AuthType Microsoft: the client's identity headers stop at the include.
    spoof = {"X-MSAuth-Email": "boss@contoso.example", "X-MS-Client-Principal-Name": "boss"}
    for page in ("same", "open"):
        r = host.get("/plain/%s.shtml" % page, {**NAV, **spoof})
        assert r.status_code == 200 and "<p>%s</p>" % page in r.text, (page, r.text[:300])
        assert "boss" not in r.text, (page, r.text)
    # Nor does the session cookie, which the page's own environment carried.
    r = host.get("/plain/same.shtml", NAV)
    assert "REMOTE_USER=alice@contoso.example" in r.text and "msauth=" not in r.text, r.text
