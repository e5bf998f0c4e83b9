"""``tfviz demo``: the whole lecture on the offline defaults, its gallery page and its
TensorBoard logs; one failing method does not stop the others; Ctrl-C keeps the gallery.

- test_demo_quick_end_to_end runs ``tfviz demo --quick`` in this process (it shares the
  session's models) and checks every expected file, every picture the page references,
  and that the page names no external URL: in the default tier on one cheap method of every
  section (``--only``, every view of the tfviz tab), the whole quick demo in the slow tier.
- test_gallery_in_headless_chromium opens a small demo's gallery in Chromium and checks
  that every image loads.
- test_gallery_python_calls (slow) runs every Python call the gallery shows.
"""
import json
import os
import re
import shlex
from html import escape as html_escape

import numpy as np
import pytest
from PIL import Image

from cli_helpers import run_cli

from tfviz.cli.demo import tour as demo


def _pictures_in(html):
    return re.findall(r"<img [^>]*src='([^']+)'", html)


def _check_page(out, summary):
    """Every image the page references exists, decodes and is not blank; no external URL,
    script or stylesheet link."""
    html = open(os.path.join(out, "index.html"), encoding="utf-8").read()
    srcs = _pictures_in(html)
    assert len(srcs) == sum(len(s["pictures"]) for s in summary)
    for src in srcs:
        assert not re.match(r"[a-z]+:|/", src), src           # relative to the page
        with Image.open(os.path.join(out, src)) as im:
            a = np.asarray(im.convert("RGB"))
        assert a.std() > 1.0, src
    assert "http://" not in html and "https://" not in html and "<script" not in html and "<link" not in html
    assert not re.search(r"""(src|href)=['"]?//""", html)
    return html


# the cheapest methods that still cover every section of the lecture and every view of the
# tfviz tab: the default tier's end-to-end run (about 35 s of the quick demo's 130 s on one
# core); the whole quick demo runs in the slow tier
EVERY_SECTION = "filters,activations,patches,embed,saliency,grad_cam,fool,texture,stylizer"


@pytest.mark.parametrize("only", [pytest.param(EVERY_SECTION, id="every-section"),
                                  pytest.param(None, id="all", marks=pytest.mark.slow)])
def test_demo_quick_end_to_end(only, tmp_path, capsys, lite0, digits):
    out = str(tmp_path / "demo")
    code, stdout, err = run_cli(["demo", "--quick", "-o", out, *(["--only", only] if only else [])], capsys)
    assert code == 0, stdout + err
    expected = demo.select(demo.steps(out, os.path.join(out, "logs"), quick=True), only)
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert [s["name"] for s in summary] == [s.name for s in expected]
    assert {s["section"] for s in summary} == set(demo.SECTIONS)        # every section of the lecture
    assert [s["name"] for s in summary if s["status"] != "ok"] == []
    for s in summary:
        if s["name"] == "trust":
            assert "deletion AUC" in s["output"] and "grad_cam" in s["output"]
        else:
            assert s["pictures"], s["name"]
    html = _check_page(out, summary)
    for s in expected:                                                 # the exact command lines, shown
        for c in s.commands:
            assert html_escape("tfviz " + shlex.join(c)) in html, c
    assert html.count("<section") == len(expected)
    # TensorBoard logs for the tfviz tab: one run per command that takes --logdir
    runs = [r for r in os.listdir(os.path.join(out, "logs"))
            if any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(out, "logs", r)))]
    assert len(runs) >= (14 if only is None else 7), runs
    from test_tb_plugin import get_json, make_client   # what the tab's backend lists: all six views
    from tfviz.summary import VIEWS
    overview = get_json(make_client(os.path.join(out, "logs")), "/overview")
    assert set(VIEWS) <= {t["kind"] for r in overview["runs"].values() for t in r["tags"].values()}
    assert f"{len(summary)} of {len(summary)} methods done" in stdout
    assert os.path.abspath(os.path.join(out, "index.html")) in stdout and "tfviz board" in stdout
    assert "[1/" in err and err.count("ok, ") == len(summary)          # progress names each method


def _quick_steps_with(monkeypatch, edit):
    real = demo.steps

    def fake(out, logdir, quick=False, stylizer=None):
        return edit(real(out, logdir, quick, stylizer))
    monkeypatch.setattr(demo, "steps", fake)


def test_demo_one_failure_reported_others_run(tmp_path, capsys, monkeypatch, lite0):
    def edit(steps):
        for s in steps:
            if s.name == "filters":
                s.commands[0][1:1] = ["--layer", "no_such_layer"]
        return steps
    _quick_steps_with(monkeypatch, edit)
    out = str(tmp_path / "demo")
    code, stdout, err = run_cli(["demo", "--quick", "--only", "filters,activations", "-o", out], capsys)
    assert code == 1
    summary = {s["name"]: s for s in json.load(open(os.path.join(out, "summary.json")))}
    assert summary["filters"]["status"] == "failed" and "no_such_layer" in summary["filters"]["error"]
    assert summary["activations"]["status"] == "ok" and summary["activations"]["pictures"]
    assert "FAILED filters" in stdout and "1 of 2 methods done" in stdout
    html = _check_page(out, list(summary.values()))
    assert "class='failed'" in html and "no_such_layer" in html
    assert "Traceback" in open(os.path.join(out, "filters", "log.txt")).read()


def test_demo_ctrl_c_keeps_the_gallery(tmp_path):
    """Ctrl-C during the second method: the first one's picture stays in the gallery, the
    second says interrupted, the third was not run."""
    out = str(tmp_path / "demo")
    calls = []

    def invoke(args):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        folder = args[args.index("-o") + 1]
        Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)).save(
            os.path.join(folder, "x.png"))
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(out, os.path.join(out, "logs"), quick=True, only="filters,activations,patches",
                      invoke=invoke)
    summary = {s["name"]: s for s in json.load(open(os.path.join(out, "summary.json")))}
    assert [summary[n]["status"] for n in ("filters", "activations", "patches")] == ["ok", "interrupted", "pending"]
    html = _check_page(out, list(summary.values()))
    assert _pictures_in(html) == ["filters/x.png"] and "interrupted" in html and "not run yet" in html


def test_demo_only_unknown_lists_valid_names(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, err = run_cli(["demo", "--only", "attribution,fourier", "-o", str(out)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'fourier'" in err and "fast-style" in err and "saliency" in err
    assert not out.exists()
    code, stdout, err = run_cli(["demo", "--quick", "--only", "deconvnet", "-o", str(out)], capsys)
    assert code == 2 and "without --quick" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()                                  # refused before anything is written


def test_only_selects_sections_and_methods():
    s = demo.steps("o", "l", quick=True)
    assert [x.name for x in demo.select(s, "fast-style")] == ["stylizer", "texture_net"]
    assert [x.name for x in demo.select(s, "saliency,inside")] == [
        "filters", "activations", "patches", "neighbors", "embed", "saliency"]
    full = {x.name for x in demo.steps("o", "l")}
    assert {"deconvnet", "all"} <= full - {x.name for x in s}            # the full run has more
    with pytest.raises(demo.OptionError, match="without --quick"):
        demo.select(s, "deconvnet")


def test_gallery_in_headless_chromium(tmp_path):
    """The gallery page in a real browser: every picture loads, no console error. The
    pictures are stand-ins written by a fake ``invoke`` (the end-to-end test checks the real
    ones decode), so no model is needed."""
    from test_browser import _Chromium, _chromium, _wait
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium found (Debian: apt-get install chromium; .ci/run installs it when it can)")
    out = str(tmp_path / "demo")
    rng = np.random.default_rng(0)

    def invoke(args):
        if "-o" in args:
            for i in range(2):
                Image.fromarray(rng.integers(0, 255, (48 + 16 * i, 64, 3), dtype=np.uint8)).save(
                    os.path.join(args[args.index("-o") + 1], f"{args[0]}-{i}.png"))
        else:
            print("method  deletion AUC\nsaliency  0.1 <b>not markup</b>")
    demo.run_demo(out, os.path.join(out, "logs"), quick=True, invoke=invoke)
    n = len(_pictures_in(open(os.path.join(out, "index.html")).read()))
    browser = _Chromium(exe, str(tmp_path))
    try:
        browser.call("Page.navigate", url="file://" + os.path.abspath(os.path.join(out, "index.html")))
        _wait(lambda: browser.eval("document.readyState === 'complete' && document.images.length"), 30, "the page")
        images = browser.eval("[...document.images].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert len(images) == n >= 20
        assert [src for src, complete, width in images if not (complete and width > 0)] == []
        assert browser.errors() == []
        assert browser.eval("document.querySelectorAll('section').length") == len(demo.steps("o", "l", quick=True))
        assert browser.eval("document.querySelectorAll('b').length") == 0      # printed text stays text
    finally:
        browser.close()


@pytest.mark.slow
def test_gallery_python_calls(tmp_path, monkeypatch, lite0, digits):
    """Every Python call the gallery shows runs after the preamble (quick settings)."""
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(demo.PREAMBLE, ns)
    for s in demo.steps("o", "l", quick=True):
        exec(s.python, ns)


def test_readme_tour_is_current():
    """The README's tour is what docs/make_tour.py writes from this demo, and every
    picture it shows is there and small."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    a, b = text.index(demo.TOUR_START), text.index(demo.TOUR_END) + len(demo.TOUR_END)
    assert text[a:b] == demo.tour_markdown(), "the tour is stale: python docs/make_tour.py tfviz-out/demo"
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text[a:b])
    assert len(shown) == sum(not s.show_output for s in demo.steps("o", "l"))
    for rel in shown:
        path = os.path.join(root, rel)
        assert os.path.getsize(path) < 200_000, rel
        with Image.open(path) as im:
            assert min(im.size) >= 64, rel
