"""Yosinski et al. 2015's regularizers: steps applied to the image after each update.

Each regularizer is a callable ``r(x, grad, ctx) -> x`` on the image in model-input
space ``[N, H, W, 3]``; ``grad`` is the objective's gradient with respect to the image in
this step and ``ctx`` gives the valid range (``ctx.lo``, ``ctx.hi``, ``ctx.center``, per
channel). ``every`` sets the period in steps (``step % every == 0``). They act on the
:func:`~tfviz.synthesis.params.pixel` parameterization (the image is the variable).

"Centre" below is the middle of the valid input range (mid-gray); Yosinski works on
mean-subtracted images, where it is 0.

* :func:`decay` -- ``x <- centre + (1 - rate) (x - centre)`` (L2 decay).
* :func:`blur` -- Gaussian blur with ``sigma`` every ``every`` steps.
* :func:`clip_norm` -- pixels whose norm ``||x - centre||`` (over channels) is below the
  ``percentile``-th percentile of the image are set to the centre.
* :func:`clip_contribution` -- same with the contribution ``sum_c |(x - centre) * grad|``.
* :func:`clip_range` -- clip into the valid range (projected gradient ascent).
* :func:`project_linf` -- stay within an L-inf ball around given images (PGD).

Sizes are unit-free (rates, percentiles), in pixels (blur sigma) or in grey levels of the
uint8 image (the L-inf radius), whatever the model's preprocessing.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..errors import RegularizerError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import TfvizError


class Regularizer:
    every: int = 1

    def __call__(self, x, grad, ctx):
        raise NotImplementedError


def _check_every(every):
    if not isinstance(every, (int, np.integer)) or every < 1:
        raise RegularizerError(f"every must be a positive integer number of steps, got {every!r}")
    return int(every)


def _check_percentile(p):
    if not 0 <= float(p) <= 100:
        raise RegularizerError(f"percentile must be in 0..100, got {p}")
    return float(p)


class Decay(Regularizer):
    """L2 decay toward mid-gray: ``x <- centre + (1 - rate) * (x - centre)``."""

    def __init__(self, rate: float = 0.01, every: int = 1):
        if not 0 <= rate < 1:
            raise RegularizerError(f"decay rate must be in [0, 1), got {rate}")
        self.rate, self.every = float(rate), _check_every(every)

    def __call__(self, x, grad, ctx):
        return ctx.center + (1.0 - self.rate) * (x - ctx.center)

    def __repr__(self):
        return f"Decay({self.rate:g})"


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> np.ndarray:
    """Normalized 1-D Gaussian ``exp(-k^2 / (2 sigma^2))``, ``k = -r..r``,
    ``r = ceil(3 sigma)`` unless given."""
    r = int(math.ceil(3 * sigma)) if radius is None else int(radius)
    k = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-k * k / (2 * sigma * sigma))
    return (g / g.sum()).astype(np.float32)


def gaussian_blur(x, sigma: float):
    """Separable Gaussian blur of ``[N, H, W, C]`` per channel, edges reflected
    (``numpy.pad(mode="reflect")``)."""
    k = gaussian_kernel1d(sigma)
    r = len(k) // 2
    if r == 0:
        return x
    c = x.shape[-1]
    shape = tf.shape(x)
    r_y = min(r, x.shape[1] - 1) if x.shape[1] else r
    r_x = min(r, x.shape[2] - 1) if x.shape[2] else r
    ky = tf.constant(np.tile(k[r - r_y:r + r_y + 1, None, None, None], (1, 1, c, 1)))
    kx = tf.constant(np.tile(k[None, r - r_x:r + r_x + 1, None, None], (1, 1, c, 1)))
    ky = ky / tf.reduce_sum(ky[:, 0, 0, 0])
    kx = kx / tf.reduce_sum(kx[0, :, 0, 0])
    y = tf.pad(x, [[0, 0], [r_y, r_y], [r_x, r_x], [0, 0]], mode="REFLECT")
    y = tf.nn.depthwise_conv2d(y, ky, [1, 1, 1, 1], "VALID")
    y = tf.nn.depthwise_conv2d(y, kx, [1, 1, 1, 1], "VALID")
    return tf.reshape(y, shape)


class Blur(Regularizer):
    """Gaussian blur (``sigma`` pixels) every ``every`` steps."""

    def __init__(self, sigma: float = 0.5, every: int = 4):
        if sigma <= 0:
            raise RegularizerError(f"blur sigma must be positive, got {sigma}")
        self.sigma, self.every = float(sigma), _check_every(every)

    def __call__(self, x, grad, ctx):
        return gaussian_blur(x, self.sigma)

    def __repr__(self):
        return f"Blur(sigma={self.sigma:g}, every={self.every})"


def percentile_lower(v, p: float):
    """Per-image percentile of ``v`` ``[N, M]`` with numpy's ``method="lower"``: the
    sorted value at index ``floor(p / 100 * (M - 1))``."""
    m = tf.shape(v)[1]
    idx = tf.cast(tf.floor(p / 100.0 * tf.cast(m - 1, tf.float32)), tf.int32)
    return tf.gather(tf.sort(v, axis=1), idx, axis=1)


def _clip_below(x, score, p, ctx):
    """Set pixels whose ``score`` ``[N,H,W]`` is below the image's ``p``-th percentile
    to the centre."""
    n = tf.shape(score)[0]
    thr = percentile_lower(tf.reshape(score, [n, -1]), p)
    keep = score >= thr[:, None, None]
    return tf.where(keep[..., None], x, tf.broadcast_to(ctx.center, tf.shape(x)))


class ClipNorm(Regularizer):
    """Pixels with ``||x - centre||_2`` (over channels) below the ``percentile``-th
    percentile are set to the centre."""

    def __init__(self, percentile: float = 10.0, every: int = 1):
        self.percentile, self.every = _check_percentile(percentile), _check_every(every)

    def __call__(self, x, grad, ctx):
        norm = tf.sqrt(tf.reduce_sum(tf.square(x - ctx.center), axis=-1))
        return _clip_below(x, norm, self.percentile, ctx)

    def __repr__(self):
        return f"ClipNorm({self.percentile:g}%)"


class ClipContribution(Regularizer):
    """Pixels with contribution ``sum_c |(x - centre) * grad|`` (activation times
    gradient, summed over channels) below the ``percentile``-th percentile are set to the
    centre."""

    def __init__(self, percentile: float = 10.0, every: int = 1):
        self.percentile, self.every = _check_percentile(percentile), _check_every(every)

    def __call__(self, x, grad, ctx):
        contrib = tf.reduce_sum(tf.abs((x - ctx.center) * grad), axis=-1)
        return _clip_below(x, contrib, self.percentile, ctx)

    def __repr__(self):
        return f"ClipContribution({self.percentile:g}%)"


class ClipRange(Regularizer):
    """Clip into the model's valid input range (per channel)."""

    def __init__(self, every: int = 1):
        self.every = _check_every(every)

    def __call__(self, x, grad, ctx):
        return tf.clip_by_value(x, ctx.lo, ctx.hi)

    def __repr__(self):
        return "ClipRange()"


class ProjectLinf(Regularizer):
    """Project into the L-inf ball of radius ``eps`` grey levels (one number or one per
    channel of the model input) around ``center_images`` ``[N, H, W, 3]`` (model input)
    -- PGD's projection: no pixel ends more than ``eps`` grey levels from its centre,
    whatever the model's preprocessing."""

    def __init__(self, center_images, eps):
        self.center = tf.constant(np.asarray(center_images, np.float32))
        self.eps = tf.constant(np.broadcast_to(np.asarray(eps, np.float32), (3,)).copy())
        self.every = 1

    def __call__(self, x, grad, ctx):
        e = self.eps * (ctx.hi - ctx.lo) / 255.0   # grey levels -> model-input units, per channel
        return tf.clip_by_value(x, self.center - e, self.center + e)

    def __repr__(self):
        return "ProjectLinf()"


def yosinski(decay_rate=0.01, blur_sigma=0.5, blur_every=4, norm_percentile=None,
             contribution_percentile=None) -> list:
    """A list of Yosinski regularizers, ``None`` leaving one out, ending with
    :func:`clip_range`."""
    out = []
    if decay_rate:
        out.append(Decay(decay_rate))
    if blur_sigma:
        out.append(Blur(blur_sigma, blur_every))
    if norm_percentile:
        out.append(ClipNorm(norm_percentile))
    if contribution_percentile:
        out.append(ClipContribution(contribution_percentile))
    out.append(ClipRange())
    return out
