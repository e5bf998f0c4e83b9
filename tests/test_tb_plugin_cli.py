"""A logdir written by the `tfviz` command line (with --logdir) shows in the tfviz tab:
each command's view lists its run and serves real images. A tiny .keras model keeps it
fast. Commands that are not part of the CLI yet are skipped, each on its own."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from test_tb_plugin import make_client, png_pixels

P = "/data/plugin/tfviz"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import keras
    d = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(8, activation="relu", name="features")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model_path = str(d / "tiny.keras")
    keras.Model(inp, out).save(model_path)
    rng = np.random.default_rng(0)
    images = d / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / label / f"{i}.png")
    return {"dir": d, "model": model_path, "images": str(images), "image": str(images / "a" / "0.png"),
            "logdir": str(d / "logs")}


def _run(setup, argv):
    from tfviz.cli import cli, main
    if argv[0] not in cli.list_commands(None):
        pytest.skip(f"`tfviz {argv[0]}` is not part of the CLI yet")
    model = ["--model", setup["model"], "--preprocess", "0-1"]
    cwd = os.getcwd()
    os.chdir(setup["dir"])  # PNGs the commands write by default land here
    try:
        main(argv + model + ["--logdir", setup["logdir"]])
    except SystemExit as exc:
        assert not exc.code, f"tfviz {' '.join(argv)} exited with {exc.code}"
    finally:
        os.chdir(cwd)


def _view_serves_images(setup, kind):
    client = make_client(setup["logdir"])
    runs = json.loads(client.get(P + "/overview").get_data())["runs"]
    found = 0
    for run, entry in runs.items():
        for tag, info in entry["tags"].items():
            if info["kind"] != kind:
                continue
            step = json.loads(client.get(P + "/step", query_string={"run": run, "tag": tag}).get_data())
            for i in range(step["count"]):
                r = client.get(P + "/image", query_string={"run": run, "tag": tag, "step": str(step["step"]),
                                                           "index": str(i)})
                assert r.status_code == 200, (run, tag, i)
                assert png_pixels(r.get_data()).std() > 0, (run, tag, i)  # a picture, not a blank
                found += 1
    assert found, f"no {kind} images in {sorted(runs)}"
    return runs


def test_filters_command(setup):
    _run(setup, ["filters"])
    _view_serves_images(setup, "filters")


def test_activations_command(setup):
    _run(setup, ["activations", setup["image"], "--layer", "conv2"])
    _view_serves_images(setup, "activations")


def test_patches_command_writes_the_patches_view(setup):
    import tfviz
    from tfviz.data import image_set
    from tfviz.inspect import max_activating_patches
    _run(setup, ["patches", "--images", setup["images"], "--layer", "conv2", "-c", "0,5", "-k", "3",
                 "--run", "patches-cli", "-o", str(setup["dir"] / "patches.png")])
    runs = _view_serves_images(setup, "patches")
    assert {t: v["kind"] for t, v in runs["patches-cli"]["tags"].items()} == {"patches/conv2": "patches"}
    client = make_client(setup["logdir"])
    info = json.loads(client.get(P + "/step", query_string={"run": "patches-cli", "tag": "patches/conv2"}).get_data())
    meta = info["meta"]
    bundle = tfviz.load_model(setup["model"], preprocess="0-1")
    res = max_activating_patches(bundle, setup["images"], "conv2", [0, 5], k=3)
    assert info["count"] == 6 and meta["channels"] == [0, 5] and meta["row"] == 3
    np.testing.assert_allclose(meta["scores"], [r.scores for r in res], rtol=1e-5)
    assert meta["positions"] == [r.locations[:, 1:].tolist() for r in res]
    assert meta["boxes"] == [r.boxes.tolist() for r in res]
    assert meta["field"] == [5, 5] and meta["stride"] == [1, 1]
    data = image_set(setup["images"])  # source images named by their paths inside --images
    assert meta["names"] == [[os.path.relpath(data.names[i], setup["images"]) for i in r.locations[:, 0]]
                             for r in res]
    assert {n for row in meta["names"] for n in row} <= {f"{c}/{i}.png" for c in "ab" for i in range(5)}
    for c, r in enumerate(res):
        for j in range(3):
            img = client.get(P + "/image", query_string={"run": "patches-cli", "tag": "patches/conv2",
                                                         "step": str(info["step"]), "index": str(c * 3 + j)})
            np.testing.assert_array_equal(png_pixels(img.get_data()), r.patches[j])


def test_embed_command_and_its_projector_run(setup):
    _run(setup, ["embed", "--images", setup["images"], "--method", "pca", "--cell", "8"])
    runs = _view_serves_images(setup, "embeddings")
    run = next(r for r, e in runs.items() if any(t["kind"] == "embeddings" for t in e["tags"].values()))
    assert os.path.exists(os.path.join(setup["logdir"], run, "projector_config.pbtxt"))


def test_attribute_command(setup):
    _run(setup, ["attribute", "saliency", setup["image"], "--target", "0", "--out", str(setup["dir"] / "attr")])
    _view_serves_images(setup, "attribution")


def test_classviz_command(setup):
    _run(setup, ["classviz", "0", "--steps", "4", "--out", str(setup["dir"] / "classviz.png")])
    runs = _view_serves_images(setup, "optimization")
    assert any(e["scalars"] for e in runs.values()), "no loss curve"
