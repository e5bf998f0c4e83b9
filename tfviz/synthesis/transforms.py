"""Random transforms applied to the image before each forward pass (transformation
robustness): the optimized image must work under all of them, which removes the
high-frequency patterns that fool a network only at one exact position.

Each transform is a callable ``t(x, rng) -> x`` on a batch ``[N, H, W, 3]`` whose
mid-gray is 0 (the loop subtracts the centre of the valid range first, so padding and
rotation fill with gray), with ``rng`` a ``tf.random.Generator`` seeded by the loop.
"""
from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from ..errors import TransformError  # noqa: F401  (the classes live in tfviz.errors)
from ..utils import TfvizError


class Transform:
    def __call__(self, x, rng):
        raise NotImplementedError


class _Shift(Transform):
    """A random shift of up to ``d`` pixels per axis (``d = 0``: the identity)."""

    def __init__(self, d: int = 8):
        if int(d) < 0:
            raise TransformError(f"{type(self).__name__}: the shift must be >= 0 pixels, got {d}")
        self.d = int(d)

    def __call__(self, x, rng):
        return x if self.d == 0 else self.shift(x, rng)

    def __repr__(self):
        return f"{type(self).__name__}({self.d})"


class Roll(_Shift):
    """Roll the image by a random ``(dy, dx)`` in ``[-d, d]`` with wrap-around (size kept)."""

    def shift(self, x, rng):
        return tf.roll(x, shift=rng.uniform([2], -self.d, self.d + 1, dtype=tf.int32), axis=[1, 2])


class Jitter(_Shift):
    """Lucid's ``jitter(d)``: a random crop ``d`` pixels smaller in each dimension (a shift
    by 0..d without wrap-around; the image shrinks by ``d``)."""

    def shift(self, x, rng):
        shape = tf.shape(x)
        dy, dx = tf.unstack(rng.uniform([2], 0, self.d + 1, dtype=tf.int32))
        return x[:, dy:dy + shape[1] - self.d, dx:dx + shape[2] - self.d, :]


class Pad(Transform):
    """Pad ``w`` pixels on every side: ``mode`` ``"constant"`` (mid-gray) or ``"reflect"``."""

    def __init__(self, w: int = 12, mode: str = "constant"):
        if int(w) < 0:
            raise TransformError(f"pad must be >= 0 pixels, got {w}")
        if mode.upper() not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
            raise TransformError(f"pad mode must be constant, reflect or symmetric, got {mode!r}")
        self.w, self.mode = int(w), mode.upper()

    def __call__(self, x, rng):
        w = self.w
        return tf.pad(x, [[0, 0], [w, w], [w, w], [0, 0]], mode=self.mode) if w else x

    def __repr__(self):
        return f"Pad({self.w}, {self.mode.lower()!r})"


class RandomScale(Transform):
    """Resize by a factor drawn from ``scales`` (bilinear)."""

    def __init__(self, scales: Sequence[float] = tuple(1 + (i - 5) / 50 for i in range(11))):
        scales = [float(s) for s in scales]
        if not scales or min(scales) <= 0:
            raise TransformError(f"scales must be positive, got {scales}")
        self.scales = scales

    def __call__(self, x, rng):
        s = tf.gather(tf.constant(self.scales), rng.uniform([], 0, len(self.scales), dtype=tf.int32))
        hw = tf.cast(tf.shape(x)[1:3], tf.float32)
        new = tf.cast(tf.round(hw * s), tf.int32)
        return tf.image.resize(x, new, method="bilinear")

    def __repr__(self):
        return f"RandomScale({len(self.scales)} scales {min(self.scales):.2f}..{max(self.scales):.2f})"


class RandomRotate(Transform):
    """Rotate about the centre by an angle (degrees) drawn from ``angles`` (bilinear,
    corners filled with mid-gray)."""

    def __init__(self, angles: Sequence[float] = tuple(range(-10, 11)) + (0,) * 5):
        self.angles = [float(a) for a in angles]
        if not self.angles:
            raise TransformError("angles must not be empty")

    def __call__(self, x, rng):
        a = tf.gather(tf.constant(self.angles), rng.uniform([], 0, len(self.angles), dtype=tf.int32))
        return rotate(x, a * (math.pi / 180.0))

    def __repr__(self):
        return f"RandomRotate({min(self.angles):g}..{max(self.angles):g} deg)"


def rotate(x, radians):
    """Rotate ``[N, H, W, C]`` about the image centre by ``radians`` (counter-clockwise),
    bilinear, filling with 0. Differentiable with respect to ``x``."""
    shape = tf.shape(x)
    h = tf.cast(shape[1], tf.float32)
    w = tf.cast(shape[2], tf.float32)
    c, s = tf.cos(radians), tf.sin(radians)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # output (x, y) -> input (a0 x + a1 y + a2, b0 x + b1 y + b2): inverse rotation
    a0, a1, a2 = c, -s, cx - c * cx + s * cy
    b0, b1, b2 = s, c, cy - s * cx - c * cy
    t = tf.stack([a0, a1, a2, b0, b1, b2, 0.0, 0.0])[None]
    t = tf.tile(t, [shape[0], 1])
    return tf.raw_ops.ImageProjectiveTransformV3(images=x, transforms=t, output_shape=shape[1:3],
                                                 fill_value=0.0, interpolation="BILINEAR",
                                                 fill_mode="CONSTANT")


def standard(jitter_px: int = 8) -> list:
    """Lucid's ``standard_transforms`` in order -- pad 12, shift 8, scale 0.9..1.1, rotate
    -10..10 degrees, shift 4 -- with the shifts done as wrap-around rolls (:class:`Roll`,
    which keep the image size) where Lucid crops (:class:`Jitter`)."""
    return [Pad(12), Roll(jitter_px), RandomScale(), RandomRotate(), Roll(4)]


def compose(transforms):
    transforms = list(transforms or [])
    for t in transforms:
        if not callable(t):
            raise TransformError(f"a transform must be callable t(x, rng); got {t!r}")

    def apply(x, rng):
        for t in transforms:
            x = t(x, rng)
        return x
    return apply


def fit(x, size):
    """Bring a transformed batch back to the model's input ``size``: centre crop when
    larger, pad with 0 (mid-gray) when smaller -- per axis."""
    h, w = size
    shape = tf.shape(x)
    dy, dx = shape[1] - h, shape[2] - w
    # crop
    oy, ox = tf.maximum(dy, 0) // 2, tf.maximum(dx, 0) // 2
    x = x[:, oy:oy + h, ox:ox + w, :]
    # pad
    py, px = tf.maximum(-dy, 0), tf.maximum(-dx, 0)
    x = tf.pad(x, [[0, 0], [py // 2, py - py // 2], [px // 2, px - px // 2], [0, 0]])
    return tf.ensure_shape(x, [None, h, w, None])


