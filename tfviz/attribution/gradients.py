"""Gradient attributions: saliency (Simonyan 2014), input x gradient (Shrikumar 2016),
SmoothGrad (Smilkov 2017) with its squared and variance variants (Hooker 2019, Adebayo
2018), Integrated Gradients (Sundararajan 2017) and GradientSHAP (Lundberg & Lee 2017).
All gradients are of the target's *score* (a logit -- a final softmax is bypassed -- or
a unit's value) with respect to the model's input."""
from __future__ import annotations

import numpy as np

from .core import (DEFAULT_BATCH, check_reduce, gradients, image_chunks, method_on_inputs, reduce_channels, run,
                   substitute)
from .errors import AttributionError


# --------------------------------------------------------------------------- saliency
def _saliency_x(bundle, x, targets, batch_size=DEFAULT_BATCH):
    _, g = gradients(bundle, x, targets, batch_size=batch_size)
    return np.abs(g).max(axis=-1)


def saliency(bundle, images, target=None, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Saliency map ``[N, H, W]`` (float32): the maximum over color channels of
    ``|d score / d pixel|`` (Simonyan et al. 2014), where the score is the target's logit
    (or unit value) and pixels are the model's input.

    ``images``: uint8 RGB ``[N, H, W, 3]`` or anything :mod:`tfviz.images` loads (resized
    to the model's input size). ``target``: see :mod:`tfviz.attribution.targets`
    (``None``: each image's top-1 class)."""
    return run(_saliency_x, bundle, images, target, batch_size=batch_size)


saliency._on_inputs = _saliency_x


# --------------------------------------------------------------------------- input x gradient
def _ixg_x(bundle, x, targets, reduce="sum", batch_size=DEFAULT_BATCH):
    _, g = gradients(bundle, x, targets, batch_size=batch_size)
    return reduce_channels(bundle, x * g, reduce)


def input_x_gradient(bundle, images, target=None, *, reduce: str | None = "sum",
                     batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """Input x gradient ``[N, H, W]`` (signed; Shrikumar et al. 2016, tf-explain's
    GradientsInputs, captum's InputXGradient): the model input times ``d score / d
    input``, summed over colour channels (``reduce=None``: ``[N, H, W, 3]``, RGB order).
    "Input" is what the model sees after preprocessing, so its zero -- black for 0-1
    models, mid-gray for -1..1 ones, the mean colour for caffe -- is the implicit
    reference; on a linear model the map is ``w * x`` exactly."""
    return run(_ixg_x, bundle, images, target, reduce=reduce, batch_size=batch_size)


input_x_gradient._on_inputs = _ixg_x


# --------------------------------------------------------------------------- smoothgrad
VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _check_draws(samples, noise):
    """``samples`` and ``noise`` of the methods that average over random draws."""
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise AttributionError(f"samples must be a positive integer, got {samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise AttributionError(f"noise must be >= 0 (a fraction of the input range), got {noise!r}")


def _smoothgrad_x(bundle, x, targets, method=None, samples=25, noise=0.15, seed=0, variant="smoothgrad",
                  **options):
    if variant not in VARIANTS:
        raise AttributionError(f"unknown SmoothGrad variant {variant!r}; one of {', '.join(VARIANTS)}")
    _check_draws(samples, noise)
    on = method_on_inputs(method if method is not None else saliency)
    if on is _smoothgrad_x:
        raise AttributionError("smoothgrad of smoothgrad is not supported")
    n, h, w, c = x.shape
    lo, hi = bundle.input_range
    sigma = (noise * (np.asarray(hi) - np.asarray(lo))).astype(np.float32)  # per channel, model order
    # The same noise draws for every image: a batch gives the same maps as one image at a time.
    eps = np.random.default_rng(seed).standard_normal((samples, h, w, c), dtype=np.float32) * sigma
    out = None
    for ch in image_chunks(n, samples):
        k = ch.stop - ch.start
        noisy = (x[ch, None] + eps[None]).reshape((k * samples, h, w, c))
        tg = [t for t in targets[ch] for _ in range(samples)]
        maps = on(bundle, noisy, tg, **options)
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


def smoothgrad(bundle, images, target=None, *, method=saliency, samples: int = 25, noise: float = 0.15,
               seed: int = 0, variant: str = "smoothgrad", **method_options) -> np.ndarray:
    """SmoothGrad: the average of ``method``'s maps over ``samples`` noisy copies of each
    image, with Gaussian noise of standard deviation ``noise`` x (the input range).
    ``variant="smoothgrad_sq"``: the mean of the squared maps (SmoothGrad squared, Hooker
    et al. 2019); ``"vargrad"``: their variance (Adebayo et al. 2018) -- the same noisy
    samples, reduced differently.

    ``method``: a tfviz.attribution function or name (default :func:`saliency`); its own
    options pass through (``batch_size=``, ``steps=``, ...). The output has ``method``'s
    shape. ``seed`` fixes the noise (the same draws for every image, so results do not
    depend on how images are batched)."""
    return run(_smoothgrad_x, bundle, images, target, method=method, samples=samples, noise=noise, seed=seed,
               variant=variant, **method_options)


smoothgrad._on_inputs = _smoothgrad_x


# --------------------------------------------------------------------------- integrated gradients
def _weights(steps: int, rule: str):
    if rule == "trapezoid":
        alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float64)
        w = np.full(steps + 1, 1.0 / steps)
        w[0] = w[-1] = 0.5 / steps
    elif rule == "midpoint":
        alphas = (np.arange(steps, dtype=np.float64) + 0.5) / steps
        w = np.full(steps, 1.0 / steps)
    else:
        raise AttributionError(f"unknown integration rule {rule!r}; one of trapezoid, midpoint")
    return alphas.astype(np.float32), w.astype(np.float32)


def _ig_x(bundle, x, targets, baseline="black", steps=50, rule="trapezoid", reduce="sum",
          return_delta=False, batch_size=DEFAULT_BATCH):
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise AttributionError(f"steps must be a positive integer, got {steps!r}")
    check_reduce(reduce)
    n, h, w, c = x.shape
    base = substitute(bundle, x, baseline, what="baseline")
    alphas, weights = _weights(int(steps), rule)
    s = len(alphas)
    attr = np.zeros_like(x)
    delta = np.zeros(n, np.float32)
    for ch in image_chunks(n, s):
        xs, bs = x[ch], base[ch]
        k = ch.stop - ch.start

        def make_x(ids, xs=xs, bs=bs):
            img, a = ids // s, alphas[ids % s][:, None, None, None]
            return bs[img] + a * (xs[img] - bs[img])

        tg = [t for t in targets[ch] for _ in range(s)]
        scores, g = gradients(bundle, None, tg, make_x=make_x, n=k * s, batch_size=batch_size)
        avg = np.tensordot(weights, g.reshape((k, s, h, w, c)), axes=([0], [1]))  # [k, h, w, c]
        attr[ch] = (xs - bs) * avg
        if rule == "trapezoid":
            sc = scores.reshape(k, s)
            delta[ch] = attr[ch].sum(axis=(1, 2, 3)) - (sc[:, -1] - sc[:, 0])
        else:
            from .core import target_scores
            fx = target_scores(bundle, xs, targets[ch])
            fb = target_scores(bundle, bs, targets[ch])
            delta[ch] = attr[ch].sum(axis=(1, 2, 3)) - (fx - fb)
    out = reduce_channels(bundle, attr, reduce)
    return (out, delta) if return_delta else out


def integrated_gradients(bundle, images, target=None, *, baseline="black", steps: int = 50,
                         rule: str = "trapezoid", reduce: str | None = "sum", return_delta: bool = False,
                         batch_size: int = DEFAULT_BATCH):
    """Integrated Gradients: ``(x - x') * integral of d score / d x along the straight
    path from the baseline ``x'`` to ``x``, approximated with ``steps`` intervals
    (trapezoid rule; ``rule="midpoint"`` also works).

    ``baseline``: ``"black"`` (default), ``"blur"``, ``"gray"``, ``"white"``, ``"zero"``,
    ``"mean"``, or images / an array (anything :mod:`tfviz.images` loads). Returns signed
    attributions ``[N, H, W]`` summed over color channels (``reduce=None``: ``[N, H, W, 3]``);
    they sum to ``f(x) - f(x')`` (completeness). ``return_delta=True`` also returns that
    sum minus ``f(x) - f(x')`` per image: the approximation error."""
    return run(_ig_x, bundle, images, target, baseline=baseline, steps=steps, rule=rule, reduce=reduce,
               return_delta=return_delta, batch_size=batch_size)


integrated_gradients._on_inputs = _ig_x


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


def _gradient_shap_x(bundle, x, targets, baselines="uniform", samples=25, noise=0.0, seed=0, reduce="sum",
                     batch_size=DEFAULT_BATCH):
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


def gradient_shap(bundle, images, target=None, *, baselines="uniform", samples: int = 25, noise: float = 0.0,
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
    return run(_gradient_shap_x, bundle, images, target, baselines=baselines, samples=samples, noise=noise,
               seed=seed, reduce=reduce, batch_size=batch_size)


gradient_shap._on_inputs = _gradient_shap_x
