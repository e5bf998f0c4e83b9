"""Ablation-CAM and FullGrad against answers worked out here, in numpy, from the weights of
tiny models built here: the score drops of channels zeroed by hand, and the input- and
bias-gradients of every layer by the chain rule."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfviz
from cli_helpers import run_cli
from test_any_model import image_and_table, segmenter
from test_attribution import bundle_of, random_images, small_cnn
from test_attribution_vit import tiny_vit
from tfviz import attribution as A
from tfviz.attribution import ablation as AB
from tfviz.attribution import fullgrad as FG
from tfviz.attribution.core import prepare, target_scores
from tfviz.attribution.targets import Region, resolve_targets

L = keras.layers


# --------------------------------------------------------------------------- numpy by hand
def conv(x, k, b=None):
    """Keras's stride-1 'same' convolution (a cross-correlation) of ``x [N,H,W,Ci]`` with
    ``k [kh,kw,Ci,Co]`` (odd sizes: (k-1)/2 zeros on each side)."""
    kh, kw = k.shape[:2]
    h, w = x.shape[1:3]
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = sum(xp[:, dy:dy + h, dx:dx + w, :] @ k[dy, dx] for dy in range(kh) for dx in range(kw))
    return out + (0.0 if b is None else b)


def conv_input_grad(g, k):
    """d(sum(g * conv(x, k))) / dx: each output's gradient sent back through the kernel."""
    kh, kw = k.shape[:2]
    n, h, w, _ = g.shape
    gp = np.zeros((n, h + kh - 1, w + kw - 1, k.shape[2]))
    for dy in range(kh):
        for dx in range(kw):
            gp[:, dy:dy + h, dx:dx + w, :] += g @ k[dy, dx].T
    return gp[:, kh // 2:kh // 2 + h, kw // 2:kw // 2 + w, :]


def relu(z):
    return np.maximum(z, 0.0)


def weights(model, name):
    return [np.asarray(v, np.float64) for v in model.get_layer(name).get_weights()]


def randomize_biases(model, seed=0, scale=0.5):
    """Keras starts biases at zero; give every bias (and batch norm's statistics) values."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if isinstance(layer, L.BatchNormalization):
            c = ws[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
        elif len(ws) == 2:
            layer.set_weights([ws[0], rng.normal(0, scale, ws[1].shape).astype(np.float32)])
    return model


def hand_weights(acts, upper, score):
    """Ablation-CAM's ``(S - S_k) / S`` per channel: ``upper(acts)`` the logits of the
    activations (numpy), each channel zeroed in turn by hand."""
    s = score(upper(acts))
    out = []
    for k in range(acts.shape[-1]):
        a = acts.copy()
        a[..., k] = 0.0
        out.append((s - score(upper(a))) / s)
    return np.stack(out, axis=1), s


def hand_map(acts, w, relu_it=True):
    m = np.einsum("nhwc,nc->nhw", acts, w)
    return relu(m) if relu_it else m


# --------------------------------------------------------------------------- Ablation-CAM
def test_ablation_weights_are_the_score_drops_of_hand_zeroed_channels():
    """small_cnn (conv1 relu -> conv2 -> relu2 -> GAP -> dense): zero each channel of a layer by
    hand, run the rest in numpy, and the weights are the relative score drops, at a layer
    where only pooling and the classifier lie above (a rank-one update per copy), at the
    conv before a ReLU (the mask passes through the ReLU) and at conv1 (conv2 runs per copy)."""
    m = randomize_biases(small_cnn(seed=2), seed=1)
    b = bundle_of(m)
    imgs = random_images(3, seed=4)
    x = b.preprocess(imgs).astype(np.float64)
    k1, b1 = weights(m, "conv1")
    k2, b2 = weights(m, "conv2")
    wd, bd = weights(m, "predictions")
    a1 = relu(conv(x, k1, b1))
    z2 = conv(a1, k2, b2)
    targets = [0, 3, 1]
    pick = lambda logits: logits[np.arange(3), targets]  # noqa: E731
    head = lambda a: relu(a).mean(axis=(1, 2)) @ wd + bd  # noqa: E731  (relu2 -> GAP -> dense)
    cases = {"relu2": (relu(z2), lambda a: a.mean(axis=(1, 2)) @ wd + bd),
             "conv2": (z2, head),
             "conv1": (a1, lambda a: head(conv(a, k2, b2)))}
    for layer, (acts, upper) in cases.items():
        want, s = hand_weights(acts, upper, pick)
        cam, got = A.ablation_cam(b, imgs, targets, layer=layer, upsample=False, return_weights=True)
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=layer)
        np.testing.assert_allclose(cam, hand_map(acts, want), rtol=2e-4, atol=1e-5 * np.abs(cam).max(), err_msg=layer)
        signed = A.ablation_cam(b, imgs, targets, layer=layer, upsample=False, relu=False)
        np.testing.assert_allclose(signed, hand_map(acts, want, False), rtol=2e-4, atol=1e-5 * np.abs(signed).max())
        up = A.ablation_cam(b, imgs, targets, layer=layer)
        np.testing.assert_allclose(up, tf.image.resize(cam[..., None], (16, 16), method="bilinear").numpy()[..., 0],
                                   rtol=1e-5, atol=1e-6)
        assert np.abs(want).max() > 1e-3 and (hand_map(acts, want) > 0).any()
    # how each runs: only the classifier row per copy, the ReLU and the rest per copy, conv2 too
    assert AB.ablation_plan(b, "relu2", None).run == []
    assert [n.operation.name for n in AB.ablation_plan(b, "conv2", None).run] == []
    assert [n.operation.name for n in AB.ablation_plan(b, "conv1", None).run][0] == "conv2"
    # the copies in any batch size, and the plain split (every upper layer per copy), agree
    x32 = prepare(b, imgs)
    t = resolve_targets(b, targets, 3, x32)
    ref = AB.ablation_scores(b, x32, t, layer="conv1")[1]
    np.testing.assert_allclose(AB.ablation_scores(b, x32, t, layer="conv1", batch_size=5)[1], ref, rtol=1e-5)
    np.testing.assert_allclose(AB.ablation_scores(b, x32, t, layer="relu2", push=False)[1],
                               AB.ablation_scores(b, x32, t, layer="relu2")[1], rtol=1e-5, atol=1e-5)
    one = A.ablation_cam(b, imgs[1:2], targets[1], layer="conv1")
    np.testing.assert_allclose(one[0], A.ablation_cam(b, imgs, targets, layer="conv1")[1], rtol=1e-5, atol=1e-6)


def residual_net(kernel=1, seed=0):
    """c1 (relu) -> a; c2 (relu) -> r2; c3 (kernel x kernel, bias) -> bn3 -> add(a) -> relu ->
    GAP -> dense: the skip from ``a`` bypasses r2."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((10, 10, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    r2 = L.ReLU(name="r2")(L.Conv2D(5, 3, padding="same", name="c2")(a))
    h = L.BatchNormalization(name="bn3")(L.Conv2D(4, kernel, padding="same", name="c3")(r2))
    h = L.ReLU(name="out")(L.Add(name="add")([h, a]))
    out = L.Dense(3, activation="softmax", name="fc")(L.GlobalAveragePooling2D(name="gap")(h))
    return randomize_biases(keras.Model(inp, out, name=f"residual{kernel}"), seed=seed + 1)


@pytest.mark.parametrize("kernel", [1, 3])
def test_ablation_with_a_skip_connection_bypassing_the_layer(kernel):
    """The skip from c1 is read from below, once per image, and added to every ablated copy.
    With a 1x1 c3 the copies are rank-one updates through c3, batch norm and the addition;
    with a 3x3 one c3 runs per copy on the ablated maps, the skip broadcast to them."""
    m = residual_net(kernel, seed=kernel)
    b = bundle_of(m)
    imgs = random_images(2, 10, 10, seed=7)
    x = b.preprocess(imgs).astype(np.float64)
    k1, b1 = weights(m, "c1")
    k2, b2 = weights(m, "c2")
    k3, b3 = weights(m, "c3")
    gamma, beta, mean, var = weights(m, "bn3")
    wd, bd = weights(m, "fc")
    a = relu(conv(x, k1, b1))
    r2 = relu(conv(a, k2, b2))

    def upper(r):
        h = (conv(r, k3, b3) - mean) / np.sqrt(var + m.get_layer("bn3").epsilon) * gamma + beta
        return relu(h + a).mean(axis=(1, 2)) @ wd + bd
    targets = [2, 0]
    want, s = hand_weights(r2, upper, lambda z: z[np.arange(2), targets])
    cam, got = A.ablation_cam(b, imgs, targets, layer="r2", upsample=False, return_weights=True)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(cam, hand_map(r2, want), rtol=2e-4, atol=1e-5 * np.abs(cam).max())
    plan = AB.ablation_plan(b, "r2", None)
    if kernel == 1:
        assert [n.operation.name for n in plan.run] == ["out", "gap", "fc_linear"] and plan.bypass == []
    else:
        assert [n.operation.name for n in plan.run][:3] == ["c3", "bn3", "add"]
        assert [tuple(t.shape) for t in plan.bypass] == [(None, 10, 10, 4)]   # c1's output, from below


def test_ablation_explains_a_region_of_a_segmentation_map():
    """Segmenter (conv relu -> 1x1 conv softmax): the score is the box sum of class 1's
    logits; zeroing a channel of 'conv' takes its share off every pixel's logit."""
    m = randomize_biases(segmenter(), seed=3)
    b = tfviz.load_model(m, preprocess="0-1")
    imgs = random_images(2, seed=5)
    x = b.preprocess(imgs).astype(np.float64)
    kc, bc = weights(m, "conv")
    kk, bk = weights(m, "classes")
    acts = relu(conv(x, kc, bc))
    box = (2, 3, 9, 12)   # x0, y0, x1, y1: columns 2..8, rows 3..11
    score = lambda logits: logits[:, 3:12, 2:9, 1].sum(axis=(1, 2))  # noqa: E731
    want, s = hand_weights(acts, lambda a: conv(a, kk, bk), score)
    target = Region(1, box=box)
    cam, got = A.ablation_cam(b, imgs, target, layer="conv", upsample=False, return_weights=True)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(cam, hand_map(acts, want), rtol=2e-4, atol=1e-5 * np.abs(cam).max())
    assert A.ablation_cam(b, imgs, target).shape == (2, 16, 16)


def test_both_explain_a_function_of_the_logits():
    """A target given as a function (the margin of class 2 over class 0): Ablation-CAM's
    weights are its relative drops, and FullGrad's parts sum to it (it is linear)."""
    m = randomize_biases(small_cnn(seed=4), seed=6)
    b = bundle_of(m)
    imgs = random_images(2, seed=3)
    x = b.preprocess(imgs).astype(np.float64)
    k1, b1 = weights(m, "conv1")
    k2, b2 = weights(m, "conv2")
    wd, bd = weights(m, "predictions")
    margin = lambda out: out[:, 2] - out[:, 0]  # noqa: E731
    acts = relu(conv(relu(conv(x, k1, b1)), k2, b2))
    want, s = hand_weights(acts, lambda a: a.mean(axis=(1, 2)) @ wd + bd, margin)
    cam, got = A.ablation_cam(b, imgs, margin, layer="relu2", upsample=False, return_weights=True)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    xg, parts = A.full_grad(b, imgs, margin, post=False)
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)) + parts.sum(1), s, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(parts[:, 2], bd[2] - bd[0], rtol=1e-5)


def test_ablation_of_a_unit_at_its_own_layer_is_that_channel():
    """A unit 'conv2:3' scores the mean of conv2's channel 3: zeroing channel 3 drops it all
    (weight 1), any other channel not at all (weight 0): the map is that channel."""
    m = randomize_biases(small_cnn(seed=5), seed=2)
    b = bundle_of(m)
    imgs = random_images(2, seed=1)
    cam, w = A.ablation_cam(b, imgs, "conv2:3", upsample=False, relu=False, return_weights=True)
    np.testing.assert_allclose(w, np.eye(8)[[3, 3]], atol=1e-6)
    conv2 = keras.Model(m.inputs[0], m.get_layer("conv2").output)(b.preprocess(imgs)).numpy()
    np.testing.assert_allclose(cam, conv2[..., 3], rtol=1e-5, atol=1e-6)


def test_ablation_on_a_token_layer_zeroes_a_feature_in_every_token():
    """A vision transformer's token layer: each feature zeroed in all tokens; the map on the
    patch grid. The plain split (every upper layer per copy) gives the same weights."""
    m = tiny_vit()
    b = bundle_of(m)
    imgs = random_images(2, seed=3)
    cam, w = A.ablation_cam(b, imgs, 1, return_weights=True)
    assert cam.shape == (2, 16, 16) and w.shape == (2, 8) and np.isfinite(cam).all() and np.abs(w).max() > 0
    x = prepare(b, imgs)
    t = resolve_targets(b, 1, 2, x)
    s, ablated, acts = AB.ablation_scores(b, x, t, push=False)
    np.testing.assert_allclose(AB.ablation_weights(s, ablated), w, rtol=1e-4, atol=1e-5)


def test_ablation_refuses_in_one_line():
    m = small_cnn(seed=1)
    b = bundle_of(m)
    imgs = random_images(1)
    with pytest.raises(A.TargetError, match="does not feed the target") as e:
        A.ablation_cam(b, imgs, "conv1:2", layer="conv2")     # conv2 lies after the unit's layer
    assert "\n" not in str(e.value)
    with pytest.raises(A.NoSpatialLayerError, match="spatial") as e:
        A.ablation_cam(b, imgs, layer="gap")
    assert "\n" not in str(e.value)
    with pytest.raises(tfviz.TfvizError, match="option of ablation_cam"):
        A.ablation_cam(b, imgs, batchsize=4)


# --------------------------------------------------------------------------- FullGrad
def bn_net(seed=0):
    """conv (bias) -> batch norm -> ReLU -> GAP -> dense (bias): piecewise linear in the
    input and the biases together."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((8, 8, 3))
    h = L.ReLU(name="relu")(L.BatchNormalization(name="bn")(L.Conv2D(5, 3, padding="same", name="conv")(inp)))
    out = L.Dense(4, activation="softmax", name="fc")(L.GlobalAveragePooling2D(name="gap")(h))
    return randomize_biases(keras.Model(inp, out, name="bn_net"), seed=seed + 1)


def test_full_grad_parts_and_completeness_by_hand():
    """With the ReLU pattern of the image fixed, the net is affine: each part is the net with
    every other term off -- the input part the net on x with all biases 0, a bias's part the
    net on a zero image with only that bias -- and the parts sum to the score."""
    m = bn_net(seed=3)
    b = bundle_of(m)
    imgs = random_images(3, 8, 8, seed=2)
    x = b.preprocess(imgs).astype(np.float64)
    kc, bc = weights(m, "conv")
    gamma, beta, mean, var = weights(m, "bn")
    wd, bd = weights(m, "fc")
    s = gamma / np.sqrt(var + m.get_layer("bn").epsilon)
    t = beta - mean * s
    z = conv(x, kc, bc) * s + t
    on = z > 0
    targets = [1, 3, 0]

    def net(inp, conv_bias, bn_bias, dense_bias):
        h = (conv(inp, kc) + conv_bias) * s + bn_bias
        logits = (h * on).mean(axis=(1, 2)) @ wd + dense_bias
        return logits[np.arange(3), targets]
    score = net(x, bc, t, bd)
    zero, nob = np.zeros_like(x), np.zeros(5)
    np.testing.assert_allclose(score, target_scores(b, prepare(b, imgs), resolve_targets(b, targets, 3, x)),
                               rtol=1e-5)
    input_part = net(x, nob, nob, np.zeros(4))
    conv_part, bn_part = net(zero, bc, nob, np.zeros(4)), net(zero, nob, t, np.zeros(4))
    dense_part = bd[targets]
    xg, parts = A.full_grad(b, imgs, targets, post=False, fold_batchnorm=False)
    assert FG.bias_layers(b, fold_batchnorm=False) == ["conv", "bn", "fc"]
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)), input_part, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(parts, np.stack([conv_part, bn_part, dense_part], 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)) + parts.sum(1), score, rtol=1e-4, atol=1e-5)
    # folded: the conv's bias moves into the batch norm's, s * b + t, one part
    xg, parts = A.full_grad(b, imgs, targets, post=False)
    assert FG.bias_layers(b) == ["bn", "fc"]
    np.testing.assert_allclose(parts, np.stack([conv_part + bn_part, dense_part], 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)) + parts.sum(1), score, rtol=1e-4, atol=1e-5)
    assert np.abs(parts).min() > 1e-3 and np.abs(input_part).min() > 1e-3   # every term counts


def pooled_net(seed=0):
    """conv1 (3x3, bias, relu) -> 2x2 max pool -> conv2 (3x3, bias, relu) -> GAP -> dense."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 3))
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    h = L.Conv2D(5, 3, padding="same", activation="relu", name="conv2")(L.MaxPooling2D(name="pool")(h))
    out = L.Dense(3, name="fc")(L.GlobalAveragePooling2D(name="gap")(h))
    return randomize_biases(keras.Model(inp, out, name="pooled_net"), seed=seed + 1, scale=0.3)


def post(m):
    """The paper's per-map post-processing: |m| shifted and scaled to [0, 1] over the whole
    map of one image (all positions and channels), then summed over channels."""
    m = np.abs(m)
    m = m - m.min(axis=(1, 2, 3), keepdims=True)
    return (m / (m.max(axis=(1, 2, 3), keepdims=True) + 1e-6)).sum(-1)


def test_full_grad_map_by_hand():
    """Gradients by the chain rule in numpy (dense -> GAP -> ReLU -> conv2 -> max pool ->
    ReLU -> conv1 -> input); the map is post(x * dS/dx) + post(b1 * dS/dz1) + post(b2 *
    dS/dz2) upsampled from 6x6 to 12x12; the dense bias has no map, only a part."""
    m = pooled_net(seed=4)
    b = bundle_of(m)
    imgs = np.maximum(random_images(2, 12, 12, seed=6), 1)   # no zero pixel: |x * dS/dx| > 0 everywhere
    x = b.preprocess(imgs).astype(np.float64)
    k1, b1 = weights(m, "conv1")
    k2, b2 = weights(m, "conv2")
    wd, bd = weights(m, "fc")
    z1 = conv(x, k1, b1)
    a1 = relu(z1)
    blocks = a1.reshape(2, 6, 2, 6, 2, 4)
    p = blocks.max(axis=(2, 4))
    z2 = conv(p, k2, b2)
    targets = [2, 0]
    g2 = (z2 > 0) * wd[:, targets].T[:, None, None, :] / 36.0            # dS/dz2
    gp = conv_input_grad(g2, k2)                                       # dS/dpool
    first = blocks == p[:, :, None, :, None, :]                        # where each window's max is
    g1 = (first * gp[:, :, None, :, None, :]).reshape(2, 12, 12, 4) * (z1 > 0)
    gx = conv_input_grad(g1, k1)
    xg, parts = A.full_grad(b, imgs, targets, post=False)
    np.testing.assert_allclose(xg, x * gx, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(parts, np.stack([(g1 * b1).sum((1, 2, 3)), (g2 * b2).sum((1, 2, 3)), bd[targets]], 1),
                               rtol=1e-4, atol=1e-6)
    assert np.abs(x * gx).min() > 0   # so shifting each map by its minimum matters here
    low = post(g2 * b2)
    want = post(x * gx) + post(g1 * b1) + tf.image.resize(low[..., None], (12, 12), method="bilinear").numpy()[..., 0]
    got = A.full_grad(b, imgs, targets)
    assert got.shape == (2, 12, 12) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # one backward pass for every layer: the same program serves post=True and post=False
    assert sum(1 for k in b.programs if k[0] == "attribution.full_grad") == 1


def test_full_grad_completeness_on_a_segmentation_region():
    """Segmenter (conv relu -> 1x1 conv softmax, bypassed): a box of class 2's logits,
    summed; the parts sum to it, and the map is the image's size."""
    m = randomize_biases(segmenter(), seed=6)
    b = tfviz.load_model(m, preprocess="0-1")
    imgs = random_images(2, seed=8)
    x = prepare(b, imgs)
    target = Region(2, box=(1, 4, 11, 15))
    want = target_scores(b, x, resolve_targets(b, target, 2, x))
    kc, bc = weights(m, "conv")
    kk, bk = weights(m, "classes")
    logits = conv(relu(conv(x.astype(np.float64), kc, bc)), kk, bk)
    np.testing.assert_allclose(want, logits[:, 4:15, 1:11, 2].sum(axis=(1, 2)), rtol=1e-5)   # x0, y0, x1, y1
    xg, parts = A.full_grad(b, imgs, target, post=False)
    assert FG.bias_layers(b) == ["conv", "classes"]
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)) + parts.sum(1), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(parts[:, 1], 110 * bk[2], rtol=1e-5)      # the 1x1 bias, once per box pixel
    got = A.full_grad(b, imgs, target)
    assert got.shape == (2, 16, 16) and np.isfinite(got).all() and got.min() >= 0


def test_full_grad_of_a_unit_sums_the_layers_below_it():
    """A unit target: the parts of the layers below it sum to the unit's mean activation;
    layers after it have no part."""
    m = randomize_biases(small_cnn(seed=6), seed=4)
    b = bundle_of(m)
    imgs = random_images(2, seed=9)
    x = prepare(b, imgs)
    xg, parts = A.full_grad(b, imgs, "conv2:5", post=False)
    assert FG.bias_layers(b) == ["conv1", "conv2", "predictions"] and np.all(parts[:, 2] == 0)
    want = target_scores(b, x, resolve_targets(b, "conv2:5", 2, x))
    np.testing.assert_allclose(xg.sum(axis=(1, 2, 3)) + parts.sum(1), want, rtol=1e-4, atol=1e-5)


def test_full_grad_counts_a_held_input_as_a_bias():
    """image_and_table: the table row is held while the image varies -- a constant input, so
    a bias: its part is ``W_table[:, c] . row``, and with it the parts sum to the score."""
    m = randomize_biases(image_and_table(), seed=2)
    b = tfviz.load_model(m, preprocess="0-1")
    imgs = random_images(2, seed=3)
    rows = np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 2.0, -3.0, 4.0]], np.float32)
    xg, parts = A.full_grad(b, imgs, 1, post=False, inputs={"table": rows})
    assert FG.bias_layers(b) == ["conv", "held_table", "from_image", "from_table"]
    wt, bt = weights(m, "from_table")
    np.testing.assert_allclose(parts[:, 1], rows @ wt[:, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(parts[:, 3], [bt[1]] * 2, rtol=1e-6)
    total = xg.sum(axis=(1, 2, 3)) + parts.sum(1)
    for i in range(2):
        b.hold({"table": rows[i]})
        x = prepare(b, imgs[i:i + 1])
        np.testing.assert_allclose(total[i], target_scores(b, x, resolve_targets(b, 1, 1, x))[0], rtol=1e-4)


def test_programs_read_the_weights_at_call_time():
    """The traced programs read the model's variables (the randomization check
    re-initializes layers in place): after new weights, the same bundle gives what a fresh
    bundle of the changed model gives."""
    m = residual_net(1, seed=5)
    b = bundle_of(m)
    imgs = random_images(2, 10, 10, seed=1)
    before = [A.ablation_cam(b, imgs, 1, layer="r2"), A.full_grad(b, imgs, 1, post=False)[1]]
    randomize_biases(m, seed=9)
    m.get_layer("c3").set_weights([w * -1.5 for w in m.get_layer("c3").get_weights()])
    after = [A.ablation_cam(b, imgs, 1, layer="r2"), A.full_grad(b, imgs, 1, post=False)[1]]
    fresh = bundle_of(m)
    for got, want, old in zip(after, [A.ablation_cam(fresh, imgs, 1, layer="r2"),
                                      A.full_grad(fresh, imgs, 1, post=False)[1]], before):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, old)


class Offset(L.Layer):
    """A layer with a weight of its own: full_grad cannot know whether it is a bias."""

    def build(self, shape):
        self.v = self.add_weight(shape=(shape[-1],), initializer="ones", name="v")

    def call(self, x):
        return x + self.v


def test_full_grad_refuses_what_it_cannot_follow_in_one_line():
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = Offset(name="offset")(L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp))
    m = keras.Model(inp, L.Dense(2, name="fc")(L.GlobalAveragePooling2D()(h)))
    b = bundle_of(m)
    vit = bundle_of(tiny_vit(cls=False))
    for model, why in ((b, "layer 'offset' .* cannot tell whether it adds a bias"),
                       (vit, "layer 'block0_attn' .* inside its own call")):
        with pytest.raises(A.UnsupportedModelError, match=why) as e:
            A.full_grad(model, random_images(1, 8 if model is b else 16, 8 if model is b else 16))
        assert "\n" not in str(e.value) and isinstance(e.value, tfviz.TfvizError)
        assert "full_grad" not in A.methods_for(model) and "ablation_cam" in A.methods_for(model)
    assert {"full_grad", "ablation_cam"} <= set(A.methods_for(bundle_of(small_cnn())))


def test_cli_runs_both(tmp_path, capsys):
    m = randomize_biases(small_cnn(seed=8), seed=5)
    path = str(tmp_path / "m.keras")
    m.save(path)
    imgs = random_images(1, seed=2)
    img = tmp_path / "one.png"
    Image.fromarray(imgs[0]).save(img)
    b = tfviz.load_model(path, preprocess="0-1")
    for name, opts in (("ablation_cam", ["--layer", "conv1"]), ("full_grad", [])):
        code, out, err = run_cli(["attribute", name, str(img), "--model", path, "--preprocess", "0-1", "--target", "2",
                                  "--out", str(tmp_path / "out"), *opts], capsys)
        assert code == 0, err
        want = A.METHODS[name](b, [str(img)], 2, **({"layer": "conv1"} if opts else {}))[0]
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"one_{name}.npy"), want, rtol=1e-5, atol=1e-7)
