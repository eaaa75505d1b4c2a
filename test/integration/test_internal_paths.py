"""Doors httpd opens inside a request: DirectoryIndex (a subrequest, then the main request
runs the file), ErrorDocument and mod_rewrite (internal redirects), virtual hosts without a
ServerName, other ports of one host name, and unusual spellings of the credentials. Each
carries only what the app that protects the final request vouches for."""

import os
import urllib.parse

import pytest
import requests

from msauth import CONTOSO_TID, FABRIKAM_TID, FAKEMS_APP, Httpd, free_port

NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}
API = {"Accept": "application/json"}


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Browser:
    """One browser (cookie jar) talking to httpd with a given Host header."""

    def __init__(self, httpd, fakems, host=None):
        self.httpd, self.fakems = httpd, fakems
        self.host = host or "127.0.0.1:%d" % httpd.port
        self.s = requests.Session()

    def get(self, target, headers=None, cookies=None):
        h = {"Host": self.host}
        h.update(headers or {})
        send = requests.get if cookies is not None else self.s.get
        return send(self.httpd.url(target), headers=h, cookies=cookies, allow_redirects=False,
                    timeout=30)

    def login(self, user, path, cookie="msauth"):
        r = self.get(path, NAV)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        back = self.fakems.pick_user(r.headers["Location"], user)
        parts = urllib.parse.urlsplit(back)
        r = self.get(parts.path + "?" + parts.query, NAV)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        token = self.s.cookies.get(cookie)
        assert token, r.headers
        return token


def start(request, conf, fakems, prepare=None, **kw):
    """An httpd for one test (its error log is checked by the test, with h.check_log())."""
    h = Httpd(conf, fakems, **kw)
    envdump = os.path.join(h.htdocs, "cgi", "env.cgi")
    with open(envdump, "w") as f:
        f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | sort\n")
    os.chmod(envdump, 0o755)
    if prepare:
        prepare(h)
    h.start()
    request.addfinalizer(h.cleanup)
    return h


# DirectoryIndex: mod_dir's subrequest, then a "fast redirect" ---------------------------

DIRINDEX_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /dir/ @DIR@/htdocs/dir/
<Directory @DIR@/htdocs/dir>
    Options +ExecCGI
    AddHandler cgi-script .cgi
    DirectoryIndex index.cgi
    <Files "index.cgi">
        AuthType Microsoft
        MSAuthPassClaims both
        MSAuthEasyAuthHeaders On
        CGIPassAuth On
        Require valid-user
    </Files>
</Directory>
"""


def copy_whoami(h, sub, name):
    os.makedirs(os.path.join(h.htdocs, sub), exist_ok=True)
    src = os.path.join(h.htdocs, "cgi", "whoami.cgi")
    dst = os.path.join(h.htdocs, sub, name)
    with open(src) as f, open(dst, "w") as g:
        g.write(f.read())
    os.chmod(dst, 0o755)


def test_a_directory_index_is_checked_as_a_request_of_its_own(request, fakems):
    """<Files index.cgi> under AuthType Microsoft, reached as the directory's index
    (GET /dir/): mod_dir checks index.cgi in a subrequest, then runs it in the main
    request, whose headers went through none of the checks under index.cgi's rules. The
    app still gets the module's identity (REMOTE_USER, headers), never the client's forged
    X-MSAuth-Email / X-MS-CLIENT-PRINCIPAL-NAME, the session cookie or the Bearer token."""
    h = start(request, DIRINDEX_CONF, fakems, prepare=lambda h: copy_whoami(h, "dir", "index.cgi"),
              name="atk-dirindex")
    b = Browser(h, fakems)
    tok = b.login("alice", "/dir/index.cgi")
    forged = {"X-MSAuth-Email": "boss@contoso.example",
              "X-MS-CLIENT-PRINCIPAL-NAME": "boss@contoso.example"}
    # Directly: the module holds.
    r = b.get("/dir/index.cgi", {**API, **forged})
    assert r.status_code == 200 and "boss" not in r.text and "msauth=" not in r.text, r.text
    # As the directory index.
    r = b.get("/dir/", {**API, **forged})
    h.check_log()
    assert r.status_code in (200, 401, 403), (r.status_code, r.text[:300])
    assert "boss" not in r.text, r.text  # forged X-MSAuth-Email, X-MS-CLIENT-PRINCIPAL-NAME
    assert "msauth=" not in r.text, r.text  # the session cookie
    env = env_of(r.text)
    assert env.get("REMOTE_USER") == "alice@contoso.example", r.text
    assert env.get("HTTP_X_MSAUTH_EMAIL") == "alice@contoso.example", r.text
    r = requests.get(h.url("/dir/"), headers={"Authorization": "Bearer " + tok, **API},
                     timeout=30)
    assert r.status_code == 200 and tok not in r.text, r.text  # the Bearer session token


# ErrorDocument: an internal redirect out of a location that refused the user -------------

ERRDOC_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSigninSuccess /
<MSAuthApp b>
</MSAuthApp>
Alias /a/ @DIR@/htdocs/cgi/
<Location /a/>
    AuthType Microsoft
    MSAuthPassClaims both
    Require ms-tenant %s
    ErrorDocument 403 /b/env.cgi
    ErrorDocument 404 /b/env.cgi
</Location>
Alias /b/ @DIR@/htdocs/cgi/
<Location /b/>
    AuthType Microsoft
    MSAuthApp b
    Require all granted
</Location>
""" % CONTOSO_TID


def test_an_error_document_of_another_app_gets_no_identity(request, fakems):
    """/a/ (root app) serves alice; its ErrorDocument 404 is a page of app b (Require all
    granted: b vouches for nobody and alice has no session of b). httpd would hand b's
    page the earlier request's identity as REDIRECT_MSAUTH_* and REDIRECT_REMOTE_USER (the
    names PHP and most frameworks fall back to after an internal redirect): b's page gets
    none of it."""
    h = start(request, ERRDOC_CONF, fakems, name="atk-errdoc")
    b = Browser(h, fakems)
    b.login("alice", "/microsoft_auth/login?return_to=/")
    r = b.get("/b/env.cgi", API)
    assert r.status_code == 200 and "alice" not in r.text, r.text  # b itself holds
    assert b.get("/a/env.cgi", API).status_code == 200
    h.expect_error(r"AH01264")
    r = b.get("/a/missing.cgi", API)
    h.check_log()
    assert r.status_code == 404, r.status_code
    env = env_of(r.text)
    leaked = sorted(k for k, v in env.items() if "alice" in v or "MSAUTH" in k or k.endswith(
        "AUTH_TYPE"))
    assert not leaked, leaked


# Virtual hosts without ServerName --------------------------------------------------------

NONAME_VHOSTS = FAKEMS_APP + """MSAuthSecretKey @KEY@
<VirtualHost 127.0.0.1:@PORT@>
    ServerAlias a.test
    Alias /cgi/ @DIR@/htdocs/cgi/
    <Location /cgi/>
        AuthType Microsoft
        Require valid-user
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT@>
    ServerAlias b.test
    Alias /cgi/ @DIR@/htdocs/cgi/
    <Location /cgi/>
        AuthType Microsoft
        Require valid-user
    </Location>
</VirtualHost>
"""


def test_vhosts_without_a_servername_of_their_own_are_refused(fakems):
    """Two name-based virtual hosts told apart by ServerAlias only (no ServerName of their
    own), same client id and inherited key, as in test_binding's c.test case. Both take
    the main server's name, so the audience <client id>:default@<name>:<port> would be the
    same and a session of a.test would open b.test: configtest refuses the configuration,
    naming both virtual hosts and the fix."""
    h = Httpd(NONAME_VHOSTS, fakems, name="atk-noname")
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0, out
    assert "same identity" in out and "ServerName" in out and "httpd.conf:" in out, out


DIRINDEX_TWO_APPS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
<MSAuthApp b>
    MSAuthTenant %s
</MSAuthApp>
Alias /dir/ @DIR@/htdocs/dir/
<Directory @DIR@/htdocs/dir>
    Options +ExecCGI
    AddHandler cgi-script .cgi
    DirectoryIndex index.cgi
    AuthType Microsoft
    Require valid-user
    <Files "index.cgi">
        MSAuthApp b
        Require all granted
    </Files>
</Directory>
""" % FABRIKAM_TID


def test_a_directory_index_under_another_app_does_not_borrow_the_session(request, fakems):
    """The directory belongs to the root app, its index.cgi to app b (which admits only
    fabrikam, under Require all granted: b vouches for nobody). GET /dir/ with alice's root
    session runs index.cgi without REMOTE_USER, AUTH_TYPE or MSAUTH_* of the root app's
    session, as test_binding requires of an include."""
    h = start(request, DIRINDEX_TWO_APPS_CONF, fakems,
              prepare=lambda h: copy_whoami(h, "dir", "index.cgi"), name="atk-dirindex2")
    b = Browser(h, fakems)
    b.login("alice", "/microsoft_auth/login?return_to=/")
    r = b.get("/dir/index.cgi", API)
    assert r.status_code == 200 and "alice" not in r.text, r.text  # b itself holds
    r = b.get("/dir/", API)
    h.check_log()
    assert r.status_code in (200, 401, 403), (r.status_code, r.text[:300])
    assert "alice" not in r.text and "MSAUTH_" not in r.text and "AUTH_TYPE" not in r.text, r.text


# One host name on two ports: browsers send each port's cookies to the other -------------

PORTS_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
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
    MSAuthCookieName portal_session
    Alias /cgi/ @DIR@/htdocs/cgi/
    <Location /cgi/>
        AuthType Microsoft
        Require valid-user
    </Location>
</VirtualHost>
"""


def test_another_ports_session_cookie_never_reaches_the_app(request, fakems):
    """same.test:P1 and same.test:P2 are two virtual hosts; P2's app names its cookie
    (MSAuthCookieName portal_session). Cookies are per host, not per port, so the browser
    sends portal_session to P1 too: P1's app (MSAuthStripCookie On) never sees it, since
    the module's cookies are those of every app of every virtual host."""
    other = free_port()
    h = start(request, PORTS_CONF.format(other=other), fakems, name="atk-ports")
    p2 = Browser(h, fakems, "same.test:%d" % other)
    # Browser for P2: same 127.0.0.1, other port.
    p2.httpd = type("P2", (), {"url": staticmethod(
        lambda path: "http://127.0.0.1:%d%s" % (other, path))})()
    tok = p2.login("alice", "/cgi/whoami.cgi", cookie="portal_session")
    assert p2.get("/cgi/whoami.cgi", API).status_code == 200
    p1 = Browser(h, fakems, "same.test:%d" % h.port)
    p1.login("alice", "/cgi/whoami.cgi")
    r = p1.get("/cgi/whoami.cgi", API, cookies={"msauth": p1.s.cookies.get("msauth"),
                                               "portal_session": tok})
    h.check_log()
    assert r.status_code == 200, r.status_code
    assert tok not in r.text and "portal_session" not in r.text, r.text


# Credentials in unusual spellings -------------------------------------------------------

SMUGGLE_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /cgi/ @DIR@/htdocs/cgi/
<Location /cgi/>
    AuthType Microsoft
    MSAuthPassClaims both
    CGIPassAuth On
    Require valid-user
</Location>
"""


def test_cookie_and_bearer_variants_never_reach_the_app(request, fakems):
    """Lowercase `bearer`, two spaces after Bearer, a quoted
    cookie value, blanks around the cookie name, the session cookie twice: each is either
    accepted with nothing of it reaching the app, or refused; a cookie name in another
    case is not the module's (not accepted)."""
    h = start(request, SMUGGLE_CONF, fakems, name="atk-smuggle")
    b = Browser(h, fakems)
    tok = b.login("alice", "/cgi/whoami.cgi")

    def raw(headers):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", h.port, timeout=30)
        try:
            c.putrequest("GET", "/cgi/whoami.cgi", skip_accept_encoding=True)
            c.putheader("Accept", "application/json")
            for k, v in headers:
                c.putheader(k, v)
            c.endheaders()
            resp = c.getresponse()
            return resp.status, resp.read().decode()
        finally:
            c.close()

    accepted = [
        [("Authorization", "bearer " + tok)],
        [("Authorization", "Bearer  " + tok)],
        [("Cookie", 'msauth="%s"' % tok)],
        [("Cookie", " msauth = %s ; other=1" % tok)],
        [("Cookie", "msauth=%s; msauth=%s" % (tok, tok))],
    ]
    for headers in accepted:
        status, body = raw(headers)
        assert status == 200, (headers[0][1][:20], status)
        assert tok not in body and "REMOTE_USER=alice@contoso.example" in body, body
    status, body = raw([("Cookie", "MSAUTH=" + tok)])
    assert status == 401, status
    h.check_log()


# mod_rewrite: an internal redirect that stays in the app ----------------------------------

REWRITE_CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
Alias /front/ @DIR@/htdocs/cgi/
<Directory @DIR@/htdocs/cgi>
    RewriteEngine On
    RewriteBase /front/
    RewriteRule ^page$ env.cgi [L]
</Directory>
<Location /front/>
    AuthType Microsoft
    MSAuthPassClaims both
    Require valid-user
</Location>
"""


def test_a_front_controller_rewrite_keeps_the_identity(request, fakems):
    """A RewriteRule inside the protected directory sends /front/page to whoami.cgi (an
    internal redirect under the same app and rules, where httpd skips authentication):
    the app still gets REMOTE_USER, MSAUTH_* and the X-MSAuth-* headers of its session,
    never only their REDIRECT_* copies, and no forged header."""
    h = start(request, REWRITE_CONF, fakems, modules=["rewrite"], name="int-rewrite")
    b = Browser(h, fakems)
    b.login("alice", "/front/whoami.cgi")
    r = b.get("/front/page", {**API, "X-MSAuth-Email": "boss@contoso.example"})
    h.check_log()
    assert r.status_code == 200, (r.status_code, r.text[:300])
    env = env_of(r.text)
    assert env.get("REMOTE_USER") == "alice@contoso.example", r.text
    assert env.get("MSAUTH_EMAIL") == "alice@contoso.example", r.text
    assert env.get("HTTP_X_MSAUTH_EMAIL") == "alice@contoso.example", r.text
    assert "boss" not in r.text, r.text
