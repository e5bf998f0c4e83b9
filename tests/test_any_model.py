"""Models that are not single-output classifiers: several outputs, multi-label (sigmoid) heads,
regression heads, segmentation maps, and targets given as functions -- every answer worked
out here from the model's own weights and a GradientTape."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfviz
from tfviz import attribution as A
from tfviz.attribution.core import gradients, target_scores
from tfviz.attribution.targets import Negate, Region, resolve_targets
from tfviz.errors import ModelError, TargetError
from tests.cli_helpers import run_cli

SIZE = 16


def _images(n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)


def _trunk(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inp)
    return inp, h, keras.layers.GlobalAveragePooling2D(name="gap")(h)


def two_outputs():
    inp, _, f = _trunk()
    species = keras.layers.Dense(3, activation="softmax", name="species_head")(f)
    age = keras.layers.Dense(1, name="age_head")(f)
    return keras.Model(inp, {"species": species, "age": age}, name="two_outputs")


def multi_label():
    inp, _, f = _trunk(1)
    return keras.Model(inp, keras.layers.Dense(5, activation="sigmoid", name="tags")(f), name="multi_label")


def segmenter():
    inp, h, _ = _trunk(2)
    return keras.Model(inp, keras.layers.Conv2D(3, 1, activation="softmax", name="classes")(h), name="segmenter")


def _features(model, x, layer="gap"):
    return keras.Model(model.inputs[0], model.get_layer(layer).output)(x).numpy()


# --------------------------------------------------------------------------- several outputs
def test_outputs_by_name_and_index():
    m = two_outputs()
    b = tfviz.load_model(m, preprocess="0-1")
    assert b.output_names == ["species", "age"] and b.output_name == "species" and b.head_kind == "softmax"
    by_name = tfviz.load_model(m, preprocess="0-1", output="age")
    assert by_name.output_name == "age" and by_name.with_output(1) is by_name.with_output("age")
    assert b.with_output("age").output_name == "age" and b.with_output(0) is b
    x = b.preprocess(_images())
    f = _features(m, x)
    w, bias = m.get_layer("age_head").get_weights()
    np.testing.assert_allclose(by_name.predict(_images()), f @ w + bias, rtol=1e-5, atol=1e-6)
    p = b.predict(_images())
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ModelError, match=r"unknown output 'agee'; did you mean 'age'"):
        tfviz.load_model(m, preprocess="0-1", output="agee")
    with pytest.raises(ModelError, match="out of range"):
        b.with_output(5)


# --------------------------------------------------------------------------- multi-label and regression
def test_multi_label_scores_are_the_logits_before_the_sigmoid():
    m = multi_label()
    b = tfviz.load_model(m, preprocess="0-1")
    assert b.head_kind == "sigmoid"
    x = b.preprocess(_images(3))
    w, bias = m.get_layer("tags").get_weights()
    logits = _features(m, x) @ w + bias
    np.testing.assert_allclose(b.logits(x).numpy(), logits, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.predict(_images(3)), 1 / (1 + np.exp(-logits)), rtol=1e-5, atol=1e-6)
    targets = resolve_targets(b, None, 3, x)
    assert [t.index for t in targets] == list(np.argmax(logits, axis=1))   # top-1: the highest logit
    np.testing.assert_allclose(target_scores(b, x, targets), logits.max(axis=1), rtol=1e-5)
    np.testing.assert_allclose(target_scores(b, x, targets, probability=True),
                               1 / (1 + np.exp(-logits.max(axis=1))), rtol=1e-5)


def test_a_regression_is_explained_as_its_value_and_negate_explains_what_lowers_it():
    b = tfviz.load_model(two_outputs(), preprocess="0-1", output="age")
    assert b.is_regression and b.head_kind == "linear"
    imgs = _images()
    ig, delta = A.integrated_gradients(b, imgs, steps=64, return_delta=True)
    x = b.preprocess(imgs)
    black = b.preprocess(np.zeros_like(imgs))
    change = b.logits(x).numpy()[:, 0] - b.logits(black).numpy()[:, 0]
    np.testing.assert_allclose(ig.reshape(2, -1).sum(1), change, atol=0.02 * np.abs(change).max() + 1e-6)
    neg = A.integrated_gradients(b, imgs, Negate(), steps=64)
    np.testing.assert_allclose(neg, -ig, rtol=1e-5, atol=1e-8)
    assert b.top_k(imgs, 1)[0][0][1] == "age"


# --------------------------------------------------------------------------- segmentation
def _pixel_gradient_sum(b, x, c, pixels):
    """d/dx of the sum of class ``c``'s logits over ``pixels`` (a list of (y, x)), one
    pixel's gradient at a time."""
    total = 0
    for (py, px) in pixels:
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = b.logits(xt)[:, py, px, c]
        total = total + tape.gradient(out, xt).numpy()
    return total


def test_region_sum_gradient_is_the_sum_of_the_pixel_gradients():
    b = tfviz.load_model(segmenter(), preprocess="0-1")
    assert b.head_kind == "softmax" and b.predict(_images(1)).shape == (1, SIZE, SIZE, 3)
    x = b.preprocess(_images(1))
    box = (2, 3, 6, 5)                       # x0, y0, x1, y1 in pixels (the map is at input resolution)
    (t,) = resolve_targets(b, Region(1, box=box), 1, x)
    assert t.region_mode == "box_sum" and t.region_box == (3, 2, 5, 6)
    _, g = gradients(b, x, [t])
    want = _pixel_gradient_sum(b, x, 1, [(py, px) for py in range(3, 5) for px in range(2, 6)])
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-6)
    (tm,) = resolve_targets(b, Region(1, box=box, reduce="mean"), 1, x)
    np.testing.assert_allclose(gradients(b, x, [tm])[1], want / 8, rtol=1e-4, atol=1e-7)


def test_a_segmentation_class_is_explained_over_the_pixels_predicted_as_it():
    b = tfviz.load_model(segmenter(), preprocess="0-1")
    for seed in range(50):  # an image whose largest class is not the one of its first pixel
        x = b.preprocess(_images(1, seed=seed))
        logits = b.logits(x).numpy()[0]
        counts = np.bincount(logits.argmax(-1).ravel(), minlength=3)
        if counts.argmax() != logits[0, 0].argmax():
            break
    (top,) = resolve_targets(b, None, 1, x)
    assert top.index == counts.argmax() and top.region_mode == "predicted_sum"   # top-1: the largest area
    c = int(counts.argmax())
    pixels = list(zip(*np.nonzero(logits.argmax(-1) == c)))
    np.testing.assert_allclose(target_scores(b, x, [top]), [logits[..., c][logits.argmax(-1) == c].sum()],
                               rtol=1e-5)
    np.testing.assert_allclose(gradients(b, x, [top])[1], _pixel_gradient_sum(b, x, c, pixels), rtol=1e-4,
                               atol=1e-6)
    for name in A.methods_for(b):            # every method that applies explains the map
        options = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 2},
                   "gradient_shap": {"samples": 2}}.get(name, {})
        out = A.METHODS[name](b, _images(1, seed=seed), **options)
        assert out.shape[:3] == (1, SIZE, SIZE) and np.isfinite(out).all(), name


def test_region_targets_need_a_map_and_a_box_inside_the_image():
    seg = tfviz.load_model(segmenter(), preprocess="0-1")
    x = seg.preprocess(_images(1))
    with pytest.raises(TargetError, match="not inside the 16x16 input"):
        resolve_targets(seg, Region(0, box=(0, 0, 20, 4)), 1, x)
    clf = tfviz.load_model(multi_label(), preprocess="0-1")
    with pytest.raises(TargetError, match="needs a map output"):
        resolve_targets(clf, Region(0), 1, clf.preprocess(_images(1)))


# --------------------------------------------------------------------------- targets as functions
def test_a_function_target_equal_to_a_class_gives_the_same_maps():
    b = tfviz.load_model(two_outputs(), preprocess="0-1")
    imgs = _images()
    for method in (A.saliency, A.grad_cam, A.integrated_gradients):
        opts = {"steps": 8} if method is A.integrated_gradients else {}
        np.testing.assert_allclose(method(b, imgs, lambda out: out[:, 2], **opts), method(b, imgs, 2, **opts),
                                   rtol=1e-5, atol=1e-7)
    diff = A.saliency(b, imgs, lambda out: out[:, 1] - out[:, 0])
    x = tf.constant(b.preprocess(imgs))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = b.logits(x)
        s = tf.reduce_sum(out[:, 1] - out[:, 0])
    np.testing.assert_allclose(diff, np.abs(tape.gradient(s, x).numpy()).max(-1), rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- refused at load
def test_models_tfviz_cannot_explain_are_refused_in_one_line():
    img = keras.Input((SIZE, SIZE, 3))
    f = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(img))
    table, other = keras.Input((4,)), keras.Input((3,))
    no_image = keras.Model([table, other], keras.layers.Dense(2)(keras.layers.Concatenate()([table, other])))
    with pytest.raises(ModelError, match="no 4-D image input"):
        tfviz.load_model(no_image, preprocess="0-1")
    sig = keras.Input((100, 1))
    signal = keras.Model(sig, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(
        keras.layers.Conv1D(2, 3)(sig))))
    with pytest.raises(ModelError, match=r"tfviz needs images \[N, H, W, 3\]"):
        tfviz.load_model(signal, preprocess="0-1")
    seq = keras.Model(img, keras.layers.Reshape((4, 2))(keras.layers.Dense(8)(f)))
    with pytest.raises(ModelError, match=r"has shape \(None, 4, 2\)"):
        tfviz.load_model(seq, preprocess="0-1")


# --------------------------------------------------------------------------- the command line
def test_cli_output_region_and_negate(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = two_outputs()
    m.save(tmp_path / "two.keras")
    photo = tmp_path / "p.png"
    tfviz.images.save_png(str(photo), _images(1)[0])
    code, out, err = run_cli(["attribute", "saliency", str(photo), "--model", str(tmp_path / "two.keras"),
                              "--preprocess", "0-1", "--output", "age", "--negate", "-o", "maps"], capsys)
    assert code == 0, err
    b = tfviz.load_model(str(tmp_path / "two.keras"), preprocess="0-1", output="age")
    np.testing.assert_allclose(np.load(tmp_path / "maps" / "p_saliency.npy"),
                               A.saliency(b, [str(photo)], Negate())[0], rtol=1e-5)
    code, out, err = run_cli(["attribute", "saliency", str(photo), "--model", str(tmp_path / "two.keras"),
                              "--preprocess", "0-1", "--output", "size"], capsys)
    assert code == 2 and err.startswith("error: unknown output 'size'") and len(err.strip().splitlines()) == 1
    seg = segmenter()
    seg.save(tmp_path / "seg.keras")
    code, out, err = run_cli(["attribute", "grad_cam", str(photo), "--model", str(tmp_path / "seg.keras"),
                              "--preprocess", "0-1", "--target", "1", "--region", "0,0,8,8", "-o", "seg"], capsys)
    assert code == 0, err
    sb = tfviz.load_model(str(tmp_path / "seg.keras"), preprocess="0-1")
    np.testing.assert_allclose(np.load(tmp_path / "seg" / "p_grad_cam.npy"),
                               A.grad_cam(sb, [str(photo)], Region(1, box=(0, 0, 8, 8)))[0], rtol=1e-5, atol=1e-7)
    code, out, err = run_cli(["attribute", "saliency", str(photo), "--region", "1,2,3"], capsys)
    assert code == 2 and "four whole numbers" in err


# --------------------------------------------------------------------------- several inputs
def image_and_table():
    """Scores = softmax(A(image) + B(table)): the image's part and the table's part do not interact."""
    keras.utils.set_random_seed(4)
    img = keras.Input((SIZE, SIZE, 3), name="image")
    tab = keras.Input((4,), name="table")
    f = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu", name="conv")(img))
    out = keras.layers.Add()([keras.layers.Dense(3, name="from_image")(f), keras.layers.Dense(3, name="from_table")(tab)])
    return keras.Model({"image": img, "table": tab}, keras.layers.Softmax()(out), name="image_and_table")


def test_other_inputs_are_held_and_the_image_is_explained():
    m = image_and_table()
    b = tfviz.load_model(m, preprocess="0-1")
    assert list(b.held_inputs) == ["table"] and b.user_model is m
    imgs = _images()
    rows = np.arange(8.0, dtype=np.float32).reshape(2, 4)
    want = m({"image": b.preprocess(imgs), "table": rows}).numpy()
    np.testing.assert_allclose(b.predict(imgs, inputs={"table": rows}), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b.predict(imgs, inputs={"table": rows[1]}),
                               m({"image": b.preprocess(imgs), "table": rows[[1, 1]]}).numpy(), rtol=1e-5, atol=1e-7)
    # the table shifts every class's logit but not how the image moves it: the same image maps
    for name in ("saliency", "grad_cam", "integrated_gradients"):
        opts = {"steps": 8} if name == "integrated_gradients" else {}
        zeros = A.METHODS[name](b, imgs, 1, inputs={"table": np.zeros(4)}, **opts)
        per_image = A.METHODS[name](b, imgs, 1, inputs={"table": rows}, **opts)
        np.testing.assert_allclose(per_image, zeros, rtol=1e-5, atol=1e-7)
    # the top-1 class follows the held values (the table decides it here)
    big = np.array([0, 0, 0, 50.0], np.float32)
    top = A.saliency(b, imgs, inputs={"table": big})
    cls = int(np.argmax(b.predict(imgs[:1], inputs={"table": big})))
    np.testing.assert_allclose(top, A.saliency(b, imgs, cls, inputs={"table": big}), rtol=1e-6)
    with pytest.raises(tfviz.TfvizError, match="unknown input 'tabel'"):
        A.saliency(b, imgs, inputs={"tabel": rows})
    with pytest.raises(tfviz.TfvizError, match=r"give one row \(4,\)"):
        A.saliency(b, imgs, inputs={"table": np.zeros((3, 4))})


def test_the_image_input_is_found_or_named():
    a = keras.Input((SIZE, SIZE, 3), name="left")
    c = keras.Input((SIZE, SIZE, 3), name="right")
    two_images = keras.Model([a, c], keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Add()([a, c]))))
    with pytest.raises(ModelError, match="several 4-D image input; name the image input"):
        tfviz.load_model(two_images, preprocess="0-1")
    b = tfviz.load_model(two_images, preprocess="0-1", image_input="right")
    assert list(b.held_inputs) == ["left"]


def test_cli_inputs_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    image_and_table().save(tmp_path / "m.keras")
    photo = tmp_path / "p.png"
    tfviz.images.save_png(str(photo), _images(1)[0])
    np.savez(tmp_path / "row.npz", table=np.array([0, 0, 0, 50.0], np.float32))
    code, out, err = run_cli(["predict", str(photo), "--model", str(tmp_path / "m.keras"), "--preprocess", "0-1",
                              "--inputs", str(tmp_path / "row.npz")], capsys)
    assert code == 0, err
    b = tfviz.load_model(str(tmp_path / "m.keras"), preprocess="0-1")
    p = b.predict([str(photo)], inputs={"table": np.array([0, 0, 0, 50.0])})[0]
    assert f"{p.max():.1%}" in out
    np.savez(tmp_path / "bad.npz", tabel=np.zeros(4))
    code, out, err = run_cli(["predict", str(photo), "--model", str(tmp_path / "m.keras"), "--preprocess", "0-1",
                              "--inputs", str(tmp_path / "bad.npz")], capsys)
    assert code == 2 and "unknown input 'tabel'" in err and len(err.strip().splitlines()) == 1


def test_a_mask_region_sums_the_class_over_the_mask():
    b = tfviz.load_model(segmenter(), preprocess="0-1")
    imgs = _images(2)
    x = b.preprocess(imgs)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[4:8, 2:10] = 1.0
    g_mask = gradients(b, x, resolve_targets(b, Region(2, mask=mask), 2, x))[1]
    g_box = gradients(b, x, resolve_targets(b, Region(2, box=(2, 4, 10, 8)), 2, x))[1]
    np.testing.assert_allclose(g_mask, g_box, rtol=1e-4, atol=1e-7)      # a box is a mask of ones
    logits = b.logits(x).numpy()
    half = mask * 0.5
    s = target_scores(b, x, resolve_targets(b, Region(2, mask=np.stack([mask, half])), 2, x))
    np.testing.assert_allclose(s, [logits[0, ..., 2][mask > 0].sum(), 0.5 * logits[1, ..., 2][mask > 0].sum()],
                               rtol=1e-5)
    with pytest.raises(TargetError, match="mask is empty"):
        resolve_targets(b, Region(2, mask=np.zeros((SIZE, SIZE))), 2, x)
    with pytest.raises(TargetError, match=r"mask is \[H, W\]"):
        resolve_targets(b, Region(2, mask=np.ones((4, 4))), 2, x)


def test_class_visualization_paints_a_segmentation_map_as_the_class():
    from tfviz import synthesis
    b = tfviz.load_model(segmenter(), preprocess="0-1")
    grey = np.full((1, SIZE, SIZE, 3), 128, np.uint8)
    before = b.predict(grey)[..., 1].mean()
    res = synthesis.class_visualization(b, 1, steps=30, seed=0, size=SIZE)
    values = np.asarray(res.history, np.float64)     # the objective at each step
    assert values[-1] > values[0]                     # the class's mean logit over the pixels rose
    after = b.predict(res.images)[..., 1].mean()
    assert after > before and abs(res.extra["probability"] - after) < 1e-5


def test_trust_checks_run_on_several_inputs_and_the_chosen_output():
    # the randomization check clones the model: the held inputs clone too, and the clone
    # explains the same output as the bundle
    from tfviz.attribution.metrics import _randomizable
    b = tfviz.load_model(image_and_table(), preprocess="0-1")
    rows = A.trust_report(b, _images(1), methods=["saliency"], steps=4, layers=1)
    assert np.isfinite([rows[0]["deletion"], rows[0]["insertion"], rows[0]["randomization"]]).all()
    age = tfviz.load_model(two_outputs(), preprocess="0-1", output="age")
    work, _ = _randomizable(age)
    assert work.output_name == "age" and work.is_regression
