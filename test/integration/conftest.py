"""Fixtures: one fakems per session, httpd instances per module, log checks per test."""

import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from msauth import FakeMS, Httpd, MODULE  # noqa: E402


def pytest_sessionstart(session):
    if not os.path.exists(MODULE):
        raise pytest.UsageError("the module is not built: %s (run scripts/test)" % MODULE)


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


def make_httpd(request, conf, fakems=None, **kw):
    h = Httpd(conf, fakems, **kw).start()
    request.addfinalizer(h.cleanup)
    return h


@pytest.fixture
def log_check():
    """Collects the httpd instances whose error log is checked after the test."""
    watched = []
    yield watched
    for h in watched:
        h.check_log()
