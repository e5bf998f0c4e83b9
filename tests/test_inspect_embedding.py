"""Nearest neighbours, t-SNE/PCA maps, the thumbnail map and the Projector export
(loaded by TensorBoard's own projector plugin through its WSGI app)."""
import json
import os

import numpy as np
import pytest

import tfviz
from tfviz.data import DataError, digits as digits_set
from tfviz.inspect import (default_feature_layer, embed, export_projector, extract_features, label_agreement,
                           nearest_neighbors, reduce_features, thumbnail_map)
from tfviz.inspect.embedding import grid_cells, sprite_layout


@pytest.fixture(scope="module")
def digit_data():
    return digits_set()


def _shift(images, s, seed=0):
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, im in enumerate(images):
        dy, dx = rng.integers(-s, s + 1, 2)
        out[i] = np.roll(np.roll(im, dy, 0), dx, 1)   # digits have a black border: rolling shifts
    return out


def test_feature_layer_is_the_one_before_the_classifier(digits):
    from tfviz.zoo import efficientnet_lite0 as lite
    assert default_feature_layer(digits) == "features"
    lite0 = tfviz.load_model(lite.build(), preprocess="torch")
    assert default_feature_layer(lite0) == "avg_pool"  # softmax is its own layer
    import keras
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Dense(4, name="hidden")(keras.layers.Flatten(name="flat")(inp))
    fused = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="clf")(h))
    assert default_feature_layer(tfviz.load_model(fused, preprocess="raw")) == "hidden"   # fused softmax


def test_neighbours_self_first_and_features_beat_pixels(digits, digit_data, capsys):
    labels = digit_data.labels
    feats = extract_features(digits, digit_data)
    pix = extract_features(digits, digit_data, space="pixels")
    q = np.arange(len(digit_data))
    idx, dist = nearest_neighbors(digits, q, digit_data, k=6, dataset_features=feats)
    np.testing.assert_array_equal(idx[:, 0], q)        # each image's nearest neighbour is itself ...
    assert np.all(dist[:, 0] == 0)                     # ... at distance 0
    assert np.all(np.diff(dist, axis=1) >= 0)
    # distances are plain L2 in feature space, and the k found are the k nearest by L2 (brute force)
    np.testing.assert_allclose(dist[5, 3], np.linalg.norm(feats.features[5] - feats.features[idx[5, 3]]), rtol=1e-5)
    f = feats.features.astype(np.float64)
    sq = (f ** 2).sum(1)
    brute = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * f @ f.T, 0))
    np.testing.assert_allclose(dist, np.sort(brute, axis=1)[:, :6], rtol=1e-5, atol=1e-4)
    pidx, _ = nearest_neighbors(digits, q, digit_data, k=6, space="pixels", dataset_features=pix)
    rate_f = label_agreement(idx[:, 1:], labels, labels)
    rate_p = label_agreement(pidx[:, 1:], labels, labels)
    # queries moved by up to 4 pixels: pixel distance suffers, features much less
    sq = np.arange(0, len(digit_data), 2)
    shifted = _shift(digit_data.take(sq), 4)
    sidx, _ = nearest_neighbors(digits, shifted, digit_data, k=5, dataset_features=feats)
    spidx, _ = nearest_neighbors(digits, shifted, digit_data, k=5, space="pixels", dataset_features=pix)
    srate_f = label_agreement(sidx, labels[sq], labels)
    srate_p = label_agreement(spidx, labels[sq], labels)
    with capsys.disabled():
        print(f"\n  label agreement of 5 nearest neighbours on digits: features {rate_f:.1%}, pixels {rate_p:.1%}; "
              f"queries shifted <= 4 px: features {srate_f:.1%}, pixels {srate_p:.1%}")
    assert rate_f > rate_p and (1 - rate_f) < 0.75 * (1 - rate_p)   # fewer than 3/4 of the pixel mistakes
    assert srate_f > srate_p + 0.05


def test_neighbours_of_images_and_bad_k(digits, digit_data):
    imgs = digit_data.take([3, 700])
    idx, dist = nearest_neighbors(digits, imgs, digit_data, k=2, space="pixels")
    assert list(idx[:, 0]) == [3, 700] and np.all(dist[:, 0] < 1e-6)
    small = tfviz.data.from_arrays(digit_data.take(np.arange(4)), digit_data.labels[:4])
    with pytest.raises(DataError, match="k=5 is larger than the data set \\(4 images\\)"):
        nearest_neighbors(digits, [0], small, k=5)


def test_embed_deterministic_for_a_seed(digits, digit_data):
    sub = tfviz.data.from_arrays(digit_data.take(np.arange(150)), digit_data.labels[:150])
    a = embed(digits, sub, method="tsne", seed=3)
    b = embed(digits, sub, method="tsne", seed=3)
    assert a.shape == (150, 2)
    np.testing.assert_array_equal(a, b)
    p = embed(digits, sub, method="pca")
    f = extract_features(digits, sub).features
    # PCA: the first coordinate is the projection on the top principal direction
    centred = f - f.mean(0)
    top = np.linalg.svd(centred, full_matrices=False)[2][0]
    np.testing.assert_allclose(np.abs(p[:, 0]), np.abs(centred @ top), rtol=1e-3, atol=1e-3)


def test_thumbnail_map_one_thumbnail_per_cell(rng):
    n = 60
    coords = rng.normal(size=(n, 2))
    coords[:20] = 0.0                                       # 20 points on top of each other
    imgs = rng.integers(0, 256, (n, 10, 10, 3), dtype=np.uint8)
    canvas, cells = thumbnail_map(coords, imgs, cell=12, return_cells=True)
    assert np.all(cells >= 0)
    assert len({tuple(c) for c in cells}) == n             # no two thumbnails in one cell
    for i in (0, 7, 33):                                    # each thumbnail is its image, at its cell
        r, c = cells[i]
        np.testing.assert_array_equal(canvas[r * 12 + 1:r * 12 + 11, c * 12 + 1:c * 12 + 11], imgs[i])
    # fewer cells than images: the extra ones are left out, still one per cell
    small, cells2 = thumbnail_map(coords, imgs, size=60, cell=12, return_cells=True)
    placed = cells2[cells2[:, 0] >= 0]
    assert small.shape == (60, 60, 3) and len(placed) == 25 and len({tuple(c) for c in placed}) == 25


def test_grid_cells_keep_the_layout():
    pts = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    cells = grid_cells(pts, (3, 3))
    assert [tuple(c) for c in cells] == [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]
    big = np.random.default_rng(0).normal(size=(3000, 2))       # the greedy path (> 8M pairs)
    cells = grid_cells(big, (60, 60))
    assert len({tuple(c) for c in cells}) == 3000 and cells.min() >= 0


def test_sprite_stays_within_8192_pixels():
    assert sprite_layout(100, 64) == (64, 10)
    assert sprite_layout(20_000, 64) == (57, 142)           # 142 * 57 = 8094
    t, cols = sprite_layout(1_000_000, 64)
    assert t * cols <= 8192 and (t, cols) == (8, 1000)
    with pytest.raises(DataError, match="do not fit"):
        sprite_layout(70_000_000, 64)


def _projector_client(logdir):
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector import projector_plugin
    from werkzeug import test as werkzeug_test
    from werkzeug import wrappers
    multiplexer = event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = base_plugin.TBContext(logdir=logdir, data_provider=provider, multiplexer=multiplexer)
    plugin = projector_plugin.ProjectorPlugin(ctx)
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return werkzeug_test.Client(app, wrappers.Response)


def test_projector_export_loads_in_tensorboard(tmp_path, rng):
    n, d = 23, 5
    feats = rng.normal(size=(n, d)).astype(np.float32)
    imgs = rng.integers(0, 256, (n, 20, 20, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, n)
    logdir = tmp_path / "logs"
    paths = export_projector(feats, imgs, labels, str(logdir / "emb"), class_names=["cat", "dog", "fox"])
    assert sorted(os.listdir(logdir / "emb"))[-4:] == ["features.tsv", "metadata.tsv", "projector_config.pbtxt",
                                                       "sprite.png"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(logdir / "emb"))
    meta = open(paths["metadata"]).read().splitlines()
    assert meta == [["cat", "dog", "fox"][v] for v in labels]   # one column: no header row

    c = _projector_client(str(logdir))
    runs = json.loads(c.get("/data/plugin/projector/runs").get_data())
    assert runs == ["emb"]
    info = json.loads(c.get("/data/plugin/projector/info?run=emb").get_data())
    [e] = info["embeddings"]
    assert e["tensorName"] == "embedding"
    assert [int(v) for v in e["tensorShape"]] == [n, d]  # TensorBoard sends the shape as strings or ints
    r = c.get("/data/plugin/projector/tensor?run=emb&name=embedding")
    assert r.status_code == 200
    np.testing.assert_allclose(np.frombuffer(r.get_data(), np.float32).reshape(n, d), feats, rtol=1e-5)
    r = c.get("/data/plugin/projector/metadata?run=emb&name=embedding")
    assert r.status_code == 200 and r.get_data(as_text=True).splitlines() == meta
    r = c.get("/data/plugin/projector/sprite_image?run=emb&name=embedding")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    from io import BytesIO

    from PIL import Image
    sheet = np.asarray(Image.open(BytesIO(r.get_data())))
    assert sheet.shape == (5 * 20, 5 * 20, 3)                  # 23 images in a 5 x 5 sheet of 20 px thumbnails
    np.testing.assert_array_equal(sheet[20:40, 40:60], imgs[7])  # image 7: row 1, column 2


def test_projector_metadata_header_with_two_columns(tmp_path, rng):
    feats = rng.normal(size=(4, 3))
    paths = export_projector(feats, None, [0, 1, 1, 0], str(tmp_path / "run"),
                             metadata={"file": ["a.png", "b.png", "c\tx.png", "d.png"]})
    assert open(paths["metadata"]).read().splitlines() == ["label\tfile", "0\ta.png", "1\tb.png", "1\tc x.png",
                                                           "0\td.png"]
    assert paths["sprite"] is None
    c = _projector_client(str(tmp_path))
    r = c.get("/data/plugin/projector/metadata?run=run&name=embedding")
    assert r.status_code == 200 and r.get_data(as_text=True).startswith("label\tfile\n")


def test_projector_bad_input_writes_nothing(tmp_path, rng):
    run = tmp_path / "run"
    with pytest.raises(DataError, match="5 feature rows but 4 labels"):
        export_projector(rng.normal(size=(5, 3)), None, [0, 1, 2, 3], str(run))
    with pytest.raises(DataError, match="NaN"):
        export_projector(np.full((2, 2), np.nan), None, None, str(run))
    with pytest.raises(DataError, match="5 feature rows but 2 images"):
        export_projector(rng.normal(size=(5, 3)), np.zeros((2, 4, 4, 3), np.uint8), None, str(run))
    assert not run.exists()


def test_reduce_rejects_too_few_points():
    with pytest.raises(DataError, match="at least 3"):
        reduce_features(np.zeros((2, 4)), "pca")
