"""Feature ablation, LIME and KernelSHAP over superpixels: known answers by hand on tiny
models built here (a linear model, where every method knows the answer, and a small CNN,
where the exact Shapley values are a sum over orders), the segmentations, the baselines,
bad input and the command line."""
import itertools
import math

import numpy as np
import pytest
from PIL import Image

import tfviz
from cli_helpers import run_cli
from test_attribution import bundle_of, linear_model, random_images, small_cnn
from tfviz import attribution as A
from tfviz.attribution import coalitions as C
from tfviz.attribution import superpixels as S
from tfviz.errors import AttributionError

METHODS = ("feature_ablation", "lime", "kernel_shap")


def band_mask(h, w, rows, cols):
    """Labels by hand: cell (r, c) of a rows x cols grid is r * cols + c."""
    lab = np.zeros((h, w), np.int32)
    for y in range(h):
        for x in range(w):
            lab[y, x] = (y * rows // h) * cols + (x * cols // w)
    return lab


def exact_linear(model, x, base, labels, c):
    """A linear model's Shapley values (also its feature ablation drops and LIME weights):
    ``sum over a superpixel's pixels of w . (x - b)``."""
    kernel = model.get_layer("dense").get_weights()[0][:, c].reshape(x.shape[1:])
    contrib = ((x - base) * kernel).sum(-1)                     # [N, H, W]
    m = labels.max() + 1
    return np.stack([[contrib[i][labels == j].sum() for j in range(m)] for i in range(len(x))])


# --------------------------------------------------------------------------- segmentations
def test_grid_labels_by_hand():
    np.testing.assert_array_equal(S.grid_labels(4, 6, 2, 3), [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2],
                                                              [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]])
    # uneven: rows of 5 pixels into 2 cells -> 3 + 2
    np.testing.assert_array_equal(S.grid_labels(5, 2, 2, 1)[:, 0], [0, 0, 0, 1, 1])
    imgs = random_images(2, 16, 16)
    seg = S.segment(imgs, "grid")                               # 8 x 8 cells of 2 x 2 pixels
    assert seg.labels.shape == (2, 16, 16) and list(seg.counts) == [64, 64]
    np.testing.assert_array_equal(seg.labels[1], band_mask(16, 16, 8, 8))
    np.testing.assert_array_equal(S.segment(imgs, "grid:2x4").labels[0], band_mask(16, 16, 2, 4))
    np.testing.assert_array_equal(S.segment(imgs, "grid:3").labels[0], band_mask(16, 16, 3, 3))
    assert S.segment(imgs, "grid:40").counts[0] == 256          # more cells than pixels: one per pixel


def test_integer_masks_are_renumbered_in_order():
    mask = np.array([[7, 7, -3], [100, 7, -3]])
    seg = S.segment(random_images(2, 2, 3), mask)
    np.testing.assert_array_equal(seg.labels, [[[1, 1, 0], [2, 1, 0]]] * 2)
    assert list(seg.counts) == [3, 3]
    per_image = np.stack([np.array([[0, 0, 1], [0, 1, 1]]), np.array([[5, 9, 9], [9, 9, 2]])])
    seg = S.segment(random_images(2, 2, 3), per_image)
    np.testing.assert_array_equal(seg.labels[1], [[1, 2, 2], [2, 2, 0]])
    assert list(seg.counts) == [2, 3]
    bools = S.segment(random_images(1, 2, 3), np.array([[True, False, False], [True, True, False]]))
    np.testing.assert_array_equal(bools.labels[0], [[1, 0, 0], [1, 1, 0]])
    floats = S.segment(random_images(1, 2, 3), np.array([[2.0, 2.0, 5.0], [5.0, 5.0, 2.0]]))
    np.testing.assert_array_equal(floats.labels[0], [[0, 0, 1], [1, 1, 0]])


def test_mask_png_grey_or_colour(tmp_path):
    grey = np.array([[10, 10, 200], [10, 50, 200]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(S.segment(random_images(1, 2, 3), str(tmp_path / "grey.png")).labels[0],
                                  [[0, 0, 2], [0, 1, 2]])
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 2] = (255, 0, 0)
    rgb[1, :2] = (0, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(S.segment(random_images(1, 2, 3), tmp_path / "rgb.png").labels[0],
                                  [[0, 0, 2], [1, 1, 0]])


def test_slic_on_a_bundled_photo_is_a_sane_labelling():
    from scipy import ndimage
    u8 = tfviz.images.load_images([tfviz.images.sample_photo("chelsea")], (224, 224))
    seg = S.segment(u8, "slic")
    lab = seg.labels[0]
    m = int(seg.counts[0])
    assert lab.shape == (224, 224) and lab.dtype == np.int32
    assert set(np.unique(lab)) == set(range(m))                 # labels cover the image, 0..M-1, none missing
    assert 35 <= m <= 60                                        # near the 50 asked for
    assert all(ndimage.label(lab == j)[1] == 1 for j in range(m))   # each superpixel is one connected piece
    sizes = np.bincount(lab.ravel())
    assert sizes.min() > 0.1 * 224 * 224 / 50                   # no crumbs
    more = S.segment(u8, "slic:100")
    assert 80 <= more.counts[0] <= 120
    qs = S.segment(u8, "quickshift")
    assert qs.counts[0] >= 10 and set(np.unique(qs.labels[0])) == set(range(qs.counts[0]))


@pytest.mark.parametrize("segments, message", [
    (np.zeros((8, 8), int) + np.arange(8) // 4, "is 8x8 but the images are 1 x 6x6"),
    (np.zeros((2, 6, 6), int), r"is 2x6x6 but the images are 1 x 6x6"),
    (np.ones((6, 6), int), "has a single label: at least two superpixels"),
    (np.full((6, 6), 0.5), "fractional or non-finite"),
    (np.full((6, 6), "a"), "integer labels.*dtype <U1"),
    ("watershed", "unknown segments 'watershed'"),
    ("slic:many", "is not slic:N"),
    ("grid:0", "must be at least 1"),
    ("grid:2x", "is not grid:K or grid:RxC"),
])
def test_bad_segments_are_one_clear_error(segments, message):
    b = bundle_of(linear_model(6, 6, 2))
    for name in METHODS:
        with pytest.raises(AttributionError, match=message):
            A.METHODS[name](b, random_images(1, 6, 6), 0, segments=segments)


def test_other_bad_options():
    b = bundle_of(linear_model(6, 6, 2))
    img = random_images(1, 6, 6)
    with pytest.raises(AttributionError, match="unknown baseline 'purple'"):
        A.lime(b, img, 0, segments="grid:2", baseline="purple")
    with pytest.raises(AttributionError, match="samples must be a whole number"):
        A.kernel_shap(b, img, 0, segments="grid:2", samples=0)
    with pytest.raises(AttributionError, match="samples must be a whole number"):
        A.lime(b, img, 0, segments="grid:2", samples=2.5)
    with pytest.raises(AttributionError, match="seed must be a whole number"):
        A.lime(b, img, 0, segments="grid:2", seed="x")
    with pytest.raises(AttributionError, match="kernel_width must be a positive"):
        A.lime(b, img, 0, segments="grid:2", kernel_width=0)
    with pytest.raises(AttributionError, match="score must be 'logit' or 'probability'"):
        A.feature_ablation(b, img, 0, segments="grid:2", score="odds")
    with pytest.raises(tfviz.TfvizError, match="option of kernel_shap"):
        A.kernel_shap(b, img, 0, segments="grid:2", sample=3)


# --------------------------------------------------------------------------- baselines
def test_baselines_by_hand():
    b = bundle_of(linear_model(4, 4, 2))
    u8 = random_images(2, 4, 4, seed=3)
    x = b.preprocess(u8)
    seg = S.segment(u8, band_mask(4, 4, 1, 2))                  # left and right halves
    mean = S.baseline_inputs(b, x, seg, "mean")
    for i in range(2):
        for half, cols in ((0, slice(0, 2)), (1, slice(2, 4))):
            np.testing.assert_allclose(mean[i][:, cols], np.broadcast_to(x[i][:, cols].mean((0, 1)), (4, 2, 3)),
                                       rtol=1e-6)
    np.testing.assert_allclose(S.baseline_inputs(b, x, seg, "image_mean")[1],
                               np.broadcast_to(x[1].mean((0, 1)), (4, 4, 3)), rtol=1e-6)
    np.testing.assert_allclose(S.baseline_inputs(b, x, seg, (255, 0, 51)), np.broadcast_to([1, 0, 0.2], x.shape),
                               rtol=1e-6)
    np.testing.assert_allclose(S.baseline_inputs(b, x, seg, 0), 0.0)
    other = random_images(1, 4, 4, seed=9)
    np.testing.assert_allclose(S.baseline_inputs(b, x, seg, other), np.broadcast_to(other / 255.0, x.shape),
                               rtol=1e-6)


# --------------------------------------------------------------------------- a linear model: every answer known
@pytest.mark.parametrize("baseline", ["black", "mean", (40, 200, 90)])
def test_linear_model_every_method_finds_the_exact_values(baseline):
    """f linear: f(z) = f(0) + sum_j z_j phi_j with phi_j = sum over superpixel j of w . (x - b).
    Feature ablation's drops, KernelSHAP's values (sampled: 12 superpixels, 1024 < 4094
    coalitions) and LIME's coefficients (without the ridge penalty) are all phi."""
    model = linear_model(12, 12, 3)
    b = bundle_of(model)
    imgs = random_images(2, 12, 12, seed=1)
    mask = band_mask(12, 12, 3, 4)
    x = b.preprocess(imgs)
    seg = S.segment(imgs, mask)
    phi = exact_linear(model, x, S.baseline_inputs(b, x, seg, baseline), mask, 2)
    tol = dict(rtol=1e-4, atol=1e-4 * np.abs(phi).max())
    fa, info = A.feature_ablation(b, imgs, 2, segments=mask, baseline=baseline, return_info=True)
    np.testing.assert_allclose(np.stack(info["values"]), phi, **tol)
    np.testing.assert_allclose(fa, phi[:, mask], **tol)        # painted: each superpixel's value on its pixels
    ks, info = A.kernel_shap(b, imgs, 2, segments=mask, baseline=baseline, return_info=True)
    assert list(info["samples"]) == [1026, 1026]
    np.testing.assert_allclose(np.stack(info["values"]), phi, **tol)
    np.testing.assert_allclose(ks, phi[:, mask], **tol)
    # efficiency, exactly: the values add up to f(x) - f(baseline)
    np.testing.assert_allclose([v.sum() for v in info["values"]], info["score"] - info["baseline_score"],
                               rtol=1e-6, atol=1e-5)
    lm, info = A.lime(b, imgs, 2, segments=mask, baseline=baseline, alpha=0.0, return_info=True)
    np.testing.assert_allclose(np.stack(info["values"]), phi, **tol)
    assert np.all(info["r2"] > 0.9999)
    # lime's default ridge penalty (alpha=1) shrinks the weights a little: within 3%
    _, info = A.lime(b, imgs, 2, segments=mask, baseline=baseline, return_info=True)
    np.testing.assert_allclose(np.stack(info["values"]), phi, rtol=0.03, atol=0.03 * np.abs(phi).max())


def test_probability_scores():
    """score="probability": the drops of the softmax probability, by hand."""
    model = linear_model(6, 6, 3)
    b = bundle_of(model)
    imgs = random_images(1, 6, 6)
    mask = band_mask(6, 6, 1, 2)
    x = b.preprocess(imgs)

    def prob(v):
        logits = model(v).numpy()
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True))[:, 1]
    left = x.copy()
    left[:, :, :3] = 0.0
    right = x.copy()
    right[:, :, 3:] = 0.0
    want = prob(x) - np.concatenate([prob(left), prob(right)])
    _, info = A.feature_ablation(b, imgs, 1, segments=mask, baseline="black", score="probability", return_info=True)
    np.testing.assert_allclose(info["values"][0], want, rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------- a nonlinear model
def _copies(x, base, labels, z):
    """The perturbed copies by hand: superpixel j from x where z_j, else from the baseline."""
    keep = np.asarray(z, np.float32)[labels][..., None]
    return base * (1 - keep) + x * keep


def exact_shapley(model, x, base, labels, c):
    """Shapley values by their definition: each superpixel's marginal contribution averaged
    over every order in which the superpixels join (m! orders)."""
    m = labels.max() + 1
    value = {}
    for z in itertools.product([0, 1], repeat=m):
        value[z] = float(model(_copies(x, base, labels, z)[None]).numpy()[0, c])
    phi = np.zeros(m)
    for order in itertools.permutations(range(m)):
        z = [0] * m
        for j in order:
            before = value[tuple(z)]
            z[j] = 1
            phi[j] += value[tuple(z)] - before
    return phi / math.factorial(m)


def _cnn_case(seed=0):
    model = small_cnn(12, 12, classes=3, seed=seed, softmax=False)
    b = bundle_of(model)
    imgs = random_images(1, 12, 12, seed=seed)
    x = b.preprocess(imgs)
    return model, b, imgs, x


@pytest.mark.parametrize("rows, cols", [(2, 2), (1, 5)])
def test_kernel_shap_with_every_coalition_is_the_exact_shapley_values(rows, cols):
    """With 2^M - 2 <= samples (the default for M <= 10) every coalition is used at its
    Shapley kernel weight: the solution is the Shapley values exactly, on any model."""
    model, b, imgs, x = _cnn_case()
    mask = band_mask(12, 12, rows, cols)
    base = S.baseline_inputs(b, x, S.segment(imgs, mask), "blur")
    want = exact_shapley(model, x[0], base[0], mask, 1)
    _, info = A.kernel_shap(b, imgs, 1, segments=mask, baseline="blur", return_info=True)
    assert info["samples"][0] == 2 ** (rows * cols)
    np.testing.assert_allclose(info["values"][0], want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    assert abs(info["values"][0].sum() - (info["score"][0] - info["baseline_score"][0])) < 1e-5


def test_a_wrong_shapley_kernel_fails_the_exact_check(monkeypatch):
    """The check above sees the kernel: with equal weights (or the kernel of M + 1
    features) the values are no longer the Shapley values."""
    model, b, imgs, x = _cnn_case()
    mask = band_mask(12, 12, 1, 5)
    base = S.baseline_inputs(b, x, S.segment(imgs, mask), "blur")
    want = exact_shapley(model, x[0], base[0], mask, 1)
    true_kernel = C.shapley_kernel
    for wrong in (lambda m, s: np.ones_like(np.asarray(s, float)), lambda m, s: true_kernel(m + 1, s)):
        monkeypatch.setattr(C, "shapley_kernel", wrong)
        _, info = A.kernel_shap(b, imgs, 1, segments=mask, baseline="blur", return_info=True)
        assert not np.allclose(info["values"][0], want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_feature_ablation_drops_by_hand_on_a_cnn():
    model, b, imgs, x = _cnn_case(seed=2)
    mask = band_mask(12, 12, 2, 3)
    out, info = A.feature_ablation(b, imgs, 0, segments=mask, baseline=128, return_info=True)
    base = np.full_like(x, 128 / 255.0)
    f = model(x).numpy()[0, 0]
    want = [f - model(_copies(x[0], base[0], mask, np.arange(6) != j)[None]).numpy()[0, 0] for j in range(6)]
    np.testing.assert_allclose(info["values"][0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[0], np.asarray(want)[mask], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(info["score"], [f], rtol=1e-5)
    np.testing.assert_allclose(info["baseline_score"], model(base).numpy()[:, 0], rtol=1e-5)


def test_lime_fits_lime_s_weighted_ridge_by_hand():
    """LIME's coefficients are scikit-learn's Ridge(alpha=1) on the coalitions, each weighted
    by sqrt(exp(-d^2 / 0.25^2)), d the cosine distance to all ones (lime's own kernel and
    scikit-learn's cosine distance), the targets the scores of the copies."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import pairwise_distances
    model, b, imgs, x = _cnn_case(seed=1)
    mask = band_mask(12, 12, 2, 3)
    base = S.baseline_inputs(b, x, S.segment(imgs, mask), "mean")
    _, info = A.lime(b, imgs, 2, segments=mask, samples=200, seed=5, return_info=True)
    z = C.lime_coalitions(6, 200, np.random.default_rng(5))
    assert z[0].all() and set(np.unique(z)) == {0.0, 1.0}
    d = pairwise_distances(z, z[:1], metric="cosine").ravel()
    np.testing.assert_allclose(C.cosine_to_all_on(z), d, atol=1e-6)
    weights = np.sqrt(np.exp(-d ** 2 / 0.25 ** 2))
    y = model(np.stack([_copies(x[0], base[0], mask, zi) for zi in z])).numpy()[:, 2]
    reg = Ridge(alpha=1.0).fit(z, y, sample_weight=weights)
    np.testing.assert_allclose(info["values"][0], reg.coef_, rtol=1e-3, atol=1e-4 * np.abs(reg.coef_).max())
    np.testing.assert_allclose(info["intercept"][0], reg.intercept_, rtol=1e-3, atol=1e-4)
    order = np.argsort(-reg.coef_)
    np.testing.assert_array_equal(info["top_positive"][0], [j for j in order if reg.coef_[j] > 0][:5])
    np.testing.assert_array_equal(info["top_negative"][0], [j for j in order[::-1] if reg.coef_[j] < 0][:5])


def test_lime_kernel_by_hand():
    z = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    d = C.cosine_to_all_on(z)
    np.testing.assert_allclose(d, [0.0, 1 - math.sqrt(0.5), 0.5, 1.0], atol=1e-12)
    np.testing.assert_allclose(C.lime_kernel(d), np.exp(-d ** 2 / (2 * 0.25 ** 2)), rtol=1e-12)


# --------------------------------------------------------------------------- KernelSHAP's coalitions and fit
def test_shapley_kernel_by_hand():
    # (M - 1) / (C(M, s) s (M - s)): M = 4 -> s = 1: 3 / (4 * 3) = 1/4, s = 2: 3 / (6 * 4) = 1/8
    np.testing.assert_allclose(C.shapley_kernel(4, [1, 2, 3]), [0.25, 0.125, 0.25])
    np.testing.assert_allclose(C.shapley_kernel(10, 1), 0.1)


def test_shap_coalitions_enumerate_then_sample_in_pairs():
    z, w = C.shap_coalitions(4, 14, np.random.default_rng(0))       # every coalition: 4 + 4 + 6
    assert len({tuple(r) for r in z}) == 14 and len(z) == 14
    np.testing.assert_allclose(w, C.shapley_kernel(4, z.sum(1)))
    # M = 10, 100 samples: size pair (1, 9) has weight 2 of 5.09 in all, 100 * 2 / 5.09 = 39 >= its 20
    # coalitions -> enumerated; pair (2, 8): 80 * 1.125 / 3.09 = 29 < 90 -> sampled with the rest
    z, w = C.shap_coalitions(10, 100, np.random.default_rng(0))
    assert z.shape == (100, 10)
    sizes = z.sum(1)
    assert sorted(sizes[:20]) == [1] * 10 + [9] * 10 and np.allclose(w[:20], 0.1)
    rest = sizes[20:]
    assert rest.min() >= 2 and rest.max() <= 8
    np.testing.assert_array_equal(z[20::2] + z[21::2], 1.0)         # each drawn with its complement
    left = sum((9 / (k * (10 - k))) * (1 if k == 5 else 2) for k in range(2, 6))
    np.testing.assert_allclose(w[20:], left / 80)
    z2, _ = C.shap_coalitions(10, 100, np.random.default_rng(0))
    np.testing.assert_array_equal(z, z2)


def test_constrained_least_squares_keeps_efficiency_exactly():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, (40, 7)).astype(float)
    y = rng.normal(size=40)
    phi = C.constrained_wls(z, y, rng.random(40), 3.25)
    assert abs(phi.sum() - 3.25) < 1e-12
    # the same as the Lagrange solution of the constrained problem
    wts = rng.random(40)
    phi = C.constrained_wls(z, y, wts, -1.5)
    a = z.T @ (wts[:, None] * z)
    kkt = np.block([[2 * a, np.ones((7, 1))], [np.ones((1, 7)), np.zeros((1, 1))]])
    want = np.linalg.solve(kkt, np.append(2 * z.T @ (wts * y), -1.5))[:7]
    np.testing.assert_allclose(phi, want, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- seeds, batches, info
def test_seeds_reproduce_and_batches_do_not_matter():
    b = bundle_of(small_cnn(16, 16, seed=3))
    imgs = random_images(2, 16, 16, seed=4)
    for name in ("lime", "kernel_shap"):
        fn = A.METHODS[name]
        one = fn(b, imgs, 1, segments="grid:4", samples=60)
        np.testing.assert_array_equal(one, fn(b, imgs, 1, segments="grid:4", samples=60))   # seed 0 by default
        other = fn(b, imgs, 1, segments="grid:4", samples=60, seed=1)
        assert not np.allclose(one, other)
        # one image at a time, and small batches, give the same maps (same draws per image)
        alone = np.concatenate([fn(b, imgs[i:i + 1], 1, segments="grid:4", samples=60) for i in range(2)])
        np.testing.assert_allclose(alone, one, rtol=1e-4, atol=1e-5 * np.abs(one).max())
        np.testing.assert_allclose(fn(b, imgs, 1, segments="grid:4", samples=60, batch_size=7), one, rtol=1e-4,
                                   atol=1e-5 * np.abs(one).max())


def test_info_progress_and_one_trace_per_shape():
    b = bundle_of(small_cnn(16, 16, seed=3))
    imgs = random_images(3, 16, 16, seed=4)
    calls = []
    out, info = A.feature_ablation(b, imgs, [0, 1, 2], segments="slic", batch_size=10, return_info=True,
                                   progress=lambda done, total: calls.append((done, total)))
    total = int(sum(info["counts"] + 2))
    assert calls[-1] == (total, total) and all(t == total for _, t in calls) and len(calls) == -(-total // 10)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert info["segments"].shape == (3, 16, 16) and len(info["values"]) == 3
    for i in range(3):
        assert len(info["values"][i]) == info["counts"][i] == info["segments"][i].max() + 1
        np.testing.assert_array_equal(out[i], info["values"][i][info["segments"][i]])
    f = C.coalition_function(b, None, False, (16, 16, 3))
    n = f.experimental_get_tracing_count()
    A.kernel_shap(b, imgs[:2], 3, segments="grid:3", samples=20, batch_size=4)   # other M, target, batch
    A.lime(b, imgs, None, samples=9)
    assert f.experimental_get_tracing_count() == n


def test_unit_targets_and_several_heads():
    """A unit target scores the copies at a layer: the same program per head."""
    model = small_cnn(16, 16, seed=3)
    b = bundle_of(model)
    imgs = random_images(2, 16, 16, seed=4)
    mask = band_mask(16, 16, 2, 2)
    out, info = A.feature_ablation(b, imgs, ["conv2:3", 1], segments=mask, baseline="black", return_info=True)
    import keras
    sub = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    x = b.preprocess(imgs[:1])
    f = sub(x).numpy()[0, ..., 3].mean()
    want = [f - sub(_copies(x[0], np.zeros_like(x[0]), mask, np.arange(4) != j)[None]).numpy()[0, ..., 3].mean()
            for j in range(4)]
    np.testing.assert_allclose(info["values"][0], want, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- LIME's picture
def test_superpixel_picture_keeps_the_top_superpixels_and_greys_the_rest():
    img = np.full((4, 6, 3), 200, np.uint8)
    lab = band_mask(4, 6, 2, 3)                                  # labels 0..5
    values = np.array([3.0, -1.0, 2.0, 0.0, -4.0, 0.5])
    np.testing.assert_array_equal(S.top_superpixels(values, 2), [0, 2])
    np.testing.assert_array_equal(S.top_superpixels(values, 5, "negative"), [4, 1])
    pic = S.superpixel_picture(img, lab, values, k=2, outline=None)
    keep = np.isin(lab, [0, 2])
    assert (pic[keep] == 200).all() and (pic[~keep] == 128).all()
    pic = S.superpixel_picture(img, lab, values, k=1, sign="negative")
    inside = lab == 4                                            # a 2 x 2 cell: every pixel on its edge
    assert (pic[inside] == (255, 255, 0)).all() and (pic[~inside] == 128).all()
    big = S.superpixel_picture(np.full((8, 12, 3), 200, np.uint8), lab, values, k=2, outline=None)
    np.testing.assert_array_equal(big, S.superpixel_picture(img, lab, values, k=2, outline=None))  # resized to lab
    with pytest.raises(AttributionError, match="one image"):
        S.superpixel_picture(img[None], lab, values)


# --------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sp")
    path = str(d / "cnn.keras")
    small_cnn(16, 16, classes=3, seed=5).save(path)
    img = d / "one.png"
    Image.fromarray(random_images(1, 16, 16, seed=6)[0]).save(img)
    Image.fromarray((band_mask(16, 16, 2, 2) * 60).astype(np.uint8)).save(d / "mask.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(d / "small_mask.png")
    return {"model": path, "image": str(img), "mask": str(d / "mask.png"), "small": str(d / "small_mask.png")}


def _cli_args(t):
    return ["--model", t["model"], "--preprocess", "0-1"]


@pytest.mark.parametrize("method, args, options", [
    ("feature_ablation", ["--segments", "grid:3", "--baseline", "blur"], dict(segments="grid:3", baseline="blur")),
    ("lime", ["--segments", "MASK", "--samples", "50", "--seed", "2", "--baseline", "255,0,0"],
     dict(segments="MASK", samples=50, seed=2, baseline=(255.0, 0.0, 0.0))),
    ("kernel_shap", ["--segments", "slic:20", "--samples", "40", "--baseline", "black"],
     dict(segments="slic:20", samples=40, baseline="black")),
])
def test_cli_map_is_the_library_s(tiny_files, tmp_path, capsys, method, args, options):
    args = [tiny_files["mask"] if a == "MASK" else a for a in args]
    options = {k: (tiny_files["mask"] if v == "MASK" else v) for k, v in options.items()}
    code, out, err = run_cli(["attribute", method.replace("_", "-"), tiny_files["image"], *_cli_args(tiny_files),
                              "--out", str(tmp_path), *args], capsys)
    assert code == 0, err
    got = np.load(tmp_path / f"one_{method}.npy")
    b = tfviz.load_model(tiny_files["model"], preprocess="0-1")
    want = A.METHODS[method](b, [tiny_files["image"]], None, **options)[0]
    assert got.shape == (16, 16) and np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    if method == "lime":   # LIME's own picture: the top superpixels, the rest grey
        pic = np.asarray(Image.open(tmp_path / "one_lime_top.png"))
        assert pic.ndim == 3 and pic.shape[1] >= 2 * 16


@pytest.mark.parametrize("args, message", [
    (["--segments", "SMALL"], "the segments mask is 8x8 but the images are 1 x 16x16"),
    (["--segments", "felzenszwalb"], "unknown segments 'felzenszwalb'"),
    (["--baseline", "purple"], "unknown baseline 'purple'"),
])
def test_cli_bad_segments_are_usage_errors(tiny_files, tmp_path, capsys, args, message):
    args = [tiny_files["small"] if a == "SMALL" else a for a in args]
    code, _, err = run_cli(["attribute", "kernel_shap", tiny_files["image"], *_cli_args(tiny_files),
                            "--out", str(tmp_path / "out"), *args], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
