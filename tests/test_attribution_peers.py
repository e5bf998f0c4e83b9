"""The attribution methods other libraries have (issue 15) against answers computed by
hand: input x gradient, SmoothGrad squared / VarGrad, Grad-CAM++, Layer-CAM, Score-CAM
and GradientSHAP. DeepLIFT has its own file."""
import numpy as np
import pytest

from test_attribution import H, W, bundle_of, linear_model, random_images, small_cnn
from tfviz import attribution as A
from tfviz.attribution.gradients import saliency


def _keras():
    import keras
    return keras


def one_layer_cam_model(seed=3, h=12, w=12, channels=5, classes=3):
    """conv(relu) 'conv' -> GAP -> dense logits: d score / d A_k = v_k / (h w) at every
    position, so every CAM formula can be written out by hand."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((h, w, 3))
    a = L.Conv2D(channels, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    out = L.Dense(classes, name="logits")(L.GlobalAveragePooling2D(name="gap")(a))
    return keras.Model(inp, out, name="one_layer")


def _acts(model, layer, x):
    keras = _keras()
    return keras.Model(model.inputs, model.get_layer(layer).output)(x).numpy()


# --------------------------------------------------------------------------- input x gradient
@pytest.mark.parametrize("preprocess", ["0-1", "-1-1"])
def test_input_x_gradient_of_linear_model_is_w_times_x(preprocess):
    m = linear_model()
    b = bundle_of(m, preprocess=preprocess)
    imgs = random_images(2, H, W, seed=4)
    kernel = m.get_layer("dense").get_weights()[0]
    x = b.preprocess(imgs)
    for c in range(3):
        got = A.input_x_gradient(b, imgs, c, reduce=None)
        np.testing.assert_allclose(got, kernel[:, c].reshape(H, W, 3) * x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(A.input_x_gradient(b, imgs, c), got.sum(-1), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- SmoothGrad variants
def test_vargrad_and_smoothgrad_squared_reduce_the_same_samples():
    b = bundle_of(small_cnn(seed=2))
    imgs = random_images(2, seed=3)
    samples, noise, seed = 6, 0.2, 11
    x = b.preprocess(imgs)
    lo, hi = b.input_range
    from tfviz.attribution.gradients import smoothgrad_noise
    eps = smoothgrad_noise(b, samples, noise, seed, (16, 16, 3)).numpy()  # drawn in-graph, one draw per sample
    sigma = noise * (np.asarray(hi) - np.asarray(lo))  # the documented scale: noise x the input range
    np.testing.assert_allclose(eps.reshape(-1, 3).std(0), sigma, rtol=0.1)
    assert abs(eps.mean()) < 0.1 * sigma.max()
    from tfviz.attribution.targets import resolve_targets
    per = []
    for i in range(2):
        t = resolve_targets(b, 1, samples)
        per.append(saliency.on_inputs(b, (x[i][None] + eps).astype(np.float32), t))
    per = np.stack(per)  # [2, samples, 16, 16]
    kw = dict(samples=samples, noise=noise, seed=seed)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, **kw), per.mean(1), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, variant="smoothgrad_sq", **kw), (per ** 2).mean(1),
                               rtol=1e-4, atol=1e-9)
    vg = A.smoothgrad(b, imgs, 1, variant="vargrad", **kw)
    np.testing.assert_allclose(vg, per.var(1), rtol=1e-3, atol=1e-9)
    assert vg.max() > 0 and not np.allclose(vg, (per ** 2).mean(1))


# --------------------------------------------------------------------------- Grad-CAM++ and Layer-CAM
def test_grad_cam_plus_plus_is_the_papers_formula_on_one_layer():
    m = one_layer_cam_model()
    b = bundle_of(m)
    imgs = random_images(2, 12, 12, seed=8)
    x = b.preprocess(imgs)
    a = _acts(m, "conv", x)                                 # [2, 6, 6, 5]
    v = m.get_layer("logits").get_weights()[0]              # [5, classes]
    logits = m(x).numpy()
    for c in range(3):
        g = np.broadcast_to(v[:, c] / (6 * 6), a.shape)     # d S / d A, the same everywhere
        # the paper's eq. 19 with exp(S): dY/dA = e^S g, d2 = e^S g^2, d3 = e^S g^3
        e = np.exp(logits[:, c])[:, None, None, None]
        d1, d2, d3 = e * g, e * g ** 2, e * g ** 3
        denom = 2 * d2 + a.sum(axis=(1, 2), keepdims=True) * d3
        alpha = d2 / np.where(denom != 0, denom, 1)
        w = (alpha * np.maximum(d1, 0)).sum(axis=(1, 2), keepdims=True)
        paper = np.maximum((w * a).sum(-1), 0)
        ours = A.grad_cam_plus_plus(b, imgs, c, layer="conv", upsample=False)
        np.testing.assert_allclose(ours * np.exp(logits[:, c])[:, None, None], paper, rtol=1e-4, atol=1e-7)
        gc = A.grad_cam(b, imgs, c, layer="conv", upsample=False)
        assert not np.allclose(ours / ours.max(), gc / max(gc.max(), 1e-12), atol=1e-3)


def test_layer_cam_weights_every_activation_by_its_positive_gradient():
    m = one_layer_cam_model(seed=5)
    b = bundle_of(m)
    imgs = random_images(2, 12, 12, seed=9)
    x = b.preprocess(imgs)
    a = _acts(m, "conv", x)
    v = m.get_layer("logits").get_weights()[0]
    for c in range(3):
        expected = np.maximum((np.maximum(v[:, c] / 36, 0) * a).sum(-1), 0)
        np.testing.assert_allclose(A.layer_cam(b, imgs, c, layer="conv", upsample=False), expected,
                                   rtol=1e-5, atol=1e-8)


def test_layer_cam_fuses_layers_as_the_paper():
    b = bundle_of(small_cnn(seed=4))
    imgs = random_images(2, seed=5)
    deep = A.layer_cam(b, imgs, 2, layer="relu2")
    # a shallow layer at the same resolution scores as "finer" only if it is finer: use a
    # model with a strided layer so the two layers differ in size
    keras = _keras()
    L = keras.layers
    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3))
    s = L.Conv2D(4, 3, padding="same", activation="relu", name="shallow")(inp)
    d = L.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="deep")(s)
    out = L.Dense(3, name="logits")(L.GlobalAveragePooling2D()(d))
    b2 = bundle_of(keras.Model(inp, out))
    ms = A.layer_cam(b2, imgs, 1, layer="shallow")
    md = A.layer_cam(b2, imgs, 1, layer="deep")
    norm = lambda m: m / np.maximum(m.max(axis=(1, 2), keepdims=True), 1e-12)  # noqa: E731
    expected = np.maximum(np.tanh(2.0 * norm(ms)), norm(md))
    np.testing.assert_allclose(A.layer_cam(b2, imgs, 1, layer="shallow,deep"), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(A.layer_cam(b2, imgs, 1, layer=["deep", "shallow"], gamma=1.0),
                               np.maximum(np.tanh(norm(ms)), norm(md)), rtol=1e-5, atol=1e-6)
    assert deep.shape == (2, 16, 16)


# --------------------------------------------------------------------------- Score-CAM
def test_score_cam_weights_are_the_masked_input_scores():
    keras = _keras()
    m = one_layer_cam_model(seed=6, channels=6)
    conv = m.get_layer("conv")
    k, bias = conv.get_weights()
    k[..., 5] = 0.0                 # channel 5 is constant over the image: no mask, weight 0
    bias[5] = 0.7
    conv.set_weights([k, bias])
    b = bundle_of(m)
    imgs = random_images(2, 12, 12, seed=10)
    x = b.preprocess(imgs)
    a = _acts(m, "conv", x)                                          # [2, 6, 6, 6]
    import tensorflow as tf
    up = tf.image.resize(a, (12, 12), method="bilinear").numpy()     # [2, 12, 12, 6]
    target = 2
    weights = np.zeros((2, 6), np.float32)
    for i in range(2):
        for ch in range(6):
            u = up[i, ..., ch]
            if u.max() == u.min():
                continue
            mask = (u - u.min()) / (u.max() - u.min())
            p = keras.ops.softmax(m(x[i][None] * mask[None, ..., None])).numpy()
            weights[i, ch] = p[0, target]
    cam, got = A.score_cam(b, imgs, target, layer="conv", upsample=False, return_weights=True, batch_size=4)
    np.testing.assert_allclose(got, weights, rtol=1e-4, atol=1e-7)
    assert (got[:, 5] == 0).all() and (got[:, :5] > 0).all()
    np.testing.assert_allclose(cam, np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0), rtol=1e-4, atol=1e-6)
    full = A.score_cam(b, imgs, target, layer="conv")
    np.testing.assert_allclose(full, tf.image.resize(cam[..., None], (12, 12)).numpy()[..., 0], rtol=1e-4,
                               atol=1e-6)
    # Faster Score-CAM: only the two channels of largest variance, per image
    _, w2 = A.score_cam(b, imgs, target, layer="conv", max_channels=2, return_weights=True)
    var = a.reshape(2, 36, 6).var(axis=1)
    for i in range(2):
        top = set(np.argsort(-var[i])[:2])
        assert set(np.nonzero(w2[i])[0]) == top
        np.testing.assert_allclose(w2[i, list(top)], weights[i, list(top)], rtol=1e-4)


def _two_blob_probe():
    """A 1x1 conv 'probe' (ReLU, no bias) whose channel 0 is the red value and channel 1
    the green value of each pixel, on a black image with a red square at rows/cols 2-4
    and a green one at rows 10-12, cols 9-11: unit 'probe:0' sees only the red square."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    probe = L.Conv2D(2, 1, use_bias=False, activation="relu", name="probe")(inp)
    out = L.Dense(3, name="logits")(L.GlobalAveragePooling2D()(probe))
    m = keras.Model(inp, out)
    k = np.zeros((1, 1, 3, 2), np.float32)
    k[0, 0, 0, 0] = k[0, 0, 1, 1] = 1.0
    m.get_layer("probe").set_weights([k])
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[0, 2:5, 2:5, 0] = 200
    img[0, 10:13, 9:12, 1] = 120
    return m, img


def test_score_cam_of_a_unit_peaks_where_the_units_input_is():
    """Score-CAM of a unit masks the input with each channel of the unit's own layer and
    weighs the channel by the unit's value (not a softmax): for 'probe:0' the red mask
    keeps all of the red square (weight: the mean red, 9 x 200/255 / 256) and the green
    mask hides it (weight 0), so the map is the red channel -- largest on the red square,
    0 on the green one; for 'probe:1' the other way round."""
    m, img = _two_blob_probe()
    b = bundle_of(m)
    red, green = np.zeros((16, 16), bool), np.zeros((16, 16), bool)
    red[2:5, 2:5], green[10:13, 9:12] = True, True
    for unit, here, there, value in (("probe:0", red, green, 200 / 255), ("probe:1", green, red, 120 / 255)):
        cam, w = A.score_cam(b, img, unit, return_weights=True)
        ch = int(unit[-1])
        want_w = np.zeros(2, np.float32)
        want_w[ch] = 9 * value / 256
        np.testing.assert_allclose(w[0], want_w, rtol=1e-5, atol=1e-7, err_msg=unit)
        assert cam.shape == (1, 16, 16)
        np.testing.assert_allclose(cam[0], np.where(here, want_w[ch] * value, 0), rtol=1e-5, atol=1e-7,
                                   err_msg=unit)
        assert here[np.unravel_index(cam[0].argmax(), (16, 16))] and (cam[0][there] == 0).all(), unit
        # the unit at one position of the square: the same masks, the value of that pixel
        y, x = np.argwhere(here)[4]
        _, w = A.score_cam(b, img, f"{unit}:{y}:{x}", return_weights=True, probability=False)
        want_w[ch] = value
        np.testing.assert_allclose(w[0], want_w, rtol=1e-5, atol=1e-7, err_msg=f"{unit}:{y}:{x}")


def test_score_cam_unit_weights_are_the_masked_input_unit_values():
    """On a small CNN, a unit 'conv2:3' (the mean of conv2's channel 3): each channel k of
    conv2 (upsampled, min-max normalized to a mask M_k) gets the unit's value on x * M_k,
    computed here with Keras; the map is relu(sum_k w_k A_k), as for a class."""
    keras = _keras()
    m = small_cnn(seed=5)
    b = bundle_of(m)
    imgs = random_images(2, seed=7)
    x = b.preprocess(imgs)
    a = _acts(m, "conv2", x)                                          # [2, 16, 16, 8]
    sub = keras.Model(m.input, m.get_layer("conv2").output)
    want = np.zeros((2, 8), np.float32)
    for i in range(2):
        for ch in range(8):
            u = a[i, ..., ch]
            mask = (u - u.min()) / (u.max() - u.min())
            want[i, ch] = sub(x[i][None] * mask[None, ..., None]).numpy()[0, ..., 3].mean()
    cam, got = A.score_cam(b, imgs, "conv2:3", return_weights=True, upsample=False)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert (np.sign(got) != 0).all() and (got < 0).any()   # unit values, negative ones too: no softmax
    np.testing.assert_allclose(cam, np.maximum(np.einsum("nhwc,nc->nhw", a, want), 0), rtol=1e-4, atol=1e-5)
    _, again = A.score_cam(b, imgs, "conv2:3", return_weights=True, probability=False)
    np.testing.assert_allclose(again, got, rtol=1e-6)                 # a unit is never softmaxed


# --------------------------------------------------------------------------- GradientSHAP
def test_gradient_shap_of_linear_model():
    m = linear_model()
    b = bundle_of(m, preprocess="-1-1")
    imgs = random_images(2, H, W, seed=6)
    kernel = m.get_layer("dense").get_weights()[0]
    x = b.preprocess(imgs)
    wc = kernel[:, 1].reshape(H, W, 3)
    # one baseline: w * (x - b) exactly, whatever the path points drawn
    got = A.gradient_shap(b, imgs, 1, baselines="black", samples=5, reduce=None)
    np.testing.assert_allclose(got, wc * (x + 1.0), rtol=1e-5, atol=1e-5)
    # black and white in turn: the mean baseline is 0 in -1..1 units
    got = A.gradient_shap(b, imgs, 1, baselines="black,white", samples=4)
    np.testing.assert_allclose(got, (wc * x).sum(-1), rtol=1e-4, atol=1e-5)
    logits = m(x).numpy()[:, 1]
    base = m(np.stack([-np.ones_like(x[0]), np.ones_like(x[0])])).numpy()[:, 1]
    np.testing.assert_allclose(got.sum(axis=(1, 2)), logits - base.mean(), rtol=1e-4, atol=1e-4)


def test_gradient_shap_draws_are_seeded_and_completeness_holds_on_average():
    b = bundle_of(small_cnn(seed=8, softmax=False))
    imgs = random_images(1, seed=12)
    one = A.gradient_shap(b, imgs, 0, samples=8, seed=3)
    np.testing.assert_array_equal(one, A.gradient_shap(b, imgs, 0, samples=8, seed=3))
    assert not np.allclose(one, A.gradient_shap(b, imgs, 0, samples=8, seed=4))
    # with many draws from one baseline the sum approaches f(x) - f(b)
    x = b.preprocess(imgs)
    many = A.gradient_shap(b, imgs, 0, baselines="black", samples=400, batch_size=200)
    f = b.logits(x).numpy()[0, 0] - b.logits(np.zeros_like(x)).numpy()[0, 0]
    assert abs(many.sum() - f) < 0.1 * abs(f) + 1e-3


# --------------------------------------------------------------------------- bad input
def test_bad_options_of_the_new_methods():
    b = bundle_of(small_cnn(seed=1))
    imgs = random_images(1)
    with pytest.raises(A.AttributionError, match="unknown SmoothGrad variant 'var'"):
        A.smoothgrad(b, imgs, 0, samples=2, variant="var")
    with pytest.raises(A.AttributionError, match="max_channels must be a positive integer"):
        A.score_cam(b, imgs, 0, max_channels=0)
    with pytest.raises(A.AttributionError, match="gamma must be > 0"):
        A.layer_cam(b, imgs, 0, gamma=0)
    with pytest.raises(A.NoSpatialLayerError, match="one layer name for grad_cam_plus_plus"):
        A.grad_cam_plus_plus(b, imgs, 0, layer=["conv1", "conv2"])
    with pytest.raises(A.NoSpatialLayerError, match="Grad-CAM needs a spatial"):
        A.layer_cam(b, imgs, 0, layer="conv1,gap")
    with pytest.raises(A.UnknownLayerError):
        A.score_cam(b, imgs, 0, layer="conv9")
    with pytest.raises(A.AttributionError, match="unknown baseline 'nope'"):
        A.gradient_shap(b, imgs, 0, baselines="nope", samples=2)
    with pytest.raises(A.AttributionError, match="'uniform' is a distribution of its own"):
        A.gradient_shap(b, imgs, 0, baselines="black,uniform", samples=2)
    with pytest.raises(A.AttributionError, match="reduce must be"):
        A.input_x_gradient(b, imgs, 0, reduce="mean")


def test_new_methods_explain_units_too():
    """A unit 'conv2:3' scores the mean of conv2's channel 3: explaining it is explaining a
    model whose one output is that mean."""
    keras = _keras()
    m = small_cnn(seed=3)
    b = bundle_of(m)
    unit = keras.layers.GlobalAveragePooling2D()(m.get_layer("conv2").output)[:, 3:4]
    sub = bundle_of(keras.Model(m.inputs, unit))
    imgs = random_images(2, seed=2)
    for name in ("grad_cam_plus_plus", "layer_cam", "score_cam", "input_x_gradient", "gradient_shap"):
        opts = {"samples": 3} if name == "gradient_shap" else {}
        got = A.METHODS[name](b, imgs, "conv2:3", **opts)
        assert got.shape == (2, 16, 16) and np.isfinite(got).all() and np.abs(got).max() > 0, name
        if name == "score_cam":   # Score-CAM weighs a class by its softmax, a unit by its value, and
            opts.update(layer="conv2", probability=False)   # masks with the unit's own layer
        elif "cam" in name:
            opts["layer"] = "conv1"
        want = A.METHODS[name](sub, imgs, 0, **opts)
        np.testing.assert_allclose(A.METHODS[name](b, imgs, "conv2:3", **opts), want, rtol=1e-4,
                                   atol=1e-5 * np.abs(want).max(), err_msg=name)
