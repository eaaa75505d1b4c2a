"""TLS on both sides of the module, against a real httpd and fakems.

Outgoing: fakems served over https with certificates made here (a test CA, a server
certificate for 127.0.0.1/localhost, one for another host name, a self-signed one).
The module trusts only `MSAuthCAFile` when it is given, always checks the host name,
fails a login closed with `cause=idp_unreachable` when TLS does not verify, and
refuses plain http to a non-loopback Microsoft host at configtest.

Incoming: Apache behind mod_ssl; cookies carry `Secure` by `MSAuthCookieSecure`
(`Auto`: when the request came over https).
"""

import datetime
import ipaddress
import os
import re
import shutil
import tempfile
import urllib.parse

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from msauth import CLIENT_ID, FakeMS, Httpd, free_port, query_of, wait_port

# The person's browser is told to trust the bad certificates; only the module must refuse them.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

ALICE_OID = "be20621b-842c-419d-a42f-f98f10de9f92"

# Certificates ---------------------------------------------------------------------


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mod_msauth tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_pem(path, cert=None, key=None):
    with open(path, "wb") as f:
        if cert is not None:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        if key is not None:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    os.chmod(path, 0o644)  # Apache's children run as www-data
    return path


def _leaf(subject_cn, sans, issuer_cert, issuer_key, key=None):
    """A server certificate; self-signed when issuer_cert is None."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name = issuer_cert.subject if issuer_cert is not None else _name(subject_cn)
    signing_key = issuer_key if issuer_key is not None else key
    b = (x509.CertificateBuilder()
         .subject_name(_name(subject_cn)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                      key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, key_cert_sign=False, crl_sign=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.SubjectAlternativeName(sans), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             signing_key.public_key()), critical=False))
    return b.sign(signing_key, hashes.SHA256()), key


def _ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


class PKI:
    """The test CA and server certificates, as PEM files in a world-readable directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="msauth-pki-")
        os.chmod(self.dir, 0o755)
        loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        ca_cert, ca_key = _ca("mod_msauth test CA")
        self.ca = _write_pem(self._p("ca.pem"), ca_cert)
        good, good_key = _leaf("127.0.0.1", loopback, ca_cert, ca_key)
        self.good_cert = _write_pem(self._p("good.pem"), good)
        self.good_key = _write_pem(self._p("good.key"), key=good_key)
        wrong, wrong_key = _leaf("wrong.example", [x509.DNSName("wrong.example")], ca_cert, ca_key)
        self.wrong_cert = _write_pem(self._p("wrong.pem"), wrong)
        self.wrong_key = _write_pem(self._p("wrong.key"), key=wrong_key)
        selfs, selfs_key = _leaf("127.0.0.1", loopback, None, None)
        self.self_cert = _write_pem(self._p("self.pem"), selfs)
        self.self_key = _write_pem(self._p("self.key"), key=selfs_key)

    def _p(self, name):
        return os.path.join(self.dir, name)

    def cleanup(self):
        if os.environ.get("MSAUTH_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pki():
    p = PKI()
    yield p
    p.cleanup()


def _start_tls_fakems(request, cert, key):
    work = tempfile.mkdtemp(prefix="msauth-fakems-tls-")
    ms = FakeMS(work).start(["--tls-cert", cert, "--tls-key", key])
    request.addfinalizer(lambda: (ms.stop(), shutil.rmtree(work, ignore_errors=True)))
    assert ms.base.startswith("https://127.0.0.1:"), ms.base
    return ms


@pytest.fixture(scope="module")
def ms_good(request, pki):
    """fakems with a certificate for 127.0.0.1 issued by the test CA."""
    ms = _start_tls_fakems(request, pki.good_cert, pki.good_key)
    ms.verify = pki.ca
    return ms


@pytest.fixture(scope="module")
def ms_self(request, pki):
    """fakems with a self-signed certificate for 127.0.0.1."""
    ms = _start_tls_fakems(request, pki.self_cert, pki.self_key)
    ms.verify = False
    return ms


@pytest.fixture(scope="module")
def ms_wrong(request, pki):
    """fakems with a test-CA certificate for wrong.example only."""
    ms = _start_tls_fakems(request, pki.wrong_cert, pki.wrong_key)
    ms.verify = False
    return ms


def ms_control(ms, what, body=None):
    """fakems's control API over its https (FakeMS.control knows no CA)."""
    url = ms.base + "/_fakems/" + what
    if body is None:
        r = requests.get(url, timeout=5, verify=ms.verify)
    else:
        r = requests.post(url, json=body, timeout=5, verify=ms.verify)
    r.raise_for_status()
    return r.json()


# httpd ----------------------------------------------------------------------------

APP = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 3
MSAuthClientID @CLIENT_ID@
MSAuthClientSecret @CLIENT_SECRET@
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /welcome
MSAuthSigninFailure /failed?cause=?
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
"""


@pytest.fixture
def start_httpd(request):
    """Starts an httpd from a snippet; stopped (and its directory removed) after the test."""
    def start(conf, fakems, name="tls", **kw):
        h = Httpd(conf, fakems, name=name, **kw).start()
        request.addfinalizer(h.cleanup)
        h.new_log()
        return h
    return start


NAV = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"}


def parse_set_cookie(header):
    """`name=value; Attr; Attr=v` -> (name, value, {attr lowercased: value or True})."""
    first, *attrs = [p.strip() for p in header.split(";")]
    name, _, value = first.partition("=")
    out = {}
    for a in attrs:
        k, eq, v = a.partition("=")
        out[k.lower()] = v if eq else True
    return name, value, out


class Browser:
    """Navigates one redirect at a time, keeping cookies by hand.

    The jar deliberately ignores `Secure`, so that the attribute under test is read from
    the Set-Cookie headers themselves (and a login with `MSAuthCookieSecure On` over
    plain http can still be completed to see the session cookie it sets).
    """

    def __init__(self, origin, fakems, verify=True):
        self.origin, self.fakems, self.verify = origin, fakems, verify
        self.jar = {}
        self.set_cookies = []  # every Set-Cookie received: (name, value, attrs)

    def get(self, url):
        if not url.startswith("http"):
            url = self.origin + url
        headers = dict(NAV)
        if self.jar:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.jar.items())
        r = requests.get(url, headers=headers, allow_redirects=False, timeout=30,
                         verify=self.verify)
        for raw in r.raw.headers.getlist("Set-Cookie"):
            name, value, attrs = parse_set_cookie(raw)
            self.set_cookies.append((name, value, attrs))
            if attrs.get("max-age") == "0" or value == "":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return r

    def start(self, path):
        """Navigates to a protected path; returns the authorize URL it was sent to."""
        r = self.get(path)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        loc = r.headers["Location"]
        assert re.match(re.escape(self.fakems.base) + r"/[a-z]+/oauth2/v2\.0/authorize\?", loc), loc
        assert query_of(loc)["redirect_uri"] == [self.origin + "/microsoft_auth"], loc
        return loc

    def pick_user(self, authorize_url, user="alice"):
        """The person on Microsoft's page (whose browser trusts fakems's certificate)."""
        verify = getattr(self.fakems, "verify", True)
        r = requests.get(authorize_url, allow_redirects=False, timeout=10, verify=verify)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        fields = {k: v[0] for k, v in query_of(authorize_url).items()}
        fields["user"] = user
        path = urllib.parse.urlsplit(authorize_url).path
        r = requests.post(self.fakems.base + path, data=fields, allow_redirects=False,
                          timeout=10, verify=verify)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        back = r.headers["Location"]
        assert back.startswith(self.origin + "/microsoft_auth?"), back
        return back

    def finish(self, authorize_url, user="alice"):
        return self.get(self.pick_user(authorize_url, user))

    def page_env(self, path):
        r = self.get(path)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return dict(line.split("=", 1) for line in r.text.splitlines() if "=" in line)

    def cookies_named(self, prefix):
        return [(n, v, a) for n, v, a in self.set_cookies if n.startswith(prefix)]


def cause_of(r, prefix="/failed?cause="):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    loc = r.headers["Location"]
    assert loc.startswith(prefix), loc
    return loc[len(prefix):]


def login_failed_lines(log):
    return [l for l in log.splitlines() if "login_failed" in l]


# Outgoing TLS: the calls to Microsoft ----------------------------------------------

def test_login_over_https_with_msauthcafile(start_httpd, ms_good, pki):
    ms_control(ms_good, "reset", {})
    h = start_httpd(APP + "MSAuthCAFile %s\n" % pki.ca, ms_good)
    b = Browser(h.origin, ms_good)
    auth = b.start("/cgi/whoami.cgi?tls=1")
    assert query_of(auth)["client_id"] == [CLIENT_ID]
    r = b.finish(auth)
    assert r.status_code == 302, (r.status_code, r.headers, r.text[:300])
    assert r.headers["Location"] == "/cgi/whoami.cgi?tls=1"
    env = b.page_env("/cgi/whoami.cgi?tls=1")
    assert env["REMOTE_USER"] == "alice@contoso.example"
    assert env["MSAUTH_ID"] == ALICE_OID
    # Every call to Microsoft went over the verified https: code, keys, Graph.
    paths = [q["path"] for q in ms_control(ms_good, "requests")["requests"]]
    assert any(p.endswith("/oauth2/v2.0/token") for p in paths), paths
    assert any(p.endswith("/discovery/v2.0/keys") for p in paths), paths
    assert "/v1.0/me" in paths, paths
    assert not login_failed_lines(h.read_file("error.log"))
    h.check_log()


def _refused_login(h, ms, detail_words):
    """A full module-initiated login whose code redemption cannot verify TLS."""
    ms_control(ms, "reset", {})
    b = Browser(h.origin, ms)
    auth = b.start("/cgi/whoami.cgi")
    r = b.finish(auth)
    assert cause_of(r) == "idp_unreachable"
    assert "msauth" not in b.jar, "a session cookie was set on a failed login"
    assert b.get("/cgi/whoami.cgi").status_code == 302  # still signed out
    # The handshake failed: fakems never saw the token request.
    assert ms_control(ms, "stats")["token_requests"] == 0
    lines = login_failed_lines(h.new_log())
    assert len(lines) == 1, lines
    line = lines[0]
    # At WARN, naming the cause and curl's TLS complaint; never an [error] line.
    assert re.search(r"\[msauth:warn\].*msauth: login_failed: cause=idp_unreachable appid=default:"
                     r" .*POST https://127\.0\.0\.1:\d+/common/oauth2/v2\.0/token: ", line), line
    assert any(w.lower() in line.lower() for w in detail_words), line
    h.expect_warn(r"msauth: login_failed: cause=idp_unreachable")
    h.check_log()


def test_system_store_does_not_trust_the_test_ca(start_httpd, ms_good):
    h = start_httpd(APP, ms_good)
    _refused_login(h, ms_good, ["unable to get local issuer certificate", "certificate"])


def test_self_signed_certificate_is_refused(start_httpd, ms_self, pki):
    h = start_httpd(APP + "MSAuthCAFile %s\n" % pki.ca, ms_self)
    _refused_login(h, ms_self, ["self-signed certificate", "self signed certificate"])


def test_wrong_host_name_is_refused_despite_a_valid_chain(start_httpd, ms_wrong, pki):
    h = start_httpd(APP + "MSAuthCAFile %s\n" % pki.ca, ms_wrong)
    _refused_login(h, ms_wrong, ["subject name", "does not match", "127.0.0.1'"])


@pytest.mark.parametrize("directive,url,ok", [
    ("MSAuthLoginHost", "http://login.example.com", False),
    ("MSAuthGraphHost", "http://graph.example.com", False),
    ("MSAuthLoginHost", "http://127.0.0.1.example.com", False),
    ("MSAuthLoginHost", "http://10.0.0.1:8080", False),
    ("MSAuthLoginHost", "https://login.example.com", True),
    ("MSAuthLoginHost", "http://127.0.0.1:1", True),
    ("MSAuthGraphHost", "http://localhost:1", True),
])
def test_plain_http_only_to_loopback(directive, url, ok):
    conf = APP.replace("MSAuthLoginHost @FAKEMS@", "MSAuthLoginHost https://login.example.com") \
              .replace("MSAuthGraphHost @FAKEMS@", "MSAuthGraphHost https://graph.example.com")
    h = Httpd(conf + "%s %s\n" % (directive, url), None, name="tlsconf")
    try:
        rc, out = h.configtest()
        if ok:
            assert rc == 0, out
            assert "Syntax OK" in out, out
        else:
            assert rc != 0, out
            assert directive in out, out
            assert "must be https (http only for a loopback host)" in out, out
        h.check_log()
    finally:
        h.cleanup()


# Incoming TLS: Apache behind mod_ssl --------------------------------------------------

def ssl_vhost(pki, port, inside=""):
    """An https virtual host: it inherits the main server's MSAuth settings, plus `inside`."""
    return """
Listen 127.0.0.1:{port}
SSLSessionCache shmcb:@DIR@/ssl_scache(512000)
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1:{port}
    SSLEngine on
    SSLCertificateFile {cert}
    SSLCertificateKeyFile {key}
{inside}
</VirtualHost>
""".format(port=port, cert=pki.good_cert, key=pki.good_key, inside=inside)


@pytest.fixture
def start_tls_httpd(start_httpd, fakems, pki):
    """httpd answering http on h.origin and https on h.tls_origin (fakems over loopback http)."""
    def start(extra="", vhost_too=False):
        port = free_port()
        h = start_httpd(APP + extra + ssl_vhost(pki, port, APP + extra if vhost_too else ""),
                        fakems, name="tls-in", modules=["ssl"])
        assert wait_port(port, h.proc), h.read_file("error.log")
        h.tls_origin = "https://127.0.0.1:%d" % port
        return h
    return start


def _login(origin, fakems, verify):
    """A full module-initiated login; returns the browser, state and session cookies."""
    b = Browser(origin, fakems, verify=verify)
    auth = b.start("/cgi/whoami.cgi")
    states = b.cookies_named("msauth_state_")
    assert len(states) == 1, b.set_cookies
    r = b.finish(auth)
    assert r.status_code == 302, (r.status_code, r.headers, r.text[:300])
    assert r.headers["Location"] == "/cgi/whoami.cgi"
    sessions = [c for c in b.set_cookies if c[0] == "msauth"]
    assert len(sessions) == 1 and sessions[0][1], b.set_cookies
    cleared = b.cookies_named("msauth_state_")[1:]
    assert [(n, a.get("max-age")) for n, _, a in cleared] == [(states[0][0], "0")], b.set_cookies
    env = b.page_env("/cgi/whoami.cgi")
    assert env["REMOTE_USER"] == "alice@contoso.example"
    return b, states + cleared, sessions[0]


@pytest.mark.parametrize("vhost_too", [False, True], ids=["inherited", "repeated-in-vhost"])
def test_cookie_secure_auto_follows_the_request_scheme(start_tls_httpd, fakems, pki, vhost_too):
    h = start_tls_httpd(vhost_too=vhost_too)
    # Over https: the callback's redirect_uri is the https origin, every cookie is Secure.
    b, states, session = _login(h.tls_origin, fakems, verify=pki.ca)
    assert session[2].get("secure") is True, session
    assert session[2].get("httponly") is True, session
    for s in states:
        assert s[2].get("secure") is True, s
    # The token exchange named the https callback.
    token = [q for q in fakems.requests() if q["path"].endswith("/token")][-1]
    assert token["form"]["redirect_uri"] == h.tls_origin + "/microsoft_auth"
    # Over plain http on the same server: no Secure.
    b, states, session = _login(h.origin, fakems, verify=True)
    assert "secure" not in session[2], session
    for s in states:
        assert "secure" not in s[2], s
    token = [q for q in fakems.requests() if q["path"].endswith("/token")][-1]
    assert token["form"]["redirect_uri"] == h.origin + "/microsoft_auth"
    h.check_log()


@pytest.mark.parametrize("setting,scheme,secure", [
    ("On", "http", True),
    ("Off", "https", False),
    ("On", "https", True),
    ("Off", "http", False),
])
def test_cookie_secure_on_and_off_override_the_scheme(start_tls_httpd, fakems, pki, setting,
                                                       scheme, secure):
    h = start_tls_httpd("MSAuthCookieSecure %s\n" % setting)
    origin, verify = (h.tls_origin, pki.ca) if scheme == "https" else (h.origin, True)
    b, states, session = _login(origin, fakems, verify=verify)
    assert (session[2].get("secure") is True) == secure, session
    for s in states:
        assert (s[2].get("secure") is True) == secure, s
    h.check_log()
