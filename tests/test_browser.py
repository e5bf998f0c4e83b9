"""End to end: the `tensorboard` CLI serves a logdir with every tfviz view; headless
Chromium (Debian's `chromium`) opens the tfviz tab through the Chrome DevTools protocol
and waits until each view has loaded all its images, none broken.

- test_tfviz_tab_in_headless_chromium: the synthetic demo logdir (`tb_plugin.demo`):
  exact image counts, the synced step sliders, and hostile captions that must stay text.
- test_readme_screenshots_of_real_cli_output: a logdir written by the real `tfviz` CLI
  (filters, activations, patches, attribute, embed, classviz, dream on the bundled models
  and photos); it takes the README's screenshots of the six views and of an empty logdir.
  It regenerates README pictures, so it runs only when asked (marked ``slow``).

Set TFVIZ_SCREENSHOTS=DIR to copy that second test's screenshots there as 256-colour PNGs
(the README's come from `TFVIZ_SCREENSHOTS=docs/img python -m pytest -m slow tests/test_browser.py`)."""
import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from cli_helpers import stop_process

from tfviz.summary import VIEWS


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# checked before any fixture runs: without a browser, no model is loaded for nothing
pytestmark = pytest.mark.skipif(
    _chromium() is None, reason="no Chromium found (Debian: apt-get install chromium; .ci/run installs it when it can)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _tensorboard_cmd():
    here = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    exe = here if os.path.exists(here) else shutil.which("tensorboard")
    return [exe] if exe else [sys.executable, "-m", "tensorboard.main"]


_stop = stop_process


class _TensorBoard:
    def __init__(self, logdir, tmp):
        from tfviz.cli.board import tensorboard_argv
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, f"tensorboard-{self.port}.log"), "wb")
        self.proc = subprocess.Popen(
            _tensorboard_cmd() + tensorboard_argv(logdir, port=self.port, reload_interval=1),
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self):
        def up():
            assert self.proc.poll() is None, "tensorboard exited; see its log"
            return json.loads(_get(self.url + "/data/plugins_listing")).get("tfviz", {}).get("enabled")
        _wait(up, 60, "tensorboard to list the tfviz plugin")

    def stop(self):
        _stop(self.proc, self.log)


class _Chromium:
    """Headless Chromium driven over the DevTools protocol (websocket-client)."""

    def __init__(self, exe, tmp):
        profile = os.path.join(tmp, "chromium-profile")
        os.makedirs(profile)
        self.log = open(os.path.join(tmp, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={profile}", "--window-size=1400,1000",
             "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(profile, "DevToolsActivePort")
        _wait(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30, "chromium to start")
        port = int(open(port_file).read().split()[0])
        pages = _wait(lambda: [t for t in json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
                               if t.get("type") == "page"], 20, "a chromium page")
        import websocket
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("exception", {}).get("description", r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))
        return path

    def errors(self):
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(e["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"]))
        return out

    def close(self):
        try:
            self.ws.close()
        finally:
            _stop(self.proc, self.log)


# The tfviz iframe inside TensorBoard's page (TensorBoard mounts dynamic plugins in one).
_DOC = """(() => { for (const f of document.querySelectorAll('iframe')) {
  try { const d = f.contentDocument; if (d && d.querySelector('#tfviz')) return d; } catch (e) {} }
  return null; })()"""


def _write_projector(logdir):
    """Projector files in the embeddings run, when tfviz.inspect already has them."""
    try:
        from tfviz.inspect import export_projector
    except ImportError:
        return False
    import numpy as np
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (12, 16, 16, 3), dtype=np.uint8)
    export_projector(rng.normal(size=(12, 8)).astype(np.float32), images, [str(i % 3) for i in range(12)],
                     os.path.join(logdir, "embeddings"))
    return True


def _need_chromium():
    return _chromium()


def _check_empty(browser, board, path):
    """An empty logdir shows how to write data; its screenshot goes to PATH."""
    browser.call("Page.navigate", url=board.url + "/#tfviz")
    state = _wait(lambda: browser.eval(f"(() => {{ const d = {_DOC}; const m = d && d.querySelector('#tfviz-view');"
                                       " return m && m.dataset.state !== 'loading' && m.dataset.state; })()"),
                  40, "the empty tfviz tab")
    assert state == "empty"
    text = browser.eval(f"{_DOC}.body.textContent")
    assert "No tfviz data" in text and "Writer(" in text and "tfviz board" in text
    return browser.screenshot(path)


def _open_tab(browser, board):
    browser.call("Page.navigate", url=board.url + "/#tfviz")
    _wait(lambda: browser.eval(f"(() => {{ const d = {_DOC}; return !!(d && d.querySelector('nav button')); }})()"),
          40, "the tfviz tab")


def _show(browser, view, timeout=30):
    """Click VIEW's tab and wait until all its images loaded, none broken: the image count."""
    browser.eval(f"{_DOC}.querySelector('nav button[data-view={view}]').click()")
    probe = (f"(() => {{ const m = {_DOC}.querySelector('#tfviz-view'); "
             f"return m.dataset.view === '{view}' && m.dataset.state !== 'loading' "
             "&& [m.dataset.state, Number(m.dataset.images), Number(m.dataset.broken)]; })()")
    state, loaded, broken = _wait(lambda: browser.eval(probe), timeout, f"the {view} view")
    if state != "ready":
        raise AssertionError(f"{view}: {state}: {browser.eval(_DOC + '.body.textContent')[:500]}")
    assert loaded > 0 and broken == 0, (view, loaded, broken)
    return loaded


def _our_errors(browser):
    return [e for e in browser.errors() if "tfviz" in e or "Content Security Policy" in e]


def _check_sizes(shots):
    for name, path in shots.items():
        assert os.path.getsize(path) > 10_000, name


def _copy_screenshots(shots):
    """With TFVIZ_SCREENSHOTS=DIR, the README's copies: 256-colour PNGs, a third of the size."""
    target = os.environ.get("TFVIZ_SCREENSHOTS")
    if not target:
        return
    from PIL import Image
    os.makedirs(target, exist_ok=True)
    for path in shots.values():
        img = Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        img.save(os.path.join(target, os.path.basename(path)), optimize=True)


@contextlib.contextmanager
def _servers_and_browser(exe, logdirs, tmp_path):
    """One TensorBoard per logdir (each up and listing tfviz) and one headless Chromium;
    all stopped afterwards."""
    boards = [_TensorBoard(str(d), str(tmp_path)) for d in logdirs]
    browser = None
    try:
        browser = _Chromium(exe, str(tmp_path))
        for b in boards:
            b.wait()
        yield browser, boards
    finally:
        if browser is not None:
            browser.close()
        for b in boards:
            b.stop()


def test_tfviz_tab_in_headless_chromium(tmp_path):
    exe = _need_chromium()
    from tb_plugin.demo import HOSTILE, write_demo
    logdir, empty = tmp_path / "logs", tmp_path / "empty"
    empty.mkdir()
    write_demo(str(logdir), snapshots=6, steps=60)
    projector = _write_projector(str(logdir))

    with _servers_and_browser(exe, [logdir, empty], tmp_path) as (browser, boards):
        shots = {"empty": _check_empty(browser, boards[1], str(tmp_path / "tensorboard_empty.png"))}

        # -- every view renders all of its images
        _open_tab(browser, boards[0])
        counts = {}
        for view in VIEWS:
            counts[view] = _show(browser, view)
            shots[view] = browser.screenshot(str(tmp_path / f"tensorboard_{view}.png"))
            # hostile strings from the logdir stay text
            if view in ("patches", "attribution", "optimization"):
                page_text = browser.eval(f"{_DOC}.body.textContent")
                assert HOSTILE in page_text, view
            if view == "patches":  # each patch: its score and source image, all of it in the tooltip
                tip = browser.eval(f"{_DOC}.querySelector('tr[data-channel=\"2\"] .tfviz-patch-fig').title")
                assert tip.startswith("channel 2, #1\nscore ") and "image " in tip and "box top " in tip, tip
                heads = browser.eval(f"[...{_DOC}.querySelectorAll('.tfviz-patches tbody th')]"
                                     ".map((t) => t.textContent)")
                assert heads == ["ch 0", "ch 1", "ch 2", "ch 3"], heads
            if view == "embeddings":
                link = browser.eval(f"{_DOC}.querySelector('.tfviz-projector').textContent")
                assert "Projector" in link
                if projector:
                    assert "no Projector files" not in link, link
                    runs = json.loads(_get(boards[0].url + "/data/plugin/projector/runs"))
                    assert "embeddings" in runs

        # 3 attribution inputs under 2x3 maps; 6 filter cards' images; 4 channels x 6 patches; 2 runs side by side
        assert counts["attribution"] == 12
        assert counts["patches"] == 24
        assert counts["activations"] == 6
        assert counts["optimization"] == 2
        assert browser.eval(f"{_DOC}.querySelectorAll('.tfviz-opt-card svg path').length") >= 4  # 2 curves x 2 runs
        assert browser.eval("window.__tfviz_pwned") is None
        assert browser.eval(f"{_DOC}.defaultView.__tfviz_pwned") is None
        assert browser.eval(f"{_DOC}.querySelectorAll('img[src=\"x\"]').length") == 0

        # the step slider moves the snapshot and the loss-curve cursor, in both runs (synced)
        snaps = f"[...{_DOC}.querySelectorAll('.tfviz-snapshot')].map((i) => i.src)"
        cursor = f"{_DOC}.querySelector('.tfviz-opt-card .tfviz-cursor').getAttribute('x1')"
        x_before = float(browser.eval(cursor))
        browser.eval(f"""(() => {{ const s = {_DOC}.querySelector('.tfviz-opt-card input[type=range]');
                         s.value = '3'; s.dispatchEvent(new Event('input')); }})()""")
        moved = _wait(lambda: (lambda v: all("step=30" in x for x in v) and v)(browser.eval(snaps)),
                      10, "both snapshots to follow the slider to step 30")
        assert len(moved) == 2
        assert float(browser.eval(cursor)) < x_before
        _wait(lambda: browser.eval(f"[...{_DOC}.querySelectorAll('.tfviz-snapshot')].every((i) => i.complete && i.naturalWidth)"),
              10, "the step-30 snapshots")
        shots["optimization"] = browser.screenshot(str(tmp_path / "tensorboard_optimization.png"))
        assert not _our_errors(browser), _our_errors(browser)
    _check_sizes(shots)   # demo pictures and a hostile string: never the README's screenshots


def _write_real_logdir(logdir, capsys):
    """A logdir from the tfviz CLI itself, run in the current folder with copies of the
    bundled photos (so captions and parameters name "chelsea.jpg", not a path); each
    command kept small. Returns the runs it wrote."""
    from cli_helpers import run_cli
    from tfviz.images import sample_photos
    photos = sample_photos()
    for name in ("chelsea", "coffee", "rocket"):
        shutil.copy(photos[name], f"{name}.jpg")
    three = ["chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    commands = [
        ["filters", "-o", "filters.png"],
        ["activations", "--limit", "32", "-o", "activations.png"],
        ["patches", "--layer", "relu4", "-c", "0-5", "-k", "6", "-o", "patches.png"],   # digits_cnn, all digits
        ["attribute", "saliency", *three, "--out", "maps"],
        ["attribute", "grad_cam", *three, "--out", "maps"],          # the same run as saliency
        ["embed", "--method", "pca", "--limit", "300", "-o", "embed.png"],
        ["classviz", "flamingo", "--steps", "48", "-o", "classviz.png"],
        ["dream", "chelsea.jpg", "--steps", "10", "--octaves", "3", "-o", "dream.png"],
    ]
    for argv in commands:
        code, _, err = run_cli([*argv, "--logdir", logdir], capsys)
        assert code == 0, (argv, err)
    return {"filters-efficientnet_lite0", "activations-efficientnet_lite0", "patches-digits_cnn", "efficientnet_lite0",
            "embed-digits_cnn", "classviz-flamingo", "dream-chelsea"}


@pytest.mark.slow
def test_readme_screenshots_of_real_cli_output(tmp_path, monkeypatch, lite0, digits, capsys):
    """The README's screenshots: the six views over real tfviz output, and an empty logdir."""
    exe = _need_chromium()
    logdir, empty, work = tmp_path / "logs", tmp_path / "empty", tmp_path / "work"
    empty.mkdir()
    work.mkdir()
    with monkeypatch.context() as m:   # only while the CLI runs: TFVIZ_SCREENSHOTS may be relative
        m.chdir(work)
        runs = _write_real_logdir(str(logdir), capsys)

    with _servers_and_browser(exe, [logdir, empty], tmp_path) as (browser, boards):
        _wait(lambda: runs <= set(json.loads(_get(boards[0].url + "/data/plugin/tfviz/overview"))["runs"]),
              60, f"tensorboard to load the runs {sorted(runs)}")
        shots = {"empty": _check_empty(browser, boards[1], str(tmp_path / "tensorboard_empty.png"))}
        _open_tab(browser, boards[0])
        counts = {}
        for view in VIEWS:
            counts[view] = _show(browser, view, timeout=60)
            shots[view] = browser.screenshot(str(tmp_path / f"tensorboard_{view}.png"))
            if view == "embeddings":
                link = browser.eval(f"{_DOC}.querySelector('.tfviz-projector').textContent")
                assert "Projector" in link and "no Projector files" not in link, link
        # one filter grid, one activation grid, 6 channels x 6 patches, saliency and Grad-CAM over 3
        # photos (image and map each), classviz and dream side by side
        assert [counts[v] for v in ("filters", "activations", "patches", "attribution", "optimization")] == \
            [1, 1, 36, 12, 2], counts
        assert counts["embeddings"] > 1, counts   # the map and the neighbour strips
        text = browser.eval(f"{_DOC}.body.textContent")
        assert "flamingo" in text, text[:500]
        assert not _our_errors(browser), _our_errors(browser)
    _check_sizes(shots)
    _copy_screenshots(shots)
