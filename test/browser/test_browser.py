"""Sign in with Microsoft in a real browser: Debian's Chromium, driven by playwright-core.

Each test runs `node test/browser/login.mjs` (a fresh Chromium profile per run) against a
real httpd with the built module and fakems, both on loopback:

  (a) module-initiated: /cgi/whoami.cgi -> Microsoft -> pick alice -> back on the CGI;
  (b) the seed's button: / -> click #microsoftLoginBtn (jQuery, Para's documented code)
      -> pick bob -> MSAuthSigninSuccess (the CGI);
  (c) the user cancels on Microsoft's page -> MSAuthSigninFailure with cause=access_denied;
  (d) continuous access evaluation: alice signs in and browses an app with MSAuthCAE On,
      fakems revokes her session, the app's next page answers with Graph's claims
      challenge, the browser lands on Microsoft's page with those claims, alice signs in
      again and the browser ends on the page it asked for, showing its content.

There is no skip: without Chromium, node or playwright-core the tests fail
(test/browser/run.sh installs them).
"""

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))

from msauth import (CAE_CGI, CLIENT_ID, CONSUMERS_TID, MODULE, SEED_SCOPE, FakeMS,  # noqa: E402
                    Httpd, install_cgi, query_of, start_group, stop_group)

LOGIN = os.path.join(HERE, "login.mjs")
ARTIFACTS = os.path.join(ROOT, "test", "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
JQUERY = "/usr/share/javascript/jquery/jquery.min.js"   # Debian's libjs-jquery
LOGIN_TIMEOUT = 90

CONF = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 2
MSAuthClientID @CLIENT_ID@
MSAuthClientSecret @CLIENT_SECRET@
MSAuthSecretKey @KEY@
# The seed's client-built login (state=<appid>) lands on the CGI.
MSAuthLegacyState On
MSAuthSigninSuccess /cgi/whoami.cgi
MSAuthSigninFailure /signin-failed.html?cause=?
<Location /cgi>
    AuthType Microsoft
    Require valid-user
</Location>
# An app that declares cp1 and whose pages pass Graph's claims challenge on.
<MSAuthApp revocable>
    MSAuthCAE On
</MSAuthApp>
Alias /revocable/ @DIR@/htdocs/cgi/
<Location /revocable/>
    AuthType Microsoft
    MSAuthApp revocable
    Require valid-user
</Location>
"""

# The seed's login page: Para's documented button code, run by jQuery (the original lacks the
# closing quote after "/microsoft_auth"; that typo is fixed here, nothing else is changed).
# "default" is the root app's appid.
INDEX_HTML = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Seed login</title>
<script src="/jquery.min.js"></script></head>
<body>
<h1>Seed login page</h1>
<p><button id="microsoftLoginBtn">Sign in with Microsoft</button></p>
<script>
var APPID = "default";
$("#microsoftLoginBtn").click(function() {
\t\twindow.location = "@FAKEMS@/common/oauth2/v2.0/authorize?" +
\t\t\t\t"response_type=code&client_id=@CLIENT_ID@" +
\t\t\t\t"&scope=https%3A%2F%2Fgraph.microsoft.com%2Fuser.read&state=" + APPID +
\t\t\t\t"&redirect_uri=" + window.location.origin + "/microsoft_auth";
\t\treturn false;
});
</script>
</body>
</html>
"""

FAILED_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in failed</title></head>
<body><h1>Sign-in failed</h1><p id="cause"></p>
<script>
document.getElementById("cause").textContent =
    "cause: " + new URLSearchParams(window.location.search).get("cause");
</script></body></html>
"""


def _prerequisites():
    missing = []
    if not os.path.exists(MODULE):
        missing.append("the module %s (make)" % MODULE)
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("Chromium %s (apt-get install chromium)" % CHROMIUM)
    if shutil.which("node") is None:
        missing.append("node")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        missing.append("playwright-core (npm install in test/browser)")
    if not os.path.exists(JQUERY):
        missing.append("jQuery %s (apt-get install libjs-jquery)" % JQUERY)
    return missing


@pytest.fixture(scope="module")
def fakems():
    missing = _prerequisites()
    if missing:  # a failure, never a skip: run.sh installs all of these
        pytest.fail("browser tests cannot run; missing: " + "; ".join(missing))
    work = tempfile.mkdtemp(prefix="msauth-browser-fakems-")
    ms = FakeMS(work).start()
    yield ms
    ms.stop()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def httpd(fakems):
    h = Httpd(CONF, fakems, name="browser")
    with open(os.path.join(h.htdocs, "index.html"), "w") as f:
        f.write(h.substitute(INDEX_HTML))
    with open(os.path.join(h.htdocs, "signin-failed.html"), "w") as f:
        f.write(FAILED_HTML)
    install_cgi(h, "cae.cgi", CAE_CGI)
    shutil.copy(JQUERY, os.path.join(h.htdocs, "jquery.min.js"))
    os.chmod(os.path.join(h.htdocs, "jquery.min.js"), 0o644)
    h.start()
    yield h
    h.cleanup()


@pytest.fixture(autouse=True)
def _fresh(fakems, httpd):
    fakems.reset()
    httpd.new_log()


def run_login(*args):
    """Runs login.mjs; returns its JSON report, failing the test on any failure."""
    cmd = [shutil.which("node") or "node", LOGIN, *args]
    p = start_group(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=LOGIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # node and the Chromium it started
        out, err = p.communicate()
        pytest.fail("login.mjs ran over %d s\nstdout: %s\nstderr: %s"
                    % (LOGIN_TIMEOUT, out[-3000:], err[-3000:]))
    finally:
        left = stop_group(p, grace=5)  # whatever of Chromium outlived node
    assert not left, "login.mjs left processes behind: %s" % left
    reports = [line for line in out.splitlines() if line.startswith("{")]
    assert reports, "login.mjs printed no report (exit %s)\nstdout: %s\nstderr: %s" % (
        p.returncode, out[-3000:], err[-3000:])
    report = json.loads(reports[-1])
    assert p.returncode == 0 and report.get("ok") is True, (
        "login.mjs failed (exit %s):\n%s\nstderr: %s"
        % (p.returncode, json.dumps(report, indent=1)[:6000], err[-3000:]))
    return report


def env_lines(report):
    return set(report["text"].splitlines())


def app_cookies(report, key="cookies"):
    """The cookies the browser keeps for the app's host, by name."""
    return {c["name"]: c for c in report[key] if c["domain"] == "127.0.0.1"}


def script_errors(report):
    """Errors in the browser's console, but for the favicon nobody serves."""
    return [e for e in report["page_errors"]
            if not urllib.parse.urlsplit(e["url"]).path == "/favicon.ico"]


def check_png(path, min_bytes=2000):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 300, (width, height)
    assert len(data) >= min_bytes, len(data)


def token_calls(fakems):
    return [q for q in fakems.requests() if q["path"].endswith("/oauth2/v2.0/token")]


def test_module_initiated_login(fakems, httpd):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-landing.png")
    if os.path.exists(shot):
        os.unlink(shot)
    start = httpd.url("/cgi/whoami.cgi")
    r = run_login("--url", start, "--user", "alice", "--screenshot", shot,
                  "--login-screenshot", os.path.join(ARTIFACTS, "browser-fakems-login.png"))

    # The browser went to fakems's page and came back to the page it first asked for.
    assert r["login_page"].startswith(fakems.base + "/common/oauth2/v2.0/authorize?"), r
    sent = query_of(r["login_page"])
    assert sent["client_id"] == [CLIENT_ID]
    assert sent["redirect_uri"] == [httpd.origin + "/microsoft_auth"]
    assert sent["state"][0].split("|")[0] in ("", "default"), sent["state"]  # the root app
    assert sent["code_challenge_method"] == ["S256"]
    assert any(n.startswith("GET " + httpd.origin + "/microsoft_auth?") for n in r["navigations"])
    assert r["url"] == start, r["url"]
    assert r["status"] == 200
    lines = env_lines(r)
    assert "REMOTE_USER=alice@contoso.example" in lines, r["text"]
    assert "AUTH_TYPE=Microsoft" in lines, r["text"]
    assert "MSAUTH_NAME=Alice Example" in lines, r["text"]
    assert "MSAUTH_EMAIL=alice@contoso.example" in lines, r["text"]
    # The module's cookies are hidden from the app.
    assert not any(l.startswith("HTTP_COOKIE=") and "msauth" in l for l in lines), r["text"]

    # Before the callback the browser held the state cookie; after it, only the session.
    before = app_cookies(r, "cookies_before")
    states = [n for n in before if n.startswith("msauth_state_")]
    assert len(states) == 1, before
    assert before[states[0]]["httpOnly"] is True
    cookies = app_cookies(r)
    assert "msauth" in cookies, r["cookies"]
    session = cookies["msauth"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["secure"] is False
    assert session["path"] == "/"
    assert not [n for n in cookies if n.startswith("msauth_state_")], cookies

    # A module-initiated login redeems its code with PKCE.
    calls = token_calls(fakems)
    assert len(calls) == 1 and calls[0]["form"].get("code_verifier"), calls
    assert script_errors(r) == []

    check_png(shot)
    httpd.check_log()


def test_seed_button_login(fakems, httpd):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-seed-button.png")
    r = run_login("--url", httpd.url("/"), "--click", "#microsoftLoginBtn", "--user", "bob",
                  "--screenshot", shot)

    # The URL the seed's JavaScript built, as fakems received it.
    assert r["login_page"].startswith(fakems.base + "/common/oauth2/v2.0/authorize?"), r
    sent = query_of(r["login_page"])
    assert sent["response_type"] == ["code"]
    assert sent["client_id"] == [CLIENT_ID]
    assert sent["scope"] == [SEED_SCOPE]
    assert sent["state"] == ["default"]
    assert sent["redirect_uri"] == [httpd.origin + "/microsoft_auth"]
    assert "code_challenge" not in sent
    # No state cookie behind a client-built login.
    assert not [n for n in app_cookies(r, "cookies_before") if n.startswith("msauth")], r

    assert r["url"] == httpd.url("/cgi/whoami.cgi"), r["url"]
    assert r["status"] == 200
    lines = env_lines(r)
    # A personal account's address is not one Microsoft vouches for to this multi-tenant
    # app (README, the identity rule): REMOTE_USER is <id>@<tid>, the address stays in
    # MSAUTH_EMAIL.
    assert "REMOTE_USER=7c7e6eb46df66116@%s" % CONSUMERS_TID in lines, r["text"]
    assert "MSAUTH_EMAIL=bob@outlook.example" in lines, r["text"]
    assert "AUTH_TYPE=Microsoft" in lines, r["text"]
    assert "MSAUTH_NAME=Bob Personal" in lines, r["text"]
    cookies = app_cookies(r)
    assert "msauth" in cookies, r["cookies"]
    assert cookies["msauth"]["httpOnly"] is True and cookies["msauth"]["sameSite"] == "Lax"

    calls = token_calls(fakems)
    assert len(calls) == 1 and "code_verifier" not in calls[0]["form"], calls
    assert script_errors(r) == [], r["page_errors"]  # jQuery and the button ran cleanly
    check_png(shot)
    httpd.check_log()


def test_user_cancels_on_microsoft_page(fakems, httpd):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-cancel.png")
    r = run_login("--url", httpd.url("/cgi/whoami.cgi"), "--cancel", "--screenshot", shot)

    parts = urllib.parse.urlsplit(r["url"])
    assert r["url"].startswith(httpd.origin + "/signin-failed.html?"), r["url"]
    assert urllib.parse.parse_qs(parts.query)["cause"] == ["access_denied"], r["url"]
    assert r["status"] == 200
    assert "cause: access_denied" in r["text"], r["text"]
    # The state cookie of the abandoned login is expired too; no session was made.
    assert [n for n in app_cookies(r, "cookies_before") if n.startswith("msauth_state_")], r
    cookies = app_cookies(r)
    assert not [n for n in cookies if n.startswith("msauth")], cookies
    assert not token_calls(fakems)
    httpd.wait_log(r"login_failed: cause=access_denied")
    check_png(shot, min_bytes=1000)
    httpd.check_log()


# Single sign-out: Microsoft's sign-out page frames the front-channel logout URL ----------

FRONTCHANNEL = os.path.join(HERE, "frontchannel.mjs")
FC_CLIENT = "5f5f5f5f-0000-4000-8000-0000000000b5"
FC_SECRET = "browser-frontchannel-secret-0123456789"
FC_PATH = "/microsoft_auth/logout/frontchannel"

FC_CONF = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 5 2
MSAuthClientID %s
MSAuthClientSecret %s
MSAuthSecretKey @KEY@
<Location /cgi>
    AuthType Microsoft
    Require valid-user
</Location>
""" % (FC_CLIENT, FC_SECRET)

# A page of another origin (the same server by another name: http://localhost:<port>) that
# frames the front-channel logout URL, as any site could.
FOREIGN_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><h1>Another site</h1>
<iframe id="fc" src="@ORIGIN@/microsoft_auth/logout/frontchannel?sid=made-up-sid"></iframe>
</body></html>
"""


def run_frontchannel(*args):
    cmd = [shutil.which("node") or "node", FRONTCHANNEL, *args]
    p = start_group(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=LOGIN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail("frontchannel.mjs ran over %d s\nstdout: %s\nstderr: %s"
                    % (LOGIN_TIMEOUT, out[-3000:], err[-3000:]))
    finally:
        left = stop_group(p, grace=5)
    assert not left, "frontchannel.mjs left processes behind: %s" % left
    reports = [line for line in out.splitlines() if line.startswith("{")]
    assert reports, "frontchannel.mjs printed no report (exit %s)\nstdout: %s\nstderr: %s" % (
        p.returncode, out[-3000:], err[-3000:])
    report = json.loads(reports[-1])
    assert p.returncode == 0 and report.get("ok") is True, (
        "frontchannel.mjs failed (exit %s):\n%s\nstderr: %s"
        % (p.returncode, json.dumps(report, indent=1)[:6000], err[-3000:]))
    return report["pages"]


def test_single_sign_out_framed_by_microsoft_and_by_nobody_else(fakems, httpd):
    """alice signs in; a page of another origin framing the front-channel logout URL is
    refused by Chromium (frame-ancestors names Microsoft's origin only) and she stays signed
    in; she signs out at Microsoft, whose page frames the URL with her session's sid: the
    frame loads, and her next visit to the protected page sends her to sign in again."""
    h = Httpd(FC_CONF, fakems, name="browser-fc")
    with open(os.path.join(h.htdocs, "foreign.html"), "w") as f:
        f.write(h.substitute(FOREIGN_HTML))
    h.start()
    try:
        fakems.control("clients", {"client_id": FC_CLIENT, "secret": FC_SECRET,
                                   "optional_claims": ["sid"],
                                   "frontchannel_logout_url": h.url(FC_PATH)})
        app = h.url("/cgi/whoami.cgi")
        pages = run_frontchannel("--app", app, "--user", "alice",
                                 "--ms-logout", fakems.base + "/common/oauth2/v2.0/logout",
                                 "--foreign", "http://localhost:%d/foreign.html" % h.port)
        signed_in = pages["signed_in"]
        assert signed_in["url"] == app and signed_in["status"] == 200, signed_in
        assert "REMOTE_USER=alice@contoso.example" in signed_in["text"], signed_in

        # Another origin: Chromium refuses to show the frame, naming the policy.
        foreign = pages["foreign"]
        refused = [e for e in foreign["console_errors"] if "frame-ancestors" in e]
        assert refused and '"frame-ancestors %s"' % fakems.base in refused[0], foreign
        assert "blocked" in refused[0] or "Refused to frame" in refused[0], foreign
        assert foreign["frames"] and not foreign["frames"][0].startswith(h.origin + FC_PATH), \
            foreign
        after = pages["after_foreign"]
        assert after["url"] == app and "REMOTE_USER=alice@contoso.example" in after["text"], after

        # Microsoft's sign-out page: the frame is its to show, and it loads.
        ms = pages["ms_logout"]
        assert "You signed out of your account" in ms["text"], ms
        assert [f.split("?")[0] for f in ms["frames"]] == [h.origin + FC_PATH], ms
        assert "sid=" in ms["frames"][0], ms
        assert not [e for e in ms["console_errors"] if "frame-ancestors" in e], ms
        h.wait_log(r"msauth: logout: front-channel logout: the sessions of a Microsoft sign-in "
                   r"ended \(1 users' records\)")
        # What alice notices: the protected page asks her to sign in again.
        gone = pages["after_sign_out"]
        assert gone["url"].startswith(fakems.base + "/common/oauth2/v2.0/authorize?"), gone
        assert "REMOTE_USER" not in gone["text"], gone
        h.check_log()
    finally:
        h.cleanup()
def test_claims_challenge_round_trip(fakems, httpd):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = os.path.join(ARTIFACTS, "browser-cae-back.png")
    again_shot = os.path.join(ARTIFACTS, "browser-cae-challenge.png")
    page = httpd.url("/revocable/cae.cgi?report=q3")
    r = run_login("--url", page, "--user", "alice", "--screenshot", shot,
                  "--browse", httpd.url("/revocable/whoami.cgi"),
                  "--revoke", fakems.base + "/_fakems/cae",
                  "--again", page, "--again-screenshot", again_shot)

    # Signed in (cp1 declared) and browsing.
    assert query_of(r["login_page"])["claims"] == [
        '{"access_token":{"xms_cc":{"values":["cp1"]}}}'], r["login_page"]
    assert r["first"]["url"] == page and r["first"]["status"] == 200, r["first"]
    assert "Quarterly figures for alice@contoso.example" in r["first"]["text"], r["first"]
    assert "REMOTE_USER=alice@contoso.example" in r["browse"]["text"], r["browse"]
    nbf = r["revoked"]["pending"]["nbf"]

    # The next navigation to the page went straight to Microsoft, with the challenge's
    # claims and cp1: the app's 401 never reached the browser.
    again = r["login_page_again"]
    assert again.startswith(fakems.base + "/common/oauth2/v2.0/authorize?"), again
    assert json.loads(query_of(again)["claims"][0]) == {"access_token": {
        "nbf": {"essential": True, "value": nbf}, "xms_cc": {"values": ["cp1"]}}}, again
    assert r["navigations_again"][0] == "GET " + page, r["navigations_again"]
    assert r["navigations_again"][1].startswith("GET " + fakems.base + "/common/"), r

    # Signed in again: back on the page it asked for, showing its content.
    assert r["url"] == page, r["url"]
    assert r["status"] == 200
    assert "Quarterly figures for alice@contoso.example" in r["text"], r["text"]
    assert fakems.control("cae?user=alice")["pending"] is None
    cookies = app_cookies(r)
    assert cookies["msauth_cae"]["httpOnly"] is True, cookies
    assert cookies["msauth_cae"]["sameSite"] == "Lax", cookies
    assert len(token_calls(fakems)) == 2
    assert script_errors(r) == [], r["page_errors"]
    httpd.wait_log(r"cae_challenge: appid=revocable: the app asked for claims")
    check_png(shot)
    check_png(again_shot)
    httpd.check_log()
