"""Histogram losses, colour matching and coarse-to-fine texture synthesis, checked against
answers computed by hand: a histogram matched rank for rank is the target's at every
bin; Risser's loss and its gradient are numpy's; a grey source gives a grey texture; the
stages have the sizes and steps asked for."""
import numpy as np
import pytest
import tensorflow as tf
import keras

import tfviz
from tfviz.synthesis import objectives as obj
from tfviz.synthesis import style_transfer, synthesize_texture
from tfviz.synthesis.color import color_basis, color_target, match_colors
from tfviz.synthesis.objectives import Context
from tfviz.synthesis.optimize import SynthesisError
from tfviz.synthesis.texture import check_scales


@pytest.fixture(scope="module")
def net():
    """A small conv net (three ReLU layers, 8 channels; its texture layer is conv3)."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3")(x)
    out = keras.layers.Dense(3, name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return tfviz.load_model(keras.Model(inp, out, name="small"), preprocess="0-1", input_size=(32, 32))


def gravel_like(h=48, w=48, seed=0, grey=True):
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 30.0, size=(h, w)).clip(0, 255)
    img = np.repeat(base[..., None], 3, -1)
    if not grey:
        img = img * np.array([1.0, 0.6, 0.3])
    return img.astype(np.uint8)


# ------------------------------------------------------------------ histogram matching
def test_a_remapped_histogram_is_the_targets_at_every_bin():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 16, 16, 4)).astype(np.float32)
    t = rng.gamma(2.0, size=(1, 16, 16, 4)).astype(np.float32) * np.array([1, 2, 3, 4], np.float32)
    r = obj.histogram_remap(a, obj.histogram_target(t)).numpy()
    for c in range(4):
        bins = np.linspace(t[..., c].min(), t[..., c].max(), 17)
        np.testing.assert_array_equal(np.histogram(r[..., c], bins)[0], np.histogram(t[..., c], bins)[0])
        # the values keep their order: the brightest stays the brightest
        np.testing.assert_array_equal(np.argsort(r[..., c].ravel(), kind="stable"),
                                      np.argsort(a[..., c].ravel(), kind="stable"))
    # a target of another size (64 values onto 256) and a quantile summary (32 of 256)
    small = t[:, :8, :8]
    r2 = obj.histogram_remap(a, obj.histogram_target(small)).numpy()
    for c in range(4):
        assert r2[..., c].min() >= small[..., c].min() - 1e-6 and r2[..., c].max() <= small[..., c].max() + 1e-6
        np.testing.assert_allclose(np.median(r2[..., c]), np.median(small[..., c]), rtol=0.05)
    q = obj.histogram_target(t, max_quantiles=32)
    assert q.shape == (32, 4)
    want = np.sort(t[0].reshape(-1, 4), 0)[[int(8 * j + 3.5) for j in range(32)]]   # (j+0.5)/32*256-0.5
    np.testing.assert_allclose(q, (want + np.sort(t[0].reshape(-1, 4), 0)[[int(8 * j + 4) for j in range(32)]]) / 2,
                               rtol=1e-6)


def test_the_binned_remap_is_the_exact_one_up_to_a_bin():
    """Risser et al.'s binned ranks against the exact (sorted) ones: every value lands
    within a fraction of the target's spread, and at each bin edge of the current
    histogram the counts below are the target's exactly."""
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(2, 32, 32, 3)) * [1, 2, 3]).astype(np.float32)
    a[1] = np.exp(a[1] / 3)                                                  # another shape of histogram
    t = rng.gamma(2.0, size=(1, 24, 24, 3)).astype(np.float32)
    q = obj.histogram_target(t)
    exact = np.stack([obj.histogram_remap(a[i:i + 1], q).numpy()[0] for i in range(2)])
    binned = obj.binned_remap(a, q, bins=64).numpy()
    spread = t.max() - t.min()
    assert np.abs(binned - exact).max() < 0.08 * spread and np.abs(binned - exact).mean() < 0.002 * spread
    # both images of the batch are remapped on their own histograms
    assert np.abs(binned[1] - exact[1]).mean() < 0.01 * spread
    # the quantile levels of the target's values are kept: the medians agree
    np.testing.assert_allclose(np.median(binned[0], axis=(0, 1)), np.median(t[0], axis=(0, 1)), rtol=0.05)
    # ties (a ReLU's zeros) all take the target's lowest value: the sparsity is kept
    relu = np.maximum(a[:1], 0)
    out = obj.binned_remap(relu, q, bins=64).numpy()
    np.testing.assert_allclose(out[relu == 0], np.broadcast_to(q[0], relu.shape)[relu == 0])


def test_the_histogram_loss_and_its_gradient_are_risser_s(net):
    """-mean((a - R(a))^2) / mean(t^2) with R(a) held fixed: the gradient is
    2 (a - R(a)) / (n C mean(t^2)) -- it moves a toward R(a)."""
    rng = np.random.default_rng(1)
    t = rng.gamma(2.0, size=(1, 6, 6, 8)).astype(np.float32)
    a = tf.constant(rng.normal(size=(1, 6, 6, 8)).astype(np.float32))
    q = obj.histogram_target(t)
    fn = obj.histogram_match("conv1", q, bins=16).bind(net, 1)
    with tf.GradientTape() as tape:
        tape.watch(a)
        total, _ = fn(Context(image=None, raw_image=None, features={"conv1": a}))
    grad = tape.gradient(total, a).numpy()
    r = obj.binned_remap(a, q, bins=16).numpy()
    denom = np.mean(t ** 2)
    assert float(total[0]) == pytest.approx(-np.mean((a.numpy() - r) ** 2) / denom, rel=1e-5)
    np.testing.assert_allclose(grad, -2 * (a.numpy() - r) / (a.numpy().size * denom), rtol=1e-4, atol=1e-7)
    # and it is near the exact loss (numpy's sorted difference)
    an, tn = a.numpy()[0].reshape(-1, 8), t[0].reshape(-1, 8)
    exact = -np.mean((np.sort(an, 0) - np.sort(tn, 0)) ** 2) / denom
    assert float(total[0]) == pytest.approx(exact, rel=0.25)


def test_a_histogram_target_of_the_wrong_layer_is_refused(net):
    with pytest.raises(tfviz.utils.TfvizError, match="needs \\(quantiles, 8\\)"):
        obj.histogram_match("conv1", np.zeros((10, 3))).bind(net, 1)
    with pytest.raises(tfviz.utils.TfvizError, match="spatial layer"):
        obj.histogram_match("head", np.zeros((10, 3))).bind(net, 1)


# ------------------------------------------------------------------ colours
def test_colour_axes_of_a_grey_picture_are_grey_first():
    mean, basis = color_basis(gravel_like())
    np.testing.assert_allclose(basis[:, 0], np.full(3, 1 / np.sqrt(3)), atol=1e-5)
    np.testing.assert_allclose(mean, mean[0], atol=1e-6)
    tgt = color_target(gravel_like())
    assert np.abs(tgt["target"][:, 1:]).max() < 1e-5          # no spread off the grey axis


@pytest.mark.parametrize("mode", ["histogram", "mean_cov"])
def test_matching_to_a_grey_source_gives_grey(mode):
    rng = np.random.default_rng(2)
    colourful = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    out = match_colors(colourful, gravel_like(), mode)
    assert out.shape == colourful.shape and out.dtype == np.uint8
    spread = np.abs(out.astype(int) - out.mean(-1, keepdims=True)).max()
    assert spread <= 1, spread


def test_histogram_colour_matching_gives_the_source_s_histogram_on_each_axis():
    src = gravel_like(32, 32, seed=4, grey=False)
    img = np.random.default_rng(5).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    out = match_colors(img, src, "histogram").astype(np.float64) / 255
    mean, basis = color_basis(src)
    ys = (src.reshape(-1, 3) / 255 - mean) @ basis
    yo = (out.reshape(-1, 3) - mean) @ basis
    # same pixel count: each axis's sorted values are the source's (up to rounding to grey levels)
    assert np.abs(np.sort(yo, 0) - np.sort(ys, 0)).max() < 2.0 / 255


def test_mean_cov_matching_gives_the_source_s_mean_and_covariance():
    rng = np.random.default_rng(4)
    r = rng.normal(120, 25, size=(32, 32))       # colours well inside 0..255: nothing is clipped
    src = np.stack([r, 0.5 * r + rng.normal(30, 10, r.shape), 230 - 0.6 * r], -1).astype(np.uint8)
    img = (np.random.default_rng(6).normal(120, 20, size=(32, 32, 3))).clip(0, 255).astype(np.uint8)
    out = match_colors(img, src, "mean_cov").reshape(-1, 3).astype(np.float64)
    s = src.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(out.mean(0), s.mean(0), atol=1.0)
    np.testing.assert_allclose(np.cov(out, rowvar=False), np.cov(s, rowvar=False), atol=6.0, rtol=0.03)


def test_pixel_histogram_loss_is_zero_for_the_source_itself(net):
    src = gravel_like(16, 16, seed=7, grey=False)
    tgt = color_target(src)
    fn = obj.pixel_histogram_match(tgt["target"], tgt["basis"], tgt["mean"]).bind(net, 1)
    x = tf.constant(src[None].astype(np.float32) / 255)
    lo, hi = tf.zeros(3), tf.ones(3)
    same, _ = fn(Context(image=x, raw_image=x, lo=lo, hi=hi))
    grey = tf.constant(gravel_like(16, 16, seed=7)[None].astype(np.float32) / 255)
    other, _ = fn(Context(image=grey, raw_image=grey, lo=lo, hi=hi))
    assert abs(float(same[0])) < 1e-3 and float(other[0]) < -0.05     # binned ranks: near 0, not 0


# ------------------------------------------------------------------ the recipe
def test_a_grey_source_gives_a_grey_texture(net):
    res = synthesize_texture(net, gravel_like(), size=(32, 40), steps=(6, 6), seed=0)
    img = res.image.astype(int)
    assert np.abs(img - img.mean(-1, keepdims=True)).max() <= 2
    assert img.std() > 10                                      # not a flat grey either
    # without the colour terms the same run has colour
    plain = synthesize_texture(net, gravel_like(), size=(32, 40), steps=(6, 6), seed=0, color_weight=0,
                               match_colors=None).image.astype(int)
    assert np.abs(plain - plain.mean(-1, keepdims=True)).max() > 6


def test_coarse_to_fine_stages_have_the_sizes_and_steps_asked_for(net):
    res = synthesize_texture(net, gravel_like(48, 64), size=(40, 56), scales=(0.5, 0.75, 1), steps=(3, 4, 5))
    st = res.extra["stages"]
    assert [s["size"] for s in st] == [(28, 36), (42, 54), (56, 72)]     # with the 16 px margin
    assert [s["source_size"] for s in st] == [(24, 32), (36, 48), (48, 64)]
    assert [s["steps"] for s in st] == [3, 4, 5] and res.steps == 12 and len(res.history) == 12
    assert res.image.shape == (40, 56, 3) and res.extra["scales"] == (0.5, 0.75, 1.0)
    one = synthesize_texture(net, gravel_like(48, 64), size=(40, 56), scales=1, steps=4)
    assert [s["size"] for s in one.extra["stages"]] == [(56, 72)] and one.steps == 4


@pytest.mark.parametrize("kw, msg", [
    (dict(scales=(1, 0.5)), "increase and end with 1"),
    (dict(scales=(0.5,)), "end with 1"),
    (dict(scales=(0, 1)), "end with 1"),
    (dict(scales=(0.5, 1), steps=(1, 2, 3)), "3 step counts given for 2 scales"),
    (dict(histogram_weight=-1), "histogram_weight must be zero or positive"),
    (dict(match_colors="lab"), "match_colors must be one of histogram, mean_cov"),
    (dict(scales=(0.05, 1)), "coarse stage would be"),
])
def test_bad_texture_arguments_are_refused_before_any_work(net, kw, msg):
    with pytest.raises(SynthesisError, match=msg):
        synthesize_texture(net, gravel_like(), size=48, **kw)


def test_check_scales_accepts_one_stage():
    assert check_scales(1) == (1.0,) and check_scales([0.25, 0.5, 1]) == (0.25, 0.5, 1.0)


def test_the_histogram_loss_falls_in_a_short_run(net):
    src = gravel_like(48, 48, seed=9, grey=False)
    res = synthesize_texture(net, src, size=40, scales=1, steps=15, histogram_weight=1.0, color_weight=1.0)
    for k in ("histogram_match[conv3]", "pixel_histogram_match"):
        v = -res.losses[k]
        assert v[-1] < 0.5 * v[0], (k, v[0], v[-1])


# ------------------------------------------------------------------ style transfer
def test_style_transfer_offers_the_histogram_loss_and_the_style_s_colours(net):
    content = gravel_like(24, 32, seed=1, grey=False)
    grey_style = gravel_like(32, 32, seed=2)
    res = style_transfer(net, content, grey_style, steps=4, histogram_weight=0.5, match_colors="histogram")
    names = set(res.losses)
    assert "histogram_match[conv3]" in names and "gram_match[conv3]" in names
    assert res.extra["histogram_weight"] == 0.5 and res.extra["match_colors"] == "histogram"
    img = res.image.astype(int)
    assert np.abs(img - img.mean(-1, keepdims=True)).max() <= 1          # the grey style's colours: grey
    # the histogram term weighs in: the first objective is the weighted sum with it
    first = {k: float(v[0]) for k, v in res.losses.items()}
    assert first["histogram_match[conv3]"] < -1e-3
    with pytest.raises(SynthesisError, match="pick one"):
        style_transfer(net, content, grey_style, steps=1, preserve_colors=True, match_colors="histogram")


# ------------------------------------------------------------------ the texture network
def test_the_texture_network_trains_on_the_same_losses(net):
    from tfviz.stylize.training import train_texture_network
    seen = []
    train_texture_network(net, gravel_like(32, 32, grey=False), image_size=16, batch_size=2, steps=6, scales=3,
                          width=0.5, lr=1e-2, tv_weight=0.5, histogram_weight=2.0, color_weight=3.0,
                          callbacks=[lambda s, l: seen.append({k: float(v) for k, v in l.items()})])
    for l in seen:
        assert {"style", "tv", "histogram", "color", "total"} <= set(l)
        assert l["histogram"] > 0 and l["color"] > 0
        assert l["total"] == pytest.approx(l["style"] + 0.5 * l["tv"] + l["histogram"] + l["color"], rel=1e-4)
    plain = []
    train_texture_network(net, gravel_like(32, 32, grey=False), image_size=16, batch_size=2, steps=2, scales=3,
                          width=0.5, histogram_weight=0, color_weight=0,
                          callbacks=[lambda s, l: plain.append(set(l))])
    assert "histogram" not in plain[0] and "color" not in plain[0]


def test_a_run_stopped_in_the_coarse_stage_keeps_that_stage_s_texture_without_its_margin(net):
    res = synthesize_texture(net, gravel_like(48, 64), size=(40, 56), scales=(0.5, 1), steps=(6, 6),
                             callbacks=[lambda step, images, losses: step >= 2])
    assert len(res.extra["stages"]) == 1 and res.stopped
    assert res.image.shape == (20, 28, 3) and res.x.shape[1:3] == (20, 28)
