"""``eigen_smooth`` and ``aug_smooth`` on Ablation-CAM and Score-CAM, the CAM methods that
weight channels by scores instead of gradients, against answers worked out here in numpy:
the first principal component by numpy's SVD, the ablation weights of a GAP -> dense net
from its weights, and each view of the image made, explained and mapped back by hand."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfviz
from cli_helpers import run_cli
from test_any_model import segmenter
from test_attribution import bundle_of, random_images
from test_attribution_cam_family import VIEWS, _back, _view, activations, first_component, gap_net, mirror_symmetric
from tfviz import attribution as A
from tfviz.attribution.core import prepare
from tfviz.attribution.targets import Region, resolve_targets

L = keras.layers
METHODS = ("ablation_cam", "score_cam")
FLIPS = ((False, 1.0), (True, 1.0))


def close(got, want, rel=1e-4):
    np.testing.assert_allclose(got, want, rtol=rel, atol=rel * np.abs(want).max())


def gap_ablation_weights(m, a, c):
    """Ablation-CAM's ``(S - S_k) / S`` on :func:`gap_net` at "conv2" (``a`` [N, h, w, C],
    after its ReLU), by hand: the logit is ``mean(a) @ W + b``, so zeroing channel ``k``
    takes ``mean(a_k) W_kc`` off it (the softmax is bypassed)."""
    wd, bd = (v.astype(np.float64) for v in m.get_layer("predictions").get_weights())
    pooled = a.mean(axis=(1, 2))                      # [N, C]
    s = pooled @ wd[:, c] + bd[c]                     # [N]
    return pooled * wd[:, c] / s[:, None]


def upsampled(maps, hw=(16, 16)):
    return tf.image.resize(np.asarray(maps, np.float32)[..., None], hw, method="bilinear").numpy()[..., 0]


# --------------------------------------------------------------------------- eigen_smooth
def test_ablation_cam_eigen_smooth_is_the_first_component_of_the_hand_weighted_activations():
    """gap_net: the weights ``mean(a_k) W_kc / S`` by hand; with eigen_smooth the map is the
    first right singular vector of the [h*w, C] matrix ``w_k A_k`` (numpy's SVD, not centred)
    projected, its largest value positive -- not the channel sum; the weights do not change."""
    m = gap_net(seed=3)
    b, imgs = bundle_of(m), random_images(3, seed=20)
    a = activations(m, "conv2", imgs / 255.0)
    for c in (0, 2):
        w = gap_ablation_weights(m, a, c)
        want = first_component(w[:, None, None, :] * a)
        signed, got_w = A.ablation_cam(b, imgs, c, layer="conv2", upsample=False, relu=False, eigen_smooth=True,
                                       return_weights=True)
        close(got_w, w)
        close(signed, want)
        close(A.ablation_cam(b, imgs, c, layer="conv2", upsample=False, eigen_smooth=True), np.maximum(want, 0.0))
        close(A.ablation_cam(b, imgs, c, layer="conv2", eigen_smooth=True), upsampled(np.maximum(want, 0.0)))
        plain = (w[:, None, None, :] * a).sum(-1)
        close(A.ablation_cam(b, imgs, c, layer="conv2", upsample=False, relu=False), plain)
        assert np.abs(signed - plain).max() > 0.05 * np.abs(plain).max()   # eigen_smooth did something


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_score_cam_eigen_smooth_is_the_first_component_of_its_weighted_activations(layer):
    """Score-CAM's own weights (return_weights; the same with and without eigen_smooth): the
    eigen-smoothed map is numpy's first principal component of ``w_k A_k``, the plain one
    their sum; at conv1 (16 x 16) too."""
    m = gap_net(seed=4)
    b, imgs = bundle_of(m), random_images(2, seed=21)
    a = activations(m, layer, imgs / 255.0)
    plain, w = A.score_cam(b, imgs, [1, 2], layer=layer, upsample=False, relu=False, return_weights=True)
    signed, w2 = A.score_cam(b, imgs, [1, 2], layer=layer, upsample=False, relu=False, return_weights=True,
                             eigen_smooth=True)
    np.testing.assert_array_equal(w2, w)
    assert w.shape == (2, a.shape[-1]) and (w > 0).any()
    weighted = w[:, None, None, :].astype(np.float64) * a
    close(plain, weighted.sum(-1))
    want = first_component(weighted)
    close(signed, want)
    close(A.score_cam(b, imgs, [1, 2], layer=layer, eigen_smooth=True), upsampled(np.maximum(want, 0.0)))
    assert np.abs(signed - plain).max() > 0.05 * np.abs(plain).max()


# --------------------------------------------------------------------------- aug_smooth
def test_ablation_cam_aug_smooth_by_hand():
    """Each image seen six ways (mirrored or not, scaled 1.0 / 1.1 / 0.9 about its centre,
    border pixels repeated): conv2's activations of each view, its ablation weights by hand,
    the positive part of the map upsampled, mapped back and averaged over the views that
    see each position. The weights come back per view, in the order of the views."""
    m = gap_net(seed=5)
    b, imgs = bundle_of(m), random_images(2, seed=22)
    x = imgs / 255.0
    c = 1
    want, want_w = [], []
    for img in x:
        total = seen = 0.0
        ws = []
        for mirror, s in VIEWS:
            a = activations(m, "conv2", _view(img, mirror, s)[None])
            w = gap_ablation_weights(m, a, c)
            ws.append(w[0])
            vmap = upsampled(np.maximum((w[:, None, None, :] * a).sum(-1), 0.0))[0]
            back, cover = _back(vmap, mirror, s)
            total, seen = total + back, seen + cover
        want.append(total / seen)
        want_w.append(ws)
    want = np.asarray(want)
    got, got_w = A.ablation_cam(b, imgs, c, layer="conv2", aug_smooth=True, return_weights=True)
    assert got.shape == (2, 16, 16) and got_w.shape == (2, 6, 6)
    close(got_w, np.asarray(want_w), rel=2e-4)
    close(got, want, rel=2e-4)
    plain = A.ablation_cam(b, imgs, c, layer="conv2")
    assert np.abs(got - plain).max() > 0.05 * np.abs(plain).max()
    # any number of copies per pass gives the same
    close(A.ablation_cam(b, imgs, c, layer="conv2", aug_smooth=True, batch_size=7), got, rel=1e-5)


def test_score_cam_aug_smooth_is_the_mean_of_its_views_mapped_back():
    """Score-CAM with aug_smooth: Score-CAM of each view (made by hand in numpy) at conv2's
    8 x 8, signed, mapped back and averaged over the views that see each position; the
    weights per view are those of the view alone."""
    m = gap_net(seed=6)
    b, imgs = bundle_of(m), random_images(2, seed=23)
    x = prepare(b, imgs)
    t = resolve_targets(b, [0, 2], 2, x)
    on = A.score_cam.on_inputs
    got, got_w = on(b, x, t, layer="conv2", upsample=False, relu=False, aug_smooth=True, return_weights=True)
    for i in range(2):
        total = seen = 0.0
        for v, (mirror, s) in enumerate(VIEWS):
            view = _view(x[i].astype(np.float64), mirror, s)[None].astype(np.float32)
            vmap, vw = on(b, view, t[i:i + 1], layer="conv2", upsample=False, relu=False, return_weights=True)
            close(got_w[i, v], vw[0], rel=1e-4)
            back, cover = _back(vmap[0].astype(np.float64), mirror, s)
            total, seen = total + back, seen + cover
        close(got[i], total / seen, rel=2e-4)
    plain = on(b, x, t, layer="conv2", upsample=False, relu=False)
    assert np.abs(got - plain).max() > 0.05 * np.abs(plain).max()
    # the baseline is seen through the same view: one image per image, mirrored with it
    base = random_images(2, seed=27)
    got = A.score_cam(b, imgs, [0, 2], layer="conv2", baseline=base, aug_smooth=FLIPS)
    mirrored = A.score_cam(b, imgs[:, :, ::-1], [0, 2], layer="conv2", baseline=base[:, :, ::-1])
    close(got, (A.score_cam(b, imgs, [0, 2], layer="conv2", baseline=base) + mirrored[:, :, ::-1]) / 2)


@pytest.mark.parametrize("name", METHODS)
def test_aug_smooth_over_flips_of_a_mirror_symmetric_net_gives_back_the_map(name):
    """Views (identity, mirror) on a net whose maps commute with the mirror: the smoothed map
    is the map, for a class and for a box region of a segmenter that is not symmetric about
    the centre (it moves with the mirrored view; the mirrored box is another map)."""
    b, imgs = bundle_of(mirror_symmetric(gap_net(strides=1, seed=7))), random_images(2, seed=24)
    for opts in ({"upsample": False, "relu": False}, {}, {"eigen_smooth": True}):
        close(A.METHODS[name](b, imgs, 1, aug_smooth=FLIPS, **opts), A.METHODS[name](b, imgs, 1, **opts), rel=1e-5)
    seg = tfviz.load_model(mirror_symmetric(segmenter()), preprocess="0-1")
    box = Region(1, box=(1, 2, 6, 9))                  # x0, y0, x1, y1
    plain = A.METHODS[name](seg, imgs, box, layer="conv", relu=False)
    close(A.METHODS[name](seg, imgs, box, layer="conv", relu=False, aug_smooth=FLIPS), plain, rel=1e-5)
    mirrored = A.METHODS[name](seg, imgs[:, :, ::-1], Region(1, box=(10, 2, 15, 9)), layer="conv", relu=False)
    close(mirrored[:, :, ::-1], plain, rel=1e-5)
    assert np.abs(mirrored - plain).max() > 0.1 * np.abs(plain).max()


@pytest.mark.parametrize("name", METHODS)
def test_smoothing_refusals_and_a_segmentation_box(name):
    """The refusals of the CAM family: views with a scale <= 0 and a mask region (which the
    views cannot move); a box target with both options gives finite maps."""
    seg = tfviz.load_model(segmenter(), preprocess="0-1")
    imgs = random_images(2, seed=25)
    with pytest.raises(A.AttributionError, match="aug_smooth") as e:
        A.METHODS[name](seg, imgs, 1, aug_smooth=((False, 0.0),))
    assert "\n" not in str(e.value)
    with pytest.raises(A.TargetError, match="aug_smooth cannot move"):
        A.METHODS[name](seg, imgs, Region(1, mask=np.ones((16, 16))), aug_smooth=True)
    maps = A.METHODS[name](seg, imgs, Region(1, box=(2, 3, 9, 7)), aug_smooth=True, eigen_smooth=True)
    assert maps.shape == (2, 16, 16) and np.isfinite(maps).all() and maps.max() > 0


# --------------------------------------------------------------------------- CLI
def test_cli_passes_the_smoothing_options(tmp_path, capsys):
    """``tfviz attribute ablation_cam IMAGE --aug-smooth --eigen-smooth`` (and score_cam,
    --no-relu) writes the library's map with those options."""
    path = str(tmp_path / "net.keras")
    gap_net(seed=8).save(path)
    img = random_images(1, seed=26)[0]
    Image.fromarray(img).save(tmp_path / "one.png")
    b = tfviz.load_model(path, preprocess="0-1")
    args = ["--model", path, "--preprocess", "0-1", "--out", str(tmp_path / "out"), "--target", "2"]
    for name, flags, opts in [("ablation_cam", ["--aug-smooth", "--eigen-smooth"], dict(aug_smooth=True,
                                                                                         eigen_smooth=True)),
                              ("score_cam", ["--aug-smooth", "--eigen-smooth", "--no-relu"],
                               dict(aug_smooth=True, eigen_smooth=True, relu=False))]:
        code, _, err = run_cli(["attribute", name, str(tmp_path / "one.png"), *args, *flags], capsys)
        assert code == 0, err
        want = A.METHODS[name](b, img[None], 2, **opts)[0]
        close(np.load(tmp_path / "out" / f"one_{name}.npy"), want, rel=1e-5)
        assert np.abs(want - A.METHODS[name](b, img[None], 2, **{k: v for k, v in opts.items() if k == "relu"})[0]
                      ).max() > 1e-3 * np.abs(want).max()   # the flags reached it
