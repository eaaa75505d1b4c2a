#!/usr/bin/python3
"""fakems: a loopback stand-in for the Microsoft identity platform and Graph.

It serves, for any tenant segment (a tenant GUID, a verified domain, `common`,
`organizations` or `consumers`):

  /<T>/oauth2/v2.0/authorize         login page (pick a user) and authorization codes
  /<T>/oauth2/v2.0/token             code (and refresh token) redemption
  /<T>/oauth2/v2.0/logout            RP-initiated logout: ends the browser's sign-in session
                                     and frames each app's front-channel logout URL
  /<T>/discovery/v2.0/keys           JWKS (RS256 keys with x5c/x5t)
  /<T>/v2.0/.well-known/openid-configuration
  /v1.0/me, /v1.0/me/transitiveMemberOf, .../getMemberObjects,
  /v1.0/organization                                             (Graph)
  /_fakems/...                       control API for tests (faults, request log)

It copies what Microsoft really does wherever a client could notice: error
shapes and AADSTS codes, .NET-style URL encoding of redirects, pairwise `sub`,
per-tenant issuers, Graph's 401 body, `@odata.nextLink` paging, group overage.
Only the Python standard library and python3-cryptography are used.
"""

import argparse
import base64
import hashlib
import hmac
import html
import io
import json
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote_plus, unquote_plus, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

CONTOSO_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FABRIKAM_TID = "a1b2c3d4-0000-4000-8000-000000000001"
# Every personal Microsoft account carries this tenant id.
CONSUMERS_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# A tenant no built-in user belongs to: used by the wrong_tid/iss_tid_mismatch
# faults so a token can come "from another organisation".
FOREIGN_TID = "7a61ef8e-146b-4485-91d3-df5777ce9b85"
# Another organisation, whose admin gave a user the mail address of a contoso user
# (Graph `mail` is any string the user's own tenant sets: the "nOAuth" class).
NORTHWIND_TID = "5c0d7f2e-3b8a-4e61-9f4d-2a7b9c1e8d03"
# Mail domains Microsoft itself runs for personal accounts (outlook.com, hotmail.com,
# live.com, msn.com; outlook.example in this directory): there it owns the address.
MS_CONSUMER_MAIL_DOMAINS = ("outlook.com", "hotmail.com", "live.com", "msn.com",
                            "outlook.example")

DEFAULT_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
DEFAULT_CLIENT_SECRET = "fakems-client-secret-0123456789"

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The audience a federated credential expects by default (Microsoft's value for Entra ID).
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
GRAPH_RESOURCE = "https://graph.microsoft.com/"

GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Microsoft issues a groups claim only up to this many groups in a JWT; above
# it the claim is replaced by a pointer to Graph (the "overage").
GROUPS_CLAIM_LIMIT = 200
GRAPH_PAGE_SIZE = 100

OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# Graph delegated permissions, keyed lower-case, valued with Microsoft's casing.
GRAPH_PERMISSIONS = {p.lower(): p for p in (
    "User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All",
    "User.ReadWrite.All", "GroupMember.Read.All", "Group.Read.All",
    "Directory.Read.All", "Directory.ReadWrite.All", "Mail.Read", "Mail.Send",
    "Calendars.Read", "Contacts.Read", "Files.Read", "Files.Read.All",
    "People.Read", "Presence.Read")}
# Permissions that let a token read the signed-in user's profile / memberships.
PROFILE_PERMISSIONS = {"User.Read", "User.ReadWrite", "User.ReadBasic.All",
                       "User.Read.All", "User.ReadWrite.All",
                       "Directory.Read.All", "Directory.ReadWrite.All"}
MEMBERSHIP_PERMISSIONS = PROFILE_PERMISSIONS | {"GroupMember.Read.All",
                                                "Group.Read.All"}

# Form and query fields whose values are secrets: the request log keeps only
# a short hash of them (see hash12).
SECRET_FIELDS = {"client_secret", "code", "refresh_token", "access_token",
                 "id_token", "client_assertion", "password", "assertion"}

MAX_BODY = 1024 * 1024
BIG_BODY = 2 * 1024 * 1024
REQUEST_LOG_LIMIT = 10000

FAULT_KNOBS = {
    "token": ("500", "hang", "garbage", "truncated", "html", "empty", "reset",
              "big", "no_id_token", "no_access_token", "expires_in_string", "invalid_grant",
              "code_reuse"),
    "id_token": ("wrong_key", "unknown_kid", "alg_none", "hs256", "wrong_aud",
                 "wrong_iss", "wrong_tid", "iss_tid_mismatch", "wrong_nonce",
                 "no_nonce", "expired", "future", "groups_overage", "other_user"),
    "graph": ("401", "403", "429", "500", "hang", "garbage", "empty", "no_id",
              "no_organization"),
    "jwks": ("500", "garbage", "hang", "empty_keys", "big"),
    "authorize": ("500", "hang", "access_denied", "server_error",
                  "temporarily_unavailable", "no_state", "wrong_state", "no_code"),
}

DEFAULT_SETTINGS = {
    "hang_seconds": 30.0,        # how long a "hang" fault sleeps
    "code_lifetime": 600,        # authorization codes live ten minutes
    "access_token_lifetime": 3599,
    # Refresh tokens live 90 days at Microsoft (24 hours for single-page apps); shorter here
    # to show what a client does with an expired one (AADSTS70008).
    "refresh_token_lifetime": 90 * 86400,
    # Seconds a refresh_token grant takes to answer: a window for concurrent refreshes.
    "refresh_delay": 0.0,
    "id_token_lifetime": 3600,
    # Graph's server-driven paging: a directory-object page holds at most this many
    # entries whatever $top asks (0: $top is honoured, up to 999), as Graph may answer
    # fewer than $top and clients must follow @odata.nextLink.
    "graph_page_size": 0,
    # The longest a certificate's client assertion may be valid (exp - nbf, else exp - now):
    # Microsoft's page says "5-10 minutes after nbf at most" (it enforces no limit today);
    # 0 takes any lifetime.
    "assertion_max_lifetime": 600,
}


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    """base64url without padding; ValueError on anything else."""
    if not isinstance(text, str) or not re.match(r"^[A-Za-z0-9_-]*$", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(obj):
    return b64url(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def hash12(value):
    """The first 12 hex digits of sha256(value): how secrets appear in the log."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def ms_timestamp(t=None):
    """Microsoft's error timestamp format: `2024-05-01 12:34:56Z`."""
    dt = datetime.fromtimestamp(t if t is not None else time.time(), timezone.utc)
    return dt.strftime("%Y-%m-%d %H:%M:%SZ")


def ms_urlencode_value(value):
    """URL-encode like .NET's HttpUtility.UrlEncode, which Microsoft uses for
    redirect parameters: `+` for space, lower-case hex escapes (`%3a`), and
    `!*()` left alone. Clients must decode either case."""
    encoded = quote_plus(value, safe="!*()").replace("~", "%7E")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)


def ms_urlencode(pairs):
    return "&".join(k + "=" + ms_urlencode_value(v) for k, v in pairs)


def junk(n):
    """A random opaque string of n characters in the JWT-safe alphabet."""
    return secrets.token_urlsafe(n)[:n]


def first(params, name, default=None):
    values = params.get(name)
    return values[0] if values else default


def flatten(multi):
    """{k: [v]} -> {k: v}, keeping lists only for repeated parameters."""
    return {k: (v[0] if len(v) == 1 else list(v)) for k, v in multi.items()}


def redact(params):
    out = {}
    for k, v in params.items():
        if k in SECRET_FIELDS:
            v = [hash12(x) for x in v] if isinstance(v, list) else hash12(v)
        out[k] = v
    return out


def claims_request(text):
    """A claims request parameter (OIDC 5.5, Microsoft's claims=) as its JSON object, or None."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def capabilities(claims):
    """The client capabilities a claims request declares: access_token.xms_cc.values."""
    at = (claims or {}).get("access_token")
    cc = at.get("xms_cc") if isinstance(at, dict) else None
    values = cc.get("values") if isinstance(cc, dict) else None
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def answers_challenge(claims, pending):
    """Whether a claims request asks for what a CAE challenge demanded: access_token.nbf."""
    at = (claims or {}).get("access_token")
    nbf = at.get("nbf") if isinstance(at, dict) else None
    return isinstance(nbf, dict) and nbf.get("value") == pending["nbf"]


def cae_www_authenticate(pending):
    """Graph's claims challenge after a revocation (CAE), as Microsoft documents it."""
    claims = json.dumps({"access_token": {"nbf": {"essential": True, "value": pending["nbf"]}}},
                        separators=(",", ":"))
    return ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
            'oauth2/authorize", error="insufficient_claims", claims="%s"'
            % base64.b64encode(claims.encode()).decode())


def split_name(display):
    parts = display.split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else (display, None)


# --------------------------------------------------------------------------
# Signing keys and JWTs
# --------------------------------------------------------------------------

class SigningKey:
    """An RSA key with the self-signed certificate Microsoft publishes in x5c.
    As at Microsoft, the kid equals the certificate's x5t thumbprint."""

    def __init__(self, label):
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fakems " + label)])
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(self.private.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=730))
                .sign(self.private, hashes.SHA256()))
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.x5t = b64url(hashlib.sha1(self.cert_der).digest())
        self.kid = self.x5t

    def sign(self, data):
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def jwk(self, issuer):
        numbers = self.private.public_key().public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.x5t,
                "n": b64url(n), "e": b64url(e),
                "x5c": [base64.b64encode(self.cert_der).decode("ascii")],
                "cloud_instance_name": "microsoftonline.com", "issuer": issuer}


def make_jwt(header, claims, alg, key=None, secret=None):
    """Compact JWS. alg RS256 needs key, HS256 needs secret, none needs nothing."""
    signing_input = (b64url_json(header) + "." + b64url_json(claims)).encode("ascii")
    if alg == "RS256":
        signature = key.sign(signing_input)
    elif alg == "HS256":
        signature = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    elif alg == "none":
        signature = b""
    else:
        raise ValueError("unsupported alg " + alg)
    return signing_input.decode("ascii") + "." + b64url(signature)


# --------------------------------------------------------------------------
# Directory: users, clients, tenants
# --------------------------------------------------------------------------

def deterministic_guid(label):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:fakems:" + label))


def builtin_users():
    erin_groups = [deterministic_guid("erin/group/%d" % i) for i in range(250)]
    return [
        {"name": "alice", "tid": CONTOSO_TID,
         "oid": "be20621b-842c-419d-a42f-f98f10de9f92",
         "displayName": "Alice Example", "mail": "alice@contoso.example",
         "upn": "alice@contoso.example", "jobTitle": "Engineer",
         "groups": ["0ff2f55e-dd4a-40fe-b20c-f5a5c0de67e7",
                    "aae23af8-23c8-490a-8279-b61799c5a5b8"]},
        # Personal Microsoft account: the oid is a GUID built from the account's
        # PUID, while Graph calls the user by a 16-hex-digit id.
        {"name": "bob", "tid": CONSUMERS_TID,
         "oid": "00000000-0000-0000-66f3-3332eca7ea81", "graph_id": "7c7e6eb46df66116",
         "displayName": "Bob Personal", "mail": "bob@outlook.example",
         "upn": "bob@outlook.example"},
        {"name": "carol", "tid": FABRIKAM_TID,
         "oid": "65791f3c-0aad-42f7-b913-49e349dae678",
         "displayName": "Carol NoMail", "mail": None, "upn": "carol@fabrikam.example"},
        {"name": "dave", "tid": CONTOSO_TID,
         "oid": "270a345f-cfb8-4444-9aa5-7e580f43b516",
         "displayName": "Dave Guest", "mail": "dave@gmail.example",
         "upn": "dave_gmail.example#EXT#@contoso.example", "idp": "google.com"},
        {"name": "erin", "tid": CONTOSO_TID,
         "oid": "486bb886-4180-4592-8f0e-82bddf4b6661",
         "displayName": "Erin Manygroups", "mail": "erin@contoso.example",
         "upn": "erin@contoso.example", "groups": erin_groups},
        {"name": "frank", "tid": CONTOSO_TID,
         "oid": "89cf72e9-7bcd-419a-a2a3-7e22b97f043a",
         "displayName": "Frank NoId", "mail": "frank@contoso.example",
         "upn": "frank@contoso.example", "graph_no_id": True},
        {"name": "eve", "tid": NORTHWIND_TID,
         "oid": "3f6c1d2a-8b7e-4c59-a0d1-6e2f9b8c7a41",
         "displayName": "Alice Example", "mail": "alice@contoso.example",
         "upn": "eve@northwind.example"},
    ]


def make_user(spec, existing=None):
    """Build a user from a config/control-API spec, on top of `existing`."""
    user = dict(existing or {})
    if existing and spec.get("tid", existing["tid"]) != existing["tid"] and "graph_id" not in spec:
        user.pop("graph_id", None)   # a personal account's Graph id does not carry over
    user.update({k: v for k, v in spec.items() if k != "group_count"})
    name = user.get("name")
    if not name or not isinstance(name, str):
        raise ValueError("a user needs a string 'name'")
    if "group_count" in spec:
        user["groups"] = [deterministic_guid("%s/group/%d" % (name, i))
                          for i in range(int(spec["group_count"]))]
    user.setdefault("tid", CONTOSO_TID)
    user.setdefault("oid", deterministic_guid("user/" + name))
    user.setdefault("displayName", name.title())
    user.setdefault("upn", name + "@contoso.example")
    user.setdefault("mail", user["upn"])
    user.setdefault("groups", [])
    user["personal"] = user["tid"].lower() == CONSUMERS_TID
    if not user.get("graph_id"):
        user["graph_id"] = (hashlib.sha256(user["oid"].encode()).hexdigest()[:16]
                            if user["personal"] else user["oid"])
    if not GUID_RE.match(user["tid"]) or not GUID_RE.match(user["oid"]):
        raise ValueError("user %s: tid and oid must be GUIDs" % name)
    return user


def registered_certificate(cert):
    """A certificate credential of an app registration, from its PEM (or an already
    registered one): what Microsoft shows of it (both thumbprints) and its public key."""
    if isinstance(cert, dict):
        cert = cert["pem"]
    loaded = x509.load_pem_x509_certificate(cert.encode("ascii"))
    der = loaded.public_bytes(serialization.Encoding.DER)
    return {"pem": cert, "x5t": b64url(hashlib.sha1(der).digest()),
            "x5t#S256": b64url(hashlib.sha256(der).digest()),
            "thumbprint": hashlib.sha1(der).hexdigest().upper()}


def make_client(client_id, spec, existing=None):
    client = dict(existing or {})
    client.update(spec)
    client["client_id"] = client_id
    client["certificates"] = [registered_certificate(c) for c in client.get("certificates") or []]
    federated = []
    for record in client.get("federated") or []:
        if not isinstance(record, dict) or not record.get("issuer") or not record.get("subject"):
            raise ValueError("a federated credential needs an 'issuer' and a 'subject'")
        federated.append({"issuer": record["issuer"], "subject": record["subject"],
                          "audiences": list(record.get("audiences") or [FEDERATED_AUDIENCE])})
    client["federated"] = federated
    if not client.get("secret") and not client["certificates"] and not federated:
        raise ValueError("client %s needs a 'secret', 'certificates' or 'federated'" % client_id)
    client.setdefault("secret", None)
    client.setdefault("redirect_uris", None)   # None: any redirect_uri
    client.setdefault("tenant", CONTOSO_TID)   # home tenant of the registration
    client.setdefault("single_tenant", False)
    client.setdefault("groups", False)         # groupMembershipClaims
    # The Graph permissions consented for the app: granted when only OIDC
    # scopes are asked for (Graph is then the default resource) or for .default.
    client.setdefault("api_permissions", ["User.Read"])
    # Optional claims of the registration's token configuration (e.g. "xms_edov", "sid").
    client.setdefault("optional_claims", [])
    # Authentication -> Front-channel logout URL: framed by the logout page with ?sid=.
    client.setdefault("frontchannel_logout_url", None)
    client.setdefault("name", "fakems app " + client_id[:8])
    return client


# --------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------

class ScopeError(Exception):
    pass


class Grant:
    """The parsed scope of an authorization request."""

    def __init__(self, oidc, graph, other):
        self.oidc = oidc      # lower-case OIDC scopes, request order
        self.graph = graph    # Graph permissions, Microsoft casing
        self.other = other    # scopes of another resource, as requested

    @classmethod
    def parse(cls, scope, client):
        oidc, graph, other = [], [], []

        def add_graph(perm):
            low = perm.lower()
            if low == ".default":
                names = client["api_permissions"]
            elif low in GRAPH_PERMISSIONS:
                names = [GRAPH_PERMISSIONS[low]]
            else:
                match = [p for p in client["api_permissions"] if p.lower() == low]
                if not match:
                    raise ScopeError(perm)
                names = match
            for p in names:
                if p not in graph:
                    graph.append(p)

        for s in scope.split():
            low = s.lower()
            if low in OIDC_SCOPES:
                if low not in oidc:
                    oidc.append(low)
            elif low.startswith(GRAPH_RESOURCE):
                add_graph(s[len(GRAPH_RESOURCE):])
            elif "/" in s or ":" in s:
                other.append(s)
            else:
                add_graph(s)   # bare permission names belong to Graph
        if not graph and not other:
            # Only OIDC scopes: Microsoft still issues a Graph access token
            # carrying the app's consented permissions.
            graph = list(client["api_permissions"])
        return cls(oidc, graph, other)

    def string(self):
        """The granted `scope` as the token endpoint returns it."""
        resource = [GRAPH_RESOURCE + p for p in self.graph] if self.graph else self.other
        return " ".join(self.oidc + resource)

    def to_dict(self):
        return {"oidc": self.oidc, "graph": self.graph, "other": self.other}


# --------------------------------------------------------------------------
# HTTP responses
# --------------------------------------------------------------------------

class Response:
    def __init__(self, status, body=b"", content_type="text/html; charset=utf-8",
                 headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else body.encode("utf-8")
        self.content_type = content_type
        self.headers = list(headers or [])


# Sentinel: close the connection without answering.
RESET = object()

NO_STORE = [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache")]
# The browser's sign-in session at Microsoft (its ESTSAUTH cookie); the sid claim names it.
SSO_COOKIE = "ESTSAUTH"


def json_response(status, obj, headers=None, content_type="application/json; charset=utf-8"):
    return Response(status, json.dumps(obj), content_type, headers)


def page(title, body_html, status=200):
    doc = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>%s</title><style>%s</style></head><body><main>%s</main>"
           "</body></html>\n") % (html.escape(title), PAGE_CSS, body_html)
    return Response(status, doc, headers=NO_STORE)


PAGE_CSS = (
    "body{font-family:'Segoe UI',sans-serif;background:#f2f2f2;margin:0}"
    "main{max-width:440px;margin:48px auto;background:#fff;padding:44px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "h1{font-size:24px;font-weight:600;margin:0 0 16px}"
    ".account{display:block;width:100%;text-align:left;padding:12px;margin:6px 0;"
    "border:1px solid #ccc;background:#fff;cursor:pointer;font-size:15px}"
    ".account:hover{background:#e6e6e6}.upn{display:block;color:#555;font-size:13px}"
    "#cancel{margin-top:16px;padding:8px 24px}.err{color:#a80000}"
    ".details{font-size:12px;color:#555;word-break:break-all}")


def transport_fault(knob, build):
    """Answer for the transport-level faults shared by token/graph/jwks.
    `build()` produces the normal response (only called when needed)."""
    if knob == "500":
        return Response(500, "<html><head><title>Server Error</title></head><body>"
                        "<h1>500 - Internal server error.</h1></body></html>")
    if knob == "garbage":
        return Response(200, b"\x89PNG\r\n\x1a\n\x00\xff{\"not\": json" + os.urandom(256),
                        "application/json; charset=utf-8")
    if knob == "empty":
        return Response(200, b"", "application/json; charset=utf-8")
    if knob == "reset":
        return RESET
    if knob == "html":
        return Response(200, "<!DOCTYPE html><html><head><title>Sign in to your account"
                        "</title></head><body><div id=\"error\">Sorry, but we're having "
                        "trouble signing you in.</div></body></html>")
    if knob == "truncated":
        resp = build()
        resp.body = resp.body[:len(resp.body) // 2]
        return resp
    if knob == "big":
        resp = build()
        obj = json.loads(resp.body) if resp.body.startswith(b"{") else {}
        obj["x_padding"] = "A" * BIG_BODY
        resp.body = json.dumps(obj).encode("utf-8")
        return resp
    return None


# --------------------------------------------------------------------------
# The identity platform's state
# --------------------------------------------------------------------------

class FakeMS:
    def __init__(self, base_url, issuer_base, config):
        self.base_url = base_url.rstrip("/")
        self.issuer_base = issuer_base.rstrip("/")
        self.lock = threading.RLock()
        self.keys = {"current": SigningKey("current"), "next": SigningKey("next"),
                     "rogue": SigningKey("rogue")}
        # The issuer of federated tokens (a Kubernetes cluster's service-account issuer,
        # say): what POST /_fakems/federated_token signs with. Made on first use: an RSA key
        # costs startup time on a loaded machine.
        self._workload_key = None
        self.workload_issuer = self.base_url + "/workload-issuer"
        self.spent_jtis = {}
        # Keys added by a rollover (unknown_kid fault, /_fakems/sign key "new").
        self.rolled_keys = []
        self.users = {}
        for spec in builtin_users():
            self.users[spec["name"]] = make_user(spec)
        self.clients = {DEFAULT_CLIENT_ID: make_client(
            DEFAULT_CLIENT_ID, {"secret": DEFAULT_CLIENT_SECRET, "groups": True,
                                "optional_claims": ["xms_edov"],
                                "name": "fakems default app"})}
        self.extra_domains = {}
        self.base_settings = dict(DEFAULT_SETTINGS)
        self.apply_config(config or {})
        self.codes = {}
        self.access_tokens = {}
        self.refresh_tokens = {}
        self.connection_seq = 0
        # Browser sign-in sessions (Microsoft's ESTSAUTH cookie): sid -> the user and the
        # clients signed in through it. The id_token's optional claim sid names one.
        self.sso_sessions = {}
        self.reset()

    # -- configuration -----------------------------------------------------

    def apply_config(self, config):
        for client_id, spec in (config.get("clients") or {}).items():
            self.clients[client_id] = make_client(client_id, spec, self.clients.get(client_id))
        for spec in config.get("users") or []:
            name = spec.get("name")
            self.users[name] = make_user(spec, self.users.get(name))
        for domain, tid in (config.get("domains") or {}).items():
            self.extra_domains[domain.lower()] = tid.lower()
        for k, v in (config.get("settings") or {}).items():
            if k not in DEFAULT_SETTINGS:
                raise ValueError("unknown setting " + k)
            self.base_settings[k] = float(v)

    def reset(self):
        with self.lock:
            self.faults = {}
            self.requests = []
            self.request_seq = 0
            self.assertions = []
            self.stats = {"jwks_fetches": 0, "token_requests": 0, "graph_me": 0,
                          "graph_groups": 0, "graph_organization": 0, "authorize": 0,
                          "metadata_fetches": 0,
                          "logouts": 0, "userinfo": 0, "refresh_grants": 0}
            self.settings = dict(self.base_settings)
            # CAE: user name -> the challenge Graph answers that user's cp1 tokens with.
            self.cae = {}

    def workload_key(self):
        with self.lock:
            if self._workload_key is None:
                self._workload_key = SigningKey("workload issuer")
            return self._workload_key

    def count(self, stat):
        with self.lock:
            self.stats[stat] += 1

    def next_connection_id(self):
        with self.lock:
            self.connection_seq += 1
            return self.connection_seq

    # -- faults ------------------------------------------------------------

    def set_faults(self, body):
        """Arm (or, with null, clear) one knob per category; validated first so
        a bad request changes nothing."""
        count = body.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("'count' must be a positive integer")
        unknown = set(body) - set(FAULT_KNOBS) - {"count"}
        if unknown:
            raise ValueError("unknown fault categories: " + ", ".join(sorted(unknown)))
        changes = {}
        for category in FAULT_KNOBS:
            if category not in body:
                continue
            knob = body[category]
            if knob in (None, ""):
                changes[category] = None
                continue
            knob = str(knob)   # allow {"token": 500}
            if knob not in FAULT_KNOBS[category]:
                raise ValueError("unknown %s knob %r; valid: %s" % (
                    category, knob, ", ".join(FAULT_KNOBS[category])))
            changes[category] = {"knob": knob, "remaining": count}
        with self.lock:
            for category, fault in changes.items():
                if fault is None:
                    self.faults.pop(category, None)
                else:
                    self.faults[category] = fault
            return {k: dict(v) for k, v in self.faults.items()}

    def take_fault(self, category):
        """The knob to apply to this request of `category`, consuming one use."""
        with self.lock:
            fault = self.faults.get(category)
            if not fault:
                return None
            if fault["remaining"] is not None:
                fault["remaining"] -= 1
                if fault["remaining"] <= 0:
                    del self.faults[category]
            return fault["knob"]

    def hang(self):
        time.sleep(self.settings["hang_seconds"])

    # -- tenants -----------------------------------------------------------

    def known_tenants(self):
        tids = {u["tid"].lower() for u in self.users.values()}
        tids |= {c["tenant"].lower() for c in self.clients.values()}
        tids |= set(self.extra_domains.values())
        return tids

    def tenant_domains(self):
        domains = dict(self.extra_domains)
        for u in self.users.values():
            if not u["personal"] and "@" in u["upn"]:
                domains.setdefault(u["upn"].rsplit("@", 1)[1].lower(), u["tid"].lower())
        return domains

    def verified_domains(self, tid):
        """The verified domains of a work/school tenant, default first."""
        return sorted(d for d, t in self.tenant_domains().items() if t == tid.lower())

    def mail_domain_verified(self, user):
        """What Microsoft's xms_edov says of the user's mail: its domain is owned by
        the user's own tenant (for personal accounts: a domain Microsoft runs)."""
        mail = user.get("mail")
        if not mail or "@" not in mail:
            return False
        domain = mail.rsplit("@", 1)[1].lower()
        if user["personal"]:
            return domain in MS_CONSUMER_MAIL_DOMAINS
        return domain in self.verified_domains(user["tid"])

    def resolve_tenant(self, segment):
        """(kind, tid) for a tenant segment; kind is common, organizations,
        consumers or tenant. None when Microsoft would say 'tenant not found'."""
        seg = segment.lower()
        if seg in ("common", "organizations", "consumers"):
            return seg, None
        if seg == CONSUMERS_TID:
            return "consumers", None
        if GUID_RE.match(seg):
            return ("tenant", seg) if seg in self.known_tenants() else None
        tid = self.tenant_domains().get(seg)
        return ("tenant", tid) if tid else None

    def issuer(self, tid):
        return "%s/%s/v2.0" % (self.issuer_base, tid)

    def find_user(self, hint):
        if not hint:
            return None
        low = hint.lower()
        with self.lock:
            if low in self.users:
                return self.users[low]
            for u in self.users.values():
                if low in (u["name"].lower(), (u["upn"] or "").lower(),
                           (u.get("mail") or "").lower()):
                    return u
        return None

    # -- tokens ------------------------------------------------------------

    def pairwise_sub(self, client_id, user):
        digest = hashlib.sha256(("%s|%s" % (client_id, user["oid"])).encode()).digest()
        return b64url(digest)[:43]

    def new_rollover_key(self):
        key = SigningKey("rollover")
        with self.lock:
            self.rolled_keys.append(key)
            del self.rolled_keys[:-5]
        return key

    def published_keys(self):
        with self.lock:
            return [self.keys["current"], self.keys["next"]] + list(self.rolled_keys)

    def cae_pending(self, user_name):
        with self.lock:
            pending = self.cae.get(user_name)
            return dict(pending) if pending else None

    def issue_access_token(self, user, client_id, grant, expired=False, xms_cc=()):
        now = int(time.time())
        lifetime = int(self.settings["access_token_lifetime"])
        exp = now - 3600 if expired else now + lifetime
        # With only OIDC scopes the token is still Graph's (for userinfo).
        audience = "other" if grant.other and not grant.graph else "graph"
        if user["personal"]:
            # Personal-account access tokens are opaque tickets, not JWTs.
            token = "EwB" + junk(1100)
        else:
            token = self._graph_jwt(user, client_id, grant, now, exp, xms_cc)
        record = {"user": user["name"], "client_id": client_id,
                  "scopes": list(grant.graph) + list(grant.oidc),
                  "audience": audience, "exp": exp, "xms_cc": list(xms_cc)}
        with self.lock:
            if len(self.access_tokens) > 5000:
                self.access_tokens = {k: v for k, v in self.access_tokens.items()
                                      if v["exp"] > now}
            self.access_tokens[token] = record
        return token, lifetime

    def _graph_jwt(self, user, client_id, grant, now, exp, xms_cc=()):
        """A Graph access token as Microsoft shapes it: a JWT whose header carries
        a `nonce`; the signature covers the nonce's hash, not the nonce, so no
        one but Graph can verify it (Graph here recognises its own tokens)."""
        key = self.keys["current"]
        nonce = junk(43)
        given, surname = split_name(user["displayName"])
        aud = (grant.other[0].rsplit("/", 1)[0] if grant.other and not grant.graph
               else "https://graph.microsoft.com")
        claims = {
            "aud": aud, "iss": "https://sts.windows.net/%s/" % user["tid"],
            "iat": now, "nbf": now, "exp": exp, "acct": 0, "acr": "1", "aio": junk(120),
            "amr": ["pwd"], "app_displayname": self.clients.get(client_id, {}).get("name", ""),
            "appid": client_id, "appidacr": "1", "family_name": surname, "given_name": given,
            "idtyp": "user", "ipaddr": "127.0.0.1", "name": user["displayName"],
            "oid": user["oid"], "platf": "14", "puid": secrets.token_hex(8).upper(),
            "rh": "0." + junk(60), "scp": " ".join(grant.graph + grant.oidc),
            "sub": b64url(hashlib.sha256(("graph|" + user["oid"]).encode()).digest())[:43],
            "tid": user["tid"], "unique_name": user["upn"], "upn": user["upn"],
            "uti": junk(22), "ver": "1.0", "xms_st": {"sub": junk(43)}, "xms_tcdt": 1600000000}
        if xms_cc:
            claims["xms_cc"] = list(xms_cc)
        signed_header = {"typ": "JWT", "nonce": b64url(hashlib.sha256(nonce.encode()).digest()),
                         "alg": "RS256", "x5t": key.x5t, "kid": key.kid}
        signed = make_jwt(signed_header, claims, "RS256", key=key)
        shown_header = dict(signed_header, nonce=nonce)
        return b64url_json(shown_header) + signed[signed.index("."):]

    def issue_refresh_token(self, user, client_id, grant, segment, sid=None):
        token = "1.A" + junk(700)
        with self.lock:
            self.refresh_tokens[token] = {
                "user": user["name"], "client_id": client_id, "grant": grant,
                "segment": segment, "sid": sid, "revoked": False,
                "exp": time.time() + float(self.settings["refresh_token_lifetime"])}
        return token

    def revoke_refresh_tokens(self, user_name):
        """Graph's revokeSignInSessions (or an admin's revocation): every refresh token the
        user holds stops working (AADSTS50173). Returns how many were live."""
        n = 0
        with self.lock:
            for record in self.refresh_tokens.values():
                if record["user"] == user_name and not record["revoked"]:
                    record["revoked"] = True
                    n += 1
        return n

    def sso_session(self, cookie_sid, user, client_id):
        """The browser's sign-in session for user: the one its cookie names when that is
        user's, else a new one. Returns its sid."""
        with self.lock:
            known = self.sso_sessions.get(cookie_sid or "")
            if known is None or known["user"] != user["name"]:
                cookie_sid = str(uuid.uuid4())
                known = self.sso_sessions[cookie_sid] = {"user": user["name"], "clients": []}
            if client_id not in known["clients"]:
                known["clients"].append(client_id)
            return cookie_sid

    def build_id_token(self, user, client, grant, nonce, knob, sid=None):
        now = int(time.time())
        if knob == "other_user":
            # Well signed and for this app and tenant, but of another user of the tenant.
            user = next(u for u in self.users.values() if u["tid"] == user["tid"]
                        and u["oid"] != user["oid"])
        tid = user["tid"]
        iss_tid = tid
        if knob in ("wrong_tid",):
            tid = iss_tid = FOREIGN_TID
        elif knob == "iss_tid_mismatch":
            iss_tid = FOREIGN_TID
        iat = now
        if knob == "expired":
            iat = now - 3 * 3600
        elif knob == "future":
            iat = now + 2 * 3600
        exp = iat + int(self.settings["id_token_lifetime"])
        if knob == "expired":
            exp = now - 2 * 3600
        iss = self.issuer(iss_tid)
        if knob == "wrong_iss":
            iss = "https://sts.windows.net/%s/" % iss_tid   # the v1.0 issuer form
        claims = {"aud": str(uuid.uuid4()) if knob == "wrong_aud" else client["client_id"],
                  "iss": iss, "iat": iat, "nbf": iat, "exp": exp,
                  "aio": junk(40) + "*" + junk(40) + "!" + junk(20)}
        profile = "profile" in grant.oidc
        if "email" in grant.oidc and user.get("mail"):
            claims["email"] = user["mail"]
        if "xms_edov" in client.get("optional_claims", ()):
            claims["xms_edov"] = self.mail_domain_verified(user)
        if sid and "sid" in client.get("optional_claims", ()):
            claims["sid"] = sid
        if client.get("groups") and not user["personal"]:
            if knob == "groups_overage" or len(user["groups"]) > GROUPS_CLAIM_LIMIT:
                claims["_claim_names"] = {"groups": "src1"}
                claims["_claim_sources"] = {"src1": {
                    "endpoint": "%s/v1.0/users/%s/getMemberObjects" % (self.base_url, user["oid"])}}
            elif user["groups"]:
                claims["groups"] = list(user["groups"])
        if user.get("idp") and profile:
            claims["idp"] = user["idp"]
        if profile:
            claims["name"] = user["displayName"]
        if nonce and knob != "no_nonce":
            claims["nonce"] = secrets.token_urlsafe(16) if knob == "wrong_nonce" else nonce
        elif knob == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        if profile:
            claims["oid"] = user["oid"]
            claims["preferred_username"] = user["upn"]
        claims.update({"rh": "0." + junk(70), "sub": self.pairwise_sub(client["client_id"], user),
                       "tid": tid, "uti": junk(22), "ver": "2.0"})

        key = self.keys["current"]
        if knob == "alg_none":
            return make_jwt({"typ": "JWT", "alg": "none", "kid": key.kid}, claims, "none")
        if knob == "hs256":
            return make_jwt({"typ": "JWT", "alg": "HS256", "kid": key.kid}, claims,
                            "HS256", secret=client["secret"])
        header = {"typ": "JWT", "alg": "RS256", "kid": key.kid}
        if knob == "wrong_key":
            key = self.keys["rogue"]
        elif knob == "unknown_kid":
            key = self.new_rollover_key()
            header["kid"] = key.kid
        return make_jwt(header, claims, "RS256", key=key)

    # -- request log -------------------------------------------------------

    def record(self, entry):
        with self.lock:
            self.request_seq += 1
            entry["seq"] = self.request_seq
            self.requests.append(entry)
            del self.requests[:-REQUEST_LOG_LIMIT]
        return entry


# --------------------------------------------------------------------------
# The HTTP handler
# --------------------------------------------------------------------------

TENANT_ROUTE = re.compile(
    r"^/([^/]+)/(oauth2/v2\.0/authorize|oauth2/v2\.0/token|oauth2/v2\.0/logout|"
    r"discovery/v2\.0/keys|v2\.0/\.well-known/openid-configuration)/?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive: clients reuse connections
    server_version = "fakems"
    sys_version = ""
    timeout = 120                   # idle keep-alive connections end eventually

    def version_string(self):
        return self.server_version

    @property
    def ms(self):
        return self.server.fakems

    def setup(self):
        super().setup()
        self.connection_id = self.ms.next_connection_id()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    # -- plumbing ----------------------------------------------------------

    def log_request(self, code="-", size="-"):
        # The path only: queries may carry state, nonces or login hints.
        path = urlsplit(self.path).path
        sys.stderr.write('fakems: %s "%s %s" %s\n' % (
            self.client_address[0], self.command, path, code))

    def log_message(self, fmt, *args):
        sys.stderr.write("fakems: %s %s\n" % (self.client_address[0], fmt % args))

    def read_body(self):
        """The request body (Content-Length or chunked), or None if too big."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def dispatch(self):
        self.entry = None
        try:
            parts = urlsplit(self.path)
            self.req_path = parts.path
            self.query = parse_qs(parts.query, keep_blank_values=True)
            body = self.read_body()
            if body is None:
                self.close_connection = True
                self.send(json_response(413, {"error": "request body too large"}))
                return
            self.body = body
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            self.form = {}
            if ctype == "application/x-www-form-urlencoded":
                self.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if not self.req_path.startswith("/_fakems/"):
                self.entry = self.ms.record(self.log_entry())
            self.send(self.route())
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True   # the body may not have been read
            self.send(json_response(500, {"error": "fakems internal error"}))

    def log_entry(self):
        headers = {}
        for name, value in self.headers.items():
            low = name.lower()
            if low in ("authorization", "proxy-authorization"):
                scheme, _, cred = value.partition(" ")
                value = "%s %s" % (scheme, hash12(cred.strip()))
            elif low == "cookie":
                value = hash12(value)
            headers[low] = value
        auth = None
        scheme = (self.headers.get("Authorization") or "").split(" ", 1)[0].lower()
        if scheme == "basic":
            auth = "basic+post" if "client_secret" in self.form else "basic"
        elif scheme == "bearer":
            auth = "bearer"
        elif "client_secret" in self.form:
            auth = "post"
        elif "client_assertion" in self.form:
            auth = "assertion"
        return {"time": time.time(), "connection": self.connection_id,
                "method": self.command, "path": self.req_path,
                "query": redact(flatten(self.query)), "form": redact(flatten(self.form)),
                "auth": auth, "client_id": None, "headers": headers, "status": None}

    def send(self, resp):
        if resp is RESET:
            self.reset_connection()
            return
        if self.entry is not None:
            self.entry["status"] = resp.status
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for name, value in resp.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(resp.body)
            self.wfile.flush()
        except (ConnectionError, socket.timeout):
            self.close_connection = True

    def reset_connection(self):
        """Drop the connection with a TCP RST and no answer at all."""
        if self.entry is not None:
            self.entry["status"] = "reset"
        self.log_request("reset")
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.rfile.close()
        except OSError:
            pass
        self.connection.close()
        # The request loop still flushes and closes these; give it harmless ones.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()

    def cookie(self, name):
        """The value of the request's cookie name, or None."""
        for part in (self.headers.get("Cookie") or "").split(";"):
            k, eq, v = part.strip().partition("=")
            if eq and k == name:
                return v
        return None

    def params(self):
        """Authorization parameters: the query, overridden by a posted form."""
        merged = dict(self.query)
        merged.update(self.form)
        return {k: v[0] for k, v in merged.items()}

    def route(self):
        path = self.req_path
        if path.startswith("/_fakems/"):
            return self.control(path[len("/_fakems/"):])
        m = TENANT_ROUTE.match(path)
        if m:
            segment, endpoint = m.group(1), m.group(2)
            if endpoint == "oauth2/v2.0/authorize":
                return self.authorize(segment)
            if endpoint == "oauth2/v2.0/token":
                return self.token(segment)
            if endpoint == "oauth2/v2.0/logout":
                return self.logout(segment)
            if endpoint == "discovery/v2.0/keys":
                return self.jwks(segment)
            return self.metadata(segment)
        if path.startswith("/v1.0/"):
            return self.graph(path[len("/v1.0/"):])
        if path == "/oidc/userinfo":
            return self.userinfo()
        if path == "/":
            return self.index()
        return json_response(404, {"error": "not_found", "path": path})

    # -- errors as Microsoft shapes them -----------------------------------

    def aad_details(self):
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return trace, correlation, ms_timestamp()

    def aad_json_error(self, status, error, code, message):
        trace, correlation, ts = self.aad_details()
        description = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            code, message, trace, correlation, ts)
        return json_response(status, {
            "error": error, "error_description": description, "error_codes": [code],
            "timestamp": ts, "trace_id": trace, "correlation_id": correlation,
            "error_uri": "%s/error?code=%d" % (self.ms.base_url, code)}, NO_STORE)

    def aad_error_page(self, code, message, status=400):
        trace, correlation, ts = self.aad_details()
        body = ("<h1>Sign in</h1><p class=\"err\">Sorry, but we're having trouble signing "
                "you in.</p><p id=\"error-message\" data-code=\"AADSTS%d\">AADSTS%d: %s</p>"
                "<p class=\"details\">Request Id: %s<br>Correlation Id: %s<br>"
                "Timestamp: %s</p>") % (code, code, html.escape(message), trace,
                                        correlation, ts)
        return page("Sign in to your account", body, status)

    def authorization_response(self, req, pairs):
        """Send `pairs` back to the client's redirect_uri by its response_mode."""
        uri = req["redirect_uri"]
        mode = req.get("response_mode") or "query"
        if mode == "form_post":
            inputs = "".join('<input type="hidden" name="%s" value="%s">' % (
                html.escape(k), html.escape(v)) for k, v in pairs)
            body = ('<form method="post" action="%s" id="form_post">%s'
                    '<noscript><button type="submit">Continue</button></noscript></form>'
                    '<script>document.getElementById("form_post").submit()</script>') % (
                        html.escape(uri), inputs)
            return page("Working...", body)
        encoded = ms_urlencode(pairs)
        if mode == "fragment":
            location = uri.split("#", 1)[0] + "#" + encoded
        else:
            base, hash_sep, fragment = uri.partition("#")
            sep = "" if base.endswith(("?", "&")) else ("&" if "?" in base else "?")
            location = base + sep + encoded + hash_sep + fragment
        return Response(302, "<html><head><title>Object moved</title></head><body>"
                        "<h2>Object moved to <a href=\"%s\">here</a>.</h2></body></html>"
                        % html.escape(location), headers=[("Location", location)] + NO_STORE)

    def redirect_error(self, req, error, code, message):
        trace, correlation, ts = self.aad_details()
        description = "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s" % (
            code, message, trace, correlation, ts)
        pairs = [("error", error), ("error_description", description)]
        if req.get("state") is not None:
            pairs.append(("state", req["state"]))
        return self.authorization_response(req, pairs)

    # -- authorize ---------------------------------------------------------

    def authorize(self, segment):
        self.ms.count("authorize")
        if self.command not in ("GET", "POST"):
            return self.aad_error_page(900561, "The endpoint only accepts GET, POST requests.")
        req = self.params()
        checked = self.check_authorize(segment, req)
        if isinstance(checked, Response):
            return checked
        client, tenant = checked
        if self.command == "POST" and req.get("cancel"):
            return self.redirect_error(req, "access_denied", 65004,
                                       "User declined to consent to access the app.")
        user_name = req.get("user") if self.command == "POST" else None
        hint = req.get("login_hint")
        auto = req.get("fakems_auto") == "1" or req.get("prompt") == "none"
        if user_name is None and auto:
            if not hint:
                return self.redirect_error(req, "login_required", 50058,
                                           "A silent sign-in request was sent but no user "
                                           "is signed in.")
            user_name = hint
        if user_name is None:
            return self.login_page(segment, req, client)
        user = self.ms.find_user(user_name)
        if user is None:
            if req.get("prompt") == "none":
                return self.redirect_error(req, "login_required", 50058,
                                           "A silent sign-in request was sent but no user "
                                           "is signed in.")
            return self.aad_error_page(50034, "The user account {EmailHidden} does not exist "
                                       "in the directory. To sign into this application, "
                                       "the account must be added to the directory.")
        refused = self.check_user_tenant(req, tenant, client, user)
        if refused is not None:
            return refused
        return self.issue_code(segment, req, client, user)

    def check_authorize(self, segment, req):
        """Validate an authorization request; (client, tenant) or an error."""
        tenant = self.ms.resolve_tenant(segment)
        if tenant is None:
            return self.aad_error_page(90002, "Tenant '%s' not found. Check to make sure you "
                                       "have the correct tenant ID and are signing into the "
                                       "correct cloud." % segment)
        client_id = req.get("client_id")
        if not client_id:
            return self.aad_error_page(900144, "The request body must contain the following "
                                       "parameter: 'client_id'.")
        client = self.ms.clients.get(client_id)
        if client is None:
            return self.aad_error_page(700016, "Application with identifier '%s' was not "
                                       "found in the directory '%s'. This can happen if the "
                                       "application has not been installed by the "
                                       "administrator of the tenant or consented to by any "
                                       "user in the tenant." % (client_id, segment))
        registered = client["redirect_uris"]
        if not req.get("redirect_uri"):
            if not registered:
                return self.aad_error_page(900144, "The request body must contain the "
                                           "following parameter: 'redirect_uri'.")
            req["redirect_uri"] = registered[0]
        elif registered is not None and req["redirect_uri"] not in registered:
            return self.aad_error_page(50011, "The redirect URI '%s' specified in the "
                                       "request does not match the redirect URIs configured "
                                       "for the application '%s'." % (req["redirect_uri"],
                                                                      client_id))
        kind, tid = tenant
        if client["single_tenant"]:
            if kind != "tenant":
                return self.redirect_error(
                    req, "invalid_request", 50194,
                    "Application '%s'(%s) is not configured as a multi-tenant application. "
                    "Usage of the /%s endpoint is not supported for such applications "
                    "created after '10/15/2018'. Use a tenant-specific endpoint or configure "
                    "the application to be multi-tenant." % (client_id, client["name"],
                                                             segment))
            if tid != client["tenant"].lower():
                return self.aad_error_page(700016, "Application with identifier '%s' was "
                                           "not found in the directory '%s'." % (client_id,
                                                                                 segment))
        mode = req.get("response_mode")
        if mode and mode not in ("query", "fragment", "form_post"):
            req["response_mode"] = "query"
            return self.redirect_error(req, "invalid_request", 900144,
                                       "The provided value for the input parameter "
                                       "'response_mode' is not valid.")
        response_type = req.get("response_type")
        if not response_type:
            return self.redirect_error(req, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: "
                                       "'response_type'.")
        if response_type != "code":
            return self.redirect_error(req, "unsupported_response_type", 700054,
                                       "response_type '%s' is not enabled for the "
                                       "application." % response_type)
        if not req.get("scope"):
            return self.redirect_error(req, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: 'scope'.")
        try:
            Grant.parse(req["scope"], client)
        except ScopeError as e:
            return self.redirect_error(req, "invalid_scope", 70011,
                                       "The provided value for the input parameter 'scope' "
                                       "is not valid. The scope '%s' does not exist." % e)
        challenge = req.get("code_challenge")
        if challenge is not None:
            method = req.get("code_challenge_method") or "plain"
            if method not in ("S256", "plain"):
                return self.redirect_error(req, "invalid_request", 50149,
                                           "Invalid Code_Challenge_method parameter.")
            if not 43 <= len(challenge) <= 128:
                return self.redirect_error(req, "invalid_request", 501491,
                                           "Invalid size of Code_Challenge parameter.")
        return client, tenant

    def check_user_tenant(self, req, tenant, client, user):
        """Whether this tenant segment lets this user sign in, as at Microsoft."""
        kind, tid = tenant
        if kind == "consumers" and not user["personal"]:
            return self.redirect_error(
                req, "invalid_request", 50020,
                "User account '%s' from identity provider 'https://sts.windows.net/%s/' "
                "does not exist in tenant 'Microsoft Services' and cannot access the "
                "application '%s'. The account needs to be added as an external user in the "
                "tenant first." % (user["upn"], user["tid"], client["client_id"]))
        if kind == "organizations" and user["personal"]:
            return self.redirect_error(
                req, "invalid_request", 500200,
                "User account '%s' is a personal Microsoft account. Personal Microsoft "
                "accounts are not supported for this application unless explicitly invited "
                "to an organization. Try signing out and signing back in with an "
                "organizational account." % user["upn"])
        if kind == "tenant" and user["tid"].lower() != tid:
            return self.redirect_error(
                req, "access_denied", 50020,
                "User account '%s' from identity provider '%s' does not exist in tenant "
                "'%s' and cannot access the application '%s' in that tenant. The account "
                "needs to be added as an external user in the tenant first." % (
                    user["upn"], "live.com" if user["personal"] else
                    "https://sts.windows.net/%s/" % user["tid"], tid, client["client_id"]))
        return None

    def issue_code(self, segment, req, client, user):
        knob = self.ms.take_fault("authorize")
        if knob == "500":
            return Response(500, "<html><body><h1>Server Error</h1></body></html>")
        if knob == "hang":
            self.ms.hang()
        if knob in ("access_denied", "server_error", "temporarily_unavailable"):
            code, message = {
                "access_denied": (50105, "Your administrator has configured the application "
                                  "to block users unless they are specifically granted "
                                  "('assigned') access to the application."),
                "server_error": (50000, "There was an error issuing a token or an issue "
                                 "with our sign-in service."),
                "temporarily_unavailable": (90033, "A transient error has occurred. "
                                            "Please try again.")}[knob]
            return self.redirect_error(req, knob, code, message)
        code = "1.A" + junk(380)
        grant = Grant.parse(req["scope"], client)
        record = {"client_id": client["client_id"], "redirect_uri": req["redirect_uri"],
                  "grant": grant, "nonce": req.get("nonce"),
                  "code_challenge": req.get("code_challenge"),
                  "code_challenge_method": req.get("code_challenge_method") or "plain",
                  "segment": segment, "user": user["name"], "claims": req.get("claims"),
                  "sid": self.ms.sso_session(self.cookie(SSO_COOKIE), user, client["client_id"]),
                  "expires": time.time() + self.ms.settings["code_lifetime"],
                  "redeemed": False}
        with self.ms.lock:
            now = time.time()
            if len(self.ms.codes) > 10000:
                self.ms.codes = {k: v for k, v in self.ms.codes.items() if v["expires"] > now}
            self.ms.codes[code] = record
        pairs = [] if knob == "no_code" else [("code", code)]
        state = req.get("state")
        if state is not None and knob != "no_state":
            pairs.append(("state", state + "x" if knob == "wrong_state" else state))
        pairs.append(("session_state", str(uuid.uuid4())))
        resp = self.authorization_response(req, pairs)
        resp.headers.append(("Set-Cookie", "%s=%s; path=/; HttpOnly%s" % (
            SSO_COOKIE, record["sid"], "; secure; SameSite=None"
            if self.ms.base_url.startswith("https:") else "; SameSite=Lax")))
        return resp

    def login_page(self, segment, req, client):
        action = "/%s/oauth2/v2.0/authorize" % segment
        hidden = "".join('<input type="hidden" name="%s" value="%s">' % (
            html.escape(k), html.escape(v)) for k, v in req.items()
            if k not in ("user", "cancel"))
        with self.ms.lock:
            users = list(self.ms.users.values())
        buttons = "".join(
            '<button type="submit" class="account" name="user" value="%s" id="user-%s" '
            'data-user="%s"><span class="name">%s</span><span class="upn">%s</span>'
            '</button>' % ((html.escape(u["name"]),) * 3 + (
                html.escape(u["displayName"]), html.escape(u["upn"])))
            for u in users)
        body = ('<h1>Pick an account</h1><p>to continue to <b id="app-name">%s</b></p>'
                '<form method="post" action="%s" id="login-form">%s'
                '<div id="accounts">%s</div>'
                '<button type="submit" name="cancel" value="1" id="cancel">Cancel</button>'
                '</form>') % (html.escape(client["name"]), html.escape(action), hidden,
                              buttons)
        return page("Sign in to your account", body)

    # -- token -------------------------------------------------------------

    def token(self, segment):
        self.ms.count("token_requests")
        knob = self.ms.take_fault("token")
        if knob == "hang":
            self.ms.hang()
        if knob in ("500", "garbage", "empty", "reset", "html"):
            return transport_fault(knob, None)
        if knob == "invalid_grant":
            return self.aad_json_error(400, "invalid_grant", 70008, "The provided "
                                       "authorization code or refresh token has expired due "
                                       "to inactivity. Send a new interactive authorization "
                                       "request for this user and resource.")
        resp = self.token_exchange(segment, knob)
        if knob in ("truncated", "big"):
            return transport_fault(knob, lambda: resp)
        return resp

    def client_auth(self):
        """(client, error response): client_secret_post or client_secret_basic."""
        basic = None
        header = self.headers.get("Authorization") or ""
        if header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
                user, _, password = decoded.partition(":")
                basic = (unquote_plus(user), unquote_plus(password))
            except (ValueError, UnicodeDecodeError):
                return None, self.aad_json_error(401, "invalid_client", 7000216,
                                                 "Malformed HTTP Basic authorization header.")
        form_id = first(self.form, "client_id")
        form_secret = first(self.form, "client_secret")
        if "client_assertion" in self.form or "client_assertion_type" in self.form:
            if basic or form_secret is not None:
                return None, self.aad_json_error(400, "invalid_request", 9002313,
                                                 "Invalid request. Request is malformed or "
                                                 "invalid. More than one client authentication "
                                                 "method was used.")
            return self.assertion_auth(form_id)
        if basic and form_secret is not None:
            return None, self.aad_json_error(400, "invalid_request", 9002313,
                                             "Invalid request. Request is malformed or "
                                             "invalid. More than one client authentication "
                                             "method was used.")
        if basic:
            client_id, secret = basic
            if form_id is not None and form_id != client_id:
                return None, self.aad_json_error(400, "invalid_request", 9002313,
                                                 "Invalid request. The client_id in the body "
                                                 "does not match the Basic credentials.")
        else:
            client_id, secret = form_id, form_secret
        if not client_id:
            return None, self.aad_json_error(400, "invalid_request", 900144, "The request "
                                             "body must contain the following parameter: "
                                             "'client_id'.")
        if self.entry is not None:
            self.entry["client_id"] = client_id
        client = self.ms.clients.get(client_id)
        if client is None:
            return None, self.aad_json_error(400, "unauthorized_client", 700016,
                                             "Application with identifier '%s' was not "
                                             "found in the directory." % client_id)
        if not secret or not client.get("secret"):
            return None, self.aad_json_error(401, "invalid_client", 7000218, "The request "
                                             "body must contain the following parameter: "
                                             "'client_assertion' or 'client_secret'.")
        if not hmac.compare_digest(secret.encode("utf-8"), client["secret"].encode("utf-8")):
            return None, self.aad_json_error(401, "invalid_client", 7000215,
                                             "Invalid client secret provided. Ensure the "
                                             "secret being sent in the request is the client "
                                             "secret value, not the client secret ID, for a "
                                             "secret added to app '%s'." % client_id)
        return client, None

    # -- client assertions (certificate and federated credentials) ---------

    def invalid_assertion(self, record, status, error, code, message):
        record["verdict"] = "AADSTS%d" % code
        return None, self.aad_json_error(status, error, code, message)

    def assertion_auth(self, form_id):
        """(client, error response) for client_assertion, checked as Microsoft does: a
        certificate's JWT (x5t#S256 or x5t of a registered certificate, PS256/RS256 with its
        key, aud = this token endpoint, iss = sub = client_id, a valid time range, a jti used
        once), or a federated token matching a federated credential of the app."""
        record = {"time": time.time(), "client_id": form_id, "kind": None, "header": None,
                  "claims": None, "verdict": None,
                  "assertion_type": first(self.form, "client_assertion_type")}
        with self.ms.lock:
            self.ms.assertions.append(record)
            del self.ms.assertions[:-100]
        if first(self.form, "client_assertion_type") != JWT_BEARER:
            return self.invalid_assertion(record, 400, "invalid_request", 900144,
                                          "The request body must contain the following "
                                          "parameter: 'client_assertion_type' with the value "
                                          "'%s'." % JWT_BEARER)
        assertion = first(self.form, "client_assertion") or ""
        try:
            h64, c64, s64 = assertion.split(".")
            header = json.loads(b64url_decode(h64))
            claims = json.loads(b64url_decode(c64))
            signature = b64url_decode(s64)
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except (ValueError, UnicodeDecodeError):
            return self.invalid_assertion(record, 401, "invalid_client", 50027,
                                          "Invalid JWT token. Token format not valid.")
        record["header"], record["claims"] = header, claims
        client_id = form_id or claims.get("sub")
        record["client_id"] = client_id
        if self.entry is not None:
            self.entry["client_id"] = client_id
        client = self.ms.clients.get(client_id) if isinstance(client_id, str) else None
        if client is None:
            return self.invalid_assertion(record, 400, "unauthorized_client", 700016,
                                          "Application with identifier '%s' was not found "
                                          "in the directory." % client_id)
        signing_input = (h64 + "." + c64).encode("ascii")
        if "x5t#S256" not in header and "x5t" not in header and any(
                f["issuer"] == claims.get("iss") for f in client["federated"]):
            record["kind"] = "federated"
            return self.federated_auth(record, client, header, claims, signing_input, signature)
        record["kind"] = "certificate"
        return self.certificate_auth(record, client, header, claims, signing_input, signature)

    def assertion_times(self, record, claims, max_lifetime):
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or (nbf is not None and
                                                 not isinstance(nbf, (int, float))):
            return self.invalid_assertion(record, 401, "invalid_client", 50027,
                                          "Invalid JWT token. The token has no valid 'exp' "
                                          "claim.")
        start = nbf if nbf is not None else claims.get("iat", 0)
        too_long = (max_lifetime > 0 and exp - (nbf if nbf is not None else now) >
                    max_lifetime)
        if now >= exp or (nbf is not None and nbf > now) or too_long:
            fmt = "%Y-%m-%dT%H:%M:%S.0000000Z"
            return self.invalid_assertion(
                record, 401, "invalid_client", 700024,
                "Client assertion is not within its valid time range. Current time: %s, "
                "assertion valid from %s, expiry time of assertion %s.%s Review the "
                "documentation at https://learn.microsoft.com/entra/identity-platform/"
                "certificate-credentials ." % (
                    datetime.fromtimestamp(now, timezone.utc).strftime(fmt),
                    datetime.fromtimestamp(start if isinstance(start, (int, float)) else 0,
                                           timezone.utc).strftime(fmt),
                    datetime.fromtimestamp(exp, timezone.utc).strftime(fmt),
                    " The assertion is valid for more than %d seconds." % max_lifetime
                    if too_long else ""))
        return None

    def certificate_auth(self, record, client, header, claims, signing_input, signature):
        client_id = client["client_id"]
        s256, sha1 = header.get("x5t#S256"), header.get("x5t")
        if not s256 and not sha1:
            return self.invalid_assertion(record, 401, "invalid_client", 50027,
                                          "Invalid JWT token. No certificate thumbprint "
                                          "specified in token header.")
        cert = next((c for c in client["certificates"]
                     if (s256 and c["x5t#S256"] == s256) or (not s256 and c["x5t"] == sha1)),
                    None)
        shown = s256 or sha1
        if cert is None:
            return self.invalid_assertion(
                record, 401, "invalid_client", 700027,
                "Client assertion contains an invalid signature. [Reason - The key was not "
                "found., Thumbprint of key used by client: '%s', Please visit the Azure "
                "Portal, Graph Explorer or directly use MS Graph to see configured keys for "
                "app Id '%s'.]" % (shown, client_id))
        alg = header.get("alg")
        if alg not in ("PS256", "RS256"):
            return self.invalid_assertion(record, 401, "invalid_client", 50027,
                                          "Invalid JWT token. The algorithm '%s' is not "
                                          "supported." % alg)
        public = x509.load_pem_x509_certificate(cert["pem"].encode("ascii")).public_key()
        pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
               if alg == "PS256" else padding.PKCS1v15())
        try:
            public.verify(signature, signing_input, pad, hashes.SHA256())
        except Exception:   # InvalidSignature, or a key that cannot take this padding
            return self.invalid_assertion(
                record, 401, "invalid_client", 700027,
                "Client assertion contains an invalid signature. [Reason - Key was found, "
                "but use of the key to verify the signature failed., Thumbprint of key used "
                "by client: '%s', Found key 'Start=…, End=…'.]" % cert["thumbprint"])
        if claims.get("aud") != self.ms.base_url + self.req_path:
            return self.invalid_assertion(record, 401, "invalid_client", 700023,
                                          "Client assertion audience claim does not match "
                                          "Realm issuer. Review the documentation at "
                                          "https://learn.microsoft.com/entra/identity-"
                                          "platform/certificate-credentials .")
        if claims.get("iss") != claims.get("sub"):
            return self.invalid_assertion(record, 401, "invalid_client", 50048,
                                          "Subject mismatches Issuer claim in the client "
                                          "assertion.")
        if claims.get("sub") != client_id:
            return self.invalid_assertion(record, 401, "invalid_client", 700021,
                                          "Client assertion application identifier doesn't "
                                          "match 'client_id' parameter. Review the "
                                          "documentation at https://learn.microsoft.com/"
                                          "entra/identity-platform/certificate-credentials .")
        failed = self.assertion_times(record, claims, self.ms.settings["assertion_max_lifetime"])
        if failed:
            return failed
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            return self.invalid_assertion(record, 401, "invalid_client", 50027,
                                          "Invalid JWT token. The token has no 'jti' claim.")
        with self.ms.lock:
            now = time.time()
            for k in [k for k, exp in self.ms.spent_jtis.items() if exp < now]:
                del self.ms.spent_jtis[k]
            key = (client_id, jti)
            replayed = key in self.ms.spent_jtis
            self.ms.spent_jtis[key] = claims["exp"]
        if replayed:
            return self.invalid_assertion(record, 401, "invalid_client", 50013,
                                          "Assertion is invalid: its jti was presented "
                                          "before (a replayed client assertion).")
        record["verdict"] = "ok"
        return client, None

    def federated_auth(self, record, client, header, claims, signing_input, signature):
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        match = next((f for f in client["federated"] if f["issuer"] == iss and
                      f["subject"] == sub and any(a in f["audiences"] for a in auds)), None)
        if match is None:
            return self.invalid_assertion(
                record, 400, "invalid_request", 70021,
                "No matching federated identity record found for presented assertion. "
                "Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'."
                % (iss, sub, ",".join(str(a) for a in auds)))
        ok = False
        if header.get("alg") == "RS256" and iss == self.ms.workload_issuer:
            try:
                self.ms.workload_key().private.public_key().verify(
                    signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
                ok = True
            except Exception:
                ok = False
        if not ok:
            return self.invalid_assertion(record, 401, "invalid_client", 700027,
                                          "Client assertion failed signature validation.")
        # A federated token is the issuer's, valid for as long as it says (Kubernetes: an
        # hour or more) and sent again until it is rotated: no lifetime cap, no single use.
        failed = self.assertion_times(record, claims, 0)
        if failed:
            return failed
        record["verdict"] = "ok"
        return client, None

    def token_exchange(self, segment, knob):
        if self.command != "POST":
            return self.aad_json_error(400, "invalid_request", 900561, "The endpoint only "
                                       "accepts POST, OPTIONS requests. Received a %s "
                                       "request." % self.command)
        tenant = self.ms.resolve_tenant(segment)
        if tenant is None:
            return self.aad_json_error(400, "invalid_request", 90002, "Tenant '%s' not "
                                       "found. Check to make sure you have the correct "
                                       "tenant ID and are signing into the correct cloud."
                                       % segment)
        grant_type = first(self.form, "grant_type")
        if not grant_type:
            return self.aad_json_error(400, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: "
                                       "'grant_type'.")
        if grant_type not in ("authorization_code", "refresh_token"):
            return self.aad_json_error(400, "unsupported_grant_type", 70003, "The app "
                                       "requested an unsupported grant type '%s'."
                                       % grant_type)
        client, error = self.client_auth()
        if error:
            return error
        if grant_type == "refresh_token":
            return self.redeem_refresh_token(segment, tenant, client, knob)

        code = first(self.form, "code")
        if not code:
            return self.aad_json_error(400, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: 'code'.")
        with self.ms.lock:
            record = self.ms.codes.get(code)
        if record is None:
            return self.aad_json_error(400, "invalid_grant", 9002313, "Invalid request. "
                                       "Request is malformed or invalid.")
        if record["redeemed"]:
            return self.aad_json_error(400, "invalid_grant", 54005, "OAuth2 Authorization "
                                       "code was already redeemed, please retry with a new "
                                       "valid code or use an existing refresh token.")
        if record["expires"] < time.time():
            return self.aad_json_error(400, "invalid_grant", 70008, "The provided "
                                       "authorization code or refresh token has expired due "
                                       "to inactivity. Send a new interactive authorization "
                                       "request for this user and resource.")
        if record["client_id"] != client["client_id"]:
            return self.aad_json_error(400, "invalid_grant", 70000, "The request was denied "
                                       "because one or more scopes requested are "
                                       "unauthorized or expired. Provided grant is invalid "
                                       "or malformed.")
        user = self.ms.users.get(record["user"])
        if not self.same_tenant(segment, tenant, record, user):
            return self.aad_json_error(400, "invalid_grant", 70000, "Provided grant is "
                                       "invalid or malformed: the authorization code was "
                                       "issued for tenant '%s'." % record["segment"])
        redirect_uri = first(self.form, "redirect_uri")
        if not redirect_uri:
            return self.aad_json_error(400, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: "
                                       "'redirect_uri'.")
        if redirect_uri != record["redirect_uri"]:
            return self.aad_json_error(400, "invalid_grant", 500112, "The reply address "
                                       "'%s' does not match the reply address '%s' provided "
                                       "when requesting Authorization code." % (
                                           redirect_uri, record["redirect_uri"]))
        verifier = first(self.form, "code_verifier")
        challenge = record["code_challenge"]
        if challenge is None and verifier is not None:
            return self.aad_json_error(400, "invalid_grant", 50148, "The code_verifier does "
                                       "not match the code_challenge supplied in the "
                                       "authorization request for PKCE.")
        if challenge is not None:
            if record["code_challenge_method"] == "S256":
                computed = b64url(hashlib.sha256((verifier or "").encode("ascii", "replace"))
                                  .digest())
            else:
                computed = verifier or ""
            if verifier is None or not hmac.compare_digest(computed.encode(),
                                                           challenge.encode()):
                return self.aad_json_error(400, "invalid_grant", 501481, "The Code_Verifier "
                                           "does not match the code_challenge supplied in "
                                           "the authorization request.")
        with self.ms.lock:
            if record["redeemed"]:   # lost a race with a concurrent redemption
                return self.aad_json_error(400, "invalid_grant", 54005, "OAuth2 "
                                           "Authorization code was already redeemed.")
            # code_reuse: Microsoft's bug of a code that redeems more than once. A client
            # must not rely on the identity platform to make its logins single-use.
            if knob != "code_reuse":
                record["redeemed"] = True
        asked = claims_request(record.get("claims"))
        xms_cc = capabilities(asked) + capabilities(claims_request(self.params().get("claims")))
        with self.ms.lock:
            pending = self.ms.cae.get(user["name"])
            if pending and not pending["sticky"] and answers_challenge(asked, pending):
                del self.ms.cae[user["name"]]   # signed in again with the claims asked for
        return self.token_success(client, user, record["grant"], record["nonce"],
                                  record["segment"], knob, record.get("sid"),
                                  sorted(set(xms_cc)))

    def same_tenant(self, segment, tenant, record, user):
        """A code redeems at the segment it was issued for, or at the user's tenant."""
        if segment.lower() == record["segment"].lower():
            return True
        kind, tid = tenant
        return kind == "tenant" and user is not None and tid == user["tid"].lower()

    def redeem_refresh_token(self, segment, tenant, client, knob):
        token = first(self.form, "refresh_token")
        if not token:
            return self.aad_json_error(400, "invalid_request", 900144, "The request body "
                                       "must contain the following parameter: "
                                       "'refresh_token'.")
        self.ms.count("refresh_grants")
        delay = float(self.ms.settings["refresh_delay"])
        if delay > 0:
            time.sleep(delay)
        with self.ms.lock:
            record = self.ms.refresh_tokens.get(token)
        if record is None:
            return self.aad_json_error(400, "invalid_grant", 9002313, "Invalid request. "
                                       "Request is malformed or invalid.")
        if record["exp"] < time.time():
            return self.aad_json_error(400, "invalid_grant", 70008, "The provided "
                                       "authorization code or refresh token has expired due "
                                       "to inactivity. Send a new interactive authorization "
                                       "request for this user and resource.")
        if record["revoked"]:
            return self.aad_json_error(400, "invalid_grant", 50173, "The provided grant has "
                                       "expired due to it being revoked, a fresh auth token is "
                                       "needed. The user might have changed or reset their "
                                       "password. The grant was issued on '%s' and the "
                                       "TokensValidFrom date (before which tokens are not "
                                       "valid) for this user is '%s'." % (
                                           ms_timestamp(record["exp"] - float(
                                               self.ms.settings["refresh_token_lifetime"])),
                                           ms_timestamp()))
        if record["client_id"] != client["client_id"]:
            return self.aad_json_error(400, "invalid_grant", 700022, "The refresh token was "
                                       "issued to a different client.")
        user = self.ms.users.get(record["user"])
        # The client capabilities of this request (claims=), as for a code.
        xms_cc = capabilities(claims_request(self.params().get("claims")))
        return self.token_success(client, user, record["grant"], None, record["segment"],
                                  knob, record.get("sid"), sorted(set(xms_cc)))

    def token_success(self, client, user, grant, nonce, segment, knob, sid=None, xms_cc=()):
        access_token, lifetime = self.ms.issue_access_token(user, client["client_id"], grant,
                                                            xms_cc=xms_cc)
        body = {"token_type": "Bearer", "scope": grant.string(),
                "expires_in": str(lifetime) if knob == "expires_in_string" else lifetime,
                "ext_expires_in": lifetime, "access_token": access_token}
        if "offline_access" in grant.oidc:
            body["refresh_token"] = self.ms.issue_refresh_token(user, client["client_id"],
                                                                grant, segment, sid)
        if knob == "no_access_token":
            del body["access_token"]
        if "openid" in grant.oidc and knob != "no_id_token":
            # A request answered after a "hang" is read by no one (its client
            # gave up): it must not use up a fault meant for a later request.
            id_knob = None if knob == "hang" else self.ms.take_fault("id_token")
            body["id_token"] = self.ms.build_id_token(user, client, grant, nonce, id_knob, sid)
        return json_response(200, body, NO_STORE)

    # -- keys, metadata, logout --------------------------------------------

    def jwks(self, segment):
        self.ms.count("jwks_fetches")
        knob = self.ms.take_fault("jwks")
        if knob == "hang":
            self.ms.hang()
        tenant = self.ms.resolve_tenant(segment)
        if tenant is None:
            return self.aad_json_error(400, "invalid_tenant", 90002, "Tenant '%s' not found."
                                       % segment)
        kind, tid = tenant
        issuer = self.ms.issuer(tid or (CONSUMERS_TID if kind == "consumers" else "{tenantid}"))

        def build():
            keys = [] if knob == "empty_keys" else [
                k.jwk(issuer) for k in self.ms.published_keys()]
            return json_response(200, {"keys": keys},
                                 [("Cache-Control", "max-age=86400, private")])
        return transport_fault(knob, build) or build()

    def metadata(self, segment):
        self.ms.count("metadata_fetches")
        tenant = self.ms.resolve_tenant(segment)
        if tenant is None:
            return self.aad_json_error(400, "invalid_tenant", 90002, "Tenant '%s' not "
                                       "found. Check to make sure you have the correct "
                                       "tenant ID and are signing into the correct cloud."
                                       % segment)
        kind, tid = tenant
        if kind == "tenant":
            path_tenant, issuer_tid = tid, tid
        elif kind == "consumers":
            path_tenant, issuer_tid = segment, CONSUMERS_TID
        else:
            path_tenant, issuer_tid = segment, "{tenantid}"
        base = "%s/%s" % (self.ms.base_url, path_tenant)
        host = urlsplit(self.ms.base_url).netloc
        return json_response(200, {
            "token_endpoint": base + "/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token",
                                         "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.ms.issuer(issuer_tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": self.ms.base_url + "/oidc/userinfo",
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": base + "/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name",
                                 "cloud_instance_host_name", "cloud_graph_host_name",
                                 "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
                                 "nonce", "preferred_username", "name", "tid", "ver",
                                 "at_hash", "c_hash", "email"],
            "kerberos_endpoint": base + "/kerberos",
            "tenant_region_scope": None if kind != "tenant" else "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": host,
            "rbac_url": "https://pas.windows.net"})

    def logout(self, segment):
        self.ms.count("logouts")
        req = self.params()
        # The browser's sign-in session ends, and every app signed in through it hears so:
        # its front-channel logout URL framed with ?sid= (Entra sends no iss).
        sid = self.cookie(SSO_COOKIE)
        with self.ms.lock:
            ended = self.ms.sso_sessions.pop(sid or "", None)
            urls = [self.ms.clients[c]["frontchannel_logout_url"] for c in
                    (ended or {}).get("clients", ()) if c in self.ms.clients and
                    self.ms.clients[c].get("frontchannel_logout_url")]
        frames = "".join('<iframe class="frontchannel" src="%s" width="0" height="0"></iframe>' % (
            html.escape(u + ("&" if "?" in u else "?") + ms_urlencode([("sid", sid)])))
            for u in urls)
        clear = [("Set-Cookie", "%s=; path=/; Max-Age=0" % SSO_COOKIE)] if ended else []
        target = req.get("post_logout_redirect_uri")
        if frames:
            # The apps are signed out (the frames loaded) before the browser moves on.
            onward = ""
            if target:
                state = req.get("state")
                if state is not None:
                    target += ("&" if "?" in target else "?") + ms_urlencode([("state", state)])
                onward = ('<script>let n=%d;for(const f of document.querySelectorAll('
                          '"iframe.frontchannel"))f.onload=()=>{if(--n===0)location.href=%s}'
                          '</script>') % (len(urls), json.dumps(target))
            resp = page("Sign out", '<h1 id="signed-out">You signed out of your account</h1>'
                        + frames + onward)
            resp.headers += clear
            return resp
        if target:
            state = req.get("state")
            if state is not None:
                sep = "&" if "?" in target else "?"
                target = target + sep + ms_urlencode([("state", state)])
            return Response(302, "", headers=[("Location", target)] + NO_STORE + clear)
        return page("Sign out", "<h1 id=\"signed-out\">You signed out of your account</h1>"
                    "<p>It's a good idea to close all browser windows.</p>")

    def index(self):
        with self.ms.lock:
            rows = "".join("<li>%s &mdash; %s (%s)</li>" % (
                html.escape(u["name"]), html.escape(u["displayName"]), html.escape(u["upn"]))
                for u in self.ms.users.values())
        return page("fakems", "<h1>fakems</h1><p>A stand-in for the Microsoft identity "
                    "platform and Graph, for tests and the demo.</p><ul>%s</ul>" % rows)

    # -- Graph -------------------------------------------------------------

    def graph_error(self, status, code, message, headers=None):
        request_id = str(uuid.uuid4())
        return json_response(status, {"error": {
            "code": code, "message": message, "innerError": {
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": self.headers.get("client-request-id") or request_id}}},
            (headers or []) + [("request-id", request_id)])

    def graph_unauthorized(self, message):
        return self.graph_error(401, "InvalidAuthenticationToken", message, [(
            "WWW-Authenticate", 'Bearer realm="", authorization_uri="https://login.'
            'microsoftonline.com/common/oauth2/authorize", client_id="%s"' % GRAPH_APP_ID)])

    def graph_caller(self, needed):
        """(user, record) for the bearer token, or (None, error response)."""
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, self.graph_unauthorized("Access token is empty.")
        with self.ms.lock:
            record = self.ms.access_tokens.get(token)
        if record is None:
            if token.count(".") != 2 and not token.startswith("EwB"):
                return None, self.graph_unauthorized("IDX14100: JWT is not well formed, "
                                                     "there are no dots (.).")
            return None, self.graph_unauthorized("Access token validation failure. "
                                                 "Invalid signature.")
        if record["audience"] != "graph":
            return None, self.graph_unauthorized("Access token validation failure. "
                                                 "Invalid audience.")
        if record["exp"] <= time.time():
            return None, self.graph_unauthorized("Lifetime validation failed, the token is "
                                                 "expired.")
        if not needed & set(record["scopes"]):
            return None, self.graph_error(403, "Authorization_RequestDenied",
                                          "Insufficient privileges to complete the "
                                          "operation.")
        user = self.ms.users.get(record["user"])
        if user is None:
            return None, self.graph_error(404, "Request_ResourceNotFound", "Resource "
                                          "does not exist or one of its queried reference-"
                                          "property objects are not present.")
        return (user, record), None

    def graph(self, subpath):
        me = subpath in ("me", "me/")
        groups = subpath in ("me/transitiveMemberOf", "me/memberOf")
        member_objects = (subpath == "me/getMemberObjects"
                          or re.match(r"^users/[^/]+/getMemberObjects$", subpath))
        organization = subpath in ("organization", "organization/")
        if me:
            self.ms.count("graph_me")
        elif groups or member_objects:
            self.ms.count("graph_groups")
        elif organization:
            self.ms.count("graph_organization")
        knob = self.ms.take_fault("graph")
        if knob == "hang":
            self.ms.hang()
        if knob == "401":
            return self.graph_unauthorized("Access token validation failure. Invalid "
                                           "audience.")
        if knob == "403":
            return self.graph_error(403, "Authorization_RequestDenied", "Insufficient "
                                    "privileges to complete the operation.")
        if knob == "429":
            return self.graph_error(429, "TooManyRequests", "Too many requests.",
                                    [("Retry-After", "1")])
        if knob == "500":
            return self.graph_error(500, "generalException", "General exception while "
                                    "processing.")
        if knob in ("garbage", "empty"):
            return transport_fault(knob, None)
        if me and self.command == "GET":
            return self.graph_me(knob)
        if organization and self.command == "GET":
            return self.graph_organization(knob)
        if groups and self.command == "GET":
            return self.graph_member_of(subpath)
        if member_objects and self.command == "POST":
            return self.graph_member_objects(subpath)
        if me or groups or member_objects or organization:
            return self.graph_error(405, "Request_BadRequest", "Specified HTTP method is "
                                    "not allowed for the request target.")
        return self.graph_error(400, "BadRequest", "Resource not found for the segment "
                                "'%s'." % subpath.split("/")[0])

    def graph_ok(self, obj):
        request_id = str(uuid.uuid4())
        return json_response(200, obj, [("request-id", request_id),
                                        ("client-request-id", self.headers.get(
                                            "client-request-id") or request_id)],
                             content_type="application/json;odata.metadata=minimal;"
                             "odata.streaming=true;IEEE754Compatible=false;charset=utf-8")

    def graph_me(self, knob):
        caller, error = self.graph_caller(PROFILE_PERMISSIONS)
        if error:
            return error
        user, record = caller
        pending = self.ms.cae_pending(user["name"])
        if pending and "cp1" in record.get("xms_cc", ()):
            # A CAE-capable client is challenged at once; another keeps its token to expiry.
            return self.graph_error(401, "InvalidAuthenticationToken", "Continuous access "
                                    "evaluation resulted in challenge with result: "
                                    "InteractionRequired and code: "
                                    "TokenIssuedBeforeRevocationTimestamp",
                                    [("WWW-Authenticate", cae_www_authenticate(pending))])
        given, surname = split_name(user["displayName"])
        profile = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
            "businessPhones": [], "displayName": user["displayName"],
            "givenName": user.get("givenName", given), "jobTitle": user.get("jobTitle"),
            "mail": user.get("mail"), "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": None if not user["personal"] else "en-US",
            "surname": user.get("surname", surname), "userPrincipalName": user["upn"],
            "id": user["graph_id"]}
        if user.get("graph_no_id") or knob == "no_id":
            del profile["id"]
        select = first(self.query, "$select")
        if select:
            wanted = [s.strip() for s in select.split(",") if s.strip()]
            profile = {k: v for k, v in profile.items() if k in wanted}
            profile["@odata.context"] = ("https://graph.microsoft.com/v1.0/$metadata#users"
                                         "(%s)/$entity" % ",".join(wanted))
        return self.graph_ok(profile)

    def graph_organization(self, knob=None):
        """GET /v1.0/organization: the one organization of the signed-in work/school
        user's tenant. With User.Read only id, displayName and verifiedDomains are read;
        every other property is null. Personal accounts have no organization: Microsoft
        documents the call as not supported for them and answers an error."""
        caller, error = self.graph_caller(PROFILE_PERMISSIONS)
        if error:
            return error
        user, _ = caller
        if knob == "no_organization":
            return self.graph_ok({"@odata.context": "https://graph.microsoft.com/v1.0/"
                                  "$metadata#organization", "value": []})
        if user["personal"]:
            return self.graph_error(400, "Request_BadRequest", "Currently not supported for "
                                    "personal Microsoft accounts (MSA accounts).")
        domains = self.ms.verified_domains(user["tid"])
        org = {
            "id": user["tid"], "deletedDateTime": None, "businessPhones": [],
            "city": None, "country": None, "countryLetterCode": None, "createdDateTime": None,
            "displayName": (domains[0].split(".")[0].title() if domains else "Organization"),
            "marketingNotificationEmails": [], "onPremisesLastSyncDateTime": None,
            "onPremisesSyncEnabled": None, "postalCode": None, "preferredLanguage": None,
            "privacyProfile": None, "state": None, "street": None,
            "technicalNotificationMails": [], "tenantType": None, "assignedPlans": [],
            "provisionedPlans": [],
            "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline",
                                 "isDefault": i == 0, "isInitial": False, "name": d,
                                 "type": "Managed"} for i, d in enumerate(domains)]}
        select = first(self.query, "$select")
        context = "https://graph.microsoft.com/v1.0/$metadata#organization"
        if select:
            wanted = [s.strip() for s in select.split(",") if s.strip()]
            org = {k: v for k, v in org.items() if k in wanted}
            context += "(%s)" % ",".join(wanted)
        return self.graph_ok({"@odata.context": context, "value": [org]})

    def graph_member_of(self, subpath):
        caller, error = self.graph_caller(MEMBERSHIP_PERMISSIONS)
        if error:
            return error
        user, _ = caller
        ids = [] if user["personal"] else list(user["groups"])
        try:
            top = int(first(self.query, "$top") or GRAPH_PAGE_SIZE)
            skip_token = first(self.query, "$skiptoken")
            offset = 0
            if skip_token:
                decoded = base64.urlsafe_b64decode(skip_token + "=" * (-len(skip_token) % 4))
                tag, _, number = decoded.decode("ascii").partition(":")
                if tag != "fakems-offset":
                    raise ValueError(skip_token)
                offset = int(number)
            if not 1 <= top <= 999 or offset < 0:
                raise ValueError(top)
        except (ValueError, UnicodeDecodeError):
            return self.graph_error(400, "Request_BadRequest", "Invalid paging parameters.")
        asked, served = top, int(self.ms.settings["graph_page_size"])
        if served > 0:
            top = min(top, served)
        page_ids = ids[offset:offset + top]
        select = first(self.query, "$select")
        body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
                                  + ("(%s)" % select if select else ""),
                "value": [{"@odata.type": "#microsoft.graph.group", "id": g} for g in page_ids]}
        if offset + top < len(ids):
            token = b64url(("fakems-offset:%d" % (offset + top)).encode("ascii"))
            link = "%s/v1.0/%s?" % (self.ms.base_url, subpath)
            if select:
                link += "$select=%s&" % select
            if first(self.query, "$top"):
                link += "$top=%d&" % asked
            body["@odata.nextLink"] = link + "$skiptoken=" + token
        return self.graph_ok(body)

    def graph_member_objects(self, subpath):
        caller, error = self.graph_caller(MEMBERSHIP_PERMISSIONS)
        if error:
            return error
        user, _ = caller
        if subpath.startswith("users/"):
            target = subpath.split("/")[1].lower()
            if target not in (user["oid"].lower(), user["graph_id"].lower(),
                              user["upn"].lower()):
                return self.graph_error(403, "Authorization_RequestDenied", "Insufficient "
                                        "privileges to complete the operation.")
        ids = [] if user["personal"] else list(user["groups"])
        return self.graph_ok({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
            "value": ids})

    def userinfo(self):
        self.ms.count("userinfo")
        caller, error = self.graph_caller(PROFILE_PERMISSIONS | {"openid"})
        if error:
            return error
        user, record = caller
        given, surname = split_name(user["displayName"])
        info = {"sub": self.ms.pairwise_sub(record["client_id"], user),
                "name": user["displayName"], "family_name": surname, "given_name": given,
                "picture": self.ms.base_url + "/v1.0/me/photo/$value"}
        if user.get("mail"):
            info["email"] = user["mail"]
        return json_response(200, info)

    # -- control API -------------------------------------------------------

    def control(self, name):
        ms = self.ms
        try:
            body = json.loads(self.body.decode("utf-8")) if self.body else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            return json_response(400, {"error": "bad JSON: %s" % e})
        get, post = self.command == "GET", self.command == "POST"
        try:
            if name == "health" and get:
                return json_response(200, {"ok": True, "base_url": ms.base_url})
            if name == "faults" and get:
                with ms.lock:
                    return json_response(200, {"faults": {k: dict(v) for k, v in
                                                          ms.faults.items()}})
            if name == "faults" and post:
                return json_response(200, {"faults": ms.set_faults(body)})
            if name == "reset" and post:
                ms.reset()
                return json_response(200, {"ok": True})
            if name == "requests" and get:
                with ms.lock:
                    entries = [dict(e) for e in ms.requests]
                contains = first(self.query, "path")
                if contains:
                    entries = [e for e in entries if contains in e["path"]]
                return json_response(200, {"requests": entries})
            if name == "stats" and get:
                with ms.lock:
                    return json_response(200, dict(ms.stats))
            if name == "settings" and get:
                return json_response(200, {"settings": ms.settings})
            if name == "settings" and post:
                with ms.lock:
                    for k, v in body.items():
                        if k not in DEFAULT_SETTINGS:
                            raise ValueError("unknown setting " + k)
                        ms.settings[k] = float(v)
                    return json_response(200, {"settings": dict(ms.settings)})
            if name == "clients" and post:
                client_id = body.get("client_id")
                if not client_id:
                    raise ValueError("'client_id' is required")
                spec = {k: v for k, v in body.items() if k != "client_id"}
                with ms.lock:
                    ms.clients[client_id] = make_client(client_id, spec,
                                                        ms.clients.get(client_id))
                    return json_response(200, {"client": ms.clients[client_id]})
            if name == "certificates" and post:
                client_id, pem = body.get("client_id"), body.get("certificate")
                if not client_id or not isinstance(pem, str):
                    raise ValueError("'client_id' and 'certificate' (PEM) are required")
                with ms.lock:
                    existing = ms.clients.get(client_id)
                    certs = (existing or {}).get("certificates", []) + [pem]
                    ms.clients[client_id] = make_client(client_id, {"certificates": certs},
                                                        existing)
                    return json_response(200, {"client": ms.clients[client_id]})
            if name == "assertions" and get:
                with ms.lock:
                    return json_response(200, {"assertions": [dict(a) for a in ms.assertions]})
            if name == "federated_token" and post:
                return self.control_federated_token(body)
            if name == "users" and post:
                with ms.lock:
                    user = make_user(body, ms.users.get(body.get("name")))
                    ms.users[user["name"]] = user
                    return json_response(200, {"user": user})
            if name == "config" and get:
                with ms.lock:
                    return json_response(200, {
                        "base_url": ms.base_url, "issuer_base": ms.issuer_base,
                        "clients": ms.clients, "users": ms.users,
                        "tenant_domains": ms.tenant_domains(),
                        "keys": {k: v.kid for k, v in ms.keys.items()},
                        "published_kids": [k.kid for k in ms.published_keys()]})
            if name == "refresh_tokens" and get:
                # What was issued (for tests that look for them where they must not be).
                with ms.lock:
                    return json_response(200, {"refresh_tokens": [
                        {"token": t, "user": rec["user"], "revoked": rec["revoked"],
                         "exp": rec["exp"]} for t, rec in ms.refresh_tokens.items()]})
            if name == "revoke_refresh_tokens" and post:
                user = ms.find_user(body.get("user", "alice"))
                if user is None:
                    raise ValueError("unknown user %r" % body.get("user"))
                return json_response(200, {"revoked": ms.revoke_refresh_tokens(user["name"])})
            if name == "cae" and (get or post):
                return self.control_cae(body if post else None)
            if name == "access_token" and post:
                return self.control_access_token(body)
            if name == "sign" and post:
                return self.control_sign(body)
        except (ValueError, TypeError, KeyError) as e:
            return json_response(400, {"error": str(e)})
        return json_response(404, {"error": "unknown control endpoint or method",
                                   "endpoint": name})

    def control_cae(self, body):
        """GET ?user=U: the CAE challenge pending for U. POST {"user", "challenge": true|false,
        "sticky"}: revoke U's session (Graph challenges U's cp1 tokens until U signs in again
        with the claims asked for; sticky: even then) or lift the challenge."""
        name = body.get("user") if body is not None else first(self.query, "user")
        user = self.ms.find_user(name)
        if user is None:
            raise ValueError("unknown user %r" % name)
        if body is not None:
            with self.ms.lock:
                if body.get("challenge", True):
                    self.ms.cae[user["name"]] = {"nbf": str(int(time.time())),
                                                 "sticky": bool(body.get("sticky"))}
                else:
                    self.ms.cae.pop(user["name"], None)
        pending = self.ms.cae_pending(user["name"])
        return json_response(200, {"user": user["name"], "pending": pending,
                                   "www_authenticate": cae_www_authenticate(pending)
                                   if pending else None})

    def control_access_token(self, body):
        user = self.ms.find_user(body.get("user", "alice"))
        if user is None:
            raise ValueError("unknown user %r" % body.get("user"))
        client_id = body.get("client_id", DEFAULT_CLIENT_ID)
        client = self.ms.clients.get(client_id) or make_client(client_id, {"secret": "-"})
        try:
            grant = Grant.parse(body.get("scope", "User.Read"), client)
        except ScopeError as e:
            raise ValueError("unknown scope %s" % e)
        token, lifetime = self.ms.issue_access_token(user, client_id, grant,
                                                     bool(body.get("expired")))
        return json_response(200, {"access_token": token, "expires_in": lifetime,
                                   "scope": grant.string()})

    def control_federated_token(self, body):
        """A token of the workload issuer, as a Kubernetes cluster projects into a pod."""
        subject = body.get("subject")
        if not isinstance(subject, str) or not subject:
            raise ValueError("'subject' is required")
        now = int(time.time())
        lifetime = int(body.get("lifetime", 3600))
        claims = {"iss": body.get("issuer", self.ms.workload_issuer), "sub": subject,
                  "aud": body.get("audience", [FEDERATED_AUDIENCE]), "iat": now, "nbf": now,
                  "exp": now + lifetime, "jti": str(uuid.uuid4())}
        key = self.ms.keys["rogue"] if body.get("rogue") else self.ms.workload_key()
        jwt = make_jwt({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, "RS256", key=key)
        return json_response(200, {"token": jwt, "issuer": self.ms.workload_issuer})

    def control_sign(self, body):
        claims = body.get("claims")
        if not isinstance(claims, dict):
            raise ValueError("'claims' must be an object")
        alg = body.get("alg", "RS256")
        which = body.get("key", "current")
        if which == "new":
            key = self.ms.new_rollover_key()
        elif which in self.ms.keys:
            key = self.ms.keys[which]
        else:
            raise ValueError("'key' must be current, next, rogue or new")
        header = {"typ": "JWT", "alg": alg, "kid": body.get("kid", key.kid)}
        header.update(body.get("header") or {})
        if alg == "RS256":
            jwt = make_jwt(header, claims, "RS256", key=key)
        elif alg == "HS256":
            jwt = make_jwt(header, claims, "HS256", secret=body.get("secret",
                                                                    DEFAULT_CLIENT_SECRET))
        elif alg == "none":
            jwt = make_jwt(header, claims, "none")
        else:
            raise ValueError("'alg' must be RS256, HS256 or none")
        return json_response(200, {"jwt": jwt, "kid": header["kid"]})


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, tls_context=None):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls_context = tls_context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a slow
        # or broken client cannot hold up accept().
        if self.tls_context is None:
            return super().finish_request(request, client_address)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return None
        try:
            return super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def parse_args(argv):
    p = argparse.ArgumentParser(description="A stand-in for the Microsoft identity "
                                "platform and Graph, on loopback.")
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--config", help="JSON file with clients, users, domains, settings")
    p.add_argument("--issuer-base", help="what precedes /<tid>/v2.0 in `iss` "
                   "(default: this server's base URL)")
    p.add_argument("--tls-cert", help="PEM certificate (chain) to serve https")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--port-file", help="write the port number here once listening")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None):
    args = parse_args(argv)
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = Server((args.host, args.port), tls)
    port = server.server_address[1]
    host = "[%s]" % args.host if ":" in args.host else args.host
    base_url = "%s://%s:%d" % ("https" if tls else "http", host, port)
    server.fakems = FakeMS(base_url, args.issuer_base or base_url, config)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("fakems listening on " + base_url, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
