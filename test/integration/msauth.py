"""Test library: a real httpd with the freshly built module, and fakems.

Each Httpd is `/usr/sbin/apache2 -f <generated conf> -DFOREGROUND` on a free
loopback port, in its own directory under /tmp (world-readable, since CGI
scripts run as www-data). The error log of every httpd a test starts is checked
after every test and once more when the server is cleaned up: a `[warn]`, `[error]`,
`[crit]`, `[alert]` or `[emerg]` line fails the test unless httpd logs it in the
ordinary life of a test server (IGNORED_LOGNOS, by AH number) or the test declared it
first with `httpd.expect_warn(regex)` (warn) or `httpd.expect_error(regex)` (error
and worse). A declaration holds until the next check.

A log line may land after the answer that caused it (the access log is written
once the response is sent) or after the port answers (Apache listens before it
has finished starting): tests wait for a line with `httpd.wait_log(regex)`.

Every server the tests start (httpd, fakems, a cache) runs in a process group
of its own, and is stopped by signalling the whole group (`stop_group`): no
child, cgid daemon or CGI outlives its test.
"""

import atexit
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODULE = os.environ.get("MSAUTH_MODULE", os.path.join(ROOT, ".libs", "mod_msauth.so"))
FAKEMS = os.path.join(ROOT, "test", "fakems", "fakems.py")
PYTHON = "/usr/bin/python3"
APACHE = "/usr/sbin/apache2"
MODDIR = "/usr/lib/apache2/modules"

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "fakems-client-secret-0123456789"
# How stale a live verdict a server may serve from a store other servers share (README
# "Revocation"): another server's revocation, or the store failing, shows within it.
REVOCATION_BOUND = 1.0
KEY = "integration-test-key-0123456789-abcdef"
OLD_KEY = "integration-test-old-key-0123456789-xyz"
CONTOSO_TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FABRIKAM_TID = "a1b2c3d4-0000-4000-8000-000000000001"
CONSUMERS_TID = "9188040d-6c67-4c5b-b112-36a304b66dad"
SEED_SCOPE = "https://graph.microsoft.com/user.read"

# fakems as Microsoft, with its built-in client: how most test configurations begin.
FAKEMS_APP = """MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthHTTPTimeout 3 2
MSAuthClientID @CLIENT_ID@
MSAuthClientSecret @CLIENT_SECRET@
"""

# The app: a page that answers Graph's challenge while fakems says the user's session is
# revoked (as an app calling Graph with the user's token would pass it on).
CAE_CGI = r'''#!/usr/bin/python3
import json, os, sys, urllib.parse, urllib.request
user = os.environ.get("REMOTE_USER", "")
with urllib.request.urlopen("@FAKEMS@/_fakems/cae?user=" + urllib.parse.quote(user),
                            timeout=5) as r:
    state = json.load(r)
if state["www_authenticate"]:
    sys.stdout.write("Status: 401 Unauthorized\r\nWWW-Authenticate: %s\r\n"
                     "Content-Type: text/plain\r\n\r\nthe app's own 401 body\n"
                     % state["www_authenticate"])
else:
    sys.stdout.write("Content-Type: text/html\r\n\r\n<!DOCTYPE html><html><head><title>"
                     "Figures</title></head><body><h1 id=\"content\">Quarterly figures for "
                     "%s</h1></body></html>\n" % user)
'''


def install_cgi(httpd, name, text):
    """Writes a CGI into the server's cgi directory (@FAKEMS@ filled in), before start."""
    path = os.path.join(httpd.htdocs, "cgi", name)
    with open(path, "w") as f:
        f.write(httpd.substitute(text))
    os.chmod(path, 0o755)


BASE_MODULES = [
    "mpm_event", "authn_core", "authz_core", "authz_user", "authz_host", "mime", "alias",
    "dir", "env", "headers", "setenvif", "cgid", "socache_shmcb",
]


# Every token, code, secret and key the tests handle: none may reach a log.
SECRETS = {KEY, OLD_KEY, CLIENT_SECRET}
# The error and access log of every httpd the session cleaned up, one directory each.
LOG_ARCHIVE = tempfile.mkdtemp(prefix="msauth-logs-")

# Lines at warn or worse that httpd writes in the ordinary life of a test server, whatever
# the module does: never a failure. By AH number, as httpd's own test suite does.
IGNORED_LOGNOS = {
    # mpm_event when a client closes a kept-alive connection as the worker hands it back
    # to the listener (AH03093), or closes it while httpd lingers over its close (AH03092,
    # "process_lingering_close: apr_pollset_add failure"): httpd's own races, no request
    # is lost.
    "AH03093",
    "AH03092",
    # mod_ssl at startup when the OpenSSL loaded is older than the one it was built with
    # (a Debian point release of libssl3 behind apache2's): the machine, not the module.
    "AH01882",
}

WARN_LEVELS = ("warn",)
ERROR_LEVELS = ("error", "crit", "alert", "emerg")
# `[time] [module:level] ...`: httpd's ErrorLogFormat default.
_LEVEL = re.compile(r"^\[[^\]]*\] \[[^\]\[:]*:(warn|error|crit|alert|emerg)\]")
_LOGNO = re.compile(r"\b(AH\d{5}):")

# Every httpd started and not yet cleaned up: its log is checked after each test.
LIVE = []


def remember(value):
    if isinstance(value, str) and len(value) >= 16:
        SECRETS.add(value)


_SENSITIVE_PARAMS = ("code", "jwt", "token", "access_token", "id_token", "code_verifier")


def _remember_url(url):
    for name, values in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items():
        if name in _SENSITIVE_PARAMS:
            for v in values:
                remember(v)


def _remember_exchange(response, *args, **kwargs):
    """A requests hook: what went out and came back that must stay out of logs."""
    req = response.request
    _remember_url(req.url)
    auth = req.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        remember(auth[7:])
    if req.body and isinstance(req.body, (str, bytes)):
        try:
            body = json.loads(req.body)
            if isinstance(body, dict):
                # A settings API key's "value" is a secret only for the secret keys.
                secret_key = urllib.parse.urlsplit(req.url).path.rsplit("/", 1)[-1] in (
                    "ms_secret", "app_secret_key")
                for k in ("token", "value", "ms_secret", "app_secret_key"):
                    if k != "value" or secret_key:
                        remember(body.get(k))
        except ValueError:
            pass
    _remember_url(response.headers.get("Location", ""))
    for c in response.raw.headers.getlist("Set-Cookie") if response.raw is not None else []:
        name, _, rest = c.partition("=")
        if name.startswith("msauth"):
            remember(rest.split(";", 1)[0])
    if response.headers.get("Content-Type", "").startswith("application/json"):
        try:
            doc = response.json()
            if isinstance(doc, dict):
                jwt = doc.get("jwt")
                remember(jwt.get("access_token") if isinstance(jwt, dict) else jwt)
                remember(doc.get("access_token"))
        except ValueError:
            pass
    return response


_send = requests.Session.send


def _send_and_remember(self, request, **kwargs):
    return _remember_exchange(_send(self, request, **kwargs))


requests.Session.send = _send_and_remember


# Process groups started and not yet stopped: stopped at exit if a run ends early.
_GROUPS = {}


def start_group(cmd, **kw):
    """Popen in a new session (so a process group) of its own, stopped at exit at the latest."""
    proc = subprocess.Popen(cmd, start_new_session=True, **kw)
    _GROUPS[proc.pid] = proc
    return proc


def group_members(pgid):
    """Pids of the live (not zombie) processes in process group pgid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            out.append(int(entry))
    return out


def stop_group(proc, grace=10):
    """Stops proc (started by start_group) and everything in its process group.

    SIGTERM to the group, up to `grace` seconds for the group to empty, then SIGKILL to the
    group and up to 5 s more; proc is reaped. Returns the pids still alive (normally none).
    """
    if proc is None:
        return []
    _GROUPS.pop(proc.pid, None)
    pgid = proc.pid
    left = group_members(pgid)
    if not left and proc.poll() is not None:
        return []  # already gone (and its group with it): nothing to signal
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while True:
            proc.poll()
            left = group_members(pgid)
            if not left:
                proc.wait(5)
                return []
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return left


@atexit.register
def _stop_leftover_groups():
    for proc in list(_GROUPS.values()):
        stop_group(proc, grace=5)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    """Header, claims and signing input of a compact JWS (no verification)."""
    h, c, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(c)), (h + "." + c, s)


def hs256_valid(token, key=KEY):
    header, claims, (signing_input, sig) = jwt_parts(token)
    mac = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return header.get("alg") == "HS256" and hmac.compare_digest(mac, b64url_decode(sig))


def hs256_sign(claims, key=KEY, header=None):
    def enc(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    h = enc(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    c = enc(json.dumps(claims).encode())
    mac = hmac.new(key.encode(), (h + "." + c).encode(), hashlib.sha256).digest()
    return h + "." + c + "." + enc(mac)


def query_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)


class FakeMS:
    """fakems as a subprocess, with its control API."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.log = None
        self.base = None

    def start(self, extra_args=(), timeout=15):
        self.log = open(os.path.join(self.workdir, "fakems.log"), "w")
        self.proc = start_group([PYTHON, FAKEMS, "--port", "0", *extra_args],
                                stdout=subprocess.PIPE, stderr=self.log, text=True)
        # Its one line on stdout, "fakems listening on URL", waited for no longer than timeout.
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(r"listening on (https?://[\d.]+:\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("fakems did not start within %d s: %r" % (timeout, line))
        self.base = m.group(1)
        return self

    def stop(self):
        left = stop_group(self.proc, grace=5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if self.log:
            self.log.close()
        assert not left, "fakems left processes behind: %s" % left

    def control(self, what, body=None):
        url = self.base + "/_fakems/" + what
        r = requests.post(url, json=body or {}, timeout=5) if body is not None or what in (
            "reset",) else requests.get(url, timeout=5)
        r.raise_for_status()
        return r.json() if r.content else None

    def faults(self, **knobs):
        return self.control("faults", knobs)

    def reset(self):
        return self.control("reset", {})

    def requests(self):
        return self.control("requests")["requests"]

    def stats(self):
        return self.control("stats")

    def authorize_url(self, tenant="common", **params):
        return self.base + "/" + tenant + "/oauth2/v2.0/authorize?" + urllib.parse.urlencode(params)

    def pick_user(self, authorize_url, user="alice"):
        """What a person does on the login page: choose an account. Returns the redirect."""
        r = requests.get(authorize_url, allow_redirects=False, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        form = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize_url).query)
        fields = {k: v[0] for k, v in form.items()}
        fields["user"] = user
        path = urllib.parse.urlsplit(authorize_url).path
        r = requests.post(self.base + path, data=fields, allow_redirects=False, timeout=10)
        assert r.status_code == 302, (r.status_code, r.text[:300])
        return r.headers["Location"]

    def cancel(self, authorize_url):
        form = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize_url).query)
        fields = {k: v[0] for k, v in form.items()}
        fields["cancel"] = "1"
        path = urllib.parse.urlsplit(authorize_url).path
        r = requests.post(self.base + path, data=fields, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.status_code
        return r.headers["Location"]


class Httpd:
    """A real Apache with the module, configured by a snippet."""

    def __init__(self, conf, fakems=None, modules=(), name="httpd", server_name=None):
        self.dir = tempfile.mkdtemp(prefix="msauth-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.origin = "http://127.0.0.1:%d" % self.port
        # Nodes of one cluster share the public name (and port) a load balancer answers on.
        self.server_name = server_name or "127.0.0.1:%d" % self.port
        self.fakems = fakems
        self.conf_snippet = conf
        self.modules = list(BASE_MODULES) + list(modules)
        self.proc = None
        self.log_offset = 0
        self.checked = 0      # error.log up to here has been checked
        self.expected = []    # (levels, regex) declared since the last check
        self.htdocs = os.path.join(self.dir, "htdocs")
        os.makedirs(os.path.join(self.htdocs, "cgi"), exist_ok=True)
        self._write_content()

    def _write_content(self):
        with open(os.path.join(self.htdocs, "index.html"), "w") as f:
            f.write("<html><body>home</body></html>\n")
        with open(os.path.join(self.htdocs, "static.txt"), "w") as f:
            f.write("static file\n")
        cgi = os.path.join(self.htdocs, "cgi", "whoami.cgi")
        with open(cgi, "w") as f:
            f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                    "env | grep -E '^(REMOTE_USER|AUTH_TYPE|MSAUTH_|HTTP_X_MSAUTH|HTTP_X_MS_|"
                    "HTTP_COOKIE|HTTP_AUTHORIZATION)' | sort\n")
        os.chmod(cgi, 0o755)

    def substitute(self, text):
        return (text.replace("@FAKEMS@", self.fakems.base if self.fakems else "")
                .replace("@ORIGIN@", self.origin).replace("@PORT@", str(self.port))
                .replace("@DIR@", self.dir).replace("@KEY@", KEY).replace("@OLD_KEY@", OLD_KEY)
                .replace("@CLIENT_ID@", CLIENT_ID).replace("@CLIENT_SECRET@", CLIENT_SECRET))

    def config_text(self):
        loads = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, MODDIR, m)
                          for m in self.modules)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        return """ServerRoot "{dir}"
Listen 127.0.0.1:{port}
ServerName {server_name}
PidFile {dir}/httpd.pid
{loads}
LoadModule msauth_module {module}
{user}
ErrorLog {dir}/error.log
LogLevel warn msauth:info
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {dir}/access.log common
ScriptSock {dir}/cgid.sock
TypesConfig /etc/mime.types
DocumentRoot {htdocs}
Timeout 30
<Directory {htdocs}>
    Require all granted
</Directory>
<Directory {htdocs}/cgi>
    Options +ExecCGI
    AddHandler cgi-script .cgi
</Directory>
{snippet}
""".format(dir=self.dir, port=self.port, server_name=self.server_name, loads=loads, module=MODULE, user=user,
           htdocs=self.htdocs, snippet=self.substitute(self.conf_snippet))

    def write_config(self):
        path = os.path.join(self.dir, "httpd.conf")
        with open(path, "w") as f:
            f.write(self.config_text())
        return path

    def configtest(self):
        """`httpd -t`: (exit status, output)."""
        path = self.write_config()
        p = start_group([APACHE, "-t", "-f", path], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, env=self.environment())
        try:
            out, _ = p.communicate(timeout=30)
        finally:
            stop_group(p, grace=5)
        return p.returncode, out

    # Logged by the MPM once the configuration is done and the children are started.
    READY = r"AH00489: .* resuming normal operations"

    def start(self, timeout=30):
        """Starts httpd; returns once it has finished starting (its port answers earlier)."""
        path = self.write_config()
        # A restart in the same directory: the earlier start's line does not count.
        started = len([l for l in self.read_file("error.log").splitlines()
                       if re.search(self.READY, l)])
        self.stdout = open(os.path.join(self.dir, "stdout.log"), "w")
        self.proc = start_group([APACHE, "-f", path, "-DFOREGROUND"], stdout=self.stdout,
                                stderr=subprocess.STDOUT, env=self.environment())
        if self not in LIVE:
            LIVE.append(self)
        try:
            if not wait_port(self.port, self.proc, timeout):
                raise RuntimeError("httpd did not start:\n" + self.read_file("stdout.log")
                                   + self.read_file("error.log"))
            self.wait_log(self.READY, timeout, count=started + 1)
        except BaseException:
            self.cleanup()
            raise
        return self

    def environment(self):
        """With MSAUTH_ASAN set, the sanitizer runtimes load first and report to files here."""
        env = dict(os.environ)
        if os.environ.get("MSAUTH_ASAN"):
            libs = [subprocess.run(["gcc", "-print-file-name=" + lib], capture_output=True,
                                   text=True).stdout.strip() for lib in ("libasan.so", "libubsan.so")]
            env["LD_PRELOAD"] = " ".join(libs)
            # httpd frees its pools at exit, not its malloc'd globals: leaks are not the point.
            env["ASAN_OPTIONS"] = "detect_leaks=0:log_path=%s/asan" % self.dir
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=%s/ubsan" % self.dir
        return env

    def sanitizer_reports(self):
        out = []
        for name in sorted(os.listdir(self.dir)) if os.path.isdir(self.dir) else []:
            if name.startswith(("asan.", "ubsan.")):
                text = self.read_file(name)
                if not glibc_exit_tls_report(text):
                    out.append(text)
        for name in ("stdout.log", "error.log"):
            text = self.read_file(name)
            if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
                out.append(text)
        return out

    def stop(self):
        """Stops httpd and every process it started (children, cgid, CGIs): its whole group."""
        left = stop_group(self.proc)
        if getattr(self, "stdout", None):
            self.stdout.close()
        return left

    def cleanup(self):
        """Stops httpd, keeps its logs for the session's log-hygiene check, removes its
        directory; fails on what it left running and on unexpected error-log lines."""
        if self in LIVE:
            LIVE.remove(self)
        left = self.stop()
        reports = self.sanitizer_reports()
        bad = self.unexpected_log_lines(final=True) if os.path.isdir(self.dir) else []
        keep = os.path.join(LOG_ARCHIVE, os.path.basename(self.dir))
        if self.proc is not None or reports:  # a server that only ran configtest has no log
            os.makedirs(keep, exist_ok=True)
        for name in ("error.log", "access.log") if os.path.isdir(keep) else ():
            if os.path.exists(os.path.join(self.dir, name)):
                shutil.copy(os.path.join(self.dir, name), keep)
        for i, text in enumerate(reports):
            with open(os.path.join(keep, "sanitizer.%d" % i), "w") as f:
                f.write(text)
        if os.environ.get("MSAUTH_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not left, "httpd left processes behind: %s" % left
        assert not bad, unexpected_report(self, bad)

    def read_file(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def url(self, path):
        return self.origin + path

    def get(self, path, **kw):
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 30)
        return requests.get(self.url(path), **kw)

    def raw_get(self, target, headers=None):
        """GET with the request target sent byte for byte (requests would re-quote it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            resp.body = resp.read()
            return resp
        finally:
            conn.close()

    # The error log ------------------------------------------------------------------

    def wait_log(self, regex, timeout=10, name="error.log", count=1):
        """Waits for `count` lines of log `name` that match regex; returns the matching lines.

        Polls every 50 ms for up to `timeout` seconds (a line may be written after the
        answer that caused it); fails, showing the log's end, when the lines never come.
        Only whole lines count; the whole log is searched, whatever new_log() has read.
        """
        pattern = re.compile(regex)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc is not None and self.proc.poll() is not None
            text = self.read_file(name)
            lines = text.splitlines()
            if text and not text.endswith("\n"):
                lines.pop()  # being written
            found = [line for line in lines if pattern.search(line)]
            if len(found) >= count:
                return found
            if exited or time.monotonic() >= deadline:
                why = "httpd exited (status %s)" % self.proc.returncode if exited else \
                    "%g s passed" % timeout
                raise AssertionError("%s: %d of %d line(s) matching %r when %s; it ends:\n%s%s" % (
                    name, len(found), count, regex, why, "\n".join(lines[-20:]),
                    "\nstdout.log:\n" + self.read_file("stdout.log")[-2000:] if exited else ""))
            time.sleep(0.05)

    def new_log(self):
        """Error-log text written since the last call."""
        text = self.read_file("error.log")
        new, self.log_offset = text[self.log_offset:], len(text)
        return new

    def expect_error(self, regex):
        """Declares that an [error] (or worse) line matching regex may come before the next
        check."""
        self.expected.append((ERROR_LEVELS, re.compile(regex)))

    def expect_warn(self, regex):
        """Declares that a [warn] line matching regex may come before the next check."""
        self.expected.append((WARN_LEVELS, re.compile(regex)))

    def unexpected_log_lines(self, final=False):
        """The error-log lines at warn or worse since the last check that are neither in
        IGNORED_LOGNOS nor declared; the declarations are spent. Only whole lines are read
        unless `final` (httpd has stopped)."""
        text = self.read_file("error.log")
        if not final:
            text = text[:text.rfind("\n") + 1]
        new, self.checked = text[self.checked:], self.checked + len(text[self.checked:])
        bad = []
        for line in new.splitlines():
            m = _LEVEL.search(line)
            if not m:
                continue
            logno = _LOGNO.search(line)
            if logno and logno.group(1) in IGNORED_LOGNOS:
                continue
            if any(m.group(1) in levels and e.search(line) for levels, e in self.expected):
                continue
            bad.append(line)
        self.expected = []
        return bad

    def check_log(self):
        """Fails on unexpected error-log lines since the last check, and on sanitizer reports."""
        assert os.path.isdir(self.dir), "check_log after cleanup: the log is gone"
        bad = self.unexpected_log_lines()
        assert not bad, unexpected_report(self, bad)
        reports = self.sanitizer_reports()
        assert not reports, "sanitizer reports:\n" + "\n".join(r[:3000] for r in reports)


def glibc_exit_tls_report(text):
    """ASan's "double-free" inside glibc 2.36's _dl_update_slotinfo while a child exits
    (_dl_fini running a library's destructor through ASan's __tls_get_addr interceptor):
    glibc's and the sanitizer's own, with no frame of the module in it."""
    return ("_dl_update_slotinfo" in text and "_dl_fini" in text
            and "mod_msauth" not in text and " msa_" not in text)


def unexpected_report(httpd, bad, most=20):
    more = "\n… and %d more" % (len(bad) - most) if len(bad) > most else ""
    return "%s: unexpected error-log lines:\n%s%s" % (httpd.dir, "\n".join(bad[:most]), more)


def fresh_store_epoch(cache):
    """For expect_warn: what the first server to use a memcached or redis nobody has used
    yet logs (it cannot tell a new store from one that lost its records)."""
    return r"msauth: cache_epoch: MSAuthCache %s has no epoch record " % re.escape(cache)


def check_live_logs():
    """check_log on every httpd still running, all of them checked before any failure."""
    failures = []
    for h in list(LIVE):
        try:
            h.check_log()
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, "\n".join(failures)


def scan_archived_logs():
    """(logs, leaks, sanitizer reports) over every httpd log the session kept."""
    logs = sorted(glob.glob(os.path.join(LOG_ARCHIVE, "*", "*.log")))
    leaks = []
    for path in logs:
        with open(path, errors="replace") as f:
            text = f.read()
        for secret in SECRETS:
            if secret in text:
                line = next(l for l in text.splitlines() if secret in l)
                leaks.append("%s: %s… in %s" % (path, secret[:12], line[:200]))
    reports = []
    for path in sorted(glob.glob(os.path.join(LOG_ARCHIVE, "*", "sanitizer.*"))):
        with open(path, errors="replace") as f:
            reports.append("%s:\n%s" % (path, f.read()[:3000]))
    return logs, leaks, reports


def seed_authorize_url(fakems, httpd, appid=None, scope=SEED_SCOPE, client_id=CLIENT_ID):
    """The authorize URL exactly as the seed's JavaScript button builds it."""
    params = [("response_type", "code"), ("client_id", client_id), ("scope", scope)]
    if appid is not None:
        params.append(("state", appid))
    params.append(("redirect_uri", httpd.origin + "/microsoft_auth"))
    return fakems.base + "/common/oauth2/v2.0/authorize?" + urllib.parse.urlencode(params)


def callback_path(location):
    """The path and query of a redirect to the callback, checked to be on our origin."""
    parts = urllib.parse.urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")
