"""Attribution methods against hand-computed answers on tiny models built here.

Shared model builders live at the top; ``test_attribution_*.py`` import them."""
import numpy as np
import pytest

import tfviz
from tfviz import attribution as A

H = W = 8


def _keras():
    import keras
    return keras


def linear_model(h=H, w=W, classes=3, seed=0):
    """Flatten -> Dense(classes), no activation: saliency is |W|."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    inp = keras.Input((h, w, 3))
    out = keras.layers.Dense(classes, name="dense")(keras.layers.Flatten()(inp))
    m = keras.Model(inp, out, name="linear")
    m.get_layer("dense").set_weights([rng.normal(size=(h * w * 3, classes)).astype("float32"),
                                      rng.normal(size=classes).astype("float32")])
    return m


def small_cnn(h=16, w=16, classes=4, seed=0, softmax=True):
    """conv(relu) -> conv -> ReLU -> GAP -> dense(softmax)."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((h, w, 3))
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(classes, activation="softmax" if softmax else None, name="predictions")(x)
    return keras.Model(inp, out, name="small_cnn")


def bundle_of(model, preprocess="0-1", classes=None):
    n = model.outputs[0].shape[-1]
    return tfviz.load_model(model, preprocess=preprocess,
                            class_names=classes or [f"class{i}" for i in range(n)])


def random_images(n, h=16, w=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3)).astype(np.uint8)


# --------------------------------------------------------------------------- saliency
def test_saliency_of_linear_model_is_max_abs_weight():
    m = linear_model()
    b = bundle_of(m)
    imgs = random_images(2, H, W)
    kernel = m.get_layer("dense").get_weights()[0]
    for c in range(3):
        s = A.saliency(b, imgs, c)
        expected = np.abs(kernel[:, c].reshape(H, W, 3)).max(-1)
        assert s.shape == (2, H, W) and s.dtype == np.float32
        np.testing.assert_allclose(s[0], expected, rtol=1e-5)
        np.testing.assert_allclose(s[1], expected, rtol=1e-5)


def test_saliency_uses_logits_not_softmax():
    """A fused softmax is bypassed: the map is the gradient of the logit."""
    keras = _keras()
    m = linear_model()
    soft = keras.Model(m.inputs, keras.layers.Softmax()(m.outputs[0]))
    imgs = random_images(1, H, W)
    np.testing.assert_allclose(A.saliency(bundle_of(soft), imgs, 1), A.saliency(bundle_of(m), imgs, 1), rtol=1e-5)


# --------------------------------------------------------------------------- integrated gradients
def smooth_model(seed=1):
    keras = _keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((H, W, 3))
    x = L.Conv2D(5, 3, padding="same", activation="tanh")(inp)
    x = L.Conv2D(4, 3, padding="same", activation="softplus")(x)
    x = L.Flatten()(x)
    x = L.Dense(6, activation="tanh")(x)
    out = L.Dense(3)(x)
    return keras.Model(inp, out, name="smooth")


@pytest.mark.parametrize("baseline", ["black", "blur", "gray"])
def test_integrated_gradients_completeness(baseline):
    m = smooth_model()
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=2)
    attr, delta = A.integrated_gradients(b, imgs, 2, steps=64, baseline=baseline, return_delta=True)
    x = b.preprocess(imgs)
    from tfviz.attribution.core import substitute
    base = substitute(b, x, baseline)
    fx = m.predict(x, verbose=0)[:, 2]
    fb = m.predict(base, verbose=0)[:, 2]
    total = attr.sum(axis=(1, 2))
    assert np.all(np.abs(fx - fb) > 1e-3)
    np.testing.assert_array_less(np.abs(total - (fx - fb)), 0.01 * np.abs(fx - fb))
    np.testing.assert_allclose(delta, total - (fx - fb), atol=1e-4)


def test_integrated_gradients_array_baseline_and_channels(tmp_path):
    m = smooth_model()
    b = bundle_of(m)
    imgs = random_images(1, H, W, seed=3)
    base = np.full((H, W, 3), 40, np.uint8)
    a3 = A.integrated_gradients(b, imgs, 0, baseline=base, steps=32, reduce=None)
    a1 = A.integrated_gradients(b, imgs, 0, baseline=base, steps=32)
    assert a3.shape == (1, H, W, 3)
    np.testing.assert_allclose(a3.sum(-1), a1, rtol=1e-5, atol=1e-7)
    # the same baseline as an image file, and as a gray level
    from PIL import Image
    path = tmp_path / "base.png"
    Image.fromarray(base).save(path)
    np.testing.assert_allclose(A.integrated_gradients(b, imgs, 0, baseline=str(path), steps=32), a1, rtol=1e-6)
    np.testing.assert_allclose(A.integrated_gradients(b, imgs, 0, baseline=40, steps=32), a1, rtol=1e-6)


# --------------------------------------------------------------------------- guided backprop / deconvnet
def two_layer_relu_net(seed=0):
    keras = _keras()
    rng = np.random.default_rng(seed)
    L = keras.layers
    inp = keras.Input((H, W, 3))
    x = L.Flatten()(inp)
    x = L.Dense(6, activation="relu", name="h1")(x)
    x = L.Dense(5, activation="relu", name="h2")(x)
    out = L.Dense(3, name="out")(x)
    m = keras.Model(inp, out, name="two_layer")
    for name, shape in [("h1", (H * W * 3, 6)), ("h2", (6, 5)), ("out", (5, 3))]:
        m.get_layer(name).set_weights([rng.normal(size=shape).astype("float32") * 0.5,
                                       rng.normal(size=shape[1]).astype("float32") * 0.5])
    return m


def _hand_rules(m, x, c):
    (w1, b1), (w2, b2), (w3, _) = [m.get_layer(n).get_weights() for n in ("h1", "h2", "out")]
    v = x.reshape(-1).astype(np.float64)
    z1 = v @ w1 + b1
    z2 = np.maximum(z1, 0) @ w2 + b2
    g3 = w3[:, c]
    # guided: positive gradients, only where the forward input was positive
    r2 = np.maximum(g3, 0) * (z2 > 0)
    r1 = np.maximum(w2 @ r2, 0) * (z1 > 0)
    guided = (w1 @ r1).reshape(H, W, 3)
    # deconvnet: positive gradients, whatever the forward input
    d2 = np.maximum(g3, 0)
    d1 = np.maximum(w2 @ d2, 0)
    deconv = (w1 @ d1).reshape(H, W, 3)
    plain = (w1 @ ((w2 @ (g3 * (z2 > 0))) * (z1 > 0))).reshape(H, W, 3)
    return guided, deconv, plain


def test_guided_backprop_and_deconvnet_match_hand_rules_and_leave_model_alone():
    m = two_layer_relu_net()
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=4)
    x = b.preprocess(imgs)
    before = m.predict(x, verbose=0)
    weights_before = [w.copy() for w in m.get_weights()]
    for c in range(3):
        gb = A.guided_backprop(b, imgs, c)
        dc = A.deconvnet(b, imgs, c)
        for i in range(3):
            guided, deconv, plain = _hand_rules(m, x[i], c)
            np.testing.assert_allclose(gb[i], guided, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(dc[i], deconv, rtol=1e-4, atol=1e-5)
    # the plain gradient still is the plain gradient (nothing swapped in place)
    from tfviz.attribution.core import gradients, to_rgb_order
    from tfviz.attribution.targets import resolve_targets
    _, g = gradients(b, x, resolve_targets(b, 1, 3))
    np.testing.assert_allclose(to_rgb_order(b, g)[0], _hand_rules(m, x[0], 1)[2], rtol=1e-4, atol=1e-5)
    after = m.predict(x, verbose=0)
    assert np.array_equal(before, after)
    assert all(np.array_equal(p, q) for p, q in zip(weights_before, m.get_weights()))
    assert m.get_layer("h1").activation.__name__ == "relu"
    # a fresh bundle of the same model and a plain Keras gradient agree too
    import tensorflow as tf
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        s = tf.reduce_sum(m(xt)[:, 1])
    np.testing.assert_allclose(tape.gradient(s, xt).numpy()[0], _hand_rules(m, x[0], 1)[2], rtol=1e-4, atol=1e-5)


def _relu_kind_model(kind, seed=0):
    """input -> Flatten -> Dense(8) -> <a ReLU of kind> -> Dense(3); the hidden
    pre-activations span about -12..12 so that ReLU6 clips some."""
    keras = _keras()
    L = keras.layers
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(H * W * 3, 8)).astype("float32")
    b1 = rng.normal(size=8).astype("float32") * 3
    w2 = rng.normal(size=(8, 3)).astype("float32")
    b2 = np.zeros(3, "float32")
    inp = keras.Input((H, W, 3))
    flat = L.Flatten()(inp)
    relu6 = False
    if kind == "fused_dense":
        d1 = L.Dense(8, activation="relu")
        hidden = d1(flat)
    elif kind == "fused_dense_relu6":
        d1 = L.Dense(8, activation="relu6")
        hidden, relu6 = d1(flat), True
    else:
        d1 = L.Dense(8)
        z = d1(flat)
        if kind == "relu_layer":
            hidden = L.ReLU()(z)
        elif kind == "relu6_layer":
            hidden, relu6 = L.ReLU(max_value=6)(z), True
        elif kind == "activation_relu":
            hidden = L.Activation("relu")(z)
        elif kind == "activation_relu6":
            hidden, relu6 = L.Activation("relu6")(z), True
        elif kind == "ops_relu":
            hidden = keras.ops.relu(z)
        elif kind == "nested_sequential":
            hidden = keras.Sequential([L.ReLU()], name="inner")(z)
        elif kind == "nested_functional":
            i2 = keras.Input((8,))
            hidden = keras.Model(i2, L.Activation("relu")(i2), name="inner_f")(z)
        else:
            raise ValueError(kind)
    d2 = L.Dense(3)
    m = keras.Model(inp, d2(hidden), name=kind)
    d1.set_weights([w1, b1])
    d2.set_weights([w2, b2])
    return m, (w1, b1, w2), relu6


RELU_KINDS = ["fused_dense", "fused_dense_relu6", "relu_layer", "relu6_layer", "activation_relu",
              "activation_relu6", "ops_relu", "nested_sequential", "nested_functional"]


@pytest.mark.parametrize("kind", RELU_KINDS)
def test_guided_backprop_sees_every_relu(kind):
    m, (w1, b1, w2), relu6 = _relu_kind_model(kind)
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=5)
    x = b.preprocess(imgs)
    before = m.predict(x, verbose=0)
    c = 0
    gb = A.guided_backprop(b, imgs, c)
    dc = A.deconvnet(b, imgs, c)
    for i in range(2):
        z = x[i].reshape(-1) @ w1 + b1
        on = (z > 0) & ((z < 6) if relu6 else True)
        if relu6:
            assert on.sum() < (z > 0).sum(), "test model must clip some units at 6"
        expected_gb = (w1 @ (np.maximum(w2[:, c], 0) * on)).reshape(H, W, 3)
        expected_dc = (w1 @ np.maximum(w2[:, c], 0)).reshape(H, W, 3)
        np.testing.assert_allclose(gb[i], expected_gb, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dc[i], expected_dc, rtol=1e-4, atol=1e-5)
    assert np.array_equal(before, m.predict(x, verbose=0))


def test_guided_backprop_fused_conv_equals_explicit_relu_layer():
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(3)
    conv = L.Conv2D(4, 3, padding="same", activation="relu")
    inp = keras.Input((H, W, 3))
    fused = keras.Model(inp, L.Dense(2)(L.Flatten()(conv(inp))))
    conv2 = L.Conv2D(4, 3, padding="same")
    inp2 = keras.Input((H, W, 3))
    dense2 = L.Dense(2)
    explicit = keras.Model(inp2, dense2(L.Flatten()(L.ReLU()(conv2(inp2)))))
    conv2.set_weights(conv.get_weights())
    dense2.set_weights(fused.layers[-1].get_weights())
    imgs = random_images(2, H, W, seed=6)
    np.testing.assert_allclose(A.guided_backprop(bundle_of(fused), imgs, 1),
                               A.guided_backprop(bundle_of(explicit), imgs, 1), rtol=1e-5, atol=1e-7)
    assert not np.allclose(A.guided_backprop(bundle_of(fused), imgs, 1),
                           A.deconvnet(bundle_of(fused), imgs, 1))


def test_model_without_relu_is_a_clear_error():
    b = bundle_of(smooth_model())
    with pytest.raises(A.NoReLUError, match="no ReLU.*tanh"):
        A.guided_backprop(b, random_images(1, H, W), 0)
    with pytest.raises(A.NoReLUError):
        A.deconvnet(b, random_images(1, H, W), 0)


def test_guided_copy_cached_and_gradient_traced_once_per_shape():
    from tfviz.attribution import core, heads
    b = bundle_of(small_cnn())
    imgs = random_images(3)
    A.guided_backprop(b, imgs, 0)
    h1 = heads.head(b, None, "guided")
    f = core.gradient_function(b, None, "guided")
    n = f.experimental_get_tracing_count()
    A.guided_backprop(b, imgs, 2)        # other target: no retrace
    A.guided_backprop(b, imgs, [0, 1, 3])
    assert heads.head(b, None, "guided") is h1
    assert f.experimental_get_tracing_count() == n
    A.guided_backprop(b, imgs[:1], 0)    # a new shape traces once
    assert f.experimental_get_tracing_count() == n + 1


# --------------------------------------------------------------------------- occlusion
def region_model(region, h=12, w=12):
    """Score 0 = mean of channel 0 over ``region`` (rows r0:r1, cols c0:c1), in 0-1 units."""
    keras = _keras()
    r0, r1, c0, c1 = region
    k = np.zeros((h, w, 3, 2), np.float32)
    k[r0:r1, c0:c1, 0, 0] = 1.0 / ((r1 - r0) * (c1 - c0))
    k[:, :, 1, 1] = 1.0 / (h * w)
    inp = keras.Input((h, w, 3))
    d = keras.layers.Dense(2, name="score")
    m = keras.Model(inp, d(keras.layers.Flatten()(inp)), name="region")
    d.set_weights([k.reshape(-1, 2), np.zeros(2, np.float32)])
    return m


def _overlaps(t, l, p, region):
    r0, r1, c0, c1 = region
    return t < r1 and t + p > r0 and l < c1 and l + p > c0


def test_occlusion_positive_exactly_where_patch_overlaps_region():
    region = (3, 6, 5, 9)
    b = bundle_of(region_model(region))
    img = np.full((1, 12, 12, 3), 200, np.uint8)
    from tfviz.attribution.occlusion import positions
    for patch, stride in [(3, 1), (4, 2), (5, 3)]:
        grid = A.occlusion(b, img, 0, patch=patch, stride=stride, fill="zero", resample=False)[0]
        tops, lefts = positions(12, patch, stride), positions(12, patch, stride)
        expected = np.array([[_overlaps(t, l, patch, region) for l in lefts] for t in tops])
        assert grid.shape == expected.shape
        assert np.all(grid[expected] > 1e-4)
        np.testing.assert_allclose(grid[~expected], 0, atol=1e-6)
        # resampled: a pixel is positive iff some patch covering it overlaps the region
        pix = A.occlusion(b, img, 0, patch=patch, stride=stride, fill="zero")[0]
        cover = np.zeros((12, 12), bool)
        for i, t in enumerate(tops):
            for j, l in enumerate(lefts):
                if expected[i, j]:
                    cover[t:t + patch, l:l + patch] = True
        assert np.all(pix[cover] > 1e-4)
        np.testing.assert_allclose(pix[~cover], 0, atol=1e-6)
    # patches that tile the image: the map is positive exactly on the overlapping tiles
    pix = A.occlusion(b, img, 0, patch=4, stride=4, fill="zero")[0]
    tiles = np.zeros((12, 12), bool)
    for t in range(0, 12, 4):
        for l in range(0, 12, 4):
            tiles[t:t + 4, l:l + 4] = _overlaps(t, l, 4, region)
    assert np.array_equal(pix > 1e-4, tiles)
    # the drop equals the lost share of the region's mean
    g = A.occlusion(b, img, 0, patch=3, stride=3, fill="zero", resample=False)[0]
    assert g[1, 2] == pytest.approx(200 / 255 * 9 / 12, rel=1e-4)  # rows 3:6, cols 6:9: 9 of the 12 pixels


def test_occlusion_fills_and_probability():
    """Score 0 is the mean of channel 0 over the 6x6 region, so the drop at a patch is the
    sum of (x - fill) in channel 0 over the region pixels it covers, divided by 36."""
    from scipy.ndimage import gaussian_filter

    from tfviz.attribution.occlusion import positions
    b = bundle_of(region_model((0, 6, 0, 6)))
    img = random_images(2, 12, 12, seed=8)
    x = img.astype(np.float64) / 255                                   # the 0-1 model input
    tops = positions(12, 4, 2)                                         # 0, 2, 4, 6, 8 in both axes
    fills = {"mean": x.mean(axis=(1, 2), keepdims=True), "zero": 0.0, "black": 0.0, "gray": 128 / 255,
             77: 77 / 255, (10, 20, 30): np.array([10, 20, 30]) / 255,
             "blur": gaussian_filter(x, sigma=(0, 1, 1, 0), mode="nearest")}  # 1 px = max(1, 12 / 20)
    for fill, f in fills.items():
        f = np.broadcast_to(f, x.shape)
        lost = np.zeros((2, 12, 12))
        lost[:, :6, :6] = (x - f)[:, :6, :6, 0]
        expected = np.array([[[lost[i, t:t + 4, l:l + 4].sum() / 36 for l in tops] for t in tops] for i in range(2)])
        got = A.occlusion(b, img, 0, patch=4, stride=2, fill=fill, resample=False)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=str(fill))
    # probability: the drop of softmax(score 0, score 1), score 1 the mean of channel 1 over the image
    def prob0(v):
        z0, z1 = v[:, :6, :6, 0].mean(axis=(1, 2)), v[..., 1].mean(axis=(1, 2))
        return 1 / (1 + np.exp(z1 - z0))
    mean = np.broadcast_to(fills["mean"], x.shape)
    expected = np.zeros((2, len(tops), len(tops)))
    for a, t in enumerate(tops):
        for c, l in enumerate(tops):
            v = x.copy()
            v[:, t:t + 4, l:l + 4] = mean[:, t:t + 4, l:l + 4]
            expected[:, a, c] = prob0(x) - prob0(v)
    p = A.occlusion(b, img, 0, patch=4, stride=2, score="probability", resample=False)
    np.testing.assert_allclose(p, expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- units
def test_unit_target_only_its_receptive_field_matters():
    b = bundle_of(small_cnn())
    imgs = random_images(2)
    s = A.saliency(b, imgs, ("conv1", 2, 5, 7))
    nz = np.argwhere(s[0] > 0)
    assert nz.size and nz[:, 0].min() >= 4 and nz[:, 0].max() <= 6 and nz[:, 1].min() >= 6 and nz[:, 1].max() <= 8
    s2 = A.saliency(b, imgs, "conv1:2:5:7")
    np.testing.assert_array_equal(s, s2)
    # conv2 (3x3 on 3x3): a 5x5 field
    s3 = A.saliency(b, imgs, ("conv2", 1, 8, 8))[1]
    nz = np.argwhere(s3 > 0)
    assert nz[:, 0].min() >= 6 and nz[:, 0].max() <= 10
    # a channel without a position: the channel mean, so the whole image
    import tensorflow as tf
    whole = A.saliency(b, imgs, "relu2:3")
    x = tf.constant(b.preprocess(imgs))
    with tf.GradientTape() as tape:
        tape.watch(x)
        s = tf.reduce_sum(tf.reduce_mean(b.features("relu2")(x)[..., 3], axis=[1, 2]))
    np.testing.assert_allclose(whole, np.abs(tape.gradient(s, x).numpy()).max(-1), rtol=1e-5, atol=1e-8)
    assert (whole > 0).mean() > 0.5


def test_target_lists_and_names():
    b = bundle_of(small_cnn())
    imgs = random_images(3)
    per = A.saliency(b, imgs, [0, "class2", "conv1:1"])
    np.testing.assert_allclose(per[0], A.saliency(b, imgs[:1], 0)[0], rtol=1e-5)
    np.testing.assert_allclose(per[1], A.saliency(b, imgs[1:2], 2)[0], rtol=1e-5)
    np.testing.assert_allclose(per[2], A.saliency(b, imgs[2:], "conv1:1")[0], rtol=1e-5)
    top = b.predict(imgs).argmax(1)
    np.testing.assert_allclose(A.saliency(b, imgs, None), A.saliency(b, imgs, list(top)), rtol=1e-6)
    np.testing.assert_allclose(A.saliency(b, imgs, np.int64(1)), A.saliency(b, imgs, "CLASS1"), rtol=1e-6)


# --------------------------------------------------------------------------- batch invariance
ALL = ["saliency", "guided_backprop", "deconvnet", "occlusion", "smoothgrad", "integrated_gradients", "grad_cam",
       "guided_grad_cam"]
FAST = {"smoothgrad": {"samples": 4}, "integrated_gradients": {"steps": 8}, "occlusion": {"patch": 4, "stride": 2}}


@pytest.mark.parametrize("name", ALL)
def test_batch_gives_same_maps_as_single_images(name):
    b = bundle_of(small_cnn())
    imgs = random_images(3, seed=9)
    fn = A.METHODS[name]
    targets = [1, 3, 0]
    batch = fn(b, imgs, targets, **FAST.get(name, {}))
    for i in range(3):
        one = fn(b, imgs[i:i + 1], targets[i], **FAST.get(name, {}))
        scale = np.abs(batch[i]).max() + 1e-12
        np.testing.assert_allclose(one[0] / scale, batch[i] / scale, atol=2e-5)
    # and with batches smaller than the number of images
    if name not in ("smoothgrad", "occlusion"):
        small = fn(b, imgs, targets, batch_size=2, **FAST.get(name, {}))
        np.testing.assert_allclose(small, batch, atol=2e-5 * np.abs(batch).max())


# --------------------------------------------------------------------------- smoothgrad / grad-cam
def test_smoothgrad_zero_noise_is_the_method_and_noise_is_seeded():
    b = bundle_of(small_cnn())
    imgs = random_images(2)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, samples=3, noise=0.0), A.saliency(b, imgs, 1), rtol=1e-5)
    g = A.smoothgrad(b, imgs, 1, method="guided_backprop", samples=3, noise=0.0)
    np.testing.assert_allclose(g, A.guided_backprop(b, imgs, 1), rtol=1e-5, atol=1e-8)
    a = A.smoothgrad(b, imgs, 1, samples=5, seed=3)
    np.testing.assert_array_equal(a, A.smoothgrad(b, imgs, 1, samples=5, seed=3))
    assert not np.allclose(a, A.smoothgrad(b, imgs, 1, samples=5, seed=4))
    ig = A.integrated_gradients(b, imgs, 1, steps=4)                  # method options pass through
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, method=A.integrated_gradients, samples=2, steps=4, noise=0.0),
                               ig, rtol=1e-5, atol=1e-6 * np.abs(ig).max())


def test_grad_cam_matches_definition():
    m = small_cnn()
    b = bundle_of(m)
    imgs = random_images(2)
    from tfviz.attribution.cam import default_layer
    assert default_layer(b) == "relu2"
    a = b.features("relu2")(b.preprocess(imgs)).numpy()
    # logit_c = dense(mean over positions of a): d logit / d a = W[:, c] / (H W) everywhere,
    # so alpha_k = W[k, c] / (H W) and the map is relu(sum_k alpha_k a_k).
    alpha = m.get_layer("predictions").get_weights()[0][:, 2] / (16 * 16)
    for i in range(2):
        expected = np.maximum((a[i] * alpha).sum(-1), 0)
        cam = A.grad_cam(b, imgs[i:i + 1], 2, upsample=False)[0]
        np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-7)
    assert A.grad_cam(b, imgs, 2).shape == (2, 16, 16)
    conv1 = A.grad_cam(b, imgs, 2, layer="conv1")
    assert conv1.shape == (2, 16, 16) and np.all(conv1 >= 0)
    gg = A.guided_grad_cam(b, imgs, 2)
    np.testing.assert_allclose(gg, A.guided_backprop(b, imgs, 2) * A.grad_cam(b, imgs, 2)[..., None], rtol=1e-5,
                               atol=1e-9)


def test_grad_cam_pools_the_gradient_by_its_spatial_mean():
    """conv(relu) -> Flatten -> Dense: d logit_c / d A_ijk = V[(i, j, k), c] differs from
    position to position, so alpha_k = mean_ij V[(i, j, k), c] -- not a max, not a sum."""
    keras = _keras()
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    a = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    m = keras.Model(inp, L.Dense(3, name="logits")(L.Flatten()(a)))
    v = np.random.default_rng(3).normal(0.5, 1.0, (4, 4, 4, 3)).astype(np.float32)   # alpha_k > 0 likely
    m.get_layer("logits").set_weights([v.reshape(64, 3), np.zeros(3, np.float32)])  # Flatten: row-major (i, j, k)
    b = bundle_of(m)
    imgs = random_images(2, 8, 8, seed=12)
    acts = keras.Model(inp, a)(b.preprocess(imgs)).numpy()              # [2, 4, 4, 4]
    for c in range(3):
        expected = np.maximum((acts * v[..., c].mean(axis=(0, 1))).sum(-1), 0)
        assert expected.max() > 0
        np.testing.assert_allclose(A.grad_cam(b, imgs, c, layer="conv", upsample=False), expected, rtol=1e-4,
                                   atol=1e-6)


# --------------------------------------------------------------------------- model kinds and input ranges
def _shared_layers(seed=0):
    keras = _keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    return [L.Conv2D(5, 3, padding="same", activation="relu", name="c1"), L.Conv2D(6, 3, padding="same", name="c2"),
            L.ReLU(max_value=6.0, name="r2"), L.GlobalAveragePooling2D(name="pool"),
            L.Dense(3, activation="softmax", name="probs")]


def _three_models():
    """The same network as a Sequential, a Functional, and a Functional with a nested
    Sequential backbone (separate layer objects, identical weights)."""
    keras = _keras()
    ref = _shared_layers()
    inp = keras.Input((16, 16, 3))
    x = inp
    for layer in ref:
        x = layer(x)
    func = keras.Model(inp, x, name="func")
    c1, c2, r2, pool, dense = _shared_layers(seed=5)
    seq = keras.Sequential([keras.Input((16, 16, 3)), c1, c2, r2, pool, dense], name="seq")
    c1, c2, r2, pool, dense = _shared_layers(seed=6)
    backbone = keras.Sequential([keras.Input((16, 16, 3)), c1, c2, r2], name="backbone")
    inp2 = keras.Input((16, 16, 3))
    nested = keras.Model(inp2, dense(pool(backbone(inp2))), name="nested")
    seq.set_weights(func.get_weights())
    nested.set_weights(func.get_weights())
    return seq, func, nested


def test_sequential_functional_and_nested_models_agree():
    seq, func, nested = _three_models()
    imgs = random_images(2, seed=10)
    results = {}
    for model in (seq, func, nested):
        b = bundle_of(model)
        results[model.name] = {name: A.METHODS[name](b, imgs, 1, **FAST.get(name, {})) for name in ALL}
    for name in ALL:
        ref = results["func"][name]
        tol = 1e-5 * (np.abs(ref).max() + 1e-12)
        np.testing.assert_allclose(results["seq"][name], ref, atol=tol, err_msg=name)
        np.testing.assert_allclose(results["nested"][name], ref, atol=tol, err_msg=name)
    # units inside the nested model, by plain name and by path
    b = bundle_of(nested)
    u1 = A.saliency(b, imgs, "r2:2:8:8")
    u2 = A.saliency(b, imgs, ("backbone/r2", 2, 8, 8))
    np.testing.assert_allclose(u1, u2)
    np.testing.assert_allclose(u1, A.saliency(bundle_of(func), imgs, "r2:2:8:8"), atol=1e-6)


def _ranged_model(preprocess):
    """The same pixel-space network behind three input conventions: the first layers
    map the model input back to 0..255 RGB."""
    keras = _keras()
    L = keras.layers
    layers = _shared_layers(seed=2)
    inp = keras.Input((16, 16, 3))
    if preprocess == "0-1":
        px = L.Rescaling(255.0)(inp)
    elif preprocess == "-1-1":
        px = L.Rescaling(127.5, offset=127.5)(inp)
    else:  # caffe: BGR minus the ImageNet mean
        to_rgb = L.Conv2D(3, 1, use_bias=True, name="bgr_to_rgb")
        px = to_rgb(inp)
        to_rgb.set_weights([np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3),
                            np.array([123.68, 116.779, 103.939], "float32")])
    x = L.Rescaling(1 / 255.0)(px)
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x, name=f"ranged_{preprocess.replace('-', 'm')}")


def test_input_ranges_give_the_same_explanations():
    imgs = random_images(2, seed=11)
    out = {}
    for pre in ("0-1", "-1-1", "caffe"):
        b = bundle_of(_ranged_model(pre), preprocess=pre)
        out[pre] = {
            "ig": A.integrated_gradients(b, imgs, 2, steps=16),
            "occ": A.occlusion(b, imgs, 2, patch=4, stride=2, fill="gray"),
            "cam": A.grad_cam(b, imgs, 2),
            "sal": A.saliency(b, imgs, 2),
            "gb": A.guided_backprop(b, imgs, 2),
            "probs": b.predict(imgs),
        }
    ref = out["0-1"]
    std = {"0-1": 255.0, "-1-1": 127.5, "caffe": 1.0}  # d pixel / d model input
    for pre in ("-1-1", "caffe"):
        np.testing.assert_allclose(out[pre]["probs"], ref["probs"], atol=1e-5)
        for k in ("ig", "occ", "cam"):
            tol = 1e-4 * np.abs(ref[k]).max()
            np.testing.assert_allclose(out[pre][k], ref[k], atol=tol, err_msg=f"{pre} {k}")
        # gradients w.r.t. the model input scale with the input convention; channel order is RGB
        for k in ("sal", "gb"):
            scaled = out[pre][k] * (255.0 / std[pre])
            np.testing.assert_allclose(scaled, ref[k], atol=1e-4 * np.abs(ref[k]).max(), err_msg=f"{pre} {k}")
