"""``tfviz demo``: the whole lecture on the offline defaults, its gallery page and its
TensorBoard logs; one failing method does not stop the others; Ctrl-C keeps the gallery.

- test_demo_quick_end_to_end runs ``tfviz demo --quick`` in this process (it shares the
  session's models) and checks every expected file, every picture the page references,
  and that the page names no external URL: in the default tier on one cheap method of every
  section (``--only``, every view of the tfviz tab), the whole quick demo in the slow tier.
- test_gallery_in_headless_chromium opens a small demo's gallery in Chromium and checks
  that every image loads.
- test_gallery_python_calls (slow) runs every Python call the gallery shows, one test per
  call, and checks what each call promises about its result (GALLERY_CHECKS).
"""
import ast
import json
import os
import re
import shlex
from html import escape as html_escape

import numpy as np
import pytest
from PIL import Image

from cli_helpers import run_cli
from grid_checks import enlarged, grid_tiles, min_max_255

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
EVERY_SECTION = "filters,activations,patches,embed,saliency,grad_cam,fool,texture,stylizer,tcav"


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


# --------------------------------------------------------------------------- the gallery's Python calls
# Each quick step's Python call runs after the preamble (test_gallery_python_calls, slow) and
# then its check below asserts what the call promises about its result: the pictures' sizes
# and content, the maps' shapes and targets. A step without a check fails
# test_every_gallery_call_has_a_check in the default tier.

def _png(name):
    """A picture a call wrote (into the test's folder)."""
    with Image.open(name) as im:
        return np.asarray(im.convert("RGB"))


def _picture(a, shape=None):
    """A uint8 RGB picture, not a constant one, of ``shape`` when given."""
    a = np.asarray(a)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[-1] == 3, (a.dtype, a.shape)
    if shape is not None:
        assert a.shape == tuple(shape), (a.shape, shape)
    assert a.std() > 1.0, "a constant picture"
    return a


def _check_filters(ns):
    """32 RGB tiles of efficientnet_lite0's first 3x3 kernels, 12x enlarged (36 pixels),
    6 per row; each tile is its kernel min-max scaled."""
    from tfviz.inspect.filters import conv_kernel
    _, kernel = conv_kernel(ns["bundle"])
    assert kernel.shape == (3, 3, 3, 32)
    for i, tile in enumerate(grid_tiles(_png("filters.png"), 32, 36)):
        np.testing.assert_allclose(enlarged(tile, 12), min_max_255(kernel[..., i]), atol=0.51,
                                   err_msg=f"filter {i}")


def _check_activations(ns):
    """The 32 strongest channels (by mean) of the layer a quarter deep for the cat, each
    map min-max scaled, strongest first, enlarged to at least 32 pixels."""
    from tfviz.images import load_image
    maps = ns["inspect"].activation_maps(ns["bundle"], load_image("chelsea"), ns["layer"])
    h = maps.shape[0]
    factor = -(-32 // h)
    order = np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:32]
    for j, tile in enumerate(grid_tiles(_png("activations.png"), 32, h * factor)):
        small = enlarged(tile, factor)
        assert (small == small[..., :1]).all()
        np.testing.assert_allclose(small[..., 0], min_max_255(maps[..., order[j]]), atol=0.51,
                                   err_msg=f"tile {j}")


def _check_patches(ns):
    """8 channels x 8 patches, best first; each score is relu4's activation at the
    patch's image and position (a Keras sub-model here)."""
    import keras
    res, digits, data = ns["res"], ns["digits"], ns["data"]
    assert [r.channel for r in res] == list(range(8))
    sub = keras.Model(digits.model.input, digits.model.get_layer("relu4").output)
    for r in res:
        assert len(r.patches) == len(r.scores) == len(r.locations) == 8
        assert np.all(np.diff(r.scores) <= 0), r.scores                      # best first
        loc = np.asarray(r.locations)
        act = sub(digits.preprocess(data.take(loc[:, 0], size=digits.input_size))).numpy()
        np.testing.assert_allclose([act[i, y, x, r.channel] for i, (_, y, x) in enumerate(loc)], r.scores,
                                   rtol=1e-4, atol=1e-5)
    _picture(_png("patches.png"))


def _check_neighbors(ns):
    """For the first 8 digits, 5 neighbours by features, nearest first: each query is its
    own nearest (distance 0), and the features match what the digit is."""
    idx, dist, data = ns["idx"], ns["dist"], ns["data"]
    assert idx.shape == dist.shape == (8, 5)
    assert np.all(np.diff(dist, axis=1) >= 0) and np.allclose(dist[:, 0], 0, atol=1e-5)
    assert (data.labels[idx[:, 0]] == data.labels[:8]).all()
    assert (data.labels[idx[:, 1:]] == data.labels[:8, None]).mean() >= 0.8


def _check_embed(ns):
    """Every digit at a finite 2-D place; the ten digits fall into islands (a digit's
    nearest point on the map is mostly the same digit); the thumbnail map's cells are 16
    pixels."""
    xy, labels = ns["xy"], ns["data"].labels
    assert xy.shape == (len(labels), 2) and np.isfinite(xy).all()
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.9
    grid = _picture(_png("embed.png"))
    assert grid.shape[0] % 16 == 0 and grid.shape[1] % 16 == 0


def _check_attribution(name, ns, signed=False, colours=False):
    """The map of the top-1 class (espresso for the coffee photo) at the image's size, and
    the panel input | map | overlay of that size."""
    from tfviz.attribution.render import render_gradient, render_map
    bundle, img, m = ns["bundle"], ns["img"], ns["m"]
    assert img.shape == (1, 224, 224, 3) and img.dtype == np.uint8
    assert m.shape == ((224, 224, 3) if colours else (224, 224)) and np.isfinite(m).all()
    top = int(np.argmax(bundle.predict(img)[0]))
    assert bundle.class_name(top) == "espresso"
    call = next(n for n in ast.walk(ast.parse(ns["_python"])) if isinstance(n, ast.Call)
                and getattr(n.func, "attr", None) == name)               # the call's options, as shown
    opts = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    np.testing.assert_allclose(m, getattr(ns["attribution"], name)(bundle, img, top, **opts)[0], rtol=1e-4,
                               atol=1e-5 * np.abs(m).max(), err_msg="not the map of the top-1 class")
    assert np.abs(m).max() > 0 and (signed or colours or m.min() >= 0), (m.min(), m.max())
    pic = _picture(_png(f"{name}.png"), (224, 3 * 224 + 2 * 4, 3))                # input | map | overlay
    np.testing.assert_array_equal(pic[:, :224], img[0])
    drawn = render_gradient(m) if colours else render_map(m)
    np.testing.assert_array_equal(pic[:, 228:452], drawn)
    return top


def _check_integrated_gradients(ns):
    """... and the map sums to the change of the logit from the black image, up to the
    approximation error the method reports (return_delta) -- an error smaller than the
    change itself at 16 steps."""
    top = _check_attribution("integrated_gradients", ns, signed=True)
    bundle, img, m = ns["bundle"], ns["img"], ns["m"]
    change = (bundle.logits(bundle.preprocess(img)).numpy()[0, top]
              - bundle.logits(bundle.preprocess(np.zeros_like(img))).numpy()[0, top])
    _, delta = ns["attribution"].integrated_gradients(bundle, img, top, steps=16, return_delta=True)
    np.testing.assert_allclose(m.sum() - delta[0], change, rtol=1e-3)
    assert abs(delta[0]) < 0.5 * abs(change) and np.sign(m.sum()) == np.sign(change), (m.sum(), delta, change)


def _check_segmentation(ns):
    """Grad-CAM of 'circle' on shapes_segmenter for a generated scene with a circle, a
    square and a triangle: the circle's logits summed over the pixels the network paints as
    circle (the same map as that mask named as the region), high on those pixels and near
    zero on the background, the square and the triangle; the panel input | map | overlay
    drawn at 224."""
    from tfviz.attribution.render import render_map
    from tfviz.attribution.targets import Region
    from tfviz.images import resize
    shapes, img, labels, m = ns["shapes"], ns["img"], ns["labels"], ns["m"]
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and set(np.unique(labels)) == {0, 1, 2, 3}
    assert m.shape == (64, 64) and np.isfinite(m).all() and m.min() >= 0
    painted = shapes.predict(img[None])[0].argmax(-1) == shapes.class_index("circle")
    assert (painted & (labels == 1)).sum() > 0.9 * (painted | (labels == 1)).sum()   # it finds the circle
    by_mask = ns["attribution"].grad_cam(shapes, img[None], Region(1, mask=painted))[0]
    np.testing.assert_allclose(m, by_mask, rtol=1e-4, atol=1e-5 * m.max())
    assert m[painted].mean() > 20 * m[labels == 0].mean()
    assert m[painted].mean() > 5 * max(m[labels == 2].mean(), m[labels == 3].mean())
    pic = _picture(_png("segmentation.png"), (224, 3 * 224 + 2 * 4, 3))
    np.testing.assert_array_equal(pic[:, :224], resize(img, (224, 224)))
    np.testing.assert_array_equal(pic[:, 228:452], resize(render_map(m), (224, 224)))


def _check_trust(ns):
    """One row per method asked for, with deletion / insertion AUCs in 0..1 (a map worth
    the name: insertion above deletion) and a rank correlation in -1..1."""
    rows = ns["rows"]
    assert [r["method"] for r in rows] == ["saliency", "grad_cam"]
    for r in rows:
        assert 0 <= r["deletion"] <= 1 and 0 <= r["insertion"] <= 1 and -1 <= r["randomization"] <= 1, r
        assert r["insertion"] > r["deletion"], r
        assert r["road"] == pytest.approx(r["road_lerf"] - r["road_morf"], abs=1e-6), r
        assert r["maps"].shape == (1, 224, 224)


def _check_tcav(ns):
    """A score in 0..1 per drawn concept and layer, the table names every concept, and the
    picture is a picture."""
    r = ns["r"]
    assert r.scores.ndim == 3 and np.all((r.scores >= 0) & (r.scores <= 1))
    table = r.table()
    for concept in ("striped", "dotted", "zigzagged", "checkered"):
        assert concept in table
    pic = np.asarray(r.picture())
    assert pic.ndim == 3 and pic.shape[2] == 3 and pic.std() > 1.0


def _ascended(history):
    h = np.asarray(history)
    assert len(h) and np.isfinite(h).all()
    assert h[-1] > h[0], "the objective did not increase"


def _check_classviz(ns):
    r, bundle = ns["r"], ns["bundle"]
    assert r.extra["target"] == bundle.class_index("flamingo") and r.steps == len(r.history) == 32
    _ascended(r.history)
    np.testing.assert_array_equal(_picture(_png("classviz.png"), (224, 224, 3)), r.image)
    assert 0 <= r.extra["probability"] <= 1


def _check_neurons(ns):
    """One image per channel 0..3, each raising its channel; the grid is the four."""
    r = ns["r"]
    assert r.extra["channels"] == [0, 1, 2, 3] and r.images.shape == (4, 224, 224, 3)
    for im in r.images:
        _picture(im)
    _ascended(r.history)
    np.testing.assert_array_equal(_picture(_png("neurons.png")), r.extra["grid"])


def _check_fool(ns):
    """The cat, changed by a few grey levels, is classified as a goldfish."""
    f, bundle = ns["f"], ns["bundle"]
    goldfish = bundle.class_index("goldfish")
    assert f.success and f.target == goldfish and f.original_class != goldfish
    assert int(np.argmax(bundle.predict(f.image[None])[0])) == goldfish
    assert f.image.shape == f.original.shape and f.steps >= 1
    change = np.abs(f.image.astype(int) - f.original.astype(int))
    assert f.linf == change.max() and 0 < f.linf <= 32, f.linf


def _check_dream(ns):
    """The cat at its own size, changed."""
    from tfviz.images import load_image
    cat, r = load_image("chelsea"), ns["r"]
    _picture(r.image, cat.shape)
    assert np.abs(r.image.astype(int) - cat.astype(int)).mean() > 1.0
    np.testing.assert_array_equal(_png("dream.png"), r.image)


def _check_invert(ns):
    """One reconstruction per layer; the earliest layer keeps the photo best (PSNR)."""
    r = ns["r"]
    assert len(r.images) == 3 and len(r.extra["psnr"]) == 3 and np.isfinite(r.extra["psnr"]).all()
    for im in r.images:
        _picture(im)
    assert r.extra["psnr"][0] > r.extra["psnr"][-1], r.extra["psnr"]
    np.testing.assert_array_equal(_picture(_png("invert.png")), r.extra["strip"])


def _check_texture(ns):
    np.testing.assert_array_equal(_picture(_png("texture.png"), (128, 160, 3)), ns["r"].image)


def _check_style(ns):
    """The cat at its own size (the longer side at most DEFAULT_SIZE), painted: not the
    cat any more."""
    from tfviz.images import load_image, resize
    from tfviz.synthesis.style import DEFAULT_SIZE
    cat = load_image("chelsea")
    scale = min(1.0, DEFAULT_SIZE / max(cat.shape[:2]))
    h, w = (round(n * scale) for n in cat.shape[:2])
    img = _picture(_png("style.png"), (h, w, 3))
    np.testing.assert_array_equal(img, ns["r"].image)
    assert np.abs(img.astype(int) - resize(cat, (h, w)).astype(int)).mean() > 5.0


def _check_stylizer(ns):
    """The coffee photo at its own size, stylized; the one network holds two different
    styles and the 50/50 mix is neither."""
    from tfviz.images import load_image
    coffee, net, stylize = load_image("coffee"), ns["net"], ns["stylize"]
    mixed = _picture(_png("stylized.png"), coffee.shape).astype(int)
    one, two = (stylize.stylize(net, coffee, s).astype(int) for s in (0, 1))
    assert np.abs(one - two).mean() > 0.5
    assert np.abs(mixed - one).mean() > 0.1 and np.abs(mixed - two).mean() > 0.1


def _check_texture_net(ns):
    """A 256-pixel texture from the network, another for another seed."""
    net, stylize = ns["net"], ns["stylize"]
    img = _picture(_png("texture_net.png"), (256, 256, 3))
    np.testing.assert_array_equal(img, stylize.generate_texture(net, 256)[0])
    assert not np.array_equal(img, stylize.generate_texture(net, 256, seed=1)[0])


GALLERY_CHECKS = {
    "filters": _check_filters, "activations": _check_activations, "patches": _check_patches,
    "neighbors": _check_neighbors, "embed": _check_embed,
    "occlusion": lambda ns: _check_attribution("occlusion", ns, signed=True),
    "saliency": lambda ns: _check_attribution("saliency", ns),
    "guided_backprop": lambda ns: _check_attribution("guided_backprop", ns, colours=True),
    "smoothgrad": lambda ns: _check_attribution("smoothgrad", ns),
    "integrated_gradients": _check_integrated_gradients,
    "grad_cam": lambda ns: _check_attribution("grad_cam", ns),
    "segmentation": _check_segmentation,
    "trust": _check_trust, "classviz": _check_classviz, "neurons": _check_neurons, "fool": _check_fool,
    "dream": _check_dream, "invert": _check_invert, "texture": _check_texture, "style": _check_style,
    "stylizer": _check_stylizer, "texture_net": _check_texture_net, "tcav": _check_tcav,
}
QUICK = demo.steps("o", "l", quick=True)


def test_every_gallery_call_has_a_check():
    assert sorted(GALLERY_CHECKS) == sorted(s.name for s in QUICK)


@pytest.fixture(scope="module")
def preamble(tmp_path_factory, lite0, digits):
    """The gallery's preamble, run once (its bundles and data set) for every call."""
    ns = {}
    exec(demo.PREAMBLE, ns)
    return tmp_path_factory.mktemp("gallery"), ns


@pytest.mark.slow
@pytest.mark.parametrize("step", QUICK, ids=[s.name for s in QUICK])
def test_gallery_python_calls(step, preamble, monkeypatch):
    """Each Python call the gallery shows runs after the preamble (quick settings) and
    gives what it promises (GALLERY_CHECKS)."""
    folder, shared = preamble
    monkeypatch.chdir(folder)
    ns = dict(shared)
    exec(step.python, ns)
    ns["_python"] = step.python
    GALLERY_CHECKS[step.name](ns)


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
