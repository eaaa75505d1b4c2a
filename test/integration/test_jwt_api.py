"""The Para-compatible JWT API and passwordless sign-in against a real httpd."""

import json
import time

import pytest
import requests

from msauth import (CLIENT_ID, KEY, OLD_KEY, Httpd, hs256_sign, hs256_valid, jwt_parts, query_of,
                    seed_authorize_url, FAKEMS_APP)

OTHER_KEY = "other-app-signing-key-0123456789-abcdef"
CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@ @OLD_KEY@
MSAuthLegacyState On
MSAuthSigninSuccess /?jwt=id
MSAuthSigninFailure /?cause=?
MSAuthCORSOrigins https://spa.example.com http://127.0.0.1:9999
<MSAuthApp other>
    MSAuthSecretKey %s
    MSAuthSigninSuccess /other?jwt=id
    MSAuthSessionTimeout 600
    MSAuthRefreshInterval 120
</MSAuthApp>
Alias /api/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    Require valid-user
</Location>
""" % OTHER_KEY


@pytest.fixture(scope="module")
def httpd(request, fakems):
    h = Httpd(CONF, fakems, name="jwtapi").start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture(autouse=True)
def _log(httpd):
    """httpd.new_log() in a test starts at that test's own lines."""
    httpd.new_log()


def id_token(fakems, httpd, appid=None, user="alice"):
    """An ID token from the seed flow's jwt=id landing."""
    back = fakems.pick_user(seed_authorize_url(fakems, httpd, appid), user)
    r = requests.get(back, allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text
    return query_of(r.headers["Location"])["jwt"][0]


def api(httpd, method="POST", body=None, token=None, headers=None, raw=None):
    h = {"Content-Type": "application/json"} if method == "POST" else {}
    if token:
        h["Authorization"] = "Bearer " + token
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, httpd.url("/jwt_auth"), data=data, headers=h, timeout=15)


def assert_error(r, code):
    assert r.status_code == code, (r.status_code, r.text)
    doc = r.json()
    assert doc["code"] == code and isinstance(doc["message"], str) and doc["message"]
    if code == 401:
        assert r.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def assert_token_answer(r, appid="default", key=KEY):
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    jwt = doc["jwt"]["access_token"]
    assert hs256_valid(jwt, key)
    _, claims, _ = jwt_parts(jwt)
    assert claims["token_use"] == "session" and claims["appid"] == appid
    # Para's shape: epoch milliseconds.
    assert doc["jwt"]["expires"] == claims["exp"] * 1000
    assert doc["jwt"]["refresh"] == claims["refresh"]
    assert abs(doc["jwt"]["expires"] / 1000 - time.time() - (claims["exp"] - claims["iat"])) < 5
    user = doc["user"]
    assert user["id"] == claims["sub"] and user["identifier"] == "ms:" + claims["sub"]
    assert user["appid"] == appid
    return jwt, claims, user


def test_passwordless_exchange(fakems, httpd):
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    jwt, claims, user = assert_token_answer(r)
    assert user["email"] == "alice@contoso.example" and user["name"] == "Alice Example"
    # The session token opens protected locations as a Bearer token.
    r = requests.get(httpd.url("/api/whoami.cgi"), headers={"Authorization": "Bearer " + jwt},
                     timeout=10)
    assert r.status_code == 200 and "REMOTE_USER=alice@contoso.example" in r.text


def test_passwordless_for_a_named_app_with_and_without_appid(fakems, httpd):
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd, "other")})
    _, claims, _ = assert_token_answer(r, "other", OTHER_KEY)
    assert claims["exp"] - claims["iat"] == 600
    assert claims["refresh"] == (claims["iat"] + 120) * 1000
    r = api(httpd, body={"appid": "other", "provider": "passwordless",
                         "token": id_token(fakems, httpd, "other")})
    assert_token_answer(r, "other", OTHER_KEY)


def test_passwordless_replay_is_refused(fakems, httpd):
    token = id_token(fakems, httpd)
    assert api(httpd, body={"provider": "passwordless", "token": token}).status_code == 200
    assert_error(api(httpd, body={"provider": "passwordless", "token": token}), 401)


def test_token_for_app_a_presented_to_app_b(fakems, httpd):
    token = id_token(fakems, httpd)  # root app
    assert_error(api(httpd, body={"appid": "other", "provider": "passwordless", "token": token}),
                 401)


def test_microsoft_access_token(fakems, httpd):
    at = requests.post(fakems.base + "/_fakems/access_token",
                       json={"user": "carol", "client_id": CLIENT_ID, "scope": "User.Read"},
                       timeout=5).json()["access_token"]
    r = api(httpd, body={"appid": "other", "provider": "microsoft", "token": at})
    _, claims, user = assert_token_answer(r, "other", OTHER_KEY)
    assert user["email"] == "carol@fabrikam.example"
    assert [q for q in fakems.requests() if q["path"] == "/v1.0/me"]


def test_microsoft_access_token_refused_by_graph(fakems, httpd):
    assert_error(api(httpd, body={"provider": "microsoft", "token": "not-a-graph-token"}), 401)


def test_microsoft_unreachable(fakems, httpd):
    at = requests.post(fakems.base + "/_fakems/access_token", json={"user": "alice"},
                       timeout=5).json()["access_token"]
    fakems.faults(graph="hang")
    httpd.expect_warn(r"msauth: graph_unreachable: Graph /me: "
                      r"GET http://127\.0\.0\.1:\d+/v1\.0/me: Operation timed out")
    start = time.time()
    assert_error(api(httpd, body={"provider": "microsoft", "token": at}), 502)
    assert time.time() - start < 5


def test_refresh(fakems, httpd):
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    jwt, claims, _ = assert_token_answer(r)
    time.sleep(1.1)
    r = api(httpd, "GET", token=jwt)
    jwt2, claims2, _ = assert_token_answer(r)
    assert claims2["sub"] == claims["sub"] and claims2["jti"] != claims["jti"]
    assert claims2["iat"] > claims["iat"]


def test_revoke_then_reuse(fakems, httpd):
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    jwt, claims, _ = assert_token_answer(r)
    r2 = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    other_jwt, _, _ = assert_token_answer(r2)
    r = api(httpd, "DELETE", token=jwt)
    assert r.status_code == 200
    assert r.json() == {"code": 200, "message": "All tokens revoked for user %s!" % claims["sub"]}
    # Every earlier token of that user for that app is dead, wherever it is presented.
    assert_error(api(httpd, "GET", token=jwt), 401)
    assert_error(api(httpd, "GET", token=other_jwt), 401)
    r = requests.get(httpd.url("/api/whoami.cgi"), headers={"Authorization": "Bearer " + jwt,
                                                            "Accept": "application/json"},
                     timeout=10)
    assert r.status_code == 401
    # A login after the revocation works.
    time.sleep(1.1)
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    assert_token_answer(r)


def test_rotation_old_key_accepted_new_tokens_use_new_key(fakems, httpd):
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)})
    jwt, claims, _ = assert_token_answer(r, key=KEY)
    old = hs256_sign(dict(claims, jti="rotated-1"), OLD_KEY)
    r = api(httpd, "GET", token=old)
    new, _, _ = assert_token_answer(r, key=KEY)
    assert not hs256_valid(new, OLD_KEY)
    # An ID token signed with the old key is still good too.
    _, idc, _ = jwt_parts(id_token(fakems, httpd))
    r = api(httpd, body={"provider": "passwordless",
                         "token": hs256_sign(dict(idc, jti="rotated-id-1"), OLD_KEY)})
    assert_token_answer(r)


@pytest.mark.parametrize("raw,code", [
    ("", 400), ("not json", 400), ("[]", 400), ('"token"', 400), ("{", 400),
    ('{"provider":"passwordless"}', 400), ('{"token":"x"}', 400),
    ('{"provider":"github","token":"x"}', 400), ('{"provider":1,"token":"x"}', 400),
    ('{"provider":"passwordless","token":["x"]}', 400),
    ('{"provider":"passwordless","token":""}', 400),
    ('{"provider":"passwordless","token":"x","appid":"nosuchapp"}', 400),
    ('{"provider":"passwordless","token":"x"} trailing', 400),
    ('{"provider":"passwordless","token":"x","appid":7}', 400),
])
def test_bad_bodies(httpd, raw, code):
    assert_error(api(httpd, raw=raw), code)


def test_body_over_64k(httpd):
    big = json.dumps({"provider": "passwordless", "token": "x" * (65 * 1024)})
    assert_error(api(httpd, raw=big), 413)


def test_not_json_content_type(httpd):
    r = requests.post(httpd.url("/jwt_auth"), data="provider=passwordless&token=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert_error(r, 415)


def test_bad_tokens(fakems, httpd):
    good = id_token(fakems, httpd)
    _, claims, _ = jwt_parts(good)
    session = hs256_sign(dict(claims, token_use="session", jti="s1"))
    bad = {
        "truncated": good[:-12],
        "resigned": hs256_sign(dict(claims, jti="r1"), "attacker-key-0123456789-0123456789-x"),
        "alg none": hs256_sign(dict(claims, jti="n1"), header={"alg": "none"}).rsplit(".", 1)[0] + ".",
        "expired": hs256_sign(dict(claims, jti="e1", exp=int(time.time()) - 600)),
        "session token": session,
        "other app": hs256_sign(dict(claims, jti="o1", appid="other")),
    }
    for name, token in bad.items():
        r = api(httpd, body={"provider": "passwordless", "token": token})
        assert r.status_code == 401, name
    # GET/DELETE without or with bad bearer
    assert_error(api(httpd, "GET"), 401)
    assert_error(api(httpd, "DELETE", token=good), 401)  # an ID token is no session token
    assert_error(api(httpd, "GET", token="a.b.c"), 401)


def test_other_methods(httpd):
    r = requests.put(httpd.url("/jwt_auth"), data="{}", timeout=10)
    assert_error(r, 405)


def test_cors_allowed_origin(fakems, httpd):
    r = requests.options(httpd.url("/jwt_auth"), headers={
        "Origin": "https://spa.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"}, timeout=10)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://spa.example.com"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Origin" in r.headers["Vary"]
    r = api(httpd, body={"provider": "passwordless", "token": id_token(fakems, httpd)},
            headers={"Origin": "https://spa.example.com"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://spa.example.com"


def test_cors_other_origin(httpd):
    r = requests.options(httpd.url("/jwt_auth"), headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}, timeout=10)
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers
    r = api(httpd, raw="{}", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_wildcard_refused_by_configtest(fakems):
    h = Httpd(CONF.replace("MSAuthCORSOrigins https://spa.example.com", "MSAuthCORSOrigins *"),
              fakems, name="cors")
    try:
        rc, out = h.configtest()
    finally:
        h.cleanup()
    assert rc != 0 and "MSAuthCORSOrigins" in out


def test_browser_passwordless(fakems, httpd):
    """The page the success URL lands on posts the ID token back (same origin)."""
    def post(fields, session=requests):
        return session.post(httpd.url("/microsoft_auth/passwordless"), data=fields,
                            headers={"Origin": httpd.origin}, allow_redirects=False, timeout=10)
    token = id_token(fakems, httpd)
    s = requests.Session()
    r = post({"token": token, "returnto": "/api/whoami.cgi"}, s)
    assert r.status_code == 302 and r.headers["Location"] == "/api/whoami.cgi"
    r = s.get(httpd.url("/api/whoami.cgi"), timeout=10)
    assert "REMOTE_USER=alice@contoso.example" in r.text
    # spent
    r = post({"token": token})
    assert r.headers["Location"] == "/?cause=invalid_token"
    # hostile returnto: the token still works, the target is the default
    r = post({"token": id_token(fakems, httpd), "returnto": "//evil.example"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/?jwt=")
