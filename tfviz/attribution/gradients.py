"""Gradient attributions: saliency (Simonyan 2014), SmoothGrad (Smilkov 2017) and
Integrated Gradients (Sundararajan 2017). All gradients are of the target's *score* (a
logit -- a final softmax is bypassed -- or a unit's value) with respect to the model's
input."""
from __future__ import annotations

import numpy as np

from .core import (DEFAULT_BATCH, gradients, image_chunks, method_on_inputs, run, substitute,
                   to_rgb_order)
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


# --------------------------------------------------------------------------- smoothgrad
def _smoothgrad_x(bundle, x, targets, method=None, samples=25, noise=0.15, seed=0, **options):
    if not isinstance(samples, (int, np.integer)) or samples < 1:
        raise AttributionError(f"samples must be a positive integer, got {samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise AttributionError(f"noise must be >= 0 (a fraction of the input range), got {noise!r}")
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
        maps = maps.reshape((k, samples) + maps.shape[1:]).mean(axis=1)
        if out is None:
            out = np.zeros((n,) + maps.shape[1:], np.float32)
        out[ch] = maps
    return out


def smoothgrad(bundle, images, target=None, *, method=saliency, samples: int = 25, noise: float = 0.15,
               seed: int = 0, **method_options) -> np.ndarray:
    """SmoothGrad: the average of ``method``'s maps over ``samples`` noisy copies of each
    image, with Gaussian noise of standard deviation ``noise`` x (the input range).

    ``method``: a tfviz.attribution function or name (default :func:`saliency`); its own
    options pass through (``batch_size=``, ``steps=``, ...). The output has ``method``'s
    shape. ``seed`` fixes the noise (the same draws for every image, so results do not
    depend on how images are batched)."""
    return run(_smoothgrad_x, bundle, images, target, method=method, samples=samples, noise=noise, seed=seed,
               **method_options)


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
    if reduce not in ("sum", None):
        raise AttributionError(f"reduce must be 'sum' or None, got {reduce!r}")
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
    attr = to_rgb_order(bundle, attr)
    out = attr.sum(axis=-1) if reduce == "sum" else attr
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
