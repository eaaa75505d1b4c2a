"""Configuration: every bad value fails `httpd -t`, naming the directive, file and line;
good configurations, the conf-examples among them, pass."""

import glob
import os
import re

import pytest

from msauth import ROOT, Httpd

GOOD = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthClientID @CLIENT_ID@
MSAuthClientSecret @CLIENT_SECRET@
MSAuthSecretKey @KEY@
"""


def configtest(snippet, fakems=None):
    h = Httpd(snippet, fakems, name="conf")
    try:
        rc, out = h.configtest()
        conf = os.path.join(h.dir, "httpd.conf")
        with open(conf) as f:
            lines = f.read().splitlines()
        return rc, out, conf, lines
    finally:
        h.cleanup()


def line_of(lines, needle):
    return next(i + 1 for i, l in enumerate(lines) if needle in l)


def test_good_config_passes(fakems):
    rc, out, _, _ = configtest(GOOD + """
MSAuthTenant organizations
MSAuthAllowedTenants 72f988bf-86f1-41af-91ab-2d7cd011db47 a1b2c3d4-0000-4000-8000-000000000001
MSAuthSigninSuccess "https://app.example.com/welcome?jwt=id"
MSAuthSigninFailure /failed?cause=?
MSAuthSecretKey @KEY@ @OLD_KEY@
MSAuthScope openid profile email User.Read
MSAuthRedirectURI https://app.example.com/microsoft_auth
MSAuthSessionTimeout 3600
MSAuthRefreshInterval 600
MSAuthIDTokenTTL 30
MSAuthCookieName site_session
MSAuthCookieDomain .example.com
MSAuthCookiePath /
MSAuthCookieSameSite Strict
MSAuthCookieSecure On
MSAuthLegacyState On
MSAuthPasswordlessGET Off
MSAuthRedirectAllow https://other.example.com/
MSAuthCallbackPath /auth/microsoft
MSAuthHTTPTimeout 8 3
MSAuthCAFile /etc/ssl/certs/ca-certificates.crt
MSAuthHTTPProxy http://proxy.example.com:3128
MSAuthClockSkew 30
MSAuthTrustForwarded On
<MSAuthApp myapp>
    MSAuthClientSecret env:PATH
    MSAuthScope "openid User.Read"
</MSAuthApp>
<Location /app>
    AuthType Microsoft
    MSAuthApp myapp
    MSAuthUnauthAction 401
    MSAuthRemoteUserClaim upn
    MSAuthPassClaims both
    MSAuthAcceptBearer Off
    MSAuthStripCookie Off
    Require valid-user
</Location>
""", fakems)
    assert rc == 0, out
    assert "Syntax OK" in out


BAD_VALUES = [
    ("MSAuthSecretKey too-short-key", "MSAuthSecretKey", "at least 32 bytes"),
    ("MSAuthSecretKey @KEY@ short", "MSAuthSecretKey", "at least 32 bytes"),
    ("MSAuthSecretKey file:/nonexistent/key", "MSAuthSecretKey", "cannot read"),
    ("MSAuthSecretKey env:MSAUTH_SURELY_UNSET_VAR", "MSAuthSecretKey", "not set"),
    ("MSAuthClientSecret file:/nonexistent/secret", "MSAuthClientSecret", "cannot read"),
    ("MSAuthTenant not_a_tenant!", "MSAuthTenant", "tenant"),
    ("MSAuthAllowedTenants common", "MSAuthAllowedTenants", "GUID"),
    ("MSAuthSigninSuccess javascript:alert(1)", "MSAuthSigninSuccess", ""),
    ("MSAuthSigninFailure //evil.example/", "MSAuthSigninFailure", ""),
    ("MSAuthRedirectURI /relative", "MSAuthRedirectURI", ""),
    ("MSAuthSessionTimeout soon", "MSAuthSessionTimeout", "seconds"),
    ("MSAuthSessionTimeout -5", "MSAuthSessionTimeout", "seconds"),
    ("MSAuthIDTokenTTL 0", "MSAuthIDTokenTTL", "range"),
    ("MSAuthRefreshInterval 1e3", "MSAuthRefreshInterval", "seconds"),
    ("MSAuthCookieName bad;name", "MSAuthCookieName", "cookie name"),
    ("MSAuthCookieDomain bad/domain", "MSAuthCookieDomain", "domain"),
    ("MSAuthCookiePath nopath", "MSAuthCookiePath", "path"),
    ("MSAuthCookieSameSite Sometimes", "MSAuthCookieSameSite", "unknown value"),
    ("MSAuthCookieSecure Maybe", "MSAuthCookieSecure", "unknown value"),
    ("MSAuthLegacyState Yes", "MSAuthLegacyState", "unknown value"),
    ("MSAuthPasswordlessGET Yes", "MSAuthPasswordlessGET", "unknown value"),
    ("MSAuthGroups All", "MSAuthGroups", "unknown value"),
    ("MSAuthRedirectAllow ftp://files.example.com/", "MSAuthRedirectAllow", ""),
    ("MSAuthCallbackPath microsoft_auth", "MSAuthCallbackPath", "path"),
    ("MSAuthCallbackPath /", "MSAuthCallbackPath", "cannot be"),
    ("MSAuthLoginHost http://login.example.com", "MSAuthLoginHost", "https"),
    ("MSAuthGraphHost not a url", "MSAuthGraphHost", ""),
    ("MSAuthHTTPTimeout 0", "MSAuthHTTPTimeout", "range"),
    ("MSAuthHTTPTimeout 5 10", "MSAuthHTTPTimeout", "connect timeout"),
    ("MSAuthCAFile /nonexistent/ca.pem", "MSAuthCAFile", "cannot be read"),
    ("MSAuthHTTPProxy proxy:3128", "MSAuthHTTPProxy", ""),
    ("MSAuthClockSkew 100000", "MSAuthClockSkew", "range"),
    ("MSAuthTrustForwarded Sure", "MSAuthTrustForwarded", ""),
    ("MSAuthScope \"openid\\x01\"", "MSAuthScope", ""),
    ("<Location /x>\n MSAuthUnauthAction redirect\n</Location>", "MSAuthUnauthAction", "unknown value"),
    ("<Location /x>\n MSAuthRemoteUserClaim phone\n</Location>", "MSAuthRemoteUserClaim", "unknown value"),
    ("<Location /x>\n MSAuthPassClaims cookies\n</Location>", "MSAuthPassClaims", "unknown value"),
    ("<Location /x>\n MSAuthApp bad/app\n</Location>", "MSAuthApp", "app"),
    ("<Location /x>\n MSAuthClientID abc\n</Location>", "MSAuthClientID", "not allowed"),
    ("<MSAuthApp a>\n MSAuthCallbackPath /cb\n</MSAuthApp>", "MSAuthCallbackPath", "not allowed inside"),
    ("<MSAuthApp bad/app>\n</MSAuthApp>", "MSAuthApp", "appid"),
    ("<MSAuthApp default>\n</MSAuthApp>", "MSAuthApp", "appid"),
    ("<MSAuthApp twice>\n</MSAuthApp>\n<MSAuthApp twice>\n</MSAuthApp>", "MSAuthApp", "twice"),
]


@pytest.mark.parametrize("line,directive,words", BAD_VALUES, ids=[b[0][:40] for b in BAD_VALUES])
def test_bad_value_fails_configtest(fakems, line, directive, words):
    rc, out, conf, lines = configtest(GOOD + line + "\n", fakems)
    assert rc != 0, out
    # Apache's own form: "Syntax error on line N of FILE:", then our message.
    m = re.search(r"Syntax error on line (\d+) of (\S+):", out)
    assert m, out
    assert m.group(2) == conf
    first = line.splitlines()[-2] if line.startswith("<MSAuthApp twice") else None
    bad_line = lines[int(m.group(1)) - 1]
    assert directive.lower() in bad_line.lower() or first, (bad_line, out)
    assert directive in out, out
    assert words.lower() in out.lower(), out


def test_location_naming_an_undefined_app_fails(fakems):
    snippet = "<Location /x>\n AuthType Microsoft\n MSAuthApp ghost\n Require valid-user\n</Location>\n"
    rc, out, conf, lines = configtest(GOOD + snippet, fakems)
    assert rc != 0, out
    assert "MSAuthApp ghost" in out and "defined nowhere" in out, out
    assert "%s:%d" % (conf, line_of(lines, "MSAuthApp ghost")) in out, out


def test_root_app_without_client_id_fails(fakems):
    rc, out, conf, lines = configtest("MSAuthClientSecret x\nMSAuthSecretKey @KEY@\n", fakems)
    assert rc != 0
    assert "MSAuthClientID" in out and conf in out, out


def test_named_app_secret_missing_everywhere(fakems):
    rc, out, conf, lines = configtest(
        "MSAuthSecretKey @KEY@\n<MSAuthApp only>\n MSAuthClientID abc\n</MSAuthApp>\n", fakems)
    assert rc != 0
    assert "MSAuthClientSecret is required for app 'only'" in out, out
    assert "%s:%d" % (conf, line_of(lines, "<MSAuthApp only>")) in out, out


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "conf-examples", "*.conf"))))
def test_conf_examples_pass_configtest(fakems, tmp_path, path):
    """Each example, with its secret files made up, passes httpd -t as written."""
    with open(path) as f:
        text = f.read()
    (tmp_path / "client-secret").write_text("example-client-secret\n")
    (tmp_path / "signing-key").write_text("example-signing-key-0123456789-abcdefgh\n")
    (tmp_path / "old-signing-key").write_text("example-old-signing-key-0123456789-abcd\n")
    text = text.replace("/etc/apache2/msauth/", str(tmp_path) + "/")
    text = "\n".join(l for l in text.splitlines() if not l.startswith("LoadModule msauth_module"))
    modules = ["proxy", "proxy_http"] if "ProxyPass" in text else []
    modules += [m for m in ("socache_redis", "socache_memcache") if "MSAuthCache " + m[8:] in text]
    h = Httpd(text, fakems, modules=modules, name="example")
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc == 0, out
    assert "Syntax OK" in out


def test_shmcb_not_loaded_fails_configtest(fakems):
    h = Httpd(GOOD, fakems, name="conf")
    h.modules.remove("socache_shmcb")
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0
    assert "MSAuthCache shmcb" in out and "LoadModule socache_shmcb_module" in out, out
    assert "on Debian: a2enmod socache_shmcb" in out, out


@pytest.mark.parametrize("value,why", [
    ("memcache", "needs host:port"),
    ("memcache:", "needs host:port"),
    ("redis:127.0.0.1:notaport", "is not host:port"),
    ("redis:[::1", "is not host:port"),
    ("shmcb:(100)", "size has to be >= 8192"),
    ("dbm:/tmp/x", "unknown cache provider"),
])
def test_bad_store_fails_configtest_naming_the_line(fakems, value, why):
    rc, out, conf, lines = configtest(GOOD + "MSAuthCache %s\n" % value, fakems)
    assert rc != 0
    assert "line %d" % line_of(lines, "MSAuthCache ") in out and "MSAuthCache" in out, out
    assert why in out, out


def test_memcache_and_redis_need_no_socache_module(fakems):
    for value in ("memcache:127.0.0.1:11211,127.0.0.1:11212", "redis:localhost"):
        rc, out, _, _ = configtest(GOOD + "MSAuthCache %s\n" % value, fakems)
        assert rc == 0 and "Syntax OK" in out, out


def test_unknown_cache_provider_fails_configtest(fakems):
    rc, out, _, _ = configtest(GOOD + "MSAuthCache filesystem:/tmp\n", fakems)
    assert rc != 0 and "MSAuthCache" in out and "unknown cache provider" in out, out
