"""Attacks on the latest fixes, against a real httpd and fakems: MSAuthCAE's revocation
challenge (a claims challenge whose access_token.nbf is later than the session's issue ends
the session)."""
import time

import pytest
import requests

from test_cae import (CONF, NAV, Browser, _copy_of_session, _whoami, cae_httpd,
                      assert_passed_on, b64, challenge, challenge_path, nbf_claims)


@pytest.fixture(scope="module")
def httpd(request, fakems):
    return cae_httpd(request, fakems, CONF, "attacks_latest")


@pytest.fixture(autouse=True)
def _log(httpd):
    httpd.new_log()


@pytest.mark.parametrize("ahead", [3600, 10 ** 11 - 1 - int(time.time())],
                         ids=["an-hour-ahead", "year-5138"])
def test_revocation_time_to_come_ends_no_session(httpd, fakems, ahead):
    """A revocation event is in the past when Microsoft challenges for it. An nbf still to
    come (beyond MSAuthClockSkew) would end every session, the ones signed in again after the
    challenge too: each challenged page would sign the user out again. The browser is still
    sent to sign in with the claims, but no session ends."""
    b = Browser(httpd, fakems)
    b.login()
    copy = _copy_of_session(b)
    nbf = int(time.time()) + ahead
    auth = b.to_microsoft(b.get(challenge_path(challenge(b64(nbf_claims(nbf))))))
    r = _whoami(httpd, copy)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    httpd.wait_log(r"cae_refused.*the revocation the app's claims name is \d+s to come: "
                   r"no session is ended")
    # Signed in again: another page's same challenge leaves the new session alone too.
    back = fakems.pick_user(auth, "alice")
    assert b.get(back).status_code == 302
    again = _copy_of_session(b)
    b.to_microsoft(b.get(challenge_path(challenge(b64(nbf_claims(nbf))),
                                        page="/other/challenge.cgi")))
    r = _whoami(httpd, again)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert "cae_revoked" not in httpd.new_log()


def _fetch(httpd, b, path):
    return b.s.get(httpd.url(path),
                   headers={"Accept": "application/json", "Sec-Fetch-Mode": "cors"},
                   allow_redirects=False, timeout=30)


def _post(httpd, b, path):
    return b.s.post(httpd.url(path), headers=dict(NAV), data={"a": "b"}, allow_redirects=False,
                    timeout=30)


def _bearer(httpd, b, path):
    return requests.get(httpd.url(path),
                        headers=dict(NAV, Authorization="Bearer " + b.s.cookies.get("msauth")),
                        allow_redirects=False, timeout=30)


@pytest.mark.parametrize("send", [_fetch, _post, _bearer], ids=["fetch", "post", "bearer"])
def test_revocation_challenge_to_a_client_not_sent_to_sign_in(httpd, fakems, send):
    """Whoever holds a copy of the session decides how it asks: as a fetch() call, a POST or
    with the cookie's token as Authorization: Bearer, the app's revocation challenge comes
    back as the app sent it. The session it names still ends: the copy is worth nothing
    after it, as it is after the challenge of a browser's navigation."""
    b = Browser(httpd, fakems)
    b.login()
    copy = _copy_of_session(b)
    time.sleep(1.1)
    field = challenge(b64(nbf_claims(int(time.time()))))
    assert_passed_on(send(httpd, b, challenge_path(field)), [field])
    r = _whoami(httpd, copy)
    assert r.status_code == 401, (r.status_code, r.text[:200])
    httpd.wait_log(r"cae_revoked.*: the session was issued \d+s before the revocation")

