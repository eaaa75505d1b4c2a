"""Every file of conf-examples/, as written, runs a real httpd in which a user signs in.

Only what ties an example to a real deployment is changed: Microsoft is fakems, the
secret files are made up, redis/memcached are real servers on loopback instead of
10.0.0.5, the CGI directory and the proxied backend are the test's own, and a fixed
https://www.example.com redirect URI is this server's. Then each example's own way in
is taken: a protected location opened by a browser, the seed's button, the JWT API.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest
import requests

from msauth import (CLIENT_SECRET, CONTOSO_TID, ROOT, Httpd, free_port, fresh_store_epoch,
                    query_of, seed_authorize_url, start_group, stop_group, wait_port)

EXAMPLES = os.path.join(ROOT, "conf-examples")


class Browser:
    """Carries cookies by hand (Secure ones too, over the test's plain http)."""

    def __init__(self, origin, headers=None):
        self.origin = origin
        self.headers = dict(headers or {})
        self.jar = {}

    def get(self, url, headers=None):
        h = {"Accept": "text/html", **self.headers, **(headers or {})}
        if self.jar:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.jar.items())
        r = requests.get(url, headers=h, allow_redirects=False, timeout=20)
        for c in r.raw.headers.getlist("Set-Cookie"):
            name, _, rest = c.partition("=")
            value = rest.split(";", 1)[0]
            if value == "" or re.search(r";\s*max-age=0\b", c, re.I):
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return r

    def follow(self, url):
        """Follows redirects within this server; returns the first answer that is not one."""
        for _ in range(10):
            r = self.get(url)
            if r.status_code not in (301, 302, 303, 307):
                return r
            nxt = urllib.parse.urljoin(url, r.headers["Location"])
            # Behind the example's TLS proxy the module names https URLs of this server.
            nxt = re.sub(r"^https://127\.0\.0\.1:", "http://127.0.0.1:", nxt)
            if not nxt.startswith(self.origin):
                return r
            url = nxt
        raise AssertionError("redirect loop")


def sign_in_at(browser, fakems, path, user="alice"):
    """A browser opens a protected path, picks `user` at Microsoft, comes back."""
    r = browser.follow(browser.origin + path)
    assert r.status_code == 302 and r.headers["Location"].startswith(fakems.base), (
        r.status_code, r.headers.get("Location"), r.text[:200])
    back = fakems.pick_user(r.headers["Location"], user)
    back = re.sub(r"^https://127\.0\.0\.1:", "http://127.0.0.1:", back)
    return browser.follow(back), r.headers["Location"]


class Backend:
    """The proxied app of reverse-proxy.conf: answers with the identity headers it got."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Store:
    def __init__(self, kind):
        self.port = free_port()
        if kind == "memcache":
            # As the example says: -M, refuse rather than evict.
            cmd = ["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16", "-M"]
            if os.geteuid() == 0:
                cmd += ["-u", "nobody"]
        else:
            cmd = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no"]
        assert shutil.which(cmd[0]), cmd[0] + " is not installed (scripts/deps test installs it)"
        self.proc = start_group(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_port(self.port, self.proc), kind + " did not start"

    def stop(self):
        assert not stop_group(self.proc)


def example_httpd(request, fakems, tmp_path, name):
    with open(os.path.join(EXAMPLES, name)) as f:
        text = f.read()
    os.chmod(tmp_path, 0o755)
    (tmp_path / "client-secret").write_text(CLIENT_SECRET + "\n")
    for key in ("signing-key", "old-signing-key"):
        # As the README says: head -c 48 /dev/urandom | base64.
        (tmp_path / key).write_text(subprocess.run("head -c 48 /dev/urandom | base64", shell=True,
                                                   capture_output=True, text=True).stdout)
    text = text.replace("/etc/apache2/msauth/", str(tmp_path) + "/")
    text = text.replace("https://www.example.com/microsoft_auth", "@ORIGIN@/microsoft_auth")
    text = text.replace("/usr/lib/cgi-bin/timesheets/", "@DIR@/htdocs/cgi/")
    fresh = []
    for kind, addr in (("memcache", "10.0.0.5:11211"), ("redis", "10.0.0.5:6379")):
        if "MSAuthCache %s:%s" % (kind, addr) in text:
            store = Store(kind)
            request.addfinalizer(store.stop)
            text = text.replace(addr, "127.0.0.1:%d" % store.port)
            fresh.append("%s:127.0.0.1:%d" % (kind, store.port))
    if "http://127.0.0.1:3000/" in text:
        backend = Backend()
        request.addfinalizer(backend.stop)
        text = text.replace("127.0.0.1:3000", "127.0.0.1:%d" % backend.port)
    modules = ["proxy", "proxy_http"] if "ProxyPass" in text else []
    conf = "MSAuthLoginHost @FAKEMS@\nMSAuthGraphHost @FAKEMS@\nMSAuthHTTPTimeout 3 2\n" + text
    h = Httpd(conf, fakems, modules=modules, name="ex-" + name[:-5])
    for cache in fresh:  # started empty
        h.expect_warn(fresh_store_epoch(cache))
    for d in ("intranet", "portal", "app", "api"):
        os.makedirs(os.path.join(h.htdocs, d), exist_ok=True)
        with open(os.path.join(h.htdocs, d, "index.html"), "w") as f:
            f.write("<html><body>the %s page</body></html>\n" % d)
    h.start()
    request.addfinalizer(h.cleanup)
    return h


def legacy_cgi(h, fakems):
    page, authorize = sign_in_at(Browser(h.origin), fakems, "/timesheets/whoami.cgi")
    assert "/%s/oauth2/v2.0/authorize" % CONTOSO_TID in authorize
    assert page.status_code == 200, page.text[:300]
    # MSAuthRemoteUserClaim upn, as the old scripts expect.
    assert "REMOTE_USER=alice@contoso.example" in page.text and "AUTH_TYPE=Microsoft" in page.text


def page_behind(path):
    def signs_in(h, fakems):
        page, _ = sign_in_at(Browser(h.origin), fakems, path)
        assert page.status_code == 200 and "the %s page" % path.strip("/").split("/")[0] in page.text, (
            page.status_code, page.text[:300])
    return signs_in


def reverse_proxy(h, fakems):
    # Behind the TLS-terminating load balancer the example trusts.
    b = Browser(h.origin, {"X-Forwarded-Proto": "https",
                           "X-Forwarded-Host": "127.0.0.1:%d" % h.port})
    page, authorize = sign_in_at(b, fakems, "/")
    assert "redirect_uri=https%3A%2F%2F127.0.0.1" in authorize, authorize
    assert page.status_code == 200, page.text[:300]
    seen = page.json()
    assert seen.get("x-msauth-email") == "alice@contoso.example", seen
    # The API also gets Easy Auth's headers; a client without a session gets 401 there.
    api = b.get(h.url("/api/orders"))
    assert api.status_code == 200, api.status_code
    seen = api.json()
    assert seen.get("x-ms-client-principal-name") == "alice@contoso.example", seen
    assert seen.get("x-msauth-tid") == CONTOSO_TID, seen
    r = requests.get(h.url("/api/orders"), timeout=10)
    assert r.status_code == 401, r.status_code


def seed_login(h, fakems):
    b = Browser(h.origin)
    back = fakems.pick_user(seed_authorize_url(fakems, h))
    page = b.follow(back)
    assert page.status_code == 200 and "home" in page.text, page.status_code
    me = b.get(h.url("/microsoft_auth/me"))
    assert me.status_code == 200 and me.json()["email"] == "alice@contoso.example", me.text


def jwt_api(h, fakems):
    assert requests.get(h.url("/api/"), timeout=10).status_code == 401
    back = fakems.pick_user(seed_authorize_url(fakems, h))
    landed = Browser(h.origin).follow(back)
    where = landed.headers["Location"]
    assert where.startswith("https://spa.example.com/signed-in?jwt="), where
    r = requests.post(h.url("/jwt_auth"), json={"provider": "passwordless",
                                                "token": query_of(where)["jwt"][0]}, timeout=10)
    assert r.status_code == 200, r.text
    token = r.json()["jwt"]["access_token"]
    api = requests.get(h.url("/api/"), headers={"Authorization": "Bearer " + token}, timeout=10)
    assert api.status_code == 200 and "the api page" in api.text, api.status_code


LOGINS = {
    "cluster-memcache.conf": page_behind("/app/"),
    "cluster-redis.conf": page_behind("/app/"),
    "groups.conf": page_behind("/intranet/"),
    "jwt-api.conf": jwt_api,
    "legacy-cgi.conf": legacy_cgi,
    "multi-tenant.conf": page_behind("/portal/"),
    "reverse-proxy.conf": reverse_proxy,
    "seed-login.conf": seed_login,
}


def test_every_example_has_a_login():
    names = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".conf"))
    assert names == sorted(LOGINS), "examples without a login here: %s" % (
        sorted(set(names) - set(LOGINS)))


@pytest.mark.parametrize("name", sorted(LOGINS))
def test_example_signs_a_user_in(request, fakems, tmp_path, name):
    h = example_httpd(request, fakems, tmp_path, name)
    LOGINS[name](h, fakems)
    h.check_log()
