"""A logdir written by the `tfviz` command line (with --logdir) shows in the tfviz tab:
each command's view lists its run and serves the pictures and numbers the command
computed. A tiny .keras model built here keeps it fast, and every expectation is worked
out in the test from the model's own weights and activations (Keras, TensorFlow, numpy),
not read back from tfviz: a filter grid's tiles are the kernels, an activation grid's
tiles the channels strongest first, a saliency map the gradient of the logit, the
nearest neighbours those of the features, a loss curve the values the recipe reports.

A command missing from the CLI (renamed, dropped) fails its test: the tab's views are
fed by those commands."""
import glob
import os

import numpy as np
import pytest
from PIL import Image

from grid_checks import enlarged, grid_tiles, min_max_255
from test_tb_plugin import get_json, make_client, png_pixels

P = "/data/plugin/tfviz"
MODEL = "tiny"          # the bundle's name: the .keras file's stem, part of the run names


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
    model = keras.Model(inp, out)
    model_path = str(d / f"{MODEL}.keras")
    model.save(model_path)
    rng = np.random.default_rng(0)
    images = d / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / label / f"{i}.png")
    return {"dir": d, "model": model_path, "keras": model, "images": str(images),
            "image": str(images / "a" / "0.png"), "logdir": str(d / "logs")}


def _run(setup, argv):
    from tfviz.cli import cli, main
    assert argv[0] in cli.list_commands(None), \
        f"`tfviz {argv[0]}` is not a command any more (renamed or dropped?): {cli.list_commands(None)}"
    model = ["--model", setup["model"], "--preprocess", "0-1"]
    cwd = os.getcwd()
    os.chdir(setup["dir"])  # PNGs the commands write by default land here
    try:
        main(argv + model + ["--logdir", setup["logdir"]])
    except SystemExit as exc:
        assert not exc.code, f"tfviz {' '.join(argv)} exited with {exc.code}"
    finally:
        os.chdir(cwd)


def _served(setup, run, tag, kind):
    """The tab's view of ``run``/``tag`` (listed under ``kind``): its metadata at the
    latest step and every picture of that step, as the browser gets them."""
    client = make_client(setup["logdir"])
    runs = get_json(client, "/overview")["runs"]
    assert run in runs, f"run {run!r} not listed; runs: {sorted(runs)}"
    tags = runs[run]["tags"]
    assert tag in tags and tags[tag]["kind"] == kind, (run, tag, kind, tags)
    info = get_json(client, "/step", run=run, tag=tag)
    pictures = []
    for i in range(info["count"]):
        r = client.get(P + "/image", query_string={"run": run, "tag": tag, "step": str(info["step"]),
                                                   "index": str(i)})
        assert r.status_code == 200, (run, tag, i)
        pictures.append(png_pixels(r.get_data()))
    return info, pictures


def _image(path):
    return np.asarray(Image.open(path).convert("RGB"))


def _sub(setup, layer):
    import keras
    m = setup["keras"]
    return keras.Model(m.input, m.get_layer(layer).output)


def test_filters_command(setup):
    """conv1's 4 kernels (3x3x3): 4 RGB tiles, each enlarged 8 times to 24 pixels (at
    least 24), 2 x 2 with a 1-pixel white gap; each tile is its kernel min-max scaled."""
    _run(setup, ["filters"])
    info, pics = _served(setup, f"filters-{MODEL}", "filters/conv1", "filters")
    assert info["count"] == 1 and info["meta"]["layer"] == "conv1" and info["meta"]["model"] == MODEL
    grid = pics[0]
    kernel = setup["keras"].get_layer("conv1").get_weights()[0]          # [3, 3, 3, 4]
    for i, tile in enumerate(grid_tiles(grid, 4, 24, cols=2)):
        np.testing.assert_allclose(enlarged(tile, 8), min_max_255(kernel[..., i]), atol=0.51,
                                   err_msg=f"filter {i}")
    np.testing.assert_array_equal(grid, _image(setup["dir"] / "tfviz-out" / f"filters-{MODEL}-conv1.png"))


def test_activations_command(setup):
    """conv2's 6 channels (12 x 12 on a 16-pixel input) for the image, strongest mean
    first: 6 grey tiles enlarged 3 times to 36 pixels, 3 per row, each min-max scaled."""
    _run(setup, ["activations", setup["image"], "--layer", "conv2"])
    info, pics = _served(setup, f"activations-{MODEL}", "activations/conv2", "activations")
    assert info["count"] == 1 and info["meta"]["layer"] == "conv2" and info["meta"]["names"] == ["0.png"]
    act = _sub(setup, "conv2")(_image(setup["image"])[None] / 255.0).numpy()[0]   # [12, 12, 6]
    order = np.argsort(-act.mean(axis=(0, 1)), kind="stable")
    assert act.std() > 0
    for j, tile in enumerate(grid_tiles(pics[0], 6, 36, cols=3)):
        small = enlarged(tile, 3)
        assert (small == small[..., :1]).all()                                       # grey
        np.testing.assert_allclose(small[..., 0], min_max_255(act[..., order[j]]), atol=0.51,
                                   err_msg=f"tile {j}")


def test_patches_command_writes_the_patches_view(setup):
    import tfviz
    from tfviz.data import image_set
    from tfviz.inspect import max_activating_patches
    _run(setup, ["patches", "--images", setup["images"], "--layer", "conv2", "-c", "0,5", "-k", "3",
                 "--run", "patches-cli", "-o", str(setup["dir"] / "patches.png")])
    client = make_client(setup["logdir"])
    runs = get_json(client, "/overview")["runs"]
    assert {t: v["kind"] for t, v in runs["patches-cli"]["tags"].items()} == {"patches/conv2": "patches"}
    info, pics = _served(setup, "patches-cli", "patches/conv2", "patches")
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
            np.testing.assert_array_equal(pics[c * 3 + j], r.patches[j])
    # the scores are conv2's activations at those positions of those images, computed here
    act = _sub(setup, "conv2")(np.stack([_image(os.path.join(setup["images"], n)) for row in meta["names"]
                                         for n in row]) / 255.0).numpy()
    pos = [p for row in meta["positions"] for p in row]
    ch = [c for c in meta["channels"] for _ in range(3)]
    np.testing.assert_allclose([act[i, y, x, c] for i, ((y, x), c) in enumerate(zip(pos, ch))],
                               np.ravel(meta["scores"]), rtol=1e-5)


def test_embed_command_and_its_projector_run(setup):
    """The PCA map of the 10 images' features, nearest-neighbour strips whose neighbours
    and distances are those of the features (computed here), and the Projector files."""
    from tfviz.inspect import reduce_features, thumbnail_map
    _run(setup, ["embed", "--images", setup["images"], "--method", "pca", "--cell", "8"])
    run = f"embed-{MODEL}"
    paths = sorted(glob.glob(os.path.join(setup["images"], "*", "*.png")))
    imgs = np.stack([_image(p) for p in paths])
    feats = _sub(setup, "features")(imgs / 255.0).numpy()                      # [10, 8]
    run_dir = os.path.join(setup["logdir"], run)
    np.testing.assert_allclose(np.loadtxt(os.path.join(run_dir, "features.tsv"), delimiter="\t"), feats,
                               rtol=1e-4, atol=1e-6)
    assert open(os.path.join(run_dir, "metadata.tsv")).read().split() == [p.split(os.sep)[-2] for p in paths]
    assert os.path.exists(os.path.join(run_dir, "projector_config.pbtxt"))
    # the map: every image as an 8-pixel thumbnail at its PCA place
    info, (grid,) = _served(setup, run, "embeddings/pca_map", "embeddings")
    assert info["meta"]["role"] == "map" and info["meta"]["method"] == "pca"
    want = thumbnail_map(reduce_features(feats, "pca", 0), imgs, cell=8, seed=0)
    np.testing.assert_array_equal(grid, want)
    assert grid.std() > 0 and grid.shape[0] % 8 == 0 and grid.shape[1] % 8 == 0
    np.testing.assert_array_equal(grid, _image(setup["dir"] / "tfviz-out" / f"embed-{MODEL}-pca.png"))
    # the strips: [query, n1..n5] per row; the neighbours are the nearest in feature space
    info, strip = _served(setup, run, "embeddings/neighbors/features", "embeddings")
    meta, k = info["meta"], info["meta"]["row"] - 1
    assert meta["role"] == "neighbors" and k == 5 and len(strip) % (k + 1) == 0 and len(strip) >= 6
    which = [next(i for i, im in enumerate(imgs) if np.array_equal(im, s)) for s in strip]  # each thumbnail
    dist = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    for q in range(len(strip) // (k + 1)):
        query, got = which[q * (k + 1)], which[q * (k + 1) + 1:(q + 1) * (k + 1)]
        others = [i for i in np.argsort(dist[query], kind="stable") if i != query]
        np.testing.assert_allclose(meta["distances"][q], dist[query, others[:k]], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(dist[query, got], dist[query, others[:k]], rtol=1e-4, atol=1e-6)
        assert meta["labels"][q] == [paths[i].split(os.sep)[-2] for i in [query] + got]


def test_attribute_command(setup):
    """Saliency of class 0: the map served is max over colours of |d logit_0 / d x|
    (worked out here with a GradientTape on the pre-softmax logit), drawn in inferno, its
    brightest colour where the gradient is largest; the score is that logit."""
    import tensorflow as tf

    from tfviz.attribution.render import render_map
    from tfviz.images import colormap
    _run(setup, ["attribute", "saliency", setup["image"], "--target", "0", "--out", str(setup["dir"] / "attr")])
    img = _image(setup["image"])
    x = tf.constant(img[None] / 255.0, tf.float32)
    w, b = setup["keras"].get_layer("predictions").get_weights()
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = tf.matmul(_sub(setup, "features")(x), w) + b
        score = logits[:, 0]
    sal = np.abs(tape.gradient(score, x).numpy()[0]).max(-1)                       # [16, 16]
    assert sal.std() > 0
    np.testing.assert_allclose(np.load(setup["dir"] / "attr" / "0_saliency.npy"), sal, rtol=1e-4, atol=1e-7)

    info, (shown,) = _served(setup, MODEL, "attribution/inputs", "attribution")
    np.testing.assert_array_equal(shown, img)
    info, (drawn,) = _served(setup, MODEL, "attribution/saliency", "attribution")
    meta = info["meta"]
    assert meta["role"] == "map" and meta["method"] == "saliency" and meta["targets"] == ["0"]
    assert meta["target_kinds"] == ["class"] and meta["target_indices"] == [0]
    np.testing.assert_allclose(meta["scores"], [float(score[0])], rtol=1e-5)
    np.testing.assert_allclose(meta["probabilities"], [float(tf.nn.softmax(logits)[0, 0])], rtol=1e-5)
    assert drawn.shape == (16, 16, 3)
    np.testing.assert_allclose(drawn, render_map(sal), atol=1)
    top = colormap(np.ones((1, 1), np.float32), "inferno", 0.0, 1.0)[0, 0]
    np.testing.assert_array_equal(drawn[np.unravel_index(sal.argmax(), sal.shape)], top)


def test_classviz_command(setup):
    """Class 0's visualization: the loss curves served are the objective and its one
    term (the class-0 logit, so the two are equal) at every step, the values the recipe
    itself reports for the same seed; the final snapshot is the image written; the
    recipe's parameters are listed."""
    import tfviz
    from tfviz.synthesis import class_visualization
    _run(setup, ["classviz", "0", "--steps", "4", "--out", str(setup["dir"] / "classviz.png")])
    run = "classviz-0"
    client = make_client(setup["logdir"])
    entry = get_json(client, "/overview")["runs"][run]
    assert entry["scalars"] == ["tfviz/optimization/logit_0", "tfviz/optimization/objective"]
    curves = {t: get_json(client, "/scalars", run=run, tag=t)["points"] for t in entry["scalars"]}
    for tag, points in curves.items():
        assert [s for s, _ in points] == [0, 1, 2, 3], tag
        assert all(v is not None and np.isfinite(v) for _, v in points), (tag, points)
    objective = [v for _, v in curves["tfviz/optimization/objective"]]
    np.testing.assert_allclose([v for _, v in curves["tfviz/optimization/logit_0"]], objective, rtol=1e-6)
    bundle = tfviz.load_model(setup["model"], preprocess="0-1")
    res = class_visualization(bundle, 0, steps=4, seed=0)
    np.testing.assert_allclose(objective, res.history, rtol=1e-4, atol=1e-6)
    params = get_json(client, "/params", run=run)["params"]["optimization"]
    assert params["recipe"] == "class_visualization" and params["target"] == 0 and params["steps"] == 4
    info, (final,) = _served(setup, run, "optimization/snapshots", "optimization")
    assert info["step"] == 4
    np.testing.assert_array_equal(final, _image(setup["dir"] / "classviz.png"))
    np.testing.assert_array_equal(final, res.image)
    assert final.shape == (16, 16, 3) and final.std() > 0
