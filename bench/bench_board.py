"""Scale benchmark of the tfviz TensorBoard tab (issue 28): a big generated logdir served by
TensorBoard exactly as ``tfviz board`` serves it, opened in headless Chromium.

    python bench/bench_board.py [--runs 500] [--repeats 3] [--logdir DIR] [--long 20000]
                                [--long-mode one-step|steps|both] [--view-timeout 120]

1. The logdir (written with ``tfviz.summary.Writer``, or reused when ``--logdir`` already
   holds one of the same size; otherwise a temporary folder, deleted afterwards): ``--runs``
   runs ``run-000 ...``, each with 3 filter tags ``filters/conv1..3`` x 2 steps (32x32 RGB
   pictures), 3 optimization snapshots (steps 0, 10, 20; their "step N" captions also write
   the per-step info sidecar), ``params/optimization`` and 20 scalars ``tfviz/loss_00 ..``
   of 5 points each. The time it took is printed. Only Filters and Optimization have data;
   the four other views show their "no data" text.
2. TensorBoard on it with ``tfviz.cli.board.tensorboard_argv`` (what ``tfviz board`` runs;
   tests/browser_helpers.TensorBoard), waited for until ``/overview`` lists every run.
3. The figures, each taken ``--repeats`` times and printed as median (min-max):

   * ``overview``: latency of ``GET data/plugin/tfviz/overview`` (median of 10 urllib calls
     per repeat) and its size in bytes.
   * per view, in headless Chromium (tests/browser_helpers.Chromium), with the browser cache
     disabled (DevTools ``Network.setCacheDisabled``) -- per repeat one fresh ``Page.navigate``
     to ``/#tfviz``, then each view's nav button (``nav [data-view=V]``) clicked in turn:
       - ``ready s``: from the click until ``#tfviz-view`` has ``data-view == V`` and
         ``data-state`` in ready/empty/error. The old frontend sets "ready" once every
         picture of the view has loaded or failed; the new one once its first screen is
         drawn. Recorded in the page (a MutationObserver in the tab's iframe, page clock),
         so polling adds nothing.
       - ``requests (images)``: requests to ``data/plugin/tfviz/`` sent between the click and
         ready (DevTools ``Network.requestWillBeSent``), pictures (``/image``) in brackets;
         the per-route split is printed below the table.
       - ``first view``: from ``Page.navigate`` (the top page's time origin) until the view
         the tab opens by itself (Filters here) is ready, and its requests: what opening the
         tab costs, TensorBoard's own page included; below it, split at the moment the tab
         opens (TensorBoard's page has mounted the tfviz iframe, which asks for ``index.js``):
         ``tab opens`` is TensorBoard's own page load, ``then ready`` the tfviz tab's part.
     A view already shown is left first (another view clicked, untimed), so that every timed
     click switches views. Filters is the view the tab opens with, so some or all of its
     pictures may still be in the document's image list when it is clicked (no cache setting
     reaches that) and are not fetched again (0 to all of them, from one run to the next);
     its cold figure is the ``first view`` row. A view not ready after ``--view-timeout`` s
     reports "timeout"; the page is then loaded afresh before the next view, so that its
     requests still in flight do not count against the next one. A view without data here
     reports "ready, no data" (the old frontend) or "empty".
   * ``/image`` of a short tag (filters/conv1 of the first run): the floor of one call.
   * ``--long N``: a second logdir and TensorBoard with one run ``long`` holding N small
     (8x8) pictures in one tag, and the time of one ``/image`` call (median of 20 calls at
     spread indices per repeat). ``steps``: one picture at each of N steps, TensorBoard
     started with ``--samples N`` (``tfviz board --samples``; its default keeps 1000): the
     issue's case -- the old backend reads the whole tag, N steps, for each /image call, so
     one call costs O(N) (20,000 steps: about 0.2 s against 0.07 s, with either TensorBoard
     loader). ``one-step``: the N pictures are one blob sequence at one step (a patches
     summary with a huge row count); reading one step's N blob keys turned out cheap.

How to read it: the issue's targets are every view ready in under 2 s, under 100 requests for
the first screen and /overview under 0.3 s at 500 runs. The machine's load average at start and
end is printed: other processes on a small machine slow every figure down, so compare runs
taken at a similar load. The views without data measure only the tab's own overhead.
TensorBoard's default loader (``--load_fast=auto``: the Rust data server, when installed, as
here) answers some calls about 40 ms slower than ``--load_fast=false`` whatever the logdir
(2 runs: /overview 100 against 13 ms, /image 55 against 12 ms; /series 12 ms either way): a
floor per list/read-blob call to the data server. ``--tensorboard-arg=--load_fast=false``
measures the other loader.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfviz.summary_spec import VIEWS  # noqa: E402  (no TensorFlow: the Writer is imported when writing)

ROUTE = "data/plugin/tfviz/"
TERMINAL = ("ready", "empty", "error")
NAV = "nav [data-view], button[data-view]"  # the tab's view buttons (#tfviz-view is a <main>)
FILTER_TAGS = ("conv1", "conv2", "conv3")
FILTER_STEPS = (0, 1)
SNAPSHOT_STEPS = (0, 10, 20)
SCALARS = 20
SCALAR_POINTS = 5
MARKER = "bench_board.json"  # in the logdir: what it holds, so that --logdir can reuse it


# ------------------------------------------------------------------ the logdir
def run_name(i, runs):
    return f"run-{i:0{max(3, len(str(runs - 1)))}d}"


def write_logdir(logdir, runs, seed=0):
    """``runs`` runs of filter grids, snapshots, params and scalars (see the module's text);
    returns the seconds it took. Reuses a logdir whose marker says it holds the same."""
    want = {"runs": runs, "filters": len(FILTER_TAGS), "snapshots": len(SNAPSHOT_STEPS), "scalars": SCALARS}
    marker = os.path.join(logdir, MARKER)
    if os.path.exists(marker):
        with open(marker) as fh:
            have = json.load(fh)
        if have == want:
            return None
        raise SystemExit(f"{logdir} holds a different bench logdir ({have}); give another --logdir")
    if os.path.isdir(logdir) and os.listdir(logdir):
        raise SystemExit(f"{logdir} is not empty and holds no {MARKER}; give another --logdir")
    from tfviz.summary import Writer
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(runs):
        with Writer(logdir, run=run_name(i, runs)) as w:
            for layer in FILTER_TAGS:
                for step in FILTER_STEPS:
                    w.filters(layer, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), step=step)
            w.params("optimization", {"recipe": "class_visualization", "target": f"class {i}", "steps": 20,
                                      "lr": 0.05, "seed": i})
            for step in SNAPSHOT_STEPS:
                w.snapshot(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), step)
            for s in range(SCALARS):
                for p in range(SCALAR_POINTS):
                    w.scalar(f"loss_{s:02d}", float(rng.normal()) / (p + 1), step=p * 5)
    with open(marker, "w") as fh:
        json.dump(want, fh)
    return time.perf_counter() - t0


def write_long_logdir(logdir, n, mode, seed=0):
    """One run ``long`` with one tag of ``n`` 8x8 pictures: all at step 0 (``one-step``) or
    one per step (``steps``). Reused when its marker matches; returns the seconds it took."""
    want = {"long": n, "mode": mode}
    marker = os.path.join(logdir, MARKER)
    if os.path.exists(marker):
        with open(marker) as fh:
            if json.load(fh) == want:
                return None
        shutil.rmtree(logdir)
    from tfviz.summary import Writer
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pics = rng.integers(0, 256, (min(n, 256), 8, 8, 3), dtype=np.uint8)
    with Writer(logdir, run="long") as w:
        if mode == "one-step":
            w.image("activations", "long", [pics[i % len(pics)] for i in range(n)], step=0, caption="long")
        else:
            for i in range(n):
                w.image("activations", "long", pics[i % len(pics)], step=i, caption="long")
    with open(marker, "w") as fh:
        json.dump(want, fh)
    return time.perf_counter() - t0


# ------------------------------------------------------------------ figures
def median_range(values, fmt="{:.2f}"):
    """'median (min-max)' of the numbers in VALUES; non-numbers (e.g. 'timeout') are named."""
    nums = [v for v in values if isinstance(v, (int, float))]
    other = sorted({str(v) for v in values if not isinstance(v, (int, float))})
    if not nums:
        return "/".join(other) or "-"
    text = fmt.format(statistics.median(nums))
    if len(nums) > 1:
        text += f" ({fmt.format(min(nums))}-{fmt.format(max(nums))})"
    if other:
        text += f" +{len(values) - len(nums)} {'/'.join(other)}"
    return text


def fetch(url, timeout=120):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def overview_figures(url, calls=10):
    times, size = [], None
    for _ in range(calls):
        t0 = time.perf_counter()
        body = fetch(url + "/" + ROUTE + "overview")
        times.append(time.perf_counter() - t0)
        size = len(body)
    return statistics.median(times), size


def wait_all_runs(url, runs, timeout=600):
    from browser_helpers import wait_for
    return wait_for(lambda: len(json.loads(fetch(url + "/" + ROUTE + "overview", 60))["runs"]) >= runs,
                    timeout, f"/overview to list {runs} runs")


def image_call(url, run, tag, points):
    """Seconds per /image call: the median over POINTS, a list of (step, index)."""
    times = []
    for step, index in points:
        q = urllib.parse.urlencode({"run": run, "tag": tag, "step": step, "index": index})
        t0 = time.perf_counter()
        fetch(f"{url}/{ROUTE}image?{q}")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def spread(n, mode, calls=20):
    """CALLS (step, index) pairs spread over a tag of N pictures written in MODE."""
    return [(0, i) if mode == "one-step" else (i, 0) for i in ((k * 7919) % n for k in range(calls))]


# ------------------------------------------------------------------ the browser
# Runs in every frame before its own scripts (Page.addScriptToEvaluateOnNewDocument): in the
# tfviz iframe it logs each change of #tfviz-view's (data-view, data-state) with the page clock
# (ms since the epoch) into the top window's __benchLog.
RECORDER = """(() => {
  if (window === window.top) { window.__benchLog = window.__benchLog || []; return; }
  let last = null;
  const check = () => {
    const m = document.getElementById('tfviz-view');
    const view = m ? (m.dataset.view || '') : '', state = m ? (m.dataset.state || '') : '';
    const key = view + '|' + state;
    if (!m || key === last) return;
    last = key;
    try { (window.top.__benchLog = window.top.__benchLog || []).push(
            [performance.timeOrigin + performance.now(), view, state]); } catch (e) {}
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true,
                                                 attributeFilter: ['data-view', 'data-state']});
})();"""


class Page:
    """One Chromium page on the tfviz tab: navigation, clicks and the recorder's log."""

    def __init__(self, browser, board_url, timeout):
        from browser_helpers import DOC
        self.b, self.url, self.timeout, self.doc = browser, board_url, timeout, DOC
        self.b.call("Page.addScriptToEvaluateOnNewDocument", source=RECORDER)
        self.b.call("Network.enable")
        self.b.call("Network.setCacheDisabled", cacheDisabled=True)
        self.seen = 0  # log entries already read

    def log(self):
        new = self.b.eval(f"JSON.stringify((window.__benchLog || []).slice({self.seen}))")
        entries = json.loads(new or "[]")
        self.seen += len(entries)
        return entries

    def wait_state(self, since, view=None):
        """(ms time, view, state) of the first terminal state at or after SINCE (of VIEW when
        given), or None after the timeout."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for t, v, s in self.log():
                if t >= since and s in TERMINAL and (view is None or v == view):
                    return t, v, s
            time.sleep(0.1)
        return None

    def open(self):
        """Navigate to the tab afresh; returns (ms time origin, first (t, view, state) or None)."""
        self.b.call("Page.navigate", url="about:blank")
        time.sleep(0.2)
        self.b.events.clear()
        self.b.call("Page.navigate", url=self.url + "/#tfviz")
        self.seen = 0
        from browser_helpers import wait_for
        origin = wait_for(lambda: self.b.eval(f"location.href.startsWith({json.dumps(self.url)}) && "
                                              "window.__benchLog !== undefined && performance.timeOrigin"),
                          60, "the TensorBoard page")
        return origin, self.wait_state(origin)

    def nav_ready(self):
        from browser_helpers import wait_for
        wait_for(lambda: self.b.eval(f"(() => {{ const d = {self.doc}; "
                                     f"return !!(d && d.querySelector({json.dumps(NAV)})); }})()"),
                 max(self.timeout, 60), "the tfviz tab's nav buttons")

    def shown(self):
        """(data-view, data-state) of #tfviz-view."""
        return tuple(self.b.eval(f"""(() => {{ const m = {self.doc}.querySelector('#tfviz-view');
            return [m.dataset.view || '', m.dataset.state || '']; }})()"""))

    def away_from(self, view):
        """When VIEW is shown already, show another one first (a click on the shown view
        may do nothing): every timed click then switches views. Not timed."""
        if self.shown()[0] == view:
            other = next(v for v in VIEWS if v != view)
            self.wait_state(self.click(other), other)

    def click(self, view):
        """Click VIEW's nav button; the page-clock ms just before the click."""
        self.b.events.clear()
        return self.b.eval(f"""(() => {{ const d = {self.doc};
            const b = d.querySelector({json.dumps(NAV.replace("[data-view]", f'[data-view="{view}"]'))});
            const t = d.defaultView.performance.timeOrigin + d.defaultView.performance.now();
            b.click(); return t; }})()""")

    def requests(self, start_ms, end_ms):
        """Counter of tfviz routes requested between the two page-clock times; the failed
        ones count also as "failed: <Chromium's error>"."""
        time.sleep(0.3)  # let the last Network events arrive
        self.b.eval("1")
        out, ours = Counter(), set()
        for e in self.b.events:
            if e.get("method") != "Network.requestWillBeSent":
                continue
            p = e["params"]
            url = p["request"]["url"]
            if ROUTE not in url:
                continue
            t = p.get("wallTime", 0) * 1000
            if start_ms - 1 <= t <= end_ms + 1:
                route = url.split(ROUTE, 1)[1].split("?", 1)[0]
                out["static" if route.startswith("static/") or route == "index.js" else route] += 1
                ours.add(p["requestId"])
        for e in self.b.events:
            if e.get("method") == "Network.loadingFailed" and e["params"]["requestId"] in ours:
                out["failed: " + e["params"].get("errorText", "?")] += 1
        return out

    def errors(self):
        """The error lines the tab shows (elements of class tfviz-error): their count and the first."""
        n, first = self.b.eval(f"""(() => {{ const e = [...{self.doc}.querySelectorAll('.tfviz-error')];
            return [e.length, e.length ? e[0].textContent.slice(0, 160) : '']; }})()""")
        return f"{n} error line(s), first: {first}" if n else ""


def browser_figures(page, views_with_data):
    """One repeat: the first view after a fresh navigate, then every view clicked in turn.
    Returns {"first": ("view: state" or None, s or 'timeout', Counter), view: (state, s or 'timeout',
    Counter), "notes": [error lines the tab showed]}."""
    out = {"notes": []}
    origin, first = page.open()
    if first is None:
        out["first"] = (None, "timeout", page.requests(origin, time.time() * 1000))
    else:
        t, v, s = first
        out["first"] = (f"{v}: {s}", (t - origin) / 1000, page.requests(origin, t))
        # when the tab opens: TensorBoard's page has mounted the tfviz iframe, which asks for
        # index.js (before that, the time is TensorBoard's own page load)
        opened = [e["params"].get("wallTime", 0) * 1000 for e in page.b.events
                  if e.get("method") == "Network.requestWillBeSent" and ROUTE + "index.js" in e["params"]["request"]["url"]]
        if opened:
            out["tab"] = ((min(opened) - origin) / 1000, (t - min(opened)) / 1000)
        if page.errors():
            out["notes"].append(f"first view ({v}, {s}): {page.errors()}")
    page.nav_ready()
    for view in VIEWS:
        page.away_from(view)
        t0 = page.click(view)
        got = page.wait_state(t0, view)
        if got is None:
            out[view] = ("timeout", "timeout", page.requests(t0, time.time() * 1000))
            page.open()  # its requests still in flight would count against the next view
            page.nav_ready()
            continue
        t, _, state = got
        if page.errors():
            out["notes"].append(f"{view} ({state}): {page.errors()}")
        if state == "ready" and view not in views_with_data:
            state = "ready, no data"
        out[view] = (state, (t - t0) / 1000, page.requests(t0, t))
    return out


# ------------------------------------------------------------------ main
def start_board(logdir, tmp, samples=None, extra=()):
    """browser_helpers.TensorBoard on LOGDIR (``tfviz board``'s flags); with SAMPLES and EXTRA
    flags, as ``tfviz board --samples SAMPLES LOGDIR -- EXTRA``."""
    from browser_helpers import TensorBoard
    if samples is None and not extra:
        return TensorBoard(logdir, tmp)

    class Board(TensorBoard):
        def __init__(self):
            import subprocess

            from browser_helpers import free_port, tensorboard_cmd
            from tfviz.cli.board import tensorboard_argv
            from tfviz.summary_spec import DEFAULT_SAMPLES
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.log = open(os.path.join(tmp, f"tensorboard-{self.port}.log"), "wb")
            argv = tensorboard_argv(logdir, port=self.port, samples=samples or DEFAULT_SAMPLES, reload_interval=1,
                                    extra=extra)
            self.proc = subprocess.Popen(tensorboard_cmd() + argv, stdout=self.log, stderr=subprocess.STDOUT)
    return Board()


def git_head():
    """The checkout's commit (and '+changes' when its files differ from it): what was measured."""
    import subprocess
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_text():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def fmt_s(seconds):
    return seconds if isinstance(seconds, str) else f"{seconds:.2f}"


def counts_text(counters):
    """'median total (median images)' over repeats."""
    totals = [sum(n for r, n in c.items() if not r.startswith("failed")) for c in counters]
    images = [c.get("image", 0) for c in counters]
    return f"{statistics.median(totals):g} ({statistics.median(images):g})"


def routes_text(counters):
    routes = sorted({r for c in counters for r in c})
    return ", ".join(f"{r} {statistics.median([c.get(r, 0) for c in counters]):g}" for r in routes)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--logdir", default=None, help="write the logdir here, or reuse it when it holds one")
    ap.add_argument("--long", type=int, default=20000, help="pictures in the long tag (0: skip)")
    ap.add_argument("--long-mode", choices=("one-step", "steps", "both"), default="both")
    ap.add_argument("--view-timeout", type=float, default=120.0)
    ap.add_argument("--tensorboard-arg", action="append", default=[], metavar="FLAG",
                    help="one more TensorBoard flag, e.g. --tensorboard-arg=--load_fast=false (repeatable)")
    args = ap.parse_args(argv)
    # TensorBoard (a child process) loads this checkout's tb_plugin, whatever tfviz is installed
    os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])

    from browser_helpers import chromium
    exe = chromium()
    if exe is None:
        raise SystemExit("no Chromium found (Debian: apt-get install chromium)")
    t_start = time.perf_counter()
    print(f"bench_board: {args.runs} runs, {args.repeats} repeats; load average at start {load_text()}; "
          f"{os.cpu_count()} CPUs, nice {os.nice(0)}; git {git_head()}"
          + (f"; TensorBoard flags {' '.join(args.tensorboard_arg)}" if args.tensorboard_arg else ""), flush=True)
    tmp = tempfile.mkdtemp(prefix="bench-board-")
    logdir = args.logdir or os.path.join(tmp, "logs")
    try:
        took = write_logdir(logdir, args.runs)
        print(f"logdir {logdir}: " + ("reused" if took is None else f"written in {took:.1f} s"), flush=True)
        figures, over, short = [], [], []
        board, browser = start_board(logdir, tmp, extra=args.tensorboard_arg), None
        try:
            t0 = time.perf_counter()
            board.wait()
            wait_all_runs(board.url, args.runs)
            print(f"TensorBoard {board.url} lists all {args.runs} runs after {time.perf_counter() - t0:.1f} s",
                  flush=True)
            ov = json.loads(fetch(board.url + "/" + ROUTE + "overview"))
            with_data = {t["kind"] for e in ov["runs"].values() for t in e["tags"].values()}
            browser = start_browser(exe, tmp)
            page = Page(browser, board.url, args.view_timeout)
            for r in range(args.repeats):
                over.append(overview_figures(board.url))
                short.append(image_call(board.url, run_name(0, args.runs), "filters/conv1", spread(2, "steps")))
                figures.append(browser_figures(page, with_data))
                print(f"  repeat {r + 1}: overview {over[-1][0]:.3f} s; first view "
                      f"{figures[-1]['first'][0]} {fmt_s(figures[-1]['first'][1])}; "
                      + ", ".join(f"{v} {fmt_s(figures[-1][v][1])}" for v in VIEWS), flush=True)
        finally:
            if browser is not None:
                browser.close()
            board.stop()

        longs = []
        if args.long:
            for mode in (("one-step", "steps") if args.long_mode == "both" else (args.long_mode,)):
                longs.append((mode, *long_run(args, mode, tmp)))

        print()
        print(f"{args.runs} runs, {args.repeats} repeat(s), browser cache off; median (min-max)")
        print(f"{'view':<14} {'state':<15} {'ready s':<22} requests (images)")
        first = [f["first"] for f in figures]
        print(f"{'first view':<14} {'/'.join(sorted({str(v) for v, _, _ in first})):<15} "
              f"{median_range([s for _, s, _ in first]):<22} {counts_text([c for _, _, c in first])}")
        tabs = [f["tab"] for f in figures if "tab" in f]
        if tabs:
            print(f"{'  tab opens':<14} {'':<15} {median_range([a for a, _ in tabs]):<22} (TensorBoard's own page)")
            print(f"{'  then ready':<14} {'':<15} {median_range([b for _, b in tabs]):<22} (the tfviz tab's first view)")
        for view in VIEWS:
            rows = [f[view] for f in figures]
            print(f"{view:<14} {'/'.join(sorted({s for s, _, _ in rows})):<15} "
                  f"{median_range([s for _, s, _ in rows]):<22} {counts_text([c for _, _, c in rows])}")
        print(f"overview: {median_range([o[0] for o in over], '{:.3f}')} s, {over[-1][1]:,} bytes" if over else "")
        print(f"/image of a short tag (2 steps x 1 picture): {median_range(short, '{:.3f}')} s per call")
        for mode, took_long, per_call in longs:
            print(f"long tag ({args.long} pictures, {mode}): /image {median_range(per_call, '{:.3f}')} s per call"
                  + ("" if took_long is None else f" (written in {took_long:.1f} s)"))
        print("requests per route (median):")
        print(f"  first view: {routes_text([c for _, _, c in first])}")
        for view in VIEWS:
            print(f"  {view}: {routes_text([f[view][2] for f in figures])}")
        notes = [f"  repeat {r + 1}: {n}" for r, f in enumerate(figures) for n in f["notes"]]
        if notes:
            print("what the tab showed:", *notes, sep="\n")
        print(f"load average at end {load_text()}; whole run {time.perf_counter() - t_start:.0f} s")
    except BaseException:
        print_logs(tmp)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def print_logs(tmp, lines=15):
    """The last lines of TensorBoard's and Chromium's logs (they go with the temporary folder)."""
    for name in sorted(os.listdir(tmp)):
        if name.endswith(".log"):
            with open(os.path.join(tmp, name), "rb") as fh:
                tail = fh.read().decode("utf-8", "replace").splitlines()[-lines:]
            print(f"--- {name}:", *tail, sep="\n  ", file=sys.stderr)


def start_browser(exe, tmp):
    """browser_helpers.Chromium, its process stopped when it fails to start up."""
    from browser_helpers import Chromium
    from cli_helpers import stop_process
    browser = Chromium.__new__(Chromium)
    try:
        browser.__init__(exe, tmp)
    except BaseException:
        if getattr(browser, "proc", None) is not None:
            stop_process(browser.proc, browser.log)
        raise
    return browser


def long_run(args, mode, tmp):
    """The long tag's logdir and TensorBoard; (seconds to write or None, [s per call per repeat])."""
    base = args.logdir.rstrip("/") if args.logdir else os.path.join(tmp, "logs")
    logdir = f"{base}-long{args.long}-{mode}"
    took = write_long_logdir(logdir, args.long, mode)
    board = start_board(logdir, tmp, samples=args.long if mode == "steps" else None, extra=args.tensorboard_arg)
    try:
        board.wait()
        from browser_helpers import wait_for
        tag = "activations/long"

        def loaded():
            ov = json.loads(fetch(board.url + "/" + ROUTE + "overview", 60))
            t = ov["runs"].get("long", {}).get("tags", {}).get(tag)
            return t and (t["max_length"] if mode == "one-step" else t["max_step"] + 1) >= args.long \
                and len(json.loads(fetch(f"{board.url}/{ROUTE}series?run=long&tag={tag}", 60))["steps"]) \
                == (1 if mode == "one-step" else args.long)
        wait_for(loaded, 600, f"the long tag ({mode}) to be loaded")
        per_call = [image_call(board.url, "long", tag, spread(args.long, mode)) for _ in range(args.repeats)]
    finally:
        board.stop()
    if not args.logdir:
        shutil.rmtree(logdir, ignore_errors=True)
    return took, per_call


if __name__ == "__main__":
    main()
