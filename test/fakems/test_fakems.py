"""Self-tests for fakems: start it as a subprocess on a free loopback port and
check that it behaves like the Microsoft identity platform and Graph.

Run: /usr/bin/python3 -m pytest test/fakems -q
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
FAKEMS = os.path.join(HERE, "fakems.py")
PYTHON = "/usr/bin/python3"

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "fakems-client-secret-0123456789"
CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FABRIKAM = "a1b2c3d4-0000-4000-8000-000000000001"
CONSUMERS = "9188040d-6c67-4c5b-b112-36a304b66dad"
FOREIGN = "7a61ef8e-146b-4485-91d3-df5777ce9b85"
ALICE_OID = "be20621b-842c-419d-a42f-f98f10de9f92"
ALICE_GROUPS = ["0ff2f55e-dd4a-40fe-b20c-f5a5c0de67e7", "aae23af8-23c8-490a-8279-b61799c5a5b8"]
ERIN_OID = "486bb886-4180-4592-8f0e-82bddf4b6661"

REGISTERED_ID = "aaaaaaaa-0000-4000-8000-00000000000a"
REGISTERED_SECRET = "registered-secret-value"
REGISTERED_URI = "https://app.example/cb"
SINGLE_ID = "bbbbbbbb-0000-4000-8000-00000000000b"

CALLBACK = "http://localhost:8080/microsoft_auth"
DEFAULT_SCOPE = "openid profile email User.Read"

CONFIG = {
    "clients": {
        REGISTERED_ID: {"secret": REGISTERED_SECRET, "redirect_uris": [REGISTERED_URI]},
        SINGLE_ID: {"secret": "single-secret", "single_tenant": True, "tenant": CONTOSO},
    },
    "users": [{"name": "gina", "tid": FABRIKAM, "displayName": "Gina Config",
               "upn": "gina@fabrikam.example", "group_count": 3}],
}


# --------------------------------------------------------------------------
# Running fakems
# --------------------------------------------------------------------------

def start_fakems(tmp_path, *extra):
    proc = subprocess.Popen([PYTHON, FAKEMS, "--port", "0"] + list(extra),
                            stdout=subprocess.PIPE, stderr=open(tmp_path / "fakems.err", "wb"),
                            text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=30)
    except queue.Empty:
        proc.kill()
        raise AssertionError("fakems did not start")
    m = re.match(r"^fakems listening on (https?://[^:]+:(\d+))\n$", line)
    assert m, "unexpected first line %r" % line
    return proc, m.group(1)


def stop_fakems(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fakems")
    config = tmp / "config.json"
    config.write_text(json.dumps(CONFIG))
    proc, base = start_fakems(tmp, "--config", str(config))
    yield base
    stop_fakems(proc)
    errors = (tmp / "fakems.err").read_text()
    assert "Traceback" not in errors, errors


@pytest.fixture
def ms(server):
    """A client for one test, on a server reset to a clean state."""
    client = FakeMSClient(server)
    client.control("post", "reset")
    yield client
    client.session.close()


class FakeMSClient:
    def __init__(self, base):
        self.base = base
        self.session = requests.Session()

    def url(self, path):
        return self.base + path

    def control(self, method, name, body=None, **kw):
        r = self.session.request(method.upper(), self.url("/_fakems/" + name), json=body,
                                 timeout=10, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def faults(self, **knobs):
        return self.control("post", "faults", knobs)

    def authorize(self, tenant="common", method="GET", timeout=10, **params):
        params.setdefault("response_type", "code")
        params.setdefault("client_id", CLIENT_ID)
        params.setdefault("redirect_uri", CALLBACK)
        params.setdefault("scope", DEFAULT_SCOPE)
        url = self.url("/%s/oauth2/v2.0/authorize" % tenant)
        if method == "GET":
            return self.session.get(url, params=params, allow_redirects=False, timeout=timeout)
        return self.session.post(url, data=params, allow_redirects=False, timeout=timeout)

    def login(self, user="alice", tenant="common", **params):
        """Sign `user` in by the scripted path; the redirect's query, decoded."""
        r = self.authorize(tenant, login_hint=user, fakems_auto="1", **params)
        assert r.status_code == 302, r.text
        return redirect_params(r)

    def code(self, user="alice", tenant="common", **params):
        q = self.login(user, tenant, **params)
        assert "code" in q, q
        return q["code"]

    def token(self, tenant="common", auth="post", timeout=10, **form):
        form.setdefault("grant_type", "authorization_code")
        form.setdefault("redirect_uri", CALLBACK)
        headers = {}
        if auth == "post":
            form.setdefault("client_id", CLIENT_ID)
            form.setdefault("client_secret", SECRET)
        elif auth == "none":
            pass
        elif auth == "basic":
            cred = base64.b64encode(("%s:%s" % (form.pop("client_id", CLIENT_ID),
                                                form.pop("basic_secret", SECRET))).encode())
            headers["Authorization"] = "Basic " + cred.decode()
        return self.session.post(self.url("/%s/oauth2/v2.0/token" % tenant), data=form,
                                 headers=headers, timeout=timeout)

    def tokens(self, user="alice", tenant="common", scope=DEFAULT_SCOPE, client_id=CLIENT_ID,
               secret=SECRET, **authorize_params):
        code = self.code(user, tenant, scope=scope, client_id=client_id, **authorize_params)
        form = {"code": code, "client_id": client_id, "client_secret": secret, "scope": scope,
                "redirect_uri": authorize_params.get("redirect_uri", CALLBACK)}
        if "code_challenge" in authorize_params:
            form["code_verifier"] = VERIFIER
        r = self.token(tenant, **form)
        assert r.status_code == 200, r.text
        return r.json()

    def jwks(self, tenant="common"):
        r = self.session.get(self.url("/%s/discovery/v2.0/keys" % tenant), timeout=10)
        assert r.status_code == 200
        return r.json()

    def graph(self, path, token, **kw):
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        return self.session.get(self.url("/v1.0/" + path), headers=headers,
                                timeout=kw.pop("timeout", 10), **kw)

    def mint(self, user="alice", **body):
        body["user"] = user
        return self.control("post", "access_token", body)["access_token"]


def redirect_params(r):
    location = r.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query,
                                         keep_blank_values=True).items()}


VERIFIER = "v" * 20 + "-._~" + "0123456789abcdefghijklmnop"   # 50 chars
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()) \
    .rstrip(b"=").decode()


# --------------------------------------------------------------------------
# JWT helpers
# --------------------------------------------------------------------------

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), b64d(s), (h + "." + p).encode()


def rsa_key(jwk):
    n = int.from_bytes(b64d(jwk["n"]), "big")
    e = int.from_bytes(b64d(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verifies(token, jwks):
    """Whether an RS256 JWT verifies with the JWKS key its kid names."""
    header, _, sig, signing_input = jwt_parts(token)
    keys = [k for k in jwks["keys"] if k["kid"] == header.get("kid")]
    if header.get("alg") != "RS256" or not keys:
        return False
    try:
        rsa_key(keys[0]).verify(sig, signing_input, padding.PKCS1v15(), hashes.SHA256())
        return True
    except Exception:
        return False


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.title = ""
        self.forms = []
        self.buttons = []
        self.hidden = {}
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "title":
            self._in_title = True
        elif tag == "form":
            self.forms.append(a)
        elif tag == "button":
            self.buttons.append(a)
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def assert_aad_error(r, status, error, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "error_description", "error_codes", "timestamp",
                         "trace_id", "correlation_id"}
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith("AADSTS%d: " % code)
    assert "\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
        body["trace_id"], body["correlation_id"], body["timestamp"]) in body["error_description"]
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$", body["timestamp"])
    return body


# --------------------------------------------------------------------------
# Startup and transport
# --------------------------------------------------------------------------

def test_port_file_and_issuer_base(tmp_path):
    port_file = tmp_path / "port"
    proc, base = start_fakems(tmp_path, "--port-file", str(port_file),
                              "--issuer-base", "https://login.example.test")
    try:
        assert port_file.read_text().strip() == base.rsplit(":", 1)[1]
        c = FakeMSClient(base)
        ident = json.loads(b64d(c.tokens()["id_token"].split(".")[1]))
        assert ident["iss"] == "https://login.example.test/%s/v2.0" % CONTOSO
        meta = c.session.get(base + "/common/v2.0/.well-known/openid-configuration").json()
        assert meta["issuer"] == "https://login.example.test/{tenantid}/v2.0"
        assert meta["token_endpoint"] == base + "/common/oauth2/v2.0/token"
    finally:
        stop_fakems(proc)


def test_tls(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    proc, base = start_fakems(tmp_path, "--tls-cert", str(tmp_path / "c.pem"),
                              "--tls-key", str(tmp_path / "k.pem"))
    try:
        assert base.startswith("https://127.0.0.1:")
        r = requests.get(base + "/common/discovery/v2.0/keys", verify=str(tmp_path / "c.pem"),
                         timeout=10)
        assert r.status_code == 200 and len(r.json()["keys"]) == 2
    finally:
        stop_fakems(proc)


def test_keep_alive_and_content_length(ms):
    for _ in range(3):
        r = ms.session.get(ms.url("/common/discovery/v2.0/keys"), timeout=10)
        assert int(r.headers["Content-Length"]) == len(r.content)
    ms.token(code="nope")
    log = ms.control("get", "requests")["requests"]
    assert len(log) == 4
    assert len({e["connection"] for e in log}) == 1


def test_other_requests_answered_while_one_hangs(ms):
    ms.control("post", "settings", {"hang_seconds": 4})
    ms.faults(token="hang")
    started = time.time()
    with pytest.raises(requests.Timeout):
        requests.post(ms.url("/common/oauth2/v2.0/token"), data={"grant_type": "x"},
                      timeout=1)
    other = requests.get(ms.url("/common/discovery/v2.0/keys"), timeout=2)
    assert other.status_code == 200
    assert time.time() - started < 3.5


# --------------------------------------------------------------------------
# Authorize
# --------------------------------------------------------------------------

def test_login_page_form_and_click(ms):
    r = ms.authorize(state="app|42", nonce="n-1", code_challenge=CHALLENGE,
                     code_challenge_method="S256")
    assert r.status_code == 200
    p = FormParser()
    p.feed(r.text)
    assert p.title == "Sign in to your account"
    assert len(p.forms) == 1
    assert p.forms[0]["method"] == "post"
    assert p.forms[0]["action"] == "/common/oauth2/v2.0/authorize"
    assert p.hidden == {"response_type": "code", "client_id": CLIENT_ID,
                        "redirect_uri": CALLBACK, "scope": DEFAULT_SCOPE,
                        "state": "app|42", "nonce": "n-1", "code_challenge": CHALLENGE,
                        "code_challenge_method": "S256"}
    users = {b["value"]: b for b in p.buttons if b.get("name") == "user"}
    assert {"alice", "bob", "carol", "dave", "erin", "frank", "gina"} <= set(users)
    assert users["alice"]["id"] == "user-alice" and users["alice"]["type"] == "submit"
    assert "Alice Example" in r.text and "alice@contoso.example" in r.text
    cancel = [b for b in p.buttons if b.get("id") == "cancel"]
    assert cancel and cancel[0]["name"] == "cancel" and cancel[0]["value"] == "1"

    # Clicking Alice posts the form with user=alice.
    form = dict(p.hidden, user="alice")
    r = ms.session.post(ms.url(p.forms[0]["action"]), data=form, allow_redirects=False)
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(CALLBACK + "?code=")
    assert "&state=app%7c42&" in loc
    q = redirect_params(r)
    tok = ms.token(code=q["code"], code_verifier=VERIFIER)
    assert tok.status_code == 200
    ident = jwt_parts(tok.json()["id_token"])[1]
    assert ident["nonce"] == "n-1" and ident["oid"] == ALICE_OID


def test_cancel_redirects_access_denied(ms):
    r = ms.authorize(method="POST", state="s t|1", cancel="1")
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(CALLBACK + "?error=access_denied&error_description=AADSTS65004%3a+"
                          "User+declined+to+consent+to+access+the+app.")
    assert loc.endswith("&state=s+t%7c1")
    assert redirect_params(r)["state"] == "s t|1"


def test_state_and_redirect_uri_query(ms):
    r = ms.authorize(login_hint="alice", fakems_auto="1", redirect_uri=CALLBACK + "?x=1",
                     state="a&b=c~")
    loc = r.headers["Location"]
    assert loc.startswith(CALLBACK + "?x=1&code=")
    assert "&state=a%26b%3dc%7e&" in loc
    r = ms.authorize(login_hint="alice", fakems_auto="1")
    q = redirect_params(r)
    assert "state" not in q and "code" in q


def test_auto_path_accepts_upn_and_prompt_none(ms):
    r = ms.authorize(login_hint="ALICE@contoso.example", prompt="none", state="x")
    assert r.status_code == 302 and "code" in redirect_params(r)
    r = ms.authorize(prompt="none", state="x")
    q = redirect_params(r)
    assert q["error"] == "login_required" and q["state"] == "x"


def test_unknown_client_or_redirect_uri_is_an_error_page(ms):
    r = ms.authorize(client_id="99999999-9999-4999-8999-999999999999")
    assert r.status_code == 400 and "Location" not in r.headers
    assert "AADSTS700016" in r.text
    r = ms.authorize(client_id=REGISTERED_ID, redirect_uri="https://evil.example/cb")
    assert r.status_code == 400 and "Location" not in r.headers
    assert "AADSTS50011" in r.text
    r = ms.authorize(client_id=REGISTERED_ID, redirect_uri=REGISTERED_URI, login_hint="alice",
                     fakems_auto="1")
    assert r.status_code == 302 and r.headers["Location"].startswith(REGISTERED_URI + "?code=")


def test_unsupported_response_type_and_bad_scope_redirect(ms):
    q = redirect_params(ms.authorize(response_type="token", state="s"))
    assert q["error"] == "unsupported_response_type" and q["state"] == "s"
    q = redirect_params(ms.authorize(scope="openid,profile", state="s"))
    assert q["error"] == "invalid_scope" and q["error_description"].startswith("AADSTS70011")


def test_form_post_response_mode(ms):
    r = ms.authorize(login_hint="alice", fakems_auto="1", response_mode="form_post", state="z")
    assert r.status_code == 200
    p = FormParser()
    p.feed(r.text)
    assert p.forms[0]["action"] == CALLBACK and p.forms[0]["method"] == "post"
    assert p.hidden["state"] == "z" and p.hidden["code"]


def test_tenant_rules(ms):
    q = ms.login("alice", "consumers", state="s")
    assert q["error"] == "invalid_request" and "AADSTS" in q["error_description"]
    q = ms.login("bob", "organizations")
    assert q["error"] == "invalid_request" and q["error_description"].startswith("AADSTS500200")
    q = ms.login("carol", CONTOSO)
    assert q["error"] == "access_denied" and q["error_description"].startswith("AADSTS50020")
    q = ms.login("bob", CONTOSO)
    assert q["error"] == "access_denied"
    assert "code" in ms.login("alice", CONTOSO)
    assert "code" in ms.login("alice", "contoso.example")
    assert "code" in ms.login("bob", "consumers")
    assert "code" in ms.login("carol", "organizations")
    r = ms.authorize("00000000-1111-4222-8333-444444444444")
    assert r.status_code == 400 and "AADSTS90002" in r.text


def test_single_tenant_app(ms):
    q = ms.login("alice", "common", client_id=SINGLE_ID, state="s")
    assert q["error"] == "invalid_request" and "AADSTS50194" in q["error_description"]
    assert q["state"] == "s"
    assert "code" in ms.login("alice", CONTOSO, client_id=SINGLE_ID)


# --------------------------------------------------------------------------
# Token
# --------------------------------------------------------------------------

def test_code_is_single_use_and_unknown_codes_fail(ms):
    code = ms.code()
    assert ms.token(code=code).status_code == 200
    assert_aad_error(ms.token(code=code), 400, "invalid_grant", 54005)
    assert ms.token(code=code + "x").json()["error"] == "invalid_grant"


def test_code_expires(ms):
    ms.control("post", "settings", {"code_lifetime": 0})
    code = ms.code()
    time.sleep(0.05)
    assert_aad_error(ms.token(code=code), 400, "invalid_grant", 70008)


def test_pkce(ms):
    def code():
        return ms.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    assert ms.token(code=code(), code_verifier=VERIFIER).status_code == 200
    assert_aad_error(ms.token(code=code(), code_verifier=VERIFIER + "x"), 400,
                     "invalid_grant", 501481)
    assert_aad_error(ms.token(code=code()), 400, "invalid_grant", 501481)
    # A verifier for a code that had no challenge.
    assert_aad_error(ms.token(code=ms.code(), code_verifier=VERIFIER), 400,
                     "invalid_grant", 50148)
    # The plain method compares the verifier itself.
    c = ms.code(code_challenge=VERIFIER, code_challenge_method="plain")
    assert ms.token(code=c, code_verifier=VERIFIER).status_code == 200


def test_client_authentication(ms):
    assert ms.token(code=ms.code(), auth="basic").status_code == 200
    assert ms.token(code=ms.code(), auth="post").status_code == 200
    both = ms.token(code=ms.code(), auth="basic", client_secret=SECRET)
    assert_aad_error(both, 400, "invalid_request", 9002313)
    body = assert_aad_error(ms.token(code=ms.code(), client_secret="wrong"), 401,
                            "invalid_client", 7000215)
    assert body["error_uri"].endswith("code=7000215")
    assert_aad_error(ms.token(code=ms.code(), auth="basic", basic_secret="wrong"), 401,
                     "invalid_client", 7000215)
    nosecret = ms.session.post(ms.url("/common/oauth2/v2.0/token"), data={
        "grant_type": "authorization_code", "code": ms.code(), "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK})
    assert_aad_error(nosecret, 401, "invalid_client", 7000218)

    log = ms.control("get", "requests", params={"path": "/token"})["requests"]
    assert [e["auth"] for e in log] == ["basic", "post", "basic+post", "post", "basic", None]
    assert log[1]["form"]["client_secret"] == hashlib.sha256(SECRET.encode()).hexdigest()[:12]
    assert log[0]["client_id"] == CLIENT_ID


def test_request_log_redacts_secrets_but_keeps_verifier(ms):
    code = ms.code(code_challenge=CHALLENGE, code_challenge_method="S256")
    ms.token(code=code, code_verifier=VERIFIER)
    entry = ms.control("get", "requests", params={"path": "/token"})["requests"][-1]
    assert entry["form"]["code"] == hashlib.sha256(code.encode()).hexdigest()[:12]
    assert entry["form"]["code_verifier"] == VERIFIER
    assert entry["form"]["redirect_uri"] == CALLBACK
    assert entry["method"] == "POST" and entry["status"] == 200
    assert SECRET not in json.dumps(entry) and code not in json.dumps(entry)
    auth_entry = ms.control("get", "requests", params={"path": "/authorize"})["requests"][-1]
    assert auth_entry["query"]["code_challenge"] == CHALLENGE


def test_token_endpoint_errors(ms):
    assert_aad_error(ms.token(code=ms.code(), grant_type="password"), 400,
                     "unsupported_grant_type", 70003)
    assert_aad_error(ms.token(code=ms.code(), redirect_uri=CALLBACK + "/other"), 400,
                     "invalid_grant", 500112)
    r = ms.session.get(ms.url("/common/oauth2/v2.0/token"))
    assert_aad_error(r, 400, "invalid_request", 900561)
    # A code issued at /organizations does not redeem at /consumers.
    code = ms.code("alice", "organizations")
    assert ms.token("consumers", code=code).json()["error"] == "invalid_grant"
    # ...but does at the user's own tenant.
    assert ms.token(CONTOSO, code=ms.code("alice", "organizations")).status_code == 200


@pytest.mark.parametrize("requested,granted", [
    ("openid profile email User.Read", "openid profile email https://graph.microsoft.com/User.Read"),
    ("openid profile email user.read", "openid profile email https://graph.microsoft.com/User.Read"),
    ("openid profile email https://graph.microsoft.com/user.read",
     "openid profile email https://graph.microsoft.com/User.Read"),
    ("OpenID Profile https://graph.microsoft.com/.default",
     "openid profile https://graph.microsoft.com/User.Read"),
    ("openid profile email", "openid profile email https://graph.microsoft.com/User.Read"),
])
def test_scope_casing(ms, requested, granted):
    body = ms.tokens(scope=requested)
    assert body["scope"] == granted
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    assert "id_token" in body and "refresh_token" not in body
    assert ms.graph("me", body["access_token"]).status_code == 200


def test_graph_only_scope_has_no_id_token(ms):
    body = ms.tokens(scope="https://graph.microsoft.com/user.read")
    assert "id_token" not in body
    assert body["scope"] == "https://graph.microsoft.com/User.Read"
    assert ms.graph("me", body["access_token"]).json()["id"] == ALICE_OID


def test_offline_access_and_refresh(ms):
    body = ms.tokens(scope="openid offline_access User.Read")
    assert body["refresh_token"]
    r = ms.token(grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert r.status_code == 200 and r.json()["access_token"] != body["access_token"]


def test_refresh_rotation_expiry_and_revocation(ms):
    ms.control("post", "settings", {"access_token_lifetime": 5, "refresh_token_lifetime": 2})
    body = ms.tokens(scope="openid offline_access User.Read")
    assert body["expires_in"] == 5
    fresh = ms.token(grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert fresh["expires_in"] == 5 and fresh["id_token"]
    assert fresh["refresh_token"] != body["refresh_token"]       # rotated
    # Microsoft does not revoke the one used.
    assert ms.token(grant_type="refresh_token",
                    refresh_token=body["refresh_token"]).status_code == 200
    assert ms.control("get", "stats")["refresh_grants"] == 2
    time.sleep(2.2)
    r = ms.token(grant_type="refresh_token", refresh_token=fresh["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.json()["error_codes"] == [70008]
    ms.control("post", "settings", {"refresh_token_lifetime": 3600})
    body = ms.tokens(scope="openid offline_access User.Read")
    assert ms.control("post", "revoke_refresh_tokens", {"user": "alice"})["revoked"] >= 1
    r = ms.token(grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert r.json()["error_codes"] == [50173]
    listed = ms.control("get", "refresh_tokens")["refresh_tokens"]
    assert body["refresh_token"] in [t["token"] for t in listed]


# --------------------------------------------------------------------------
# ID tokens, keys, metadata
# --------------------------------------------------------------------------

def test_id_token_signature_and_claims(ms):
    body = ms.tokens(nonce="nonce-123")
    header, claims, _, _ = jwt_parts(body["id_token"])
    assert header == {"typ": "JWT", "alg": "RS256", "kid": header["kid"]}
    assert verifies(body["id_token"], ms.jwks())
    assert claims["aud"] == CLIENT_ID
    assert claims["iss"] == "%s/%s/v2.0" % (ms.base, CONTOSO)
    assert claims["tid"] == CONTOSO and claims["oid"] == ALICE_OID
    assert claims["nonce"] == "nonce-123"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["ver"] == "2.0"
    assert claims["name"] == "Alice Example"
    assert claims["preferred_username"] == claims["email"] == "alice@contoso.example"
    assert claims["groups"] == ALICE_GROUPS
    assert all(isinstance(claims[k], str) and claims[k] for k in ("aio", "rh", "uti"))
    # Pairwise sub: never the oid, stable per app, different across apps.
    assert claims["sub"] != ALICE_OID
    assert jwt_parts(ms.tokens()["id_token"])[1]["sub"] == claims["sub"]
    other = ms.tokens(client_id=REGISTERED_ID, secret=REGISTERED_SECRET,
                      redirect_uri=REGISTERED_URI)
    assert jwt_parts(other["id_token"])[1]["sub"] != claims["sub"]
    # A client registered without group claims gets none.
    assert "groups" not in jwt_parts(other["id_token"])[1]


def test_id_token_per_user(ms):
    jwks = ms.jwks()
    bob = ms.tokens("bob")
    b = jwt_parts(bob["id_token"])[1]
    assert verifies(bob["id_token"], jwks)
    assert b["tid"] == CONSUMERS and b["iss"] == "%s/%s/v2.0" % (ms.base, CONSUMERS)
    assert "groups" not in b
    c = jwt_parts(ms.tokens("carol")["id_token"])[1]
    assert c["iss"] == "%s/%s/v2.0" % (ms.base, FABRIKAM)
    assert "email" not in c and c["preferred_username"] == "carol@fabrikam.example"
    d = jwt_parts(ms.tokens("dave")["id_token"])[1]
    assert "#EXT#" in d["preferred_username"] and d["email"] == "dave@gmail.example"
    e = jwt_parts(ms.tokens("erin")["id_token"])[1]
    assert "groups" not in e
    assert e["_claim_names"] == {"groups": "src1"}
    assert e["_claim_sources"]["src1"]["endpoint"] == \
        "%s/v1.0/users/%s/getMemberObjects" % (ms.base, ERIN_OID)
    g = jwt_parts(ms.tokens("gina")["id_token"])[1]
    assert g["tid"] == FABRIKAM and len(g["groups"]) == 3


def test_optional_claims_follow_scopes(ms):
    c = jwt_parts(ms.tokens(scope="openid User.Read")["id_token"])[1]
    for claim in ("name", "preferred_username", "email", "oid"):
        assert claim not in c
    assert "nonce" not in c


def test_jwks_shape(ms):
    jwks = ms.jwks(CONTOSO)
    assert len(jwks["keys"]) == 2
    for k in jwks["keys"]:
        assert k["kty"] == "RSA" and k["use"] == "sig" and k["e"] == "AQAB"
        assert k["issuer"] == "%s/%s/v2.0" % (ms.base, CONTOSO)
        der = base64.b64decode(k["x5c"][0])
        assert k["x5t"] == base64.urlsafe_b64encode(hashlib.sha1(der).digest()) \
            .rstrip(b"=").decode()
        cert_key = x509.load_der_x509_certificate(der).public_key()
        assert cert_key.public_numbers() == rsa_key(k).public_numbers()
        assert rsa_key(k).key_size == 2048
    assert ms.jwks("common")["keys"][0]["issuer"] == "%s/{tenantid}/v2.0" % ms.base
    assert ms.control("get", "stats")["jwks_fetches"] == 2


def test_metadata(ms):
    def meta(t):
        r = ms.session.get(ms.url("/%s/v2.0/.well-known/openid-configuration" % t))
        assert r.status_code == 200
        return r.json()
    assert meta("common")["issuer"] == ms.base + "/{tenantid}/v2.0"
    assert meta("organizations")["issuer"] == ms.base + "/{tenantid}/v2.0"
    assert meta("consumers")["issuer"] == "%s/%s/v2.0" % (ms.base, CONSUMERS)
    m = meta(CONTOSO)
    assert m["issuer"] == "%s/%s/v2.0" % (ms.base, CONTOSO)
    assert m["authorization_endpoint"] == "%s/%s/oauth2/v2.0/authorize" % (ms.base, CONTOSO)
    assert m["jwks_uri"] == "%s/%s/discovery/v2.0/keys" % (ms.base, CONTOSO)
    assert m["end_session_endpoint"] == "%s/%s/oauth2/v2.0/logout" % (ms.base, CONTOSO)
    assert meta("fabrikam.example")["issuer"] == "%s/%s/v2.0" % (ms.base, FABRIKAM)
    r = ms.session.get(ms.url("/nowhere.example/v2.0/.well-known/openid-configuration"))
    assert r.status_code == 400 and "AADSTS90002" in r.json()["error_description"]


def test_logout(ms):
    r = ms.session.get(ms.url("/common/oauth2/v2.0/logout"), allow_redirects=False,
                       params={"post_logout_redirect_uri": "http://localhost:8080/bye"})
    assert r.status_code == 302 and r.headers["Location"] == "http://localhost:8080/bye"
    r = ms.session.get(ms.url("/common/oauth2/v2.0/logout"), allow_redirects=False)
    assert r.status_code == 200 and "You signed out" in r.text


def test_sid_optional_claim_names_the_browser_sign_in_session(ms):
    """sid only for a registration whose token configuration asks for it; one browser's
    sign-in session (its ESTSAUTH cookie) gives one sid to every app, another browser or
    another user another; a refresh keeps it."""
    sso_id, sso_secret = "dddddddd-0000-4000-8000-00000000000d", "sso-secret-value-0123"
    other_id = "eeeeeeee-0000-4000-8000-00000000000e"
    ms.control("post", "clients", {"client_id": sso_id, "secret": sso_secret,
                                   "optional_claims": ["sid"]})
    ms.control("post", "clients", {"client_id": other_id, "secret": sso_secret,
                                   "optional_claims": ["sid"]})
    assert "sid" not in jwt_parts(ms.tokens("alice")["id_token"])[1]   # the default app
    first = jwt_parts(ms.tokens("alice", client_id=sso_id, secret=sso_secret,
                                scope=DEFAULT_SCOPE + " offline_access")["id_token"])[1]["sid"]
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", first), first
    # The same browser, another app: the same session.
    again = ms.tokens("alice", client_id=other_id, secret=sso_secret)
    assert jwt_parts(again["id_token"])[1]["sid"] == first
    # Another browser (no cookie): another session.
    browser2 = FakeMSClient(ms.base)
    assert jwt_parts(browser2.tokens("alice", client_id=sso_id, secret=sso_secret)[
        "id_token"])[1]["sid"] != first
    # Another user in the first browser: a session of their own.
    assert jwt_parts(ms.tokens("bob", client_id=sso_id, secret=sso_secret)["id_token"])[1][
        "sid"] != first


def test_logout_frames_every_front_channel_url_of_the_session(ms):
    """Microsoft's sign-out page frames the front-channel logout URL of each app signed in
    through the browser's session, with ?sid= only (no iss, as Entra does), and ends it."""
    a_id, b_id, secret = ("f1f1f1f1-0000-4000-8000-0000000000f1",
                          "f2f2f2f2-0000-4000-8000-0000000000f2", "frontchannel-secret-01")
    ms.control("post", "clients", {"client_id": a_id, "secret": secret, "optional_claims": ["sid"],
                                   "frontchannel_logout_url": "http://a.example/fc"})
    ms.control("post", "clients", {"client_id": b_id, "secret": secret, "optional_claims": ["sid"],
                                   "frontchannel_logout_url": "http://b.example/fc?x=1"})
    sid = jwt_parts(ms.tokens("alice", client_id=a_id, secret=secret)["id_token"])[1]["sid"]
    ms.tokens("alice", client_id=b_id, secret=secret)
    r = ms.session.get(ms.url("/common/oauth2/v2.0/logout"), allow_redirects=False,
                       params={"post_logout_redirect_uri": "http://a.example/bye"})
    assert r.status_code == 200
    assert 'src="http://a.example/fc?sid=%s"' % sid in r.text
    assert 'src="http://b.example/fc?x=1&amp;sid=%s"' % sid in r.text
    assert "iss=" not in r.text and "http://a.example/bye" in r.text
    # The session is over: the next sign-in begins another, and a second logout frames nothing.
    assert jwt_parts(ms.tokens("alice", client_id=a_id, secret=secret)["id_token"])[1][
        "sid"] != sid


# --------------------------------------------------------------------------
# Graph
# --------------------------------------------------------------------------

ME_KEYS = {"@odata.context", "businessPhones", "displayName", "givenName", "jobTitle",
           "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname",
           "userPrincipalName", "id"}


def test_graph_me(ms):
    at = ms.tokens()["access_token"]
    r = ms.graph("me", at)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    me = r.json()
    assert set(me) == ME_KEYS
    assert me["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    assert me["id"] == ALICE_OID and me["mail"] == "alice@contoso.example"
    assert me["displayName"] == "Alice Example" and me["businessPhones"] == []
    bob = ms.graph("me", ms.tokens("bob")["access_token"]).json()
    assert re.match(r"^[0-9a-f]{16}$", bob["id"])
    assert bob["id"] != jwt_parts(ms.tokens("bob")["id_token"])[1]["oid"]
    carol = ms.graph("me", ms.tokens("carol")["access_token"]).json()
    assert carol["mail"] is None and carol["userPrincipalName"] == "carol@fabrikam.example"
    frank = ms.graph("me", ms.tokens("frank")["access_token"]).json()
    assert "id" not in frank and frank["displayName"] == "Frank NoId"
    assert ms.control("get", "stats")["graph_me"] == 4


NORTHWIND = "5c0d7f2e-3b8a-4e61-9f4d-2a7b9c1e8d03"


def test_graph_organization(ms):
    """The signed-in user's tenant and its verified domains, as Graph gives them to User.Read;
    personal accounts have no organization."""
    r = ms.graph("organization", ms.tokens()["access_token"])
    assert r.status_code == 200
    doc = r.json()
    assert doc["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#organization"
    [org] = doc["value"]
    assert org["id"] == CONTOSO
    assert [d["name"] for d in org["verifiedDomains"]] == ["contoso.example"]
    assert org["verifiedDomains"][0]["isDefault"] is True
    assert org["street"] is None   # User.Read reads id, displayName, verifiedDomains only
    sel = ms.graph("organization", ms.mint("carol"), params={"$select": "id"}).json()
    assert sel["value"] == [{"id": FABRIKAM}]
    bob = ms.graph("organization", ms.tokens("bob")["access_token"])
    assert bob.status_code == 400 and "error" in bob.json()
    assert ms.graph("organization", "not-a-token").status_code == 401
    assert ms.control("get", "stats")["graph_organization"] == 4
    ms.faults(graph="no_organization")
    assert ms.graph("me", ms.mint("alice")).status_code == 200
    assert ms.graph("organization", ms.mint("alice")).json()["value"] == []


def test_mail_of_another_tenant_and_xms_edov(ms):
    """eve's own tenant (northwind) gave her alice's address as `mail`: Graph and the
    email claim carry it, and xms_edov (an optional claim of the default app) says its
    domain is not her tenant's."""
    me = ms.graph("me", ms.mint("eve")).json()
    assert me["mail"] == "alice@contoso.example"
    assert me["userPrincipalName"] == "eve@northwind.example"
    m = jwt_parts(ms.tokens("eve")["id_token"])[1]
    assert m["tid"] == NORTHWIND and m["email"] == "alice@contoso.example"
    assert m["xms_edov"] is False
    assert jwt_parts(ms.tokens("alice")["id_token"])[1]["xms_edov"] is True
    assert jwt_parts(ms.tokens("bob")["id_token"])[1]["xms_edov"] is True
    assert jwt_parts(ms.tokens("dave")["id_token"])[1]["xms_edov"] is False
    # Sent only to a registration that configured the optional claim.
    other = ms.tokens("eve", client_id=REGISTERED_ID, secret=REGISTERED_SECRET,
                      redirect_uri=REGISTERED_URI)
    assert "xms_edov" not in jwt_parts(other["id_token"])[1]


def test_graph_access_token_shape(ms):
    at = ms.tokens()["access_token"]
    header, claims, _, _ = jwt_parts(at)
    assert "nonce" in header and header["alg"] == "RS256"
    assert claims["aud"] == "https://graph.microsoft.com" and claims["oid"] == ALICE_OID
    # Like a real Graph token, it does not verify with the published keys.
    assert not verifies(at, ms.jwks())


def test_graph_401_shapes(ms):
    def check(r, message_part):
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == "InvalidAuthenticationToken"
        assert message_part in err["message"]
        assert set(err["innerError"]) == {"date", "request-id", "client-request-id"}
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    check(ms.graph("me", None), "empty")
    check(ms.graph("me", "not-a-token"), "")
    check(ms.graph("me", ms.tokens()["access_token"][:-4] + "AAAA"), "")
    check(ms.graph("me", ms.mint(expired=True)), "expired")
    assert ms.graph("me", ms.mint()).status_code == 200
    r = ms.graph("me", ms.mint(scope="Mail.Read"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_transitive_member_of_paging(ms):
    at = ms.tokens("erin")["access_token"]
    url = "me/transitiveMemberOf?$select=id"
    pages = []
    ids = []
    while url:
        r = ms.graph(url, at) if not url.startswith("http") else \
            ms.session.get(url, headers={"Authorization": "Bearer " + at})
        assert r.status_code == 200
        body = r.json()
        pages.append(len(body["value"]))
        for item in body["value"]:
            assert item["@odata.type"] == "#microsoft.graph.group"
            ids.append(item["id"])
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(ms.base + "/v1.0/me/transitiveMemberOf?$select=id&$skiptoken=")
    assert pages == [100, 100, 50]
    assert len(set(ids)) == 250
    # %24select is the same parameter; Alice's two groups fit one page.
    r = ms.session.get(ms.url("/v1.0/me/transitiveMemberOf?%24select=id"),
                       headers={"Authorization": "Bearer " + ms.tokens()["access_token"]})
    body = r.json()
    assert [g["id"] for g in body["value"]] == ALICE_GROUPS
    assert "@odata.nextLink" not in body
    assert ms.control("get", "stats")["graph_groups"] == 4


def test_graph_page_size_overrides_top(ms):
    """Graph may answer fewer entries than $top asks: the client must follow nextLink."""
    at = ms.tokens("erin")["access_token"]
    assert len(ms.graph("me/transitiveMemberOf?$select=id&$top=999", at).json()["value"]) == 250
    ms.control("post", "settings", {"graph_page_size": 2})
    url, ids = "me/transitiveMemberOf?$select=id&$top=999", []
    while url:
        r = ms.graph(url, at) if not url.startswith("http") else \
            ms.session.get(url, headers={"Authorization": "Bearer " + at})
        body = r.json()
        assert r.status_code == 200 and len(body["value"]) <= 2
        ids += [g["id"] for g in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert "$top=999&$skiptoken=" in url
    assert len(set(ids)) == 250


# --------------------------------------------------------------------------
# Control API
# --------------------------------------------------------------------------

def test_register_client_at_runtime(ms):
    cid = "cccccccc-0000-4000-8000-00000000000c"
    ms.control("post", "clients", {"client_id": cid, "secret": "s3cret-runtime",
                                   "redirect_uris": ["http://x.example/cb"], "groups": True})
    body = ms.tokens(client_id=cid, secret="s3cret-runtime", redirect_uri="http://x.example/cb")
    assert jwt_parts(body["id_token"])[1]["groups"] == ALICE_GROUPS


def test_app_without_graph_permissions(ms):
    cid = "dddddddd-0000-4000-8000-00000000000d"
    ms.control("post", "clients", {"client_id": cid, "secret": "no-graph-secret",
                                   "api_permissions": []})
    body = ms.tokens(client_id=cid, secret="no-graph-secret", scope="openid profile email")
    assert body["scope"] == "openid profile email" and "id_token" in body
    r = ms.graph("me", body["access_token"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    info = ms.session.get(ms.url("/oidc/userinfo"),
                          headers={"Authorization": "Bearer " + body["access_token"]}).json()
    assert info["name"] == "Alice Example" and info["sub"] != ALICE_OID
    # Another resource's token is not Graph's.
    other = ms.tokens(scope="openid api://contoso-api/Data.Read")
    assert other["scope"] == "openid api://contoso-api/Data.Read"
    assert ms.graph("me", other["access_token"]).status_code == 401


def test_sign(ms):
    jwks = ms.jwks()
    claims = {"aud": CLIENT_ID, "sub": "x"}
    good = ms.control("post", "sign", {"claims": claims})["jwt"]
    assert verifies(good, jwks) and jwt_parts(good)[1] == claims
    rogue = ms.control("post", "sign", {"claims": claims, "key": "rogue",
                                        "kid": jwt_parts(good)[0]["kid"]})["jwt"]
    assert not verifies(rogue, jwks)
    none = ms.control("post", "sign", {"claims": claims, "alg": "none"})["jwt"]
    assert none.endswith(".") and jwt_parts(none)[0]["alg"] == "none"
    hs = ms.control("post", "sign", {"claims": claims, "alg": "HS256"})["jwt"]
    h, p, s = hs.split(".")
    assert b64d(s) == hmac.new(SECRET.encode(), (h + "." + p).encode(), hashlib.sha256).digest()


def test_faults_validation_and_count(ms):
    r = ms.session.post(ms.url("/_fakems/faults"), json={"token": "nonsense"})
    assert r.status_code == 400 and "valid" in r.json()["error"]
    ms.faults(token="500", count=2)
    assert ms.token(code="x").status_code == 500
    assert ms.token(code="x").status_code == 500
    assert ms.token(code="x").status_code == 400
    ms.faults(token="500")
    assert ms.control("get", "faults")["faults"]["token"] == {"knob": "500", "remaining": None}
    ms.faults(token=None)
    assert ms.token(code="x").status_code == 400
    ms.faults(jwks="500")
    ms.control("post", "reset")
    assert ms.session.get(ms.url("/common/discovery/v2.0/keys")).status_code == 200
    stats = ms.control("get", "stats")
    assert stats["jwks_fetches"] == 1 and stats["token_requests"] == 0


# --------------------------------------------------------------------------
# Fault knobs: token endpoint
# --------------------------------------------------------------------------

def test_token_fault_500_html_empty_garbage(ms):
    ms.faults(token="500", count=1)
    r = ms.token(code=ms.code())
    assert r.status_code == 500 and "<html" in r.text
    ms.faults(token="html", count=1)
    r = ms.token(code=ms.code())
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    ms.faults(token="empty", count=1)
    r = ms.token(code=ms.code())
    assert r.status_code == 200 and r.content == b""
    ms.faults(token="garbage", count=1)
    r = ms.token(code=ms.code())
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.content)


def test_token_fault_truncated_and_big(ms):
    ms.faults(token="truncated", count=1)
    r = ms.token(code=ms.code())
    assert r.status_code == 200 and r.text.startswith('{"token_type": "Bearer"')
    with pytest.raises(ValueError):
        json.loads(r.text)
    ms.faults(token="big", count=1)
    r = ms.token(code=ms.code())
    assert len(r.content) > 2 * 1024 * 1024
    assert r.json()["access_token"]


def test_token_fault_reset(ms):
    ms.faults(token="reset", count=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(ms.url("/common/oauth2/v2.0/token"), data={"code": "x"}, timeout=5)
    assert ms.token(code="x").status_code == 400


def test_token_fault_hang(ms):
    ms.control("post", "settings", {"hang_seconds": 3})
    ms.faults(token="hang", count=1)
    with pytest.raises(requests.Timeout):
        ms.token(code=ms.code(), timeout=1)
    # The hang holds only its own connection: other requests are answered.
    assert requests.get(ms.url("/_fakems/health"), timeout=1).status_code == 200
    assert ms.token(code=ms.code()).status_code == 200


def test_token_fault_content_knobs(ms):
    ms.faults(token="no_id_token", count=1)
    assert "id_token" not in ms.tokens()
    ms.faults(token="no_access_token", count=1)
    answer = ms.tokens()
    assert "access_token" not in answer and answer["id_token"]
    ms.faults(token="expires_in_string", count=1)
    assert ms.tokens()["expires_in"] == "3599"
    ms.faults(token="invalid_grant", count=1)
    assert_aad_error(ms.token(code=ms.code()), 400, "invalid_grant", 70008)


def test_token_fault_code_reuse(ms):
    code = ms.code()
    ms.faults(token="code_reuse", count=3)
    first = ms.token(code=code)
    assert first.status_code == 200 and first.json()["access_token"]
    # The same code redeems again, each time with a real, fresh answer.
    again = [ms.token(code=code) for _ in range(2)]
    assert [r.status_code for r in again] == [200, 200]
    assert len({first.json()["access_token"]} | {r.json()["access_token"] for r in again}) == 3
    # Without the knob the code is spent by its next use, then refused.
    assert ms.token(code=code).status_code == 200
    assert_aad_error(ms.token(code=code), 400, "invalid_grant", 54005)
    # A code spent before the knob is armed stays spent.
    spent = ms.code()
    assert ms.token(code=spent).status_code == 200
    ms.faults(token="code_reuse")
    assert_aad_error(ms.token(code=spent), 400, "invalid_grant", 54005)


# --------------------------------------------------------------------------
# Fault knobs: id_token
# --------------------------------------------------------------------------

def id_token_with(ms, knob, **params):
    ms.faults(id_token=knob, count=1)
    token = ms.tokens(nonce="the-nonce", **params)["id_token"]
    header, claims, sig, signing_input = jwt_parts(token)
    return token, header, claims, sig, signing_input


def test_id_token_wrong_key(ms):
    jwks = ms.jwks()
    token, header, *_ = id_token_with(ms, "wrong_key")
    assert header["kid"] in [k["kid"] for k in jwks["keys"]]
    assert not verifies(token, jwks)


def test_id_token_unknown_kid_is_a_rollover(ms):
    before = ms.jwks()
    token, header, *_ = id_token_with(ms, "unknown_kid")
    assert header["kid"] not in [k["kid"] for k in before["keys"]]
    assert not verifies(token, before)
    after = ms.jwks()
    assert verifies(token, after)


def test_id_token_alg_none_and_hs256(ms):
    token, header, _, sig, _ = id_token_with(ms, "alg_none")
    assert header["alg"] == "none" and sig == b"" and token.endswith(".")
    token, header, _, sig, signing_input = id_token_with(ms, "hs256")
    assert header["alg"] == "HS256"
    assert sig == hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()


@pytest.mark.parametrize("knob,check", [
    ("wrong_aud", lambda c: c["aud"] != CLIENT_ID),
    ("wrong_iss", lambda c: c["iss"] == "https://sts.windows.net/%s/" % CONTOSO),
    ("wrong_tid", lambda c: c["tid"] == FOREIGN and c["iss"].endswith("/%s/v2.0" % FOREIGN)),
    ("iss_tid_mismatch", lambda c: c["tid"] == CONTOSO and
     c["iss"].endswith("/%s/v2.0" % FOREIGN)),
    ("wrong_nonce", lambda c: c["nonce"] != "the-nonce"),
    ("no_nonce", lambda c: "nonce" not in c),
    ("expired", lambda c: c["exp"] < time.time() - 7000),
    ("future", lambda c: c["nbf"] > time.time() + 7000 and c["iat"] == c["nbf"]),
    ("groups_overage", lambda c: "groups" not in c and c["_claim_names"] == {"groups": "src1"}),
    ("other_user", lambda c: c["tid"] == CONTOSO and c["aud"] == CLIENT_ID and
     c["preferred_username"] != "alice@contoso.example"),
])
def test_id_token_claim_knobs(ms, knob, check):
    jwks = ms.jwks()
    token, header, claims, _, _ = id_token_with(ms, knob)
    assert check(claims), claims
    assert verifies(token, jwks)   # only the named claim is wrong
    # The knob applied once: the next token is correct.
    normal = jwt_parts(ms.tokens(nonce="the-nonce")["id_token"])[1]
    assert normal["aud"] == CLIENT_ID and normal["nonce"] == "the-nonce"
    assert normal["iss"] == "%s/%s/v2.0" % (ms.base, CONTOSO) and normal["tid"] == CONTOSO
    assert normal["groups"] == ALICE_GROUPS and normal["exp"] > time.time()


# --------------------------------------------------------------------------
# Fault knobs: Graph, JWKS, authorize
# --------------------------------------------------------------------------

def test_graph_faults(ms):
    at = ms.tokens()["access_token"]
    ms.faults(graph="401", count=1)
    r = ms.graph("me", at)
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    ms.faults(graph="500", count=1)
    assert ms.graph("me", at).status_code == 500
    ms.faults(graph="429", count=1)
    r = ms.graph("me", at)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    ms.faults(graph="garbage", count=1)
    with pytest.raises(ValueError):
        json.loads(ms.graph("me", at).content)
    ms.faults(graph="no_id", count=1)
    me = ms.graph("me", at).json()
    assert "id" not in me and me["displayName"] == "Alice Example"
    assert ms.graph("me", at).json()["id"] == ALICE_OID


def test_graph_hang(ms):
    ms.control("post", "settings", {"hang_seconds": 3})
    ms.faults(graph="hang", count=1)
    at = ms.tokens()["access_token"]
    with pytest.raises(requests.Timeout):
        requests.get(ms.url("/v1.0/me"), headers={"Authorization": "Bearer " + at}, timeout=1)
    assert ms.graph("me", at, timeout=2).status_code == 200


def test_jwks_faults(ms):
    url = ms.url("/common/discovery/v2.0/keys")
    ms.faults(jwks="500", count=1)
    assert ms.session.get(url).status_code == 500
    ms.faults(jwks="garbage", count=1)
    with pytest.raises(ValueError):
        json.loads(ms.session.get(url).content)
    ms.faults(jwks="empty_keys", count=1)
    assert ms.session.get(url).json() == {"keys": []}
    normal = ms.session.get(url).json()
    ms.faults(jwks="big", count=1)
    r = ms.session.get(url)
    assert len(r.content) > 2 * 1024 * 1024 and r.json()["keys"] == normal["keys"]
    ms.control("post", "settings", {"hang_seconds": 3})
    ms.faults(jwks="hang", count=1)
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=1)
    assert requests.get(url, timeout=2).status_code == 200
    assert ms.control("get", "stats")["jwks_fetches"] == 7


def test_authorize_faults(ms):
    ms.faults(authorize="500", count=1)
    assert ms.authorize(login_hint="alice", fakems_auto="1").status_code == 500
    ms.faults(authorize="access_denied", count=1)
    q = ms.login(state="s")
    assert q["error"] == "access_denied" and q["state"] == "s"
    ms.faults(authorize="no_state", count=1)
    q = ms.login(state="s")
    assert "code" in q and "state" not in q
    ms.faults(authorize="wrong_state", count=1)
    assert ms.login(state="s")["state"] != "s"
    ms.faults(authorize="no_code", count=1)
    q = ms.login(state="s")
    assert "code" not in q and q["state"] == "s"
    q = ms.login(state="s")
    assert "code" in q and q["state"] == "s"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


# --------------------------------------------------------------------------
# Client assertions: certificate and federated credentials
# --------------------------------------------------------------------------

CERT_APP = "c0c0c0c0-0000-4000-8000-0000000000c1"
FED_APP = "d0d0d0d0-0000-4000-8000-0000000000d1"
FED_SUBJECT = "system:serviceaccount:web:msauth"


def make_cert(days=30, key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakems test client")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return key, cert


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_assertion(key, cert, aud, client_id=CERT_APP, alg="PS256", header=None, **claims):
    der = cert.public_bytes(serialization.Encoding.DER)
    h = {"alg": alg, "typ": "JWT", "x5t#S256": b64e(hashlib.sha256(der).digest())}
    h.update(header or {})
    h = {k: v for k, v in h.items() if v is not None}
    now = int(time.time())
    c = {"aud": aud, "iss": client_id, "sub": client_id, "jti": os.urandom(8).hex(),
         "iat": now, "nbf": now, "exp": now + 300}
    c.update(claims)
    c = {k: v for k, v in c.items() if v is not None}
    signing_input = (b64e(json.dumps(h).encode()) + "." + b64e(json.dumps(c).encode())).encode()
    pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if alg == "PS256"
           else padding.PKCS1v15())
    return signing_input.decode() + "." + b64e(key.sign(signing_input, pad, hashes.SHA256()))


@pytest.fixture
def cert_app(ms):
    key, cert = make_cert()
    ms.control("post", "clients", {"client_id": CERT_APP, "redirect_uris": None,
                                   "certificates": [cert.public_bytes(
                                       serialization.Encoding.PEM).decode()]})
    return key, cert


def assertion_token(ms, assertion, tenant="common", client_id=CERT_APP, **form):
    form.setdefault("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    return ms.token(tenant, auth="none", code=ms.code(client_id=client_id, tenant=tenant),
                    client_id=client_id, client_assertion=assertion, **form)


def test_certificate_assertion_ps256_and_rs256(ms, cert_app):
    key, cert = cert_app
    aud = ms.url("/common/oauth2/v2.0/token")
    for alg in ("PS256", "RS256"):
        r = assertion_token(ms, client_assertion(key, cert, aud, alg=alg))
        assert r.status_code == 200, r.text
        assert "id_token" in r.json()
    # x5t (SHA-1, what mod_auth_openidc sends) names a registered certificate too
    der = cert.public_bytes(serialization.Encoding.DER)
    sha1 = assertion_token(ms, client_assertion(key, cert, aud, header={
        "x5t#S256": None, "x5t": b64e(hashlib.sha1(der).digest())}))
    assert sha1.status_code == 200, sha1.text
    seen = ms.control("get", "assertions")["assertions"]
    assert [a["verdict"] for a in seen] == ["ok", "ok", "ok"]
    assert seen[0]["header"]["alg"] == "PS256" and seen[1]["header"]["alg"] == "RS256"
    assert seen[0]["claims"]["aud"] == aud and seen[0]["kind"] == "certificate"
    log = ms.control("get", "requests", params={"path": "/token"})["requests"]
    assert {e["auth"] for e in log} == {"assertion"}
    assert log[0]["client_id"] == CERT_APP


def test_certificate_assertion_refusals(ms, cert_app):
    key, cert = cert_app
    aud = ms.url("/common/oauth2/v2.0/token")
    other_key, other_cert = make_cert()
    now = int(time.time())
    cases = [
        # signed by another key than the registered certificate's
        (client_assertion(other_key, cert, aud), 401, "invalid_client", 700027),
        # a certificate the app does not have
        (client_assertion(other_key, other_cert, aud), 401, "invalid_client", 700027),
        (client_assertion(key, cert, aud, header={"x5t#S256": None}), 401, "invalid_client", 50027),
        (client_assertion(key, cert, ms.url("/organizations/oauth2/v2.0/token")), 401,
         "invalid_client", 700023),
        (client_assertion(key, cert, aud, iss="someone-else"), 401, "invalid_client", 50048),
        (client_assertion(key, cert, aud, client_id=CLIENT_ID), 401, "invalid_client", 700021),
        (client_assertion(key, cert, aud, exp=now - 5), 401, "invalid_client", 700024),
        (client_assertion(key, cert, aud, nbf=now + 120), 401, "invalid_client", 700024),
        (client_assertion(key, cert, aud, exp=now + 3600), 401, "invalid_client", 700024),
        (client_assertion(key, cert, aud, jti=None), 401, "invalid_client", 50027),
        ("not.a.jwt", 401, "invalid_client", 50027),
    ]
    for assertion, status, error, code in cases:
        assert_aad_error(assertion_token(ms, assertion), status, error, code)
    # a wrong client_assertion_type, and an assertion with a secret besides
    assert_aad_error(assertion_token(ms, client_assertion(key, cert, aud),
                                     client_assertion_type="jwt"), 400, "invalid_request", 900144)
    assert_aad_error(assertion_token(ms, client_assertion(key, cert, aud), client_secret="x"),
                     400, "invalid_request", 9002313)
    # a secret for an app that has only a certificate
    assert_aad_error(ms.token(code=ms.code(client_id=CERT_APP), client_id=CERT_APP,
                              client_secret=SECRET), 401, "invalid_client", 7000218)
    # the time limit is a setting: 0 takes Microsoft's current "no restriction"
    ms.control("post", "settings", {"assertion_max_lifetime": 0})
    assert assertion_token(ms, client_assertion(key, cert, aud, exp=now + 3600)).status_code == 200


def test_certificate_assertion_jti_single_use(ms, cert_app):
    key, cert = cert_app
    assertion = client_assertion(key, cert, ms.url("/common/oauth2/v2.0/token"))
    assert assertion_token(ms, assertion).status_code == 200
    assert_aad_error(assertion_token(ms, assertion), 401, "invalid_client", 50013)
    verdicts = [a["verdict"] for a in ms.control("get", "assertions")["assertions"]]
    assert verdicts == ["ok", "AADSTS50013"]


def test_register_certificate_control(ms):
    key, cert = make_cert()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    ms.control("post", "clients", {"client_id": CERT_APP, "redirect_uris": None})
    out = ms.control("post", "certificates", {"client_id": CERT_APP, "certificate": pem})
    der = cert.public_bytes(serialization.Encoding.DER)
    assert out["client"]["certificates"][-1]["x5t#S256"] == b64e(hashlib.sha256(der).digest())
    assert out["client"]["certificates"][-1]["thumbprint"] == hashlib.sha1(der).hexdigest().upper()
    r = assertion_token(ms, client_assertion(key, cert, ms.url("/common/oauth2/v2.0/token")))
    assert r.status_code == 200, r.text


def test_federated_credential(ms):
    ms.control("post", "clients", {"client_id": FED_APP, "redirect_uris": None, "federated": [
        {"issuer": ms.url("/workload-issuer"), "subject": FED_SUBJECT}]})
    token = ms.control("post", "federated_token", {"subject": FED_SUBJECT})["token"]
    # sent again and again (as a projected token is until it rotates): no single use
    for _ in range(2):
        r = assertion_token(ms, token, client_id=FED_APP)
        assert r.status_code == 200, r.text
    seen = ms.control("get", "assertions")["assertions"]
    assert seen[-1]["kind"] == "federated" and seen[-1]["verdict"] == "ok"
    other = ms.control("post", "federated_token", {"subject": "system:serviceaccount:x:y"})["token"]
    assert_aad_error(assertion_token(ms, other, client_id=FED_APP), 400, "invalid_request", 70021)
    wrong_aud = ms.control("post", "federated_token", {"subject": FED_SUBJECT,
                                                       "audience": "api://other"})["token"]
    assert_aad_error(assertion_token(ms, wrong_aud, client_id=FED_APP), 400, "invalid_request",
                     70021)
    forged = ms.control("post", "federated_token", {"subject": FED_SUBJECT, "rogue": True})["token"]
    assert_aad_error(assertion_token(ms, forged, client_id=FED_APP), 401, "invalid_client", 700027)
    expired = ms.control("post", "federated_token", {"subject": FED_SUBJECT,
                                                     "lifetime": -10})["token"]
    assert_aad_error(assertion_token(ms, expired, client_id=FED_APP), 401, "invalid_client",
                     700024)


# -- continuous access evaluation -------------------------------------------

CP1 = json.dumps({"access_token": {"xms_cc": {"values": ["cp1"]}}})


def challenge_claims(header):
    m = re.search(r'error="insufficient_claims", claims="([^"]+)"', header)
    assert m, header
    return json.loads(base64.b64decode(m.group(1)))


def test_cae_challenge_until_signed_in_with_the_claims(ms):
    cp1 = ms.tokens(claims=CP1)["access_token"]
    plain = ms.tokens()["access_token"]
    assert ms.graph("me", cp1).status_code == 200
    state = ms.control("post", "cae", {"user": "alice@contoso.example"})
    assert state["user"] == "alice" and state["pending"]["sticky"] is False
    assert ms.control("get", "cae", params={"user": "alice"}) == state
    # A client that declared cp1 is challenged at once; another keeps its token.
    r = ms.graph("me", cp1)
    assert r.status_code == 401
    header = r.headers["WWW-Authenticate"]
    assert header == state["www_authenticate"]
    assert header.startswith('Bearer realm="", authorization_uri="https://login.'
                             'microsoftonline.com/common/oauth2/authorize", ')
    asked = challenge_claims(header)
    assert asked == {"access_token": {"nbf": {"essential": True,
                                              "value": state["pending"]["nbf"]}}}
    assert ms.graph("me", plain).status_code == 200
    # Signing in again without the claims does not lift it; with them (and cp1) it does.
    again = ms.tokens(claims=CP1)["access_token"]
    assert ms.graph("me", again).status_code == 401
    asked["access_token"]["xms_cc"] = {"values": ["cp1"]}
    fresh = ms.tokens(claims=json.dumps(asked))["access_token"]
    assert ms.graph("me", fresh).status_code == 200
    assert ms.control("get", "cae", params={"user": "alice"})["pending"] is None
    # The claims each request carried are in the request log.
    logged = [e for e in ms.control("get", "requests")["requests"]
              if e["path"].endswith("/authorize")]
    assert json.loads(logged[-1]["query"]["claims"]) == asked


def test_cae_sticky_and_lifted(ms):
    state = ms.control("post", "cae", {"user": "alice", "sticky": True})
    asked = challenge_claims(state["www_authenticate"])
    token = ms.tokens(claims=json.dumps(asked))["access_token"]
    # sticky: no sign-in satisfies it (Microsoft keeps refusing)
    assert ms.graph("me", ms.mint()).status_code == 200  # a token without cp1
    r = ms.graph("me", ms.tokens(claims=CP1)["access_token"])
    assert r.status_code == 401
    assert ms.control("get", "cae", params={"user": "alice"})["pending"]["sticky"] is True
    assert token
    lifted = ms.control("post", "cae", {"user": "alice", "challenge": False})
    assert lifted["pending"] is None and lifted["www_authenticate"] is None
    assert ms.graph("me", ms.tokens(claims=CP1)["access_token"]).status_code == 200
    ms.control("post", "cae", {"user": "alice"})
    ms.control("post", "reset")
    assert ms.control("get", "cae", params={"user": "alice"})["pending"] is None
