#!/usr/bin/python3
"""The package tier: the Debian package, built and used the way an admin uses it.

    test/package/run.py [work-dir]

1. Copies what git knows of the tree (a clean checkout) and builds it with
   `dpkg-buildpackage -us -uc -b`; the version must be configure.ac's everywhere.
2. `apt-get install ./libapache2-mod-msauth_<version>_amd64.deb` into the machine's
   Apache layout, then `a2enmod msauth` (which enables socache_shmcb too) and
   `apache2ctl -M`.
3. Starts Debian's apache2 with `apache2ctl start` as an instance of its own
   (APACHE_CONFDIR: Debian's apache2.conf and the machine's mods-enabled, a port
   on 127.0.0.1 instead of port 80, the packaged conf-examples/legacy-cgi.conf in
   its virtual host) and signs in through fakems.
4. `apt-get purge`, and checks that nothing is left: every file `dpkg -L` listed,
   the mods-enabled links, a2enmod's state, /etc/apache2 and /var/lib/apache2 as
   they were before, Debian's apache2 service neither running nor enabled when it
   was not before.

Maintainer scripts never start or restart a service here: without a
/usr/sbin/policy-rc.d, one that refuses is put there for the run and removed after.
The last line printed is the summary; the exit status is 0 when every step passed.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))

import requests  # noqa: E402

from msauth import CLIENT_SECRET, CONTOSO_TID, FakeMS, free_port  # noqa: E402

PKG = "libapache2-mod-msauth"
POLICY = "/usr/sbin/policy-rc.d"
STATE_DIRS = ("/etc/apache2", "/var/lib/apache2")
SERVICE_LINKS = ("/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d",
                 "/etc/systemd/system/multi-user.target.wants")

T0 = time.monotonic()
LOG = None


def say(msg):
    line = "[%5.1fs] %s" % (time.monotonic() - T0, msg)
    print(line, flush=True)
    if LOG:
        LOG.write(line + "\n")
        LOG.flush()


class Failed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def run(cmd, timeout=120, ok=(0,), env=None, cwd=None, quiet=False):
    """Runs cmd (a list); returns (status, output). Fails unless the status is in ok."""
    e = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    e.update(env or {})
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, env=e, cwd=cwd, start_new_session=True)
    except subprocess.TimeoutExpired as t:
        raise Failed("%s: no answer within %d s\n%s" % (" ".join(cmd), timeout, t.output or ""))
    if LOG:
        LOG.write("$ %s\n%s\n" % (" ".join(cmd), p.stdout))
        LOG.flush()
    if not quiet:
        for line in p.stdout.splitlines():
            print("    " + line)
    if ok is not None and p.returncode not in ok:
        raise Failed("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:]))
    return p.returncode, p.stdout


# What the machine looks like --------------------------------------------------------

def snapshot():
    """Every file, link and directory of Apache's configuration and state, with contents."""
    out = {}
    for top in STATE_DIRS:
        for dirpath, dirnames, filenames in os.walk(top):
            out[dirpath] = "dir"
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    out[p] = "link -> " + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        out[p] = "file " + hashlib.sha256(f.read()).hexdigest()[:16]
    for d in SERVICE_LINKS:
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if "apache" in name:
                out[os.path.join(d, name)] = "link -> " + os.readlink(os.path.join(d, name))
    return out


def diff(before, after):
    lines = []
    for p in sorted(set(before) | set(after)):
        if before.get(p) != after.get(p):
            lines.append("%s: %s -> %s" % (p, before.get(p, "absent"), after.get(p, "absent")))
    return lines


def package_status():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else "unknown"


def listening(port):
    """Whether anything listens on TCP port `port` (any address, IPv4 or IPv6)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def system_apache_running():
    try:
        with open("/var/run/apache2/apache2.pid") as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def pids_of(marker):
    """Live processes whose command line holds `marker`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            out.append(int(entry))
    return out


def a2query_enabled(module):
    return subprocess.run(["a2query", "-q", "-m", module]).returncode == 0


# The steps ---------------------------------------------------------------------------

def configure_ac_version():
    with open(os.path.join(ROOT, "configure.ac")) as f:
        m = re.search(r"AC_INIT\(\[mod_msauth\],\s*\[([^\]]+)\]", f.read())
    check(m, "configure.ac has no AC_INIT([mod_msauth], [version])")
    return m.group(1)


def build(work):
    src = os.path.join(work, "src")
    os.makedirs(src)
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], capture_output=True, check=True).stdout
    n = 0
    for rel in files.decode().split("\0"):
        if rel and os.path.lexists(os.path.join(ROOT, rel)):
            dst = os.path.join(src, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, rel), dst, follow_symlinks=False)
            n += 1
    say("build: %d files of the tree copied to %s; dpkg-buildpackage -us -uc -b" % (n, src))
    status, out = run(["dpkg-buildpackage", "-us", "-uc", "-b"], timeout=1800, cwd=src, ok=None,
                      quiet=True, env={"DEB_BUILD_OPTIONS": "parallel=%d" % os.cpu_count()})
    with open(os.path.join(work, "build.log"), "w") as f:
        f.write(out)
    if status != 0:
        print(out[-4000:])
        raise Failed("dpkg-buildpackage exited %d (log: %s/build.log)" % (status, work))
    checks = re.findall(r"^# PASS: +(\d+)", out, re.M)
    say("build: done, make check passed in the package build (%s tests)" % "+".join(checks))
    return src


def check_version(src, work, version):
    _, changelog = run(["dpkg-parsechangelog", "-l", os.path.join(src, "debian", "changelog"),
                        "-S", "Version"], quiet=True)
    changelog = changelog.strip()
    check(changelog == version, "debian/changelog says %s, configure.ac %s" % (changelog, version))
    deb = os.path.join(work, "%s_%s_amd64.deb" % (PKG, version))
    check(os.path.exists(deb), "no %s (built: %s)" % (deb, os.listdir(work)))
    _, deb_version = run(["dpkg-deb", "-f", deb, "Version"], quiet=True)
    check(deb_version.strip() == version, "the .deb says %s" % deb_version.strip())
    say("version: %s in configure.ac, debian/changelog and %s" % (version, os.path.basename(deb)))
    return deb


def check_contents(deb):
    _, listing = run(["dpkg", "-c", deb], quiet=True)
    print("dpkg -c %s:" % os.path.basename(deb))
    for line in listing.splitlines():
        print("    " + line)
    paths = {line.split()[-1] if " -> " not in line else line.split()[-3]
             for line in listing.splitlines()}
    for want in ("./usr/lib/apache2/modules/mod_msauth.so",
                 "./etc/apache2/mods-available/msauth.load",
                 "./etc/apache2/mods-available/msauth.conf",
                 "./usr/share/doc/%s/copyright" % PKG,
                 "./usr/share/doc/%s/changelog.gz" % PKG,
                 "./usr/share/doc/%s/examples/legacy-cgi.conf" % PKG):
        check(want in paths, "the package lacks %s" % want)
    _, depends = run(["dpkg-deb", "-f", deb, "Depends"], quiet=True)
    say("Depends: " + depends.strip())
    for lib in ("libapr1", "libaprutil1", "libcurl4", "libjson-c5", "libcjose0", "libssl3",
                "libhiredis", "apache2-api-"):
        check(lib in depends, "Depends lacks %s (from the shared libraries): %s" % (lib, depends))


def install(deb):
    say("install: apt-get install ./%s" % os.path.basename(deb))
    run(["apt-get", "install", "-y", "--no-install-recommends", "./" + os.path.basename(deb)],
        cwd=os.path.dirname(deb), timeout=600, quiet=True)
    check(package_status() == "install ok installed", "dpkg says %s" % package_status())
    check(os.path.isfile("/usr/lib/apache2/modules/mod_msauth.so"), "no module in Apache's directory")
    check(not a2query_enabled("msauth"), "installing the package enabled the module")
    say("install: installed; the module is available, not enabled")


def enable():
    say("a2enmod msauth")
    run(["a2enmod", "msauth"])
    for name, target in (("msauth.load", "../mods-available/msauth.load"),
                         ("msauth.conf", "../mods-available/msauth.conf"),
                         ("socache_shmcb.load", "../mods-available/socache_shmcb.load")):
        p = os.path.join("/etc/apache2/mods-enabled", name)
        check(os.path.islink(p) and os.readlink(p) == target, "no mods-enabled/%s link" % name)
    _, mods = run(["apache2ctl", "-M"], quiet=True)
    shown = [l.strip() for l in mods.splitlines() if "msauth" in l or "socache_shmcb" in l]
    print("apache2ctl -M | grep -E 'msauth|socache_shmcb':")
    for l in shown:
        print("    " + l)
    check("msauth_module (shared)" in shown, "apache2ctl -M does not list msauth_module")
    check("socache_shmcb_module (shared)" in shown, "apache2ctl -M does not list socache_shmcb")


def make_instance(work, port, fakems):
    """An apache2 instance of Debian's layout: its apache2.conf, the machine's modules."""
    inst = os.path.join(work, "apache2")
    for d in ("run", "lock", "log", "sites-enabled"):
        os.makedirs(os.path.join(inst, d))
    for name in ("apache2.conf", "mods-available", "mods-enabled", "conf-available",
                 "conf-enabled"):
        os.symlink(os.path.join("/etc/apache2", name), os.path.join(inst, name))
    with open(os.path.join(inst, "envvars"), "w") as f:
        f.write("""unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE={inst}/run/apache2.pid
export APACHE_RUN_DIR={inst}/run
export APACHE_LOCK_DIR={inst}/lock
export APACHE_LOG_DIR={inst}/log
export LANG=C
""".format(inst=inst))
    with open(os.path.join(inst, "ports.conf"), "w") as f:
        f.write("Listen 127.0.0.1:%d\n" % port)

    secrets = os.path.join(work, "secrets")
    os.makedirs(secrets, mode=0o700)
    old = os.umask(0o077)
    try:
        with open(os.path.join(secrets, "client-secret"), "w") as f:
            f.write(CLIENT_SECRET + "\n")
        for name in ("signing-key", "old-signing-key"):
            # As the README says: head -c 48 /dev/urandom | base64 > ..., mode 0600.
            subprocess.run("head -c 48 /dev/urandom | base64 > %s/%s" % (secrets, name),
                           shell=True, check=True)
    finally:
        os.umask(old)

    cgi = os.path.join(work, "cgi-bin", "timesheets")
    os.makedirs(cgi)
    with open(os.path.join(cgi, "report"), "w") as f:
        f.write("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
                "echo \"REMOTE_USER=$REMOTE_USER\"\necho \"MSAUTH_NAME=$MSAUTH_NAME\"\n"
                "echo \"MSAUTH_TID=$MSAUTH_TID\"\n")
    os.chmod(os.path.join(cgi, "report"), 0o755)
    htdocs = os.path.join(work, "htdocs")
    os.makedirs(htdocs)
    with open(os.path.join(htdocs, "index.html"), "w") as f:
        f.write("<html><body>home</body></html>\n")

    example = "/usr/share/doc/%s/examples/legacy-cgi.conf" % PKG
    with open(example) as f:
        text = f.read()
    text = text.replace("/etc/apache2/msauth/", secrets + "/")
    text = text.replace("/usr/lib/cgi-bin/timesheets/", cgi + "/")
    with open(os.path.join(inst, "legacy-cgi.conf"), "w") as f:
        f.write(text)
    with open(os.path.join(inst, "sites-enabled", "msauth-test.conf"), "w") as f:
        f.write("""# CGI for the example's scripts, unless the machine enabled it already.
<IfModule !mod_cgi.c>
    <IfModule !mod_cgid.c>
        LoadModule cgid_module /usr/lib/apache2/modules/mod_cgid.so
    </IfModule>
</IfModule>
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1:{port}
    DocumentRoot {htdocs}
    <Directory {htdocs}>
        Require all granted
    </Directory>
    <Directory {cgi}>
        Require all granted
    </Directory>
    ErrorLog ${{APACHE_LOG_DIR}}/error.log
    CustomLog ${{APACHE_LOG_DIR}}/access.log combined
    LogLevel warn msauth:info
    # Microsoft is the stand-in on loopback.
    MSAuthLoginHost {ms}
    MSAuthGraphHost {ms}
    MSAuthHTTPTimeout 5 2
    Include {inst}/legacy-cgi.conf
</VirtualHost>
""".format(port=port, htdocs=htdocs, cgi=cgi, ms=fakems.base, inst=inst))
    return inst


def apache2ctl(inst, action, timeout=60):
    # APACHE_STARTED_BY_SYSTEMD: start this instance itself, never through systemctl
    # (which would start the machine's apache2 service).
    return run(["apache2ctl", action], timeout=timeout, quiet=True,
               env={"APACHE_CONFDIR": inst, "APACHE_STARTED_BY_SYSTEMD": "true"})


def wait_until(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def sign_in(origin, fakems, version):
    # A script (not a browser) gets 401, not a redirect.
    r = requests.get(origin + "/timesheets/report", allow_redirects=False, timeout=10)
    check(r.status_code == 401, "an API request without a session got %d" % r.status_code)
    s = requests.Session()
    r = s.get(origin + "/timesheets/report", allow_redirects=False, timeout=10,
              headers={"Accept": "text/html"})
    check(r.status_code == 302, "a browser without a session got %d, not a redirect" % r.status_code)
    where = r.headers["Location"]
    check(where.startswith(fakems.base + "/" + CONTOSO_TID + "/oauth2/v2.0/authorize?"),
          "sent to %s, not the example's tenant at Microsoft" % where)
    back = fakems.pick_user(where, "alice")
    check(back.startswith(origin + "/microsoft_auth?"), "Microsoft sent the browser to " + back)
    r = s.get(back, allow_redirects=False, timeout=20)
    check(r.status_code == 302 and r.headers["Location"].endswith("/timesheets/report"),
          "the callback answered %d %s" % (r.status_code, r.headers.get("Location")))
    r = s.get(origin + "/timesheets/report", allow_redirects=False, timeout=10)
    check(r.status_code == 200, "the CGI answered %d: %s" % (r.status_code, r.text[:300]))
    # The example sets MSAuthRemoteUserClaim upn.
    check("REMOTE_USER=alice@contoso.example" in r.text and "MSAUTH_NAME=Alice Example" in r.text
          and "MSAUTH_TID=" + CONTOSO_TID in r.text, "the CGI saw:\n" + r.text)
    agents = {q["headers"].get("user-agent") for q in fakems.requests()
              if q["path"].endswith("/oauth2/v2.0/token")}
    check(agents == {"mod_msauth/" + version}, "the module called Microsoft as %s" % agents)
    say("sign-in: alice through fakems; the CGI sees REMOTE_USER=alice@contoso.example; "
        "Microsoft saw User-Agent mod_msauth/%s" % version)


def purge():
    _, listed = run(["dpkg", "-L", PKG], quiet=True)
    files = [p for p in listed.splitlines() if p.startswith("/") and not os.path.isdir(p)]
    dirs = [p for p in listed.splitlines() if p.startswith("/") and os.path.isdir(p)]
    say("purge: apt-get purge %s (%d files, %d directories listed by dpkg -L)" % (
        PKG, len(files), len(dirs)))
    run(["apt-get", "purge", "-y", PKG], timeout=600, quiet=True)
    check(package_status() in ("unknown", "unknown ok not-installed"),
          "dpkg still knows the package: %s" % package_status())
    left = [p for p in files if os.path.lexists(p)]
    check(not left, "left behind after purge: %s" % left)
    own = [d for d in dirs if "msauth" in d]
    check(not [d for d in own if os.path.exists(d)], "directories left: %s" % own)
    links = [n for n in os.listdir("/etc/apache2/mods-enabled") if n.startswith("msauth.")]
    check(not links, "mods-enabled still has %s" % links)
    state = [os.path.join(d, n) for d, _, ns in os.walk("/var/lib/apache2") for n in ns
             if n == "msauth"]
    check(not state, "a2enmod's state still has %s" % state)
    say("purge: every listed file gone, no mods-enabled link, no a2enmod state")


def main():
    global LOG
    work = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="msauth-package-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)  # CGI scripts run as www-data
    LOG = open(os.path.join(work, "package.log"), "w")

    check(os.geteuid() == 0, "the package tier installs a package: run it as root")
    check(package_status() in ("unknown", "unknown ok not-installed"),
          "%s is on this machine (%s): this tier installs and purges it; remove it first "
          "(apt-get purge %s)" % (PKG, package_status(), PKG))
    check(not os.path.lexists("/etc/apache2/mods-available/msauth.load"),
          "/etc/apache2/mods-available/msauth.load exists and belongs to no package")
    version = configure_ac_version()
    before = snapshot()
    shmcb_before = a2query_enabled("socache_shmcb")
    apache_before = system_apache_running()
    port80_before = listening(80)
    own_policy = not os.path.lexists(POLICY)
    fakems = inst = None
    failure = None
    try:
        if own_policy:
            with open(POLICY, "w") as f:
                f.write("#!/bin/sh\n# mod_msauth package tier: no service starts during the "
                        "test.\nexit 101\n")
            os.chmod(POLICY, 0o755)
            say("no %s on this machine: one that refuses service starts is in place" % POLICY)
        src = build(work)
        deb = check_version(src, work, version)
        check_contents(deb)
        install(deb)
        enable()

        fakems = FakeMS(work).start()
        port = free_port()
        inst = make_instance(work, port, fakems)
        say("apache2ctl start: Debian's apache2.conf and mods-enabled, 127.0.0.1:%d, "
            "conf-examples/legacy-cgi.conf from the package" % port)
        apache2ctl(inst, "start")
        check(wait_until(lambda: listening(port), 20), "apache2 did not listen on %d:\n%s" % (
            port, open(os.path.join(inst, "log", "error.log")).read()[-2000:]))
        check(not listening(80) or port80_before, "something listens on port 80")
        sign_in("http://127.0.0.1:%d" % port, fakems, version)

        apache2ctl(inst, "stop")
        check(wait_until(lambda: not pids_of(inst), 20), "apache2 still runs: %s" % pids_of(inst))
        with open(os.path.join(inst, "log", "error.log")) as f:
            bad = [l for l in f if re.search(r"\[[a-z_]*:(error|crit|alert|emerg)\]", l)]
        check(not bad, "error log:\n" + "".join(bad))
        say("apache2ctl stop: stopped, no [error] line in its log")
        fakems.stop()
        fakems = None

        purge()
    except Failed as e:
        failure = str(e)
    except Exception as e:  # a bug here is a failure of the tier, reported the same way
        failure = "%s: %s" % (type(e).__name__, e)
    finally:
        # Undo whatever a failed step left, then look at the machine.
        if inst and pids_of(inst):
            subprocess.run(["apache2ctl", "stop"], env=dict(os.environ, APACHE_CONFDIR=inst),
                           capture_output=True, timeout=60)
            wait_until(lambda: not pids_of(inst), 15)
            for pid in pids_of(inst):
                os.kill(pid, 9)
        if fakems:
            fakems.stop()
        if package_status() not in ("unknown", "unknown ok not-installed"):
            subprocess.run(["apt-get", "purge", "-y", PKG], capture_output=True, timeout=600,
                           env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if not shmcb_before and a2query_enabled("socache_shmcb"):
            # a2enmod msauth enabled it: disabled again, with a2enmod's record of it.
            subprocess.run(["a2dismod", "-q", "-f", "-p", "socache_shmcb"], capture_output=True)
        # a2enmod and a2dismod keep their records in directories they make on first use;
        # the ones this run made are removed again once empty.
        for p in sorted(set(snapshot()) - set(before), reverse=True):
            if p.startswith("/var/lib/apache2/module/") and os.path.isdir(p) and not os.listdir(p):
                os.rmdir(p)
        if own_policy and os.path.exists(POLICY):
            os.unlink(POLICY)

    changed = diff(before, snapshot())
    if changed and failure is None:
        failure = "the machine's Apache layout changed:\n  " + "\n  ".join(changed)
    if system_apache_running() and not apache_before and failure is None:
        failure = "Debian's apache2 service is running"
    if listening(80) and not port80_before and failure is None:
        failure = "something listens on port 80"
    if failure is None:
        say("machine as before: /etc/apache2 and /var/lib/apache2 unchanged (%d entries), "
            "apache2 service %s" % (len(before), "running as before" if apache_before else
                                    "not running, enablement unchanged"))
    LOG.close()
    elapsed = time.monotonic() - T0
    if failure:
        print("FAILED: " + failure)
        print("package tier failed after %.0f s (logs in %s)" % (elapsed, work))
        return 1
    print("%s_%s_amd64.deb built, installed, enabled, signed in through, purged without a "
          "trace in %.0f s" % (PKG, version, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
