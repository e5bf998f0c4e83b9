"""The synthesis engine: objectives, parameterizations, transforms, regularizers and
the loop, on tiny models built here, checked against hand computations."""
import math

import numpy as np
import pytest

import tfviz
from tfviz.synthesis import (GradientStep, Objective, SynthesisError, channel, class_logit, feature_match,
                             gram_matrix, l2, layer_l2, optimize, total_variation, unit)
from tfviz.synthesis import params as P
from tfviz.synthesis import regularizers as R
from tfviz.synthesis import transforms as T
from tfviz.synthesis.objectives import Context, ObjectiveError
from tfviz.utils import UnknownClassError, LayerKindError, UnknownLayerError


def tiny_model(seed=0, size=16, softmax=True):
    import keras
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(5, activation="relu", name="hidden")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    if softmax:
        x = keras.layers.Softmax(name="probs")(x)
    return keras.Model(inp, x, name="tiny")


@pytest.fixture(scope="module")
def tiny():
    return tfviz.load_model(tiny_model(), preprocess="0-1", class_names=["red", "green", "blue"])


def gray(n=1, size=16, v=128):
    return np.full((n, size, size, 3), v, np.uint8)


def noise_image(seed=0, size=16):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


# ---------------------------------------------------------------------- objectives
def test_objective_value_is_the_logit_combination_at_step_zero(tiny):
    img = noise_image()
    logits = tiny.logits(tiny.preprocess(img[None])).numpy()[0]
    obj = 2 * class_logit("green") - class_logit(0) + 0.5 * class_logit(2) / 2
    res = optimize(tiny, obj, param=P.pixel(init=img), steps=1, optimizer=1e-6)
    assert res.history[0] == pytest.approx(2 * logits[1] - logits[0] + 0.25 * logits[2], rel=1e-5, abs=1e-5)
    assert set(res.losses) == {"logit[green]", "logit[0]", "logit[2]"}
    assert res.losses["logit[green]"][0] == pytest.approx(logits[1], rel=1e-5, abs=1e-6)


def test_objective_rises_and_step_is_traced_once(tiny):
    res = optimize(tiny, channel("conv2", 0), param="pixel", steps=12, optimizer=0.05,
                   transforms=[T.Roll(2)], regularizers=[R.ClipRange()])
    assert res.steps == 12 and len(res.history) == 12
    assert res.history[-3:].mean() > res.history[:3].mean() + 1e-3
    assert res.extra["traces"] == 1
    assert res.images.dtype == np.uint8 and res.images.shape == (1, 16, 16, 3)


def test_channel_unit_and_layer_l2_read_the_activations(tiny):
    img = noise_image(1)
    feats = tiny.features(["conv1", "hidden"])(tiny.preprocess(img[None]))
    a, h = feats[0].numpy(), feats[1].numpy()
    obj = channel("conv1", 2) + unit("conv1", 3, 4, 5) + unit("hidden", 1) + layer_l2("conv1")
    res = optimize(tiny, obj, param=P.pixel(init=img), steps=1, optimizer=1e-9)
    got = {k: v[0] for k, v in res.losses.items()}
    assert got["channel[conv1:2]"] == pytest.approx(a[0, :, :, 2].mean(), rel=1e-5)
    assert got["unit[conv1:3@4,5]"] == pytest.approx(a[0, 4, 5, 3], rel=1e-5, abs=1e-6)
    assert got["unit[hidden:1]"] == pytest.approx(h[0, 1], rel=1e-5, abs=1e-6)
    assert got["l2[conv1]"] == pytest.approx(0.5 * (a ** 2).sum(), rel=1e-4)


def test_l2_and_total_variation_by_hand():
    import tensorflow as tf
    x = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3) / 10
    ctx = Context(image=x, raw_image=tf.constant(x), center=tf.constant([0.5, 0.5, 0.5]))
    tv = total_variation(2.0).bind(None, 2)(ctx)[0].numpy()
    dy = ((x[:, 1:] - x[:, :-1]) ** 2).sum(axis=(1, 2, 3))
    dx = ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(tv, -2.0 * (dx + dy) / 12, rtol=1e-5)
    l2v = l2(3.0).bind(None, 2)(ctx)[0].numpy()
    np.testing.assert_allclose(l2v, -3.0 * ((x - 0.5) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_gram_matrix_and_feature_match(tiny):
    f = np.random.default_rng(0).normal(size=(1, 2, 3, 4)).astype(np.float32)
    F = f[0].reshape(6, 4).T  # C x HW
    np.testing.assert_allclose(gram_matrix(f).numpy()[0], F @ F.T / 6, rtol=1e-5)
    img = noise_image(2)
    target = tiny.features("conv1")(tiny.preprocess(img[None])).numpy()
    target_gram = gram_matrix(target).numpy()
    from tfviz.synthesis import gram_match
    res = optimize(tiny, feature_match("conv1", target) + gram_match("conv1", target_gram),
                   param=P.pixel(init=img), steps=1, optimizer=1e-9)
    assert abs(res.history[0]) < 1e-6


def test_objective_algebra_rejects_non_scalars():
    with pytest.raises(TypeError):
        class_logit(0) * class_logit(1)
    assert (0 + class_logit(1)).terms[0][0] == 1.0
    assert [c for c, _ in (class_logit(0) - 3 * class_logit(1)).terms] == [1.0, -3.0]


# ---------------------------------------------------------------------- parameterizations
def test_fourier_maps_a_known_spectrum_to_a_cosine():
    h, w = 8, 8
    spec = np.zeros((2, 1, 3, h, w // 2 + 1), np.float32)
    spec[0, 0, 0, 0, 2] = 1.0          # real part, fy = 0, fx = 2/8 cycles per pixel
    spec[0, 0, 1, 0, 0] = 0.5          # DC of channel 1
    img = P.fourier_image(spec, (h, w)).numpy()[0]
    scale = P.spectrum_scale(h, w)
    assert scale[0, 2] == pytest.approx(math.sqrt(64) / 0.25)
    assert scale[0, 0] == pytest.approx(math.sqrt(64) / (1 / 8))
    xs = np.arange(w)
    want = 2 * scale[0, 2] / (h * w) * np.cos(2 * np.pi * 2 * xs / w) / 4  # irfft: 2 Re(X e^{...}) / N
    np.testing.assert_allclose(img[:, :, 0], np.tile(want, (h, 1)), atol=1e-5)
    np.testing.assert_allclose(img[:, :, 1], 0.5 * scale[0, 0] / (h * w) / 4, atol=1e-5)
    np.testing.assert_allclose(img[:, :, 2], 0.0, atol=1e-6)


def test_fourier_zero_spectrum_is_mid_gray_and_colours_are_decorrelated(tiny):
    import tensorflow as tf
    p = P.fourier(size=(8, 8)).build(tiny, np.random.default_rng(0))
    p.spectrum.assign(tf.zeros_like(p.spectrum))
    np.testing.assert_allclose(p.image().numpy(), 0.5, atol=1e-6)   # sigmoid(0) in 0-1 model input
    m = P.COLOR_CORRELATION_NORMALIZED
    np.testing.assert_allclose(np.linalg.norm(m, axis=0).max(), 1.0, rtol=1e-6)
    v = np.array([[1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(P.decorrelate_colors(v).numpy(), v @ m.T, rtol=1e-6)


def test_latent_generator_parameterization(tiny):
    import keras
    keras.utils.set_random_seed(1)
    gen = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8 * 8 * 3, activation="tanh"),
                            keras.layers.Reshape((8, 8, 3))])
    before = [w.copy() for w in gen.get_weights()]
    res = optimize(tiny, class_logit("blue"), param=P.latent(gen), steps=10, optimizer=0.1)
    assert res.images.shape == (1, 16, 16, 3)  # resized to the model's input
    assert res.history[-1] > res.history[0] and res.extra["param"] == "latent"
    for a, b in zip(before, gen.get_weights()):  # only the code was optimized
        np.testing.assert_array_equal(a, b)


def test_pixel_init_batch_and_bad_init(tiny):
    with pytest.raises(P.ParamError):
        optimize(tiny, class_logit(0), param=P.pixel(init=np.zeros((2, 16, 16, 3), np.uint8), batch=3), steps=1)
    with pytest.raises(P.ParamError):
        optimize(tiny, class_logit(0), param="pixels", steps=1)


# ---------------------------------------------------------------------- transforms
def test_jitter_is_lucids_random_crop():
    """Jitter(d) keeps a window d pixels smaller, at an offset 0..d in each axis -- the
    same pixels, not wrapped."""
    import tensorflow as tf
    x = np.arange(7 * 8 * 3, dtype=np.float32).reshape(1, 7, 8, 3)
    gen = tf.random.Generator.from_seed(5)
    seen = set()
    for _ in range(12):
        y = T.Jitter(2)(tf.constant(x), gen).numpy()
        assert y.shape == (1, 5, 6, 3)
        offsets = [(dy, dx) for dy in range(3) for dx in range(3) if np.array_equal(x[:, dy:dy + 5, dx:dx + 6], y)]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert len(seen) > 1                               # random offsets, not always the same
    assert T.Jitter(0)(tf.constant(x), gen).shape == x.shape
    assert repr(T.Jitter(3)) == "Jitter(3)" and repr(T.Roll(3)) == "Roll(3)"


def test_roll_is_a_shift_with_wrap():
    """Roll(2) is np.roll by (dy, dx), each drawn from -2..2: every draw is one of those 25
    shifts, and (seeded) 100 draws reach both ends of both ranges."""
    import tensorflow as tf
    x = np.arange(7 * 8 * 3, dtype=np.float32).reshape(1, 7, 8, 3)
    gen = tf.random.Generator.from_seed(3)
    seen = []
    for _ in range(100):
        y = T.Roll(2)(tf.constant(x), gen).numpy()
        shifts = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                  if np.array_equal(np.roll(x, (dy, dx), axis=(1, 2)), y)]
        assert len(shifts) == 1
        seen.append(shifts[0])
    assert {dy for dy, _ in seen} == {dx for _, dx in seen} == {-2, -1, 0, 1, 2}
    assert np.array_equal(T.Roll(0)(x, gen), x)


def test_pad_scale_rotate_and_fit():
    import tensorflow as tf
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 10, 10, 3)).astype(np.float32))
    gen = tf.random.Generator.from_seed(0)
    assert T.Pad(3)(x, gen).shape == (1, 16, 16, 3)
    assert float(tf.reduce_sum(tf.abs(T.Pad(3)(x, gen)[:, :3]))) == 0.0  # constant = mid-gray (0)
    s = T.RandomScale([1.2])(x, gen)
    assert s.shape == (1, 12, 12, 3)
    np.testing.assert_allclose(T.rotate(x, 0.0).numpy(), x.numpy(), atol=1e-5)
    r90 = T.rotate(x, math.pi / 2).numpy()
    assert min(np.abs(r90 - np.rot90(x.numpy(), k, axes=(1, 2))).max() for k in (1, 3)) < 1e-4
    assert T.fit(s, (10, 10)).shape == (1, 10, 10, 3)
    np.testing.assert_allclose(T.fit(s, (10, 10)).numpy(), s.numpy()[:, 1:11, 1:11])
    assert T.fit(x, (14, 12)).shape == (1, 14, 12, 3)


# ---------------------------------------------------------------------- regularizers
def _ctx(center=0.5, lo=0.0, hi=1.0):
    import tensorflow as tf
    c = tf.constant([center] * 3, tf.float32)
    return Context(image=None, raw_image=None, center=c, lo=tf.constant([lo] * 3), hi=tf.constant([hi] * 3))


def test_decay_by_hand():
    x = np.array([[[[0.9, 0.1, 0.5]]]], np.float32)
    y = R.Decay(0.1)(x, None, _ctx()).numpy()
    np.testing.assert_allclose(y, [[[[0.86, 0.14, 0.5]]]], rtol=1e-6)


def test_blur_matches_a_hand_computed_kernel():
    k = np.exp(-np.array([4, 1, 0, 1, 4]) / (2 * 1.0 ** 2 / 1.0))  # sigma 1 -> radius 3; check 5 centre taps
    g = R.gaussian_kernel1d(1.0)
    assert len(g) == 7 and g.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(g[1:6] / g[3], k / k[2], rtol=1e-5)
    # sigma 0.5: radius 2, taps exp(-k^2 / 0.5)
    x = np.zeros((1, 7, 7, 1), np.float32)
    x[0, 3, 3, 0] = 1.0
    taps = np.exp(-np.array([4.0, 1.0, 0.0, 1.0, 4.0]) / 0.5)
    taps /= taps.sum()
    y = R.gaussian_blur(x, 0.5).numpy()[0, :, :, 0]
    want = np.zeros((7, 7))
    want[1:6, 1:6] = np.outer(taps, taps)
    np.testing.assert_allclose(y, want, atol=1e-6)
    # reflected edges: an impulse at the corner gets its reflection's weight added back
    x2 = np.zeros((1, 5, 5, 1), np.float32)
    x2[0, 0, 0, 0] = 1.0
    y2 = R.gaussian_blur(x2, 0.5).numpy()[0, :, :, 0]
    assert y2[0, 0] == pytest.approx(taps[2] ** 2, rel=1e-5)
    assert y2[1, 0] == pytest.approx(taps[3] * taps[2], rel=1e-5)  # reflect: index -1 -> 1 only once
    assert R.Blur(0.5, every=4).every == 4


def test_percentile_matches_numpy_lower():
    import tensorflow as tf
    v = np.random.default_rng(0).normal(size=(3, 37)).astype(np.float32)
    for p in (0, 10, 50, 73, 100):
        got = R.percentile_lower(tf.constant(v), p).numpy()
        np.testing.assert_allclose(got, np.percentile(v, p, axis=1, method="lower"), rtol=1e-6)


def test_clip_norm_by_hand():
    # 2x2 pixels, centre 0.5; norms over channels: 0, 0.1*sqrt(3), 0.3, 0.5
    x = np.array([[[[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]],
                   [[0.8, 0.5, 0.5], [0.5, 1.0, 0.5]]]], np.float32)
    y = R.ClipNorm(50)(x, None, _ctx()).numpy()
    # sorted norms 0, .173, .3, .5 -> lower 50th percentile = index floor(0.5*3)=1 -> 0.173: keep >= it
    want = x.copy()
    want[0, 0, 0] = 0.5
    np.testing.assert_allclose(y, want)
    y = R.ClipNorm(70)(x, None, _ctx()).numpy()   # index floor(2.1)=2 -> 0.3
    want[0, 0, 1] = 0.5
    np.testing.assert_allclose(y, want)


def test_clip_contribution_by_hand():
    x = np.array([[[[0.9, 0.5, 0.5], [0.6, 0.6, 0.6]],
                   [[0.8, 0.5, 0.5], [0.5, 1.0, 0.5]]]], np.float32)
    g = np.array([[[[0.1, 9.0, 9.0], [1.0, 1.0, -1.0]],
                   [[-2.0, 0.0, 0.0], [5.0, 0.1, 5.0]]]], np.float32)
    # contributions sum_c |(x - .5) g|: .04, .3, .6, .05 -> 50th lower = index 1 -> .05
    y = R.ClipContribution(50)(x, g, _ctx()).numpy()
    want = x.copy()
    want[0, 0, 0] = 0.5
    np.testing.assert_allclose(y, want)


def test_clip_range_and_project():
    x = np.array([[[[-0.2, 0.5, 1.3]]]], np.float32)
    np.testing.assert_allclose(R.ClipRange()(x, None, _ctx()).numpy(), [[[[0.0, 0.5, 1.0]]]])
    c = np.full((1, 1, 1, 3), 0.5, np.float32)
    # eps in grey levels: 25.5 of 255 is 0.1 of this 0..1 range
    np.testing.assert_allclose(R.ProjectLinf(c, 25.5)(x, None, _ctx()).numpy(), [[[[0.4, 0.5, 0.6]]]], rtol=1e-6)


def test_regularizers_run_on_their_period_inside_the_loop(tiny):
    calls = []

    class Count(R.Regularizer):
        every = 3

        def __call__(self, x, grad, ctx):
            import tensorflow as tf
            tf.py_function(lambda: calls.append(1), [], [])
            return x
    optimize(tiny, class_logit(0), param="pixel", steps=7, regularizers=[Count()])
    assert len(calls) == 3  # steps 0, 3, 6


def test_regularizer_arguments_are_checked():
    with pytest.raises(R.RegularizerError):
        R.Blur(0)
    with pytest.raises(R.RegularizerError):
        R.ClipNorm(120)
    with pytest.raises(R.RegularizerError):
        R.Decay(1.5)
    with pytest.raises(R.RegularizerError):
        R.Blur(1.0, every=0)


# ---------------------------------------------------------------------- the loop
def test_same_seed_same_image_other_seed_other_image(tiny):
    kw = dict(param="fourier", steps=4, transforms=T.standard(2))
    a = optimize(tiny, class_logit(1), seed=7, **kw)
    b = optimize(tiny, class_logit(1), seed=7, **kw)
    c = optimize(tiny, class_logit(1), seed=8, **kw)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.history, b.history)
    assert not np.array_equal(a.images, c.images)


def test_keyboard_interrupt_in_a_callback_returns_the_latest_image(tiny):
    seen = {}

    def cb(step, images, losses):
        seen[step] = np.asarray(images).copy()
        if step == 3:
            raise KeyboardInterrupt

    res = optimize(tiny, class_logit(0), param="pixel", steps=50, optimizer=0.1, callbacks=[cb])
    assert res.interrupted and res.steps == 3 and len(res.history) == 4
    np.testing.assert_array_equal(res.images, seen[3])
    assert not np.array_equal(seen[0], seen[3])


def test_callbacks_get_losses_and_can_stop(tiny):
    got = []

    def cb(step, images, losses):
        got.append((step, sorted(losses), np.asarray(images).shape))
        return step == 2

    res = optimize(tiny, class_logit(0) + l2(0.1), param="pixel", steps=10, callbacks=[cb], snapshot_every=2)
    assert [g[0] for g in got] == [0, 1, 2]
    assert got[0][1] == ["l2", "logit[0]", "objective"] and got[0][2] == (1, 16, 16, 3)
    assert res.stopped and res.steps == 2 and [s for s, _ in res.snapshots] == [0, 2]


def test_nan_objective_stops_at_its_step_and_keeps_a_finite_image(tiny):
    import tensorflow as tf

    def fn(ctx):  # finite until the image's mean passes 0.725; each sign step adds 12.75 / 255 = 0.05
        m = tf.reduce_mean(ctx.raw_image, axis=[1, 2, 3])
        return m + 0.0 * tf.sqrt(0.725 - m)
    obj = Objective.custom(fn, name="mean")
    with pytest.warns(RuntimeWarning, match="at step 5"):
        res = optimize(tiny, obj, param=P.pixel(std=0.0), steps=20, optimizer=GradientStep("sign", 12.75))
    assert res.nan_step == 5 and res.steps == 5 and len(res.history) == 5
    assert np.all(np.isfinite(res.x))
    assert res.x.mean() == pytest.approx(0.75, abs=1e-4)


def test_gradient_steps_by_hand(tiny):
    import tensorflow as tf
    v = tf.Variable([[[[1.0, -2.0, 3.0]]]])
    GradientStep("l1", 0.5).apply([(tf.constant([[[[2.0, -4.0, 0.0]]]]), v)])  # mean |g| = 2
    np.testing.assert_allclose(v.numpy(), [[[[1.5, -3.0, 3.0]]]], rtol=1e-6)
    GradientStep("sign", [0.1, 0.2, 0.3]).apply([(tf.constant([[[[2.0, -4.0, 0.0]]]]), v)])
    np.testing.assert_allclose(v.numpy(), [[[[1.6, -3.2, 3.0]]]], rtol=1e-6)


def test_bad_input_is_named(tiny):
    with pytest.raises(UnknownClassError, match="purple"):
        optimize(tiny, class_logit("purple"), steps=1)
    with pytest.raises(UnknownLayerError, match="conv1"):
        optimize(tiny, channel("conv", 0), steps=1)
    with pytest.raises(LayerKindError, match="no spatial output"):
        optimize(tiny, unit("hidden", 0, 1, 1), steps=1)
    with pytest.raises(tfviz.utils.ChannelError, match="0..3"):  # the one channel error
        optimize(tiny, channel("conv1", 4), steps=1)
    with pytest.raises(tfviz.utils.ChannelError, match="out of range"):  # a position too
        optimize(tiny, unit("conv1", 0, 20, 0), steps=1)
    for steps in (0, -3):
        with pytest.raises(SynthesisError, match="steps"):
            optimize(tiny, class_logit(0), steps=steps)
    with pytest.raises(SynthesisError, match="positive"):
        optimize(tiny, class_logit(0), steps=1, optimizer=-0.1)
    with pytest.raises(SynthesisError, match="step size"):
        GradientStep("l1", 0.0)
    with pytest.raises(SynthesisError, match="regularizers act on pixels"):
        optimize(tiny, class_logit(0), param="fourier", regularizers=[R.ClipRange()], steps=1)
    with pytest.raises(ObjectiveError, match="batch"):
        optimize(tiny, class_logit([0, 1]), param=P.pixel(batch=3), steps=1)


def test_deepdream_weighs_layers_by_their_mean_not_their_size(tiny):
    """conv1 (16x16x4 = 1024 units) is larger than conv2 (8x8x6 = 384): DeepDream's
    objective is the weighted sum of half mean squares, not of half sums of squares."""
    from tfviz.synthesis.deepdream import dream_objective
    img = noise_image(2)
    a1, a2 = (f.numpy() for f in tiny.features(["conv1", "conv2"])(tiny.preprocess(img[None])))
    res = optimize(tiny, dream_objective({"conv1": 1.0, "conv2": 3.0}), param=P.pixel(init=img), steps=1,
                   optimizer=1e-9)
    got = {k: v[0] for k, v in res.losses.items()}
    assert got["mean_l2[conv1]"] == pytest.approx(0.5 * (a1 ** 2).mean(), rel=1e-4)
    assert got["mean_l2[conv2]"] == pytest.approx(0.5 * (a2 ** 2).mean(), rel=1e-4)
    assert res.history[0] == pytest.approx(0.5 * (a1 ** 2).mean() + 1.5 * (a2 ** 2).mean(), rel=1e-4)
