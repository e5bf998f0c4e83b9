"""Keras callbacks for model.fit: they log on the right epochs, and what they log is
exactly what tfviz.inspect / tfviz.attribution compute for the weights of that epoch
(read back through the tfviz plugin's routes). A tiny model, a few epochs."""
import json

import numpy as np
import pytest

from test_tb_plugin import make_client, png_pixels

import keras  # noqa: E402

from tfviz import attribution, inspect  # noqa: E402 - a missing module of ours is a failure, not a skip
from tfviz import callbacks as cb  # noqa: E402

P = "/data/plugin/tfviz"
CLASSES = ["ant", "bee", "cat"]


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(5, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 12, 12, 3), dtype=np.uint8)
    labels = (images[..., 0].mean((1, 2)) > 127).astype(int) + (images[..., 1].mean((1, 2)) > 127)
    return images, labels


def fit(model, data, callbacks, epochs):
    images, labels = data
    model.fit(images.astype(np.float32) / 255.0, labels, epochs=epochs, batch_size=8, verbose=0,
              callbacks=callbacks, shuffle=False)


def bundle_of(model):
    import tfviz
    return tfviz.load_model(model, preprocess="0-1", class_names=CLASSES)


def get(client, route, **q):
    r = client.get(P + route, query_string=q)
    assert r.status_code == 200, (route, q, r.get_data(as_text=True))
    return r


def steps_of(client, run, tag):
    return [s["step"] for s in json.loads(get(client, "/series", run=run, tag=tag).get_data())["steps"]]


def image_of(client, run, tag, step, index=0):
    return png_pixels(get(client, "/image", run=run, tag=tag, step=str(step), index=str(index)).get_data())


class Recorder(cb.TfvizCallback):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.epochs = []

    def log(self, epoch):
        self.epochs.append(epoch)


@pytest.mark.parametrize("every,epochs,expected", [(1, 3, [0, 1, 2]), (2, 5, [0, 2, 4]), (2, 4, [0, 2, 3]),
                                                   (5, 1, [0])])
def test_logs_first_every_nth_and_last_epoch(tmp_path, data, every, epochs, expected):
    rec = Recorder(str(tmp_path), every=every)
    fit(tiny_model(), data, [rec], epochs)
    assert rec.epochs == expected
    assert rec.writer is None  # closed at the end of training


def test_bad_arguments_are_refused(tmp_path, data):
    with pytest.raises(ValueError, match="every"):
        Recorder(str(tmp_path), every=0)
    with pytest.raises(ValueError, match="uint8"):
        cb.Attributions(str(tmp_path), data[0].astype(np.float32))
    with pytest.raises(ValueError, match="unknown attribution"):
        cb.Attributions(str(tmp_path), data[0][:2], methods=["nope"])
    with pytest.raises(ValueError, match="targets"):
        c = cb.Attributions(str(tmp_path), data[0][:2], targets=[0, 1, 2], preprocess="0-1")
        c.set_model(tiny_model())
        c._target_indices(np.zeros((2, 3)))


def test_filter_grids_follow_the_weights(tmp_path, data):
    model = tiny_model()
    fit(model, data, [cb.FilterGrids(str(tmp_path), layers=["conv1"], preprocess="0-1")], epochs=3)
    client = make_client(tmp_path)
    assert steps_of(client, "train", "filters/conv1") == [0, 1, 2]
    last = image_of(client, "train", "filters/conv1", 2)
    np.testing.assert_array_equal(last, inspect.filter_grid(bundle_of(model), layer="conv1"))
    assert not np.array_equal(image_of(client, "train", "filters/conv1", 0), last)  # training moved them


def test_filter_grids_default_to_the_first_convolution(tmp_path, data):
    fit(tiny_model(), data, [cb.FilterGrids(str(tmp_path), preprocess="0-1", run="r")], epochs=1)
    assert steps_of(make_client(tmp_path), "r", "filters/conv1") == [0]


def test_activation_maps_per_image_and_layer(tmp_path, data):
    model = tiny_model()
    imgs = data[0][:2]
    fit(model, data, [cb.ActivationMaps(str(tmp_path), imgs, layers=["conv2"], names=["one", "two"],
                                        preprocess="0-1")], epochs=2)
    client = make_client(tmp_path)
    assert steps_of(client, "train", "activations/conv2") == [0, 1]
    meta = json.loads(get(client, "/step", run="train", tag="activations/conv2").get_data())["meta"]
    assert meta["names"] == ["one", "two"] and meta["layer"] == "conv2"
    b = bundle_of(model)
    for i in range(2):
        np.testing.assert_array_equal(image_of(client, "train", "activations/conv2", 1, i),
                                      inspect.activation_grid(b, imgs[i], "conv2"))


def test_max_patches_per_epoch(tmp_path, data):
    model = tiny_model()
    imgs = data[0][:6]
    names = [f"v{i}" for i in range(6)]
    fit(model, data, [cb.MaxPatches(str(tmp_path), imgs, layer="conv2", channels=[0, 3], k=3, names=names,
                                    preprocess="0-1")], epochs=2)
    client = make_client(tmp_path)
    assert steps_of(client, "train", "patches/conv2") == [0, 1]
    meta = json.loads(get(client, "/step", run="train", tag="patches/conv2", step="1").get_data())["meta"]
    res = inspect.max_activating_patches(bundle_of(model), imgs, "conv2", [0, 3], k=3)
    assert meta["channels"] == [0, 3] and meta["row"] == 3
    np.testing.assert_allclose(meta["scores"], [r.scores for r in res], rtol=1e-5, atol=1e-6)
    assert meta["names"] == [[names[i] for i in r.locations[:, 0]] for r in res]
    for c, r in enumerate(res):
        for j in range(3):
            np.testing.assert_array_equal(image_of(client, "train", "patches/conv2", 1, c * 3 + j), r.patches[j])
    with pytest.raises(ValueError, match="k=7 patches, one per image, need at least 7 images"):
        cb.MaxPatches(str(tmp_path), imgs, layer="conv2", k=7)


def test_attributions_with_targets_and_scores(tmp_path, data):
    model = tiny_model()
    imgs = data[0][:2]
    fit(model, data, [cb.Attributions(str(tmp_path), imgs, targets=[0, "cat"], names=["x", "y"],
                                      preprocess="0-1", class_names=CLASSES)], epochs=2)
    client = make_client(tmp_path)
    assert steps_of(client, "train", "attribution/saliency") == [0, 1]
    meta = json.loads(get(client, "/step", run="train", tag="attribution/saliency").get_data())["meta"]
    assert meta["targets"] == ["ant", "cat"] and meta["target_indices"] == [0, 2]
    # scores are the logits: GAP features times the dense kernel plus bias, by hand
    b = bundle_of(model)
    feats = np.asarray(b.features("gap").predict_on_batch(imgs.astype(np.float32) / 255.0))
    w, bias = model.get_layer("predictions").get_weights()
    logits = feats @ w + bias
    np.testing.assert_allclose(meta["scores"], [logits[0, 0], logits[1, 2]], rtol=1e-4, atol=1e-5)
    # the inputs, and each map coloured exactly as the CLI colours it (one renderer)
    np.testing.assert_array_equal(image_of(client, "train", "attribution/inputs", 1, 1), imgs[1])
    sal = np.asarray(attribution.saliency(b, imgs, [0, 2]))
    cam = np.asarray(attribution.grad_cam(b, imgs, [0, 2]))
    for i in range(2):
        np.testing.assert_array_equal(image_of(client, "train", "attribution/saliency", 1, i),
                                      attribution.render_map(sal[i]))  # the CLI's renderer
        got = image_of(client, "train", "attribution/grad_cam", 1, i).astype(int)
        assert cam[i].shape == got.shape[:2]  # Grad-CAM is upsampled to the image already
        assert np.abs(got - attribution.render_map(cam[i]).astype(int)).max() <= 1


def test_attributions_default_to_the_predicted_class(tmp_path, data):
    model = tiny_model()
    imgs = data[0][:3]
    fit(model, data, [cb.Attributions(str(tmp_path), imgs, methods="saliency", preprocess="0-1")], epochs=1)
    meta = json.loads(get(make_client(tmp_path), "/step", run="train", tag="attribution/saliency").get_data())["meta"]
    predicted = np.argmax(model.predict(imgs.astype(np.float32) / 255.0, verbose=0), -1)
    assert meta["target_indices"] == predicted.tolist()


def test_embeddings_every_n_epochs(tmp_path, data):
    model = tiny_model()
    imgs, labels = data
    fit(model, data, [cb.Embeddings(str(tmp_path), imgs, labels=labels, every=2, preprocess="0-1")], epochs=3)
    client = make_client(tmp_path)
    assert steps_of(client, "train", "embeddings/embedding") == [0, 2]
    b = bundle_of(model)
    expected = inspect.thumbnail_map(inspect.embed(b, imgs, method="pca"), imgs)
    np.testing.assert_array_equal(image_of(client, "train", "embeddings/embedding", 2), expected)


def test_callbacks_of_one_run_share_one_event_file(tmp_path, data):
    import glob
    recs = [Recorder(str(tmp_path)), Recorder(str(tmp_path), every=2), Recorder(str(tmp_path), run="other")]
    fit(tiny_model(), data, recs, epochs=2)
    assert len(glob.glob(str(tmp_path / "train" / "events.*"))) == 1
    assert len(glob.glob(str(tmp_path / "other" / "events.*"))) == 1
    assert cb._WRITERS == {} and all(r.writer is None for r in recs)
    fit(tiny_model(), data, recs[:1], epochs=1)  # a second fit opens a fresh writer
    assert recs[0].epochs == [0, 1, 0]
