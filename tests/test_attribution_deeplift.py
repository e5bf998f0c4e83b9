"""DeepLIFT (rescale rule) against hand-computed multipliers and completeness, on tiny
models built here and on the bundled efficientnet_lite0."""
import numpy as np
import pytest

from test_attribution import (H, W, _ranged_model, bundle_of, random_images, smooth_model, two_layer_relu_net)
from tfviz import attribution as A
from tfviz.attribution import heads
from tfviz.attribution.core import substitute, target_scores
from tfviz.attribution import METHODS
from tfviz.attribution.deeplift import deeplift
from tfviz.attribution.targets import resolve_targets


def _keras():
    import keras
    return keras


def _secant(zx, zr, relu=lambda z: np.maximum(z, 0)):
    """The rescale multiplier of a ReLU, in float64 (derivative where zx == zr)."""
    dz = zx - zr
    far = np.abs(dz) > 1e-9
    return np.where(far, (relu(zx) - relu(zr)) / np.where(far, dz, 1.0), (zx > 0).astype(np.float64))


def _deltas(bundle, x, target, baseline):
    """f(x) - f(reference) of each image's target, from the plain (logits / layer) model."""
    tg = resolve_targets(bundle, target, len(x), x)
    return target_scores(bundle, x, tg) - target_scores(bundle, substitute(bundle, x, baseline), tg)


# --------------------------------------------------------------------------- known answers
@pytest.mark.parametrize("baseline", ["black", "gray"])
def test_rescale_multipliers_by_hand(baseline):
    m = two_layer_relu_net()
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=4)
    x = b.preprocess(imgs).astype(np.float64)
    r = substitute(b, b.preprocess(imgs), baseline).astype(np.float64)
    (w1, b1), (w2, b2), (w3, b3) = [m.get_layer(n).get_weights() for n in ("h1", "h2", "out")]
    switched = 0
    for c in range(3):
        attr, delta = deeplift(b, imgs, c, baseline=baseline, return_delta=True)
        assert attr.shape == (3, H, W) and attr.dtype == np.float32
        for i in range(3):
            v, u = x[i].reshape(-1), r[i].reshape(-1)
            z1x, z1r = v @ w1 + b1, u @ w1 + b1
            z2x, z2r = np.maximum(z1x, 0) @ w2 + b2, np.maximum(z1r, 0) @ w2 + b2
            m1, m2 = _secant(z1x, z1r), _secant(z2x, z2r)
            switched += np.sum((z1x > 0) != (z1r > 0)) + np.sum((z2x > 0) != (z2r > 0))
            mult = w1 @ (m1 * (w2 @ (m2 * w3[:, c])))
            expected = ((v - u) * mult).reshape(H, W, 3).sum(-1)
            np.testing.assert_allclose(attr[i], expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
            fx = np.maximum(z2x, 0) @ w3[:, c] + b3[c]
            fr = np.maximum(z2r, 0) @ w3[:, c] + b3[c]
            assert attr[i].sum() == pytest.approx(fx - fr, rel=1e-4, abs=1e-4)
            assert delta[i] == pytest.approx(0.0, abs=1e-4 * max(1.0, abs(fx - fr)))
    assert switched > 0, "the test needs units that switch between the image and the reference"


def _saturating_model():
    """score 0 = min(relu(10 * mean(x) - 2), 1), score 1 = its negative: a unit that is
    clipped (zero gradient) on bright images and off (zero) on black."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((H, W, 3))
    d1, d2 = L.Dense(1, name="z"), L.Dense(2, name="out")
    out = d2(L.ReLU(max_value=1.0, name="clip")(d1(L.Flatten()(inp))))
    m = keras.Model(inp, out, name="saturating")
    d1.set_weights([np.full((H * W * 3, 1), 10.0 / (H * W * 3), np.float32), np.array([-2.0], np.float32)])
    d2.set_weights([np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    return m


def test_rescale_differs_from_the_gradient_where_a_unit_saturates():
    b = bundle_of(_saturating_model())
    imgs = np.full((1, H, W, 3), 204, np.uint8)   # mean 0.8 -> z = 6, clipped to 1; black: z = -2 -> 0
    x = b.preprocess(imgs)
    attr, delta = deeplift(b, imgs, 0, return_delta=True)
    # m = (1 - 0) / (6 - (-2)) = 1/8 at the clip, times d z / d x = 10 / (H W 3)
    expected = x[0].sum(-1) * (10.0 / (H * W * 3)) / 8.0
    np.testing.assert_allclose(attr[0], expected, rtol=1e-5)
    assert attr.sum() == pytest.approx(1.0, rel=1e-5)
    assert abs(delta[0]) < 1e-5
    # the gradient is zero there: input x gradient (and saliency) explain nothing
    assert np.all(A.saliency(b, imgs, 0) == 0)
    np.testing.assert_allclose(deeplift(b, imgs, 1), -attr, rtol=1e-6)


# --------------------------------------------------------------------------- completeness
def _elementwise_net(seed=0):
    """Every nonlinearity element-wise: conv(relu) -> BN -> ReLU(6) -> conv + residual ->
    sigmoid, leaky relu, ops.tanh, dense(gelu), PReLU, swish -> GAP -> dense(softmax)."""
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 3))
    c1 = L.Conv2D(6, 3, padding="same", activation="relu", name="conv1")
    x = c1(inp)
    bn = L.BatchNormalization(name="bn")
    x = bn(x)
    x = L.ReLU(max_value=6.0, name="relu6")(x)
    y = L.Conv2D(6, 3, padding="same", name="conv2")(x)
    x = L.Add(name="add")([x, y])
    x = L.Activation("sigmoid", name="sig")(x)
    x = L.LeakyReLU(negative_slope=0.2, name="leaky")(L.Conv2D(5, 1, name="conv3")(x))
    x = _keras().ops.tanh(x)
    x = L.AveragePooling2D(2, name="avg")(x)
    x = L.Dense(7, activation="gelu", name="mix")(x)
    x = L.PReLU(name="prelu")(x)
    x = L.Activation("swish", name="swish")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(4, activation="softmax", name="probs")(x)
    m = keras.Model(inp, out, name="elementwise")
    c1.set_weights([w * 4 for w in c1.get_weights()])        # some units pass 6
    bn.set_weights([rng.uniform(0.5, 2, 6).astype("float32"), rng.normal(size=6).astype("float32"),
                    rng.uniform(0, 1, 6).astype("float32"), rng.uniform(0.5, 2, 6).astype("float32")])
    prelu = m.get_layer("prelu")
    prelu.set_weights([rng.uniform(0.1, 0.5, prelu.get_weights()[0].shape).astype("float32")])
    return m


N_ELEMENTWISE = 8  # conv1's relu, relu6, sigmoid, leaky, tanh, gelu, prelu, swish -- and no softmax


def test_completeness_on_an_elementwise_net_and_the_model_is_left_alone():
    m = _elementwise_net()
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=7)
    x = b.preprocess(imgs)
    before = m.predict(x, verbose=0)
    weights_before = [w.copy() for w in m.get_weights()]
    gb_before = A.guided_backprop(b, imgs, 1)
    attr, delta = deeplift(b, imgs, 1, return_delta=True)
    wrapped = [lay.name for lay in heads.head(b, None, "deeplift").layers if lay.name.endswith("_deeplift")]
    assert len(wrapped) == N_ELEMENTWISE, wrapped
    assert not any("probs" in n for n in wrapped)  # the softmax is bypassed, never wrapped
    d = _deltas(b, x, 1, "black")
    assert np.all(np.abs(d) > 1e-3)
    np.testing.assert_array_less(np.abs(attr.sum(axis=(1, 2)) - d), 1e-3 * np.abs(d))
    np.testing.assert_allclose(delta, attr.sum(axis=(1, 2)) - d, atol=1e-4 * np.abs(d).max())
    # differs from input x gradient on this net
    from tfviz.attribution.core import gradients, to_rgb_order
    _, g = gradients(b, x, resolve_targets(b, 1, 3))
    ixg = (to_rgb_order(b, g) * (x - substitute(b, x, "black"))).sum(-1)
    assert not np.allclose(ixg, attr, atol=0.05 * np.abs(attr).max())
    # the user's model, its weights and guided backprop are unchanged
    assert np.array_equal(before, m.predict(x, verbose=0))
    assert all(np.array_equal(p, q) for p, q in zip(weights_before, m.get_weights()))
    assert m.get_layer("conv1").activation.__name__ == "relu"
    assert np.array_equal(gb_before, A.guided_backprop(b, imgs, 1))
    np.testing.assert_array_equal(A.guided_backprop(bundle_of(m), imgs, 1), gb_before)


def test_max_pooling_and_products_are_approximate_and_reported():
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(2)
    inp = keras.Input((H, W, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = L.MaxPooling2D(2)(x)
    x = L.Multiply()([x, L.Activation("sigmoid")(L.Conv2D(4, 1)(x))])   # swish-like product
    out = L.Dense(3)(L.Flatten()(x))
    b = bundle_of(keras.Model(inp, out))
    imgs = random_images(2, H, W, seed=8)
    attr, delta = deeplift(b, imgs, 2, baseline="white", return_delta=True)
    d = _deltas(b, b.preprocess(imgs), 2, "white")
    np.testing.assert_allclose(delta, attr.sum(axis=(1, 2)) - d, atol=1e-5 * np.abs(d).max())
    assert np.abs(delta).max() > 1e-3 * np.abs(d).max()   # not exact here, and said so


def test_model_without_relu_works():
    b = bundle_of(smooth_model())                          # tanh and softplus only
    imgs = random_images(2, H, W, seed=3)
    attr, delta = deeplift(b, imgs, 0, baseline="blur", return_delta=True)
    d = _deltas(b, b.preprocess(imgs), 0, "blur")
    np.testing.assert_array_less(np.abs(attr.sum(axis=(1, 2)) - d), 1e-3 * np.abs(d))


def test_efficientnet_lite0_is_exactly_complete(lite0):
    import tfviz
    img = tfviz.images.sample_photo("chelsea")
    attr, delta = deeplift(lite0, img, None, return_delta=True)
    assert attr.shape == (1, 224, 224)
    d = _deltas(lite0, lite0.preprocess(lite0.load_images(img)), None, "black")
    assert abs(d[0]) > 1.0
    assert abs(delta[0]) < 1e-4 * abs(d[0])          # measured ~4e-7 relative
    assert abs(attr.sum() - d[0]) < 1e-4 * abs(d[0])
    # 33 ReLU6 (stem, 1 + 15 x 2 in the blocks, top), nothing else to wrap
    assert sum(lay.name.endswith("_deeplift") for lay in heads.head(lite0, None, "deeplift").layers) == 33


# --------------------------------------------------------------------------- targets, baselines, options
def test_unit_targets():
    m = _elementwise_net()
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=9)
    x = b.preprocess(imgs)
    for unit in ("conv2:3", "relu6:1", "conv1:2:4:5"):
        attr, delta = deeplift(b, imgs, unit, return_delta=True)
        d = _deltas(b, x, unit, "black")
        np.testing.assert_array_less(np.abs(attr.sum(axis=(1, 2)) - d), 1e-3 * np.abs(d) + 1e-6)
        np.testing.assert_array_less(np.abs(delta), 1e-3 * np.abs(d) + 1e-6)
    # a conv1 unit at (4, 5) sees only its 3x3 window
    outside = np.ones((H, W), bool)
    outside[3:6, 4:7] = False
    assert np.all(attr[:, outside] == 0) and np.all(np.abs(attr[:, ~outside]).sum(-1) > 0)
    # mixed heads in one call give the same maps as separate calls
    mixed = deeplift(b, imgs, ["conv2:3", 2])
    np.testing.assert_allclose(mixed[0], deeplift(b, imgs[:1], "conv2:3")[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(mixed[1], deeplift(b, imgs[1:], 2)[0], rtol=1e-5, atol=1e-7)


def test_baselines_blur_and_arrays():
    b = bundle_of(_elementwise_net())
    imgs = random_images(2, H, W, seed=10)
    x = b.preprocess(imgs)
    attr, delta = deeplift(b, imgs, 0, baseline="blur", return_delta=True)
    d = _deltas(b, x, 0, "blur")
    np.testing.assert_array_less(np.abs(attr.sum(axis=(1, 2)) - d), 1e-3 * np.abs(d))
    flat = deeplift(b, imgs, 0, baseline=np.full((H, W, 3), 40, np.uint8))
    np.testing.assert_allclose(flat, deeplift(b, imgs, 0, baseline=40), rtol=1e-6, atol=1e-8)
    # one reference image per input
    refs = random_images(2, H, W, seed=11)
    per = deeplift(b, imgs, 0, baseline=refs)
    np.testing.assert_allclose(per[1], deeplift(b, imgs[1:], 0, baseline=refs[1:])[0], rtol=1e-5, atol=1e-8)
    # the image as its own reference: nothing to explain
    assert np.all(deeplift(b, imgs[:1], 0, baseline=imgs[0]) == 0)


def test_channels_batches_caching_and_input_conventions():
    imgs = random_images(3, 16, 16, seed=12)
    out = {}
    for pre in ("0-1", "-1-1", "caffe"):
        b = bundle_of(_ranged_model(pre), preprocess=pre)
        out[pre] = deeplift(b, imgs, 2, reduce=None)
    assert out["0-1"].shape == (3, 16, 16, 3)
    # the same pixel-space network: the same attributions per RGB channel whatever the input convention
    for pre in ("-1-1", "caffe"):
        np.testing.assert_allclose(out[pre], out["0-1"], atol=1e-4 * np.abs(out["0-1"]).max(), err_msg=pre)
    b = bundle_of(_ranged_model("caffe"), preprocess="caffe")
    summed = deeplift(b, imgs, 2)
    np.testing.assert_allclose(summed, out["caffe"].sum(-1), rtol=1e-5, atol=1e-8)
    # batches of one image (padded) and single images agree with one batch
    np.testing.assert_allclose(deeplift(b, imgs, 2, batch_size=2), summed, atol=2e-5 * np.abs(summed).max())
    np.testing.assert_allclose(deeplift(b, imgs[2:], 2)[0], summed[2], atol=2e-5 * np.abs(summed).max())
    # traced once per shape: another target does not retrace
    from tfviz.attribution.deeplift import deeplift_function
    f = deeplift_function(b)
    n = f.experimental_get_tracing_count()
    deeplift(b, imgs, [0, 1, 2])
    assert f.experimental_get_tracing_count() == n
    assert deeplift.on_inputs.__name__ == "deeplift" and METHODS["deeplift"] is deeplift


def test_bad_options_are_clear_errors():
    b = bundle_of(two_layer_relu_net())
    imgs = random_images(1, H, W)
    valid = "unknown baseline 'nope'; one of mean, zero, gray, black, white, blur"
    with pytest.raises(A.AttributionError, match=valid):
        deeplift(b, imgs, 0, baseline="nope")
    with pytest.raises(A.AttributionError, match="reduce must be 'sum' or None"):
        deeplift(b, imgs, 0, reduce="max")
