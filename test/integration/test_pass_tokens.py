"""MSAuthPassTokens: the user's Microsoft tokens handed to the app, on request.

A location with `MSAuthPassTokens access|id|all` gives its app the signed-in user's
current Graph access token (X-MS-TOKEN-AAD-ACCESS-TOKEN, X-MS-TOKEN-AAD-EXPIRES-ON) and
id_token (X-MS-TOKEN-AAD-ID-TOKEN), Easy Auth's names: a CGI sees HTTP_X_MS_TOKEN_AAD_….
Logins then ask for offline_access; the refresh token stays in MSAuthCache, sealed for
its session, and the access token is refreshed before it expires — once, whichever
servers need it at the same moment. Logout and revocation drop the tokens; a client can
never inject one; the refresh token reaches no cookie, answer or log.

Real httpd processes, a real memcached, and fakems issuing short-lived access tokens and
serving grant_type=refresh_token as Microsoft does (rotation, AADSTS70008, AADSTS50173).
"""

import base64
import concurrent.futures
import hashlib
import hmac
import os
import re
import shutil
import socket
import time
import urllib.parse

import pytest
import requests

from msauth import REVOCATION_BOUND, Httpd, fresh_store_epoch, jwt_parts, remember
from test_cluster import Store, two_servers
from test_frontchannel import Browser

CLIENT = "7a7a7a7a-0000-4000-8000-00000000007a"
SECRET = "pass-tokens-client-secret-0123456789"
remember(SECRET)

CONF = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID """ + CLIENT + """
MSAuthClientSecret """ + SECRET + """
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /
MSAuthSigninFailure /?cause=?
MSAuthCache %s
LogLevel warn msauth:debug
Alias /access/ @DIR@/htdocs/cgi/
Alias /id/ @DIR@/htdocs/cgi/
Alias /all/ @DIR@/htdocs/cgi/
Alias /none/ @DIR@/htdocs/cgi/
Alias /open/ @DIR@/htdocs/cgi/
<Location /access/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens access
    Require valid-user
</Location>
<Location /id/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens id
    Require valid-user
</Location>
<Location /all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
</Location>
<Location /none/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
"""

ACCESS = "HTTP_X_MS_TOKEN_AAD_ACCESS_TOKEN"
EXPIRES = "HTTP_X_MS_TOKEN_AAD_EXPIRES_ON"
ID = "HTTP_X_MS_TOKEN_AAD_ID_TOKEN"
REFRESH = "/microsoft_auth/refresh"


@pytest.fixture(scope="module", autouse=True)
def registration(fakems):
    # sid: the front-channel logout test signs a session out by it.
    fakems.control("clients", {"client_id": CLIENT, "secret": SECRET,
                               "optional_claims": ["sid"]})


@pytest.fixture(scope="module")
def store():
    s = Store("memcache")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def server(store, fakems):
    h = Httpd(CONF % store.spec, fakems, modules=["socache_memcache"], name="tokens")
    h.expect_warn(fresh_store_epoch(store.spec))
    h.start()
    yield h
    h.cleanup()


def lifetime(fakems, access, refresh=None, delay=None):
    settings = {"access_token_lifetime": access}
    if refresh is not None:
        settings["refresh_token_lifetime"] = refresh
    if delay is not None:
        settings["refresh_delay"] = delay
    fakems.control("settings", settings)


def env(httpd, path, token, headers=None):
    """The CGI's environment lines (name -> value) at path with the session cookie."""
    h = {"Accept": "application/json"}
    h.update(headers or {})
    r = requests.get(httpd.url(path + "whoami.cgi"), cookies={"msauth": token} if token else {},
                     headers=h, timeout=30, allow_redirects=False)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    out = {}
    for line in r.text.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
        remember(v if k in (ACCESS, ID) else None)
    return out


def status(httpd, path, token):
    return requests.get(httpd.url(path + "whoami.cgi"), cookies={"msauth": token},
                        headers={"Accept": "application/json"}, timeout=30,
                        allow_redirects=False).status_code


def graph_accepts(fakems, access_token):
    r = requests.get(fakems.base + "/v1.0/me", timeout=10,
                     headers={"Authorization": "Bearer " + access_token})
    return r.status_code == 200


def issued_refresh_tokens(fakems):
    tokens = [t["token"] for t in fakems.control("refresh_tokens")["refresh_tokens"]]
    for t in tokens:
        remember(t)
    return tokens


def refresh_grants(fakems):
    return fakems.stats()["refresh_grants"]


def post_refresh(httpd, token, origin=True, headers=None):
    h = {"Origin": httpd.origin} if origin else {}
    h.update(headers or {})
    return requests.post(httpd.url(REFRESH), cookies={"msauth": token} if token else {},
                         headers=h, timeout=30, allow_redirects=False)


def store_key(jti):
    """The memcached key of a session's token record (msa_store_text_key)."""
    if len(jti) <= 128 and re.fullmatch(r"[A-Za-z0-9\-_.:]+", jti):
        return "msauth:mstokens:" + jti
    md = hmac.new(b"mstokens", jti.encode(), hashlib.sha256).digest()[:24]
    return "msauth:mstokens#" + base64.urlsafe_b64encode(md).decode().rstrip("=")


def mc(store, command):
    with socket.create_connection(("127.0.0.1", store.port), timeout=5) as sock:
        sock.sendall(command)
        out = b""
        while not (out.endswith(b"END\r\n") or out.endswith(b"STORED\r\n")
                   or out.endswith(b"ERROR\r\n")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def record_of(store, token):
    """The store's record of a session (text), or None."""
    key = store_key(jwt_parts(token)[1]["jti"])
    out = mc(store, ("get %s\r\n" % key).encode())
    if not out.startswith(b"VALUE "):
        return None
    header, _, rest = out.partition(b"\r\n")
    n = int(header.split()[3])
    return rest[:n].decode()


def put_record(store, token, value):
    key = store_key(jwt_parts(token)[1]["jti"])
    data = value.encode()
    assert mc(store, b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(data), data)) \
        == b"STORED\r\n"


def wait_past(expires_on_iso, slack=0.3):
    """Sleeps until the ISO 8601 expiry has passed (the module's own clock is this one)."""
    when = time.mktime(time.strptime(expires_on_iso[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    time.sleep(max(0.0, when - time.time() + slack))


# -- what reaches the app ---------------------------------------------------------------------

def test_tokens_reach_the_app_only_where_asked_and_only_the_kinds_asked(fakems, server):
    token = Browser(fakems).sign_in(server)
    authorize = [e for e in fakems.requests() if "/oauth2/v2.0/authorize" in e["path"]][-1]
    assert "offline_access" in urllib.parse.unquote_plus(str(authorize)), authorize

    access = env(server, "/access/", token)
    assert access[ACCESS] and graph_accepts(fakems, access[ACCESS])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.0000000Z", access[EXPIRES]), access
    assert ID not in access

    ident = env(server, "/id/", token)
    assert ident[ID].count(".") == 2 and jwt_parts(ident[ID])[1]["aud"] == CLIENT
    assert ACCESS not in ident and EXPIRES not in ident

    both = env(server, "/all/", token)
    assert both[ACCESS] == access[ACCESS] and both[ID] == ident[ID] and both[EXPIRES]

    none = env(server, "/none/", token)
    assert none["REMOTE_USER"] and not [k for k in none if k.startswith("HTTP_X_MS_TOKEN")]


def test_client_sent_token_headers_never_reach_the_app(fakems, server):
    token = Browser(fakems).sign_in(server)
    forged = {"X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged-access-token",
              "x-ms-token-aad-id-token": "forged-id-token",
              "X-Ms-Token-Aad-Expires-On": "forged-expiry",
              "X-MS-TOKEN-AAD-REFRESH-TOKEN": "forged-refresh-token"}
    for path, session in (("/open/", None), ("/open/", token), ("/none/", token),
                          ("/access/", token), ("/id/", token), ("/all/", token)):
        seen = env(server, path, session, headers=forged)
        leaked = {k: v for k, v in seen.items() if "forged" in v}
        assert not leaked, (path, leaked)
    # The real ones are still there, and only they.
    seen = env(server, "/all/", token, headers=forged)
    assert graph_accepts(fakems, seen[ACCESS])
    assert "HTTP_X_MS_TOKEN_AAD_REFRESH_TOKEN" not in seen
    # A location that passes no tokens: without a session the forged ones are gone as well.
    r = requests.get(server.url("/access/whoami.cgi"), headers=dict(forged, Accept="*/*"),
                     timeout=15, allow_redirects=False)
    assert r.status_code == 401 and "forged" not in r.text


# -- refresh ------------------------------------------------------------------------------

def test_access_token_refreshed_across_its_expiry(fakems, server):
    lifetime(fakems, 4)
    token = Browser(fakems).sign_in(server)
    first = env(server, "/all/", token)
    assert refresh_grants(fakems) == 0
    wait_past(first[EXPIRES])
    assert not graph_accepts(fakems, first[ACCESS])   # Microsoft's own clock says so

    later = env(server, "/all/", token)
    assert later[ACCESS] != first[ACCESS] and graph_accepts(fakems, later[ACCESS])
    assert later[EXPIRES] > first[EXPIRES]
    assert later[ID] and jwt_parts(later[ID])[1]["oid"] == jwt_parts(first[ID])[1]["oid"]
    assert refresh_grants(fakems) == 1
    # The rotated refresh token is the one used next time.
    rts = issued_refresh_tokens(fakems)
    assert len(rts) >= 2
    wait_past(later[EXPIRES])
    third = env(server, "/access/", token)
    assert third[ACCESS] not in (first[ACCESS], later[ACCESS])
    used = [e for e in fakems.requests() if e["path"].endswith("/oauth2/v2.0/token")]
    grants = [e for e in used if "refresh_token" in str(e.get("form", e))]
    assert len(grants) >= 2, used[-2:]
    server.wait_log(r"msauth: tokens_refreshed: appid=default user=", count=2)


def test_refresh_ahead_of_expiry_keeps_the_app_served(fakems, server):
    lifetime(fakems, 8)   # refreshed 2 s ahead of its expiry
    token = Browser(fakems).sign_in(server)
    first = env(server, "/access/", token)
    deadline = time.time() + 12
    while time.time() < deadline:
        now = env(server, "/access/", token)
        assert now[ACCESS], now     # never a gap
        if now[ACCESS] != first[ACCESS]:
            break
        time.sleep(0.25)
    else:
        raise AssertionError("never refreshed")
    assert graph_accepts(fakems, first[ACCESS]), "refreshed only after the old one expired"


def test_refresh_endpoint(fakems, server):
    token = Browser(fakems).sign_in(server)
    before = env(server, "/access/", token)
    r = post_refresh(server, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list) and body[0]["provider_name"] == "aad"
    assert body[0]["user_id"] and re.fullmatch(r"\d{4}-.*Z", body[0]["expires_on"])
    assert "access_token" not in body[0] and "refresh_token" not in body[0]
    assert "Set-Cookie" not in r.headers
    after = env(server, "/access/", token)
    assert after[ACCESS] != before[ACCESS] and after[EXPIRES] == body[0]["expires_on"]
    assert refresh_grants(fakems) == 1

    # GET, another origin, no origin at all: refused, nothing refreshed.
    assert requests.get(server.url(REFRESH), cookies={"msauth": token},
                        timeout=15).status_code == 405
    assert post_refresh(server, token, origin=False,
                        headers={"Origin": "https://evil.example"}).status_code == 403
    assert post_refresh(server, token, origin=False).status_code == 403
    assert post_refresh(server, token, origin=False,
                        headers={"Referer": "https://evil.example/" + server.origin}
                        ).status_code == 403
    assert refresh_grants(fakems) == 1
    # No session: 401.
    r = post_refresh(server, None)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert post_refresh(server, token + "x").status_code == 401
    # A same-origin page (Referer only) may.
    assert post_refresh(server, token, origin=False,
                        headers={"Referer": server.origin + "/app/"}).status_code == 200


# -- failures at Microsoft: no stale token, never a 500 -------------------------------------

def test_revoked_refresh_token_leaves_the_app_without_tokens(fakems, server):
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(server)
    first = env(server, "/all/", token)
    assert fakems.control("revoke_refresh_tokens", {"user": "alice"})["revoked"] >= 1
    wait_past(first[EXPIRES])
    server.expect_warn(r"msauth: tokens: appid=default user=.*: Microsoft refused the refresh "
                       r"token \(.*AADSTS50173.*\): the app gets no Microsoft tokens")
    seen = env(server, "/all/", token)
    assert ACCESS not in seen and ID not in seen and EXPIRES not in seen, seen
    assert seen["REMOTE_USER"]                    # still signed in to the app
    assert refresh_grants(fakems) == 1
    # Dropped: not asked again.
    seen = env(server, "/access/", token)
    assert ACCESS not in seen and refresh_grants(fakems) == 1
    assert post_refresh(server, token).status_code == 401
    server.check_log()


def test_expired_refresh_token_is_aadsts70008(fakems, server):
    lifetime(fakems, 3, refresh=1)
    token = Browser(fakems).sign_in(server)
    first = env(server, "/access/", token)
    wait_past(first[EXPIRES])
    server.expect_warn(r"Microsoft refused the refresh token \(.*AADSTS70008")
    assert ACCESS not in env(server, "/access/", token)
    server.check_log()


def test_microsoft_down_at_refresh_time_omits_the_expired_token(fakems, server):
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(server)
    first = env(server, "/access/", token)
    wait_past(first[EXPIRES])
    fakems.faults(token="500")
    server.expect_warn(r"msauth: tokens: appid=default user=.*: the Microsoft tokens could not "
                       r"be refreshed \(.*\): tried again in 5 s")
    started = time.time()
    seen = env(server, "/access/", token)
    assert ACCESS not in seen and EXPIRES not in seen and seen["REMOTE_USER"]
    # While the failed refresh's lock holds (5 s), requests neither call Microsoft nor wait
    # for it: each answers at once (a request that waited would take the lock's seconds).
    calls = fakems.stats()["token_requests"]
    inside = 0
    while inside < 3 and time.time() - started < 4:
        before = time.time()
        assert ACCESS not in env(server, "/access/", token)
        assert time.time() - before < 2.5
        inside += 1
    assert inside > 0 and fakems.stats()["token_requests"] == calls
    server.check_log()
    # Microsoft back, the lock gone: the next request refreshes.
    fakems.faults(token=None)
    # The lock's expiry is the store's, in whole seconds of memcached's own clock, which
    # may keep it up to a second past its 5 s; a request that meets it waits for it (at
    # most its life) and goes on without tokens. Past that, a bounded wait for the refresh.
    time.sleep(6.2)
    deadline = time.time() + 7
    back = env(server, "/access/", token)
    while ACCESS not in back and time.time() < deadline:
        time.sleep(0.25)
        back = env(server, "/access/", token)
    assert graph_accepts(fakems, back[ACCESS])


# -- logout and revocation ------------------------------------------------------------------

def test_tokens_gone_after_logout(fakems, server, store):
    token = Browser(fakems).sign_in(server)
    assert env(server, "/access/", token)[ACCESS]
    assert record_of(store, token).startswith("v1.")
    r = requests.get(server.url("/microsoft_auth/logout"), cookies={"msauth": token},
                     timeout=15, allow_redirects=False)
    assert r.status_code == 302
    assert record_of(store, token) == "-"         # dropped, not just unreachable
    assert status(server, "/access/", token) == 401
    assert post_refresh(server, token).status_code == 401


def test_tokens_gone_after_revocation_by_the_jwt_api(fakems, server, store):
    # A user of its own: every session of its user up to this second dies.
    token = Browser(fakems).sign_in(server, user="erin")
    assert env(server, "/access/", token)[ACCESS]
    r = requests.delete(server.url("/jwt_auth"), headers={"Authorization": "Bearer " + token},
                        timeout=15)
    assert r.status_code == 200, r.text
    assert record_of(store, token) == "-"
    assert status(server, "/access/", token) == 401


def test_tokens_gone_after_front_channel_logout(fakems, server):
    token = Browser(fakems).sign_in(server)
    assert env(server, "/access/", token)[ACCESS]
    sid = jwt_parts(token)[1]["sid"]
    r = requests.get(server.url("/microsoft_auth/logout/frontchannel?sid=" + sid), timeout=15)
    assert r.status_code == 200
    assert status(server, "/access/", token) == 401
    assert post_refresh(server, token).status_code == 401


def test_front_channel_logout_on_one_server_drops_the_records_of_its_sid_on_the_other(
        request, fakems):
    store, a, b = two_servers(request, fakems, "memcache", name="tokens-fc", conf=CONF)
    browser = Browser(fakems)
    on_a = browser.sign_in(a)
    on_b = browser.sign_in(b)      # the same Microsoft session: the same sid
    sid = jwt_parts(on_a)[1]["sid"]
    assert jwt_parts(on_b)[1]["sid"] == sid
    other = Browser(fakems).sign_in(b)   # the same user, another Microsoft session
    assert jwt_parts(other)[1]["sid"] != sid
    for h, t in ((a, on_a), (b, on_b), (b, other)):
        assert env(h, "/access/", t)[ACCESS]
        assert record_of(store, t).startswith("v1.")
    r = requests.get(a.url("/microsoft_auth/logout/frontchannel?sid=" + sid), timeout=15)
    assert r.status_code == 200
    signed_out = time.monotonic()
    # Dropped from the shared store, not just out of reach: the refresh token is gone.
    assert record_of(store, on_b) in ("-", None), record_of(store, on_b)[:8]
    assert record_of(store, on_a) in ("-", None), record_of(store, on_a)[:8]
    # The other server refuses the session within the revocation bound (README).
    while status(b, "/access/", on_b) != 401:
        assert time.monotonic() - signed_out < REVOCATION_BOUND + 0.5, "still served on b"
        time.sleep(0.05)
    # The user's other Microsoft session keeps its session and its tokens.
    assert record_of(store, other).startswith("v1.")
    assert env(b, "/access/", other)[ACCESS]


def test_revocation_by_the_jwt_api_drops_the_records_of_every_session_of_the_user(
        fakems, server, store):
    one = Browser(fakems).sign_in(server, user="carol")
    two = Browser(fakems).sign_in(server, user="carol")
    third = Browser(fakems).sign_in(server, user="dave")
    for t in (one, two, third):
        assert env(server, "/access/", t)[ACCESS]
        assert record_of(store, t).startswith("v1.")
    r = requests.delete(server.url("/jwt_auth"), headers={"Authorization": "Bearer " + one},
                        timeout=15)
    assert r.status_code == 200, r.text
    assert record_of(store, one) == "-"
    assert record_of(store, two) == "-", record_of(store, two)[:8]
    assert status(server, "/access/", two) == 401
    # Another user's record is untouched.
    assert record_of(store, third).startswith("v1.")
    assert env(server, "/access/", third)[ACCESS]


def test_a_refresh_under_way_when_the_user_is_revoked_leaves_no_record(fakems, server, store):
    token = Browser(fakems).sign_in(server, user="alice")
    other = Browser(fakems).sign_in(server, user="alice")
    assert env(server, "/access/", token)[ACCESS]
    fakems.control("settings", {"refresh_delay": 2.0})
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        refreshing = pool.submit(post_refresh, server, token)
        deadline = time.time() + 5
        while refresh_grants(fakems) == 0 and time.time() < deadline:
            time.sleep(0.05)
        r = requests.delete(server.url("/jwt_auth"),
                            headers={"Authorization": "Bearer " + other}, timeout=15)
        assert r.status_code == 200, r.text
        assert record_of(store, token) == "-"
        refreshing.result()
    # The refresh that Microsoft answered after the revocation does not write the tokens back.
    assert record_of(store, token) == "-", (record_of(store, token) or "")[:8]
    server.wait_log(r"msauth: tokens: appid=default user=.*: the session ended during the "
                    r"refresh \(the session was revoked meanwhile\): its tokens are dropped")
    server.check_log()


INDEX_SLOTS = 16   # the newest sessions of a user whose tokens are kept (msa_mstokens.c)


def test_a_user_with_more_sessions_than_the_index_holds(fakems, server, store):
    time.sleep(1.1)   # after the revocations of the user by the tests above
    tokens = [Browser(fakems).sign_in(server, user="erin") for _ in range(INDEX_SLOTS + 2)]
    # Beyond the newest INDEX_SLOTS, the oldest records are dropped at once, not forgotten.
    records = [record_of(store, t) for t in tokens]
    assert records[:2] == ["-", "-"], [(r or "")[:4] for r in records]
    assert all(r.startswith("v1.") for r in records[2:]), [(r or "")[:4] for r in records]
    assert (ACCESS in env(server, "/access/", tokens[0])) is False
    assert env(server, "/access/", tokens[-1])[ACCESS]
    server.wait_log(r"msauth: tokens: appid=default user=.*: more than 16 sessions with "
                    r"Microsoft tokens for this user: the oldest one's are dropped", count=2)
    # A revocation of the user then finds every record that is left.
    r = requests.delete(server.url("/jwt_auth"),
                        headers={"Authorization": "Bearer " + tokens[-1]}, timeout=15)
    assert r.status_code == 200, r.text
    left = [t for t in tokens if record_of(store, t) not in ("-", None)]
    assert not left, len(left)


def test_a_refresh_under_way_when_newer_sessions_take_its_place_leaves_no_record(
        fakems, server, store):
    tokens = [Browser(fakems).sign_in(server, user="carol") for _ in range(INDEX_SLOTS)]
    assert all(record_of(store, t).startswith("v1.") for t in tokens)
    fakems.control("settings", {"refresh_delay": 2.0})
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        refreshing = pool.submit(post_refresh, server, tokens[0])
        deadline = time.time() + 5
        while refresh_grants(fakems) == 0 and time.time() < deadline:
            time.sleep(0.05)
        newest = Browser(fakems).sign_in(server, user="carol")
        assert record_of(store, tokens[0]) == "-"
        refreshing.result()
    assert record_of(store, tokens[0]) == "-", (record_of(store, tokens[0]) or "")[:8]
    assert record_of(store, newest).startswith("v1.")
    server.wait_log(r"msauth: tokens: appid=default user=.*: the session ended during the "
                    r"refresh \(newer sessions of the user took its place\): its tokens are "
                    r"dropped")
    server.check_log()


@pytest.mark.parametrize("kind", ["shmcb", "redis"])
def test_the_index_on_the_other_stores(request, fakems, kind):
    # What the app sees: beyond the newest INDEX_SLOTS sessions, the oldest have no tokens.
    if kind == "shmcb":
        h = Httpd(CONF % "shmcb", fakems, name="tokens-shmcb")
    else:
        s = Store("redis")
        request.addfinalizer(s.stop)
        h = Httpd(CONF % s.spec, fakems, modules=["socache_redis"], name="tokens-redis")
        h.expect_warn(fresh_store_epoch(s.spec))
    h.start()
    request.addfinalizer(h.cleanup)
    tokens = [Browser(fakems).sign_in(h, user="alice") for _ in range(INDEX_SLOTS + 1)]
    passed = [ACCESS in env(h, "/access/", t) for t in tokens]
    assert passed == [False] + [True] * INDEX_SLOTS, passed
    h.check_log()


def test_logins_of_one_user_at_once_on_two_servers_are_each_found_by_the_revocation(
        request, fakems):
    store, a, b = two_servers(request, fakems, "memcache", name="tokens-race", conf=CONF)
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        tokens = list(pool.map(lambda h: Browser(fakems).sign_in(h, user="dave"), (a, b) * 5))
    assert all(record_of(store, t).startswith("v1.") for t in tokens)
    r = requests.delete(b.url("/jwt_auth"), headers={"Authorization": "Bearer " + tokens[0]},
                        timeout=15)
    assert r.status_code == 200, r.text
    left = [t for t in tokens if record_of(store, t) not in ("-", None)]
    assert not left, "%d of %d records left" % (len(left), len(tokens))


def test_jwt_api_refresh_carries_the_tokens_to_the_new_session(fakems, server):
    token = Browser(fakems).sign_in(server)
    before = env(server, "/access/", token)
    r = requests.get(server.url("/jwt_auth"), headers={"Authorization": "Bearer " + token},
                     timeout=15)
    assert r.status_code == 200
    fresh = r.json()["jwt"]["access_token"]
    assert fresh != token
    assert env(server, "/access/", fresh)[ACCESS] == before[ACCESS]


# -- where the refresh token is, and is not ---------------------------------------------------

def test_record_sealed_and_bound_to_its_session(fakems, server, store):
    one = Browser(fakems).sign_in(server)
    seen = env(server, "/all/", one)
    record = record_of(store, one)
    assert record and record.startswith("v1.")
    raw = base64.urlsafe_b64decode(record[3:] + "=" * (-len(record[3:]) % 4))
    for secret in issued_refresh_tokens(fakems) + [seen[ACCESS], seen[ID]]:
        for probe in (secret, secret[-40:]):
            assert probe not in record and probe.encode() not in raw
    assert b"refresh" not in raw and b'"rt"' not in raw

    # Another session's record copied under this one's key does not open.
    two = Browser(fakems).sign_in(server, user="dave")
    put_record(store, two, record)
    stolen = env(server, "/all/", two)
    assert ACCESS not in stolen and ID not in stolen
    server.wait_log(r"msauth: tokens: appid=default user=.*: token record does not open")
    # Nor under another session of the same user: a record is its session's, not its user's.
    again = Browser(fakems).sign_in(server)
    assert jwt_parts(again)[1]["sub"] == jwt_parts(one)[1]["sub"]
    assert env(server, "/access/", again)[ACCESS] != seen[ACCESS]
    put_record(store, again, record)
    copied = env(server, "/all/", again)
    assert ACCESS not in copied and ID not in copied, copied.get(ACCESS, "")[:16]
    server.wait_log(r"msauth: tokens: appid=default user=.*: token record does not open", count=2)
    # A damaged record: no tokens, no 500.
    put_record(store, one, record[:-8] + "AAAAAAAA")
    assert ACCESS not in env(server, "/access/", one)


def test_refresh_token_in_no_cookie_answer_or_log(fakems, server):
    lifetime(fakems, 3)
    b = Browser(fakems)
    answers = []
    original = b.sites.get

    def keep(*a, **kw):
        r = original(*a, **kw)
        answers.append(r)
        return r
    b.sites.get = keep
    token = b.sign_in(server)
    first = env(server, "/all/", token)
    wait_past(first[EXPIRES])
    env(server, "/all/", token)
    r = post_refresh(server, token)
    assert r.status_code == 200
    answers.append(r)
    me = requests.get(server.url("/microsoft_auth/me"), cookies={"msauth": token}, timeout=15)
    answers.append(me)
    rts = issued_refresh_tokens(fakems)
    assert len(rts) >= 3
    payload = jwt_parts(token)[1]
    for rt in rts:
        probe = rt[-48:]
        assert probe not in token and probe not in str(payload)
        for a in answers:
            assert probe not in a.text and probe not in str(a.headers), a.url
        for name in ("error.log", "access.log"):
            assert probe not in server.read_file(name), name
    # Nor the access and id tokens, in the logs.
    for t in (first[ACCESS], first[ID]):
        for name in ("error.log", "access.log"):
            assert t[-48:] not in server.read_file(name)
    assert "tokens_refreshed" in server.read_file("error.log")


# -- two servers, one store: one refresh ------------------------------------------------------

def test_one_refresh_when_two_servers_need_it_at_once(request, fakems):
    store, a, b = two_servers(request, fakems, "memcache", name="tokens", conf=CONF)
    lifetime(fakems, 3)
    token = Browser(fakems).sign_in(a)
    first = env(a, "/access/", token)
    assert env(b, "/access/", token)[ACCESS] == first[ACCESS]
    fakems.control("settings", {"refresh_delay": 1.0})
    wait_past(first[EXPIRES])
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(env, h, "/access/", token) for h in (a, b) * 4]
        seen = [j.result() for j in jobs]
    tokens = {s.get(ACCESS) for s in seen}
    assert refresh_grants(fakems) == 1
    assert len(tokens) == 1 and None not in tokens, [s.get(ACCESS, "-")[:12] for s in seen]
    assert tokens != {first[ACCESS]} and graph_accepts(fakems, tokens.pop())


# -- the other ways a request reaches an app --------------------------------------------------

def index_directory(name, files):
    """A directory whose DirectoryIndex CGI has settings of its own (files) under a
    directory passing every token."""
    return """Alias /{0}/ @DIR@/htdocs/{0}/
<Directory @DIR@/htdocs/{0}>
    Options +ExecCGI
    AddHandler cgi-script .cgi
    DirectoryIndex index.cgi
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
    <Files "index.cgi">
        {1}
    </Files>
</Directory>
""".format(name, files)


PATHS_CONF = """
<Directory @DIR@/htdocs/ssi>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
</Directory>
Alias /ssi-all/ @DIR@/htdocs/ssi/
<Location /ssi-all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
</Location>
Alias /ssi-open/ @DIR@/htdocs/ssi/
""" + "".join(index_directory(name, files) for name, files in (
    ("idx", "MSAuthPassTokens off"),
    ("idx-access", "MSAuthPassTokens access"),
    ("idx-open", "AuthType None\n        Require all granted"))) + """Alias /copy/ @DIR@/htdocs/cgi/
<Location /copy/>
    RequestHeader set X-MS-Graph-Bearer "expr=%{req:X-MS-TOKEN-AAD-ACCESS-TOKEN}"
</Location>
Alias /copy-all/ @DIR@/htdocs/cgi/
<Location /copy-all/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    MSAuthPassTokens all
    Require valid-user
    RequestHeader set X-MS-Graph-Bearer "expr=%{req:X-MS-TOKEN-AAD-ACCESS-TOKEN}"
</Location>
ErrorDocument 404 /open/whoami.cgi
RewriteEngine On
RewriteRule ^/pt/(.*)$ /open/$1 [PT]
"""

FORGED = {"X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged-access-token",
          "x-ms-token-aad-id-token": "forged-id-token",
          "X-Ms-Token-Aad-Expires-On": "forged-expiry",
          "X_MS_TOKEN_AAD_ACCESS_TOKEN": "forged-underscore-token"}


@pytest.fixture(scope="module")
def paths(fakems):
    s = Store("memcache")
    h = Httpd(CONF % s.spec + PATHS_CONF, fakems, modules=["socache_memcache", "include", "rewrite"],
              name="tokens-paths")
    h.expect_warn(fresh_store_epoch(s.spec))
    for d in ("ssi", "idx", "idx-access", "idx-open"):
        os.makedirs(os.path.join(h.htdocs, d))
        shutil.copy(os.path.join(h.htdocs, "cgi", "whoami.cgi"),
                    os.path.join(h.htdocs, d, "index.cgi"))
    with open(os.path.join(h.htdocs, "ssi", "open.shtml"), "w") as f:
        f.write('<!--#include virtual="/open/whoami.cgi" -->\n')
    with open(os.path.join(h.htdocs, "ssi", "tokens.shtml"), "w") as f:
        f.write("".join('--%s\n<!--#include virtual="/%s/whoami.cgi" -->\n' % (p, p)
                        for p in ("open", "none", "access", "id")))
    h.start()
    yield h
    h.cleanup()
    s.stop()


def sections(httpd, path, token, headers=None, code=200):
    """The CGI environment lines a page shows, by the `--name` line before each (or "")."""
    r = requests.get(httpd.url(path), cookies={"msauth": token} if token else {},
                     headers=dict(headers or {}, Accept="*/*"), timeout=30,
                     allow_redirects=False)
    assert r.status_code == code, (path, r.status_code, r.text[:300])
    out, part = {"": {}}, ""
    for line in r.text.splitlines():
        if line.startswith("--"):
            part = line[2:]
            out[part] = {}
            continue
        k, _, v = line.partition("=")
        out[part][k] = v
        remember(v if k in (ACCESS, ID) else None)
    return out


def token_vars(seen):
    return {k: v[:16] for k, v in seen.items() if "X_MS_TOKEN" in k}


def test_included_cgi_gets_only_the_tokens_of_its_own_location(fakems, paths):
    # A page that passes every token includes CGIs of other locations: each sees what its
    # own location passes, never the page's tokens (nor their copy in the page's environment).
    token = Browser(fakems).sign_in(paths)
    page = sections(paths, "/ssi-all/tokens.shtml", token)
    assert not token_vars(page["open"]), token_vars(page["open"])
    assert page["none"]["REMOTE_USER"] and not token_vars(page["none"]), token_vars(page["none"])
    assert graph_accepts(fakems, page["access"][ACCESS]) and page["access"][EXPIRES]
    assert ID not in page["access"], token_vars(page["access"])
    assert page["id"][ID].count(".") == 2
    assert ACCESS not in page["id"] and EXPIRES not in page["id"], token_vars(page["id"])


def test_directory_index_file_gets_only_the_tokens_its_own_configuration_passes(fakems, paths):
    # /idx/ passes every token; its index.cgi, reached through DirectoryIndex, says off.
    token = Browser(fakems).sign_in(paths)
    seen = sections(paths, "/idx/", token)[""]
    assert seen["REMOTE_USER"] and not token_vars(seen), token_vars(seen)
    assert not token_vars(sections(paths, "/idx/index.cgi", token)[""])
    # /idx-access/ passes every token; its index.cgi only the access token.
    for path in ("/idx-access/", "/idx-access/index.cgi"):
        seen = sections(paths, path, token)[""]
        assert graph_accepts(fakems, seen[ACCESS]) and seen[EXPIRES], path
        assert ID not in seen, (path, token_vars(seen))
    # /idx-open/ passes every token; its index.cgi is open to all (no AuthType Microsoft).
    seen = sections(paths, "/idx-open/", token)[""]
    assert not token_vars(seen), token_vars(seen)
    assert not token_vars(sections(paths, "/idx-open/index.cgi", token)[""])


def test_client_sent_tokens_reach_no_other_path(fakems, paths):
    token = Browser(fakems).sign_in(paths)
    for path, session, code in (("/ssi-open/open.shtml", None, 200),
                                ("/ssi-open/open.shtml", token, 200),
                                ("/ssi-all/tokens.shtml", token, 200),
                                ("/missing/page", None, 404), ("/missing/page", token, 404),
                                ("/pt/whoami.cgi", None, 200), ("/pt/whoami.cgi", token, 200),
                                ("/idx/", token, 200), ("/copy/whoami.cgi", None, 200),
                                ("/copy/whoami.cgi", token, 200)):
        for part, seen in sections(paths, path, session, FORGED, code).items():
            leaked = {k: v for k, v in seen.items() if "forged" in v}
            assert not leaked, (path, part, leaked)


def test_a_fixup_copying_the_token_header_copies_only_a_real_one(fakems, paths):
    # mod_headers (a fixup) copies X-MS-TOKEN-AAD-ACCESS-TOKEN for a backend: where tokens
    # are passed it copies the real one; where none are, never one a client sent.
    token = Browser(fakems).sign_in(paths)
    real = sections(paths, "/copy-all/whoami.cgi", token, FORGED)[""]
    assert real["HTTP_X_MS_GRAPH_BEARER"] == real[ACCESS]
    assert graph_accepts(fakems, real[ACCESS])
    for session in (None, token):
        seen = sections(paths, "/copy/whoami.cgi", session, FORGED)[""]
        assert "forged" not in seen.get("HTTP_X_MS_GRAPH_BEARER", ""), seen
