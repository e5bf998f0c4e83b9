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
import contextlib
import json
import os
import shutil

import pytest

from browser_helpers import DOC as _DOC
from browser_helpers import Chromium as _Chromium
from browser_helpers import TensorBoard as _TensorBoard
from browser_helpers import chromium as _chromium
from browser_helpers import get as _get
from browser_helpers import wait_for as _wait

from tfviz.summary import VIEWS


# checked before any fixture runs: without a browser, no model is loaded for nothing
pytestmark = pytest.mark.skipif(
    _chromium() is None, reason="no Chromium found (Debian: apt-get install chromium; .ci/run installs it when it can)")


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
