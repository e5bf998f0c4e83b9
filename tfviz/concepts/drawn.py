"""Images drawn by tfviz for TCAV, so that it runs offline: texture concepts (striped,
dotted, zigzagged, checkered: the Describable Textures categories Kim et al. 2018 test), the
random counterexamples, and views of a photo (crops and flips) as class images.

Every image is uint8 RGB at the size asked for (the model's input size), drawn with numpy
and Pillow. Each set has its own seeded generator, ``(seed, what, index)``, so a set does
not change when other sets are drawn or when the number of sets changes.

* **Concepts** vary their two colours (a pair with a clear difference in brightness), scale,
  angle and duty cycle; edges are anti-aliased, and a little pixel noise is added so that
  "perfectly flat colour" is not what tells them from the random sets.
* **Random sets** stand in for the paper's random ImageNet photos: a colour field with a
  1/f^a power spectrum (the spectrum of natural images, a in 1.6..2.6), with soft blobs,
  straight edges (half-planes of another tint) and a few lines drawn over it, then the same
  pixel noise: natural-looking clutter with no repeated pattern.
"""
from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageDraw

from .. import images as _images
from ..defaults import TCAV_TEXTURES
from ..errors import OptionError
from ..utils import did_you_mean

#: The texture concepts tfviz draws (``draw_concept(name, ...)``), in the order of the picture.
TEXTURES = TCAV_TEXTURES

_NOISE = 4.0  # grey levels of pixel noise on every drawn image


def _rng(seed: int, what: str, index: int = 0) -> np.random.Generator:
    """The generator of one drawn set: independent of every other set's."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(what.encode()), int(index)])


def _hw(size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, (int, np.integer)) else size
    if int(h) < 1 or int(w) < 1:
        raise OptionError(f"size must be positive, got {size!r}")
    return int(h), int(w)


def _check_n(n) -> int:
    if int(n) < 1:
        raise OptionError(f"the number of images must be at least 1, got {n}")
    return int(n)


# --------------------------------------------------------------------------- texture concepts
def _colours(rng) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB colours in 0..1 whose luminances differ by at least 0.35."""
    weights = np.array([0.299, 0.587, 0.114])
    while True:
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(float((a - b) @ weights)) >= 0.35:
            return a, b


def _coords(rng, h, w):
    """Pixel centres rotated by a random angle about a random origin: ``(u, v)`` [h, w]."""
    theta = rng.uniform(0, np.pi)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = y - rng.uniform(0, h), x - rng.uniform(0, w)
    return x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)


def _soft(f, slope):
    """A threshold of ``f`` at 0, anti-aliased: ``slope`` is f's change per pixel."""
    return np.clip(0.5 + f / np.maximum(slope, 1e-6), 0.0, 1.0)


def _striped(rng, h, w):
    u, _ = _coords(rng, h, w)
    period = rng.uniform(0.05, 0.2) * min(h, w)
    duty = rng.uniform(-0.5, 0.5)
    return _soft(np.sin(2 * np.pi * u / period) - duty, 2 * np.pi / period)


def _zigzagged(rng, h, w):
    u, v = _coords(rng, h, w)
    period = rng.uniform(0.06, 0.2) * min(h, w)
    wave = period * rng.uniform(1.0, 2.5)
    amp = period * rng.uniform(0.4, 1.0)
    tri = 2 * np.abs(2 * ((v / wave) % 1.0) - 1) - 1  # a triangle wave in -1..1 along the stripes
    shifted = u + amp * tri
    slope = 2 * np.pi / period * np.hypot(1.0, 4 * amp / wave)
    return _soft(np.sin(2 * np.pi * shifted / period), slope)


def _dotted(rng, h, w):
    u, v = _coords(rng, h, w)
    cell = rng.uniform(0.07, 0.2) * min(h, w)
    radius = cell * rng.uniform(0.18, 0.38)
    if rng.uniform() < 0.5:  # a hexagonal lattice: every other row shifted by half a cell
        u = u + 0.5 * cell * (np.round(v / cell) % 2)
    du = (u / cell - np.round(u / cell)) * cell
    dv = (v / cell - np.round(v / cell)) * cell
    return np.clip(radius - np.hypot(du, dv) + 0.5, 0.0, 1.0)


def _checkered(rng, h, w):
    u, v = _coords(rng, h, w)
    side = rng.uniform(0.05, 0.18) * min(h, w)
    su = np.clip(np.sin(np.pi * u / side) * side / np.pi, -1, 1)  # +-1 away from the edges, linear across them
    sv = np.clip(np.sin(np.pi * v / side) * side / np.pi, -1, 1)
    return 0.5 + 0.5 * su * sv


_DRAW = {"striped": _striped, "dotted": _dotted, "zigzagged": _zigzagged, "checkered": _checkered}


def _finish(rgb01, rng) -> np.ndarray:
    """0..1 floats -> uint8 with a little pixel noise."""
    noisy = rgb01 * 255.0 + rng.normal(0.0, _NOISE, rgb01.shape)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def draw_concept(name: str, n: int, size, seed: int = 0) -> _images.Picture:
    """``n`` images ``[n, h, w, 3]`` (uint8) of the texture concept ``name`` (one of
    :data:`TEXTURES`) at ``size`` ``(h, w)`` (or one int): two colours, random scale,
    angle and duty cycle per image, the same images for the same ``seed``."""
    if name not in _DRAW:
        raise OptionError(did_you_mean("drawn concept", name, TEXTURES))
    h, w = _hw(size)
    rng = _rng(seed, "concept:" + name)
    out = np.empty((_check_n(n), h, w, 3), np.uint8)
    for i in range(n):
        a, b = _colours(rng)
        m = _DRAW[name](rng, h, w)[..., None]
        out[i] = _finish(m * a + (1 - m) * b, rng)
    return _images.as_picture(out)


# --------------------------------------------------------------------------- random counterexamples
def _pink_field(rng, h, w, exponent):
    """A zero-mean, unit-std field with power spectrum 1/f^exponent."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    amp = f ** (-exponent / 2.0)
    amp[0, 0] = 0.0
    spec = amp * (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape))
    field = np.fft.irfft2(spec, s=(h, w))
    return (field - field.mean()) / (field.std() + 1e-12)


def _random_one(rng, h, w, grid) -> np.ndarray:
    exponent = rng.uniform(1.6, 2.6)
    base = rng.uniform(0.2, 0.8, 3)
    lum = _pink_field(rng, h, w, exponent)
    chroma = [_pink_field(rng, h, w, exponent) for _ in range(2)]
    mix = rng.normal(0, 1, (2, 3))
    rgb = (base + rng.uniform(0.08, 0.2) * lum[..., None] +
           rng.uniform(0.02, 0.08) * (chroma[0][..., None] * mix[0] + chroma[1][..., None] * mix[1])).astype(np.float32)
    y, x = grid
    scale = min(h, w)

    def paint(mask, colour):
        nonlocal rgb
        m = mask.astype(np.float32)[..., None]
        rgb = rgb + m * (colour.astype(np.float32) - rgb)

    for _ in range(int(rng.integers(0, 3))):  # straight edges: a half-plane of another tint
        theta = rng.uniform(0, 2 * np.pi)
        dist = (x - rng.uniform(0, w)) * np.cos(theta) + (y - rng.uniform(0, h)) * np.sin(theta)
        paint(_soft(dist, 1.0 / rng.uniform(0.7, 3.0)) * rng.uniform(0.25, 0.7), rng.uniform(0, 1, 3))
    for _ in range(int(rng.integers(1, 7))):  # soft ellipses
        rx, ry = rng.uniform(0.04, 0.25, 2) * scale
        theta = rng.uniform(0, np.pi)
        dx, dy = x - rng.uniform(0, w), y - rng.uniform(0, h)
        u, v = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
        q = np.hypot(u / rx, v / ry)
        softness = rng.uniform(1.0, 0.3 * min(rx, ry) + 1.0)
        paint(_soft((1 - q) * min(rx, ry), softness) * rng.uniform(0.5, 1.0), rng.uniform(0, 1, 3))
    img = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 4))):  # a few lines at random angles
        pts = [tuple(rng.uniform(0, 1, 2) * (w, h)) for _ in range(2)]
        draw.line(pts, fill=tuple(int(c) for c in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    return np.asarray(img, np.float64) / 255.0


def random_images(n: int, size, seed: int = 0, index: int = 0) -> _images.Picture:
    """Random set ``index``: ``n`` natural-looking images ``[n, h, w, 3]`` (uint8) at
    ``size`` -- 1/f colour noise with blobs, edges and lines (see the module docstring).
    Different ``index`` values give independent sets; the same ``(seed, index)`` the same."""
    h, w = _hw(size)
    rng = _rng(seed, "random", index)
    grid = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((_check_n(n), h, w, 3), np.uint8)
    for i in range(n):
        out[i] = _finish(_random_one(rng, h, w, grid), rng)
    return _images.as_picture(out)


# --------------------------------------------------------------------------- class images
def photo_views(photos, n: int, size, seed: int = 0) -> np.ndarray:
    """``n`` views ``[n, h, w, 3]`` of the uint8 ``photos`` (a list of ``[H, W, 3]``), taken
    in turn: the first view of each photo is the whole photo, the others random crops (40 to
    100 % of its area, aspect ratio 3:4 to 4:3), half of them mirrored, each resized to
    ``size``. Seeded: the same views for the same ``seed``."""
    h, w = _hw(size)
    rng = _rng(seed, "views")
    out = np.empty((_check_n(n), h, w, 3), np.uint8)
    for i in range(n):
        photo = np.asarray(photos[i % len(photos)])
        ph, pw = photo.shape[:2]
        if i < len(photos):
            crop = photo
        else:
            area = rng.uniform(0.4, 1.0) * ph * pw
            ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            ch = int(min(ph, max(1, round(np.sqrt(area / ratio)))))
            cw = int(min(pw, max(1, round(np.sqrt(area * ratio)))))
            top, left = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
            crop = photo[top:top + ch, left:left + cw]
            if rng.uniform() < 0.5:
                crop = crop[:, ::-1]
        out[i] = _images.resize(np.ascontiguousarray(crop), (h, w))
    return out


__all__ = ["TEXTURES", "draw_concept", "random_images", "photo_views"]
