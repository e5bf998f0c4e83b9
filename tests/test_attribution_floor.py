"""In-graph SmoothGrad and Integrated Gradients (Gauss-Legendre, steps="auto") against
answers computed by hand on tiny models whose score is a polynomial of the input."""
import numpy as np
import pytest

from test_attribution import H, W, bundle_of, linear_model, random_images, small_cnn
from tfviz import attribution as A
from tfviz.attribution.gradients import auto_levels, smoothgrad_noise


def _keras():
    import keras
    return keras


def power_model(power=4, seed=0, classes=2):
    """score_k = (a_k . x)^power: along the straight path u = a . p is linear in alpha, so
    d score / d alpha is a polynomial of degree power - 1."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 3))
    d = keras.layers.Dense(classes, use_bias=False, name="a")
    out = keras.layers.Lambda(lambda t: keras.ops.power(t, power), name="pow")(d(keras.layers.Flatten()(inp)))
    m = keras.Model(inp, out, name=f"pow{power}")
    d.set_weights([rng.normal(size=(H * W * 3, classes)).astype("float32") / (H * W)])
    return m


def squares_model(seed=0, classes=2):
    """score_k = sum_i a_ik x_i^2: d score / d x_i = 2 a_ik x_i."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    inp = keras.Input((H, W, 3))
    sq = keras.layers.Lambda(lambda t: keras.ops.square(t), name="sq")(keras.layers.Flatten()(inp))
    d = keras.layers.Dense(classes, use_bias=False, name="a")
    m = keras.Model(inp, d(sq), name="squares")
    d.set_weights([rng.normal(size=(H * W * 3, classes)).astype("float32")])
    return m


def _path(b, m, imgs, c):
    """x, baseline (black), a, u0 = a . x', u1 = a . x for class c, in float64."""
    x = b.preprocess(imgs).astype(np.float64)
    base = np.zeros_like(x)                       # black is 0 for a 0-1 model
    a = m.get_layer("a").get_weights()[0][:, c].astype(np.float64).reshape(H, W, 3)
    return x, base, a, (base * a).sum(axis=(1, 2, 3)), (x * a).sum(axis=(1, 2, 3))


# --------------------------------------------------------------------------- Gauss-Legendre
def test_gauss_legendre_is_exact_for_polynomial_paths_and_trapezoid_is_not():
    m = power_model(4)
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=1)
    x, base, a, u0, u1 = _path(b, m, imgs, 1)
    # exact IG: (x - x') a (u1^4 - u0^4) / (u1 - u0)
    exact = ((x - base) * a * ((u1 ** 4 - u0 ** 4) / (u1 - u0))[:, None, None, None]).sum(-1)
    gap = u1 ** 4 - u0 ** 4
    gl, d = A.integrated_gradients(b, imgs, 1, steps=2, rule="gausslegendre", return_delta=True)  # degree 3 <= 2*2-1
    np.testing.assert_allclose(gl, exact, rtol=1e-4, atol=1e-6 * np.abs(exact).max())
    assert np.all(np.abs(d) < 1e-4 * np.abs(gap))
    np.testing.assert_array_equal(A.integrated_gradients(b, imgs, 1, steps=2, rule="gauss"), gl)
    # trapezoid, 2 intervals: T - I = h^2/12 (p'(1) - p'(0)) with p = 4 u^3 (u1 - u0), h = 1/2
    tr, dt = A.integrated_gradients(b, imgs, 1, steps=2, return_delta=True)
    du = u1 - u0
    np.testing.assert_allclose(dt, (0.25 / 12) * 12 * du ** 2 * (u1 ** 2 - u0 ** 2), rtol=2e-3)
    assert np.all(np.abs(dt) > 100 * np.abs(d))
    # one Gauss-Legendre point is only exact to degree 1: not here
    _, d1 = A.integrated_gradients(b, imgs, 1, steps=1, rule="gausslegendre", return_delta=True)
    assert np.all(np.abs(d1) > 1e-3 * np.abs(gap))


def test_fixed_steps_match_the_rules_written_out():
    m = power_model(3, seed=2)
    b = bundle_of(m)
    imgs = random_images(1, H, W, seed=4)
    x, base, a, u0, u1 = _path(b, m, imgs, 0)
    for rule, steps in [("trapezoid", 3), ("midpoint", 4), ("gausslegendre", 3)]:
        if rule == "trapezoid":
            al = np.linspace(0, 1, steps + 1)
            wt = np.full(steps + 1, 1 / steps)
            wt[[0, -1]] /= 2
        elif rule == "midpoint":
            al, wt = (np.arange(steps) + 0.5) / steps, np.full(steps, 1 / steps)
        else:
            t, wt = np.polynomial.legendre.leggauss(steps)
            al, wt = (t + 1) / 2, wt / 2
        u = u0[0] + al * (u1[0] - u0[0])
        expected = ((x[0] - base[0]) * a * (wt * 3 * u ** 2).sum()).sum(-1)
        got = A.integrated_gradients(b, imgs, 0, steps=steps, rule=rule)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


# --------------------------------------------------------------------------- steps="auto"
def test_auto_adds_steps_until_the_tolerance_and_stops():
    m = power_model(4, seed=3)
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=5)
    _, _, _, u0, u1 = _path(b, m, imgs, 0)
    gap, du = u1 ** 4 - u0 ** 4, u1 - u0
    tol = 1e-3
    # trapezoid error with n intervals, exact for this cubic integrand: (1/n)^2 / 12 * 12 du^2 (u1^2 - u0^2)
    rel = lambda n: np.abs(du ** 2 * (u1 ** 2 - u0 ** 2) / n ** 2 / gap)  # noqa: E731
    levels = auto_levels("trapezoid")
    assert levels[:4] == [4, 8, 16, 32]
    want = [next(n for n in levels if rel(n)[i] <= tol) for i in range(2)]
    attr, delta, used = A.integrated_gradients(b, imgs, 0, steps="auto", tol=tol, return_delta=True,
                                               return_steps=True)
    np.testing.assert_array_equal(used, want)
    assert np.all(np.abs(delta) <= tol * np.abs(gap))
    assert np.all([rel(n // 2)[i] > tol for i, n in enumerate(used)])       # the level before was not enough
    # the doubling reuses every earlier point: the same answer as the fixed rule at that step count
    for i in range(2):
        np.testing.assert_allclose(attr[i], A.integrated_gradients(b, imgs[i:i + 1], 0, steps=int(used[i]))[0],
                                   rtol=1e-4, atol=1e-6 * np.abs(attr[i]).max())
    # a cap: stops there, error above the tolerance
    _, d2, used2 = A.integrated_gradients(b, imgs, 0, steps="auto", tol=1e-6, max_steps=8, return_delta=True,
                                          return_steps=True)
    np.testing.assert_array_equal(used2, [8, 8])
    assert np.all(np.abs(d2) > 1e-6 * np.abs(gap))
    # Gauss-Legendre is exact from its first level; midpoint triples (3, 9, 27, ...) reusing its points
    _, dg, ug = A.integrated_gradients(b, imgs, 0, steps="auto", rule="gausslegendre", tol=tol, return_delta=True,
                                       return_steps=True)
    np.testing.assert_array_equal(ug, [4, 4])
    assert np.all(np.abs(dg) <= 1e-4 * np.abs(gap))
    am, dm, um = A.integrated_gradients(b, imgs, 0, steps="auto", rule="midpoint", tol=tol, return_delta=True,
                                        return_steps=True)
    assert set(um.tolist()) <= {3, 9, 27, 81, 243} and np.all(np.abs(dm) <= tol * np.abs(gap))
    np.testing.assert_allclose(am[:1], A.integrated_gradients(b, imgs[:1], 0, steps=int(um[0]), rule="midpoint"),
                               rtol=1e-4, atol=1e-6 * np.abs(am).max())


def test_bad_steps_rule_tol_name_the_valid_values():
    b = bundle_of(power_model(2))
    imgs = random_images(1, H, W)
    for steps in (0, -3, 2.5, "sometimes", True):
        with pytest.raises(A.AttributionError, match="positive integer or 'auto'"):
            A.integrated_gradients(b, imgs, 0, steps=steps)
    with pytest.raises(A.AttributionError, match="trapezoid, midpoint, gausslegendre"):
        A.integrated_gradients(b, imgs, 0, steps=4, rule="simpson")
    for tol in (0, -0.1, float("nan"), "small"):
        with pytest.raises(A.AttributionError, match="tol must be a positive number"):
            A.integrated_gradients(b, imgs, 0, steps="auto", tol=tol)
    with pytest.raises(A.AttributionError, match="max_steps must be a positive integer"):
        A.integrated_gradients(b, imgs, 0, steps="auto", max_steps=0)


# --------------------------------------------------------------------------- SmoothGrad in-graph
def test_smoothgrad_of_linear_model_is_the_weights_and_vargrad_is_zero():
    m = linear_model()
    b = bundle_of(m)
    imgs = random_images(3, H, W, seed=6)
    sal = np.abs(m.get_layer("dense").get_weights()[0][:, 2].reshape(H, W, 3)).max(-1)
    kw = dict(samples=7, noise=0.3, seed=5)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 2, **kw), np.broadcast_to(sal, (3, H, W)), rtol=1e-5)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 2, variant="smoothgrad_sq", **kw),
                               np.broadcast_to(sal ** 2, (3, H, W)), rtol=1e-5)
    assert np.abs(A.smoothgrad(b, imgs, 2, variant="vargrad", **kw)).max() <= 1e-10 * sal.max() ** 2


def test_smoothgrad_of_squares_is_the_mean_over_the_drawn_noise():
    m = squares_model(seed=1)
    b = bundle_of(m)
    imgs = random_images(2, H, W, seed=7)
    samples, noise, seed = 9, 0.2, 3
    eps = smoothgrad_noise(b, samples, noise, seed, (H, W, 3)).numpy()
    assert eps.shape == (samples, H, W, 3)
    np.testing.assert_allclose(eps.std(), noise, rtol=0.1)               # sigma = noise x the input range (0-1)
    a = m.get_layer("a").get_weights()[0][:, 1].reshape(H, W, 3)
    x = b.preprocess(imgs)
    per = np.abs(2 * a * (x[:, None] + eps[None])).max(-1)               # [images, samples, H, W]
    kw = dict(samples=samples, noise=noise, seed=seed)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, **kw), per.mean(1), rtol=1e-5)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, variant="smoothgrad_sq", **kw), (per ** 2).mean(1),
                               rtol=1e-4)
    np.testing.assert_allclose(A.smoothgrad(b, imgs, 1, variant="vargrad", **kw), per.var(1), rtol=1e-3,
                               atol=1e-6 * per.var(1).max())


def test_smoothgrad_noise_is_seeded_and_keyed_per_draw():
    b = bundle_of(linear_model())
    e5 = smoothgrad_noise(b, 5, 0.1, 4, (H, W, 3)).numpy()
    e8 = smoothgrad_noise(b, 8, 0.1, 4, (H, W, 3)).numpy()
    np.testing.assert_array_equal(e5, e8[:5])                            # draw j depends on (seed, j) only
    np.testing.assert_array_equal(e8, smoothgrad_noise(b, 8, 0.1, 4, (H, W, 3)).numpy())
    assert not np.allclose(e8, smoothgrad_noise(b, 8, 0.1, 5, (H, W, 3)).numpy())
    assert not np.allclose(smoothgrad_noise(b, 2, 0.1, None, (H, W, 3)).numpy(),
                           smoothgrad_noise(b, 2, 0.1, None, (H, W, 3)).numpy())


@pytest.mark.parametrize("preprocess, width", [("-1-1", 2.0), ("caffe", 255.0)])
def test_smoothgrad_noise_is_a_fraction_of_the_input_range(preprocess, width):
    """sigma = noise x (hi - lo) of the model input: 2 for -1..1 models, 255 for caffe's."""
    b = bundle_of(linear_model(), preprocess=preprocess)
    eps = smoothgrad_noise(b, 40, 0.1, 0, (H, W, 3)).numpy()
    np.testing.assert_allclose(eps.reshape(-1, 3).std(0), 0.1 * width, rtol=0.05)


def test_smoothgrad_is_deterministic_and_independent_of_batching():
    b = bundle_of(small_cnn())
    imgs = random_images(3, seed=8)
    targets = [1, "conv1:2", 0]                                          # two heads in one call
    for variant in ("smoothgrad", "vargrad"):
        kw = dict(samples=5, seed=2, variant=variant)
        all3 = A.smoothgrad(b, imgs, targets, **kw)
        np.testing.assert_array_equal(all3, A.smoothgrad(b, imgs, targets, **kw))
        scale = np.abs(all3).max()
        for bs in (1, 3, 64):
            np.testing.assert_allclose(A.smoothgrad(b, imgs, targets, batch_size=bs, **kw), all3,
                                       atol=1e-5 * scale)
        for i in range(3):
            np.testing.assert_allclose(A.smoothgrad(b, imgs[i:i + 1], targets[i], **kw)[0], all3[i],
                                       atol=1e-5 * scale)


def test_integrated_gradients_independent_of_batching():
    b = bundle_of(small_cnn(softmax=False))
    imgs = random_images(3, seed=9)
    targets = [1, "conv2:3", 0]
    for rule in ("trapezoid", "gausslegendre"):
        ref = A.integrated_gradients(b, imgs, targets, steps=6, rule=rule)
        scale = np.abs(ref).max()
        for bs in (1, 4, 100):
            np.testing.assert_allclose(A.integrated_gradients(b, imgs, targets, steps=6, rule=rule, batch_size=bs),
                                       ref, atol=1e-5 * scale)
        for i in range(3):
            one = A.integrated_gradients(b, imgs[i:i + 1], targets[i], steps=6, rule=rule)
            np.testing.assert_allclose(one[0], ref[i], atol=1e-5 * scale)
