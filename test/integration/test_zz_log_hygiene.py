"""Runs after the other integration tests (alphabetical order): every token, code,
secret and key they used is looked for in every error and access log they produced."""

import glob
import os

from msauth import LOG_ARCHIVE, SECRETS


def test_no_secret_in_any_log():
    logs = glob.glob(os.path.join(LOG_ARCHIVE, "*", "*.log"))
    assert logs, "no logs were kept: run this with the rest of test/integration"
    assert len(SECRETS) > 20, "too few secrets recorded to mean anything"
    leaks = []
    for path in logs:
        with open(path, errors="replace") as f:
            text = f.read()
        for secret in SECRETS:
            if secret in text:
                line = next(l for l in text.splitlines() if secret in l)
                leaks.append("%s: %s… in %s" % (path, secret[:12], line[:200]))
    assert not leaks, "\n".join(leaks[:20])


def test_no_sanitizer_report_from_any_server():
    """With MSAUTH_ASAN (an --enable-asan build), any report from any httpd fails the run."""
    reports = glob.glob(os.path.join(LOG_ARCHIVE, "*", "sanitizer.*"))
    texts = [open(p, errors="replace").read()[:3000] for p in reports]
    assert not reports, "\n".join(texts)
