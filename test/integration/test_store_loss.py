"""A store that loses records quietly: evicting, restored from a snapshot, flushed.

The epoch of test_shared_state.py catches a store that comes back empty; these are the
quieter ways a memcached or redis forgets a revocation or a spent one-time value, each
tried as an attacker would, against a real httpd, fakems and a real memcached or redis.
"""

import os
import signal
import time
import urllib.parse

import pytest
import requests

from msauth import REVOCATION_BOUND, query_of, remember
from test_shared_state import (delete_all, exchange, expect_store_errors, httpds,  # noqa: F401
                               login, logout, protected, start_login, stores)

COMEBACK = 10  # seconds a store's users may wait once it is set right


def signed_in_within(h, fakems, seconds):
    """A fresh login opens the protected path within seconds (bounded poll)."""
    deadline = time.time() + seconds
    while True:
        try:
            token, _ = login(h, fakems)
            if protected(h, token).status_code == 200:
                return
        except AssertionError:
            pass
        assert time.time() < deadline, "no working login within %d s" % seconds
        time.sleep(0.25)


def test_an_evicting_redis_is_refused_until_it_stops_evicting(fakems, stores, httpds):
    """maxmemory with an LRU policy may drop a revocation to make room: such a redis
    cannot vouch for "not revoked", so nothing that needs it is let through."""
    store = stores("redis", ["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"])
    h = httpds("redis:127.0.0.1:%d" % store.port, name="evicting-redis")
    h.expect_error(r"msauth: cache_error")
    r = requests.get(h.url("/microsoft_auth/login"), allow_redirects=False, timeout=10)
    assert r.status_code == 503, r.status_code
    h.wait_log(r"may evict records \(maxmemory 2097152 with maxmemory-policy allkeys-lru\)")
    assert "+OK" in store.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
    signed_in_within(h, fakems, COMEBACK)


def test_an_evicting_memcached_begins_a_new_epoch(fakems, stores, httpds):
    """A memcached without -M evicts the coldest records when full, and a revocation is
    written once and never read. Any eviction begins a new epoch within a second."""
    store = stores("memcache", ["-m", "2"])
    h = httpds("memcache:127.0.0.1:%d" % store.port, name="evicting-memcache")
    live, _ = login(h, fakems, "bob")
    gone, gone_id = login(h, fakems)
    logout(h, gone)
    assert protected(h, live).status_code == 200
    assert protected(h, gone).status_code == 401
    # Someone else's data fills memcached: old items, our revocation among them, go.
    blob = "x" * 100000
    for i in range(60):
        store.cmd("set junk%d 0 0 %d\r\n%s" % (i, len(blob), blob))
    assert int(dict(line.split()[1:3] for line in store.cmd("stats").splitlines()
                    if line.startswith("STAT "))["evictions"]) > 0
    time.sleep(1.1)  # the next look at the eviction count
    assert protected(h, gone).status_code == 401
    assert exchange(h, gone_id).status_code == 401
    assert protected(h, live).status_code == 401  # everyone signs in again
    h.wait_log(r"msauth: cache_epoch: .*evicted records")
    h.expect_warn(r"msauth: cache_epoch: MSAuthCache memcache:127\.0\.0\.1:%d evicted records"
                  % store.port)
    signed_in_within(h, fakems, COMEBACK)


def test_redis_restored_from_a_snapshot_forgets_no_revocation(fakems, stores, httpds):
    """A crash loses the writes after the last snapshot, and the epoch record is older
    than the snapshot: redis's run id shows it is another run, and the epoch begins again."""
    store = stores("redis", ["--dbfilename", "dump.rdb"])
    h = httpds("redis:127.0.0.1:%d" % store.port, name="redis-rdb")
    gone, gone_id = login(h, fakems)
    assert "+OK" in store.cmd("SAVE")  # the periodic snapshot, before the logout
    assert exchange(h, gone_id).status_code == 200
    logout(h, gone)
    assert protected(h, gone).status_code == 401
    expect_store_errors(h)
    store.kill()
    store.start()  # loads dump.rdb: the epoch record is there, the logout is not
    assert os.path.exists(os.path.join(store.dir, "dump.rdb"))
    statuses = []
    deadline = time.time() + COMEBACK
    while time.time() < deadline and len(statuses) < 20:
        statuses.append(protected(h, gone).status_code)
        time.sleep(0.1)
    assert 200 not in statuses, statuses
    assert exchange(h, gone_id).status_code in (401, 503)
    signed_in_within(h, fakems, COMEBACK)
    h.wait_log(r"msauth: cache_epoch: .*restarted or failed over")
    h.expect_warn(r"msauth: cache_epoch: MSAuthCache redis:127\.0\.0\.1:%d was restarted or "
                  r"failed over since its epoch began" % store.port)


def stopped_login(h, fakems):
    """A login stopped where Microsoft sends the browser back: (target, state cookie)."""
    s = requests.Session()
    back = fakems.pick_user(start_login(s, h))
    cookie = ["%s=%s" % (c.name, c.value) for c in s.cookies
              if c.name.startswith("msauth_state_")]
    assert len(cookie) == 1, s.cookies.keys()
    return back[len(h.origin):], cookie[0]


def callback(h, target, cookie):
    """The callback with its state cookie: "session", or the failure cause."""
    r = h.raw_get(target, {"Cookie": cookie})
    loc = r.getheader("Location") or ""
    sessions = [c.split(";", 1)[0][len("msauth="):] for c in r.headers.get_all("Set-Cookie") or []
                if c.startswith("msauth=")]
    assert r.status == 302, r.status
    if loc.startswith("/?jwt=") and sessions and sessions[0]:
        remember(sessions[0])
        remember(query_of(loc)["jwt"][0])
        return "session"
    return urllib.parse.unquote(loc[len("/?cause="):])


@pytest.mark.parametrize("how", ["restart", "flush"])
@pytest.mark.parametrize("kind", ["memcache", "redis"])
def test_a_spent_login_state_stays_spent_when_the_store_forgets(fakems, stores, httpds, kind, how):
    """A state cookie carries the epoch its login began in: after the store lost the
    record of its use, the old callback is refused, even with a code Microsoft would
    redeem again (code_reuse)."""
    store = stores(kind)
    h = httpds("%s:127.0.0.1:%d" % (kind, store.port), name="loss-%s-%s" % (kind, how))
    fakems.faults(token="code_reuse")
    target, cookie = stopped_login(h, fakems)
    assert callback(h, target, cookie) == "session"
    assert callback(h, target, cookie) == "invalid_state"
    if how == "restart":
        expect_store_errors(h)
        store.kill()
        store.start()
        time.sleep(1.5 if kind == "redis" else 5.5)  # the clients' retry after a dead server
    else:
        store.cmd("flush_all" if kind == "memcache" else "FLUSHALL")
    outcomes = [callback(h, target, cookie) for _ in range(3)]
    fakems.faults(token=None)
    assert "session" not in outcomes, outcomes
    signed_in_within(h, fakems, COMEBACK)


@pytest.mark.parametrize("kind", ["shmcb", "memcache", "redis"])
def test_delete_all_also_kills_the_users_unused_id_token(fakems, stores, httpds, kind):
    """DELETE /jwt_auth revokes every token of the user issued up to now: the `jwt=id`
    token of the same login too."""
    h = httpds(None if kind == "shmcb" else "%s:127.0.0.1:%d" % (kind, stores(kind).port),
               name="delete-" + kind)
    token, id_token = login(h, fakems)
    delete_all(h, token)
    assert protected(h, token).status_code == 401
    time.sleep(1.1)  # past the second of the DELETE
    assert exchange(h, id_token).status_code == 401
    fresh, fresh_id = login(h, fakems)
    assert exchange(h, fresh_id).status_code == 200


def test_a_paused_redis_answers_503_at_once(fakems, stores, httpds):
    """redis commands time out: a stalled redis costs its users 503, not a hung worker.
    (apr_memcache has no read timeout: a stalled memcached holds requests; README.)"""
    store = stores("redis")
    h = httpds("redis:127.0.0.1:%d" % store.port, name="pause-redis")
    token, _ = login(h, fakems)
    assert protected(h, token).status_code == 200
    expect_store_errors(h)
    os.killpg(store.proc.pid, signal.SIGSTOP)
    # The live verdict read just before is served for at most the bound; then the store is asked.
    time.sleep(REVOCATION_BOUND + 0.1)
    started = time.time()
    status = requests.get(h.url("/api/static.txt"), timeout=30,
                          headers={"Authorization": "Bearer " + token}).status_code
    took = time.time() - started
    os.killpg(store.proc.pid, signal.SIGCONT)
    assert status == 503 and took < 5, (status, took)
