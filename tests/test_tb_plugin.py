"""Every route of the tfviz TensorBoard plugin, through TensorBoard's own WSGI application
(werkzeug's test client) over a data provider on a logdir written by tfviz.summary --
the way TensorBoard's plugin tests do it. No browser, no server."""
import io
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
from PIL import Image
from werkzeug import test as wtest
from werkzeug import wrappers

from tb_plugin import plugin as tbp
from tfviz.summary import Writer

P = "/data/plugin/tfviz"


def make_client(logdir, sampling_hints=None):
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider as dp
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem
    from tensorboard.plugins import base_plugin
    mux = pem.EventMultiplexer(tensor_size_guidance={"tfviz": 0, "scalars": 0})  # 0: keep every step
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = dp.MultiplexerDataProvider(mux, str(logdir))
    ctx = base_plugin.TBContext(data_provider=provider, logdir=str(logdir), sampling_hints=sampling_hints or {})
    plugin = tbp.TfvizPluginLoader().load(ctx)
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return wtest.Client(app, wrappers.Response)


def get_json(client, route, **params):
    r = client.get(P + route, query_string=params)
    assert r.status_code == 200, (route, params, r.status_code, r.get_data(as_text=True))
    assert r.headers["Content-Type"].startswith("application/json")
    return json.loads(r.get_data(as_text=True))


def png_pixels(body):
    return np.asarray(Image.open(io.BytesIO(body)))


@pytest.fixture(scope="module")
def rng_images():
    rng = np.random.default_rng(0)
    return {
        "grid": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        "photos": rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8),
        "snap": [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)],
    }


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, rng_images):
    d = tmp_path_factory.mktemp("logs")
    im = rng_images
    with Writer(str(d), run="inspect") as w:
        w.filters("conv1", im["grid"])
        for epoch, score in enumerate([1.5, 2.5, 3.5]):  # scores that change per step
            w.image("filters", "trained", im["grid"][::-1], step=epoch, caption=f"epoch {epoch}", score=score)
        w.activations("conv2", [im["photos"][0], im["photos"][1]], names=["cat", "cup"])
    with Writer(str(d), run="attr") as w:
        maps = np.stack([np.outer(np.arange(16), np.ones(16)), np.eye(16)]).astype(np.float32)
        w.attribution("saliency", im["photos"], maps, targets=["tabby", 3], scores=[1.25, -2.0], names=["cat", "cup"])
        w.attribution("grad_cam", im["photos"], maps[::-1], targets="tabby", names=["cat", "cup"])
    with Writer(str(d), run="emb") as w:
        w.embedding_map("pca", im["grid"])
        w.neighbors("nn", im["photos"][:1], [im["photos"]], distances=[[0.0, 0.5]], labels=["q"])
    with Writer(str(d), run="opt") as w:
        w.params("optimization", {"recipe": "class_visualization", "steps": 4, "lr": 0.05,
                                  "note": "<script>alert(1)</script>"})
        for step in range(4):
            w.scalar("loss", 10.0 - step, step)
            w.snapshot(im["snap"][step], step)
    # a run that is no tfviz run at all, and plain TensorBoard scalars beside ours
    import tensorflow as tf
    with tf.summary.create_file_writer(str(d / "plain")).as_default():
        tf.summary.scalar("accuracy", 0.5, step=0)
    with tf.summary.create_file_writer(str(d / "opt")).as_default():
        tf.summary.scalar("not_ours", 1.0, step=0)
        # a tfviz blob that is not an image must never be served as one
        from tfviz.summary import metadata
        tf.summary.write("filters/evil", tf.constant([b"<html><script>alert(1)</script>"]), step=0,
                         metadata=metadata("filters"))
    return d


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)


# ------------------------------------------------------------------- registration, static
def test_entry_point_loads_the_plugin():
    eps = [e for e in entry_points(group="tensorboard_plugins") if e.name == "tfviz"]
    assert len(eps) == 1 and eps[0].load() is tbp.TfvizPluginLoader


def test_plugins_listing_has_a_dynamic_tfviz_tab(client):
    r = client.get("/data/plugins_listing")
    entry = json.loads(r.get_data(as_text=True))["tfviz"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "tfviz"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/tfviz/index.js"}


def test_plugin_entry_page_imports_the_module(client):
    r = client.get("/data/plugin_entry.html", query_string={"name": "tfviz"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and '<base href="plugin/tfviz/"' in html and 'import("./index.js")' in html


def test_frontend_files_are_served_with_their_types(client):
    r = client.get(P + "/index.js")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert "export async function render()" in r.get_data(as_text=True)
    for name, mime in (("dom.js", "text/javascript"), ("views.js", "text/javascript"), ("style.css", "text/css")):
        r = client.get(f"{P}/static/{name}")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(mime), name


def test_frontend_needs_no_external_assets():
    import os
    import re
    static = os.path.join(os.path.dirname(tbp.__file__), "static")
    for name in os.listdir(static):
        text = open(os.path.join(static, name), encoding="utf-8").read()
        text = text.replace("'http://www.w3.org/2000/svg'", "")  # the SVG namespace is a name, not a fetch
        assert not re.search(r"https?://", text), name          # no remote fonts/scripts/styles (CSP)
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name  # text only
        assert "@font-face" not in text and "@import" not in text, name


@pytest.mark.parametrize("path", [
    "/static/plugin.py", "/static/../plugin.py", "/static/%2e%2e/plugin.py", "/static/..%2fplugin.py",
    "/static/../../../../etc/passwd", "/static/", "/static/index.js/..", "/static/.hidden.js",
    "/static/demo.py", "/static/%2e%2e%2f%2e%2e%2fsetup.cfg", "/static/static/index.js",
])
def test_static_route_serves_nothing_outside_its_files(client, path):
    r = client.get(P + path)
    assert r.status_code == 404, path
    assert b"tensorboard_plugins" not in r.get_data() and b"root:" not in r.get_data()


# ------------------------------------------------------------------- data routes
def test_overview_lists_runs_kinds_tags_scalars_and_params(client):
    ov = get_json(client, "/overview")
    runs = ov["runs"]
    assert set(runs) == {"inspect", "attr", "emb", "opt"}          # "plain" has no tfviz data
    assert "plain" in ov["all_runs"]
    assert {t: v["kind"] for t, v in runs["inspect"]["tags"].items()} == {
        "filters/conv1": "filters", "filters/trained": "filters", "activations/conv2": "activations"}
    assert set(runs["attr"]["tags"]) == {"attribution/inputs", "attribution/saliency", "attribution/grad_cam"}
    assert runs["opt"]["scalars"] == ["tfviz/loss"]                  # only tfviz's own curves
    assert runs["opt"]["params"] == ["params/optimization"]
    assert runs["inspect"]["tags"]["filters/trained"]["max_step"] == 2
    assert runs["opt"]["tags"]["optimization/snapshot"]["max_step"] == 3
    sal = runs["attr"]["tags"]["attribution/saliency"]["meta"]
    assert sal["role"] == "map" and sal["method"] == "saliency"
    assert sal["targets"] == ["tabby", 3] and sal["scores"] == [1.25, -2.0]
    assert runs["attr"]["tags"]["attribution/grad_cam"]["meta"]["targets"] == ["tabby", "tabby"]
    # the per-step info sidecar is no view of its own
    assert not any(t.startswith("info/") for r in runs.values() for t in r["tags"])


def test_overview_of_an_empty_logdir(tmp_path):
    ov = get_json(make_client(tmp_path), "/overview")
    assert ov["runs"] == {} and ov["all_runs"] == []
    assert ov["views"] == ["filters", "activations", "patches", "attribution", "embeddings", "optimization"]


def test_series_lists_every_step_in_order(client):
    s = get_json(client, "/series", run="opt", tag="optimization/snapshot")
    assert [x["step"] for x in s["steps"]] == [0, 1, 2, 3]
    assert all(x["count"] == 1 for x in s["steps"])
    a = get_json(client, "/series", run="attr", tag="attribution/saliency")
    assert [x["count"] for x in a["steps"]] == [2]


def test_step_merges_per_step_captions_and_extras(client):
    latest = get_json(client, "/step", run="inspect", tag="filters/trained")
    assert latest["step"] == 2 and latest["meta"]["captions"] == ["epoch 2"] and latest["meta"]["score"] == 3.5
    one = get_json(client, "/step", run="inspect", tag="filters/trained", step="1")
    assert one["meta"]["captions"] == ["epoch 1"] and one["meta"]["score"] == 2.5
    zero = get_json(client, "/step", run="inspect", tag="filters/trained", step="0")
    assert zero["meta"]["score"] == 1.5
    snap = get_json(client, "/step", run="opt", tag="optimization/snapshot", step="2")
    assert snap["meta"]["captions"] == ["step 2"] and snap["count"] == 1


def test_info_sidecar_only_where_a_step_differs(logdir):
    from tensorboard.backend.event_processing import event_accumulator as ea
    import glob
    tags = set()
    for run in ("inspect", "attr", "emb"):
        for f in glob.glob(str(logdir / run / "events.*")):
            acc = ea.EventAccumulator(f, size_guidance={ea.TENSORS: 0})
            acc.Reload()
            tags |= set(acc.Tags()["tensors"])
    assert "info/filters/trained" in tags
    assert not {"info/filters/conv1", "info/activations/conv2", "info/attribution/saliency"} & tags


def test_images_come_back_pixel_exact(client, rng_images):
    r = client.get(P + "/image", query_string={"run": "inspect", "tag": "filters/conv1", "step": "0", "index": "0"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    np.testing.assert_array_equal(png_pixels(r.get_data()), rng_images["grid"])
    for step in range(4):
        r = client.get(P + "/image", query_string={"run": "opt", "tag": "optimization/snapshot",
                                                   "step": str(step), "index": "0"})
        np.testing.assert_array_equal(png_pixels(r.get_data()), rng_images["snap"][step])
    r = client.get(P + "/image", query_string={"run": "inspect", "tag": "activations/conv2", "step": "0", "index": "1"})
    np.testing.assert_array_equal(png_pixels(r.get_data()), rng_images["photos"][1])


def test_attribution_inputs_and_coloured_maps(client, rng_images):
    def img(tag, index):
        r = client.get(P + "/image", query_string={"run": "attr", "tag": tag, "step": "0", "index": str(index)})
        assert r.status_code == 200
        return png_pixels(r.get_data())
    np.testing.assert_array_equal(img("attribution/inputs", 0), rng_images["photos"][0])
    ramp = img("attribution/saliency", 0)  # rows 0..15: darkest first row, brightest last (inferno)
    assert ramp.shape == (16, 16, 3)
    assert (ramp[0] == ramp[0, 0]).all() and ramp[0].sum() < ramp[-1].sum()
    np.testing.assert_array_equal(ramp[0, 0], [0, 0, 4])        # inferno's low end
    np.testing.assert_array_equal(ramp[-1, 0], [252, 255, 164])  # inferno's high end
    # inputs written once per step, however many methods
    s = get_json(client, "/series", run="attr", tag="attribution/inputs")
    assert [x["count"] for x in s["steps"]] == [2]


def test_neighbors_strip_layout(client):
    meta = get_json(client, "/step", run="emb", tag="embeddings/nn")["meta"]
    assert meta["role"] == "neighbors" and meta["row"] == 3 and meta["distances"] == [[0.0, 0.5]]
    assert get_json(client, "/step", run="emb", tag="embeddings/nn")["count"] == 3
    assert get_json(client, "/step", run="emb", tag="embeddings/pca")["meta"]["role"] == "map"


def test_params_and_scalars(client):
    p = get_json(client, "/params", run="opt")
    assert p["params"] == {"optimization": {"recipe": "class_visualization", "steps": 4, "lr": 0.05,
                                            "note": "<script>alert(1)</script>"}}
    s = get_json(client, "/scalars", run="opt", tag="tfviz/loss")
    assert s["points"] == [[0, 10.0], [1, 9.0], [2, 8.0], [3, 7.0]]
    assert get_json(client, "/params", run="inspect")["params"] == {}


def test_json_answers_carry_hostile_strings_as_data(client):
    r = client.get(P + "/params", query_string={"run": "opt"})
    assert r.headers["Content-Type"].startswith("application/json")
    assert json.loads(r.get_data(as_text=True))["params"]["optimization"]["note"] == "<script>alert(1)</script>"


def test_a_blob_that_is_no_image_is_not_served(client):
    r = client.get(P + "/image", query_string={"run": "opt", "tag": "filters/evil", "step": "0", "index": "0"})
    assert r.status_code == 404 and b"<script>" not in r.get_data()


# ------------------------------------------------------------------- 400 and 404
BAD = [
    ("/series", {}),
    ("/series", {"run": "opt"}),
    ("/series", {"tag": "optimization/snapshot"}),
    ("/step", {"run": "opt", "tag": "optimization/snapshot", "step": "abc"}),
    ("/step", {"run": "opt", "tag": "optimization/snapshot", "step": "1e3"}),
    ("/step", {"run": "opt", "tag": "optimization/snapshot", "step": "--1"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "0", "index": "-1"}),
    ("/run", {"run": "opt", "kind": "nope"}),
    ("/run", {"run": "opt"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "0"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "index": "0"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "0", "index": "1.5"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "0", "index": " 0"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "9" * 40, "index": "0"}),
    ("/image", {"run": "opt", "tag": "params/optimization", "step": "0", "index": "0"}),
    ("/image", {"run": "inspect", "tag": "info/filters/trained", "step": "1", "index": "0"}),
    ("/image", {"run": "x" * 5000, "tag": "t", "step": "0", "index": "0"}),
    ("/image", {"run": "opt\x00", "tag": "t", "step": "0", "index": "0"}),
    ("/params", {}),
    ("/scalars", {}),
]


@pytest.mark.parametrize("route,params", BAD)
def test_bad_query_parameters_get_400(client, route, params):
    r = client.get(P + route, query_string=params)
    assert r.status_code == 400, (route, params, r.status_code)


def test_repeated_parameters_get_400(client):
    r = client.get(P + "/series?run=opt&run=inspect&tag=optimization/snapshot")
    assert r.status_code == 400


NOT_FOUND = [
    ("/series", {"run": "nope", "tag": "optimization/snapshot"}),
    ("/series", {"run": "opt", "tag": "optimization/nope"}),
    ("/step", {"run": "opt", "tag": "optimization/snapshot", "step": "99"}),
    ("/step", {"run": "opt", "tag": "optimization/snapshot", "step": "-1"}),   # steps may be negative
    ("/run", {"run": "nope", "kind": "filters"}),
    ("/run", {"run": "opt", "kind": "patches"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "99", "index": "0"}),
    ("/image", {"run": "opt", "tag": "optimization/snapshot", "step": "0", "index": "1"}),
    ("/params", {"run": "nope"}),
    ("/scalars", {"run": "opt", "tag": "tfviz/nope"}),
    # escape attempts: runs and tags are names in the data provider, never paths
    ("/series", {"run": "../../../../etc", "tag": "passwd"}),
    ("/image", {"run": "..", "tag": "opt/optimization/snapshot", "step": "0", "index": "0"}),
    ("/image", {"run": "opt/..", "tag": "optimization/snapshot", "step": "0", "index": "0"}),
    ("/image", {"run": "/etc", "tag": "passwd", "step": "0", "index": "0"}),
    ("/image", {"run": "opt", "tag": "../../../../etc/passwd", "step": "0", "index": "0"}),
    ("/params", {"run": "../opt"}),
    ("/scalars", {"run": "plain/..", "tag": "accuracy"}),
]


@pytest.mark.parametrize("route,params", NOT_FOUND)
def test_unknown_runs_tags_steps_and_escape_attempts_get_404(client, route, params):
    r = client.get(P + route, query_string=params)
    assert r.status_code == 404, (route, params, r.status_code)
    assert b"root:" not in r.get_data()


def test_sampling_hint_is_reported_and_used(logdir):
    ov = get_json(make_client(logdir, {"tfviz": 2}), "/overview")
    assert ov["samples_per_plugin"] == 2
    steps = get_json(make_client(logdir, {"tfviz": 2}), "/series", run="opt", tag="optimization/snapshot")["steps"]
    assert len(steps) == 2 and steps[-1]["step"] == 3  # downsampled, the latest kept
    assert get_json(make_client(logdir), "/overview")["samples_per_plugin"] is None


# ------------------------------------------------------------------- writer helpers
def test_writer_helpers_check_their_arguments(tmp_path):
    imgs = np.zeros((2, 4, 4, 3), np.uint8)
    with Writer(str(tmp_path), run="w") as w:
        with pytest.raises(ValueError, match="2 images but 3 maps"):
            w.attribution("saliency", imgs, np.zeros((3, 4, 4)))
        with pytest.raises(ValueError, match="names"):
            w.attribution("saliency", imgs, np.zeros((2, 4, 4)), names=["one"])
        with pytest.raises(ValueError, match="values for 2 images"):
            w.attribution("saliency", imgs, np.zeros((2, 4, 4)), targets=[1, 2, 3])
        with pytest.raises(ValueError, match="same number"):
            w.neighbors("nn", imgs, [imgs, imgs[:1]])
        with pytest.raises(ValueError, match="unknown summary kind"):
            w.image("nope", "t", imgs[0])


def test_losses_history_and_single_colour_map(tmp_path, rng_images):
    with Writer(str(tmp_path), run="h") as w:
        w.losses({"loss": [3.0, 2.0, 1.0], "tv": [0.5, 0.25, 0.125]}, start=10)
        w.snapshot(rng_images["snap"][0], 10)
        colour = rng_images["grid"]  # one uint8 colour map [H,W,3] is one map, not three
        w.attribution("custom", colour, colour, names=["g"])
    c = make_client(tmp_path)
    assert get_json(c, "/scalars", run="h", tag="tfviz/loss")["points"] == [[10, 3.0], [11, 2.0], [12, 1.0]]
    assert get_json(c, "/scalars", run="h", tag="tfviz/tv")["points"] == [[10, 0.5], [11, 0.25], [12, 0.125]]
    r = c.get(P + "/image", query_string={"run": "h", "tag": "attribution/custom", "step": "0", "index": "0"})
    np.testing.assert_array_equal(png_pixels(r.get_data()), rng_images["grid"])


def test_clean_tag_keeps_names_readable():
    from tfviz.summary import clean_tag
    assert clean_tag("logit[130]") == "logit_130"
    assert clean_tag("optimization/l2(block4c_add)") == "optimization/l2_block4c_add"
    assert clean_tag("a//b/") == "a/b"
    assert clean_tag("<script>") == "script" and clean_tag("???") == "untitled"
