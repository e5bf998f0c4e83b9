"""HiResCAM, XGrad-CAM, Eigen-CAM, EigenGrad-CAM and the CAM family's options (``relu``,
``eigen_smooth``, ``aug_smooth``) against answers worked out here in numpy on tiny models:
activations read from the model, gradients written out by hand from its weights."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import tfviz
from cli_helpers import run_cli
from test_any_model import segmenter
from test_attribution import bundle_of, random_images, small_cnn
from test_attribution_vit import tiny_vit
from tfviz import attribution as A
from tfviz.attribution import cam as C
from tfviz.attribution.core import MODES, selection
from tfviz.attribution.targets import Region, resolve_targets

L = keras.layers
NEW = ("hires_cam", "xgrad_cam", "eigen_cam", "eigengrad_cam")
FAMILY = ("grad_cam", "grad_cam_plus_plus", "layer_cam") + NEW
#: the six views of aug_smooth, written out: (mirrored, scale)
VIEWS = [(False, 1.0), (False, 1.1), (False, 0.9), (True, 1.0), (True, 1.1), (True, 0.9)]


# --------------------------------------------------------------------------- models and hand answers
def gap_net(seed=0, softmax=True, strides=2):
    """conv(relu) -> strided conv(relu) "conv2" [8 x 8 x 6] -> GAP -> dense with a large
    bias (so "the score" and "the score minus the bias" differ). ``strides=1``: conv2 is
    16 x 16 (and padded the same on both sides)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(5, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(6, 3, strides=strides, padding="same", activation="relu", name="conv2")(x)
    out = L.Dense(3, activation="softmax" if softmax else None, name="predictions")(L.GlobalAveragePooling2D()(x))
    m = keras.Model(inp, out, name="gap_net")
    k, _ = m.get_layer("predictions").get_weights()
    m.get_layer("predictions").set_weights([k, np.array([3.0, -2.0, 1.5], np.float32)])
    return m


def flat_net(seed=1, hidden=True):
    """conv(relu) -> strided conv(relu) "conv2" [8 x 8 x 6] -> flatten -> dense(tanh) "hidden"
    -> dense "predictions": the gradient at conv2 differs from position to position (so
    HiResCAM, XGrad-CAM and Grad-CAM differ). ``hidden=False``: flatten -> dense, linear in
    conv2."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(5, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Flatten()(L.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv2")(x))
    if hidden:
        x = L.Dense(5, activation="tanh", name="hidden")(x)
    out = L.Dense(3, name="predictions")(x)
    m = keras.Model(inp, out, name="flat_net")
    k, _ = m.get_layer("predictions").get_weights()
    m.get_layer("predictions").set_weights([k, np.array([0.5, -4.0, 2.0], np.float32)])
    return m


def activations(m, layer, x):
    return keras.Model(m.input, m.get_layer(layer).output)(np.asarray(x, np.float32)).numpy().astype(np.float64)


def flat_net_gradient(m, a, c):
    """d logit_c / d conv2 of :func:`flat_net` from its weights: ``a`` [N, 8, 8, 6]."""
    flat = a.reshape(len(a), -1)
    w2 = m.get_layer("predictions").get_weights()[0].astype(np.float64)
    if "hidden" not in [lay.name for lay in m.layers]:
        return np.broadcast_to(w2[:, c].reshape(a.shape[1:]), a.shape)
    w1, b1 = (v.astype(np.float64) for v in m.get_layer("hidden").get_weights())
    h = np.tanh(flat @ w1 + b1)
    return (((1 - h ** 2) * w2[:, c]) @ w1.T).reshape(a.shape)


def gap_net_gradient(m, a, c):
    w = m.get_layer("predictions").get_weights()[0].astype(np.float64)
    return np.broadcast_to(w[:, c] / (a.shape[1] * a.shape[2]), a.shape)


def first_component(mats):
    """numpy: each ``[h, w, C]`` of ``mats`` projected on its first right singular vector
    (rows = positions, not centred), the sign making its largest-magnitude value positive."""
    out = []
    for m in mats:
        flat = m.reshape(-1, m.shape[-1])
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        p = flat @ vt[0]
        if p.max() < -p.min():
            p = -p
        out.append(p.reshape(m.shape[:2]))
    return np.asarray(out)


HAND_WEIGHTS = {   # w such that the map is sum_k w * A (broadcast over positions or element-wise)
    "grad_cam": lambda a, g: g.mean(axis=(1, 2), keepdims=True),
    "layer_cam": lambda a, g: np.maximum(g, 0.0),
    "hires_cam": lambda a, g: g,
    "xgrad_cam": lambda a, g: (a * g).sum(axis=(1, 2), keepdims=True) / a.sum(axis=(1, 2), keepdims=True),
}


def close(got, want, rel=1e-4):
    np.testing.assert_allclose(got, want, rtol=rel, atol=rel * np.abs(want).max())


# --------------------------------------------------------------------------- HiResCAM
@pytest.mark.parametrize("net", ["gap", "flatten"])
def test_hires_cam_is_the_hand_sum_and_sums_to_the_logit_minus_the_bias(net):
    """For A -> GAP -> dense (and A -> flatten -> dense): the signed map at conv2's 8 x 8 is
    sum_k (d logit_c / d A_k) A_k, and it sums exactly to logit_c - b_c (the dense bias
    is the only part of the logit that does not come through A); the softmax is bypassed."""
    m = gap_net() if net == "gap" else flat_net(hidden=False)
    b, imgs = bundle_of(m), random_images(3, seed=4)
    x = imgs / 255.0
    a = activations(m, "conv2", x)
    grad = gap_net_gradient if net == "gap" else flat_net_gradient
    logits = b.logits(x.astype(np.float32)).numpy().astype(np.float64)
    bias = m.get_layer("predictions").get_weights()[1]
    for c in range(3):
        got = A.hires_cam(b, imgs, c, layer="conv2", upsample=False, relu=False)
        want = (grad(m, a, c) * a).sum(-1)
        assert got.shape == (3, 8, 8) and want.min() < 0 < want.max()
        close(got, want)
        np.testing.assert_allclose(got.sum(axis=(1, 2)), logits[:, c] - bias[c], rtol=1e-4, atol=1e-5)
        assert abs(bias[c]) >= 0.5   # so the sum is not the logit itself
    if net == "gap":   # through GAP the gradient is the same everywhere: HiResCAM is Grad-CAM there
        close(A.hires_cam(b, imgs, 1, layer="conv2", relu=False), A.grad_cam(b, imgs, 1, layer="conv2", relu=False))


# --------------------------------------------------------------------------- the weights, by hand
@pytest.mark.parametrize("kind", sorted(HAND_WEIGHTS))
@pytest.mark.parametrize("eigen_smooth", [False, True])
def test_weighted_maps_by_hand(kind, eigen_smooth):
    """Grad-CAM, Layer-CAM, HiResCAM and XGrad-CAM (w_k = sum_ij A_kij / sum A_k * dS/dA_kij)
    on a net whose gradient varies over positions: the map is sum_k w * A -- or with
    eigen_smooth the first principal component of w * A -- then its positive part; signed
    with relu=False."""
    m = flat_net()
    b, imgs = bundle_of(m), random_images(3, seed=5)
    a = activations(m, "conv2", imgs / 255.0)
    for c in (0, 2):
        g = flat_net_gradient(m, a, c)
        wa = HAND_WEIGHTS[kind](a, g) * a
        want = first_component(wa) if eigen_smooth else wa.sum(-1)
        signed = A.METHODS[kind](b, imgs, c, layer="conv2", upsample=False, relu=False, eigen_smooth=eigen_smooth)
        close(signed, want)
        close(A.METHODS[kind](b, imgs, c, layer="conv2", upsample=False, eigen_smooth=eigen_smooth),
              np.maximum(want, 0.0))
    if not eigen_smooth and kind != "grad_cam":   # the weights are not Grad-CAM's
        gc = A.grad_cam(b, imgs, 2, layer="conv2", upsample=False, relu=False)
        assert np.abs(signed - gc).max() > 0.05 * np.abs(gc).max()


def test_xgrad_cam_weights_of_a_dead_channel_are_zero():
    """A channel that is 0 everywhere (its sum is 0) gets weight 0, not NaN."""
    m = flat_net()
    k, bias = m.get_layer("conv2").get_weights()
    k[..., 3], bias[3] = 0.0, -1.0                     # channel 3 of conv2 is always 0 after its ReLU
    m.get_layer("conv2").set_weights([k, bias])
    b, imgs = bundle_of(m), random_images(2, seed=6)
    a = activations(m, "conv2", imgs / 255.0)
    assert np.all(a[..., 3] == 0)
    g = flat_net_gradient(m, a, 1)
    w = (a * g).sum(axis=(1, 2), keepdims=True) / np.where(a.sum(axis=(1, 2), keepdims=True) == 0, 1.0,
                                                            a.sum(axis=(1, 2), keepdims=True))
    close(A.xgrad_cam(b, imgs, 1, layer="conv2", upsample=False, relu=False), (w * a).sum(-1))


# --------------------------------------------------------------------------- Eigen-CAM, EigenGrad-CAM
@pytest.mark.parametrize("layer", ["conv2", "relu2"])
def test_eigen_cam_is_numpys_first_component_and_class_agnostic(layer):
    """The first right singular vector of the [h*w, C] activations (not centred), projected,
    its largest value positive: on a ReLU's output the map is >= 0 everywhere
    (relu changes nothing); on the signed conv2 it has both signs. The map is the same for
    every class."""
    m = small_cnn()
    b, imgs = bundle_of(m), random_images(3, seed=7)
    a = activations(m, layer, imgs / 255.0)
    want = first_component(a)
    got = A.eigen_cam(b, imgs, 0, layer=layer, upsample=False, relu=False)
    close(got, want)
    for c in (1, 3):
        np.testing.assert_array_equal(A.eigen_cam(b, imgs, c, layer=layer, upsample=False, relu=False), got)
    if layer == "relu2":
        assert want.min() >= -1e-6 and want.max() > 0
        close(A.eigen_cam(b, imgs, 2, layer=layer, upsample=False), want)
    else:
        assert want.min() < 0 < want.max()
        close(A.eigen_cam(b, imgs, 2, layer=layer, upsample=False), np.maximum(want, 0.0))
    # not the second component, not centred
    flat = a[0].reshape(-1, a.shape[-1])
    centred = flat - flat.mean(axis=0)
    p = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    assert min(np.abs(p - want[0].ravel()).max(), np.abs(p + want[0].ravel()).max()) > 0.05 * np.abs(want).max()
    pc = C.project_first_component(tf.constant(a[:1], tf.float32), center=True).numpy()[0].ravel()
    close(pc, p if p.max() >= -p.min() else -p)


def test_eigengrad_cam_is_the_first_component_of_gradient_times_activation():
    """EigenGrad-CAM: the first component of dS/dA * A (HiResCAM's terms), its largest value
    positive; it depends on the class."""
    m = flat_net()
    b, imgs = bundle_of(m), random_images(3, seed=8)
    a = activations(m, "conv2", imgs / 255.0)
    maps = []
    for c in range(3):
        ga = flat_net_gradient(m, a, c) * a
        want = first_component(ga)
        got = A.eigengrad_cam(b, imgs, c, layer="conv2", upsample=False, relu=False)
        close(got, want)
        assert np.all(got.max(axis=(1, 2)) >= -got.min(axis=(1, 2))) and got.min() < 0
        maps.append(got)
    assert np.abs(maps[0] - maps[1]).max() > 0.1 * np.abs(maps[0]).max()
    # eigen_smooth of HiResCAM is EigenGrad-CAM
    close(A.hires_cam(b, imgs, 1, layer="conv2", eigen_smooth=True), A.eigengrad_cam(b, imgs, 1, layer="conv2"))


def test_relu_false_gives_the_signed_map_and_relu_its_positive_part():
    m = flat_net()
    b, imgs = bundle_of(m), random_images(2, seed=9)
    for name in FAMILY + ("score_cam",):
        signed = A.METHODS[name](b, imgs, 0, layer="conv2", relu=False, upsample=False)
        np.testing.assert_allclose(A.METHODS[name](b, imgs, 0, layer="conv2", upsample=False),
                                   np.maximum(signed, 0.0), rtol=1e-6, atol=1e-9)
        if name in ("grad_cam", "hires_cam", "xgrad_cam", "eigengrad_cam"):
            assert signed.min() < 0 < signed.max(), name


# --------------------------------------------------------------------------- aug_smooth
def _sample(img, yin, xin, clamp):
    """numpy bilinear sampling of ``img`` [H, W, C] at (yin, xin): clamped to the border
    (``clamp``) or 0 outside."""
    h, w = img.shape[:2]
    if clamp:
        yin, xin = np.clip(yin, 0, h - 1), np.clip(xin, 0, w - 1)
    y0, x0 = np.floor(yin).astype(int), np.floor(xin).astype(int)
    dy, dx = (yin - y0)[..., None], (xin - x0)[..., None]

    def at(yy, xx):
        inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w))[..., None]
        return np.where(inside, img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)
    return ((1 - dy) * (1 - dx) * at(y0, x0) + (1 - dy) * dx * at(y0, x0 + 1) + dy * (1 - dx) * at(y0 + 1, x0)
            + dy * dx * at(y0 + 1, x0 + 1))


def _view(img, mirror, s):
    """The view: output pixel p shows the image at c + (mirror(p) - c) / s, c the centre."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xs = (w - 1) - xs if mirror else xs
    cy, cx = (h - 1) / 2, (w - 1) / 2
    return _sample(img, cy + (ys - cy) / s, cx + (xs - cx) / s, clamp=True)


def _back(vmap, mirror, s):
    """A view's map [h, w] back on the image: q reads the view at c + s (mirror(q) - c); and
    how much of q the view sees."""
    h, w = vmap.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    xs = (w - 1) - xs if mirror else xs
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yin, xin = cy + s * (ys - cy), cx + s * (xs - cx)
    return (_sample(vmap[..., None], yin, xin, clamp=False)[..., 0],
            _sample(np.ones((h, w, 1)), yin, xin, clamp=False)[..., 0])


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("upsample", [False, True])
def test_aug_smooth_by_hand(relu, upsample):
    """Each image seen six ways (mirrored or not, scaled 1.0 / 1.1 / 0.9 about its centre,
    border pixels repeated), HiResCAM of each view (its positive part first when relu),
    every view's map mapped back at its own resolution and averaged over the views that
    see each position."""
    m = flat_net()
    b, imgs = bundle_of(m), random_images(2, seed=10)
    x = imgs / 255.0
    want = []
    for img in x:
        total = seen = 0.0
        for mirror, s in VIEWS:
            v = _view(img, mirror, s)
            a = activations(m, "conv2", v[None])
            vmap = (flat_net_gradient(m, a, 1) * a).sum(-1)[0]
            vmap = np.maximum(vmap, 0.0) if relu else vmap
            if upsample:
                vmap = tf.image.resize(vmap[None, ..., None], (16, 16), method="bilinear").numpy()[0, ..., 0]
            back, cover = _back(vmap, mirror, s)
            total, seen = total + back, seen + cover
        want.append(total / seen)
    want = np.asarray(want)
    got = A.hires_cam(b, imgs, 1, layer="conv2", upsample=upsample, relu=relu, aug_smooth=True)
    assert got.shape == ((2, 16, 16) if upsample else (2, 8, 8))
    close(got, want, rel=2e-4)
    plain = A.hires_cam(b, imgs, 1, layer="conv2", upsample=upsample, relu=relu)
    assert np.abs(got - plain).max() > 0.05 * np.abs(plain).max()


def mirror_symmetric(m):
    """Make every conv kernel its own mirror image (left-right): the net's maps then commute
    with a horizontal flip."""
    for lay in m.layers:
        if isinstance(lay, L.Conv2D):
            k, bias = lay.get_weights()
            lay.set_weights([(k + k[:, ::-1]) / 2, bias])
    return m


def test_aug_smooth_over_flips_of_a_mirror_symmetric_net_gives_back_the_map():
    """With the views (identity, mirror) and a net whose maps commute with the mirror, the
    smoothed map is the map -- for every CAM method, a unit target and a box region too
    (the box moves with the mirrored view: unmoved, it would explain the mirrored box)."""
    flips = ((False, 1.0), (True, 1.0))
    b, imgs = bundle_of(mirror_symmetric(gap_net(strides=1))), random_images(2, seed=11)
    for name in FAMILY:
        plain = A.METHODS[name](b, imgs, 1, upsample=False, relu=False)
        close(A.METHODS[name](b, imgs, 1, upsample=False, relu=False, aug_smooth=flips), plain, rel=1e-5)
    unit = ("conv2", 2, 1, 5)
    close(A.hires_cam(b, imgs, unit, layer="conv1", aug_smooth=flips), A.hires_cam(b, imgs, unit, layer="conv1"),
          rel=1e-5)
    seg = tfviz.load_model(mirror_symmetric(segmenter()), preprocess="0-1")
    box = Region(1, box=(1, 2, 6, 9))                  # x0, y0, x1, y1: not symmetric about the centre
    plain = A.hires_cam(seg, imgs, box, layer="conv", relu=False)
    close(A.hires_cam(seg, imgs, box, layer="conv", relu=False, aug_smooth=flips), plain, rel=1e-5)
    # the map of the mirrored box is another map: the box did move
    mirrored = A.hires_cam(seg, imgs[:, :, ::-1], Region(1, box=(10, 2, 15, 9)), layer="conv", relu=False)
    close(mirrored[:, :, ::-1], plain, rel=1e-5)
    assert np.abs(mirrored - plain).max() > 0.1 * np.abs(plain).max()


def test_view_selection_moves_points_and_boxes_by_hand():
    """Rows (index, mode, y0, x0, y1, x1, sign) on a 16 x 16 map: a point moves with the
    view's mirror and scale about the centre 7.5 (rounded), a box's edges about 8 (rounded,
    end exclusive); a mean row is only repeated."""
    sel = np.array([[1, MODES["point"], 3, 2, -1, -1, 1], [1, MODES["box_sum"], 2, 4, 6, 10, 1],
                    [1, MODES["mean"], -1, -1, -1, -1, -1]], np.int32)
    views = ((True, 1.0), (False, 1.1), (True, 0.9))
    got = C.view_selection(sel, views, (16, 16)).numpy().reshape(3, 3, 7)
    # mirror: x -> 15 - x (point), [x0, x1) -> [16 - x1, 16 - x0) (box)
    np.testing.assert_array_equal(got[0, :, 2:6], [[3, 13, -1, -1], [2, 6, 6, 12], [-1, -1, -1, -1]])
    # x1.1: point 7.5 + 1.1 (3 - 7.5) = 2.55 -> 3, 7.5 + 1.1 (2 - 7.5) = 1.45 -> 1;
    # box 8 + 1.1 (2 - 8) = 1.4 -> 1, 8 + 1.1 (4 - 8) = 3.6 -> 4, 8 - 2.2 = 5.8 -> 6, 8 + 2.2 = 10.2 -> 10
    np.testing.assert_array_equal(got[1, :, 2:6], [[3, 1, -1, -1], [1, 4, 6, 10], [-1, -1, -1, -1]])
    # mirror then x0.9: point (3, 13) -> (3.45, 12.45) -> (3, 12); box x [6, 12) -> [6.2, 11.6) -> [6, 12),
    # y [2, 6) -> [2.6, 6.2) -> [3, 6)
    np.testing.assert_array_equal(got[2, :, 2:6], [[3, 12, -1, -1], [3, 6, 6, 12], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(got[:, :, [0, 1, 6]], np.broadcast_to(sel[:, [0, 1, 6]], (3, 3, 3)))
    np.testing.assert_array_equal(C.view_selection(sel, views).numpy(), np.tile(sel, (3, 1)))  # no map: as is
    # box edges scale about the map's middle edge (11 rows: 5.5), not the middle pixel (5):
    # rows [0, 11) at x0.9 -> [5.5 - 4.95, 5.5 + 4.95) = [0.55, 10.45) -> [1, 10)
    box = np.array([[1, MODES["box_mean"], 0, 0, 11, 16, 1]], np.int32)
    np.testing.assert_array_equal(C.view_selection(box, ((False, 0.9),), (11, 16)).numpy()[0, 2:6], [1, 1, 10, 15])


def test_augmented_helper_and_bad_views():
    """``augmented(fn, x)`` runs fn once on every view and averages the maps mapped back:
    a map that is the image's own first channel comes back as itself wherever every view
    sees it (the interior), mirrored views exactly."""
    x = np.random.default_rng(0).uniform(size=(2, 12, 10, 3)).astype(np.float32)
    calls = []

    def first_channel(xv):
        calls.append(xv.shape[0])
        return xv[..., 0]
    out = C.augmented(first_channel, x, views=((False, 1.0), (True, 1.0))).numpy()
    assert calls == [4]
    np.testing.assert_allclose(out, x[..., 0], rtol=1e-6)
    out = C.augmented(first_channel, x).numpy()
    want = np.mean([_back(_view(x[0], f, s)[..., 0], f, s)[0] for f, s in VIEWS], axis=0)
    np.testing.assert_allclose(out[0, 2:-2, 2:-2], want[2:-2, 2:-2], rtol=1e-4, atol=1e-5)
    b = bundle_of(small_cnn())
    with pytest.raises(A.AttributionError, match="aug_smooth"):
        A.grad_cam(b, random_images(1), 0, aug_smooth=((False, 0.0),))


# --------------------------------------------------------------------------- ViT, segmentation
def test_every_new_method_on_a_vit_token_layer():
    """On a ViT's last token layer (the class token dropped, the 4 x 4 patch grid):
    HiResCAM and Eigen-CAM by hand, and every new method (smoothed too) gives finite maps."""
    m = tiny_vit()
    b, imgs = bundle_of(m), random_images(2, seed=12)
    x = tf.constant(imgs / 255.0, tf.float32)
    probe = keras.Model(m.input, [m.get_layer("norm").output, m.outputs[0]])
    with tf.GradientTape() as tape:
        a, out = probe(x)
        score = tf.reduce_sum(out[:, 2])
    g = tape.gradient(score, a).numpy()[:, 1:].reshape(2, 4, 4, -1).astype(np.float64)
    a = a.numpy()[:, 1:].reshape(2, 4, 4, -1).astype(np.float64)
    close(A.hires_cam(b, imgs, 2, upsample=False, relu=False), (g * a).sum(-1))
    close(A.eigen_cam(b, imgs, 2, upsample=False, relu=False), first_component(a))
    close(A.eigengrad_cam(b, imgs, 2, upsample=False, relu=False), first_component(g * a))
    for name in NEW:
        for opts in ({}, {"aug_smooth": True}, {"eigen_smooth": True}):
            maps = A.METHODS[name](b, imgs, 1, **opts)
            assert maps.shape == (2, 16, 16) and np.isfinite(maps).all(), (name, opts)


def test_hires_cam_of_a_segmentation_box_is_the_box_of_logits_minus_bias():
    """Segmenter: conv(relu) "conv" -> 1x1 conv classes (softmax bypassed). For the class's
    logits summed over a box, d score / d A_kij = W_kc inside the box and 0 outside, so the
    signed HiResCAM map is logit_c - b_c inside the box, 0 elsewhere; every new method
    explains a box and the predicted region, and aug_smooth refuses a mask region."""
    model = segmenter()
    seg = tfviz.load_model(model, preprocess="0-1")
    imgs = random_images(2, seed=13)
    box = Region(1, box=(2, 3, 9, 7))                  # x0, y0, x1, y1 -> rows 3..6, columns 2..8
    x = (imgs / 255.0).astype(np.float32)
    logits = seg.logits(x).numpy()[..., 1]
    bias = model.get_layer("classes").get_weights()[1][1]
    want = np.zeros_like(logits)
    want[:, 3:7, 2:9] = logits[:, 3:7, 2:9] - bias
    got = A.hires_cam(seg, imgs, box, layer="conv", upsample=False, relu=False)
    close(got, want, rel=1e-5)
    for name in NEW:
        for target in (box, Region(1)):
            for opts in ({}, {"aug_smooth": True}, {"eigen_smooth": True}):
                maps = A.METHODS[name](seg, imgs, target, **opts)
                assert maps.shape == (2, 16, 16) and np.isfinite(maps).all(), (name, opts)
    with pytest.raises(A.TargetError, match="aug_smooth cannot move"):
        A.hires_cam(seg, imgs, Region(1, mask=np.ones((16, 16))), aug_smooth=True)
    (t,) = resolve_targets(seg, box, 1, x[:1])
    assert selection([t])[0, 1] == MODES["box_sum"]


# --------------------------------------------------------------------------- trust, CLI
def test_trust_report_says_eigen_cam_is_class_agnostic():
    b, imgs = bundle_of(small_cnn()), random_images(1, seed=14)
    rows = A.trust_report(b, imgs, 0, ["eigen_cam", "hires_cam"], steps=2, layers=1)
    assert "class-agnostic" in rows[0]["note"] and "\n" not in rows[0]["note"] and rows[1]["note"] is None


def test_cli_attribute_and_trust_with_the_cam_options(tmp_path, capsys):
    """``tfviz attribute hires_cam`` with --layer, --no-relu, --aug-smooth and --eigen-smooth
    writes the library's map; ``tfviz trust`` prints the class-agnostic note (stderr)."""
    path = str(tmp_path / "net.keras")
    flat_net().save(path)
    img = random_images(1, seed=15)[0]
    from PIL import Image
    Image.fromarray(img).save(tmp_path / "one.png")
    args = ["--model", path, "--preprocess", "0-1", "--out", str(tmp_path / "out"), "--target", "0"]
    b = tfviz.load_model(path, preprocess="0-1")
    for name, flags, opts in [("hires_cam", ["--layer", "conv2", "--no-relu"], dict(layer="conv2", relu=False)),
                              ("xgrad_cam", ["--aug-smooth"], dict(aug_smooth=True)),
                              ("eigengrad_cam", ["--eigen-smooth", "--relu"], dict(eigen_smooth=True)),
                              ("grad-cam", ["--eigen-smooth", "--no-relu"], dict(eigen_smooth=True, relu=False)),
                              ("eigen_cam", [], {})]:
        code, _, err = run_cli(["attribute", name, str(tmp_path / "one.png"), *args, *flags], capsys)
        assert code == 0, err
        key = name.replace("-", "_")
        want = A.METHODS[key](b, img[None], 0, **opts)[0]
        close(np.load(tmp_path / "out" / f"one_{key}.npy"), want, rel=1e-5)
        if key == "hires_cam":
            assert want.min() < 0   # --no-relu reached it
    code, stdout, err = run_cli(["trust", str(tmp_path / "one.png"), "--model", path, "--preprocess", "0-1",
                                 "--methods", "eigen_cam,hires_cam", "--curve-steps", "2", "--layers", "1"], capsys)
    assert code == 0, err
    assert [ln.split()[0] for ln in stdout.strip().splitlines()[3:]] == ["eigen_cam", "hires_cam"]
    assert "note: eigen_cam is class-agnostic" in err
