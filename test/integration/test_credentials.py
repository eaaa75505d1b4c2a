"""Credentials without a client secret, against a real httpd and fakems: a certificate
(MSAuthClientCertificate, PS256 or RS256) and a federated token in a file
(MSAuthClientAssertionFile, re-read when it is rotated). fakems checks every client
assertion as Microsoft does and shows what it received; configtest refuses what cannot
work, naming the directive."""

import hashlib
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from msauth import Httpd, b64url_decode, remember

CERT_CLIENT = "c1c1c1c1-1111-4111-8111-0000000000c1"
RS_CLIENT = "c2c2c2c2-2222-4222-8222-0000000000c2"
FED_CLIENT = "f3f3f3f3-3333-4333-8333-0000000000f3"
STRANGER_CLIENT = "e4e4e4e4-4444-4444-8444-0000000000e4"
SUBJECT = "system:serviceaccount:web:legacy-app"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def b64e(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_cert(directory, name, not_before=-1, not_after=30, key=None):
    """A self-signed certificate and its key as PEM files (days relative to now)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msauth test " + name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=not_before))
            .not_valid_after(now + timedelta(days=not_after))
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    for line in key_pem.splitlines()[1:-1]:
        remember(line)  # no line of a private key may reach a log
    cert_path = os.path.join(directory, name + ".crt")
    key_path = os.path.join(directory, name + ".key")
    with open(cert_path, "w") as f:
        f.write(cert_pem)
    with open(key_path, "w") as f:
        f.write(key_pem)
    os.chmod(key_path, 0o600)
    der = cert.public_bytes(serialization.Encoding.DER)
    return {"cert": cert_path, "key": key_path, "pem": cert_pem,
            "x5t#S256": b64e(hashlib.sha256(der).digest())}


def federated_token(fakems, subject=SUBJECT):
    token = fakems.control("federated_token", {"subject": subject})["token"]
    remember(token)
    return token


def write_token(path, token):
    """As the kubelet rotates a projected token: a new file renamed over the old one."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o644)  # Apache's children (www-data) re-read it
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def creds(fakems):
    d = tempfile.mkdtemp(prefix="msauth-creds-")
    os.chmod(d, 0o755)
    good = write_cert(d, "good")
    stranger = write_cert(d, "stranger")  # registered nowhere
    for client, cert in ((CERT_CLIENT, good), (RS_CLIENT, good), (STRANGER_CLIENT, good)):
        fakems.control("clients", {"client_id": client, "certificates": [cert["pem"]]})
    fakems.control("clients", {"client_id": FED_CLIENT, "federated": [
        {"issuer": fakems.base + "/workload-issuer", "subject": SUBJECT}]})
    token_file = os.path.join(d, "token")
    write_token(token_file, federated_token(fakems))
    yield {"dir": d, "good": good, "stranger": stranger, "token_file": token_file}
    shutil.rmtree(d, ignore_errors=True)


CONF = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 2
MSAuthSecretKey @KEY@
MSAuthSigninFailure /?cause=?
MSAuthClientID {cert_client}
MSAuthClientCertificate {good[cert]} {good[key]}
<MSAuthApp rs>
    MSAuthClientID {rs_client}
    MSAuthClientCertificate {good[cert]} {good[key]} RS256
</MSAuthApp>
<MSAuthApp fed>
    MSAuthClientID {fed_client}
    MSAuthClientAssertionFile {token_file}
</MSAuthApp>
<MSAuthApp stranger>
    MSAuthClientID {stranger_client}
    MSAuthClientCertificate {stranger[cert]} {stranger[key]}
</MSAuthApp>
"""


@pytest.fixture(scope="module")
def httpd(request, fakems, creds):
    conf = CONF.format(cert_client=CERT_CLIENT, rs_client=RS_CLIENT, fed_client=FED_CLIENT,
                       stranger_client=STRANGER_CLIENT, **creds)
    h = Httpd(conf, fakems, name="creds").start()
    request.addfinalizer(h.cleanup)
    return h


def login(httpd, fakems, appid=None):
    """A module-initiated login of alice; the callback's answer."""
    s = requests.Session()
    r = s.get(httpd.url("/microsoft_auth/login" + ("?appid=" + appid if appid else "")),
              allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    return s.get(fakems.pick_user(r.headers["Location"]), allow_redirects=False, timeout=30)


def signed_in(r, cookie):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    cookies = [c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith(cookie + "=")
               and "Max-Age=0" not in c]
    assert cookies, r.raw.headers.getlist("Set-Cookie")
    assert "cause=" not in r.headers["Location"], r.headers["Location"]


def last_assertion(fakems, client_id):
    seen = [a for a in fakems.control("assertions")["assertions"] if a["client_id"] == client_id]
    assert seen, "fakems saw no client assertion of %s" % client_id
    return seen[-1]


def token_form(fakems, client_id):
    """The form of the last token request of client_id, as fakems logged it (values of
    secrets hashed)."""
    forms = [e["form"] for e in fakems.requests()
             if e["path"].endswith("/oauth2/v2.0/token") and e["client_id"] == client_id]
    assert forms
    return forms[-1]


def test_certificate_login_sends_a_ps256_assertion(httpd, fakems, creds):
    before = int(time.time())
    signed_in(login(httpd, fakems), "msauth")
    a = last_assertion(fakems, CERT_CLIENT)
    assert a["verdict"] == "ok" and a["kind"] == "certificate"
    assert a["header"] == {"alg": "PS256", "typ": "JWT", "x5t#S256": creds["good"]["x5t#S256"]}
    c = a["claims"]
    assert set(c) == {"aud", "iss", "sub", "jti", "iat", "nbf", "exp"}, c
    assert c["aud"] == fakems.base + "/common/oauth2/v2.0/token"
    assert c["iss"] == c["sub"] == CERT_CLIENT
    assert GUID.match(c["jti"]), c["jti"]
    assert before - 2 <= c["iat"] == c["nbf"] <= time.time() + 1
    assert 0 < c["exp"] - c["iat"] <= 600
    form = token_form(fakems, CERT_CLIENT)
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert form["client_id"] == CERT_CLIENT
    # every token request carries a new assertion: fakems takes a jti once only
    signed_in(login(httpd, fakems), "msauth")
    assert last_assertion(fakems, CERT_CLIENT)["claims"]["jti"] != c["jti"]


def test_certificate_login_with_rs256(httpd, fakems, creds):
    signed_in(login(httpd, fakems, "rs"), "msauth-rs")
    a = last_assertion(fakems, RS_CLIENT)
    assert a["verdict"] == "ok"
    assert a["header"] == {"alg": "RS256", "typ": "JWT", "x5t#S256": creds["good"]["x5t#S256"]}
    assert a["claims"]["iss"] == a["claims"]["sub"] == RS_CLIENT


def test_a_certificate_microsoft_does_not_know_fails_the_login(httpd, fakems):
    httpd.expect_warn(r"login_failed: cause=token_exchange_failed appid=stranger: token endpoint "
                      r"answered 401: invalid_client \(AADSTS700027\)")
    r = login(httpd, fakems, "stranger")
    assert r.status_code == 302 and "cause=token_exchange_failed" in r.headers["Location"], \
        r.headers.get("Location")
    assert last_assertion(fakems, STRANGER_CLIENT)["verdict"] == "AADSTS700027"
    httpd.wait_log(r"AADSTS700027")


def test_assertion_file_login_and_rotation(httpd, fakems, creds):
    path = creds["token_file"]
    first = federated_token(fakems)
    write_token(path, first)
    time.sleep(1.1)  # the file is looked at once a second at most
    signed_in(login(httpd, fakems, "fed"), "msauth-fed")
    a = last_assertion(fakems, FED_CLIENT)
    assert a["verdict"] == "ok" and a["kind"] == "federated"
    first_jti = jwt_claims(first)["jti"]
    assert a["claims"]["jti"] == first_jti
    assert "client_secret" not in token_form(fakems, FED_CLIENT)
    # Kubernetes rotates the token: the next token request sends the new one
    second = federated_token(fakems)
    write_token(path, second)
    time.sleep(1.1)
    signed_in(login(httpd, fakems, "fed"), "msauth-fed")
    assert last_assertion(fakems, FED_CLIENT)["claims"]["jti"] == jwt_claims(second)["jti"]
    # and a token fakems will not take (another subject) is what fails the login
    write_token(path, federated_token(fakems, "system:serviceaccount:web:other"))
    time.sleep(1.1)
    httpd.expect_warn(r"login_failed: cause=token_exchange_failed appid=fed: .*AADSTS70021")
    r = login(httpd, fakems, "fed")
    assert "cause=token_exchange_failed" in r.headers["Location"]
    assert last_assertion(fakems, FED_CLIENT)["verdict"] == "AADSTS70021"
    httpd.wait_log(r"AADSTS70021")
    write_token(path, second)


def jwt_claims(token):
    import json
    return json.loads(b64url_decode(token.split(".")[1]))


# configtest ---------------------------------------------------------------------------------

BASE = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthClientID {client}
MSAuthSecretKey @KEY@
"""


def configtest(fakems, snippet):
    h = Httpd(BASE.format(client=CERT_CLIENT) + snippet, fakems, name="credconf")
    try:
        rc, out = h.configtest()
        with open(os.path.join(h.dir, "httpd.conf")) as f:
            lines = f.read().splitlines()
        return rc, out, lines
    finally:
        h.cleanup()


def test_good_credentials_pass_configtest(fakems, creds):
    for line in ("MSAuthClientCertificate %(cert)s %(key)s" % creds["good"],
                 "MSAuthClientCertificate %(cert)s %(key)s RS256" % creds["good"],
                 "MSAuthClientAssertionFile %s" % creds["token_file"]):
        rc, out, _ = configtest(fakems, line + "\n")
        assert rc == 0 and "Syntax OK" in out, (line, out)


def syntax_error(out, lines, directive):
    """Apache's "Syntax error on line N" pointing at the directive's own line."""
    m = re.search(r"Syntax error on line (\d+) of \S+:\n(.*)", out)
    assert m, out
    assert lines[int(m.group(1)) - 1].lstrip().startswith(directive), (lines[int(m.group(1)) - 1], out)
    return m.group(2)


def test_a_key_that_is_not_the_certificates_fails_configtest(fakems, creds):
    rc, out, lines = configtest(fakems, "MSAuthClientCertificate %s %s\n" % (
        creds["good"]["cert"], creds["stranger"]["key"]))
    assert rc != 0, out
    msg = syntax_error(out, lines, "MSAuthClientCertificate")
    assert msg.startswith("MSAuthClientCertificate ") and "is not the key of certificate" in msg, msg
    assert "PRIVATE KEY" not in out


def test_an_expired_or_not_yet_valid_certificate_fails_configtest(fakems, creds):
    old = write_cert(creds["dir"], "expired", not_before=-60, not_after=-1)
    rc, out, lines = configtest(fakems, "MSAuthClientCertificate %(cert)s %(key)s\n" % old)
    assert rc != 0, out
    assert "expired on" in syntax_error(out, lines, "MSAuthClientCertificate"), out
    soon = write_cert(creds["dir"], "future", not_before=2, not_after=30)
    rc, out, lines = configtest(fakems, "MSAuthClientCertificate %(cert)s %(key)s\n" % soon)
    assert rc != 0, out
    assert "is not valid before" in syntax_error(out, lines, "MSAuthClientCertificate"), out


@pytest.mark.parametrize("files,words", [
    (("/nonexistent/cert.pem", None), "does not exist"),
    ((None, "/nonexistent/key.pem"), "does not exist"),
    (("@DIR@", None), "is not a regular file"),
    (("KEY", None), "holds no PEM certificate"),
])
def test_unreadable_certificate_files_fail_configtest(fakems, creds, files, words):
    cert = files[0] or creds["good"]["cert"]
    cert = creds["good"]["key"] if cert == "KEY" else cert
    key = files[1] or creds["good"]["key"]
    rc, out, lines = configtest(fakems, "MSAuthClientCertificate %s %s\n" % (cert, key))
    assert rc != 0, out
    assert words in syntax_error(out, lines, "MSAuthClientCertificate"), out


def test_an_unknown_algorithm_fails_configtest(fakems, creds):
    rc, out, lines = configtest(fakems, "MSAuthClientCertificate %(cert)s %(key)s ES256\n"
                                % creds["good"])
    assert rc != 0
    assert "unknown algorithm 'ES256'" in syntax_error(out, lines, "MSAuthClientCertificate")


@pytest.mark.parametrize("other", ["MSAuthClientSecret @CLIENT_SECRET@",
                                   "MSAuthClientAssertionFile {token}"])
def test_two_credentials_for_one_app_fail_configtest(fakems, creds, other):
    other = other.format(token=creds["token_file"])
    for snippet in ("MSAuthClientCertificate %(cert)s %(key)s\n" % creds["good"] + other + "\n",
                    "<MSAuthApp two>\n MSAuthClientID %s\n MSAuthClientCertificate %s %s\n %s\n"
                    "</MSAuthApp>\n" % (RS_CLIENT, creds["good"]["cert"], creds["good"]["key"],
                                        other)):
        rc, out, _ = configtest(fakems, snippet)
        assert rc != 0, out
        assert re.search(r"MSAuthClientCertificate and MSAuthClient(Secret|AssertionFile) are both "
                         r"set for app '(default|two)'", out), out


def test_a_named_apps_credential_replaces_the_inherited_secret(fakems, creds):
    """A root app with a secret, a named app with a certificate: each has one credential."""
    rc, out, _ = configtest(fakems, "MSAuthClientSecret @CLIENT_SECRET@\n<MSAuthApp c>\n"
                            " MSAuthClientID %s\n MSAuthClientCertificate %s %s\n</MSAuthApp>\n"
                            % (RS_CLIENT, creds["good"]["cert"], creds["good"]["key"]))
    assert rc == 0 and "Syntax OK" in out, out


@pytest.mark.parametrize("path,words", [("/nonexistent/token", "does not exist"),
                                        ("EMPTY", "is empty")])
def test_a_missing_or_empty_assertion_file_fails_configtest(fakems, creds, path, words):
    if path == "EMPTY":
        path = os.path.join(creds["dir"], "empty-token")
        open(path, "w").close()
    rc, out, lines = configtest(fakems, "MSAuthClientAssertionFile %s\n" % path)
    assert rc != 0, out
    msg = syntax_error(out, lines, "MSAuthClientAssertionFile")
    assert msg.startswith("MSAuthClientAssertionFile ") and words in msg, msg
