"""Attacks on the credentials without a client secret and on the front-channel logout,
against a real httpd, fakems and real memcached/redis stores.

What got in, each first seen failing on the code before its fix:
- an assertion file swapped for a FIFO (or a symlink to one) hung the login that read it,
  and every other login of that child behind the credential's lock;
- in a store of several servers (shards), the shard that holds a Microsoft session's
  `sid` records losing them (restarted empty, flushed, evicting) left that session's
  tokens alive and out of reach of Microsoft's sign-out: the front-channel logout found
  nobody to sign out and answered 200.

What did not get in is here too where a test is cheap: the assertion file swapped for a
huge file, /dev/zero, a directory, a half-written token; an ID token or a refreshed token
of a signed-out Microsoft session.
"""

import os
import socket
import stat
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests

from msauth import (Httpd, fresh_store_epoch, jwt_parts, remember, start_group, stop_group,
                    wait_port)
from test_credentials import FED_CLIENT, creds, federated_token, write_token  # noqa: F401
from test_frontchannel import (FC, SSO_CLIENT, SSO_SECRET, Browser, assert_empty_framable_page,
                               frontchannel, opens, registrations, sid_of)  # noqa: F401

# Part 1: the assertion file ---------------------------------------------------------------

FED_CONF = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 2
MSAuthSecretKey @KEY@
MSAuthSigninFailure /?cause=?
MSAuthClientID {client}
MSAuthClientAssertionFile {path}
"""


@pytest.fixture
def fed(request, fakems, creds):  # noqa: F811
    """A server whose only credential is a token file of its own, in a directory of its own."""
    d = tempfile.mkdtemp(prefix="msauth-fed-")
    os.chmod(d, 0o755)
    path = os.path.join(d, "token")
    write_token(path, federated_token(fakems))
    h = Httpd(FED_CONF.format(client=FED_CLIENT, path=path), fakems, name="fed").start()
    request.addfinalizer(h.cleanup)
    return h, path


def fed_login(httpd, fakems, timeout=10):
    """A module-initiated login of alice; the callback's answer (within timeout seconds)."""
    s = requests.Session()
    r = s.get(httpd.url("/microsoft_auth/login"), allow_redirects=False, timeout=timeout)
    assert r.status_code == 302, r.text[:300]
    return s.get(fakems.pick_user(r.headers["Location"]), allow_redirects=False,
                 timeout=timeout)


def signed_in(r):
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert "cause=" not in r.headers["Location"], r.headers["Location"]
    assert any(c.startswith("msauth=") and "Max-Age=0" not in c
               for c in r.raw.headers.getlist("Set-Cookie")), r.headers


def release_fifo(path):
    """Opens a FIFO for writing and closes it: a reader blocked in open() gets EOF."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader waiting
    os.close(fd)


def test_an_assertion_file_swapped_for_a_fifo_does_not_hang_logins(fakems, fed):
    """Whoever can write the token's directory (a sidecar, a volume mount gone wrong) puts a
    FIFO where the token was: the login must still be answered at once, with the last token
    read, and the log must say why."""
    httpd, path = fed
    signed_in(fed_login(httpd, fakems))
    fifo = path + ".fifo"
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)
    link = path + ".link"
    try:
        for swap in ("fifo", "symlink to a fifo"):
            if swap == "fifo":
                os.replace(fifo, path)
                target = path
            else:
                os.mkfifo(fifo)
                os.chmod(fifo, 0o666)
                os.symlink(fifo, link)
                os.replace(link, path)
                target = fifo
            time.sleep(1.1)  # the file is looked at once a second at most
            httpd.expect_warn(r"msauth: credential: appid=default: assertion file \S+ is not a "
                              r"regular file; the last token read is sent")
            started = time.monotonic()
            try:
                r = fed_login(httpd, fakems, timeout=8)
            except requests.exceptions.ReadTimeout:
                pytest.fail("%s: the login hung on the assertion file" % swap)
            finally:
                release_fifo(target)
            assert time.monotonic() - started < 5, swap
            signed_in(r)
            httpd.wait_log(r"assertion file \S+ is not a regular file")
            os.unlink(path)
            write_token(path, federated_token(fakems))
    finally:
        for p in (path, fifo):
            if os.path.exists(p) and stat.S_ISFIFO(os.lstat(p).st_mode):
                release_fifo(p)


@pytest.mark.parametrize("swap", ["huge", "devzero", "directory", "half-written"])
def test_an_assertion_file_swapped_for_junk_keeps_the_last_token(fakems, fed, swap):
    """Did not get in: a huge file, /dev/zero, a directory or a token cut short mid-write is
    read no further than a token's size, refused with a log line, and the last good token
    is sent meanwhile (or, cut short, refused by Microsoft until the write completes)."""
    httpd, path = fed
    good = federated_token(fakems)
    write_token(path, good)
    time.sleep(1.1)
    signed_in(fed_login(httpd, fakems))
    os.unlink(path)
    if swap == "huge":
        with open(path, "wb") as f:
            f.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of NULs
        os.chmod(path, 0o644)
        why = r"is over \d+ bytes"
    elif swap == "devzero":
        os.symlink("/dev/zero", path)
        why = r"is not a regular file|is over \d+ bytes"
    elif swap == "directory":
        os.mkdir(path)
        os.chmod(path, 0o755)
        why = r"is not a regular file|cannot be read"
    else:
        with open(path, "w") as f:
            f.write(good[: len(good) // 2])
        os.chmod(path, 0o644)
    time.sleep(1.1)
    if swap == "half-written":
        # A token cut short is still a token to the module; Microsoft refuses it, and the
        # login fails cleanly; the completed write is sent from the next look on.
        httpd.expect_warn(r"login_failed: cause=token_exchange_failed appid=default: .*AADSTS")
        r = fed_login(httpd, fakems)
        assert r.status_code == 302 and "cause=token_exchange_failed" in r.headers["Location"]
        write_token(path, good)
        time.sleep(1.1)
        signed_in(fed_login(httpd, fakems))
        return
    httpd.expect_warn(r"msauth: credential: appid=default: assertion file \S+ (%s); the last "
                      r"token read is sent" % why)
    started = time.monotonic()
    signed_in(fed_login(httpd, fakems))
    assert time.monotonic() - started < 5
    httpd.wait_log(r"msauth: credential: .*(%s)" % why)
    if swap == "directory":
        os.rmdir(path)
    else:
        os.unlink(path)
    write_token(path, good)


# Part 3: the front-channel logout with a store of several shards ---------------------------

def shard_of(owner, n):
    """msa_store_shard: FNV-1a, then murmur3's finaliser, modulo the number of shards."""
    h = 2166136261
    for c in owner.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h % n


class Shard:
    """A memcached or redis on a loopback port it keeps across restarts (each start empty)."""

    def __init__(self, kind):
        self.kind = kind
        self.port = None
        self.proc = None
        self.start()

    def start(self):
        for _ in range(20):
            if self.port is None:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
            else:
                port = self.port
            if self.kind == "memcache":
                cmd = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16",
                       "-M"]
                if os.geteuid() == 0:
                    cmd += ["-u", "nobody"]
            else:
                cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                       "--appendonly", "no", "--maxmemory-policy", "noeviction"]
            self.proc = start_group(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_port(port, self.proc, timeout=5):
                self.port = port
                return
            stop_group(self.proc)
            time.sleep(0.2)  # the old one's port may not be free yet
        raise AssertionError("%s did not start on %s" % (self.kind, self.port))

    def stop(self):
        if self.proc is not None:
            left = stop_group(self.proc)
            self.proc = None
            assert not left, left

    def restart_empty(self):
        self.stop()
        self.start()


@pytest.fixture(params=["memcache", "redis"])
def sharded(request, fakems):
    kind = request.param
    shards = [Shard(kind), Shard(kind)]
    for s in shards:
        request.addfinalizer(s.stop)
    spec = "%s:%s" % (kind, ",".join("127.0.0.1:%d" % s.port for s in shards))
    conf = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID %s
MSAuthClientSecret %s
MSAuthSecretKey @KEY@
MSAuthCache %s
Alias /api/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
""" % (SSO_CLIENT, SSO_SECRET, spec)
    h = Httpd(conf, fakems, modules=["socache_" + kind], name="sharded",
              server_name="app.test:443")
    h.expect_warn(fresh_store_epoch(spec))
    h.start()
    request.addfinalizer(h.cleanup)
    return kind, shards, spec, h


def test_losing_the_sid_shard_does_not_keep_sessions_out_of_reach_of_sign_out(fakems, sharded):
    """The sid's records live on the shard of the sid, the session's on the shard of its
    user. When the sid's shard loses its records and the user's does not, the session must
    not live on beyond Microsoft's sign-out: refused (sign in again), not kept."""
    kind, shards, spec, h = sharded
    # A Microsoft session whose sid lives on the other shard than its user's records.
    for _ in range(20):
        token = Browser(fakems).sign_in(h)
        claims = jwt_parts(token)[1]
        sid = claims["sid"]
        remember(sid)
        owner = "default:" + claims["sub"]
        if shard_of("sid:" + sid, 2) != shard_of(owner, 2):
            break
    else:
        pytest.fail("no sid on another shard than its user in 20 logins")
    assert opens(h, token) == 200
    sid_shard = shards[shard_of("sid:" + sid, 2)]
    sid_shard.restart_empty()  # restarted, flushed or evicting: its records are gone
    h.expect_warn(fresh_store_epoch(spec) + "|msauth: cache_epoch: ")
    time.sleep(1.2)  # past any live verdict remembered before
    status = opens(h, token)
    # Microsoft's sign-out now, as it would come
    r = frontchannel(h, "?sid=" + urllib.parse.quote(sid))
    assert r.status_code in (200, 503), r.status_code
    time.sleep(1.2)
    after = opens(h, token)
    assert after == 401, ("the session of a signed-out Microsoft session still opens the "
                          "app (before the sign-out: %d)" % status)
    # Signing in again works, and Microsoft's sign-out reaches the new session, across shards.
    for _ in range(20):
        again = Browser(fakems).sign_in(h)
        claims = jwt_parts(again)[1]
        if shard_of("sid:" + claims["sid"], 2) != shard_of("default:" + claims["sub"], 2):
            break
    assert claims.get("sid_epoch"), claims
    remember(claims["sid"])
    assert opens(h, again) == 200
    assert_empty_framable_page(frontchannel(h, "?sid=" + urllib.parse.quote(claims["sid"])),
                               fakems)
    assert opens(h, again) == 401
    h.check_log()


# Part 3: other doors to a session of a signed-out Microsoft session -----------------------

DOORS_CONF = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID %s
MSAuthClientSecret %s
MSAuthSecretKey @KEY@
MSAuthSigninSuccess /?jwt=id
Alias /api/ @DIR@/htdocs/cgi/
<Location /api/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
""" % (SSO_CLIENT, SSO_SECRET)


def test_an_id_token_or_refresh_of_a_signed_out_session_gets_no_session(request, fakems):
    """Did not get in: the jwt=id ID token of a login, exchanged after Microsoft signed its
    session out, gets no session (passwordless, JWT API); nor does a GET /jwt_auth refresh."""
    h = Httpd(DOORS_CONF, fakems, name="doors").start()
    request.addfinalizer(h.cleanup)
    s = requests.Session()
    ms = requests.Session()
    r = s.get(h.url("/microsoft_auth/login"), allow_redirects=False, timeout=10)
    authorize = r.headers["Location"]
    ms.get(authorize, timeout=10)
    fields = {k: v[0] for k, v in
              urllib.parse.parse_qs(urllib.parse.urlsplit(authorize).query).items()}
    fields["user"] = "alice"
    r = ms.post(fakems.base + urllib.parse.urlsplit(authorize).path, data=fields,
                allow_redirects=False, timeout=10)
    r = s.get(r.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 302, r.text[:200]
    id_token = urllib.parse.parse_qs(urllib.parse.urlsplit(r.headers["Location"]).query)["jwt"][0]
    session = r.cookies.get("msauth")
    sid = sid_of(session)
    assert sid and sid_of(id_token) == sid
    # A refreshed token carries the sid.
    r = requests.get(h.url("/jwt_auth"), headers={"Authorization": "Bearer " + session},
                     timeout=10)
    refreshed = r.json()["jwt"]["access_token"]
    assert sid_of(refreshed) == sid
    assert_empty_framable_page(frontchannel(h, "?sid=" + urllib.parse.quote(sid)), fakems)
    for t in (session, refreshed):
        assert opens(h, t) == 401
        r = requests.get(h.url("/jwt_auth"), headers={"Authorization": "Bearer " + t},
                         timeout=10)
        assert r.status_code == 401, r.text
    r = requests.post(h.url("/jwt_auth"), json={"provider": "passwordless", "token": id_token},
                      timeout=10)
    assert r.status_code == 401, r.text
    r = requests.post(h.url("/microsoft_auth/passwordless"), data={"token": id_token},
                      headers={"Origin": h.origin}, allow_redirects=False, timeout=10)
    assert not any(c.startswith("msauth=") and "Max-Age=0" not in c
                   for c in r.raw.headers.getlist("Set-Cookie")), r.headers


# Did not get in: the framing headers follow the cloud ---------------------------------------

@pytest.mark.parametrize("login_host,origin", [
    ("https://login.microsoftonline.us", "https://login.microsoftonline.us"),
    ("https://login.partner.microsoftonline.cn/", "https://login.partner.microsoftonline.cn"),
    ("https://login.example.test:8443", "https://login.example.test:8443"),
])
def test_frame_ancestors_name_the_configured_clouds_login_origin(request, fakems, login_host,
                                                                origin):
    conf = """MSAuthLoginHost %s
MSAuthClientID %s
MSAuthClientSecret %s
MSAuthSecretKey @KEY@
""" % (login_host, SSO_CLIENT, SSO_SECRET)
    h = Httpd(conf, fakems, name="cloud").start()
    request.addfinalizer(h.cleanup)
    for query in ("?sid=" + "a" * 36, "", "?sid=*", "?sid=%01"):
        r = requests.get(h.url(FC) + query, timeout=10, allow_redirects=False)
        assert r.status_code == 200 and r.content == b"", (query, r.status_code)
        assert "Location" not in r.headers and "Set-Cookie" not in r.headers
        assert "X-Frame-Options" not in r.headers
        ancestors = [d.strip() for d in r.headers["Content-Security-Policy"].split(";")
                     if d.strip().startswith("frame-ancestors")]
        assert ancestors == ["frame-ancestors " + origin], r.headers


# Did not get in: the certificate's key and assertions ------------------------------------------

CERT_CONF = """
LogLevel warn msauth:trace8
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 2
MSAuthSecretKey @KEY@
MSAuthSigninFailure /?cause=?
MSAuthMetrics On
MSAuthHealth On
MSAuthClientID {client}
MSAuthClientCertificate {d}/client.crt {d}/client.key
"""


def test_assertions_are_unique_across_children_and_a_graceful_restart_with_a_new_key(
        request, fakems, creds):  # noqa: F811
    """Logins at once in every child, then the certificate and key renewed and `apachectl
    graceful`: every assertion fakems saw has a jti of its own and verified, the new
    certificate signs after the restart, and neither the key nor an assertion reaches the
    error log at trace8, the metrics or the health page."""
    import concurrent.futures
    import shutil
    import signal

    from test_credentials import CERT_CLIENT, write_cert
    d = tempfile.mkdtemp(prefix="msauth-renew-")
    os.chmod(d, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(d, ignore_errors=True))
    good, fresh = creds["good"], write_cert(d, "renewed")
    for name, src in (("client.crt", good["cert"]), ("client.key", good["key"])):
        shutil.copy(src, os.path.join(d, name))
    fakems.control("clients", {"client_id": CERT_CLIENT,
                               "certificates": [good["pem"], fresh["pem"]]})
    request.addfinalizer(lambda: fakems.control(
        "clients", {"client_id": CERT_CLIENT, "certificates": [good["pem"]]}))
    h = Httpd(CERT_CONF.format(client=CERT_CLIENT, d=d), fakems, name="renew").start()
    request.addfinalizer(h.cleanup)

    def one(_):
        return fed_login(h, fakems, timeout=20)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for r in pool.map(one, range(16)):
            signed_in(r)
    # Renewed: new files in place (the old certificate stays registered next to the new).
    for name, src in (("client.crt", fresh["cert"]), ("client.key", fresh["key"])):
        shutil.copy(src, os.path.join(d, name) + ".new")
        os.replace(os.path.join(d, name) + ".new", os.path.join(d, name))
    h.wait_log(r"resuming normal operations", count=1)
    os.kill(h.proc.pid, signal.SIGUSR1)
    h.wait_log(r"resuming normal operations", timeout=15, count=2)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for r in pool.map(one, range(4)):
            signed_in(r)
    seen = [a for a in fakems.control("assertions")["assertions"]
            if a["client_id"] == CERT_CLIENT][-20:]
    assert len(seen) == 20 and all(a["verdict"] == "ok" for a in seen), seen
    assert len({a["claims"]["jti"] for a in seen}) == 20
    assert [a["header"]["x5t#S256"] for a in seen[-4:]] == [fresh["x5t#S256"]] * 4
    assert all(a["header"]["x5t#S256"] == good["x5t#S256"] for a in seen[:16])
    key_lines = [l for c in (good, fresh) for l in open(c["key"]).read().splitlines()[1:-1]]
    for path in ("/microsoft_auth/metrics", "/microsoft_auth/health"):
        body = h.get(path).text
        assert not [l for l in key_lines if l in body], path
        assert "PRIVATE" not in body and seen[-1]["claims"]["jti"] not in body, path
    log = h.read_file("error.log")
    assert not [l for l in key_lines if l in log]
    assert "PRIVATE" not in log and not [a for a in seen if a["claims"]["jti"] in log]


# A key every user can read -----------------------------------------------------------------

def test_a_key_every_user_can_read_is_said_at_configtest(fakems, creds):  # noqa: F811
    """The key is read by root at startup; a key file others can read (a CGI script as
    Apache's User, any local account) is a key given away: httpd -t says so, naming the
    directive, the file and the fix. (A warning, not a refusal: mod_ssl's keys take the same
    files, and the key may sit on a volume whose modes the site does not choose.)"""
    from test_credentials import configtest
    import shutil
    d = tempfile.mkdtemp(prefix="msauth-keymode-")
    os.chmod(d, 0o755)
    try:
        key = os.path.join(d, "client.key")
        shutil.copy(creds["good"]["key"], key)
        for mode, said in ((0o600, None), (0o640, None), (0o644, "read"), (0o602, "replaced")):
            os.chmod(key, mode)
            rc, out, _ = configtest(fakems, "MSAuthClientCertificate %s %s\n" % (
                creds["good"]["cert"], key))
            assert rc == 0 and "Syntax OK" in out, out
            line = [l for l in out.splitlines() if "every user of this machine" in l]
            if said is None:
                assert not line, (oct(mode), out)
            else:
                assert line and ("can be %s by every user" % said) in line[0], (oct(mode), out)
                assert "MSAuthClientCertificate: key %s" % key in line[0], line
                assert "chmod o-rwx" in line[0], line
            assert "PRIVATE KEY" not in out
    finally:
        shutil.rmtree(d, ignore_errors=True)
