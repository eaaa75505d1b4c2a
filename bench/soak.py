#!/usr/bin/python3
"""Soak: a real httpd under load for a while, with logins going on.

    bench/soak.sh [seconds] [warm-up seconds]      (defaults 60 and 30)

After a warm-up under the same load (every worker thread has then served
requests and logins, so its stack and allocator are in use), wrk at 64 connections (half on a protected CGI, half on a protected static
file, both with a valid session cookie) while four loops sign users in through
fakems. Afterwards: zero unexpected non-2xx responses, zero [error]/[crit]
lines, and the worker children's RSS growing under 5 % between the first and
the last 20 s. Exit status 0 when all three hold. MSAuthMetrics is on: the
first line printed is "metrics: <URL>" (contrib/grafana/render.py scrapes it).
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "test", "integration"))
from msauth import FakeMS, Httpd, query_of, seed_authorize_url  # noqa: E402

import requests  # noqa: E402

CONF = """
MSAuthLoginHost @FAKEMS@
MSAuthGraphHost @FAKEMS@
MSAuthClientID @CLIENT_ID@
MSAuthClientSecret @CLIENT_SECRET@
MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninSuccess /?jwt=id
MSAuthSigninFailure /?cause=?
# A fixed set of worker processes, so RSS is compared between the same children.
ServerLimit 2
StartServers 2
ThreadsPerChild 64
MaxRequestWorkers 128
MinSpareThreads 1
MaxSpareThreads 128
MaxConnectionsPerChild 0
# Threads give freed memory back above 128 KiB, so allocator caches filling up one thread
# at a time are not mistaken for a leak (nor hide one).
MaxMemFree 128
KeepAliveTimeout 30
<Location /cgi/>
    AuthType Microsoft
    Require valid-user
</Location>
Alias /files/ @DIR@/htdocs/
<Location /files/>
    AuthType Microsoft
    Require valid-user
</Location>
# The counters, scraped during the run by contrib/grafana/render.py.
MSAuthMetrics On
<Location /microsoft_auth/metrics>
    Require ip 127.0.0.1
</Location>
"""


def workers(parent):
    """The event MPM's worker children: the multi-threaded ones (not mod_cgid's daemon)."""
    out = []
    for pid in subprocess.run(["pgrep", "-P", str(parent)], capture_output=True,
                              text=True).stdout.split():
        try:
            status = open("/proc/%s/status" % pid).read()
        except OSError:
            continue
        threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
        if threads > 1:
            out.append((int(pid), int(re.search(r"VmRSS:\s+(\d+)", status).group(1))))
    return out


def wrk(url, cookie, seconds, conns, out):
    p = subprocess.run(["wrk", "-t", "1", "-c", str(conns), "-d", "%ds" % seconds,
                        "-H", "Cookie: msauth=" + cookie, url],
                       capture_output=True, text=True, timeout=seconds + 60)
    out[url] = p.stdout


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    work = tempfile.mkdtemp(prefix="msauth-soak-")
    ms = FakeMS(work).start()
    conf = CONF
    if os.environ.get("SOAK_OPEN_CGI"):  # the same CGI without the module, for comparison
        conf = conf.replace("<Location /cgi/>\n    AuthType Microsoft\n    Require valid-user",
                            "<Location /cgi/>\n    Require all granted")
    h = Httpd(conf, ms, name="soak").start()
    print("metrics: %s" % h.url("/microsoft_auth/metrics"), flush=True)
    try:
        # A session cookie from a real login.
        s = requests.Session()
        s.get(ms.pick_user(seed_authorize_url(ms, h)), allow_redirects=False, timeout=10)
        cookie = s.cookies["msauth"]
        assert s.get(h.url("/cgi/whoami.cgi"), timeout=10).status_code == 200
        h.new_log()

        results, samples, logins = {}, [], {"ok": 0, "failed": 0}
        stop = threading.Event()

        def login_loop():
            while not stop.is_set():
                try:
                    back = ms.pick_user(seed_authorize_url(ms, h), "alice")
                    r = requests.get(back, allow_redirects=False, timeout=10)
                    ok = r.status_code == 302 and "jwt" in query_of(r.headers["Location"])
                    logins["ok" if ok else "failed"] += 1
                except Exception:  # noqa: BLE001 - counted, reported
                    logins["failed"] += 1

        loads = [threading.Thread(target=wrk, args=(h.url("/cgi/whoami.cgi"), cookie,
                                                    warmup + seconds, 32, results)),
                 threading.Thread(target=wrk, args=(h.url("/files/static.txt"), cookie,
                                                    warmup + seconds, 32, results)),
                 threading.Thread(target=login_loop), threading.Thread(target=login_loop),
                 threading.Thread(target=login_loop), threading.Thread(target=login_loop)]
        only = os.environ.get("SOAK_ONLY")  # "static", "cgi" or "logins": to find what grows
        if only:
            loads = {"cgi": loads[:1], "static": loads[1:2], "logins": loads[2:]}[only]
        for t in loads:
            t.start()
        time.sleep(warmup)
        start = time.time()
        while time.time() - start < seconds:
            samples.append((time.time() - start, sum(rss for _, rss in workers(h.proc.pid))))
            if os.environ.get("SOAK_TRACE"):
                print("t=%.0f rss=%d" % samples[-1], flush=True)
            time.sleep(1)
        stop.set()
        for t in loads:
            t.join()

        requests_done, non2xx = 0, 0
        for url, text in results.items():
            n = re.search(r"(\d+) requests in", text)
            requests_done += int(n.group(1)) if n else 0
            m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
            non2xx += int(m.group(1)) if m else 0
            e = re.search(r"Socket errors: (.*)", text)
            print("%s: %s req/s%s" % (url.split("/", 3)[3], re.search(r"Requests/sec:\s+([\d.]+)",
                                                                     text).group(1),
                                      ", socket errors: " + e.group(1) if e else ""))
        first = [v for t, v in samples if t < 20]
        last = [v for t, v in samples if t >= seconds - 20]
        rss_first, rss_last = statistics.mean(first), statistics.mean(last)
        growth = (rss_last - rss_first) / rss_first * 100
        errors = [l for l in h.new_log().splitlines()
                  if re.search(r"\[[a-z_]*:(error|crit|alert|emerg)\]", l)]
        print("requests: %d (+ %d logins, %d failed)" % (requests_done, logins["ok"],
                                                        logins["failed"]))
        print("non-2xx: %d" % non2xx)
        print("[error]/[crit] lines: %d" % len(errors))
        for l in errors[:5]:
            print("  " + l)
        print("worker RSS: first 20 s %.0f KiB, last 20 s %.0f KiB, growth %.2f %%" % (
            rss_first, rss_last, growth))
        ok = non2xx == 0 and not errors and growth < 5 and logins["failed"] == 0
        print("soak: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        h.cleanup()
        ms.stop()


if __name__ == "__main__":
    sys.exit(main())
