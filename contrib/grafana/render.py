#!/usr/bin/python3
"""Draws msauth-dashboard.json's panels from a soak run: a picture of the dashboard.

    contrib/grafana/render.py [--seconds 120] [--out contrib/grafana/msauth-dashboard.png]

Grafana is not needed (nor used): this runs bench/soak.py (a real httpd with
MSAuthMetrics On under wrk load while users sign in through fakems), adds a
trickle of failing logins and bad tokens so that the failure panels have
something to show, and has Debian's Prometheus scrape <callback>/metrics once a
second. When the soak is over, every panel's own expressions (from the JSON,
Grafana's variables filled in as Grafana would: $instance = all,
$__rate_interval and $__range from the scrape interval, the step and the run's
length) are evaluated by that Prometheus and drawn with matplotlib where the
panel's gridPos puts it, with its title, unit, legend format and thresholds.
Panel types other than timeseries and stat are not drawn.

Needs `scripts/deps render` (prometheus, python3-matplotlib, wrk); leaves no
process behind. Exit status: the soak's (0 when it passed).
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))

SCRAPE = 1      # seconds between scrapes
STEP = 5        # seconds between the points of a graph ($__interval)
# Grafana's $__rate_interval: max($__interval + scrape interval, 4 * scrape interval).
RATE = max(STEP + SCRAPE, 4 * SCRAPE)

BG, PANEL, GRID, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#d8d9da", "#8e8e8e"
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9",
           "#fade2a", "#ff9830", "#96d98d"]
COLOURS = {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url, timeout=10):
    import requests
    r = requests.get(url, timeout=timeout)
    body = r.json()
    if r.status_code != 200 or body.get("status") != "success":
        raise RuntimeError("%s: %s %s" % (url.split("?")[0], r.status_code, body.get("error")))
    return body["data"]


def trickle(origin, stop, soak):
    """Failing logins and refused tokens, a few a second, beside the soak's good ones."""
    import requests
    from msauth import FakeMS
    n = 0
    while not stop.is_set():
        try:
            n += 1
            # A module-initiated login (counted as started); every third one is completed.
            s = requests.Session()
            r = s.get(origin + "/cgi/whoami.cgi", headers={"Accept": "text/html"},
                      allow_redirects=False, timeout=10)
            if n % 3 == 0 and r.status_code == 302:
                ms = FakeMS(None)
                parts = urllib.parse.urlsplit(r.headers["Location"])
                ms.base = "%s://%s" % (parts.scheme, parts.netloc)
                s.get(ms.pick_user(r.headers["Location"], "bob"), allow_redirects=False,
                      timeout=10)
            elif n % 3 == 1:  # the user cancelled at Microsoft
                requests.get(origin + "/microsoft_auth?error=access_denied&state=", timeout=10,
                             allow_redirects=False)
            if n % 5 == 0:  # an app that does not exist
                requests.get(origin + "/microsoft_auth?state=nosuchapp&code=x", timeout=10,
                             allow_redirects=False)
            if n % 7 == 0:  # a state cookie that never was
                requests.get(origin + "/microsoft_auth?state=%7Cnosuchstate&code=x", timeout=10,
                             allow_redirects=False)
            requests.get(origin + "/cgi/whoami.cgi", headers={"Authorization": "Bearer a.b.c"},
                         timeout=10)
        except Exception as e:  # noqa: BLE001 - the soak's own checks judge the server
            if soak.poll() is not None:  # the soak is over and its server gone
                return
            print("render: trickle: %s" % e, file=sys.stderr)
        stop.wait(0.5)


def fill(expr, span):
    """Grafana's variables, as Grafana fills them for "All" over the run."""
    return (expr.replace("$__rate_interval", "%ds" % RATE).replace("$__interval", "%ds" % STEP)
            .replace("$__range", "%ds" % span).replace("$instance", ".+"))


def legend(fmt, metric, default):
    if not fmt:
        return default or ", ".join("%s=%s" % kv for kv in sorted(metric.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def fmt_value(v, unit, decimals=None):
    if v is None or math.isnan(v):
        return "No data"
    if unit == "percentunit":
        return "%.*f%%" % (1 if decimals is None else decimals, v * 100)
    if unit == "s":
        return "%.0f ms" % (v * 1000) if v < 1 else "%.2f s" % v
    if decimals is not None:
        return "%.*f" % (decimals, v)
    return "%.3g" % v


def axis_unit(unit):
    return {"reqps": "per second", "s": "seconds", "short": "per interval"}.get(unit, "")


def colour_for(v, defaults):
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    colour = "#8ab8ff"
    for st in steps:
        if st.get("value") is None or (v is not None and not math.isnan(v) and v >= st["value"]):
            colour = COLOURS.get(st["color"], st["color"])
    return colour


def draw(dash, results, span_text, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = [p for p in dash["panels"] if p["type"] in ("timeseries", "stat")]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_w, unit_h, head = 0.62, 0.40, 0.9  # inches per grid column, per grid row; title band
    fig = plt.figure(figsize=(24 * unit_w, rows * unit_h + head), facecolor=BG)
    H = rows * unit_h + head
    fig.text(0.01, 1 - 0.35 / H, dash["title"], color=TEXT, fontsize=15, weight="bold", va="center")
    fig.text(0.01, 1 - 0.68 / H, "Drawn by contrib/grafana/render.py from %s's own panels (not "
             "by Grafana); the queries evaluated by Prometheus over %s" % (
                 "msauth-dashboard.json", span_text), color=DIM, fontsize=9, va="center")
    pad = 0.06
    for p in panels:
        g = p["gridPos"]
        x0, w = g["x"] / 24, g["w"] / 24
        top = (head + g["y"] * unit_h) / H
        h = g["h"] * unit_h / H
        box = fig.add_axes([x0 + 0.004, 1 - top - h + 0.006, w - 0.008, h - 0.012])
        box.set_facecolor(PANEL)
        box.set_xticks([])
        box.set_yticks([])
        for side in box.spines.values():
            side.set_color(GRID)
        box.text(0.015, 1 - 0.2 / (g["h"] * unit_h), p["title"], transform=box.transAxes,
                 color=TEXT, fontsize=10, weight="bold", va="center")
        defaults = p.get("fieldConfig", {}).get("defaults", {})
        unit = defaults.get("unit")
        series = results[p["id"]]
        if p["type"] == "stat":
            v = series[0][1] if series else None
            box.text(0.5, 0.42, fmt_value(v, unit, defaults.get("decimals")),
                     transform=box.transAxes, ha="center", va="center", fontsize=26,
                     weight="bold", color=colour_for(v, defaults))
            continue
        # The graph inside the panel, in inches: the title above it, the legend below.
        bottom_in = H - (head + (g["y"] + g["h"]) * unit_h) + 0.62
        height_in = g["h"] * unit_h - 0.62 - 0.5
        ax = fig.add_axes([x0 + 0.004 + pad * w, bottom_in / H,
                           (w - 0.008) * (1 - pad - 0.02), height_in / H])
        ax.set_facecolor(PANEL)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.grid(color=GRID, linewidth=0.6)
        ax.tick_params(colors=DIM, labelsize=7, length=0)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=timezone.utc))
        ax.xaxis.set_major_locator(mdates.SecondLocator(bysecond=[0, 30], tz=timezone.utc))
        ax.set_ylabel(axis_unit(unit), color=DIM, fontsize=7)
        scale = 1000 if unit == "s" else 1
        if unit == "s":
            ax.set_ylabel("milliseconds", color=DIM, fontsize=7)
        handles = []
        for i, (name, points) in enumerate(series):
            xs = [datetime.fromtimestamp(t, timezone.utc) for t, _ in points]
            ys = [v * scale for _, v in points]
            line, = ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], linewidth=1.3, label=name)
            ax.fill_between(xs, ys, color=PALETTE[i % len(PALETTE)], alpha=0.08, linewidth=0)
            handles.append(line)
        ax.set_ylim(bottom=0)
        if not series:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", color=DIM)
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.1), ncol=6,
                      frameon=False, fontsize=7, labelcolor=TEXT, handlelength=1.2,
                      columnspacing=1.2)
    tmp = out + ".full.png"
    fig.savefig(tmp, dpi=80, facecolor=BG)
    plt.close(fig)
    from PIL import Image
    with Image.open(tmp) as im:  # a 256-colour palette keeps the file small
        im.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
            out, optimize=True)
    os.unlink(tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=120, help="the soak's measured part")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--out", default=os.path.join(HERE, "msauth-dashboard.png"))
    args = ap.parse_args()
    subprocess.run([os.path.join(ROOT, "scripts", "deps"), "render"], check=True)
    if not os.path.exists(os.path.join(ROOT, ".libs", "mod_msauth.so")):
        subprocess.run([os.path.join(ROOT, "scripts", "build")], check=True,
                       stdout=subprocess.DEVNULL)
    with open(os.path.join(HERE, "msauth-dashboard.json")) as f:
        dash = json.load(f)

    work = tempfile.mkdtemp(prefix="msauth-render-")
    procs = []
    stop = threading.Event()
    try:
        soak = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "soak.py"),
                                 str(args.seconds), str(args.warmup)], stdout=subprocess.PIPE,
                                text=True, start_new_session=True)
        procs.append(soak)
        line = soak.stdout.readline()
        m = re.match(r"metrics: (http://[^/]+)(/\S+)", line)
        if not m:
            raise RuntimeError("bench/soak.py did not start: %r" % line)
        origin, path = m.groups()
        soak_out = []
        reader = threading.Thread(target=lambda: soak_out.extend(soak.stdout), daemon=True)
        reader.start()

        prom_port = free_port()
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: %ds\n  scrape_timeout: %ds\n"
                    "scrape_configs:\n  - job_name: msauth\n    metrics_path: %s\n"
                    "    static_configs:\n      - targets: ['%s']\n"
                    % (SCRAPE, SCRAPE, path, urllib.parse.urlsplit(origin).netloc))
        prom = subprocess.Popen(["/usr/bin/prometheus", "--config.file", work + "/prometheus.yml",
                                 "--storage.tsdb.path", work + "/tsdb", "--web.listen-address",
                                 "127.0.0.1:%d" % prom_port],
                                stdout=subprocess.DEVNULL, stderr=open(work + "/prom.log", "w"),
                                start_new_session=True)
        procs.append(prom)
        api = "http://127.0.0.1:%d/api/v1/" % prom_port
        start = time.time()
        for _ in range(100):
            try:
                get_json(api + "query?query=up", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        t = threading.Thread(target=trickle, args=(origin, stop, soak))
        t.start()
        print("render: soaking %d s (+ %d s warm-up); Prometheus scrapes %s%s every %d s"
              % (args.seconds, args.warmup, origin, path, SCRAPE), flush=True)
        status = soak.wait()
        stop.set()
        t.join()
        reader.join(timeout=10)
        end = time.time()
        time.sleep(2 * SCRAPE)  # the last scrape of a finished server fails; the one before counts
        sys.stdout.write("".join(soak_out))

        span = int(end - start)
        results = {}
        for p in dash["panels"]:
            results[p["id"]] = series = []
            for target in p.get("targets", []):
                expr = fill(target["expr"], span)
                if p["type"] == "stat":
                    data = get_json(api + "query?" + urllib.parse.urlencode(
                        {"query": expr, "time": "%.3f" % end}))
                    for r in data["result"]:
                        series.append((legend(target.get("legendFormat"), r["metric"], ""),
                                       float(r["value"][1])))
                else:
                    data = get_json(api + "query_range?" + urllib.parse.urlencode(
                        {"query": expr, "start": "%.3f" % (start + RATE), "end": "%.3f" % end,
                         "step": STEP}))
                    for r in data["result"]:
                        series.append((legend(target.get("legendFormat"), r["metric"],
                                              target.get("refId")),
                                       [(float(ts), float(v)) for ts, v in r["values"]]))
        when = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        draw(dash, results, "a %d-second bench/soak.py run (%s), scraped every %d s"
             % (span, when, SCRAPE), args.out)
        print("render: %s (%d KiB); soak %s" % (os.path.relpath(args.out), os.path.getsize(
            args.out) // 1024, "passed" if status == 0 else "FAILED"))
        return status
    finally:
        stop.set()
        for p in reversed(procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
