"""Tenant rules on every path to a session, and identities another tenant cannot forge.

Every path (callback with or without an id_token, the JWT API) learns the user's tenant
from Microsoft and applies MSAuthTenant/MSAuthAllowedTenants to it; REMOTE_USER and
`Require ms-user`/`ms-domain` rest on what the user's own tenant cannot set for another
tenant. fakems's eve (tenant northwind) has the `mail` alice@contoso.example.
"""

import json
import re
import urllib.parse

import pytest
import requests

from msauth import (CONSUMERS_TID, CONTOSO_TID, FABRIKAM_TID, KEY, SEED_SCOPE, Httpd,
                    hs256_valid, jwt_parts, query_of, seed_authorize_url, FAKEMS_APP)

NORTHWIND_TID = "5c0d7f2e-3b8a-4e61-9f4d-2a7b9c1e8d03"
EVE_OID = "3f6c1d2a-8b7e-4c59-a0d1-6e2f9b8c7a41"
ALICE_OID = "be20621b-842c-419d-a42f-f98f10de9f92"
# Any app of any tenant can get a Graph token for its users: the JWT API must not care whose.
SOME_OTHER_CLIENT = "98765432-1111-4222-8333-444455556666"
OIDC_CLIENT = "44444444-5555-4666-8777-888899990000"
OIDC_SECRET = "tenant-oidc-client-secret-0123456789"

LOCATIONS = {
    "/cgi/": "",
    "/user/": "Require ms-user alice@contoso.example",
    "/domain/": "Require ms-domain contoso.example",
    "/single/": "MSAuthApp single",
    "/orgs/": "MSAuthApp orgs",
    "/oidc/": "MSAuthApp oidc",
}


def conf():
    blocks = []
    for path, extra in sorted(LOCATIONS.items()):
        require = extra if extra.startswith("Require") else "Require valid-user"
        app = extra if extra.startswith("MSAuthApp") else ""
        blocks.append("Alias %s @DIR@/htdocs/cgi/\n<Location %s>\n    AuthType Microsoft\n"
                      "    %s\n    %s\n</Location>" % (path, path, app, require))
    return FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninSuccess /welcome
MSAuthSigninFailure /failed?cause=?
<MSAuthApp single>
    MSAuthTenant %(contoso)s
    MSAuthAllowedTenants %(contoso)s
    MSAuthSigninFailure /single/failed?cause=?
</MSAuthApp>
<MSAuthApp bydomain>
    MSAuthTenant contoso.example
</MSAuthApp>
<MSAuthApp oidc>
    MSAuthClientID %(oidc)s
    MSAuthClientSecret %(oidc_secret)s
    MSAuthScope openid profile email
</MSAuthApp>
<MSAuthApp orgs>
    MSAuthTenant organizations
    MSAuthAllowedTenants %(contoso)s
    MSAuthLegacyState On
    MSAuthSigninSuccess /orgs/whoami.cgi
    MSAuthSigninFailure /orgs/failed?cause=?
</MSAuthApp>
""" % {"contoso": CONTOSO_TID, "oidc": OIDC_CLIENT, "oidc_secret": OIDC_SECRET} + \
        "\n".join(blocks)


@pytest.fixture(scope="module")
def httpd(request, fakems):
    # An app registration without Graph permissions, with the xms_edov optional claim.
    requests.post(fakems.base + "/_fakems/clients", json={
        "client_id": OIDC_CLIENT, "secret": OIDC_SECRET, "api_permissions": [],
        "optional_claims": ["xms_edov"]}, timeout=5).raise_for_status()
    h = Httpd(conf(), fakems, name="tenant").start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(autouse=True)
def _log(httpd):
    """httpd.new_log() in a test starts at that test's own lines."""
    httpd.new_log()


NAV = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class Browser:
    def __init__(self, httpd, fakems):
        self.httpd, self.fakems = httpd, fakems
        self.s = requests.Session()

    def get(self, path, **kw):
        url = path if path.startswith("http") else self.httpd.url(path)
        return self.s.get(url, headers=NAV, allow_redirects=False, timeout=30, **kw)

    def start(self, path):
        r = self.get(path)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        return r.headers["Location"]

    def finish(self, authorize_url, user):
        back = self.fakems.pick_user(authorize_url, user)
        assert back.startswith(self.httpd.origin + "/microsoft_auth?"), back
        return self.get(back)

    def login(self, path, user):
        r = self.finish(self.start(path), user)
        assert r.status_code == 302 and r.headers["Location"] == path, (r.status_code,
                                                                          r.headers)
        return r

    def seed_login(self, appid, user, scope=SEED_SCOPE, tenant="common"):
        """The seed's button: Graph scope only, state=<appid>, no id_token comes back; the
        tenant segment is the app's (Para's ms_tenant_id)."""
        url = seed_authorize_url(self.fakems, self.httpd, appid, scope)
        return self.finish(url.replace("/common/", "/%s/" % tenant, 1), user)

    def session(self, name="msauth"):
        token = self.s.cookies.get(name)
        assert token and hs256_valid(token, KEY)
        return jwt_parts(token)[1]


def with_scope(authorize_url, scope):
    """The authorize URL as a user who edited its `scope` sends it."""
    parts = urllib.parse.urlsplit(authorize_url)
    q = urllib.parse.parse_qsl(parts.query)
    q = [(k, scope if k == "scope" else v) for k, v in q]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def failure_cause(r, prefix):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    assert loc.startswith(prefix), "no failure: the login landed on %s" % loc
    return urllib.parse.unquote(loc[len(prefix):])


def graph_token(fakems, user):
    r = requests.post(fakems.base + "/_fakems/access_token", json={
        "user": user, "client_id": SOME_OTHER_CLIENT, "scope": "User.Read"}, timeout=5)
    r.raise_for_status()
    return r.json()["access_token"]


def jwt_api(httpd, body):
    return requests.post(httpd.url("/jwt_auth"), data=json.dumps(body),
                         headers={"Content-Type": "application/json"}, timeout=15)


# Item 1: the JWT API ------------------------------------------------------------

def test_jwt_api_refuses_a_graph_token_of_another_tenant(httpd, fakems):
    """App `single` admits contoso only. Graph accepting carol's token (fabrikam, minted
    for another app) proves the user, not the tenant: no session for her."""
    for user in ("carol", "bob", "eve"):
        r = jwt_api(httpd, {"appid": "single", "provider": "microsoft",
                            "token": graph_token(fakems, user)})
        if r.status_code == 200:
            opened = requests.get(httpd.url("/single/whoami.cgi"), timeout=10, headers={
                "Authorization": "Bearer " + r.json()["jwt"]["access_token"]})
            pytest.fail("%s of another tenant got a session (200), which opened "
                        "/single/: %s" % (user, opened.status_code))
        assert r.status_code == 401, (user, r.status_code, r.text)
        assert "tenant" in r.json()["message"], r.text
        assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    httpd.wait_log(r"msauth:info.*tenant_not_allowed.*appid=single")
    # contoso's own user passes, and her session knows her tenant.
    r = jwt_api(httpd, {"appid": "single", "provider": "microsoft",
                        "token": graph_token(fakems, "alice")})
    assert r.status_code == 200, r.text
    claims = jwt_parts(r.json()["jwt"]["access_token"])[1]
    assert claims["tid"] == CONTOSO_TID
    opened = requests.get(httpd.url("/single/whoami.cgi"), timeout=10, headers={
        "Authorization": "Bearer " + r.json()["jwt"]["access_token"]})
    assert opened.status_code == 200 and env_of(opened.text)["MSAUTH_TID"] == CONTOSO_TID


def test_jwt_api_checks_a_domain_named_tenant_against_graphs_verified_domains(httpd, fakems):
    r = jwt_api(httpd, {"appid": "bydomain", "provider": "microsoft",
                        "token": graph_token(fakems, "carol")})
    assert r.status_code == 401 and "tenant" in r.json()["message"], r.text
    r = jwt_api(httpd, {"appid": "bydomain", "provider": "microsoft",
                        "token": graph_token(fakems, "alice")})
    assert r.status_code == 200, r.text
    assert jwt_parts(r.json()["jwt"]["access_token"])[1]["tid"] == CONTOSO_TID


def test_jwt_api_records_the_tenant_where_any_tenant_may_sign_in(httpd, fakems):
    for user, tid in (("carol", FABRIKAM_TID), ("bob", CONSUMERS_TID),
                      ("eve", NORTHWIND_TID)):
        r = jwt_api(httpd, {"provider": "microsoft", "token": graph_token(fakems, user)})
        assert r.status_code == 200, (user, r.text)
        assert jwt_parts(r.json()["jwt"]["access_token"])[1]["tid"] == tid, user


def test_jwt_api_refuses_when_the_tenant_cannot_be_known(httpd, fakems):
    """Graph answers /me but names no organization: where tenants are restricted, no session;
    where they are not, a session without a tenant."""
    fakems.faults(graph="no_organization")
    r = jwt_api(httpd, {"appid": "single", "provider": "microsoft",
                        "token": graph_token(fakems, "alice")})
    assert r.status_code == 401 and "tenant" in r.json()["message"], r.text
    r = jwt_api(httpd, {"provider": "microsoft", "token": graph_token(fakems, "alice")})
    assert r.status_code == 200, r.text
    assert "tid" not in jwt_parts(r.json()["jwt"]["access_token"])[1]


# Item 2: logins without an id_token ---------------------------------------------

def test_login_without_an_id_token_applies_the_tenant_rules(httpd, fakems):
    """App `orgs` admits contoso only. A seed-style login (Graph scope, no id_token) of a
    fabrikam or personal user, and a module-initiated one whose scope the user edited,
    must not sign anyone in."""
    # (Personal accounts never get this far: Microsoft refuses them at `organizations`.)
    httpd.expect_warn(r"msauth: login_failed: cause=tenant_not_allowed appid=orgs: tenant %s is "
                      r"not allowed" % FABRIKAM_TID)
    b = Browser(httpd, fakems)
    r = b.seed_login("orgs", "carol", tenant="organizations")
    assert failure_cause(r, "/orgs/failed?cause=") == "tenant_not_allowed"
    assert "msauth-orgs" not in b.s.cookies
    # The module asked for openid: a token answer without an id_token is a failure,
    # whoever signs in (the nonce could not be checked either).
    for user in ("carol", "alice"):
        b = Browser(httpd, fakems)
        auth = b.start("/orgs/whoami.cgi")
        assert "openid" in query_of(auth)["scope"][0]
        r = b.finish(with_scope(auth, SEED_SCOPE), user)
        assert failure_cause(r, "/orgs/failed?cause=") == "invalid_id_token", user
        assert "msauth-orgs" not in b.s.cookies
    # contoso's user through the seed's button: in, with her tenant in the session.
    b = Browser(httpd, fakems)
    r = b.seed_login("orgs", "alice", tenant="organizations")
    assert r.status_code == 302 and r.headers["Location"] == "/orgs/whoami.cgi", r.headers
    assert b.session("msauth-orgs")["tid"] == CONTOSO_TID
    env = env_of(b.get("/orgs/whoami.cgi").text)
    assert env["MSAUTH_TID"] == CONTOSO_TID
    # Where any tenant may sign in, the tenant is still recorded.
    b = Browser(httpd, fakems)
    assert b.seed_login(None, "carol").status_code == 302
    assert b.session()["tid"] == FABRIKAM_TID
    b = Browser(httpd, fakems)
    assert b.seed_login(None, "bob").status_code == 302
    assert b.session()["tid"] == CONSUMERS_TID


# Item 5: identity from what another tenant cannot forge ---------------------------

def test_mail_set_by_another_tenant_is_not_an_identity(httpd, fakems):
    """eve's tenant set her `mail` to alice@contoso.example. Through the callback
    (with and without an id_token) and the JWT API she is not alice: REMOTE_USER is her
    own UPN (a verified domain of her tenant, as Graph lists them) and Require ms-user /
    ms-domain do not match her."""
    httpd.expect_error(r"AH01631: user eve@northwind\.example: authorization failure")
    sessions = []
    b = Browser(httpd, fakems)
    b.login("/cgi/whoami.cgi", "eve")
    sessions.append(("module login", b.s, None))
    b2 = Browser(httpd, fakems)
    assert b2.seed_login(None, "eve").status_code == 302
    sessions.append(("seed login", b2.s, None))
    r = jwt_api(httpd, {"provider": "microsoft", "token": graph_token(fakems, "eve")})
    assert r.status_code == 200, r.text
    sessions.append(("JWT API", requests.Session(), r.json()["jwt"]["access_token"]))
    for how, s, bearer in sessions:
        h = dict(NAV)
        if bearer:
            h["Authorization"] = "Bearer " + bearer
        env = env_of(s.get(httpd.url("/cgi/whoami.cgi"), headers=h, timeout=10).text)
        assert env["REMOTE_USER"] == "eve@northwind.example", (how, env)
        assert env["MSAUTH_TID"] == NORTHWIND_TID, how
        for path in ("/user/whoami.cgi", "/domain/whoami.cgi"):
            r = s.get(httpd.url(path), headers=h, allow_redirects=False, timeout=10)
            assert r.status_code == 403, (how, path, r.status_code)
    # alice herself: her address is her tenant's verified domain.
    b = Browser(httpd, fakems)
    b.login("/user/whoami.cgi", "alice")
    assert env_of(b.get("/user/whoami.cgi").text)["REMOTE_USER"] == "alice@contoso.example"
    assert b.get("/domain/whoami.cgi").status_code == 200


def test_without_graph_remote_user_is_oid_at_tid(httpd, fakems):
    """An app that asks Microsoft for the id_token only: eve's email is not vouched for
    (xms_edov false) nor is her preferred_username, so REMOTE_USER is <oid>@<tid>; alice's
    email is (xms_edov true)."""
    b = Browser(httpd, fakems)
    b.login("/oidc/whoami.cgi", "eve")
    env = env_of(b.get("/oidc/whoami.cgi").text)
    assert env["REMOTE_USER"] == "%s@%s" % (EVE_OID, NORTHWIND_TID), env
    assert env["MSAUTH_EMAIL"] == "alice@contoso.example"   # the app still sees the address
    b = Browser(httpd, fakems)
    b.login("/oidc/whoami.cgi", "alice")
    assert env_of(b.get("/oidc/whoami.cgi").text)["REMOTE_USER"] == "alice@contoso.example"


def test_trust_unverified_email_keeps_paras_behaviour(request, fakems):
    """MSAuthTrustUnverifiedEmail On: Para's raw email as REMOTE_USER and for ms-user."""
    h = Httpd(FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSigninFailure /failed?cause=?
Alias /para/ @DIR@/htdocs/cgi/
<Location /para/>
    AuthType Microsoft
    MSAuthTrustUnverifiedEmail On
    Require ms-user alice@contoso.example
</Location>
""", fakems, name="para").start()
    request.addfinalizer(h.cleanup)
    b = Browser(h, fakems)
    b.login("/para/whoami.cgi", "eve")
    r = b.get("/para/whoami.cgi")
    assert r.status_code == 200
    assert env_of(r.text)["REMOTE_USER"] == "alice@contoso.example"
    h.check_log()


def test_trust_unverified_email_is_checked_by_configtest(request, fakems):
    h = Httpd(FAKEMS_APP + """MSAuthSecretKey @KEY@
<Location /x>
    MSAuthTrustUnverifiedEmail maybe
</Location>
""", fakems, name="paracfg")
    request.addfinalizer(h.cleanup)
    rc, out = h.configtest()
    assert rc != 0 and "MSAuthTrustUnverifiedEmail" in out and "httpd.conf" in out, out
