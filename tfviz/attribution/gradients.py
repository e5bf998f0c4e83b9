"""Gradient attributions: saliency (Simonyan 2014), input x gradient (Shrikumar 2016),
SmoothGrad (Smilkov 2017) with its squared and variance variants (Hooker 2019, Adebayo
2018), Integrated Gradients (Sundararajan 2017) and GradientSHAP (Lundberg & Lee 2017).
All gradients are of the target's *score* (a logit -- a final softmax is bypassed -- or
a unit's value) with respect to the model's input."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..defaults import IG_RULES, SMOOTHGRAD_VARIANTS
from .core import (DEFAULT_BATCH, check_finite, check_reduce, even_batches, gradient_batch, gradients, image_chunks,
                   image_groups, path_step_function, reduce_channels, selection, smoothgrad_step_function, substitute,
                   target_scores)
from .errors import AttributionError
from .registry import attribution_method, method_on_inputs


# --------------------------------------------------------------------------- saliency
@attribution_method
def saliency(bundle, x, targets, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Saliency map ``[N, H, W]`` (float32): the maximum over color channels of
    ``|d score / d pixel|`` (Simonyan et al. 2014), where the score is the target's logit
    (or unit value) and pixels are the model's input.

    ``images``: uint8 RGB ``[N, H, W, 3]`` or anything :mod:`tfviz.images` loads (resized
    to the model's input size). ``target``: see :mod:`tfviz.attribution.targets`
    (``None``: each image's top-1 class)."""
    _, g = gradients(bundle, x, targets, batch_size=batch_size)
    return np.abs(g).max(axis=-1)


# --------------------------------------------------------------------------- input x gradient
@attribution_method
def input_x_gradient(bundle, x, targets, *, reduce: str | None = "sum",
                     batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Input x gradient ``[N, H, W]`` (signed; Shrikumar et al. 2016, tf-explain's
    GradientsInputs, captum's InputXGradient): the model input times ``d score / d
    input``, summed over colour channels (``reduce=None``: ``[N, H, W, 3]``, RGB order).
    "Input" is what the model sees after preprocessing, so its zero -- black for 0-1
    models, mid-gray for -1..1 ones, the mean colour for caffe -- is the implicit
    reference; on a linear model the map is ``w * x`` exactly."""
    _, g = gradients(bundle, x, targets, batch_size=batch_size)
    return reduce_channels(bundle, x * g, reduce)


# --------------------------------------------------------------------------- smoothgrad
VARIANTS = SMOOTHGRAD_VARIANTS


def _check_draws(samples, noise):
    """``samples`` and ``noise`` of the methods that average over random draws."""
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise AttributionError(f"samples must be a positive integer, got {samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise AttributionError(f"noise must be >= 0 (a fraction of the input range), got {noise!r}")


_NOISE_CACHE_BYTES = 1 << 28


def _draw_function(bundle):
    """``f(seed, samples, sigma [C], shape [3]) -> [samples, H, W, C]``: draw ``j`` is
    ``stateless_normal`` keyed by ``(seed, j)``, so the first draws do not depend on how
    many there are. One trace for every count and shape."""
    def build():
        @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.int64),
                                                       tf.TensorSpec([None], tf.float32),
                                                       tf.TensorSpec([3], tf.int32)])
        def tfviz_noise(seed, samples, sigma, shape):
            one = lambda j: tf.random.stateless_normal(shape, seed=tf.stack([seed, j]), dtype=tf.float32)  # noqa: E731
            return tf.map_fn(one, tf.range(samples, dtype=tf.int64), fn_output_signature=tf.float32) * sigma
        return tfviz_noise
    return bundle.programs.get("attribution.noise_draw", build=build)


def smoothgrad_noise(bundle, samples: int, noise: float, seed, shape):
    """SmoothGrad's noise ``[samples, H, W, C]`` (a TensorFlow tensor, model channel
    order): standard normal draws (``tf.random.stateless_normal``, draw ``j`` keyed by
    ``(seed, j)``) times ``noise`` x the input range. The same draws serve every image. The
    last draws are kept on the bundle, so calls with the same seed and shape draw once;
    ``seed=None`` draws afresh each time."""
    h, w, c = (int(v) for v in shape)
    lo, hi = bundle.input_range
    sigma = np.broadcast_to((float(noise) * (np.asarray(hi, np.float64) - np.asarray(lo, np.float64))), (c,))
    sigma = sigma.astype(np.float32)
    fresh = seed is None
    seed = int(np.random.default_rng().integers(2 ** 62)) if fresh else int(seed)
    key = (int(samples), h, w, c, seed, tuple(sigma.tolist()))
    last = bundle.programs.get("attribution.noise", build=dict)  # the last draws: {"key": ..., "eps": ...}
    if last.get("key") == key:
        return last["eps"]
    eps = _draw_function(bundle)(np.int64(seed), np.int64(samples), sigma, np.asarray((h, w, c), np.int32))
    if not fresh and 4 * samples * h * w * c <= _NOISE_CACHE_BYTES:
        last.update(key=key, eps=eps)
    return eps


def _is_saliency(on, options) -> bool:
    return on is saliency.on_inputs and set(options) <= {"batch_size"}


def _smoothgrad_saliency(bundle, x, targets, eps, variant, batch_size=None):
    """SmoothGrad (and variants) of saliency in-graph: every noisy copy is built inside the
    gradient program and its map joins running per-image statistics there; batches of
    copies sized for the machine (:func:`~tfviz.attribution.core.gradient_batch`)."""
    n, h, w, c = x.shape
    samples = int(eps.shape[0])
    bs = gradient_batch(bundle, h, w, batch_size)
    sel = selection(targets)
    out = np.zeros((n, h, w), np.float32)
    for layer, ids in image_groups(n, h, w, c, targets):
        f = smoothgrad_step_function(bundle, layer, (h, w, c))
        k = len(ids)
        xt = tf.constant(x[ids])
        count, mean, m2 = tf.zeros([k]), tf.zeros([k, h, w]), tf.zeros([k, h, w])
        gsel = sel[ids]
        for sl in even_batches(k * samples, bs):
            it = np.arange(sl.start, sl.stop)
            img, j = (it // samples).astype(np.int32), (it % samples).astype(np.int32)
            count, mean, m2 = f(count, mean, m2, xt, eps, img, j, gsel[img])
        mean, var = mean.numpy(), m2.numpy() / samples  # the population variance, as captum's VarGrad
        check_finite(mean, "gradients", [targets[i] for i in ids])
        check_finite(var, "gradients", [targets[i] for i in ids])
        if variant == "smoothgrad":
            out[ids] = mean
        elif variant == "smoothgrad_sq":
            out[ids] = var + np.square(mean)
        else:
            out[ids] = var
    return out


@attribution_method
def smoothgrad(bundle, x, targets, *, method=saliency, samples: int = 25, noise: float = 0.15, seed: int = 0,
               variant: str = "smoothgrad", **method_options) -> np.ndarray:
    """SmoothGrad: the average of ``method``'s maps over ``samples`` noisy copies of each
    image, with Gaussian noise of standard deviation ``noise`` x (the input range).
    ``variant="smoothgrad_sq"``: the mean of the squared maps (SmoothGrad squared, Hooker
    et al. 2019); ``"vargrad"``: their variance (Adebayo et al. 2018) -- the same noisy
    samples, reduced differently.

    ``method``: a tfviz.attribution function or name (default :func:`saliency`); its own
    options pass through (``batch_size=``, ``steps=``, ...). The output has ``method``'s
    shape. ``seed`` fixes the noise (``tf.random.stateless_normal``; the same draws for
    every image, so results do not depend on how images are batched; ``None``: fresh
    draws). Saliency (the default) runs in-graph: noisy copies built and their maps summed
    inside the gradient program, copies batched for the machine (``batch_size=`` to
    choose)."""
    if variant not in VARIANTS:
        raise AttributionError(f"unknown SmoothGrad variant {variant!r}; one of {', '.join(VARIANTS)}")
    _check_draws(samples, noise)
    on = method_on_inputs(method if method is not None else saliency)
    if on is smoothgrad.on_inputs:
        raise AttributionError("smoothgrad of smoothgrad is not supported")
    n, h, w, c = x.shape
    # The same noise draws for every image: a batch gives the same maps as one image at a time.
    eps = smoothgrad_noise(bundle, int(samples), noise, seed, (h, w, c))
    if _is_saliency(on, method_options):
        return _smoothgrad_saliency(bundle, x, targets, eps, variant, method_options.get("batch_size"))
    eps = eps.numpy()
    out = None
    for ch in image_chunks(n, samples):
        k = ch.stop - ch.start
        noisy = (x[ch, None] + eps[None]).reshape((k * samples, h, w, c))
        tg = [t for t in targets[ch] for _ in range(samples)]
        maps = on(bundle, noisy, tg, **method_options)
        maps = maps.reshape((k, samples) + maps.shape[1:])
        if variant == "smoothgrad":
            maps = maps.mean(axis=1)
        elif variant == "smoothgrad_sq":
            maps = np.square(maps).mean(axis=1)
        else:  # the population variance of the samples, as captum's VarGrad
            maps = maps.var(axis=1)
        if out is None:
            out = np.zeros((n,) + maps.shape[1:], np.float32)
        out[ch] = maps
    return out


# --------------------------------------------------------------------------- integrated gradients
RULES = IG_RULES
_RULE_NAMES = {"trapezoid": "trapezoid", "riemann_trapezoid": "trapezoid", "midpoint": "midpoint",
               "riemann_middle": "midpoint", "gausslegendre": "gausslegendre", "gauss_legendre": "gausslegendre",
               "gauss": "gausslegendre"}
AUTO_MAX_STEPS = 256


def _rule(rule) -> str:
    key = rule.strip().lower().replace("-", "_") if isinstance(rule, str) else None
    if key not in _RULE_NAMES:
        raise AttributionError(f"unknown integration rule {rule!r}; one of trapezoid, midpoint, gausslegendre "
                               f"(alias gauss)")
    return _RULE_NAMES[key]


def _weights(steps: int, rule: str):
    """Points ``alpha`` in [0, 1] and weights (summing to 1) of ``rule`` with ``steps``
    intervals (trapezoid: ``steps + 1`` points) or points (midpoint, Gauss-Legendre, which
    is exact for polynomials of degree ``2 steps - 1`` along the path)."""
    rule = _rule(rule)
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float64)
        w = np.full(steps + 1, 1.0 / steps)
        w[0] = w[-1] = 0.5 / steps
    elif rule == "midpoint":
        alphas = (np.arange(steps, dtype=np.float64) + 0.5) / steps
        w = np.full(steps, 1.0 / steps)
    else:
        t, w = np.polynomial.legendre.leggauss(steps)
        alphas, w = (t + 1.0) / 2.0, w / 2.0
    return alphas.astype(np.float32), w.astype(np.float32)


def _check_steps(steps, tol, max_steps) -> bool:
    """True for ``steps="auto"``; errors name the valid values."""
    if isinstance(steps, str) and steps.strip().lower() == "auto":
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)) \
                or not np.isfinite(tol) or tol <= 0:
            raise AttributionError(f"tol must be a positive number (the completeness error allowed, relative to "
                                   f"|f(x) - f(baseline)|; e.g. 0.01), got {tol!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise AttributionError(f"max_steps must be a positive integer, got {max_steps!r}")
        return True
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise AttributionError(f"steps must be a positive integer or 'auto', got {steps!r}")
    return False


def auto_levels(rule: str, max_steps: int = AUTO_MAX_STEPS):
    """The step counts ``steps="auto"`` tries in turn: trapezoid 4, 8, 16, ... (each level
    reuses every point of the last and adds the midpoints of its intervals), midpoint 3,
    9, 27, ... (the midpoints of thirds include the old ones), Gauss-Legendre 4, 8, 16, ...
    (new points each time), up to ``max_steps``."""
    rule = _rule(rule)
    first, grow = (3, 3) if rule == "midpoint" else (4, 2)
    levels, s = [], min(first, int(max_steps))
    while s <= max_steps:
        levels.append(s)
        s *= grow
    return levels


def auto_cost(rule: str, steps: int, max_steps: int = AUTO_MAX_STEPS) -> int:
    """Gradients ``steps="auto"`` evaluated per image when it stopped at ``steps``."""
    rule = _rule(rule)
    if rule == "trapezoid":
        return int(steps) + 1
    if rule == "midpoint":
        return int(steps)
    return int(sum(s for s in auto_levels(rule, max_steps) if s <= steps))


def _path_sums(bundle, x, base, targets, alphas, weights, batch_size=None):
    """``sum_j weights[j] * d score / d x`` at the points ``base + alphas[j] (x - base)``
    ``[N, H, W, C]`` and the scores there ``[N, S]``: the points built, and the sum taken,
    inside the gradient program (:func:`~tfviz.attribution.core.path_step_function`), in
    batches of points sized for the machine."""
    n, h, w, c = x.shape
    s = len(alphas)
    bs = gradient_batch(bundle, h, w, batch_size)
    sel = selection(targets)
    a, wt = tf.constant(alphas, tf.float32), tf.constant(weights, tf.float32)
    acc_out = np.zeros_like(x)
    scores = np.zeros((n, s), np.float32)
    for layer, ids in image_groups(n, h, w, c, targets):
        f = path_step_function(bundle, layer, (h, w, c))
        k = len(ids)
        xt, bt = tf.constant(x[ids]), tf.constant(base[ids])
        acc, sc = tf.zeros([k, h, w, c]), []
        gsel = sel[ids]
        for sl in even_batches(k * s, bs):
            it = np.arange(sl.start, sl.stop)
            img, j = (it // s).astype(np.int32), (it % s).astype(np.int32)
            acc, sb = f(acc, xt, bt, a, wt, img, j, gsel[img])
            sc.append(sb)
        sub = [targets[i] for i in ids]
        acc_out[ids] = check_finite(acc.numpy(), "gradients", sub)
        scores[ids] = check_finite(tf.concat(sc, 0).numpy(), "scores", sub).reshape(k, s)
    return acc_out, scores


def _ig_fixed(bundle, x, base, targets, steps, rule, need_delta, batch_size):
    alphas, weights = _weights(int(steps), rule)
    avg, scores = _path_sums(bundle, x, base, targets, alphas, weights, batch_size)
    attr = (x - base) * avg
    if not need_delta:
        return attr, None
    if rule == "trapezoid":
        fx, fb = scores[:, -1], scores[:, 0]
    else:
        fx, fb = target_scores(bundle, x, targets), target_scores(bundle, base, targets)
    return attr, attr.sum(axis=(1, 2, 3)) - (fx - fb)


def _ig_auto(bundle, x, base, targets, rule, tol, max_steps, batch_size):
    """Integrated gradients with steps added until ``|sum(attr) - (f(x) - f(x'))| <= tol
    |f(x) - f(x')|`` for each image (or ``max_steps``): see :func:`auto_levels`."""
    n = len(x)
    levels = auto_levels(rule, max_steps)
    raw = np.zeros_like(x)          # trapezoid / midpoint: the running sum over every point so far
    attr = np.zeros_like(x)
    delta = np.zeros(n, np.float32)
    used = np.zeros(n, np.int64)
    fx = fb = None
    if rule != "trapezoid":
        fx, fb = target_scores(bundle, x, targets), target_scores(bundle, base, targets)
    active = np.arange(n)
    for li, s in enumerate(levels):
        tg = [targets[i] for i in active]
        xa, ba = x[active], base[active]
        if rule == "gausslegendre":
            alphas, weights = _weights(s, rule)
            avg, _ = _path_sums(bundle, xa, ba, tg, alphas, weights, batch_size)
        elif rule == "trapezoid":
            if li == 0:
                alphas, weights = _weights(s, rule)
                weights = weights * s                      # 1/2 at the ends, 1 inside
            else:                                          # the midpoints of the last level's intervals
                alphas = ((2 * np.arange(s // 2) + 1) / s).astype(np.float32)
                weights = np.ones(len(alphas), np.float32)
            part, scores = _path_sums(bundle, xa, ba, tg, alphas, weights, batch_size)
            if li == 0:
                fx, fb = np.zeros(n, np.float32), np.zeros(n, np.float32)
                fx[active], fb[active] = scores[:, -1], scores[:, 0]
            raw[active] += part
            avg = raw[active] / s
        else:                                              # midpoint: thirds of each interval
            if li == 0:
                alphas = ((np.arange(s) + 0.5) / s).astype(np.float32)
            else:
                i = np.arange(s)
                i = i[i % 3 != 1]                          # (3k + 1 + 1/2) / s are the old points
                alphas = ((i + 0.5) / s).astype(np.float32)
            part, _ = _path_sums(bundle, xa, ba, tg, alphas, np.ones(len(alphas), np.float32), batch_size)
            raw[active] += part
            avg = raw[active] / s
        attr[active] = (xa - ba) * avg
        gap = fx[active] - fb[active]
        delta[active] = attr[active].sum(axis=(1, 2, 3)) - gap
        used[active] = s
        bound = tol * np.abs(gap) + 1e-6 * (np.abs(fx[active]) + np.abs(fb[active]))
        active = active[np.abs(delta[active]) > bound]
        if not len(active):
            break
    return attr, delta, used


@attribution_method
def integrated_gradients(bundle, x, targets, *, baseline="black", steps: int | str = 50,
                         rule: str = "trapezoid", reduce: str | None = "sum", return_delta: bool = False,
                         batch_size: int | None = None, tol: float = 0.01, max_steps: int = AUTO_MAX_STEPS,
                         return_steps: bool = False):
    """Integrated Gradients: ``(x - x') * integral of d score / d x along the straight
    path from the baseline ``x'`` to ``x``, approximated with ``steps`` intervals of the
    trapezoid rule, or ``steps`` points of ``rule="midpoint"`` or ``"gausslegendre"``
    (alias ``"gauss"``; captum's default, exact for polynomials of degree ``2 steps - 1``
    along the path, so it usually needs far fewer steps).

    ``steps="auto"``: add steps until the completeness error is at most ``tol`` x
    ``|f(x) - f(x')|`` for each image, or ``max_steps`` is reached (:func:`auto_levels`;
    the trapezoid and midpoint rules reuse every gradient already taken).

    ``baseline``: ``"black"`` (default), ``"blur"``, ``"gray"``, ``"white"``, ``"zero"``,
    ``"mean"``, or images / an array (anything :mod:`tfviz.images` loads). Returns signed
    attributions ``[N, H, W]`` summed over color channels (``reduce=None``: ``[N, H, W, 3]``);
    they sum to ``f(x) - f(x')`` (completeness). ``return_delta=True`` also returns that
    sum minus ``f(x) - f(x')`` per image: the approximation error; ``return_steps=True``
    also (after it) the steps used per image. Path points are built and their gradients
    summed in-graph, in batches sized for the machine (``batch_size=`` to choose)."""
    rule = _rule(rule)
    auto = _check_steps(steps, tol, max_steps)
    check_reduce(reduce)
    base = substitute(bundle, x, baseline, what="baseline")
    if auto:
        attr, delta, used = _ig_auto(bundle, x, base, targets, rule, float(tol), int(max_steps), batch_size)
    else:
        attr, delta = _ig_fixed(bundle, x, base, targets, int(steps), rule, return_delta, batch_size)
        used = np.full(len(x), int(steps), np.int64)
    out = reduce_channels(bundle, attr, reduce)
    extra = ((delta,) if return_delta else ()) + ((used,) if return_steps else ())
    return (out,) + extra if extra else out


# --------------------------------------------------------------------------- GradientSHAP
def _baseline_set(bundle, x, baselines, samples, rng):
    """``[N, M, H, W, 3]`` baselines in model-input space: a distribution name
    (``"uniform"``: ``samples`` images of uniform random pixels, the same for every
    image), fills (see :func:`~tfviz.attribution.core.substitute`; a list of them gives
    several), or images (anything :mod:`tfviz.images` loads; each one a baseline)."""
    n, h, w, c = x.shape
    if isinstance(baselines, str) and baselines.strip().lower() == "uniform":
        u8 = rng.integers(0, 256, (samples, h, w, 3)).astype(np.uint8)
        b = np.asarray(bundle.preprocess(u8), np.float32)
        return np.broadcast_to(b[None], (n,) + b.shape)
    if isinstance(baselines, tuple) and len(baselines) == 3 and all(
            isinstance(v, (int, float, np.integer, np.floating)) for v in baselines):  # an RGB triple
        return substitute(bundle, x, baselines, what="baseline")[:, None]
    if isinstance(baselines, str) and "," in baselines:
        baselines = [v.strip() for v in baselines.split(",") if v.strip()]
    if isinstance(baselines, (list, tuple)) and baselines and all(
            isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in baselines):
        if any(isinstance(v, str) and v.strip().lower() == "uniform" for v in baselines):
            raise AttributionError("baselines: 'uniform' is a distribution of its own; give it alone")
        return np.stack([substitute(bundle, x, v, what="baseline") for v in baselines], axis=1)
    if isinstance(baselines, (str, int, float)) and not isinstance(baselines, bool):
        return substitute(bundle, x, baselines, what="baseline")[:, None]
    imgs = bundle.load_images(baselines, size=(h, w))
    b = np.asarray(bundle.preprocess(imgs), np.float32)
    return np.broadcast_to(b[None], (n,) + b.shape)


@attribution_method
def gradient_shap(bundle, x, targets, *, baselines="uniform", samples: int = 25, noise: float = 0.0,
                  seed: int = 0, reduce: str | None = "sum", batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """GradientSHAP ``[N, H, W]`` (signed; Lundberg & Lee 2017, as captum's
    GradientShap): the mean over ``samples`` draws of ``d score / d x`` at a random point
    ``b + alpha (x + eps - b)`` of the path from a baseline ``b`` to the (noisy) input,
    times ``x + eps - b``: expected gradients, which approximate SHAP values and sum, on
    average, to ``f(x) - E[f(b)]``.

    ``baselines``: ``"uniform"`` (random-pixel images, one per sample; default), a fill
    or a list of fills (``"black"``, ``"white"``, ``"blur"``, ``"black,white"``, ...), or
    images (each a baseline; a data set's images give Erion et al.'s expected
    gradients). Baselines are used in turn, each equally often. ``noise``: Gaussian
    noise on the input, as a fraction of the input range (captum's ``stdevs``; default
    0). ``seed`` fixes every draw, the same for every image."""
    _check_draws(samples, noise)
    check_reduce(reduce)
    n, h, w, c = x.shape
    rng = np.random.default_rng(seed)
    bases = _baseline_set(bundle, x, baselines, int(samples), rng)  # [N, M, H, W, C]
    m = bases.shape[1]
    lo, hi = bundle.input_range
    sigma = (noise * (np.asarray(hi) - np.asarray(lo))).astype(np.float32)
    # The same draws for every image (as SmoothGrad): baselines in turn, each equally
    # often; a point on the path uniform in [0, 1]; Gaussian noise on the input.
    which = np.arange(samples) % m
    alphas = rng.uniform(0.0, 1.0, samples).astype(np.float32)
    eps = (rng.standard_normal((samples, h, w, c), dtype=np.float32) * sigma) if noise > 0 else None
    attr = np.zeros_like(x)
    for ch in image_chunks(n, samples):
        k = ch.stop - ch.start
        xs, bs = x[ch], bases[ch]

        def make_x(ids, xs=xs, bs=bs):
            img, j = ids // samples, ids % samples
            xn = xs[img] if eps is None else xs[img] + eps[j]
            b = bs[img, which[j]]
            return b + alphas[j][:, None, None, None] * (xn - b)

        tg = [t for t in targets[ch] for _ in range(samples)]
        _, g = gradients(bundle, None, tg, make_x=make_x, n=k * samples, batch_size=batch_size)
        g = g.reshape((k, samples, h, w, c))
        for j in range(samples):  # the mean of g * (x + eps - b), one draw at a time for all images
            xn = xs if eps is None else xs + eps[j]
            attr[ch] += g[:, j] * (xn - bs[:, which[j]])
        attr[ch] /= samples
    return reduce_channels(bundle, attr, reduce)


