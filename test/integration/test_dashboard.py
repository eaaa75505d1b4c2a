"""contrib/grafana/msauth-dashboard.json against what the module exports.

A real httpd with MSAuthMetrics On signs a user in through fakems and is
scraped; every metric name in the dashboard's expressions (panels and template
variables) must be in the scrape, every label it filters or groups on must be
one the module (or Prometheus, for instance and job) puts there, and every
literal label value it matches must occur. So the dashboard cannot drift from
the module: renaming a metric, a label or a cause fails here.
"""

import copy
import json
import os
import re

import requests

from msauth import FAKEMS_APP, ROOT, Httpd, seed_authorize_url

DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "msauth-dashboard.json")

CONF = FAKEMS_APP + """MSAuthSecretKey @KEY@
MSAuthLegacyState On
MSAuthSigninFailure /?cause=?
MSAuthMetrics On
<Location /microsoft_auth/metrics>
    Require ip 127.0.0.1
</Location>
"""

# PromQL's functions and aggregations (Prometheus 2.x).
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "avg", "avg_over_time", "bottomk", "ceil", "changes",
    "clamp", "clamp_max", "clamp_min", "count", "count_over_time", "count_values", "day_of_month",
    "day_of_week", "days_in_month", "delta", "deriv", "exp", "floor", "group", "histogram_quantile",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log10", "log2", "max", "max_over_time", "min", "min_over_time", "minute", "month",
    "predict_linear", "quantile", "quantile_over_time", "rate", "resets", "round", "scalar", "sgn",
    "sort", "sort_desc", "sqrt", "stddev", "stddev_over_time", "stdvar", "sum", "sum_over_time",
    "time", "timestamp", "topk", "vector", "year", "last_over_time", "present_over_time",
    }
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "inf", "nan"}
# Labels Prometheus adds to every scraped sample.
TARGET_LABELS = {"instance", "job"}

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]|[A-Za-z_:][A-Za-z0-9_:]*'
                    r"|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\S")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def parse_expr(expr):
    """What a PromQL expression uses: ([(metric, [(label, op, value)])], grouped labels,
    unknown functions)."""
    tokens = _TOKEN.findall(expr)
    metrics, grouped, unknown = [], set(), set()
    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", t):
            if t in LABEL_LISTS and nxt == "(":
                j = i + 2
                while j < len(tokens) and tokens[j] != ")":
                    if tokens[j] != ",":
                        grouped.add(tokens[j])
                    j += 1
                i = j + 1
                continue
            if nxt == "(" or (t in FUNCTIONS and nxt in ("by", "without")):
                if t not in FUNCTIONS:
                    unknown.add(t)
            elif t.lower() not in KEYWORDS:
                matchers = []
                if nxt.startswith("{"):
                    matchers = _MATCHER.findall(nxt)
                    i += 1
                metrics.append((t, matchers))
        elif t.startswith("{"):  # a selector without a name: {__name__="…"}
            for label, op, value in _MATCHER.findall(t):
                if label == "__name__" and op == "=":
                    metrics.append((value, []))
        i += 1
    return metrics, grouped, unknown


def dashboard_exprs(dash):
    """(where, expression) for every query of the dashboard."""
    out = []
    for panel in dash["panels"]:
        for panel in [panel] + panel.get("panels", []):  # rows hold panels
            for target in panel.get("targets", []):
                out.append(("panel %r %s" % (panel.get("title"), target.get("refId")),
                            target.get("expr", "")))
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var.get("query")
            out.append(("variable %r" % var["name"], q.get("query") if isinstance(q, dict) else q))
    return out


def parse_scrape(text):
    """{sample name: [labels dict, …]} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+\S+$", line)
        assert m, "not a sample line: %r" % line
        labels = dict((k, v) for k, _, v in _MATCHER.findall(m.group(2) or ""))
        samples.setdefault(m.group(1), []).append(labels)
    return samples


def drift(dash, samples):
    """Every way the dashboard's queries disagree with the scrape, one line each."""
    problems = []
    exprs = dashboard_exprs(dash)
    if not exprs:
        problems.append("the dashboard has no queries")
    for where, expr in exprs:
        # Grafana's label_values(selector, label): the selector is PromQL, the label one of its.
        lv = re.fullmatch(r"\s*label_values\((.+),\s*([A-Za-z_]\w*)\s*\)\s*", expr or "")
        metrics, grouped, unknown = parse_expr(lv.group(1) if lv else expr or "")
        if lv:
            grouped.add(lv.group(2))
        if not metrics:
            problems.append("%s: no metric in %r" % (where, expr))
        for f in sorted(unknown):
            problems.append("%s: %s() is no PromQL function" % (where, f))
        known_labels = set(TARGET_LABELS)
        for name, matchers in metrics:
            if name not in samples:
                problems.append("%s: metric %s is not exported by the module" % (where, name))
                continue
            labels = set().union(*[set(s) for s in samples[name]])
            known_labels |= labels
            for label, op, value in matchers:
                if label in TARGET_LABELS or label == "__name__":
                    continue
                if label not in labels:
                    problems.append("%s: %s has no label %s" % (where, name, label))
                elif op in ("=", "=~") and "$" not in value:
                    match = (lambda v: v == value) if op == "=" else (
                        lambda v: re.fullmatch(value, v) is not None)
                    if not any(match(s.get(label, "")) for s in samples[name]):
                        problems.append("%s: %s never has %s%s%r" % (where, name, label, op, value))
        for label in sorted(grouped - known_labels):
            problems.append("%s: no metric of %r has the label %s" % (where, expr, label))
    return problems


def scrape(request, fakems):
    h = Httpd(CONF, fakems, name="dashboard").start()
    request.addfinalizer(h.cleanup)
    back = fakems.pick_user(seed_authorize_url(fakems, h))
    assert requests.get(back, allow_redirects=False, timeout=10).status_code == 302
    r = requests.get(h.url("/microsoft_auth/metrics"), timeout=10)
    assert r.status_code == 200, r.status_code
    h.check_log()
    samples = parse_scrape(r.text)
    assert samples['msauth_logins_total'] and samples["msauth_tokens_issued_total"]
    return samples


def load():
    with open(DASHBOARD) as f:
        return json.load(f)


def test_dashboard_uses_only_what_the_module_exports(request, fakems):
    dash = load()
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("targets"), "panel %r has no query" % panel["title"]
    problems = drift(dash, scrape(request, fakems))
    assert not problems, "the dashboard drifted from the module:\n" + "\n".join(problems)


def test_drift_check_catches_what_the_module_does_not_export(request, fakems):
    """The check above can fail: a dashboard with made-up names is refused, line by line."""
    samples = scrape(request, fakems)
    dash = load()
    assert drift(dash, samples) == []
    bad = copy.deepcopy(dash)
    targets = bad["panels"][-1]["targets"]
    targets.append({"refId": "X", "expr": 'sum(rate(msauth_logins_bogus_total[5m]))'})
    targets.append({"refId": "Y", "expr": 'sum(rate(msauth_logins_total{result="maybe"}[5m]))'})
    targets.append({"refId": "Z", "expr": 'sum by (colour) (rate(msauth_logins_total[5m]))'})
    targets.append({"refId": "W", "expr": 'sum(rate(msauth_logins_total{outcome="ok"}[5m]))'})
    targets.append({"refId": "V", "expr": 'rates(msauth_logins_total[5m])'})
    problems = "\n".join(drift(bad, samples))
    assert "metric msauth_logins_bogus_total is not exported" in problems, problems
    assert "never has result='maybe'" in problems, problems
    assert "has the label colour" in problems, problems
    assert "msauth_logins_total has no label outcome" in problems, problems
    assert "rates() is no PromQL function" in problems, problems
    assert len(problems.splitlines()) == 5, problems
