"""The Patches view: Writer.patches writes each channel's max-activating patches with
their scores, source images, positions and boxes; the plugin's routes serve them back
exactly (pixels and metadata), per step."""
import json

import numpy as np
import pytest

from test_tb_plugin import P, get_json, make_client, png_pixels

from tfviz.inspect.patches import ChannelPatches
from tfviz.summary import VIEWS, SummaryError, Writer


def hand_made(rng, layer="conv2", channels=(3, 7), k=3, size=5, offset=0.0):
    out = []
    for c in channels:
        scores = np.sort(rng.normal(size=k).astype(np.float32))[::-1] + offset
        locations = np.stack([rng.integers(0, 10, k), rng.integers(0, 6, k), rng.integers(0, 6, k)], 1)
        boxes = np.stack([locations[:, 1] - 2, locations[:, 2] - 2, locations[:, 1] + 3, locations[:, 2] + 3], 1)
        out.append(ChannelPatches(layer, c, rng.integers(0, 256, (k, size, size, 3), dtype=np.uint8),
                                  scores, locations, boxes))
    return out


NAMES = [f"folder/img{i}.png" for i in range(10)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("patches")
    rng = np.random.default_rng(0)
    steps = [hand_made(rng), hand_made(rng, offset=5.0)]
    conv1 = hand_made(rng, "conv1", channels=(0,), k=2, size=3)
    with Writer(str(d), run="p") as w:
        for step, res in enumerate(steps):
            w.patches("conv2", res, step=step, names=NAMES, model="tiny")
        w.patches("conv1", {"conv1": conv1})  # the dict form, no names
    return d, steps, conv1


def _image(client, run, tag, step, index):
    r = client.get(P + "/image", query_string={"run": run, "tag": tag, "step": str(step), "index": str(index)})
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    return png_pixels(r.get_data())


def _check_served(client, run, tag, step, res, names):
    info = get_json(client, "/step", run=run, tag=tag, step=str(step))
    meta, k = info["meta"], len(res[0].patches)
    assert meta["kind"] == "patches" and meta["row"] == k and info["count"] == len(res) * k
    assert meta["channels"] == [r.channel for r in res]
    np.testing.assert_allclose(meta["scores"], [r.scores for r in res], rtol=1e-6)
    assert meta["indices"] == [r.locations[:, 0].tolist() for r in res]
    assert meta["positions"] == [r.locations[:, 1:].tolist() for r in res]
    assert meta["boxes"] == [r.boxes.tolist() for r in res]
    assert meta["names"] == [[names(i) if callable(names) else names[i] for i in r.locations[:, 0]] for r in res]
    for c, r in enumerate(res):
        for j in range(k):
            np.testing.assert_array_equal(_image(client, run, tag, step, c * k + j), r.patches[j])
    return meta


def test_patches_is_a_view_of_its_own():
    assert "patches" in VIEWS and VIEWS.index("patches") == VIEWS.index("activations") + 1


def test_overview_lists_patches_per_layer(written):
    d = written[0]
    ov = get_json(make_client(d), "/overview")
    assert "patches" in ov["views"]
    tags = ov["runs"]["p"]["tags"]
    assert {t: v["kind"] for t, v in tags.items()} == {"patches/conv2": "patches", "patches/conv1": "patches"}
    assert tags["patches/conv2"]["max_step"] == 1 and tags["patches/conv2"]["meta"]["layer"] == "conv2"


def test_served_patches_equal_what_was_written_at_each_step(written):
    d, steps, conv1 = written
    client = make_client(d)
    assert [s["count"] for s in get_json(client, "/series", run="p", tag="patches/conv2")["steps"]] == [6, 6]
    for step, res in enumerate(steps):  # scores change per step: kept per step
        meta = _check_served(client, "p", "patches/conv2", step, res, NAMES)
        assert meta["model"] == "tiny" and meta["captions"][:2] == ["ch 3 #1", "ch 3 #2"]
    meta = _check_served(client, "p", "patches/conv1", 0, conv1, lambda i: f"#{i}")
    assert meta["layer"] == "conv1"


def test_empty_slots_and_bad_arguments(tmp_path):
    rng = np.random.default_rng(1)
    res = hand_made(rng, channels=(0,), k=2)
    res[0].scores[1], res[0].locations[1] = -np.inf, (-1, -1, -1)  # a slot no image filled
    with Writer(str(tmp_path), run="e") as w:
        w.patches("conv2", res)
        with pytest.raises(SummaryError, match="layer 'conv2' written as layer 'conv9'"):
            w.patches("conv9", res)
        with pytest.raises(SummaryError, match="same number"):
            w.patches("conv2", res + hand_made(rng, channels=(1,), k=3))
        with pytest.raises(SummaryError, match="no channels"):
            w.patches("conv2", [])
        with pytest.raises(SummaryError, match="no patches of layer 'conv3'"):
            w.patches("conv3", {"conv2": res})
    r = make_client(tmp_path).get(P + "/step", query_string={"run": "e", "tag": "patches/conv2"})
    meta = json.loads(r.get_data(as_text=True))["meta"]  # strict JSON: no -Infinity
    assert meta["scores"][0][1] is None and meta["names"][0][1] is None
    assert meta["names"][0][0] == f"#{res[0].locations[0, 0]}"


def test_real_patches_of_a_tiny_model(tmp_path):
    import keras
    import tfviz
    from tfviz.inspect import max_activating_patches
    keras.utils.set_random_seed(0)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv2")(x)
    bundle = tfviz.load_model(keras.Model(inp, keras.layers.GlobalAveragePooling2D()(x)), preprocess="0-1")
    images = np.random.default_rng(2).integers(0, 256, (8, 12, 12, 3), dtype=np.uint8)
    res = max_activating_patches(bundle, images, "conv2", [0, 4], k=3)
    with Writer(str(tmp_path), run="real") as w:
        w.patches("conv2", res, names=lambda i: f"image {i}")
    meta = _check_served(make_client(tmp_path), "real", "patches/conv2", 0, res, lambda i: f"image {i}")
    assert all(len(set(row)) == 3 for row in meta["indices"])  # one patch per image by default
    assert np.asarray(meta["boxes"]).shape == (2, 3, 4)
