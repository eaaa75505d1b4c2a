"""AuthType Microsoft: module-initiated login, verified ID tokens, identity for
legacy apps, Require ms-*, /logout and /me — against a real httpd and fakems."""

import base64
import hashlib
import json
import re
import time
import urllib.parse

import pytest
import requests

from msauth import (CLIENT_ID, CONTOSO_TID, FABRIKAM_TID, KEY, OLD_KEY, Httpd, hs256_sign,
                    hs256_valid, jwt_parts, query_of, FAKEMS_APP)

ALICE_GROUPS = ["0ff2f55e-dd4a-40fe-b20c-f5a5c0de67e7", "aae23af8-23c8-490a-8279-b61799c5a5b8"]
OIDC_CLIENT = "33333333-4444-5555-6666-777777777777"
OIDC_SECRET = "oidc-only-client-secret-0123456789"

LOCATIONS = {
    # path prefix: extra directives
    "/cgi/": "",
    "/p401/": "MSAuthUnauthAction 401",
    "/plogin/": "MSAuthUnauthAction login",
    "/pass/": "MSAuthUnauthAction pass",
    "/passuser/": "MSAuthUnauthAction pass",
    "/headers/": "MSAuthPassClaims headers\n    MSAuthEasyAuthHeaders On",
    "/both/": "MSAuthPassClaims both",
    "/upn/": "MSAuthRemoteUserClaim upn",
    "/nostrip/": "MSAuthStripCookie Off",
    "/nobearer/": "MSAuthAcceptBearer Off\n    MSAuthUnauthAction 401",
    "/groups/": "MSAuthApp groupsapp",
    "/graphgroups/": "MSAuthApp graphgroups",
    "/contoso/": "MSAuthApp contoso",
    "/oidc/": "MSAuthApp oidc",
    "/legacy/": "MSAuthApp legacy",
}
REQUIRES = {
    "/pass/": "Require all granted",
    "/groups/": "Require ms-group %s" % ALICE_GROUPS[0],
    "/user/": "Require ms-user alice@contoso.example carol@fabrikam.example",
    "/domain/": "Require ms-domain contoso.example",
    "/tenant/": "Require ms-tenant %s" % CONTOSO_TID,
    "/claim/": "Require ms-claim \"name=Alice Example\"",
}


def conf():
    blocks = []
    for path in sorted(set(LOCATIONS) | set(REQUIRES)):
        blocks.append("Alias %s @DIR@/htdocs/cgi/\n<Location %s>\n    AuthType Microsoft\n"
                      "    %s\n    %s\n</Location>" % (
                          path, path, LOCATIONS.get(path, ""),
                          REQUIRES.get(path, "Require valid-user")))
    return """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@ @OLD_KEY@
MSAuthSigninSuccess /welcome
MSAuthSigninFailure /failed?cause=?
MSAuthRedirectAllow https://partner.example.com/apps
# A site rule that copies a request header into the environment under the module's names.
SetEnvIf X-Spoof "(.+)" MSAUTH_EMAIL=$1 MSAUTH_GROUPS_0=$1 MSAUTH_GROUPS_1=$1 MSAUTH_GROUPS_N=9
# and a rule that reads them back, as mod_rewrite's %%{ENV:} and mod_headers' %%{}e do.
RequestHeader set X-MS-Echo "%%{MSAUTH_EMAIL}e %%{MSAUTH_GROUPS_0}e" "expr=-n req('X-Spoof')"
<MSAuthApp groupsapp>
    MSAuthGroups Token
</MSAuthApp>
<MSAuthApp graphgroups>
    MSAuthGroups Graph
</MSAuthApp>
<MSAuthApp contoso>
    MSAuthTenant organizations
    MSAuthAllowedTenants %s
    MSAuthSigninFailure /contoso-failed?cause=?
</MSAuthApp>
<MSAuthApp oidc>
    MSAuthClientID %s
    MSAuthClientSecret %s
    MSAuthScope openid profile email
</MSAuthApp>
<MSAuthApp legacy>
    MSAuthLegacyState On
    MSAuthSigninSuccess /tenant/whoami.cgi
</MSAuthApp>
""" % (CONTOSO_TID, OIDC_CLIENT, OIDC_SECRET) + "\n".join(blocks)


@pytest.fixture(scope="module")
def httpd(request, fakems):
    requests.post(fakems.base + "/_fakems/clients", json={
        "client_id": OIDC_CLIENT, "secret": OIDC_SECRET, "api_permissions": [], "groups": True},
        timeout=5).raise_for_status()
    h = Httpd(conf(), fakems, modules=["proxy", "proxy_http"], name="protect").start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(autouse=True)
def _log(httpd):
    """httpd.new_log() in a test starts at that test's own lines."""
    httpd.new_log()


NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}


class Browser:
    """A cookie jar that navigates like a browser does, one redirect at a time."""

    def __init__(self, httpd, fakems):
        self.httpd, self.fakems = httpd, fakems
        self.s = requests.Session()

    def get(self, path, headers=None, **kw):
        h = dict(NAV)
        h.update(headers or {})
        url = path if path.startswith("http") else self.httpd.url(path)
        return self.s.get(url, headers=h, allow_redirects=False, timeout=30, **kw)

    def start(self, path):
        """Navigates to path; returns Microsoft's authorize URL it was sent to."""
        r = self.get(path)
        assert r.status_code == 302, (r.status_code, r.text[:200])
        loc = r.headers["Location"]
        assert re.match(re.escape(self.fakems.base) + r"/[a-z]+/oauth2/v2\.0/authorize\?", loc), loc
        return loc

    def finish(self, authorize_url, user="alice"):
        """Picks the user on Microsoft's page and returns the callback's answer."""
        back = self.fakems.pick_user(authorize_url, user)
        assert back.startswith(self.httpd.origin + "/microsoft_auth?"), back
        return self.get(back)

    def login(self, path="/cgi/whoami.cgi", user="alice"):
        r = self.finish(self.start(path), user)
        assert r.status_code == 302, (r.status_code, r.headers, r.text[:300])
        return r

    def page(self, path, **kw):
        r = self.get(path, **kw)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return env_of(r.text)


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def session_token(b, name="msauth"):
    return b.s.cookies.get(name)


# Module-initiated login ---------------------------------------------------------

def test_navigation_logs_in_and_returns_to_the_page(httpd, fakems):
    b = Browser(httpd, fakems)
    b.s.cookies.set("other", "kept")
    auth = b.start("/cgi/whoami.cgi?x=1&y=two")
    q = query_of(auth)
    assert q["response_type"] == ["code"]
    assert q["client_id"] == [CLIENT_ID]
    assert q["redirect_uri"] == [httpd.origin + "/microsoft_auth"]
    assert q["code_challenge_method"] == ["S256"]
    assert re.fullmatch(r"\|[A-Za-z0-9_-]{20,}", q["state"][0]), q["state"]
    assert len(q["nonce"][0]) >= 20
    state_cookies = [c for c in b.s.cookies if c.name.startswith("msauth_state_")]
    assert len(state_cookies) == 1 and state_cookies[0].path == "/"
    r = b.finish(auth)
    assert r.status_code == 302
    assert r.headers["Location"] == "/cgi/whoami.cgi?x=1&y=two"
    assert not [c for c in b.s.cookies if c.name.startswith("msauth_state_")]
    env = b.page("/cgi/whoami.cgi?x=1&y=two")
    assert env["REMOTE_USER"] == "alice@contoso.example"
    assert env["AUTH_TYPE"] == "Microsoft"
    assert env["MSAUTH_ID"] == "be20621b-842c-419d-a42f-f98f10de9f92"
    assert env["MSAUTH_IDENTIFIER"] == "ms:be20621b-842c-419d-a42f-f98f10de9f92"
    assert env["MSAUTH_NAME"] == "Alice Example"
    assert env["MSAUTH_EMAIL"] == "alice@contoso.example"
    assert env["MSAUTH_UPN"] == "alice@contoso.example"
    assert env["MSAUTH_TID"] == CONTOSO_TID
    assert env["MSAUTH_APPID"] == "default"
    assert abs(int(env["MSAUTH_EXPIRES"]) - (time.time() + 86400)) < 10
    # The app sees its own cookies, never the module's.
    assert env["HTTP_COOKIE"] == "other=kept"


def test_pkce_and_client_authentication_sent_to_microsoft(httpd, fakems):
    b = Browser(httpd, fakems)
    auth = b.start("/cgi/whoami.cgi")
    b.finish(auth)
    call = [q for q in fakems.requests() if q["path"].endswith("/token")][-1]
    verifier = call["form"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert challenge.decode() == query_of(auth)["code_challenge"][0]
    assert call["auth"] == "post"
    assert call["form"]["redirect_uri"] == httpd.origin + "/microsoft_auth"


def test_login_endpoint_with_return_to(httpd, fakems):
    b = Browser(httpd, fakems)
    r = b.get("/microsoft_auth/login?appid=groupsapp&return_to=/groups/whoami.cgi")
    assert r.status_code == 302
    q = query_of(r.headers["Location"])
    assert q["state"][0].startswith("groupsapp|")
    r = b.finish(r.headers["Location"])
    assert r.headers["Location"] == "/groups/whoami.cgi"
    assert "msauth-groupsapp" in b.s.cookies.keys()


def test_login_without_return_to_lands_on_success_url(httpd, fakems):
    b = Browser(httpd, fakems)
    r = b.get("/microsoft_auth/login")
    r = b.finish(r.headers["Location"])
    assert r.headers["Location"] == "/welcome"


@pytest.mark.parametrize("target", [
    "//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "https:evil.example", "https://evil.example/", "http://127.0.0.1.evil.example/",
    "%2F%2Fevil.example", "/%2F/evil.example", "/\t/evil.example", "/\r\n/evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x",
    "https://partner.example.com.evil.example/apps", "https://partner.example.com/appsx",
])
def test_hostile_return_to_is_never_followed(httpd, fakems, target):
    b = Browser(httpd, fakems)
    r = b.get("/microsoft_auth/login?return_to=" + urllib.parse.quote(target, safe=""))
    assert r.status_code == 302
    r = b.finish(r.headers["Location"])
    assert r.headers["Location"] == "/welcome"
    assert "return_to_refused" in httpd.new_log()


@pytest.mark.parametrize("target", ["/cgi/whoami.cgi?a=b", "https://partner.example.com/apps/x",
                                    "https://partner.example.com/apps"])
def test_good_return_to_is_followed(httpd, fakems, target):
    b = Browser(httpd, fakems)
    r = b.get("/microsoft_auth/login?return_to=" + urllib.parse.quote(target, safe=""))
    r = b.finish(r.headers["Location"])
    assert r.headers["Location"] == target


def test_parallel_logins_in_two_tabs(httpd, fakems):
    b = Browser(httpd, fakems)
    first = b.start("/cgi/whoami.cgi?tab=1")
    second = b.start("/cgi/whoami.cgi?tab=2")
    r2 = b.finish(second)
    assert r2.headers["Location"] == "/cgi/whoami.cgi?tab=2"
    r1 = b.finish(first)
    assert r1.headers["Location"] == "/cgi/whoami.cgi?tab=1"


def test_old_state_cookies_are_pruned(httpd, fakems):
    b = Browser(httpd, fakems)
    for i in range(8):
        b.start("/cgi/whoami.cgi?n=%d" % i)
        assert len([c for c in b.s.cookies if c.name.startswith("msauth_state_")]) <= 4
    # The newest one still works.
    last = b.start("/cgi/whoami.cgi?n=last")
    assert b.finish(last).headers["Location"] == "/cgi/whoami.cgi?n=last"


# Refusals at the callback ---------------------------------------------------------

def cause_of(r, prefix="/failed?cause="):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    assert loc.startswith(prefix), loc
    return loc[len(prefix):]


def test_state_from_another_browser_is_refused(httpd, fakems):
    alice = Browser(httpd, fakems)
    auth = alice.start("/cgi/whoami.cgi")
    back = fakems.pick_user(auth)
    mallory = Browser(httpd, fakems)  # no state cookie: a login CSRF attempt
    assert cause_of(mallory.get(back)) == "invalid_state"


def test_replayed_state_and_cookie_are_refused(httpd, fakems):
    b = Browser(httpd, fakems)
    auth = b.start("/cgi/whoami.cgi")
    cookies = {c.name: c.value for c in b.s.cookies}
    back = fakems.pick_user(auth)
    assert b.get(back).status_code == 302
    replay = requests.get(back, cookies=cookies, allow_redirects=False, timeout=10)
    assert cause_of(replay) == "invalid_state"


def test_state_cookie_of_another_login_is_refused(httpd, fakems):
    b = Browser(httpd, fakems)
    auth1 = b.start("/cgi/whoami.cgi")
    cookie1 = [c for c in b.s.cookies if c.name.startswith("msauth_state_")][0]
    other = Browser(httpd, fakems)
    auth2 = other.start("/cgi/whoami.cgi")
    name2 = [c for c in other.s.cookies if c.name.startswith("msauth_state_")][0].name
    back2 = fakems.pick_user(auth2)
    # Browser 2's state, presented with browser 1's cookie value under browser 2's name.
    r = requests.get(back2, cookies={name2: cookie1.value}, allow_redirects=False, timeout=10)
    assert cause_of(r) == "invalid_state"


def test_tampered_state_cookie_is_refused(httpd, fakems):
    b = Browser(httpd, fakems)
    auth = b.start("/cgi/whoami.cgi")
    c = [c for c in b.s.cookies if c.name.startswith("msauth_state_")][0]
    back = fakems.pick_user(auth)
    for i in (-5, 40, 60):  # tag, iv, ciphertext
        v = c.value[:i] + ("A" if c.value[i] != "A" else "B") + c.value[i + 1:] if i > 0 else \
            c.value[:i] + ("A" if c.value[i] != "A" else "B") + c.value[i + 1:]
        r = requests.get(back, cookies={c.name: v}, allow_redirects=False, timeout=10)
        assert cause_of(r) == "invalid_state"


@pytest.mark.parametrize("knob", ["wrong_key", "alg_none", "hs256", "wrong_aud", "wrong_iss",
                                  "iss_tid_mismatch", "wrong_nonce", "no_nonce", "expired",
                                  "future"])
def test_bad_id_tokens_are_refused(httpd, fakems, knob):
    httpd.expect_warn(r"msauth: login_failed: cause=invalid_id_token appid=default: ")
    b = Browser(httpd, fakems)
    auth = b.start("/cgi/whoami.cgi")
    fakems.faults(id_token=knob)
    r = b.finish(auth)
    assert cause_of(r) == "invalid_id_token"
    assert "msauth" not in b.s.cookies.keys()


def test_tenant_outside_the_allow_list(httpd, fakems):
    httpd.expect_warn(r"msauth: login_failed: cause=tenant_not_allowed appid=contoso: tenant %s "
                      r"is not allowed" % FABRIKAM_TID)
    b = Browser(httpd, fakems)
    auth = b.start("/contoso/whoami.cgi")
    r = b.finish(auth, user="carol")  # fabrikam, not allowed
    assert cause_of(r, "/contoso-failed?cause=") == "tenant_not_allowed"
    b = Browser(httpd, fakems)
    r = b.login("/contoso/whoami.cgi", user="alice")
    assert r.headers["Location"] == "/contoso/whoami.cgi"
    assert b.page("/contoso/whoami.cgi")["MSAUTH_TID"] == CONTOSO_TID


def test_key_rollover_refetches_the_jwks_once(request, fakems):
    h = Httpd(conf(), fakems, modules=["proxy", "proxy_http"], name="jwks").start()
    request.addfinalizer(h.cleanup)
    Browser(h, fakems).login()
    assert fakems.stats()["jwks_fetches"] == 1
    b = Browser(h, fakems)
    auth = b.start("/cgi/whoami.cgi")
    fakems.faults(id_token="unknown_kid", count=1)
    assert b.finish(auth).headers["Location"] == "/cgi/whoami.cgi"
    assert fakems.stats()["jwks_fetches"] == 2
    # Another new key within the minute: no third fetch, the login fails.
    b = Browser(h, fakems)
    auth = b.start("/cgi/whoami.cgi")
    fakems.faults(id_token="unknown_kid", count=1)
    assert cause_of(b.finish(auth)) == "invalid_id_token"
    assert fakems.stats()["jwks_fetches"] == 2
    h.expect_warn(r"msauth: login_failed: cause=invalid_id_token appid=default: kid not in JWKS "
                  r"\(refreshed less than a minute ago\)")
    for _ in range(3):
        Browser(h, fakems).login()
    assert fakems.stats()["jwks_fetches"] == 2
    h.check_log()


def test_identity_from_the_id_token_without_graph(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/oidc/whoami.cgi", user="bob")
    env = b.page("/oidc/whoami.cgi")
    assert not [q for q in fakems.requests() if q["path"] == "/v1.0/me"]
    # Without Graph the id is the id_token's oid (not Graph's 16-hex id).
    assert env["MSAUTH_ID"] == "00000000-0000-0000-66f3-3332eca7ea81"
    assert env["MSAUTH_EMAIL"] == "bob@outlook.example"
    assert env["MSAUTH_TID"] == "9188040d-6c67-4c5b-b112-36a304b66dad"


# What reaches the app ---------------------------------------------------------------

def test_spoofed_identity_headers_are_removed(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/headers/whoami.cgi")
    spoof = {"X-MSAuth-Id": "evil", "x-msauth-email": "evil@x", "X_MSAuth_Name": "evil",
             "X-MSAUTH_UPN": "evil", "X-MS-CLIENT-PRINCIPAL-NAME": "evil",
             "x_ms_client_principal": "ZXZpbA==", "X-Ms-Client-Principal-Idp": "evil",
             "X-MSAuth-Groups": "admins"}
    env = b.page("/headers/whoami.cgi", headers=spoof)
    assert env["HTTP_X_MSAUTH_ID"] == "be20621b-842c-419d-a42f-f98f10de9f92"
    assert env["HTTP_X_MSAUTH_EMAIL"] == "alice@contoso.example"
    assert env["HTTP_X_MSAUTH_NAME"] == "Alice Example"
    assert env["HTTP_X_MSAUTH_UPN"] == "alice@contoso.example"
    assert "HTTP_X_MSAUTH_GROUPS" not in env
    assert "evil" not in json.dumps(env)
    # headers only: no MSAUTH_* environment
    assert not [k for k in env if k.startswith("MSAUTH_")]
    # env mode: no identity headers at all, spoofed or not
    env = b.page("/cgi/whoami.cgi", headers=spoof)
    assert not [k for k in env if k.startswith("HTTP_X_MS")]


def test_easy_auth_headers(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/headers/whoami.cgi")
    env = b.page("/headers/whoami.cgi")
    assert env["HTTP_X_MS_CLIENT_PRINCIPAL_NAME"] == "alice@contoso.example"
    assert env["HTTP_X_MS_CLIENT_PRINCIPAL_ID"] == "be20621b-842c-419d-a42f-f98f10de9f92"
    assert env["HTTP_X_MS_CLIENT_PRINCIPAL_IDP"] == "aad"
    principal = json.loads(base64.b64decode(env["HTTP_X_MS_CLIENT_PRINCIPAL"], validate=True))
    assert principal["auth_typ"] == "aad"
    assert principal["name_typ"] == "name" and principal["role_typ"] == "roles"
    claims = {(c["typ"], c["val"]) for c in principal["claims"]}
    assert ("name", "Alice Example") in claims
    assert ("preferred_username", "alice@contoso.example") in claims
    assert ("tid", CONTOSO_TID) in claims
    assert ("oid", "be20621b-842c-419d-a42f-f98f10de9f92") in claims


def test_both_and_upn_and_nostrip(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/both/whoami.cgi", user="dave")
    env = b.page("/both/whoami.cgi")
    assert env["MSAUTH_EMAIL"] == env["HTTP_X_MSAUTH_EMAIL"] == "dave@gmail.example"
    env = b.page("/upn/whoami.cgi")
    assert env["REMOTE_USER"] == "dave_gmail.example#EXT#@contoso.example"
    env = b.page("/nostrip/whoami.cgi")
    assert "msauth=" in env["HTTP_COOKIE"]


def test_control_characters_never_reach_the_app(httpd, fakems):
    requests.post(fakems.base + "/_fakems/users", json={
        "name": "mallory", "tid": CONTOSO_TID, "oid": "11111111-0000-4000-8000-00000000000a",
        "displayName": "Mal\r\nX-Injected: yes\x07", "mail": "mallory@contoso.example",
        "upn": "mallory@contoso.example"}, timeout=5).raise_for_status()
    b = Browser(httpd, fakems)
    b.login("/both/whoami.cgi", user="mallory")
    r = b.get("/both/whoami.cgi")
    assert r.status_code == 200
    env = env_of(r.text)
    assert "X-Injected" not in env and "HTTP_X_INJECTED" not in env
    assert env["MSAUTH_NAME"].startswith("Mal") and "\x07" not in r.text
    assert env["HTTP_X_MSAUTH_NAME"].startswith("Mal  X-Injected: yes")


def test_a_lone_control_character_deep_in_a_value_is_replaced(httpd, fakems):
    """A DEL or a tab alone, past the first eight bytes of the value: found all the same."""
    requests.post(fakems.base + "/_fakems/users", json={
        "name": "trudy", "tid": CONTOSO_TID, "oid": "11111111-0000-4000-8000-00000000000b",
        "displayName": "Trudy Tester of the\x7fteam\tX", "mail": "trudy@contoso.example",
        "upn": "trudy@contoso.example"}, timeout=5).raise_for_status()
    b = Browser(httpd, fakems)
    b.login("/both/whoami.cgi", user="trudy")
    env = env_of(b.get("/both/whoami.cgi").text)
    assert env["MSAUTH_NAME"] == "Trudy Tester of the team X", env["MSAUTH_NAME"]
    assert env["HTTP_X_MSAUTH_NAME"] == "Trudy Tester of the team X"


# Without a session --------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"Accept": "application/json"},
    {"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"},
    {"Accept": "text/html", "Sec-Fetch-Mode": "cors"},
    {"Accept": "*/*"},
])
def test_non_navigation_gets_401(httpd, headers):
    r = requests.get(httpd.url("/cgi/whoami.cgi"), headers=headers, allow_redirects=False,
                     timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="default"'


def test_post_gets_401(httpd):
    r = requests.post(httpd.url("/cgi/whoami.cgi"), headers=NAV, allow_redirects=False,
                      timeout=10)
    assert r.status_code == 401


def test_head_navigation_redirects(httpd):
    r = requests.head(httpd.url("/cgi/whoami.cgi"), headers=NAV, allow_redirects=False,
                      timeout=10)
    assert r.status_code == 302


def test_unauth_actions(httpd, fakems):
    r = requests.get(httpd.url("/p401/whoami.cgi"), headers=NAV, allow_redirects=False, timeout=10)
    assert r.status_code == 401
    r = requests.get(httpd.url("/plogin/whoami.cgi"), headers={"Accept": "application/json"},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(fakems.base)
    r = requests.get(httpd.url("/pass/whoami.cgi"), headers=NAV, allow_redirects=False, timeout=10)
    assert r.status_code == 200
    assert "REMOTE_USER" not in env_of(r.text)
    # pass is an optional login: a signed-in user is known there, cookie or Bearer.
    b = Browser(httpd, fakems)
    b.login()
    s = b.s
    r = s.get(httpd.url("/pass/whoami.cgi"), headers=NAV, allow_redirects=False, timeout=10)
    assert r.status_code == 200 and env_of(r.text).get("REMOTE_USER") == "alice@contoso.example"
    r = requests.get(httpd.url("/pass/whoami.cgi"), allow_redirects=False, timeout=10,
                     headers={"Authorization": "Bearer " + s.cookies["msauth"]})
    assert env_of(r.text).get("REMOTE_USER") == "alice@contoso.example", r.text
    # Under a Require that needs a user, pass cannot let an anonymous request in: 401, no
    # login, never Apache's 500 for a request authenticated by nobody.
    r = requests.get(httpd.url("/passuser/whoami.cgi"), headers=NAV, allow_redirects=False,
                     timeout=10)
    assert r.status_code == 401 and "Location" not in r.headers, (r.status_code, r.headers)


@pytest.mark.parametrize("cookie", [
    "garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", "x" * 7000,
], ids=["garbage", "three-dots", "no-signature", "7kb"])
def test_bad_cookies(httpd, cookie):
    r = requests.get(httpd.url("/cgi/whoami.cgi"), cookies={"msauth": cookie},
                     headers={"Accept": "application/json"}, allow_redirects=False, timeout=10)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = requests.get(httpd.url("/cgi/whoami.cgi"), cookies={"msauth": cookie}, headers=NAV,
                     allow_redirects=False, timeout=10)
    assert r.status_code == 302


def test_20kb_cookie_is_refused_by_apache_not_a_500(httpd):
    r = requests.get(httpd.url("/cgi/whoami.cgi"), cookies={"msauth": "x" * 20000}, headers=NAV,
                     allow_redirects=False, timeout=10)
    assert r.status_code == 400
    httpd.expect_error(r"AH00561|Request header exceeds")


def test_truncated_and_resigned_tokens(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    good = session_token(b)
    _, claims, _ = jwt_parts(good)
    bad = [good[:-10], good.rsplit(".", 1)[0] + ".",
           hs256_sign(claims, "some-other-key-0123456789-abcdefghij"),
           hs256_sign(claims, KEY, header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + ".",
           hs256_sign(dict(claims, exp=int(time.time()) - 3600)),
           hs256_sign(dict(claims, token_use="id")),
           hs256_sign(dict(claims, appid="groupsapp"))]
    for t in bad:
        r = requests.get(httpd.url("/cgi/whoami.cgi"), headers={"Authorization": "Bearer " + t},
                         allow_redirects=False, timeout=10)
        assert r.status_code == 401, t
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_bearer_and_key_rotation(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    _, claims, _ = jwt_parts(session_token(b))
    for key in (KEY, OLD_KEY):
        t = hs256_sign(dict(claims, jti="rot-" + key[:8]), key)
        r = requests.get(httpd.url("/cgi/whoami.cgi"), headers={"Authorization": "Bearer " + t},
                         timeout=10)
        assert r.status_code == 200
        assert env_of(r.text)["REMOTE_USER"] == "alice@contoso.example"
    assert hs256_valid(session_token(b), KEY)  # new tokens use the first key
    r = requests.get(httpd.url("/nobearer/whoami.cgi"),
                     headers={"Authorization": "Bearer " + session_token(b)}, timeout=10)
    assert r.status_code == 401


def test_session_of_one_app_does_not_open_another(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi")
    token = session_token(b, "msauth-groupsapp")
    r = requests.get(httpd.url("/cgi/whoami.cgi"), headers={"Authorization": "Bearer " + token},
                     timeout=10)
    assert r.status_code == 401


# Groups and Require ms-* ------------------------------------------------------------------

def test_groups_from_the_id_token(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi")
    env = b.page("/groups/whoami.cgi")
    assert env["MSAUTH_GROUPS_N"] == "2"
    assert env["MSAUTH_GROUPS"] == ",".join(ALICE_GROUPS)
    assert [env["MSAUTH_GROUPS_0"], env["MSAUTH_GROUPS_1"]] == ALICE_GROUPS
    assert not [q for q in fakems.requests() if "transitiveMemberOf" in q["path"]]


def test_identity_set_by_a_site_rule_is_replaced_not_doubled(httpd, fakems):
    """SetEnvIf put MSAUTH_* in the environment before the module: the app sees the
    session's values, once each."""
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi")
    r = b.get("/groups/whoami.cgi", headers={"X-Spoof": "admins"})
    assert r.status_code == 200
    lines = [l for l in r.text.splitlines() if l.startswith("MSAUTH_")]
    env = env_of(r.text)
    assert env["MSAUTH_EMAIL"] == "alice@contoso.example"
    assert [env["MSAUTH_GROUPS_0"], env["MSAUTH_GROUPS_1"]] == ALICE_GROUPS
    assert env["MSAUTH_GROUPS_N"] == "2"
    assert "admins" not in r.text
    assert env["HTTP_X_MS_ECHO"] == "alice@contoso.example %s" % ALICE_GROUPS[0]
    names = [l.split("=", 1)[0] for l in lines]
    assert len(names) == len(set(names)), sorted(names)


def test_group_overage_reads_graph_and_keeps_one_small_cookie(httpd, fakems):
    b = Browser(httpd, fakems)
    r = b.finish(b.start("/graphgroups/whoami.cgi"), user="erin")
    set_cookie = [v for v in r.raw.headers.getlist("Set-Cookie") if v.startswith("msauth-graphgroups=")]
    assert len(set_cookie) == 1 and len(set_cookie[0].split(";")[0]) < 4096
    env = b.page("/graphgroups/whoami.cgi")
    assert env["MSAUTH_GROUPS_N"] == "250"
    assert len(env["MSAUTH_GROUPS"].split(",")) == 250
    assert "MSAUTH_GROUPS_249" in env
    # Token mode: the overage marker sends the module to Graph.
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi", user="erin")
    calls = [q for q in fakems.requests() if "transitiveMemberOf" in q["path"]]
    assert len(calls) == 2  # one a login: 250 groups fit a page of 999
    httpd.expect_error(r"AH01631: user erin@contoso.example: authorization failure")
    r = b.get("/groups/whoami.cgi")
    assert r.status_code == 403  # erin is not in alice's group


def test_require_ms_group(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi", user="alice")
    assert b.get("/groups/whoami.cgi").status_code == 200
    b = Browser(httpd, fakems)
    b.login("/groups/whoami.cgi", user="carol")
    httpd.expect_error(r"AH01631: user carol@fabrikam.example: authorization failure")
    r = b.get("/groups/whoami.cgi")
    assert r.status_code == 403
    assert "WWW-Authenticate" not in r.headers
    assert "not open to your account" in r.text


@pytest.mark.parametrize("path,allowed,denied", [
    ("/user/", "alice", "bob"),
    ("/domain/", "alice", "carol"),
    ("/tenant/", "alice", "bob"),
    ("/claim/", "alice", "carol"),
])
def test_require_rules(httpd, fakems, path, allowed, denied):
    b = Browser(httpd, fakems)
    b.login(path + "whoami.cgi", user=allowed)
    assert b.get(path + "whoami.cgi").status_code == 200
    b = Browser(httpd, fakems)
    b.login(path + "whoami.cgi", user=denied)
    # mod_authz_core logs every refusal at error level: the one line expected here
    httpd.expect_error(r"AH01631: user [^ ]+: authorization failure for \"%s" % path)
    r = b.get(path + "whoami.cgi")
    assert r.status_code == 403  # signed in but not allowed: no login loop


def test_seed_session_knows_its_tenant_from_graph(httpd, fakems):
    from msauth import seed_authorize_url
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, "legacy"))
    s = requests.Session()
    r = s.get(back, allow_redirects=False, timeout=10)
    assert r.headers["Location"] == "/tenant/whoami.cgi"
    r = s.get(httpd.url("/legacy/whoami.cgi"), timeout=10)
    assert env_of(r.text)["MSAUTH_TID"] == CONTOSO_TID   # Graph /v1.0/organization
    token = s.cookies["msauth-legacy"]
    # same user, legacy app's token, on the root app's tenant rule: refused
    r = s.get(httpd.url("/tenant/whoami.cgi"), headers={"Authorization": "Bearer " + token},
              timeout=10)
    assert r.status_code == 401


# /logout and /me -----------------------------------------------------------------------

def test_me(httpd, fakems):
    r = requests.get(httpd.url("/microsoft_auth/me"), timeout=10)
    assert r.status_code == 401 and r.json()["code"] == 401
    b = Browser(httpd, fakems)
    b.login()
    r = b.s.get(httpd.url("/microsoft_auth/me"), timeout=10)
    assert r.status_code == 200
    me = r.json()
    assert me["id"] == "be20621b-842c-419d-a42f-f98f10de9f92"
    assert me["email"] == "alice@contoso.example" and me["tid"] == CONTOSO_TID
    assert me["appid"] == "default"
    assert r.headers["Cache-Control"] == "no-store"


def test_logout_clears_and_revokes(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    token = session_token(b)
    r = b.get("/microsoft_auth/logout?return_to=/cgi/whoami.cgi")
    assert r.status_code == 302 and r.headers["Location"] == "/cgi/whoami.cgi"
    assert any(v.startswith("msauth=;") and "Max-Age=0" in v
               for v in r.raw.headers.getlist("Set-Cookie"))
    # The token is dead even where it was copied.
    r = requests.get(httpd.url("/cgi/whoami.cgi"), headers={"Authorization": "Bearer " + token},
                     timeout=10)
    assert r.status_code == 401
    r = requests.get(httpd.url("/microsoft_auth/me"), cookies={"msauth": token}, timeout=10)
    assert r.status_code == 401


def test_logout_refuses_hostile_return_to_and_signs_out_of_microsoft(httpd, fakems):
    b = Browser(httpd, fakems)
    b.login()
    r = b.get("/microsoft_auth/logout?return_to=//evil.example/")
    assert r.headers["Location"] == "/"
    b.login()
    r = b.get("/microsoft_auth/logout?sso=1&return_to=/bye")
    loc = r.headers["Location"]
    assert loc.startswith(fakems.base + "/common/oauth2/v2.0/logout?")
    assert query_of(loc)["post_logout_redirect_uri"] == [httpd.origin + "/bye"]
