"""Fixtures: one fakems per session; the error log of every httpd checked after every
test; every httpd log of the session searched for secrets once all tests are done."""

import glob
import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from msauth import (FakeMS, Httpd, LIVE, LOG_ARCHIVE, MODULE, SECRETS,  # noqa: E402
                    check_live_logs, scan_archived_logs)

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_sessionstart(session):
    if not os.path.exists(MODULE):
        raise pytest.UsageError("the module is not built: %s (run scripts/test)" % MODULE)


@pytest.fixture(scope="session", autouse=True)
def _log_hygiene(request):
    """After every test of the session (and every module's servers cleaned up): no token,
    code, secret or key any test handled is in any error or access log of any httpd the
    session started, and no httpd wrote a sanitizer report."""
    yield
    left = list(LIVE)
    for h in left:  # kept running by a test that never cleaned it up: its logs count too
        try:
            h.cleanup()
        except AssertionError:
            pass
    assert not left, "httpd never cleaned up: %s" % ", ".join(h.dir for h in left)
    logs, leaks, reports = scan_archived_logs()
    kept = glob.glob(os.path.join(LOG_ARCHIVE, "*"))
    assert not kept or logs, "httpd ran but no log was kept in %s" % LOG_ARCHIVE
    ran = {os.path.basename(str(item.fspath)) for item in request.session.items}
    every = {os.path.basename(p) for p in glob.glob(os.path.join(HERE, "test_*.py"))}
    if every <= ran:  # the whole tier: it handles dozens of them
        assert len(SECRETS) > 20, "too few secrets recorded to mean anything: %d" % len(SECRETS)
    assert not leaks, "at the end of the session: secrets in httpd logs:\n" + "\n".join(leaks[:20])
    assert not reports, "at the end of the session: sanitizer reports:\n" + "\n".join(reports)


@pytest.fixture(scope="session")
def fakems():
    work = tempfile.mkdtemp(prefix="msauth-fakems-")
    ms = FakeMS(work).start()
    yield ms
    ms.stop()


@pytest.fixture(autouse=True)
def _fakems_clean(request):
    """Each test starts with no fault knobs set."""
    if "fakems" in request.fixturenames:
        request.getfixturevalue("fakems").reset()
    yield


@pytest.fixture(autouse=True)
def _error_logs():
    """After each test: no unexpected [warn]/[error]/... line in the log of any httpd still
    running (one the test cleaned up was checked then)."""
    yield
    check_live_logs()


def make_httpd(request, conf, fakems=None, **kw):
    h = Httpd(conf, fakems, **kw).start()
    request.addfinalizer(h.cleanup)
    return h
