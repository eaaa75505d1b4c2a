"""Revocations and one-time values stay that way, whatever an attacker does to the cache.

Tried as an attacker would, against a real httpd, fakems and a real memcached or redis:
- Flood: login starts and bogus-code callbacks, which anyone can send without signing
  in, each leave a record in the default shmcb cache; they must not push a logout, a
  `DELETE /jwt_auth` or a spent ID token out of it.
- Outage: with the store killed, a revoked token is refused (401) or the request is
  turned away (503), never let in; after the store comes back empty, tokens revoked
  before are still never accepted, and a new login works within seconds.
- Concurrency: an ID token or a login state used by many requests at once opens
  exactly one session.
"""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests

from msauth import (FAKEMS_APP, REVOCATION_BOUND, Httpd, free_port, fresh_store_epoch, jwt_parts,
                    query_of, remember, seed_authorize_url, start_group, stop_group, wait_port)

CONF = """
""" + FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthSigninSuccess /?jwt=id
MSAuthSigninFailure /?cause=?
MSAuthIDTokenTTL 600
%s
Alias /api/ @DIR@/htdocs/
<Location /api/>
    AuthType Microsoft
    MSAuthUnauthAction 401
    Require valid-user
</Location>
"""

FLOOD_PAIRS = 3000       # login starts, each followed by a bogus-code callback
FLOOD_LOGINS = 30        # real logins among them
FLOOD_THREADS = 8
PARALLEL = 8             # simultaneous uses of one ID token or one login state
ID_TOKENS = 10           # ID tokens, each exchanged PARALLEL times at once
LOGIN_STATES = 10        # login states, each replayed PARALLEL times at once
TRIES = 10               # requests while the store is down or has come back empty
COMEBACK = 10            # seconds a new login may take to work after the store is back
# What the module and the socache provider log while the store is away.
STORE_ERRORS = (r"msauth: cache_", r"\[socache_(memcache|redis):(error|crit)\]")


# The store: a real memcached or redis, killed and restarted on its port -------------

class Store:
    def __init__(self, kind, args=()):
        binary = "memcached" if kind == "memcache" else "redis-server"
        assert shutil.which(binary), binary + " is not installed (scripts/deps test installs it)"
        self.kind = kind
        self.port = free_port()
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="msauth-store-")
        os.chmod(self.dir, 0o777)
        self.proc = None
        self.start()

    @property
    def spec(self):
        return "%s:127.0.0.1:%d" % (self.kind, self.port)

    def start(self):
        """Starts it empty; after a kill, on the same port."""
        if self.kind == "memcache":
            cmd = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16"]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--dir", self.dir]
        cmd += self.args
        deadline = time.time() + 10
        while True:
            self.proc = start_group(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_port(self.port, self.proc, timeout=10):
                return
            # The port of the killed one may linger a moment: try again, bounded.
            stop_group(self.proc)
            assert time.time() < deadline, "%s did not start on port %d" % (self.kind, self.port)
            time.sleep(0.2)

    def kill(self):
        """SIGKILL: no goodbye to the clients, every record gone."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        stop_group(self.proc)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)
        assert not stop_group(self.proc), "%s left processes behind" % self.kind
        shutil.rmtree(self.dir, ignore_errors=True)

    def cmd(self, *words):
        """One command in the store's own protocol (memcached text, redis inline): the reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            out, ends = b"", ((b"\r\n",) if self.kind == "redis" else
                              (b"END\r\n", b"OK\r\n", b"STORED\r\n", b"ERROR\r\n"))
            while not out.endswith(ends):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
            return out.decode(errors="replace")


@pytest.fixture
def stores(request):
    """Starts a Store of a kind; every one is stopped after the test."""
    made = []

    def make(kind, args=()):
        store = Store(kind, args)
        made.append(store)
        return store
    yield make
    for store in made:
        store.stop()


@pytest.fixture
def httpds(fakems, stores):
    """Starts an httpd with MSAuthCache `cache` (None: no MSAuthCache line, the default
    shmcb). After the test its error log is checked, then it is stopped."""
    made = []

    def make(cache=None, name="state", extra=""):
        line, modules = extra, []
        if cache is not None:
            kind = cache.split(":", 1)[0]
            line += "\nMSAuthCache " + cache
            if kind in ("memcache", "redis"):
                modules = ["socache_" + kind]
        h = Httpd(CONF % line, fakems, modules=modules, name=name)
        if modules:  # every test starts its stores empty
            h.expect_warn(fresh_store_epoch(cache))
        made.append(h)
        return h.start()
    yield make
    try:
        for h in made:
            if h.proc is not None:
                h.check_log()
    finally:
        for h in made:
            h.cleanup()


def cache_spec(stores, kind):
    """The MSAuthCache value for kind, starting the store it needs."""
    return "shmcb" if kind == "shmcb" else stores(kind).spec


# What a user does ---------------------------------------------------------------------

def start_login(session, httpd):
    """`/microsoft_auth/login`: Microsoft's authorize URL; the state cookie is in session."""
    r = session.get(httpd.url("/microsoft_auth/login"), allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:200])
    loc = r.headers["Location"]
    assert loc.startswith(httpd.fakems.base + "/"), loc
    return loc


def login(httpd, fakems, user="alice"):
    """A real sign-in: login start, Microsoft's page, callback. (session token, ID token)."""
    s = requests.Session()
    back = fakems.pick_user(start_login(s, httpd), user)
    assert back.startswith(httpd.origin + "/microsoft_auth?"), back
    r = s.get(back, allow_redirects=False, timeout=15)
    assert r.status_code == 302 and r.headers["Location"].startswith("/?jwt="), (
        r.status_code, r.headers.get("Location"), r.text[:200])
    session = s.cookies.get("msauth")
    assert session, "no session cookie after the login"
    return session, query_of(r.headers["Location"])["jwt"][0]


def protected(httpd, token, session=None):
    return (session or requests).get(httpd.url("/api/static.txt"), timeout=15,
                                     headers={"Authorization": "Bearer " + token,
                                              "Accept": "application/json"})


def exchange(httpd, id_token, session=None):
    """Passwordless: POST /jwt_auth with an ID token."""
    return (session or requests).post(httpd.url("/jwt_auth"), timeout=15,
                                      headers={"Content-Type": "application/json"},
                                      data=json.dumps({"provider": "passwordless",
                                                       "token": id_token}))


def logout(httpd, token):
    r = requests.get(httpd.url("/microsoft_auth/logout"), cookies={"msauth": token},
                     allow_redirects=False, timeout=15)
    assert r.status_code == 302, (r.status_code, r.text[:200])


def delete_all(httpd, token):
    r = requests.delete(httpd.url("/jwt_auth"), headers={"Authorization": "Bearer " + token},
                        timeout=15)
    assert r.status_code == 200, (r.status_code, r.text[:200])


# The flood ----------------------------------------------------------------------------

class Client:
    """A keep-alive connection, reopened when the server closes it (MaxKeepAliveRequests).

    http.client rather than requests: it is several times faster, and the thousands of
    throwaway state cookies stay out of msauth.SECRETS (the log-hygiene check would
    look for each of them in every log)."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def get(self, target, headers=None):
        for attempt in (1, 2):
            try:
                self.conn.request("GET", target, headers=headers or {})
                resp = self.conn.getresponse()
                resp.read()
                return resp
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.conn.close()
                if attempt == 2:
                    raise

    def close(self):
        self.conn.close()


def login_start_and_bogus_callback(client):
    """What anyone can send without signing in. Returns the callback's failure cause."""
    r = client.get("/microsoft_auth/login")
    assert r.status == 302, r.status
    state = query_of(r.getheader("Location"))["state"][0]
    cookie = [c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or []
              if c.startswith("msauth_state_")]
    assert len(cookie) == 1, r.headers.get_all("Set-Cookie")
    # A fresh code each time: every pair leaves a spent state and a spent code behind.
    r = client.get("/microsoft_auth?code=bogus-%s&state=%s"
                   % (os.urandom(12).hex(), urllib.parse.quote(state, safe="")),
                   headers={"Cookie": cookie[0]})
    loc = r.getheader("Location") or ""
    assert r.status == 302 and loc.startswith("/?cause="), (r.status, loc)
    return urllib.parse.unquote(loc[len("/?cause="):])


def flood(httpd, fakems):
    """FLOOD_PAIRS login starts + bogus callbacks, with FLOOD_LOGINS real logins among them."""
    started = time.time()
    per_thread = [FLOOD_PAIRS // FLOOD_THREADS + (i < FLOOD_PAIRS % FLOOD_THREADS)
                  for i in range(FLOOD_THREADS)]

    def pairs(n):
        client, causes = Client(httpd.port), {}
        try:
            for _ in range(n):
                c = login_start_and_bogus_callback(client)
                causes[c] = causes.get(c, 0) + 1
        finally:
            client.close()
        return causes

    def real_logins():
        for _ in range(FLOOD_LOGINS):
            login(httpd, fakems, "bob")   # the attacker's own account
        return FLOOD_LOGINS

    with concurrent.futures.ThreadPoolExecutor(FLOOD_THREADS + 1) as pool:
        floods = [pool.submit(pairs, n) for n in per_thread]
        logins = pool.submit(real_logins)
        causes = {}
        for f in floods:
            for c, n in f.result(timeout=120).items():
                causes[c] = causes.get(c, 0) + n
        assert logins.result(timeout=120) == FLOOD_LOGINS
    assert sum(causes.values()) == FLOOD_PAIRS, causes
    # Every bogus code reached Microsoft and was refused there: each state was recorded.
    assert causes == {"token_exchange_failed": FLOOD_PAIRS}, causes
    return time.time() - started


def signed_in_again(h, fakems):
    """Refusing everything is no fix: the user signs in again and is let in."""
    token, _ = login(h, fakems)
    assert protected(h, token).status_code == 200


@pytest.fixture
def shmcb_httpd(httpds):
    """One httpd with the default cache: no MSAuthCache line at all."""
    h = httpds(None, name="flood")
    assert "MSAuthCache" not in h.config_text()
    return h


def test_flood_does_not_undo_a_logout(fakems, shmcb_httpd):
    h = shmcb_httpd
    token, _ = login(h, fakems)
    assert protected(h, token).status_code == 200
    logout(h, token)
    assert protected(h, token).status_code == 401, "not refused right after the logout"
    took = flood(h, fakems)
    r = protected(h, token)
    assert r.status_code == 401, (
        "a logged-out session token answered %d after %d login starts + bogus callbacks "
        "(%.1f s)" % (r.status_code, FLOOD_PAIRS, took))
    signed_in_again(h, fakems)


def test_flood_does_not_respend_an_id_token(fakems, shmcb_httpd):
    h = shmcb_httpd
    _, id_token = login(h, fakems)
    _, claims, _ = jwt_parts(id_token)
    assert claims["exp"] - claims["iat"] == 600
    assert exchange(h, id_token).status_code == 200
    assert exchange(h, id_token).status_code == 401, "not refused right after its use"
    took = flood(h, fakems)
    assert claims["exp"] - time.time() > 300, "the ID token ran out: the check means nothing"
    r = exchange(h, id_token)
    assert r.status_code == 401, (
        "a spent ID token (%d s of life left) answered %d after %d login starts + bogus "
        "callbacks (%.1f s)" % (claims["exp"] - time.time(), r.status_code, FLOOD_PAIRS, took))
    assert exchange(h, login(h, fakems)[1]).status_code == 200   # a new one is good


def test_flood_does_not_undo_a_delete(fakems, shmcb_httpd):
    h = shmcb_httpd
    token, _ = login(h, fakems)
    assert protected(h, token).status_code == 200
    delete_all(h, token)
    assert protected(h, token).status_code == 401, "not refused right after DELETE /jwt_auth"
    took = flood(h, fakems)
    r = protected(h, token)
    assert r.status_code == 401, (
        "a session token revoked by DELETE /jwt_auth answered %d after %d login starts + "
        "bogus callbacks (%.1f s)" % (r.status_code, FLOOD_PAIRS, took))
    r = requests.get(h.url("/jwt_auth"), headers={"Authorization": "Bearer " + token},
                     timeout=15)
    assert r.status_code == 401, ("GET /jwt_auth renewed a revoked session", r.status_code)
    signed_in_again(h, fakems)


# Outage and restart -------------------------------------------------------------------

@pytest.fixture(params=["memcache", "redis"])
def store_httpd(request, stores, httpds):
    store = stores(request.param)
    return store, httpds(store.spec, name="outage-" + request.param)


def revoked_token(h, fakems):
    """A session token that worked, then was logged out: refused while the store is up."""
    token, _ = login(h, fakems)
    assert protected(h, token).status_code == 200
    logout(h, token)
    assert protected(h, token).status_code == 401, "not refused right after the logout"
    return token


def expect_store_errors(h):
    for regex in STORE_ERRORS:
        h.expect_error(regex)


def test_store_down_never_lets_a_revoked_token_in(fakems, store_httpd):
    store, h = store_httpd
    token = revoked_token(h, fakems)
    store.kill()
    expect_store_errors(h)
    statuses = [protected(h, token).status_code for _ in range(TRIES)]
    assert all(s in (401, 503) for s in statuses), (
        "a revoked token with %s down: %s" % (store.kind, statuses))


def fresh_login_works(h, fakems, back):
    """Polls, bounded, until a real login and a request with its token succeed within
    COMEBACK seconds of `back`, when the store came back. Returns how long it took."""
    deadline, seen = back + COMEBACK, []
    while time.time() < deadline:
        try:
            token, _ = login(h, fakems)
            r = protected(h, token)
            seen.append(r.status_code)
            if r.status_code == 200:
                return time.time() - back
        except AssertionError as e:   # the login itself failed (503, failure redirect)
            seen.append(str(e)[:80])
        time.sleep(0.25)
    raise AssertionError("no working login within %d s of the store coming back: %s"
                         % (COMEBACK, seen[-5:]))


def test_store_restarted_empty_forgets_no_revocation(fakems, store_httpd):
    store, h = store_httpd
    token = revoked_token(h, fakems)
    store.kill()
    store.start()   # same port, empty
    back = time.time()
    expect_store_errors(h)
    statuses = [protected(h, token).status_code for _ in range(TRIES // 2)]
    took = fresh_login_works(h, fakems, back)
    # The store answers again (a new login just worked): the old revocation must hold.
    statuses += [protected(h, token).status_code for _ in range(TRIES - TRIES // 2)]
    assert 200 not in statuses, (
        "a token logged out before %s restarted empty: %s (a new login worked after %.1f s)"
        % (store.kind, statuses, took))


# Concurrency --------------------------------------------------------------------------
#
# Parametrised over shmcb too: the module serialises shmcb (a provider that is not
# multi-process safe) with a global mutex, so its spending is atomic on one server
# today; those cases keep it so whatever the shared-state layer becomes.

def together(httpd, raw_requests):
    """Sends the raw HTTP/1.1 requests at the same moment; [(status, headers, body)].

    Each goes out on its own connection, opened first, with all of it but its last byte;
    a barrier then releases the threads that send the last bytes. The server has every
    request in hand but can act on none before that moment, so they really race."""
    n = len(raw_requests)
    socks = [socket.create_connection(("127.0.0.1", httpd.port), timeout=30)
             for _ in range(n)]
    barrier = threading.Barrier(n, timeout=15)

    def send(i):
        sock, data = socks[i], raw_requests[i]
        sock.sendall(data[:-1])
        barrier.wait()
        sock.sendall(data[-1:])
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return resp.status, resp.headers, resp.read()

    try:
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return [f.result(timeout=60) for f in [pool.submit(send, i) for i in range(n)]]
    finally:
        for sock in socks:
            sock.close()


def raw(httpd, method, target, headers=(), body=b""):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:%d" % httpd.port,
             "Connection: close"] + list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("kind", ["shmcb", "memcache", "redis"])
def test_parallel_id_token_exchanges_open_one_session(fakems, stores, httpds, kind):
    h = httpds(cache_spec(stores, kind), name="race-" + kind)
    tokens = [login(h, fakems)[1] for _ in range(ID_TOKENS)]
    results = {}
    for n, token in enumerate(tokens):
        body = json.dumps({"provider": "passwordless", "token": token}).encode()
        answers = together(h, [raw(h, "POST", "/jwt_auth", ["Content-Type: application/json"],
                                   body)] * PARALLEL)
        for status, _, content in answers:
            if status == 200:
                remember(json.loads(content)["jwt"]["access_token"])
        results[n] = sorted(status for status, _, _ in answers)
    reused = {n: st.count(200) for n, st in results.items() if st.count(200) != 1}
    assert not reused, (
        "%s: ID tokens accepted other than exactly once (token: number of 200s): %s; "
        "all answers: %s" % (kind, reused, results))
    assert all(st == [200] + [401] * (PARALLEL - 1) for st in results.values()), results


@pytest.mark.parametrize("kind", ["shmcb", "memcache", "redis"])
def test_parallel_replays_of_one_login_state_open_one_session(fakems, stores, httpds, kind):
    h = httpds(cache_spec(stores, kind), name="replay-" + kind)
    # fakems spends its codes atomically, as Microsoft means to: replays would then fail
    # at the code exchange whatever the module does. Microsoft has had codes that redeem
    # more than once; the module must not rely on it, so the code here stays redeemable
    # (knob code_reuse) and only the module's single use of the state stands between the
    # replays and a session each.
    fakems.faults(token="code_reuse")
    results, sessions = {}, []
    for n in range(LOGIN_STATES):
        # One login, stopped where Microsoft sends the browser back: code, state, cookie.
        s = requests.Session()
        back = fakems.pick_user(start_login(s, h))
        assert back.startswith(h.origin + "/microsoft_auth?"), back
        cookie = ["%s=%s" % (c.name, c.value) for c in s.cookies
                  if c.name.startswith("msauth_state_")]
        assert len(cookie) == 1, s.cookies.keys()
        request = raw(h, "GET", back[len(h.origin):], ["Cookie: " + cookie[0]])
        outcomes = []
        for status, headers, _ in together(h, [request] * PARALLEL):
            loc = headers.get("Location", "")
            session = [c.split(";", 1)[0][len("msauth="):]
                       for c in headers.get_all("Set-Cookie") or [] if c.startswith("msauth=")]
            if status == 302 and loc.startswith("/?jwt=") and session and session[0]:
                remember(session[0])
                remember(query_of(loc)["jwt"][0])
                sessions.append(session[0])
                outcomes.append("session")
            else:
                # Turned away: the failure URL, as a replay (invalid_state) or another failure.
                assert status == 302 and loc.startswith("/?cause="), (status, loc)
                outcomes.append(urllib.parse.unquote(loc[len("/?cause="):]))
        results[n] = sorted(outcomes)
    fakems.faults(token=None)
    reused = {n: o.count("session") for n, o in results.items() if o.count("session") != 1}
    assert not reused, (
        "%s: login states that opened other than exactly one session from %d parallel "
        "callbacks with one code, state and state cookie (state: sessions): %s; all: %s"
        % (kind, PARALLEL, reused, results))
    assert protected(h, sessions[0]).status_code == 200   # the one session is a real one
    token, _ = login(h, fakems)                             # and a new login still works
    assert protected(h, token).status_code == 200


@pytest.mark.parametrize("kind", ["shmcb", "memcache", "redis"])
def test_parallel_replays_of_one_code_open_one_session(fakems, stores, httpds, kind):
    """The seed's client-built login has no state of the module's to spend: the code is
    spent instead, once, even where Microsoft would redeem it again (code_reuse)."""
    h = httpds(cache_spec(stores, kind), name="code-" + kind, extra="MSAuthLegacyState On")
    fakems.faults(token="code_reuse")
    results = {}
    for n in range(LOGIN_STATES):
        back = fakems.pick_user(seed_authorize_url(fakems, h))
        assert back.startswith(h.origin + "/microsoft_auth?code="), back
        outcomes = []
        for status, headers, _ in together(h, [raw(h, "GET", back[len(h.origin):])] * PARALLEL):
            loc = headers.get("Location", "")
            assert status == 302, status
            if loc.startswith("/?jwt="):
                remember(query_of(loc)["jwt"][0])
                outcomes.append("session")
            else:
                assert loc.startswith("/?cause="), loc
                outcomes.append(urllib.parse.unquote(loc[len("/?cause="):]))
        results[n] = sorted(outcomes)
    fakems.faults(token=None)
    assert all(o == ["session"] + ["token_exchange_failed"] * (PARALLEL - 1)
               for o in results.values()), (
        "%s: one code sent %d times at once: %s" % (kind, PARALLEL, results))


# Restarts of the server itself, with the default local store ----------------------------

@pytest.mark.parametrize("signame", ["SIGUSR1", "SIGHUP"])
def test_reload_forgets_no_revocation_and_keeps_sessions(fakems, shmcb_httpd, signame):
    """A graceful restart (logrotate, `apachectl graceful`) or a restart of the children
    keeps the local store: logged-out tokens stay out, live sessions stay in."""
    h = shmcb_httpd
    live, _ = login(h, fakems)
    gone, gone_id = login(h, fakems, "bob")
    assert exchange(h, gone_id).status_code == 200
    logout(h, gone)
    assert protected(h, gone).status_code == 401
    h.wait_log(r"resuming normal operations", count=1)
    os.kill(h.proc.pid, getattr(signal, signame))
    h.wait_log(r"resuming normal operations", timeout=15, count=2)
    assert protected(h, gone).status_code == 401
    assert exchange(h, gone_id).status_code == 401
    assert protected(h, live).status_code == 200


def test_full_restart_makes_everyone_sign_in_again(fakems, shmcb_httpd):
    """A stopped server forgot its revocations: no token from before the stop opens it."""
    h = shmcb_httpd
    live, id_token = login(h, fakems)
    assert protected(h, live).status_code == 200
    h.stop()
    h.start()
    assert protected(h, live).status_code == 401
    assert exchange(h, id_token).status_code == 401
    assert "before MSAuthCache's current epoch" in h.read_file("error.log")
    signed_in_again(h, fakems)


def test_tokens_without_the_store_epoch_are_refused(fakems, shmcb_httpd):
    """Whoever holds the key still cannot make a token the store vouches for."""
    from msauth import hs256_sign, KEY
    h = shmcb_httpd
    real, _ = login(h, fakems)
    _, claims, _ = jwt_parts(real)
    assert len(claims["epoch"]) == 16
    resigned = hs256_sign(claims, KEY)
    assert protected(h, resigned).status_code == 200  # the key and the epoch: accepted
    for epoch in (None, "0" * 16, claims["epoch"][::-1]):
        forged = dict(claims)
        if epoch is None:
            del forged["epoch"]
        else:
            forged["epoch"] = epoch
        assert protected(h, hs256_sign(forged, KEY)).status_code == 401, epoch


@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_a_dead_shard_is_never_replaced_by_a_live_one(fakems, stores, httpds, kind):
    """With two servers listed, each user lives on one. When one dies, its users get 503
    (their revocations are not on the other), the other's users carry on."""
    one, two = stores(kind), stores(kind)
    h = httpds("%s:127.0.0.1:%d,127.0.0.1:%d" % (kind, one.port, two.port), name="shards-" + kind)
    users = ["alice", "bob", "carol", "dave", "erin"]
    tokens = {u: login(h, fakems, u)[0] for u in users}
    gone = {u: login(h, fakems, u)[0] for u in users}
    for u in users:
        logout(h, gone[u])
        assert protected(h, tokens[u]).status_code == 200
        assert protected(h, gone[u]).status_code == 401
    expect_store_errors(h)
    one.kill()
    # A live verdict read before the shard died is served for at most the bound.
    time.sleep(REVOCATION_BOUND + 0.2)
    live = {u: [protected(h, tokens[u]).status_code for _ in range(3)] for u in users}
    revoked = {u: [protected(h, gone[u]).status_code for _ in range(3)] for u in users}
    assert all(set(r) <= {401, 503} for r in revoked.values()), revoked
    down = [u for u in users if live[u] == [503] * 3]
    up = [u for u in users if live[u] == [200] * 3]
    assert sorted(down + up) == sorted(users), live       # each user is on one shard
    assert down and up, "users %s: all on one shard, so the test shows nothing" % live
